"""JSON on the API's hot paths: orjson, with the standard library as the exact fallback.

A batch of 500 fillings is read from one JSON body and written as three JSON texts (its
rows and record keys for PostgreSQL, its answer): with the json module that was ≈ 5 ms of
CPU a batch, a tenth of the request; orjson does the same in a fraction of that.

Both functions give what the json module gives, or hand the value to it: orjson is
stricter (UTF-8 only, no lone surrogates, no NaN literals, at most 254 levels deep) and
reads integers beyond 64 bits as floats; such texts and values go through ``json``
unchanged, with the same answers and the same errors as before. Dates, times and
dataclasses are passed to ``default`` as ``json.dumps`` would pass them (orjson would
write its own formats). The one difference in what is written: a float's exponent has no
leading zero (``1e-7`` where json writes ``1e-07``), the same number.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import orjson

_OPTIONS = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)


# 19 digits in a row may be an integer beyond 64 bits, which orjson would read as a float
# (json keeps it exact); such a text, wherever the digits stand, is read by json.
_LONG_DIGITS = re.compile(rb"[0-9]{19}")


def loads(raw: bytes) -> Any:
    """``json.loads(raw)``: the same value, or the same exception (ValueError,
    UnicodeDecodeError, RecursionError)."""
    if _LONG_DIGITS.search(raw) is None:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            # Not strict UTF-8 JSON (a BOM, UTF-16, NaN, a lone surrogate escape, very
            # deep nesting …): json decides, and says why when it is not JSON at all.
            pass
    return json.loads(raw)


def dumps(value: Any, default: Callable[[Any], Any] | None = None) -> bytes:
    """Compact UTF-8 JSON (non-ASCII as text), like ``json.dumps(value,
    ensure_ascii=False, separators=(",", ":"), default=default).encode()``.

    Raises UnicodeEncodeError for a lone surrogate (UTF-8 cannot carry one; the caller
    may fall back to ``\\u`` escapes) and TypeError for a value ``default`` cannot turn
    into JSON, as the json module does.
    """
    try:
        return orjson.dumps(value, default=default, option=_OPTIONS)
    except orjson.JSONEncodeError:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=default)
        return text.encode()
