"""A store's encrypted key-value pairs: drafts, settings and record settings, as functions over
an open store (as store/custody.py is written).

    drafts            DraftRow(id, nonce, ct), under derive(epoch key, LABEL_DRAFT),
                      label LABEL_DRAFT || id
    settings          MetaRow("setting:NAME", hex(nonce || AEAD)), under
                      derive(vault key, LABEL_SETTINGS), label LABEL_SETTINGS || NAME
    record settings   MetaRow("record-setting:NAME", "RECORD:" hex(nonce || AEAD)), under
                      derive(epoch key, LABEL_RECORD_SETTING),
                      label LABEL_RECORD_SETTING || NAME || 0x00 || RECORD

Each plaintext is the canonical JSON of a dictionary (core/encoding.py). Drafts and record
settings are under the epoch key, so a wipe that forgets a record destroys their copies too;
settings are under the vault key and change with the passphrase.

The store keeps two things these functions share with it: its settings key (``settings_key``,
which a passphrase change replaces) and the settings this process read or wrote
(``settings_cache``: one process owns a store at a time, under its write lock). The ``rekey_*``
functions re-seal rows inside a transaction of the store's, when its keys change.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Iterator, Set
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import insert
from sqlmodel import Session, col, select

from fieldsync.core import crypto, encoding
from fieldsync.errors import DecryptionFailed
from fieldsync.store.db import DraftRow, MetaRow, db_errors, in_chunks
from fieldsync.store.epochs import Epoch


class KeyValueHome(Protocol):
    """What these functions use of a ``Store`` (store.py imports this module: not named here)."""

    home: Path
    settings_key: bytes  # settings are under it (a passphrase change replaces it)
    settings_cache: dict[str, dict[str, Any]]  # each setting read or written by this process

    @property
    def epoch(self) -> Epoch: ...

    def session(self) -> Session: ...


LABEL_DRAFT = b"fieldsync/draft/v1"
LABEL_SETTINGS = b"fieldsync/settings/v1"
LABEL_RECORD_SETTING = b"fieldsync/record-setting/v1"
SETTING = "setting:"  # meta rows: a setting, under the vault key
RECORD_SETTING = "record-setting:"  # meta rows: a record's settings, under the epoch key
RESEALED = 50  # record settings re-sealed at a time (each up to a version's size)


def draft_key(epoch: Epoch) -> bytes:
    """Drafts are under the epoch key: a wipe destroys those deleted before it (a saved
    record's)."""
    return crypto.derive_key(epoch.key, LABEL_DRAFT)


def settings_key(vault_key: bytes) -> bytes:
    return crypto.derive_key(vault_key, LABEL_SETTINGS)


# --- drafts ------------------------------------------------------------------------------


@db_errors
def save_draft(store: KeyValueHome, draft_id: str, payload: dict[str, Any]) -> None:
    nonce, ct = crypto.seal_with_key(
        draft_key(store.epoch), encoding.encode(payload), LABEL_DRAFT + draft_id.encode()
    )
    with store.session() as session, session.begin():
        session.merge(DraftRow(id=draft_id, nonce=nonce, ct=ct))


@db_errors
def drafts(store: KeyValueHome) -> list[tuple[str, dict[str, Any]]]:
    key = draft_key(store.epoch)
    with store.session() as session:
        rows = session.exec(select(DraftRow)).all()
    found = []
    for row in rows:
        plain = crypto.open_with_key(
            key, row.nonce, row.ct, LABEL_DRAFT + row.id.encode(), what="a draft"
        )
        found.append((row.id, encoding.decode(plain, what="a draft")))
    return found


@db_errors
def delete_draft(store: KeyValueHome, draft_id: str) -> None:
    with store.session() as session, session.begin():
        row = session.get(DraftRow, draft_id)
        if row is not None:
            session.delete(row)


def rekey_drafts(session: Session, old: bytes, new: bytes) -> None:
    """Re-seal every draft from key ``old`` to ``new``; one that does not open stays."""
    for draft in session.exec(select(DraftRow)).all():
        label = LABEL_DRAFT + draft.id.encode()
        with contextlib.suppress(DecryptionFailed):
            plain = crypto.open_with_key(old, draft.nonce, draft.ct, label, what="a draft")
            draft.nonce, draft.ct = crypto.seal_with_key(new, plain, label)
            session.add(draft)


# --- settings (under the vault key) ------------------------------------------------------


@db_errors
def save_setting(store: KeyValueHome, name: str, value: dict[str, Any]) -> None:
    """Keep a setting encrypted: even which server a laptop reports to is sensitive."""
    with store.session() as session, session.begin():
        session.merge(sealed_setting(store, name, value))
    store.settings_cache[name] = json.loads(
        encoding.encode(value)
    )  # a copy the caller cannot change


@db_errors
def delete_settings(store: KeyValueHome, names: list[str]) -> None:
    with store.session() as session, session.begin():
        for row in _rows(session, names):
            session.delete(row)
    for name in names:
        store.settings_cache.pop(name, None)


@db_errors
def setting(store: KeyValueHome, name: str) -> dict[str, Any] | None:
    if name in store.settings_cache:  # one process owns a store at a time (the write lock)
        return copy.deepcopy(store.settings_cache[name])
    with store.session() as session:
        row = session.get(MetaRow, SETTING + name)
    if row is None:
        return None
    value = _open_setting(store.settings_key, name, row.value)
    store.settings_cache[name] = value
    return copy.deepcopy(value)


def sealed_setting(store: KeyValueHome, name: str, value: dict[str, Any]) -> MetaRow:
    """The row that keeps ``value`` as the setting ``name``, for a caller's own transaction
    (it does not change what this process holds in memory)."""
    nonce, ct = crypto.seal_with_key(
        store.settings_key, encoding.encode(value), LABEL_SETTINGS + name.encode()
    )
    return MetaRow(key=SETTING + name, value=(nonce + ct).hex())


def _open_setting(key: bytes, name: str, sealed_hex: str) -> dict[str, Any]:
    sealed = bytes.fromhex(sealed_hex)
    plain = crypto.open_with_key(
        key,
        sealed[: crypto.NONCE_BYTES],
        sealed[crypto.NONCE_BYTES :],
        LABEL_SETTINGS + name.encode(),
        what=f"the setting {name!r}",
    )
    value = encoding.decode(plain, what=f"the setting {name!r}")
    assert isinstance(value, dict)
    return value


def rekey_settings(session: Session, old: bytes, new: bytes) -> None:
    """Re-seal every setting from settings key ``old`` to ``new``; one that does not open
    stays as it is."""
    rows = select(MetaRow).where(col(MetaRow.key).startswith(SETTING))
    for meta in session.exec(rows).all():
        label = LABEL_SETTINGS + meta.key.removeprefix(SETTING).encode()
        with contextlib.suppress(DecryptionFailed, ValueError):
            sealed = bytes.fromhex(meta.value)
            nonce, ct = sealed[: crypto.NONCE_BYTES], sealed[crypto.NONCE_BYTES :]
            plain = crypto.open_with_key(old, nonce, ct, label, what="a setting")
            meta.value = b"".join(crypto.seal_with_key(new, plain, label)).hex()
            session.add(meta)


def _rows(session: Session, names: list[str], prefix: str = SETTING) -> Iterator[MetaRow]:
    for chunk in in_chunks([prefix + name for name in names]):
        yield from session.exec(select(MetaRow).where(col(MetaRow.key).in_(chunk))).all()


# --- record settings (under the epoch key) -----------------------------------------------
# A record's settings: bytes kept for one record (a version a pull set aside), sealed under
# the epoch key like drafts, so that the wipe that forgets the record destroys every copy
# of them, even those left in freed pages and old WAL frames. None is held in memory.


@db_errors
def save_record_settings(
    store: KeyValueHome, values: dict[str, tuple[str, dict[str, Any]]]
) -> None:
    """Keep ``{name: (record, value)}`` in one transaction."""
    epoch = store.epoch
    rows = [
        {"key": RECORD_SETTING + name, "value": _seal_record_setting(epoch, name, r, value)}
        for name, (r, value) in values.items()
    ]
    with store.session() as session, session.begin():
        replace = insert(MetaRow).prefix_with("OR REPLACE")  # one statement, not a merge each
        session.execute(replace, rows)


@db_errors
def record_settings(store: KeyValueHome, names: list[str]) -> dict[str, dict[str, Any]]:
    """Those of the named record settings that exist (a row that does not open raises)."""
    epoch = store.epoch
    found = {}
    with store.session() as session:
        for row in _rows(session, names, RECORD_SETTING):
            name = row.key.removeprefix(RECORD_SETTING)
            record, _, sealed = row.value.rpartition(":")
            found[name] = _open_record_setting(epoch, name, record, sealed)
    return found


@db_errors
def delete_record_settings(store: KeyValueHome, names: list[str]) -> None:
    with store.session() as session, session.begin():
        for row in _rows(session, names, RECORD_SETTING):
            session.delete(row)


@db_errors
def move_to_record_settings(store: KeyValueHome, records: dict[str, str]) -> int:
    """Move settings kept under the vault key by an earlier fieldsync (``{name: record}``)
    to record settings, in one transaction; returns how many there were."""
    epoch = store.epoch
    with store.session() as session:  # mostly none: no write lock for nothing
        if not any(True for _ in _rows(session, list(records))):
            return 0
    moved = 0
    with store.session() as session, session.begin():
        for row in list(_rows(session, list(records))):
            name = row.key.removeprefix(SETTING)
            value = _open_setting(store.settings_key, name, row.value)
            sealed = _seal_record_setting(epoch, name, records[name], value)
            session.merge(MetaRow(key=RECORD_SETTING + name, value=sealed))
            session.delete(row)
            store.settings_cache.pop(name, None)
            moved += 1
    return moved


def rekey_record_settings(
    session: Session, old: Epoch, new: Epoch, forgotten: Set[str] = frozenset()
) -> None:
    """Re-seal every record setting under the new epoch key, a few at a time, except those
    of ``forgotten`` records: they are deleted, never re-sealed, since a copy under the new
    key would outlive the wipe in the WAL's old frames. A row that no longer opens stays."""
    is_record_setting = col(MetaRow.key).startswith(RECORD_SETTING)
    names = list(session.exec(select(MetaRow.key).where(is_record_setting)).all())
    for some in in_chunks(names, RESEALED):
        rows = session.exec(select(MetaRow).where(col(MetaRow.key).in_(some))).all()
        for row in rows:
            record, _, sealed = row.value.rpartition(":")
            if record in forgotten:
                session.delete(row)
                continue
            name = row.key.removeprefix(RECORD_SETTING)
            with contextlib.suppress(DecryptionFailed, ValueError):
                plain = _open_record_setting(old, name, record, sealed)
                row.value = _seal_record_setting(new, name, record, plain)
                session.add(row)
        session.flush()
        for row in rows:
            if row in session:
                session.expunge(row)  # held no longer than its chunk


def _record_setting_label(name: str, record: str) -> bytes:
    return LABEL_RECORD_SETTING + name.encode() + b"\x00" + record.encode()


def _seal_record_setting(epoch: Epoch, name: str, record: str, value: dict[str, Any]) -> str:
    """``record:hex(nonce || AEAD)``: the record in the clear (entry headers show it anyway),
    so a wipe deletes a forgotten record's settings without opening them."""
    key = crypto.derive_key(epoch.key, LABEL_RECORD_SETTING)
    plain = encoding.encode(value)
    nonce, ct = crypto.seal_with_key(key, plain, _record_setting_label(name, record))
    return f"{record}:{(nonce + ct).hex()}"


def _open_record_setting(epoch: Epoch, name: str, record: str, sealed_hex: str) -> dict[str, Any]:
    key = crypto.derive_key(epoch.key, LABEL_RECORD_SETTING)
    sealed = bytes.fromhex(sealed_hex)
    plain = crypto.open_with_key(
        key,
        sealed[: crypto.NONCE_BYTES],
        sealed[crypto.NONCE_BYTES :],
        _record_setting_label(name, record),
        what=f"the setting {name!r} of record {record}",
    )
    value = encoding.decode(plain, what=f"the setting {name!r} of record {record}")
    assert isinstance(value, dict)
    return value
