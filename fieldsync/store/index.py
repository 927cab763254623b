"""The record index: one encrypted row per record, so ``list`` decrypts no entries.

It is a cache of what the entries say (form, summary, counts, times); ``check --repair``
rebuilds it from them. Each row is sealed under a subkey of the epoch key (store/epochs.py, so
a wipe destroys the summaries of what it forgets) with the record id in the associated data, so
a row cannot be moved to another record.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from fieldsync.core import clock, crypto, encoding
from fieldsync.core.clock import HLC
from fieldsync.core.ids import is_hex32
from fieldsync.errors import FieldsyncError
from fieldsync.store.db import RecordRow

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
    def __init__(self, master: bytes) -> None:
        self._key = crypto.derive_key(master, LABEL_INDEX)

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

    def seal_row(self, entry: IndexEntry, row: RecordRow | None = None) -> RecordRow:
        """The index row of ``entry``: its heads readable, the rest sealed. The one builder of
        a row, for the writer and for a rebuild. ``row``: the record's row as stored, updated
        in place (its ``created_ms``, by which ``list`` sorts, stays as it is)."""
        heads = json.dumps(sorted(entry.heads))
        nonce, ct = self.seal(entry)
        if row is None:
            return RecordRow(
                record=entry.record,
                heads=heads,
                created_ms=entry.created.wall_ms,
                index_nonce=nonce,
                index_ct=ct,
            )
        row.heads, row.index_nonce, row.index_ct = heads, nonce, ct
        return row

    def open(self, record: str, heads_json: str, nonce: bytes, ct: bytes) -> IndexEntry:
        """The row, or an ``IndexEntry`` whose ``problem`` says why it cannot be read.

        This runs once per record for every ``list`` (100,000 times for a large store), so it
        does only what the row needs: one AEAD open under our own key, which authenticates the
        plaintext (no strict canonical parse after it), and plain type checks.
        """
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
            value = json.loads(plain)
            return IndexEntry(
                record,
                heads,
                _text(value["form"]),
                _text(value["summary"]),
                _hlc(value["created"]),
                _hlc(value["updated"]),
                _count(value["versions"]),
                _count(value["attachments"]),
                value.get("conflict") is True,
            )
        except (FieldsyncError, KeyError, TypeError, ValueError) as exc:
            return IndexEntry(record, heads, problem=f"index of record {record}: {exc}")


def _text(value: object) -> str:
    if type(value) is not str:
        raise TypeError("a text column is not text")
    return value


def _count(value: object) -> int:
    if type(value) is not int or value < 0:
        raise TypeError("a count is not a whole number")
    return value


def _hlc(value: object) -> HLC:
    if type(value) is not list or len(value) != 2:
        raise TypeError("an HLC timestamp is [wall_ms, counter]")
    wall, counter = value
    if type(wall) is not int or type(counter) is not int or wall < 0 or counter < 0:
        raise TypeError("an HLC timestamp is [wall_ms, counter] with two whole numbers")
    return HLC(wall, counter)


_HEADS = re.compile(r'\["[0-9a-f]{64}"(?:, "[0-9a-f]{64}")*\]')


def _heads(heads_json: str) -> tuple[str, ...] | None:
    if type(heads_json) is str and _HEADS.fullmatch(heads_json):  # as the writer writes them
        return tuple(heads_json[2:-2].split('", "'))
    try:
        heads = json.loads(heads_json)
    except (TypeError, ValueError):
        return None
    if not isinstance(heads, list) or not all(is_hex32(h) for h in heads):
        return None
    return tuple(heads)
