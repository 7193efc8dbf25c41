"""Cylinder identity: 制造单位 + 产品编号 + 制造年月, compared after NFKC and trimming."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

TRACE_CODE = re.compile(r"^\d{12}$")


def normalize_text(value: str | None) -> str:
    return unicodedata.normalize("NFKC", value or "").strip()


def identity_key(manufacturer: str, product_no: str, manufacture_month: str) -> str:
    """The unique key of a cylinder; equal for values that differ only in width or padding."""
    return "\x1f".join(
        (
            normalize_text(manufacturer),
            normalize_text(product_no),
            normalize_text(manufacture_month),
        )
    )


def is_trace_code(product_no: str) -> bool:
    """A 12-digit 产品编号 is a 镂空码: 3 manufacturer + 2 year + 7 serial digits."""
    return bool(TRACE_CODE.match(normalize_text(product_no)))


def trace_code_year_error(product_no: str, manufacture_month: str) -> str | None:
    """The message when a trace code's year digits disagree with 制造年月, else None."""
    code = normalize_text(product_no)
    if not is_trace_code(code) or len(manufacture_month) < 4:
        return None
    if code[3:5] != manufacture_month[2:4]:
        return (
            f"镂空码第4-5位年份代码“{code[3:5]}”与制造年月“{manufacture_month}”"
            f"的年份末两位“{manufacture_month[2:4]}”不一致"
        )
    return None


# Characters nobody sees, or that reorder what one sees: control characters (line breaks,
# NUL), format characters (zero-width spaces and joiners, BOM, bidi overrides), separators.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co"})
_INVISIBLE_NAMES = {
    "\x00": "空字符NUL",
    "\n": "换行",
    "\r": "回车",
    "\t": "制表符",
    "\u200b": "零宽空格",
    "\u200c": "零宽非连接符",
    "\u200d": "零宽连接符",
    "\u2060": "零宽不换行空格",
    "\ufeff": "BOM（零宽不换行空格）",
}


def invisible_characters(text: str) -> list[str]:
    """The invisible characters in ``text``, each once, as "U+200B 零宽空格"."""
    if text.isprintable():  # the usual case, at C speed (printable excludes every category)
        return []
    found: list[str] = []
    for char in text:
        if unicodedata.category(char) not in _INVISIBLE_CATEGORIES:
            continue
        name = _INVISIBLE_NAMES.get(char)
        if name is None:
            bidi = 0x202A <= ord(char) <= 0x202E or 0x2066 <= ord(char) <= 0x2069
            name = "双向文字控制符" if bidi else "控制字符"
        label = f"U+{ord(char):04X} {name}"
        if label not in found:
            found.append(label)
    return found


def invisible_characters_message(label: str, text: str) -> str | None:
    """The refusal for a value with invisible characters, or None when it has none."""
    found = invisible_characters(text)
    if not found:
        return None
    return f"{label}含有不可见字符（{'、'.join(found[:3])}）：请删除后重新填写"


def is_http_url(text: str) -> bool:
    """A QR tag's content: an http(s) URL with a host and no spaces (import and API alike)."""
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc) and " " not in text


def qr_url_error(text: str) -> str | None:
    """Why a QR tag's content is refused (Chinese), or None."""
    if is_http_url(text):
        return None
    return f"二维码“{text[:60]}”不是http://或https://开头的网址"
