"""The API's JSON (orjson) gives what the json module gives, and falls back to it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import pytest
from flask.json.provider import DefaultJSONProvider
from hypothesis import given
from hypothesis import strategies as st

from regbackoffice import json_text

FLASK_DEFAULT = DefaultJSONProvider.default

# Any JSON document without floats (whose shortest spelling differs: 1e+16 and 1e16).
documents = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


def stdlib_dumps(value, default=None) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=default).encode()


@given(documents)
def test_dumps_writes_the_same_bytes_as_the_json_module(value):
    assert json_text.dumps(value) == stdlib_dumps(value)


finite_floats = st.floats(allow_nan=False, allow_infinity=False)


@given(st.lists(finite_floats, max_size=10))
def test_floats_are_written_as_the_same_numbers(values):
    # Spelled alike but for an exponent's leading zero (1e-7 against json's 1e-07).
    assert json.loads(json_text.dumps(values)) == values


@given(documents)
def test_loads_reads_the_same_value_as_the_json_module(value):
    text = json.dumps(value)
    assert json_text.loads(text.encode()) == json.loads(text)


@pytest.mark.parametrize(
    "raw",
    [
        b'\xef\xbb\xbf{"a": 1}',  # a UTF-8 byte order mark
        '{"a": "中"}'.encode("utf-16"),
        b'{"a": NaN}',
        b'{"a": "\\ud800"}',  # a lone surrogate escape
        b'{"a": 123456789012345678901234567890}',  # orjson would read a float
        b'{"a": -9223372036854775809}',
        b'{"a": 1, "a": 2}',
        b"[" * 300 + b"]" * 300,  # deeper than orjson goes
    ],
    ids=["bom", "utf16", "nan", "lone-surrogate", "big-int", "below-int64", "same-key", "deep"],
)
def test_what_orjson_refuses_is_read_by_the_json_module(raw):
    value = json_text.loads(raw)
    assert value == json.loads(raw)
    assert repr(value) == repr(json.loads(raw))  # an int stays an int


@pytest.mark.parametrize("raw", [b"", b"{", b'{"a": 1} x', b"\xff\xfe\xfd"])
def test_what_is_not_json_raises_as_the_json_module_does(raw):
    with pytest.raises(ValueError) as expected:
        json.loads(raw)
    with pytest.raises(type(expected.value)):
        json_text.loads(raw)


def test_nesting_too_deep_for_both_raises_recursion_error():
    raw = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(RecursionError):
        json_text.loads(raw)


@dataclass
class Point:
    x: int


def test_dates_decimals_and_dataclasses_go_through_the_default_as_with_json():
    value = {
        "day": date(2026, 12, 7),
        "at": datetime(2026, 12, 7, 8, 30),
        "amount": Decimal("1.50"),
        "point": Point(3),
        1: "an integer key",
    }
    assert json_text.dumps(value, FLASK_DEFAULT) == stdlib_dumps(value, FLASK_DEFAULT)


def test_a_value_orjson_cannot_write_is_written_by_the_json_module():
    value = {"big": 2**70, "nested": [[[[1]]]]}
    assert json_text.dumps(value) == stdlib_dumps(value)


def test_a_lone_surrogate_raises_unicode_encode_error_for_the_caller_to_escape():
    with pytest.raises(UnicodeEncodeError):
        json_text.dumps({"id": "CQ\ud800"})


def test_a_value_without_a_default_raises_type_error():
    with pytest.raises(TypeError):
        json_text.dumps({"day": date(2026, 12, 7)})
