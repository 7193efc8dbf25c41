"""Cylinder identity: 制造单位 + 产品编号 + 制造年月, compared after NFKC and trimming."""

from __future__ import annotations

import re
import unicodedata

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
