"""Property-based tests: arbitrary input gives validation errors (Chinese), never an exception.

Example counts are kept modest so the whole suite stays quick on two cores; the database
(code tables) is read once per test, not per example.
"""

from __future__ import annotations

import io
import random
import re
import zipfile
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regbackoffice import api_records, api_validation
from regbackoffice.imports import ImportRejected, cells, reader, rules

from .xlsx_helpers import csv_bytes, good_row, ods_bytes, workbook_bytes, xls_bytes

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CHINESE = re.compile(r"[\u4e00-\u9fff]")
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")

# What a spreadsheet cell can hold once read (calamine gives str/int/float/bool/date/...).
cell_values = st.one_of(
    st.none(),
    st.text(max_size=80),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.dates(),
    st.datetimes(),
    st.timedeltas(),
    st.sampled_from(["2320", "G13", "二维码", "RFID", "2026-05", "2026-02-30", "1.5", "-0"]),
)
rows = st.lists(cell_values, max_size=20)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


@pytest.fixture
def codes(db):
    return rules.CodeTables.load()


@FUZZ
@given(cells=rows)
def test_any_excel_row_gives_data_or_reasons(codes, cells):
    result = rules.validate_row(5, cells, codes, date(2026, 6, 1))
    assert (result.data is None) == bool(result.reasons)
    for reason in result.reasons:
        assert CHINESE.search(reason), reason


@FUZZ
@given(cells=st.lists(st.text(max_size=30), min_size=12, max_size=12))
def test_a_good_row_with_one_cell_replaced_by_text_never_raises(codes, cells):
    base = good_row("CQFUZZ001")
    for index, text in enumerate(cells[: len(base)]):
        row = list(base)
        row[index] = text
        result = rules.validate_row(2, row, codes, date(2026, 6, 1))
        assert result.data is not None or result.reasons


@FUZZ
@given(value=cell_values)
def test_cell_parsers_return_a_value_or_none(value):
    text = cells.cell_text(value)
    assert isinstance(text, str) and text == text.strip()
    month = cells.parse_month(value)
    assert month is None or MONTH.match(month), month
    day = cells.parse_date(value)
    assert day is None or type(day) is date
    if day is not None:
        # A date read from a cell is read the same from its ISO text.
        assert cells.parse_date(day.isoformat()) == day
        if not isinstance(value, int | float):  # 20240520 is a date, not a month
            assert month == day.isoformat()[:7]
    number = cells.parse_decimal(value)
    assert number is None or isinstance(number, Decimal)
    if number is not None and number.is_finite():
        # The text shown for the cell (messages, the error file) is the number imported.
        assert cells.parse_decimal(text) == number


def _record_strategy(spec: api_validation.RecordSpec):
    """Records with the spec's own keys (so the field checks run) plus arbitrary extras."""
    known = st.fixed_dictionaries(
        {},
        optional={
            f.key: st.one_of(
                json_values,
                st.text(max_size=60),
                st.sampled_from(["2026-05-01", "2026-05-01 10:00:00", "2026-13", "G13", "QR"]),
            )
            for f in spec.fields
        },
    )
    return st.one_of(
        known,
        json_values,
        st.builds(
            lambda a, b: {**a, **b}, known, json_values.filter(lambda v: isinstance(v, dict))
        ),
    )


