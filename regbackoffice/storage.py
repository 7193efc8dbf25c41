"""File storage behind one small interface: generated keys, atomic writes.

Files are never served from ``static/``: views read them through ``open`` after an
access check. The local implementation writes under ``STORAGE_DIR``; a shared object
store can replace it behind the same functions when app servers scale out.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from flask import current_app

_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789/._-")


def _root() -> Path:
    return Path(current_app.config["STORAGE_DIR"])


def new_key(folder: str, suffix: str) -> str:
    """A generated, unguessable storage key such as ``photos/ab/ab12….jpg``."""
    token = secrets.token_hex(16)
    return f"{folder}/{token[:2]}/{token}{suffix}"


def _path(key: str) -> Path:
    if not key or set(key) - _KEY_CHARS or ".." in key or key.startswith("/"):
        raise ValueError(f"invalid storage key {key!r}")
    return _root() / key


def save(key: str, data: bytes) -> None:
    """Write atomically: a temp file in the same folder, fsync, then rename."""
    path = _path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".tmp-{path.name}-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_in_transaction(key: str, data: bytes) -> None:
    """Save a file that belongs to rows of the current transaction: removed on rollback."""
    from .transaction import on_rollback

    save(key, data)
    on_rollback(lambda: delete(key))


def delete_after_commit(keys: list[str]) -> None:
    """Delete files whose rows the current transaction deletes, once it has committed."""
    from .transaction import after_commit

    def remove() -> None:
        for key in keys:
            delete(key)

    if keys:
        after_commit(remove)


def remove_temp_files(key: str) -> int:
    """Delete the temp files a killed writer of ``key`` left behind (call before rewriting)."""
    path = _path(key)
    removed = 0
    for tmp in path.parent.glob(f".tmp-{path.name}-*"):
        tmp.unlink(missing_ok=True)
        removed += 1
    return removed


def read(key: str) -> bytes:
    return _path(key).read_bytes()


def exists(key: str) -> bool:
    return _path(key).is_file()


def delete(key: str) -> None:
    _path(key).unlink(missing_ok=True)


def local_path(key: str) -> Path:
    """The file's path, for ``send_file`` (local storage only)."""
    return _path(key)
