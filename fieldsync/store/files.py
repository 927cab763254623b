"""Files on disk: atomic replacement, durable writes, and destroying keys."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from fieldsync.durable import fsync_dir


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so a crash leaves either the old or the new file."""
    write_chunks_atomic(path, [data])


def write_chunks_atomic(path: Path, chunks: Iterable[bytes], *, tmp_dir: Path | None = None) -> int:
    """Stream ``chunks`` into ``path`` via a temporary file in the same folder; returns bytes."""
    folder = tmp_dir or path.parent
    tmp = folder / f".tmp-{secrets.token_hex(8)}"
    written = 0
    try:
        with open(tmp, "xb") as out:
            os.chmod(tmp, 0o600)
            for chunk in chunks:
                out.write(chunk)
                written += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)
    return written


def destroy(path: Path) -> None:
    """Overwrite a small key file with random bytes, flush it, then unlink it.

    On flash storage and journaling file systems the old blocks may survive an overwrite; that is
    why the keys, not the data, are what we destroy: without the vault key the rest is noise.
    """
    if not path.exists():
        return
    overwrite(path)
    path.unlink()
    fsync_dir(path.parent)


def overwrite(path: Path) -> None:
    """Random bytes over a file where it lies, durably; the file stays, to be replaced."""
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.write(secrets.token_bytes(max(size, 1)))
        handle.flush()
        os.fsync(handle.fileno())


def make_private_dir(path: Path) -> None:
    """Make ``path`` and any missing parents, each exactly 0700 whatever the umask: ``mkdir``
    gives its mode to the last folder only, the parents get 0777 less the umask."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700)
        os.chmod(folder, 0o700)


def make_private_file(path: Path) -> None:
    """Create an empty file 0600 if it is not there, so what opens it after (SQLite, which also
    gives its -wal and -shm files the database's mode) starts from owner-only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.close(fd)