SPECS = [
    api_validation.TOKEN_REQUEST,
    api_validation.CYLINDER_LOOKUP,
    api_validation.CYLINDER_REF,
    api_validation.FILLING_CHECK,
    api_validation.TAG_BIND,
    *api_records.SPECS.values(),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_api_validators_answer_field_errors_for_anything(db, spec):
    @FUZZ
    @given(raw=_record_strategy(spec))
    def check(raw):
        clean, errors = spec.validate(raw)
        assert isinstance(clean, dict)
        for error in errors:
            assert set(error) == {"field", "message"}
            assert CHINESE.search(error["message"]), error

    check()


# ----------------------------------------------------------------------------- xlsx fuzz


@pytest.fixture(scope="module")
def valid_xlsx() -> bytes:
    return workbook_bytes([good_row(f"CQFZ{n:05d}") for n in range(3)])


def _parse_cleanly(data: bytes, name: str = "") -> None:
    """The file is read, or refused with a Chinese message: nothing else may happen."""
    try:
        reader.parse_workbook(data, name)
    except ImportRejected as exc:
        assert CHINESE.search(str(exc)), str(exc)


@settings(max_examples=120, deadline=None)
@given(data=st.data())
def test_xlsx_with_flipped_bytes_or_truncated_is_read_or_refused_cleanly(valid_xlsx, data):
    blob = bytearray(valid_xlsx)
    if data.draw(st.booleans(), label="truncate"):
        blob = blob[: data.draw(st.integers(0, len(blob)), label="length")]
    flips = data.draw(st.lists(st.integers(0, max(len(blob) - 1, 0)), max_size=12), label="at")
    for position in flips:
        if blob:
            blob[position] ^= data.draw(st.integers(1, 255), label="mask")
    _parse_cleanly(bytes(blob))


def _rezip(original: bytes, change) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(original)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            name, content = change(info.filename, source.read(info.filename))
            if name is not None:
                target.writestr(name, content, zipfile.ZIP_DEFLATED)
    return out.getvalue()


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_xlsx_with_altered_zip_entries_is_read_or_refused_cleanly(valid_xlsx, data):
    with zipfile.ZipFile(io.BytesIO(valid_xlsx)) as archive:
        names = archive.namelist()
    victim = data.draw(st.sampled_from(names), label="entry")
    action = data.draw(
        st.sampled_from(["drop", "garbage", "truncate", "rename", "doctype", "mutate"]),
        label="action",
    )
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    rng = random.Random(seed)

    def change(name: str, content: bytes):
        if name != victim:
            return name, content
        if action == "drop":
            return None, b""
        if action == "garbage":
            return name, rng.randbytes(rng.randint(0, 400))
        if action == "truncate":
            return name, content[: rng.randint(0, len(content))]
        if action == "rename":
            return name + ".bak", content
        if action == "doctype":
            return name, b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]>' + content
        mutated = bytearray(content)
        for _ in range(rng.randint(1, 8)):
            if mutated:
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        return name, bytes(mutated)

    _parse_cleanly(_rezip(valid_xlsx, change))


def test_the_unmutated_fuzz_seed_is_a_valid_import(valid_xlsx):
    assert len(reader.parse_workbook(valid_xlsx)) == 3


OTHER_FORMATS = {
    "xls": lambda: (xls_bytes([good_row(f"CQFX{n:05d}") for n in range(3)]), "list.xls"),
    "ods": lambda: (ods_bytes([good_row(f"CQFO{n:05d}") for n in range(3)]), "list.ods"),
    "csv": lambda: (csv_bytes([good_row(f"CQFC{n:05d}") for n in range(3)]), "list.csv"),
}


@pytest.mark.parametrize("kind", list(OTHER_FORMATS))
def test_xls_ods_csv_with_flipped_bytes_or_truncated_are_read_or_refused_cleanly(kind):
    valid, name = OTHER_FORMATS[kind]()
    assert len(reader.parse_workbook(valid, name)) == 3

    @settings(max_examples=60, deadline=None)
    @given(data=st.data())
    def check(data):
        blob = bytearray(valid)
        if data.draw(st.booleans(), label="truncate"):
            blob = blob[: data.draw(st.integers(0, len(blob)), label="length")]
        flips = data.draw(st.lists(st.integers(0, max(len(blob) - 1, 0)), max_size=12))
        for position in flips:
            if blob:
                blob[position] ^= data.draw(st.integers(1, 255), label="mask")
        _parse_cleanly(bytes(blob), name)

    check()
