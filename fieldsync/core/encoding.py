"""Canonical JSON: the one text encoding of every signed or encrypted structure.

The rules (docs/format.md has examples):

- UTF-8, no byte order mark, no insignificant white space;
- object keys sorted by code point, no duplicate keys;
- integers only, within +-(2**53 - 1) so every JSON reader agrees on them; no floats, no NaN;
- strings escaped as Python's ``json`` does with ``ensure_ascii=False``: ``"`` and ``\\`` and the
  control characters below U+0020 (``\\b \\f \\n \\r \\t`` short, others ``\\u00xx``); every
  other character is written as itself.

``decode`` is strict: it refuses anything that would not re-encode to the very same bytes, so one
value has exactly one encoding and a signature over the bytes is a signature over the value.
"""

from __future__ import annotations

import json
from typing import Any

from fieldsync.errors import MalformedData

MAX_SAFE_INTEGER = 2**53 - 1
MAX_DEPTH = 32

JSONValue = Any  # None | bool | int | str | list[JSONValue] | dict[str, JSONValue]


def encode(value: JSONValue) -> bytes:
    """The canonical bytes of ``value``; raises ``ValueError`` for what JSON cannot hold here."""
    _check(value, depth=0)
    return json.dumps(
        value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
    ).encode("utf-8")


def decode(data: bytes, *, what: str = "data", max_bytes: int = 16 * 1024 * 1024) -> JSONValue:
    """Parse canonical JSON, refusing anything not in canonical form."""
    if len(data) > max_bytes:
        raise MalformedData(f"{what} is too large ({len(data)} bytes, limit {max_bytes})")
    try:
        text = data.decode("utf-8")
        value = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_float=_no_float,
            parse_constant=_no_float,
        )
        canonical = encode(value)
    except (ValueError, RecursionError) as exc:  # UnicodeError is a ValueError
        raise MalformedData(f"{what} is not valid canonical JSON ({_short(exc)})") from exc
    if canonical != data:
        raise MalformedData(f"{what} is not in canonical form")
    return value


def parse_input(text: str) -> JSONValue:
    """JSON that a person or a file gave us: any layout, but no floats and not too deep.

    Raises ``ValueError`` (with a message for the person) for anything else.
    """
    try:
        value = json.loads(
            text, object_pairs_hook=_no_duplicates, parse_float=_no_float, parse_constant=_no_float
        )
        _check(value, depth=0)
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels") from None
    return value


def _check(value: JSONValue, *, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise ValueError("integer outside the safe range")
        return
    if isinstance(value, list):
        for item in value:
            _check(item, depth=depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError("object keys must be strings")
            _check(item, depth=depth + 1)
        return
    raise ValueError(f"{type(value).__name__} values are not allowed")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_float(text: str) -> Any:
    raise ValueError(f"{text}: numbers with a fraction are not allowed; write them as text")


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
