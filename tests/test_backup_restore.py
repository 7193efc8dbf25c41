"""Backup and restore: scripts/backup then scripts/restore into a fresh database and folder."""

import json
import os
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from regbackoffice import certificates
from regbackoffice.backup import storage_checksums, table_counts
from regbackoffice.models import Role

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
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return table_counts(conn)
    finally:
        engine.dispose()


def test_backup_restores_into_a_fresh_database_with_equal_counts_and_checksums(
    live_app, live_db, tmp_path
):
    unit = factories.make_unit("500112")
    factories.make_submitted_application(unit, items=2)  # stored photos and thumbnails
    approved = factories.make_approved_application(unit, items=1)
    certificates.generate(approved, factories.make_user(Role.ACCEPTOR), approved.version_id)
    live_db.session.commit()
    source_url = live_app.config["SQLALCHEMY_DATABASE_URI"]
    source_storage = Path(live_app.config["STORAGE_DIR"])

    out = tmp_path / "backup"
    made = _run("backup", out, source_url, source_storage)
    assert made.returncode == 0, made.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tables"]["applications"] >= 2 and manifest["missing_files"] == []
    assert manifest["files"] == storage_checksums(source_storage)
    assert (out / "database.dump").read_bytes().startswith(b"PGDMP")

    target_url = sa.make_url(source_url).set(
        database=f"{sa.make_url(source_url).database}_restored"
    )
    target = target_url.render_as_string(hide_password=False)
    recreate_database(target)
    restored_storage = tmp_path / "restored-files"
    try:
        done = _run("restore", out, target, restored_storage)
        assert done.returncode == 0, done.stderr
        assert _counts(target) == _counts(source_url) == manifest["tables"]
        assert storage_checksums(restored_storage) == storage_checksums(source_storage)
        # The restored database keeps the audit log append-only (the trigger came along).
        engine = sa.create_engine(target, poolclass=sa.pool.NullPool)
        with engine.connect() as conn, pytest.raises(sa.exc.DBAPIError, match="append-only"):
            conn.execute(sa.text("DELETE FROM audit_log"))
        engine.dispose()
        # Restoring over a database that is no longer empty is refused.
        again = _run("restore", out, target, tmp_path / "other-files")
        assert again.returncode == 1 and "not empty" in again.stderr
    finally:
        admin = sa.create_engine(
            target_url.set(database="postgres"),
            isolation_level="AUTOCOMMIT",
            poolclass=sa.pool.NullPool,
        )
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{target_url.database}" WITH (FORCE)'))
        admin.dispose()
