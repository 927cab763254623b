"""Linked records: record ids in a form's ``x-records`` fields, completed from a unique prefix
against this store (the form layer cannot: it has no store)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fieldsync.core.forms import Field, Form, get_path
from fieldsync.core.ids import is_record_id
from fieldsync.errors import InputError, RecordNotFound
from fieldsync.store.store import Store

Link = Callable[[Field, Any], Any]  # a field's typed value, its record ids completed


def linker(store: Store) -> Link:
    return lambda field, value: link_value(store, field, value)


def link_records(store: Store, form: Form, answers: dict[str, Any]) -> None:
    """Complete, in place, each record id given as a unique prefix in a field marked
    ``x-records`` (an interview's linked incidents). The form layer cannot: it has no store."""
    for described in form.walk():
        container = get_path(answers, described.path[:-1]) if described.links_records else None
        if isinstance(container, dict) and described.name in container:
            container[described.name] = link_value(store, described, container[described.name])


def link_value(store: Store, described: Field, value: Any) -> Any:
    """``value`` of ``described`` with its record ids completed; a full id is kept as it is given,
    since it may name a record this device has not seen."""
    if not described.links_records:
        return value
    if isinstance(value, list):
        return [_full_id(store, described, v) for v in value]
    return _full_id(store, described, value)


def _full_id(store: Store, described: Field, value: Any) -> Any:
    if not isinstance(value, str) or is_record_id(value.strip().lower()):
        return value.strip().lower() if isinstance(value, str) else value
    if len(value.strip()) < 8:  # as `list` prints them: shorter may name another record here
        raise InputError(
            f"{described.label}: {value.strip()!r} is too short to name a record (8 characters "
            "or more, as 'fieldsync list' prints them)"
        )
    try:
        return store.resolve_record(value)
    except RecordNotFound as exc:
        raise InputError(
            f"{described.label}: {exc.message}",
            hint="Give a full record id, or a unique prefix of one in this store "
            "('fieldsync list' shows them).",
        ) from None
