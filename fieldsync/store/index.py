"""The record index: one encrypted row per record, so ``list`` decrypts no entries.

It is a cache of what the entries say (form, summary, counts, times); ``check --repair``
rebuilds it from them. Each row is sealed under a subkey of the vault key with the record id in
the associated data, so a row cannot be moved to another record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from fieldsync.core import clock, crypto, encoding
from fieldsync.core.clock import HLC
from fieldsync.core.ids import is_hex32
from fieldsync.errors import FieldsyncError

LABEL_INDEX = b"fieldsync/index/v1"


@dataclass(frozen=True)
class IndexEntry:
    record: str
    heads: tuple[str, ...]
    form: str = ""
    summary: str = ""
    created: HLC = clock.ZERO
    updated: HLC = clock.ZERO
    versions: int = 0
    attachments: int = 0
    conflict: bool = False  # heads whose changes collide: a person must resolve them
    problem: str | None = None


class IndexCodec:
    def __init__(self, vault_key: bytes) -> None:
        self._key = crypto.derive_key(vault_key, LABEL_INDEX)

    def seal(self, entry: IndexEntry) -> tuple[bytes, bytes]:
        """``(nonce, ciphertext)`` of an index row (the heads are stored beside it, readable)."""
        value = {
            "attachments": entry.attachments,
            "conflict": entry.conflict,
            "created": entry.created.to_json(),
            "form": entry.form,
            "summary": entry.summary,
            "updated": entry.updated.to_json(),
            "versions": entry.versions,
        }
        return crypto.seal_with_key(
            self._key, encoding.encode(value), LABEL_INDEX + entry.record.encode()
        )

    def open(self, record: str, heads_json: str, nonce: bytes, ct: bytes) -> IndexEntry:
        """The row, or an ``IndexEntry`` whose ``problem`` says why it cannot be read."""
        heads = _heads(heads_json)
        if heads is None:  # the readable column was damaged: a problem row, not a crash
            return IndexEntry(
                record, (), problem=f"index of record {record}: its heads are damaged"
            )
        try:
            plain = crypto.open_with_key(
                self._key,
                nonce,
                ct,
                LABEL_INDEX + record.encode(),
                what=f"the index of record {record}",
            )
            # Authenticated under our own key just now: no need for the strict canonical parse.
            value = json.loads(plain)
            return IndexEntry(
                record=record,
                heads=heads,
                form=value["form"],
                summary=value["summary"],
                created=HLC.from_json(value["created"]),
                updated=HLC.from_json(value["updated"]),
                versions=value["versions"],
                attachments=value["attachments"],
                conflict=bool(value.get("conflict", False)),
            )
        except (FieldsyncError, KeyError, TypeError, ValueError) as exc:
            return IndexEntry(record, heads, problem=f"index of record {record}: {exc}")


def _heads(heads_json: str) -> tuple[str, ...] | None:
    try:
        heads = json.loads(heads_json)
    except (TypeError, ValueError):
        return None
    if not isinstance(heads, list) or not all(is_hex32(h) for h in heads):
        return None
    return tuple(heads)
