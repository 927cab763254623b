"""Typed settings (core/settings.py) loaded from and saved to a store, sealed as
store/keyvalue.py keeps every setting."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from fieldsync.core import settings
from fieldsync.core.settings import Setting
from fieldsync.store import keyvalue

if TYPE_CHECKING:  # store.py imports this module: the class is only named here
    from fieldsync.store.store import Store

S = TypeVar("S", bound=Setting)


def load(store: Store, kind: type[S]) -> S | None:
    """The store's ``kind`` setting, or None if it has none."""
    value = keyvalue.setting(store, kind.NAME)
    return None if value is None else settings.decode(kind, value)


def save(store: Store, value: Setting) -> None:
    keyvalue.save_setting(store, value.NAME, settings.encode(value))
