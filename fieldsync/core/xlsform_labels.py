"""Labels in an XLSForm's language columns (``label::Arabic (ar)``) as a fieldsync form's:
``title`` from English (or the column without a language), ``x-title-ar`` from Arabic, and
every language by its code in ``x-labels`` when there are others."""

from __future__ import annotations

import re
from typing import Any

LANGUAGES = {"english": "en", "arabic": "ar", "french": "fr", "spanish": "es", "kurdish": "ku"}


def of(element: dict[str, Any], key: str, default: str = "") -> dict[str, Any]:
    """The labels of a question or choice (``key``: label or hint) as a form writes them."""
    found = element.get(key)
    if not found:
        return {"title": default} if default else {}
    if isinstance(found, str):
        return {"title": found}
    by_code = {code(language): str(text) for language, text in found.items() if text}
    first = by_code.get("en") or by_code.get("default") or next(iter(by_code.values()), "")
    labels: dict[str, Any] = {"title": first or default}
    if "ar" in by_code:
        labels["x-title-ar"] = by_code["ar"]
    if set(by_code) - {"en", "ar", "default"}:  # a language beyond the two labels
        labels["x-labels"] = dict(sorted(by_code.items()))
    return labels


def code(language: str) -> str:
    """``Arabic (ar)`` -> ``ar``; ``Arabic`` -> ``ar`` too; ``default`` stays; another name
    without a code, lowercased."""
    found = re.search(r"\(([A-Za-z-]{2,12})\)\s*$", language)
    name = language.strip().lower()
    return found[1].lower() if found else LANGUAGES.get(name, name)


def english(message: Any) -> str:
    """A message in English (or the one without a language), from one or many columns."""
    if isinstance(message, str):
        return message
    by_code = {code(k): str(v) for k, v in message.items()}
    return by_code.get("en") or by_code.get("default") or next(iter(by_code.values()), "")
