"""Addresses of one answer, lists included: ``victims.individuals[2].age``.

A form names its fields by dotted names (``victims.individuals.age``); an answer inside a list
of entries needs the entry's position too. Positions are written as a person counts them, from
1 (the prompts say "Victim #2"); ``[+]`` names an entry to add at the end of a list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fieldsync.core.forms import Field, Form, get_path
from fieldsync.errors import InputError

APPEND = -1  # the step of ``[+]``: a new entry at the end of the list
_STEP = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d+|\+)\])?")

Step = str | int  # a field's name, or a 0-based position in a list (APPEND: a new one)


@dataclass(frozen=True)
class Address:
    steps: tuple[Step, ...]
    field: Field  # the form's field at the end of the steps

    @property
    def text(self) -> str:
        return shown(self.steps)


def shown(steps: tuple[Step, ...]) -> str:
    """The address as a person writes it: ``victims.individuals[2].age``."""
    parts: list[str] = []
    for step in steps:
        if isinstance(step, int):
            parts[-1] += "[+]" if step == APPEND else f"[{step + 1}]"
        else:
            parts.append(step)
    return ".".join(parts)


def locate(form: Form, text: str) -> Address:
    """Where ``text`` points in a form's answers, or an ``InputError`` that says how to write
    it: every list of entries passed through needs the entry's position."""
    steps: list[Step] = []
    names: list[str] = []
    parts = text.strip().split(".")
    for n, part in enumerate(parts):
        matched = _STEP.fullmatch(part)
        if matched is None:
            raise InputError(
                f"{text!r} is not a field name: write names with dots, and an entry of a list "
                "by its number, e.g. victims.individuals[2].age"
            )
        name, position = matched.groups()
        names.append(name)
        try:
            described = form.field(".".join(names))
        except InputError:
            raise InputError(
                f"the {form.id} form has no field {text.strip()!r}",
                hint="'fieldsync forms show FORM' lists its fields.",
            ) from None
        steps.append(name)
        last = n == len(parts) - 1
        if position is not None:
            if described.kind != "items":
                raise InputError(f"{'.'.join(names)} is not a list of entries; drop [{position}]")
            steps.append(APPEND if position == "+" else _position(position, text))
        elif described.kind == "items" and not last:
            raise InputError(
                f"{'.'.join(names)} is a list of entries: say which one by its number, e.g. "
                f"{shown((*steps, 0))}.{'.'.join(parts[n + 1 :])}"
            )
        if position == "+" and not last:
            raise InputError(f"[+] adds a whole entry: write {shown(tuple(steps))}=JSON")
    return Address(tuple(steps), described)


def _position(number: str, text: str) -> int:
    if int(number) < 1:
        raise InputError(f"entries are counted from 1 in {text!r}")
    return int(number) - 1


get = get_path  # the value at ``steps``, or None where there is none


def put(answers: dict[str, Any], steps: tuple[Step, ...], value: Any) -> None:
    """Set the value at ``steps`` (creating groups on the way); a position must name an entry
    that exists, and nothing already there of another shape is replaced."""
    container = _container(answers, steps)
    last = steps[-1]
    if isinstance(last, int):
        if last == APPEND:
            container.append(value)
        else:
            container[last] = value
    else:
        container[last] = value


def remove(answers: dict[str, Any], steps: tuple[Step, ...]) -> None:
    """Leave out the answer at ``steps`` (an entry of a list: remove it from the list)."""
    if get(answers, steps) is None:
        return
    container = _container(answers, steps)
    del container[steps[-1]]  # an int for a list, a str for a dict


def _container(answers: dict[str, Any], steps: tuple[Step, ...]) -> Any:
    current: Any = answers
    for n, step in enumerate(steps[:-1]):
        following = steps[n + 1]
        if isinstance(step, int):
            if not 0 <= step < len(current):
                raise InputError(_no_entry(steps[: n + 1], len(current)))
            current = current[step]
            continue
        wanted: type = list if isinstance(following, int) else dict
        if current.get(step) is None:
            current[step] = wanted()
        current = current[step]
        if not isinstance(current, wanted):
            raise InputError(f"{shown(steps[: n + 1])} holds a {type(current).__name__} here")
    last = steps[-1]
    if not isinstance(current, list if isinstance(last, int) else dict):
        raise InputError(f"{shown(steps[:-1]) or 'the answers'} holds a {type(current).__name__}")
    if isinstance(last, int) and last != APPEND and not 0 <= last < len(current):
        raise InputError(_no_entry(steps, len(current)))
    return current


def _no_entry(steps: tuple[Step, ...], count: int) -> str:
    listed = shown(steps[:-1])
    return (
        f"{listed} has {count} entr{'y' if count == 1 else 'ies'}, so there is no "
        f"{shown(steps)}; add one with {listed}[+]"
    )
