# Shared helpers for scripts/run and scripts/test. Source it; do not run it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Debian packages the app needs: HarfBuzz subsetting (WeasyPrint is ~25x slower without
# it), CJK fonts for certificates, pdftoppm for rendering certificate previews, Tesseract
# with its Simplified Chinese and English models for the photos' 机器预读.
APP_DEBS=(libharfbuzz-subset0 fonts-noto-cjk poppler-utils
  tesseract-ocr tesseract-ocr-chi-sim tesseract-ocr-eng)
# Only the test suite needs a browser, and LibreOffice (the template must open and save in it).
TEST_DEBS=(chromium libreoffice-calc-nogui)

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

ensure_debs() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "==> installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

ensure_venv() {
  local extras="$1"
  if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv"
    python3 -m venv .venv
  fi
  # Reinstall only when setup.cfg changed since the last install.
  local stamp=".venv/.installed-${extras:-base}"
  if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ]; then
    echo "==> installing Python packages${extras:+ [$extras]}"
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -e ".${extras:+[$extras]}"
    touch "$stamp"
  fi
}
