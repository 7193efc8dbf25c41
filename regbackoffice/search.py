"""Search boxes: what the user types is matched literally."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement


def contains(column: Any, text: str) -> ColumnElement[bool]:
    """``column`` contains ``text`` as typed: ``%`` and ``_`` are not wildcards."""
    return column.contains(text, autoescape=True)
