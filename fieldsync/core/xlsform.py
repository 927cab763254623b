"""An XLSForm, as pyxform reads it, translated into a fieldsync form (JSON Schema 2020-12 with
fieldsync's annotations: docs/forms.md), or refused naming the sheet, row and column of what
cannot be translated. Nothing is dropped silently: a rule left out would let through what the
organisation meant to stop, and a question left out would never be asked.

The reading is pyxform's (services/xlsform.py hands over its survey and its sheets' rows);
this module only translates. Supported:

    survey types    text, integer, decimal (kept as text: canonical JSON has no floats), date,
                    select_one LIST, select_multiple LIST, begin_group/end_group,
                    begin_repeat/end_repeat (a list of objects), note (shown, never answered)
    columns         type, name, label[::Language (xx)], hint[::...], required, relevant,
                    constraint, constraint_message[::...], x-sensitive (yes: hidden until
                    asked, left out of exports), appearance (display only: ignored)
    choices         list_name, name, label[::...]
    settings        form_id, form_title, version (a whole number), default_language
    expressions     core/xpath.py's subset, in relevant and constraint

Labels: the English column (``label::English (en)``, or the one without a language) gives
``title``; the Arabic one (``label::Arabic (ar)``) gives ``x-title-ar``; every language is kept
in ``x-labels`` by its code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from fieldsync.core import encoding, xpath
from fieldsync.core import xlsform_labels as labels
from fieldsync.core.forms import FORM_ID
from fieldsync.errors import InputError

SURVEY_COLUMNS = {
    "type", "name", "label", "hint", "required", "relevant", "constraint",
    "constraint_message", "x-sensitive", "appearance",
}  # fmt: skip
CHOICE_COLUMNS = {"list_name", "name", "label"}
SETTINGS = {"form_id", "form_title", "version", "default_language"}
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
MAX_TEXT = 10_000
MAX_DEPTH = 16  # groups and repeats within each other
MAX_QUESTIONS = 2_000
MAX_CHOICES = 2_000  # in one list
MAX_SHOWN = 200  # characters of an expression an error repeats
KINDS = {
    "text": "text", "integer": "integer", "decimal": "decimal", "date": "date",
    "select one": "one", "select all that apply": "many", "group": "group", "repeat": "group",
}  # fmt: skip
ITEM_ID = {
    "type": "string",
    "title": "Item id",
    "x-title-ar": "معرّف العنصر",
    "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$(?!\\n)",
    "x-hidden": True,
}
DATE = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$(?!\\n)"
DECIMAL = "^-?[0-9]{1,15}(\\.[0-9]{1,15})?$(?!\\n)"
YES = {"yes", "true", "true()", "1"}
NO = {"", "no", "false", "false()", "0"}


class XLSFormRefused(InputError):
    """The XLSForm holds something fieldsync cannot translate faithfully."""


@dataclass(frozen=True)
class Sheets:
    """What pyxform read: the survey tree and each sheet's rows (row 1 is the header)."""

    survey: dict[str, Any]
    rows: dict[str, list[dict[str, Any]]]
    exact_rows: bool = True  # False where the reader drops blank rows (CSV): name questions


@dataclass
class _Scope:
    properties: dict[str, Any] = field(default_factory=dict)
    required: list[str] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)

    def as_object(self) -> dict[str, Any]:
        """The questions in scope as a JSON Schema object (the form's, a group's, an entry's)."""
        body: dict[str, Any] = {
            "type": "object",
            "additionalProperties": False,
            "required": self.required,
            "properties": self.properties,
        }
        if self.notes:
            body["x-notes"] = self.notes
        return body


def translate(sheets: Sheets) -> dict[str, Any]:
    """The form schema, or ``XLSFormRefused`` naming the first thing that cannot be said."""
    _check_columns(sheets)
    translator = _Translator(sheets)
    return translator.form()


