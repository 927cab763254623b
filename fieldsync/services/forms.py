"""The forms this installation knows: the built-in ones shipped from ``schemas/``."""

from __future__ import annotations

import functools
import json
from importlib import resources
from pathlib import Path

from fieldsync.core import forms
from fieldsync.core.forms import Form
from fieldsync.errors import FormNotFound


def _schema_dir() -> Path:
    # In a wheel the schemas ship as fieldsync/_schemas; in a source checkout they sit at the
    # top of the repository.
    packaged = resources.files("fieldsync").joinpath("_schemas")
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "schemas"


@functools.cache
def builtin_forms() -> dict[str, Form]:
    """Every built-in form by id, at its newest version."""
    found: dict[str, Form] = {}
    for path in sorted(_schema_dir().glob("*.json")):
        form = forms.load(json.loads(path.read_text(encoding="utf-8")))
        if form.id not in found or form.version > found[form.id].version:
            found[form.id] = form
    return found


@functools.cache
def _all_versions() -> dict[str, Form]:
    versions = {}
    for path in sorted(_schema_dir().glob("*.json")):
        form = forms.load(json.loads(path.read_text(encoding="utf-8")))
        versions[form.ref] = form
    return versions


def get_form(name: str) -> Form:
    """A form by id (``incident``: newest version) or by reference (``incident@1``)."""
    name = name.strip().lower()
    form = _all_versions().get(name) if "@" in name else builtin_forms().get(name)
    if form is None:
        known = ", ".join(sorted(builtin_forms()))
        raise FormNotFound(f"there is no form {name!r} (known forms: {known})")
    return form
