"""Forms: JSON Schema 2020-12 documents with fieldsync's annotations (docs/forms.md).

A form is validated by a real validator (``jsonschema``); this module adds what a person needs
around it: a tree of fields with English and Arabic labels, errors that name the field in words,
the cross-field rules JSON Schema cannot say (victim totals), and turning typed text into values.

Annotations read here: ``title`` / ``x-title-ar`` (labels), ``x-sensitive``, ``x-multiline``,
``x-hidden`` (set by the tool, e.g. item ids), ``x-message`` (replaces the validator's wording),
``x-form`` / ``x-version`` (identity), ``x-rules`` (named cross-field rules), ``x-summary``
(fields that make a record's one-line summary), and for what a person enters only: ``x-range``,
``x-past`` (core/rules.py), ``x-ask-when`` (when prompts ask a field) and ``x-records``
(record ids, completed from a prefix by services/links.py).

Kept whole: a ``Form`` and its ``Field`` tree are one model, read by validation, prompts, views
and reports alike; what is apart from it already lives beside it (core/rules.py, core/paths.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from fieldsync.core import encoding, words
from fieldsync.core.rules import ENTRY_RULES, RULES, EntryProblem, value_problems
from fieldsync.errors import AnswersInvalid, InputError, MalformedData

Kind = Literal["text", "integer", "boolean", "date", "choice", "choices", "group", "items", "texts"]

FORM_ID = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
TRUE_WORDS = frozenset({"y", "yes", "true", "1", "نعم"})
FALSE_WORDS = frozenset({"n", "no", "false", "0", "لا"})


@dataclass(frozen=True)
class Choice:
    value: str
    label: str
    label_ar: str


@dataclass(frozen=True)
class Field:
    name: str
    path: tuple[str, ...]
    kind: Kind
    label: str
    label_ar: str
    required: bool = False
    sensitive: bool = False
    multiline: bool = False
    hidden: bool = False
    links_records: bool = False  # x-records: its values are record ids (a prefix at entry)
    choices: tuple[Choice, ...] = ()
    children: tuple[Field, ...] = ()  # of a group, or of each item of an items list
    item_label: str = ""  # for an items list: what one item is called ("Victim")
    item_label_ar: str = ""
    schema: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def dotted(self) -> str:
        return ".".join(self.path)

    def choice_label(self, value: object, lang: str = "en") -> str:
        for choice in self.choices:
            if choice.value == value:
                return _in(lang, choice.label, choice.label_ar)
        return str(value)

    def label_in(self, lang: str) -> str:
        """The label in ``lang`` ("en" or "ar"), English where the form has no Arabic one."""
        return _in(lang, self.label, self.label_ar)

    def item_label_in(self, lang: str) -> str:
        return _in(lang, self.item_label, self.item_label_ar)

    def parse(self, text: str) -> Any:
        """Turn typed text into this field's value, or raise ``InputError``."""
        text = text.strip()
        if self.kind == "integer":
            try:
                return int(text)
            except ValueError:
                raise InputError(f"{self.label} must be a whole number, not {text!r}") from None
        if self.kind == "boolean":
            word = text.lower()
            if word in TRUE_WORDS:
                return True
            if word in FALSE_WORDS:
                return False
            raise InputError(f"{self.label} must be yes or no, not {text!r}")
        if self.kind == "choice":
            return self._choice_value(text)
        if self.kind == "choices":
            if text.startswith("["):
                return _json_value(text, self.label)
            return [self._choice_value(part) for part in re.split(r"[,;،]", text) if part.strip()]
        if self.kind in ("group", "items", "texts"):
            return _json_value(text, self.label)
        return text

    def _choice_value(self, text: str) -> str:
        text = text.strip()
        for choice in self.choices:
            if text in (choice.value, choice.label, choice.label_ar):
                return choice.value
            if text.lower() == choice.label.lower():
                return choice.value
        return text  # the validator names the field and the allowed values


def _in(lang: str, english: str, arabic: str) -> str:
    return arabic if lang == "ar" and arabic else english