def _check_columns(sheets: Sheets) -> None:
    allowed = {"survey": SURVEY_COLUMNS, "choices": CHOICE_COLUMNS, "settings": SETTINGS}
    for sheet in sheets.rows:
        if sheet in ("sheet_names",) or sheet.endswith("_header"):
            continue
        if sheet not in allowed:
            raise XLSFormRefused(
                f"the sheet {sheet!r} is not one fieldsync reads (survey, choices, settings); "
                "nothing was imported"
            )
        for number, row in enumerate(sheets.rows[sheet], start=2):
            for column, value in row.items():
                base = column.split("::", 1)[0].strip()
                if value in (None, "") or base in allowed[sheet]:
                    continue
                raise XLSFormRefused(
                    f"{sheet}, row {number}, column {column!r}: fieldsync does not translate "
                    "this column; nothing was imported",
                    hint="Remove the column (or its values), or see docs/forms.md for what is "
                    "supported.",
                )


class _Translator:
    def __init__(self, sheets: Sheets) -> None:
        self.sheets = sheets
        self.rows = {
            str(row["name"]): number
            for number, row in enumerate(sheets.rows.get("survey", []), start=2)
            if row.get("name")
        }
        self.paths: dict[str, tuple[str, ...]] = {}
        self.kinds: dict[str, str] = {}
        self.in_repeat: set[str] = set()
        self.conditional: list[dict[str, Any]] = []  # root-level if/then for required+relevant
        self._index(sheets.survey.get("children", []), (), False)
        if len(self.paths) > MAX_QUESTIONS:
            raise XLSFormRefused(f"the form has more than {MAX_QUESTIONS} questions")

    def _index(self, children: list[dict[str, Any]], prefix: tuple[str, ...], repeat: bool) -> None:
        for child in children:
            name = str(child.get("name", ""))
            if child.get("type") == "group" and name == "meta":
                continue
            path = (*prefix, name)
            if len(path) > MAX_DEPTH:
                raise XLSFormRefused(
                    f"{self.where(name)}: groups and repeats nested deeper than {MAX_DEPTH}"
                )
            if name in self.paths:  # pyxform allows one in each group; a rule names one
                raise XLSFormRefused(
                    f"{self.where(name, 'name')}: the name {name!r} is used twice; fieldsync "
                    "needs every question's name to be unique"
                )
            self.paths[name] = path
            self.kinds[name] = KINDS.get(str(child.get("type")), "other")
            if repeat:
                self.in_repeat.add(name)
            if child.get("type") in ("group", "repeat"):
                self._index(
                    child.get("children", []), path, repeat or child.get("type") == "repeat"
                )

    def where(self, name: str, column: str | None = None) -> str:
        row = self.rows.get(name) if self.sheets.exact_rows else None
        place = f"survey, row {row}" if row else f"survey, question {name!r}"
        return f"{place}, column {column!r}" if column else place

    def _written(self, name: str, column: str) -> str:
        row = self.rows.get(name)
        if row is None:
            return ""
        return str(self.sheets.rows["survey"][row - 2].get(column) or "").strip()

    def form(self) -> dict[str, Any]:
        settings = (self.sheets.rows.get("settings") or [{}])[0]
        form_id = str(settings.get("form_id") or self.sheets.survey.get("id_string") or "")
        if not FORM_ID.fullmatch(form_id):
            raise XLSFormRefused(
                f"settings, column 'form_id': {form_id!r} is not a form id fieldsync can use "
                "(a lowercase letter, then up to 63 lowercase letters, digits, _ or -)"
            )
        version = str(settings.get("version") or "1").strip()
        if not version.isdigit() or not 1 <= int(version) <= encoding.MAX_SAFE_INTEGER:
            raise XLSFormRefused(
                f"settings, column 'version': {version!r} is not a whole number from 1"
            )
        scope = _Scope()
        self._children(self.sheets.survey.get("children", []), scope, [])
        title = settings.get("form_title") or self.sheets.survey.get("title") or form_id
        schema: dict[str, Any] = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"urn:fieldsync:form:{form_id}:{int(version)}",
            "title": str(title),
            "x-form": form_id,
            "x-version": int(version),
            "x-summary": self._summary(scope),
        } | scope.as_object()
        if self.conditional:
            schema["allOf"] = self.conditional
        return schema

    def _summary(self, scope: _Scope) -> list[str]:
        shown = [
            name
            for name, sub in scope.properties.items()
            if not sub.get("x-sensitive") and sub.get("type") in ("string", "integer")
        ]
        return shown[:3]

    def _children(self, children: list[dict[str, Any]], scope: _Scope, context: list[Any]) -> None:
        """``context``: the relevance of the groups these children are in, which holds for
        each of them as well (a question in a group not asked is not asked)."""
        for child in children:
            kind, name = child.get("type"), str(child.get("name", ""))
            if kind == "group" and name == "meta":
                continue  # pyxform's own instanceID: fieldsync names records itself
            if not NAME.fullmatch(name):
                raise XLSFormRefused(
                    f"{self.where(name, 'name')}: {name!r} is not a name fieldsync can use "
                    "(a letter or _, then letters, digits, _ or -, up to 64)"
                )
            if "or_other" in self._written(name, "type"):
                raise XLSFormRefused(
                    f"{self.where(name, 'type')}: or_other is not supported; add an 'other' "
                    "choice and a text question relevant to it"
                )
            relevant = child.get("bind", {}).get("relevant")
            own = [self._expression(name, "relevant", str(relevant))] if relevant else []
            conditions = [*context, *own]
            if kind == "note":
                note = {"name": name, "after": next(reversed(scope.properties), None)}
                note |= labels.of(child, "label")
                if conditions:
                    note["x-ask-when"] = _all(conditions)
                scope.notes.append(note)
                continue
            schema = self._question(child, name, str(kind), conditions)
            scope.properties[name] = schema
            required = self._required(child, name)
            if kind == "group" and schema.get("required"):
                required = True  # a group holding required questions must be there
            if not required:
                continue
            if not conditions:
                scope.required.append(name)
            elif name in self.in_repeat:
                raise XLSFormRefused(
                    f"{self.where(name, 'required')}: a required question asked only when "
                    "something holds is not supported inside a repeat; make it optional"
                )
            else:
                self.conditional.append(
                    {"if": _all(conditions), "then": _required_at(self.paths[name])}
                )

    def _question(
        self, child: dict[str, Any], name: str, kind: str, conditions: list[Any]
    ) -> dict[str, Any]:
        schema: dict[str, Any] = labels.of(child, "label")
        hint = labels.of(child, "hint")
        if hint:
            schema["description"] = hint["title"]
            if "x-title-ar" in hint:
                schema["x-description-ar"] = hint["x-title-ar"]
        schema |= self._shape(child, name, kind, conditions)
        sensitive = str(child.get("x-sensitive", "")).strip().lower()
        if sensitive in YES:
            schema["x-sensitive"] = True
        elif sensitive not in NO:
            raise XLSFormRefused(
                f"{self.where(name, 'x-sensitive')}: {sensitive!r} is neither yes nor no"
            )
        if conditions:
            schema["x-ask-when"] = _all(conditions)
        bind = child.get("bind", {})
        if bind.get("constraint"):
            rule = self._constraint(name, str(bind["constraint"]))
            message = bind.get("jr:constraintMsg")
            # the message where the validator reports the rule failing, and there only
            schema["allOf"] = [
                {"anyOf": [rule], "x-message": labels.english(message)} if message else rule
            ]
        if self._required(child, name) and kind == "select all that apply":
            schema["minItems"] = 1  # ODK's required: at least one choice
        return schema

    def _shape(
        self, child: dict[str, Any], name: str, kind: str, conditions: list[Any]
    ) -> dict[str, Any]:
        if kind == "text":
            return {"type": "string", "minLength": 1, "maxLength": MAX_TEXT}
        if kind == "integer":
            return {
                "type": "integer",
                "minimum": -encoding.MAX_SAFE_INTEGER,
                "maximum": encoding.MAX_SAFE_INTEGER,
            }
        if kind == "decimal":
            return {"type": "string", "pattern": DECIMAL}
        if kind == "date":
            return {"type": "string", "format": "date", "pattern": DATE}
        if kind == "select one":
            return {"type": "string", "oneOf": self._choices(child, name)}
        if kind == "select all that apply":
            return {
                "type": "array",
                "uniqueItems": True,
                "items": {"type": "string", "oneOf": self._choices(child, name)},
            }
        if kind in ("group", "repeat"):
            inner = _Scope()
            if kind == "repeat" and "id" in (str(c.get("name")) for c in child.get("children", [])):
                raise XLSFormRefused(
                    f"{self.where(name)}: a question named 'id' inside a repeat: fieldsync "
                    "keeps each entry's own id under that name"
                )
            self._children(child.get("children", []), inner, [] if kind == "repeat" else conditions)
            body = inner.as_object()
            if kind == "group":
                return body
            body["properties"] = {"id": dict(ITEM_ID)} | inner.properties
            return {"type": "array", "maxItems": 1000, "items": body}
        written = self._written(name, "type") or kind  # as the sheet spells it, not pyxform
        raise XLSFormRefused(
            f"{self.where(name, 'type')}: fieldsync does not translate the type {written!r}; "
            "nothing was imported",
            hint="Supported: text, integer, decimal, date, select_one, select_multiple, "
            "groups, repeats and notes (docs/forms.md).",
        )

    def _choices(self, child: dict[str, Any], name: str) -> list[dict[str, Any]]:
        found = child.get("choices") or []
        if not found:
            raise XLSFormRefused(f"{self.where(name, 'type')}: its choice list is empty")
        if len(found) > MAX_CHOICES:
            raise XLSFormRefused(
                f"{self.where(name, 'type')}: its choice list has more than {MAX_CHOICES} choices"
            )
        choices = []
        for choice in found:
            value = str(choice.get("name", ""))
            if len(value) > 200:
                listed = child.get("list_name")
                raise XLSFormRefused(
                    f"choices, list {listed!r}: the choice name {value[:40]!r}… is longer than 200"
                )
            if not value:
                raise XLSFormRefused(
                    f"choices, list {child.get('list_name')!r}: a choice has no name"
                )
            choices.append({"const": value} | labels.of(choice, "label", default=value))
        return choices

    def _required(self, child: dict[str, Any], name: str) -> bool:
        value = str(child.get("bind", {}).get("required", "")).strip().lower()
        if value in YES:
            return True
        if value in NO:
            return False
        raise XLSFormRefused(
            f"{self.where(name, 'required')}: {value!r} is neither yes nor no (a computed "
            "requirement is not supported)"
        )

    def _expression(self, name: str, column: str, text: str) -> Any:
        try:
            node = xpath.parse(text)
            return xpath.condition(node, self._locate(name, column))
        except xpath.Untranslatable as exc:
            raise XLSFormRefused(
                f"{self.where(name, column)}: {_shown(text)} cannot be translated ({exc}); "
                "nothing was imported",
                hint="docs/forms.md lists the expressions fieldsync translates.",
            ) from exc

    def _constraint(self, name: str, text: str) -> Any:
        try:
            node = xpath.parse(text)
            subject = xpath.Target(self.paths[name], self.kinds[name])
            return xpath.field_schema(node, self._locate(name, "constraint"), subject)
        except xpath.Untranslatable as exc:
            raise XLSFormRefused(
                f"{self.where(name, 'constraint')}: {_shown(text)} cannot be translated ({exc}); "
                "nothing was imported",
                hint="docs/forms.md lists the expressions fieldsync translates.",
            ) from exc

    def _locate(self, name: str, column: str) -> xpath.Locate:
        def locate(target: str) -> xpath.Target:
            if target != name and target not in self.paths:
                raise xpath.Untranslatable(f"there is no question {target!r}")
            if target != name and target in self.in_repeat:
                raise xpath.Untranslatable(
                    f"{target!r} is inside a repeat: a rule may name only questions outside one"
                )
            return xpath.Target(self.paths[target], self.kinds[target])

        return locate


def _required_at(path: tuple[str, ...]) -> dict[str, Any]:
    schema: dict[str, Any] = {"required": [path[-1]]}
    for name in reversed(path[:-1]):  # the groups it is in must be there too
        schema = {"required": [name], "properties": {name: schema}}
    return schema


def _all(conditions: list[Any]) -> Any:
    return conditions[0] if len(conditions) == 1 else {"allOf": conditions}


def _shown(text: str) -> str:
    return repr(text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "…")
