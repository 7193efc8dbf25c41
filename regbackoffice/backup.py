"""Backup and restore of the whole system: the PostgreSQL database and the storage folder.

Consistency: one REPEATABLE READ transaction exports a snapshot; ``pg_dump --snapshot``
dumps exactly that state, and the manifest's row counts and list of referenced files are
read in the same snapshot. The storage folder is copied afterwards: files are written
(atomically) before the row that names them commits, so every file the dump references
already exists when the copy starts; a file deleted in between is reported in the
manifest (``missing_files``) instead of going unnoticed.

A backup folder holds ``database.dump`` (pg_dump custom format), ``storage.tar`` and
``manifest.json`` (row count per table of every schema the app owns, ``public`` and the
monthly partitions in ``record_partitions`` alike, keyed ``schema.table``; sha256 per
file). Restore refuses a database that has tables or a storage folder that has files, then
checks both against the manifest: a table missing, extra or with other counts fails it.

Usage (see scripts/backup and scripts/restore)::

    python -m regbackoffice.backup backup  --database-url URL --storage-dir DIR --out DIR
    python -m regbackoffice.backup restore --database-url URL --storage-dir DIR --from DIR
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from .config import sqlalchemy_url

# Columns holding storage keys: the files a consistent backup must contain.
FILE_REFERENCES = (
    ("attachments", "storage_key"),
    ("attachments", "thumbnail_key"),
    ("certificates", "pdf_key"),
    ("certificate_versions", "pdf_key"),
    ("change_requests", "proof_photo_key"),
    ("change_requests", "proof_thumbnail_key"),
    ("import_jobs", "file_key"),
)


class BackupError(RuntimeError):
    """The backup or restore cannot be trusted; the message says why."""


def libpq_url(database_url: str) -> str:
    """The URL for pg_dump/pg_restore (no SQLAlchemy driver suffix)."""
    url = sa.make_url(database_url)
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _engine(database_url: str) -> sa.Engine:
    # The README's postgresql:// form too, as the app reads it (psycopg 3, not psycopg2).
    return sa.create_engine(sqlalchemy_url(database_url), poolclass=sa.pool.NullPool)


# Schemas of PostgreSQL itself; every other schema in the database is the app's.
_SYSTEM_SCHEMAS = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'"
)


def table_counts(conn: sa.Connection) -> dict[str, int]:
    """Rows per table (``schema.table``) of every schema the app owns.

    Each monthly partition of the filling and trace records is counted on its own (they
    hold most of the data); the partitioned parents, which store nothing, are not.
    """
    rows = conn.execute(
        sa.text(
            "SELECT n.nspname, c.relname FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            f"WHERE c.relkind IN ('r', 'm') AND {_SYSTEM_SCHEMAS} "
            "ORDER BY n.nspname, c.relname"
        )
    ).all()
    return {
        f"{schema}.{name}": conn.scalar(sa.text(f'SELECT count(*) FROM "{schema}"."{name}"'))
        for schema, name in rows
    }


def _referenced_keys(conn: sa.Connection) -> set[str]:
    keys: set[str] = set()
    for table, column in FILE_REFERENCES:
        keys.update(
            conn.scalars(
                sa.text(f'SELECT "{column}" FROM "{table}" WHERE "{column}" IS NOT NULL')
            ).all()
        )
    return keys


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def storage_checksums(storage_dir: Path) -> dict[str, str]:
    """sha256 of every stored file by key (a writer's leftover temp files excluded)."""
    if not storage_dir.exists():
        return {}
    return {
        path.relative_to(storage_dir).as_posix(): _sha256(path)
        for path in sorted(storage_dir.rglob("*"))
        if path.is_file() and not path.name.startswith(".tmp-")
    }


def backup(database_url: str, storage_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Write a consistent backup to ``out_dir`` (created; must not hold a backup yet)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if (out_dir / "manifest.json").exists():
        raise BackupError(f"{out_dir} already holds a backup")
    engine = _engine(database_url)
    try:
        with (
            engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn,
            conn.begin(),
        ):
            conn.execute(sa.text("SET TRANSACTION READ ONLY"))
            snapshot = conn.scalar(sa.text("SELECT pg_export_snapshot()"))
            dump = subprocess.run(
                [
                    "pg_dump",
                    "--format=custom",
                    f"--snapshot={snapshot}",
                    f"--file={out_dir / 'database.dump'}",
                    libpq_url(database_url),
                ],
                capture_output=True,
                text=True,
            )
            if dump.returncode != 0:
                raise BackupError(f"pg_dump failed: {dump.stderr.strip()}")
            counts = table_counts(conn)
            referenced = _referenced_keys(conn)
    finally:
        engine.dispose()

    # Storage after the dump: every file the dump names was written before its row committed.
    files = storage_checksums(storage_dir)
    with tarfile.open(out_dir / "storage.tar", "w") as tar:
        for key in files:
            tar.add(storage_dir / key, arcname=key, recursive=False)
    manifest = {
        "created_at": datetime.now(UTC).isoformat(),
        "tables": counts,
        "files": files,
        "missing_files": sorted(referenced - set(files)),
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
    return manifest


def verify(database_url: str, storage_dir: Path, manifest: dict[str, Any]) -> list[str]:
    """Differences between a database + storage folder and a backup's manifest."""
    problems = []
    engine = _engine(database_url)
    try:
        with engine.connect() as conn:
            counts = table_counts(conn)
    finally:
        engine.dispose()
    for table, expected in manifest["tables"].items():
        if table not in counts:
            problems.append(f"table {table}: missing, backup has {expected} rows")
        elif counts[table] != expected:
            problems.append(f"table {table}: {counts[table]} rows, backup has {expected}")
    for table in sorted(set(counts) - set(manifest["tables"])):
        problems.append(f"table {table}: not in the backup")
    files = storage_checksums(storage_dir)
    for key, digest in manifest["files"].items():
        if files.get(key) != digest:
            problems.append(f"file {key}: checksum differs or file missing")
    return problems


def restore(database_url: str, storage_dir: Path, backup_dir: Path) -> dict[str, Any]:
    """Restore a backup into an EMPTY database and an empty storage folder, then verify."""
    manifest = json.loads((backup_dir / "manifest.json").read_text())
    engine = _engine(database_url)
    try:
        with engine.connect() as conn:
            if table_counts(conn):
                raise BackupError("the target database is not empty; restore needs a fresh one")
    finally:
        engine.dispose()
    if storage_dir.exists() and any(storage_dir.iterdir()):
        raise BackupError(f"the storage folder {storage_dir} is not empty")

    result = subprocess.run(
        [
            "pg_restore",
            "--no-owner",
            "--exit-on-error",
            f"--dbname={libpq_url(database_url)}",
            str(backup_dir / "database.dump"),
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise BackupError(f"pg_restore failed: {result.stderr.strip()}")
    storage_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(backup_dir / "storage.tar") as tar:
        tar.extractall(storage_dir, filter="data")  # no absolute paths, links or devices
    problems = verify(database_url, storage_dir, manifest)
    if problems:
        raise BackupError("restored copy differs from the backup:\n" + "\n".join(problems))
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m regbackoffice.backup")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("backup", "restore"):
        command = sub.add_parser(name)
        command.add_argument("--database-url", default=os.environ.get("REGBO_DATABASE_URL"))
        command.add_argument("--storage-dir", default=os.environ.get("REGBO_STORAGE_DIR"))
    sub.choices["backup"].add_argument("--out", required=True, type=Path)
    sub.choices["restore"].add_argument("--from", dest="source", required=True, type=Path)
    args = parser.parse_args(argv)
    if not args.database_url or not args.storage_dir:
        parser.error("--database-url and --storage-dir (or REGBO_DATABASE_URL/_STORAGE_DIR)")
    try:
        if args.command == "backup":
            manifest = backup(args.database_url, Path(args.storage_dir), args.out)
            print(
                f"backup written to {args.out}: {sum(manifest['tables'].values())} rows, "
                f"{len(manifest['files'])} files"
            )
            for key in manifest["missing_files"]:
                print(f"warning: {key} is referenced but was deleted before the copy")
        else:
            manifest = restore(args.database_url, Path(args.storage_dir), args.source)
            print(
                f"restored and verified: {sum(manifest['tables'].values())} rows, "
                f"{len(manifest['files'])} files"
            )
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
