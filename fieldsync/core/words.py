"""Counted nouns for messages: a person reads '1 version' and '3 versions', never
'version(s)', and the verb that follows can agree with the number."""

from __future__ import annotations


def count(number: int, noun: str, plural: str | None = None) -> str:
    """``count(1, "version")`` is '1 version'; ``count(3, "batch", "batches")`` '3 batches'."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


def verb(number: int, singular: str, plural: str) -> str:
    """The verb that agrees with ``number``: ``verb(1, "stays", "stay")`` is 'stays'."""
    return singular if number == 1 else plural
