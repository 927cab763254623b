"""Answers as the CLI shows them: choice labels, lists joined, yes/no, and masks."""

from __future__ import annotations

import json
from typing import Any

from fieldsync.core.forms import Field

NONE = "—"  # no answer
MASK = "•••"  # a sensitive value, in text and in JSON alike
MASKED = f"{MASK} (sensitive; --show-sensitive to see)"


YES_NO = {"en": ("no", "yes"), "ar": ("لا", "نعم")}  # as Field.parse reads them


def value_text(field: Field | None, value: Any, lang: str = "en") -> str:
    """``value`` in words: a choice by its label (in ``lang``, "en" or "ar"), a list of
    choices joined, yes/no; anything the form does not describe (or a whole entry) as compact
    JSON. Not yet made safe."""
    if value is None:
        return NONE
    if isinstance(value, bool):
        return YES_NO.get(lang, YES_NO["en"])[value]
    if field is not None and isinstance(value, list) and field.kind != "items":
        return ", ".join(field.choice_label(v, lang) for v in value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return field.choice_label(value, lang) if field is not None else str(value)


def masked_json(value: Any) -> Any:
    """A sensitive value in ``--json``: whether there was one stays visible, never what."""
    return None if value is None else MASK
