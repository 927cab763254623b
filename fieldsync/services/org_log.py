"""``fieldsync admin org-log``: the organisation's log as a file, for ``evidence-verify
--org-log``, which checks a package against the log as it stands now (a key retired or a
member revoked since signs no package after)."""

from __future__ import annotations

from pathlib import Path

from fieldsync.core import evidence
from fieldsync.errors import OutputPathError
from fieldsync.store import files, orgkeys
from fieldsync.store.store import Store


def as_file(store: Store) -> tuple[int, bytes]:
    """The organisation's log as this store last followed it, as ``evidence-verify
    --org-log`` reads it: how many statements, and the file's bytes."""
    state = orgkeys.followed(store)
    held = orgkeys.statements(store)[: state.seq if state else 0]
    return len(held), evidence.log_file(held) + b"\n"


def write(path: Path, document: bytes) -> None:
    try:
        files.write_atomic(path, document)
    except OSError as exc:
        raise OutputPathError(f"cannot write {str(path)!r}: {exc.strerror}") from exc
