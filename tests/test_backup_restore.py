"""Backup and restore: scripts/backup then scripts/restore into a fresh database and folder."""

import json
import os
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from regbackoffice import certificates
from regbackoffice.backup import storage_checksums, table_counts, verify
from regbackoffice.clock import china_today
from regbackoffice.config import sqlalchemy_url
from regbackoffice.models import FillingRecord, Role
from regbackoffice.partitions import PARTITION_SCHEMA, partition_name

from . import factories
from .conftest import recreate_database

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _run(script: str, arg: Path, database_url: str, storage: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "REGBO_DATABASE_URL": database_url, "REGBO_STORAGE_DIR": str(storage)}
    return subprocess.run(
        [str(ROOT / "scripts" / script), str(arg)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _counts(url: str) -> dict[str, int]:
    engine = sa.create_engine(sqlalchemy_url(url), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return table_counts(conn)
    finally:
        engine.dispose()


def _libpq_form(url: str) -> str:
    """The README's ``postgresql://`` form of a SQLAlchemy URL (no driver suffix)."""
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _drop_database(url: str) -> None:
    admin = sa.create_engine(
        sa.make_url(url).set(database="postgres"),
        isolation_level="AUTOCOMMIT",
        poolclass=sa.pool.NullPool,
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{sa.make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


def test_backup_restores_into_a_fresh_database_with_equal_counts_and_checksums(
    live_app, live_db, tmp_path
):
    unit = factories.make_unit("500112")
    factories.make_submitted_application(unit, items=2)  # stored photos and thumbnails
    approved = factories.make_approved_application(unit, items=1)
    certificates.generate(approved, factories.make_user(Role.ACCEPTOR), approved.version_id)
    api_client, _ = factories.make_api_client(unit)
    live_db.session.add(  # a filling record: it lands in this month's partition
        FillingRecord(
            client_id=api_client.id,
            cylinder_id="X1",
            medium_code="G13",
            filler="张三",
            fill_date=china_today(),
            filling_unit_name="测试充装站",
        )
    )
    live_db.session.commit()
    # The URL form the README gives (the app rewrites it to psycopg 3; so must the scripts).
    source_url = _libpq_form(live_app.config["SQLALCHEMY_DATABASE_URI"])
    source_storage = Path(live_app.config["STORAGE_DIR"])

    out = tmp_path / "backup"
    made = _run("backup", out, source_url, source_storage)
    assert made.returncode == 0, made.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tables"]["public.applications"] >= 2 and manifest["missing_files"] == []
    partition = f"{PARTITION_SCHEMA}.{partition_name('filling_records', china_today())}"
    assert manifest["tables"][partition] >= 1  # the partitions are in the manifest
    assert manifest["files"] == storage_checksums(source_storage)
    assert (out / "database.dump").read_bytes().startswith(b"PGDMP")

    target = source_url + "_restored"
    recreate_database(sqlalchemy_url(target))
    restored_storage = tmp_path / "restored-files"
    try:
        done = _run("restore", out, target, restored_storage)
        assert done.returncode == 0, done.stderr
        assert _counts(target) == _counts(source_url) == manifest["tables"]
        assert storage_checksums(restored_storage) == storage_checksums(source_storage)
        # The restored database keeps the audit log append-only (the trigger came along).
        engine = sa.create_engine(sqlalchemy_url(target), poolclass=sa.pool.NullPool)
        with engine.connect() as conn, pytest.raises(sa.exc.DBAPIError, match="append-only"):
            conn.execute(sa.text("DELETE FROM audit_log"))
        # A restored copy that lacks one partition fails the verification scripts/restore runs.
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE {partition}"))
        engine.dispose()
        problems = verify(target, restored_storage, manifest)
        assert problems == [
            f"table {partition}: missing, backup has {manifest['tables'][partition]} rows"
        ]
        # Restoring over a database that is no longer empty is refused.
        again = _run("restore", out, target, tmp_path / "other-files")
        assert again.returncode == 1 and "not empty" in again.stderr
    finally:
        _drop_database(sqlalchemy_url(target))