@dataclass(frozen=True)
class Form:
    id: str
    version: int
    title: str
    title_ar: str
    schema: dict[str, Any]
    fields: tuple[Field, ...]
    rules: tuple[str, ...] = ()
    summary_paths: tuple[str, ...] = ()
    _validator: Draft202012Validator = field(repr=False, compare=False, default=None)

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"

    def walk(self) -> Iterator[Field]:
        """Every field, depth first, in form order."""
        stack = list(reversed(self.fields))
        while stack:
            current = stack.pop()
            yield current
            stack.extend(reversed(current.children))

    def identify_items(
        self,
        answers: dict[str, Any],
        before: dict[str, Any] | None,
        new_id: Callable[[], str],
    ) -> None:
        """Give every item of a list that the form marks with a hidden ``id`` (victims,
        sources) an id, in place: merges match items by it. An item without one that equals an
        item of ``before`` (the version edited) takes that item's id, so re-entering a list from
        a file does not turn every item into a new one."""
        for described in self.walk():
            if described.kind != "items" or not any(
                c.hidden and c.name == "id" for c in described.children
            ):
                continue
            items = get_path(answers, described.path)
            if not isinstance(items, list):
                continue
            earlier = get_path(before, described.path) if before else None
            known = {
                encoding.encode({k: v for k, v in item.items() if k != "id"}): item["id"]
                for item in (earlier if isinstance(earlier, list) else [])
                if isinstance(item, dict) and isinstance(item.get("id"), str)
            }
            taken = {i.get("id") for i in items if isinstance(i, dict)}
            for item in items:
                if isinstance(item, dict) and "id" not in item:
                    same = known.get(encoding.encode(item))
                    item["id"] = same if same is not None and same not in taken else new_id()
                    taken.add(item["id"])

    def asks(self, described: Field, answers: dict[str, Any]) -> bool:
        """Whether prompts ask for ``described`` given the answers so far: its ``x-ask-when``
        is a schema they must fit. A field not asked may still be given in a file or a --set."""
        when = described.schema.get("x-ask-when")
        return when is None or bool(Draft202012Validator(when).is_valid(answers))

    def field(self, dotted: str) -> Field:
        for candidate in self.walk():
            if candidate.dotted == dotted:
                return candidate
        raise InputError(f"the {self.id} form has no field {dotted!r}")

    def problems(
        self,
        answers: object,
        *,
        entering: bool = False,
        before: dict[str, Any] | None = None,
        today: date | None = None,
    ) -> list[str]:
        """Every way ``answers`` fails the form, in words; empty when they fit.

        ``entering``: the answers are a person's input now (new, edit, import), so the entry
        checks hold too (core/rules.py says why they are not part of the form). With
        ``before`` (the version edited), only those about a field whose value changed: an old
        record that breaks one can still be edited elsewhere."""
        if not isinstance(answers, dict):
            return ["the answers must be a set of named fields (a JSON object)"]
        try:
            encoding.encode(answers)
        except ValueError as exc:
            return [f"the answers cannot be stored: {exc}"]
        problems = [self._describe(error) for error in self._sorted_errors(answers)]
        if not problems:
            for rule in self.rules:
                problems.extend(RULES[rule](answers))
        if entering:  # beside the form's problems, not behind them: one round of corrections
            found = self._entry_problems(answers, today or datetime.now(UTC).date())
            problems.extend(
                said
                for where, said in found
                if before is None or any(get_path(answers, p) != get_path(before, p) for p in where)
            )
        return list(dict.fromkeys(problems))

    def _entry_problems(self, answers: dict[str, Any], today: date) -> list[EntryProblem]:
        found: list[EntryProblem] = []
        for path, described, value in _values(self.fields, answers, ()):
            where = self.label_of(path)
            wrong = value_problems(described.schema, value, today)
            found += [((path,), f"{where} {said}") for said in wrong]
        for rule in self.rules:
            if rule in ENTRY_RULES:
                found += ENTRY_RULES[rule](answers)
        return found

    def check_value(
        self,
        described: Field,
        value: object,
        *,
        at: tuple[str | int, ...] | None = None,
        today: date | None = None,
    ) -> list[str]:
        """Problems with one entered field's value on its own (the whole form is checked on
        save), entry checks included; ``at`` is where it sits, positions in lists included,
        for the messages."""
        at = at if at is not None else described.path
        validator = Draft202012Validator(
            _for_validation(described.schema), format_checker=Draft202012Validator.FORMAT_CHECKER
        )
        problems = []
        for error in validator.iter_errors(value):
            error.path.extendleft(reversed(at))
            problems.append(self._describe(error))
        if not problems:
            where = self.label_of(at)
            day = today or datetime.now(UTC).date()
            problems += [f"{where} {w}" for w in value_problems(described.schema, value, day)]
        # a date field fails both its format and its pattern, in the same words: say it once
        return list(dict.fromkeys(problems))

    def validate(
        self,
        answers: object,
        *,
        entering: bool = False,
        before: dict[str, Any] | None = None,
    ) -> None:
        problems = self.problems(answers, entering=entering, before=before)
        if problems:
            raise AnswersInvalid(problems, form=self.id)

    def summary(self, answers: dict[str, Any]) -> str:
        parts = []
        for dotted in self.summary_paths:
            value = get_path(answers, dotted.split("."))
            if value in (None, "", []):
                continue
            described = self.field(dotted)
            if isinstance(value, list):
                parts.append(", ".join(described.choice_label(v) for v in value))
            else:
                parts.append(described.choice_label(value))
        return " · ".join(parts)

    def label_of(self, path: tuple[str | int, ...]) -> str:
        """``Victims › Individual victims #2 › Age`` for ("victims", "individuals", 1, "age")."""
        words: list[str] = []
        fields = self.fields
        for step in path:
            if isinstance(step, int):
                if words:
                    words[-1] += f" #{step + 1}"
                continue
            found = next((f for f in fields if f.name == step), None)
            if found is None:
                words.append(step)
                fields = ()
                continue
            words.append(found.label)
            fields = found.children
        return " › ".join(words) if words else "the answers"

    def _sorted_errors(self, answers: dict[str, Any]) -> list[ValidationError]:
        errors = list(self._validator.iter_errors(answers))
        return sorted(errors, key=lambda e: [str(p) for p in e.absolute_path])

    def _describe(self, error: ValidationError) -> str:
        path = tuple(error.absolute_path)
        where = self.label_of(path)
        custom = error.schema.get("x-message") if isinstance(error.schema, dict) else None
        kind = error.validator
        if kind == "required":
            missing = [p for p in error.validator_value if p not in error.instance]
            labels = [self.label_of((*path, name)) for name in missing]
            return "; ".join(f"{label} is required" for label in labels)
        if custom:
            return f"{where} {custom}"
        if kind == "additionalProperties":
            extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
            unknown = "an unknown field" if len(extra) == 1 else "unknown fields"
            if not path:  # "the answers": plural
                return f"the answers have {unknown}: {', '.join(extra)}"
            return f"{unknown} in {where}: {', '.join(extra)}"  # a label may be either
        if kind == "enum":
            allowed = ", ".join(str(v) for v in error.validator_value)
            return f"{where} must be one of: {allowed} (not {_shown(error.instance)})"
        if kind == "type":
            wanted = {
                "integer": "a whole number",
                "string": "text",
                "boolean": "yes or no",
                "array": "a list",
                "object": "a group of fields",
            }.get(str(error.validator_value), str(error.validator_value))
            return f"{where} must be {wanted}, not {_shown(error.instance)}"
        if kind in ("format", "pattern") and "date" in str(error.schema.get("format", "")):
            return (
                f"{where} must be a real date written YYYY-MM-DD (e.g. 2024-03-05), not "
                f"{_shown(error.instance)}"
            )
        if kind == "minLength":
            return f"{where} must not be empty"
        if kind == "maxLength":
            return f"{where} is too long (at most {error.validator_value} characters)"
        if kind == "minItems":
            return f"{where} needs at least {words.count(int(error.validator_value), 'item')}"
        if kind == "maxItems":
            return f"{where} has too many items (at most {error.validator_value})"
        if kind == "uniqueItems":
            return f"{where} lists the same item twice"
        if kind == "minimum":
            return f"{where} must be at least {error.validator_value}"
        if kind == "maximum":
            return f"{where} must be at most {error.validator_value}"
        return f"{where}: {error.message[:200]}"


