"""Drafts: what has been typed into an unfinished ``new``, kept encrypted after every field."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from fieldsync.store.store import Store


@dataclass
class Draft:
    id: str
    form: str  # form reference, e.g. incident@1
    answers: dict[str, Any]
    asked: set[str] = field(default_factory=set)  # dotted fields answered or skipped
    saved_ms: int = 0

    def save(self, store: Store) -> None:
        self.saved_ms = store.now_ms()
        store.save_draft(
            self.id,
            {
                "answers": self.answers,
                "asked": sorted(self.asked),
                "form": self.form,
                "saved_ms": self.saved_ms,
            },
        )


def start(store: Store, form_ref: str) -> Draft:
    return Draft(secrets.token_hex(16), form_ref, {}, set(), store.now_ms())


def find(store: Store, form_ref: str) -> list[Draft]:
    """Unfinished drafts for a form, newest first."""
    found = [
        Draft(
            draft_id,
            payload["form"],
            payload["answers"],
            set(payload.get("asked", [])),
            payload["saved_ms"],
        )
        for draft_id, payload in store.drafts()
        if payload.get("form") == form_ref
    ]
    return sorted(found, key=lambda d: d.saved_ms, reverse=True)


def discard(store: Store, draft: Draft) -> None:
    store.delete_draft(draft.id)
