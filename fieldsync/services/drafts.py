"""Drafts: what has been typed into an unfinished ``new`` or ``edit``, kept encrypted after
every answer, so an interruption or a refusal loses at most the answer being typed."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from fieldsync.store import keyvalue
from fieldsync.store.store import Store


@dataclass
class Draft:
    id: str
    form: str  # form reference, e.g. incident@1
    answers: dict[str, Any]
    asked: set[str] = field(default_factory=set)  # dotted fields answered or skipped
    saved_ms: int = 0
    record: str | None = None  # an edit's record; None for a new record
    changes: list[str] = field(default_factory=list)  # an edit's FIELD=VALUE, in order
    base: str | None = None  # an edit's: the version its changes were typed against

    def save(self, store: Store) -> None:
        self.saved_ms = store.now_ms()
        payload: dict[str, Any] = {
            "answers": self.answers,
            "asked": sorted(self.asked),
            "form": self.form,
            "saved_ms": self.saved_ms,
        }
        if self.record is not None:
            payload |= {"record": self.record, "changes": self.changes, "base": self.base}
        keyvalue.save_draft(store, self.id, payload)


def start(store: Store, form_ref: str, record: str | None = None, base: str | None = None) -> Draft:
    return Draft(secrets.token_hex(16), form_ref, {}, set(), store.now_ms(), record, [], base)


def find(store: Store, form_ref: str) -> list[Draft]:
    """Unfinished drafts of new records of a form, newest first."""
    return [d for d in _all(store) if d.form == form_ref and d.record is None]


def find_edit(store: Store, record: str) -> list[Draft]:
    """Unfinished edits of a record, newest first."""
    return [d for d in _all(store) if d.record == record]


def _all(store: Store) -> list[Draft]:
    found = [
        Draft(
            draft_id,
            payload["form"],
            payload["answers"],
            set(payload.get("asked", [])),
            payload["saved_ms"],
            payload.get("record"),
            list(payload.get("changes", [])),
            payload.get("base"),
        )
        for draft_id, payload in keyvalue.drafts(store)
    ]
    return sorted(found, key=lambda d: d.saved_ms, reverse=True)


def discard(store: Store, draft: Draft) -> None:
    keyvalue.delete_draft(store, draft.id)
