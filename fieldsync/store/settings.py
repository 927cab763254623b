"""Typed settings (core/settings.py) loaded from and saved to a store, sealed as
store/keyvalue.py keeps every setting."""

from __future__ import annotations

from typing import TypeVar

from fieldsync.core import settings
from fieldsync.core.settings import Setting
from fieldsync.store import keyvalue
from fieldsync.store.keyvalue import KeyValueHome

S = TypeVar("S", bound=Setting)


def load(store: KeyValueHome, kind: type[S]) -> S | None:
    """The store's ``kind`` setting, or None if it has none."""
    value = keyvalue.setting(store, kind.NAME)
    return None if value is None else settings.decode(kind, value)


def save(store: KeyValueHome, value: Setting) -> None:
    keyvalue.save_setting(store, value.NAME, settings.encode(value))
