"""统一社会信用代码 (unified social credit code) validation per GB 32100-2015."""

from __future__ import annotations

import unicodedata

# GB 32100 uses digits and capital letters except I, O, Z, S, V.
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def normalize_credit_code(raw: str) -> str:
    """Full-width characters to ASCII, spaces removed, upper case."""
    return "".join(unicodedata.normalize("NFKC", raw or "").split()).upper()


def check_digit(first17: str) -> str:
    total = sum(ALPHABET.index(ch) * w for ch, w in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def credit_code_error(raw: str) -> str | None:
    """The Chinese message saying why ``raw`` is not a valid code, or None when it is."""
    code = normalize_credit_code(raw)
    if len(code) != 18:
        return f"统一社会信用代码应为18位，当前为{len(code)}位"
    bad = sorted({ch for ch in code if ch not in ALPHABET})
    if bad:
        return f"统一社会信用代码含有不允许的字符：{''.join(bad)}（不使用I、O、Z、S、V）"
    if not code[2:8].isdigit():
        return "统一社会信用代码第3至8位应为行政区划码（数字）"
    if check_digit(code[:17]) != code[17]:
        return "统一社会信用代码校验位错误，请核对"
    return None


def is_valid_credit_code(raw: str) -> bool:
    return credit_code_error(raw) is None


def make_credit_code(first17: str) -> str:
    """Complete a 17-character prefix with its check digit (demo data and tests)."""
    return first17 + check_digit(first17)
