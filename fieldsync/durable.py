"""Durability on disk that every layer shares: the store's files and the server's blobs.

A bottom-layer module, like errors.py: it imports no other fieldsync module, so that store/ and
server/, which may not import each other, use one copy of it.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries, so that a file just created or renamed in it survives a crash."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
