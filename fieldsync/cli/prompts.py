"""Walking a form with prompts: numbered choices, required fields, Arabic text, drafts.

After every completed field the answers so far are handed to ``save`` (which keeps them as an
encrypted draft), so an interrupted session loses at most the field being typed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

from fieldsync.cli.render import literal, out, safe
from fieldsync.core.forms import Field, Form
from fieldsync.core.ids import new_record_id
from fieldsync.errors import InputError

Link = Callable[[Field, Any], Any]  # as services.links.Link: the CLI passes links.linker


class FormWalker:
    def __init__(
        self,
        form: Form,
        answers: dict[str, Any],
        asked: set[str],
        save: Callable[[], None],
        link: Link | None = None,
    ) -> None:
        self.form = form
        self.link = link  # completes record ids typed as a prefix (services/links.py)
        self.answers = answers
        self.asked = asked  # dotted paths already answered or skipped (kept in the draft)
        self.save = save

    def run(self) -> dict[str, Any]:
        for field in self.form.fields:
            self._fill(field, self.answers)
        self._settle_problems()
        return self.answers

    # --- one field -----------------------------------------------------------------------

    def _fill(self, field: Field, container: dict[str, Any]) -> None:
        if field.hidden or field.dotted in self.asked or not self.form.asks(field, self.answers):
            return
        if field.kind == "group":
            self._fill_group(field, container)
        elif field.kind == "items":
            self._fill_items(field, container)
        else:
            value = ask_value(self.form, field, container.get(field.name), self.link)
            if value is None:
                container.pop(field.name, None)
            else:
                container[field.name] = value
        self.asked.add(field.dotted)
        self.save()

    def _fill_group(self, field: Field, container: dict[str, Any]) -> None:
        started = field.name in container
        if not field.required and not started and not confirm(f"Fill in {_label(field)}?"):
            return
        out.print(literal(f"— {field.label} / {field.label_ar}", style="bold"))
        group = container.setdefault(field.name, {})
        for child in field.children:
            self._fill(child, group)
        if not group:
            container.pop(field.name)

    def _fill_items(self, field: Field, container: dict[str, Any]) -> None:
        items = container.setdefault(field.name, [])
        while confirm(f"Add {'another' if items else 'an'} entry to {_label(field)}?"):
            out.print(literal(f"— {field.item_label} #{len(items) + 1}", style="bold"))
            item: dict[str, Any] = {}
            for child in field.children:
                if child.hidden:
                    item[child.name] = new_record_id()
                    continue
                value = ask_value(self.form, child, None, self.link)
                if value is not None:
                    item[child.name] = value
            items.append(item)
            self.save()
        if not items:
            container.pop(field.name)

    # --- the whole form ------------------------------------------------------------------

    def _settle_problems(self) -> None:
        """Until the answers fit the form, show what is wrong and re-ask the field named."""
        while problems := self.form.problems(self.answers, entering=True):
            out.print("These answers do not fit the form yet:")
            for problem in problems:
                out.print(literal(f"  - {problem}"))
            name = typer.prompt(
                "Field to change (its name from 'fieldsync forms show'; empty to stop and keep "
                "the draft)",
                default="",
                show_default=False,
            ).strip()
            if not name:
                raise typer.Abort()
            try:
                field = self.form.field(name)
            except InputError as exc:
                out.print(literal(exc.message))
                continue
            # A field inside a list of entries is re-asked by re-entering the whole list.
            for depth in range(1, len(field.path)):
                outer = self.form.field(".".join(field.path[:depth]))
                if outer.kind == "items":
                    field = outer
                    break
            dotted = field.dotted
            self.asked.difference_update(
                {p for p in self.asked if p == dotted or p.startswith(dotted + ".")}
            )
            container = self.answers
            for step in field.path[:-1]:
                container = container.setdefault(step, {})
            if field.kind == "items":
                container.pop(field.name, None)
            self._fill(field, container)


def ask_value(form: Form, field: Field, current: Any, link: Link | None = None) -> Any:
    """Prompt until a valid value (or None for a skipped optional field); default ``current``.
    ``link`` turns a record id typed as a unique prefix into the full id before the check."""
    out.print(literal(_heading(field), style="bold" if field.required else ""))
    if field.kind in ("choice", "choices"):
        for number, choice in enumerate(field.choices, start=1):
            out.print(literal(f"  {number:>2}. {choice.label} — {choice.label_ar}"))
    while True:
        text = _read(field, current)
        if text is None:
            if field.required:
                out.print("  This field is required.")
                continue
            return None
        try:
            value = _parse(field, text)
            value = link(field, value) if link is not None else value
        except InputError as exc:
            out.print(literal(f"  {exc.message}"))
            continue
        problems = form.check_value(field, value)
        if not problems:
            return value
        for problem in problems:
            out.print(literal(f"  {problem}"))


def _read(field: Field, current: Any) -> str | None:
    default = _as_text(field, current)
    if field.multiline or field.kind == "texts":
        hint = "one item per line" if field.kind == "texts" else "several lines allowed"
        out.print(f"  ({hint}; finish with an empty line)")
        if default:
            out.print(literal(f"  current: {default}"))
            out.print("  (an empty first line keeps it)")
        lines = []
        while line := typer.prompt("", default="", show_default=False, prompt_suffix="> "):
            lines.append(line)
        if not lines:
            return default or None
        return "\n".join(lines)
    text: str = typer.prompt(
        "", default=default or "", show_default=bool(default), prompt_suffix="> "
    )
    return text if text.strip() else None


def _parse(field: Field, text: str) -> Any:
    if field.kind == "texts":
        return [line for line in text.split("\n") if line.strip()]
    if field.kind == "choice":
        return _choice(field, text.strip())
    if field.kind == "choices":
        parts = [p.strip() for p in text.replace("،", ",").split(",") if p.strip()]
        return [_choice(field, part) for part in parts]
    if field.multiline:
        return text
    return field.parse(text)


def _choice(field: Field, text: str) -> str:
    """A choice by its number in the list, its value, or its English or Arabic label."""
    value = _numbered(field, text) if text.isdigit() else field.parse(text)
    value = value[0] if isinstance(value, list) else value
    if value not in {c.value for c in field.choices}:
        raise InputError(
            f"{text!r} is not one of the choices; type its number (1 to {len(field.choices)})"
        )
    return str(value)


def _numbered(field: Field, text: str) -> str:
    number = int(text)
    if not 1 <= number <= len(field.choices):
        raise InputError(f"choose a number from 1 to {len(field.choices)}")
    return field.choices[number - 1].value


def _as_text(field: Field, value: Any) -> str:
    if value is None:
        return ""
    if field.kind == "choices" and isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if field.kind == "texts" and isinstance(value, list):
        return "\n".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _heading(field: Field) -> str:
    flags = []
    if field.required:
        flags.append("required")
    if field.sensitive:
        flags.append("sensitive")
    if field.kind == "date":
        flags.append("YYYY-MM-DD")
    if field.kind == "boolean":
        flags.append("yes/no")
    if field.kind == "choices":
        flags.append("numbers separated by commas")
    suffix = f" ({', '.join(flags)})" if flags else ""
    return f"{field.label} / {field.label_ar}{suffix}"


def _label(field: Field) -> str:
    return safe(f"{field.label} / {field.label_ar}")


def confirm(question: str) -> bool:
    return bool(typer.confirm(question, default=False))
