import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from regbackoffice.certificate_numbers import (
    CertificateNumberFormatError,
    allocate_certificate_number,
    allocate_serial,
    format_certificate_number,
)
from regbackoffice.extensions import db
from regbackoffice.models import CertificateCounter

from .conftest import TEST_DATABASE_URL


def test_default_format_uses_the_last_three_district_digits_serial_and_year():
    assert format_certificate_number("500112", 23, 2026) == "瓶渝11200023(26)"
    assert format_certificate_number("500105", 1, 2030) == "瓶渝10500001(30)"
    assert format_certificate_number("500112", 123456, 2026) == "瓶渝112123456(26)"


def test_other_formats_are_configurable():
    assert format_certificate_number("500112", 7, 2026, "渝{district}-{year}-{serial:04d}") == (
        "渝500112-2026-0007"
    )
    assert format_certificate_number("500112", 7, 2026, "{district:2}{serial:03d}") == "12007"


@pytest.mark.parametrize(
    ("pattern", "fragment"),
    [
        ("瓶渝{unit}{serial}", "{unit}"),
        ("瓶渝{district:3}({yy})", "{serial}"),
        ("瓶渝{serial", "无法解析"),
        ("瓶渝{serial:05x}{district:q}", "无法使用"),
    ],
)
def test_unusable_formats_are_refused_with_a_chinese_reason(pattern, fragment):
    with pytest.raises(CertificateNumberFormatError) as info:
        format_certificate_number("500112", 1, 2026, pattern)
    assert fragment in str(info.value)


def test_numbers_longer_than_the_column_are_refused():
    with pytest.raises(CertificateNumberFormatError):
        format_certificate_number("500112", 1, 2026, "瓶" * 50 + "{serial}")


def test_serials_start_at_one_and_count_up_per_district_and_year():
    assert allocate_serial("500112", 2026) == 1
    assert allocate_serial("500112", 2026) == 2
    assert allocate_serial("500105", 2026) == 1
    assert allocate_serial("500112", 2027) == 1
    assert allocate_serial("500112", 2026) == 3
    counter = db.session.get(CertificateCounter, ("500112", 2026))
    assert counter.last_serial == 3


def test_allocate_certificate_number_formats_with_the_configured_pattern():
    first = allocate_certificate_number("500112", 2026)
    second = allocate_certificate_number("500112", 2026)
    assert (first.number, first.serial) == ("瓶渝11200001(26)", 1)
    assert (second.number, second.serial) == ("瓶渝11200002(26)", 2)


def test_a_bad_pattern_takes_no_serial():
    with pytest.raises(CertificateNumberFormatError):
        allocate_certificate_number("500112", 2026, pattern="{nope}{serial}")
    assert db.session.get(CertificateCounter, ("500112", 2026)) is None


def test_a_rolled_back_allocation_gives_its_serial_back():
    assert allocate_serial("500112", 2026) == 1
    savepoint = db.session.begin_nested()
    assert allocate_serial("500112", 2026) == 2
    savepoint.rollback()
    assert allocate_serial("500112", 2026) == 2


CONCURRENCY_YEAR = 2099  # a year no other test uses: these rows are really committed


def test_fifty_concurrent_allocations_give_fifty_distinct_consecutive_serials():
    engine = sa.create_engine(TEST_DATABASE_URL, poolclass=sa.pool.NullPool)
    district = "500112"
    start = threading.Barrier(50)
    serials: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def generate() -> None:
        try:
            with Session(engine) as session:
                session.execute(sa.text("SELECT 1"))  # connect before the race starts
                start.wait(timeout=60)
                serial = allocate_serial(district, CONCURRENCY_YEAR, session=session)
                session.commit()
            with lock:
                serials.append(serial)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=generate) for _ in range(50)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not errors, errors
        assert sorted(serials) == list(range(1, 51))
        with Session(engine) as session:
            last = session.scalar(
                sa.select(CertificateCounter.last_serial).where(
                    CertificateCounter.district_code == district,
                    CertificateCounter.year == CONCURRENCY_YEAR,
                )
            )
        assert last == 50
    finally:
        with engine.begin() as connection:
            connection.execute(
                sa.delete(CertificateCounter).where(CertificateCounter.year == CONCURRENCY_YEAR)
            )
        engine.dispose()
