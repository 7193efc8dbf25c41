"""Synthetic archive data at scale, for benchmarks (``flask bench-data``)."""

from __future__ import annotations

import time

from sqlalchemy import func, select, text

from .credit_code import make_credit_code
from .extensions import db
from .models import ApiClient, Cylinder, District, Unit, UnitKind
from .reference_data import load_reference_data

BENCH_UNIT_PREFIX = "91500112MA5UBENCH"
BENCH_MANUFACTURER = "基准测试气瓶制造厂"
BENCH_ID_PREFIX = "CQBENCH"

# The whole row is computed by the database from the series number ``n``.
_ROW_SQL = """
SELECT
  :id_prefix || lpad(n::text, 12, '0'),
  :unit_id, :unit_name, :district, :authority,
  (ARRAY['2310','2320','23T0'])[1 + n % 3],
  'BX' || lpad(n::text, 12, '0'),
  'G' || (1 + n % 20)::text,
  CAST(:manufacturer AS text),
  (2015 + n % 10)::text || '-' || lpad((1 + n % 12)::text, 2, '0'),
  2.10 + (n % 5), 35.50 + (n % 40),
  DATE '2023-01-01' + (n % 700),
  (2026 + n % 4)::text || '-' || lpad((1 + n % 12)::text, 2, '0'),
  'NB' || n::text,
  CASE WHEN n % 50 = 0 THEN 'stopped' WHEN n % 97 = 0 THEN 'scrapped' ELSE 'in_use' END,
  'qr', 'https://trace.example.invalid/q/' || n::text,
  DATE '2024-01-01' + (n % 600),
  CAST(:manufacturer AS text) || chr(31) || 'BX' || lpad(n::text, 12, '0') || chr(31)
    || (2015 + n % 10)::text || '-' || lpad((1 + n % 12)::text, 2, '0'),
  now(), now(), 1
FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS n
"""

_COLUMNS = (
    "id, use_unit_id, use_unit_name, district_code, registration_authority, variety_code,"
    " product_no, medium_code, manufacturer, manufacture_month, nominal_pressure_mpa, volume_l,"
    " last_inspection_date, next_inspection_month, internal_no, status, tag_type, qr_content,"
    " registration_date, identity_key, created_at, updated_at, version_id"
)


def bench_unit() -> Unit:
    credit_code = make_credit_code(BENCH_UNIT_PREFIX)
    unit = db.session.scalar(select(Unit).where(Unit.credit_code == credit_code))
    if unit is None:
        unit = Unit(
            kind=UnitKind.USE_UNIT,
            name="基准测试使用单位",
            credit_code=credit_code,
            district_code="500112",
        )
        db.session.add(unit)
        db.session.flush()
    return unit


def generate_cylinders(count: int, batch: int = 200_000) -> float:
    """Append ``count`` synthetic cylinders (PostgreSQL); returns the seconds taken."""
    if db.engine.dialect.name != "postgresql":
        raise RuntimeError("bench-data needs PostgreSQL (REGBO_DATABASE_URL)")
    started = time.perf_counter()
    load_reference_data()
    unit = bench_unit()
    district = db.session.get_one(District, unit.district_code)
    already = db.session.scalars(
        select(func.count()).select_from(Cylinder).where(Cylinder.use_unit_id == unit.id)
    ).one()
    params = {
        "id_prefix": BENCH_ID_PREFIX,
        "unit_id": unit.id,
        "unit_name": unit.name,
        "district": district.code,
        "authority": district.authority,
        "manufacturer": BENCH_MANUFACTURER,
    }
    first = already + 1
    last = already + count
    while first <= last:
        upto = min(first + batch - 1, last)
        db.session.execute(
            text(f"INSERT INTO cylinders ({_COLUMNS}) {_ROW_SQL}"),
            {**params, "first": first, "last": upto},
        )
        db.session.commit()
        first = upto + 1
    db.session.execute(text("ANALYZE cylinders"))
    db.session.commit()
    return time.perf_counter() - started


BENCH_APP_ID = "cqbench"

# Filling records over the synthetic cylinders (``n`` picks the cylinder and the day).
_FILLING_SQL = """
INSERT INTO filling_records (client_id, record_no, cylinder_id, medium_code, filler, fill_date,
  filling_unit_name, violation, violation_reasons, received_at)
SELECT :client_id, NULL,
  :id_prefix || lpad((1 + n % :cylinders)::text, 12, '0'),
  'G' || (1 + (n % :cylinders + 1) % 20)::text,
  '充装员' || (n % 100)::text,
  DATE '2025-01-01' + CAST(n % :days AS integer),
  '基准测试充装站', false, '[]'::json, now()
FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS n
"""


def bench_api_client(secret: str = "bench-secret-not-for-production") -> ApiClient:
    """The benchmark's API client on the bench unit; secret reset each run.

    Every scope a 使用单位 may hold (inspection records only come from inspection bodies).
    """
    from . import api_clients

    unit = bench_unit()
    client = db.session.scalar(select(ApiClient).where(ApiClient.app_id == BENCH_APP_ID))
    if client is None:
        client, _ = api_clients.issue_client(
            unit,
            ["query", "bind", "filling", "trace"],
            app_id=BENCH_APP_ID,
            secret=secret,
        )
    elif not api_clients.secret_matches(client, secret):
        api_clients.rotate_secret(client, secret)
    return client


def generate_fillings(count: int, batch: int = 1_000_000) -> float:
    """Append ``count`` filling records over the bench cylinders (PostgreSQL)."""
    from datetime import date

    from .models import FillingRecord

    if db.engine.dialect.name != "postgresql":
        raise RuntimeError("bench-fillings needs PostgreSQL (REGBO_DATABASE_URL)")
    started = time.perf_counter()
    client = bench_api_client()
    unit = bench_unit()
    cylinders = db.session.scalar(
        select(func.count()).select_from(Cylinder).where(Cylinder.use_unit_id == unit.id)
    )
    if not cylinders:
        raise RuntimeError("no bench cylinders: run `flask bench-data` first")
    already = db.session.scalars(
        select(func.count()).select_from(FillingRecord).where(FillingRecord.client_id == client.id)
    ).one()
    db.session.commit()
    days = (date.today() - date(2025, 1, 1)).days
    first, last = already + 1, already + count
    while first <= last:
        upto = min(first + batch - 1, last)
        db.session.execute(
            text(_FILLING_SQL),
            {
                "client_id": client.id,
                "id_prefix": BENCH_ID_PREFIX,
                "cylinders": cylinders,
                "days": days,
                "first": first,
                "last": upto,
            },
        )
        db.session.commit()
        first = upto + 1
    db.session.execute(text("ANALYZE filling_records"))
    db.session.commit()
    return time.perf_counter() - started