def load(schema: dict[str, Any]) -> Form:
    """A ``Form`` from a schema document; raises ``MalformedData`` for an unusable schema."""
    try:
        Draft202012Validator.check_schema(schema)
    except Exception as exc:  # jsonschema raises SchemaError and friends
        raise MalformedData(f"the form schema is not valid JSON Schema: {exc}") from exc
    form_id, version = schema.get("x-form"), schema.get("x-version")
    if not isinstance(form_id, str) or not FORM_ID.fullmatch(form_id):
        raise MalformedData("the form schema has no valid x-form id")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise MalformedData("the form schema has no valid x-version")
    if schema.get("type") != "object":
        raise MalformedData("a form schema must describe an object")
    rules = tuple(schema.get("x-rules", ()))
    unknown = [r for r in rules if r not in RULES]
    if unknown:
        raise MalformedData(f"the form schema names unknown rules: {', '.join(unknown)}")
    validator = Draft202012Validator(
        _for_validation(schema), format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    return Form(
        id=form_id,
        version=version,
        title=str(schema.get("title", form_id)),
        title_ar=str(schema.get("x-title-ar", "")),
        schema=schema,
        fields=_fields(schema, ()),
        rules=rules,
        summary_paths=tuple(schema.get("x-summary", ())),
        _validator=validator,
    )


def _for_validation(schema: Any) -> Any:
    """The same rules, faster to check: ``oneOf`` of labelled constants becomes ``enum``.

    "Exactly one of these distinct constants" and "one of these values" accept the same
    values, but a validator evaluates every ``oneOf`` branch; ``enum`` is one lookup.
    """
    if isinstance(schema, list):
        return [_for_validation(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    compiled = {key: _for_validation(value) for key, value in schema.items()}
    branches = schema.get("oneOf")
    if (
        isinstance(branches, list)
        and branches
        and all(isinstance(b, dict) and "const" in b for b in branches)
        and len({encoding.encode(b["const"]) for b in branches}) == len(branches)
    ):
        del compiled["oneOf"]
        compiled["enum"] = [b["const"] for b in branches]
    return compiled


def _fields(
    schema: dict[str, Any], prefix: tuple[str, ...], within_sensitive: bool = False
) -> tuple[Field, ...]:
    required = set(schema.get("required", ()))
    return tuple(
        _field(name, sub, (*prefix, name), name in required, within_sensitive)
        for name, sub in schema.get("properties", {}).items()
    )


def _field(
    name: str,
    schema: dict[str, Any],
    path: tuple[str, ...],
    required: bool,
    within_sensitive: bool = False,
) -> Field:
    # Everything inside a sensitive group or list is sensitive too: the coordinates' latitude,
    # a family contact's phone. History, prompts and exports all ask the field itself.
    sensitive = within_sensitive or bool(schema.get("x-sensitive", False))
    kind: Kind
    children: tuple[Field, ...] = ()
    choices: tuple[Choice, ...] = ()
    json_type = schema.get("type")
    item_label = item_label_ar = ""
    if json_type == "object":
        kind, children = "group", _fields(schema, path, sensitive)
    elif json_type == "array":
        item = schema.get("items", {})
        if item.get("type") == "object":
            kind, children = "items", _fields(item, path, sensitive)
            item_label = str(item.get("title", name))
            item_label_ar = str(item.get("x-title-ar", ""))
        elif "oneOf" in item:
            kind, choices = "choices", _choices(item)
        else:
            kind = "texts"
    elif "oneOf" in schema:
        kind, choices = "choice", _choices(schema)
    elif json_type == "integer":
        kind = "integer"
    elif json_type == "boolean":
        kind = "boolean"
    elif schema.get("format") == "date":
        kind = "date"
    else:
        kind = "text"
    return Field(
        name=name,
        path=path,
        kind=kind,
        label=str(schema.get("title", name)),
        label_ar=str(schema.get("x-title-ar", "")),
        required=required,
        sensitive=sensitive,
        multiline=bool(schema.get("x-multiline", False)),
        links_records=bool(schema.get("x-records", False)),
        hidden=bool(schema.get("x-hidden", False)),
        choices=choices,
        children=children,
        item_label=item_label,
        item_label_ar=item_label_ar,
        schema=schema,
    )


def _choices(schema: dict[str, Any]) -> tuple[Choice, ...]:
    return tuple(
        Choice(str(o["const"]), str(o.get("title", o["const"])), str(o.get("x-title-ar", "")))
        for o in schema["oneOf"]
        if "const" in o
    )


# --- helpers ---------------------------------------------------------------------------------


def get_path(answers: Any, path: list[str] | tuple[str | int, ...]) -> Any:
    """The value at a path of field names and 0-based list positions, or None where there is
    none."""
    current: Any = answers
    for step in path:
        if isinstance(step, int):
            if not isinstance(current, list) or not 0 <= step < len(current):
                return None
            current = current[step]
        elif isinstance(current, dict):
            current = current.get(step)
        else:
            return None
    return current


def _values(
    fields: tuple[Field, ...], container: dict[str, Any], where: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], Field, Any]]:
    """Every answered leaf value under ``fields``, with its path (list items by position)."""
    for described in fields:
        value = container.get(described.name)
        path = (*where, described.name)
        if described.kind == "group" and isinstance(value, dict):
            yield from _values(described.children, value, path)
        elif described.kind == "items" and isinstance(value, list):
            for n, item in enumerate(value):
                if isinstance(item, dict):
                    yield from _values(described.children, item, (*path, n))
        elif value is not None:
            yield path, described, value


def set_path(answers: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    current = answers
    for step in path[:-1]:
        nxt = current.setdefault(step, {})
        if not isinstance(nxt, dict):
            nxt = current[step] = {}
        current = nxt
    current[path[-1]] = value


def _json_value(text: str, label: str) -> Any:
    try:
        return encoding.parse_input(text)
    except ValueError as exc:
        raise InputError(f"{label} must be written as JSON here ({exc})") from None


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
