"""The small traps of issue 16 (items 11 and 12): each test shows one that a person fell into."""

from __future__ import annotations

import pytest

from fieldsync.services.forms import builtin_forms
from tests.cli.conftest import Run


@pytest.mark.parametrize("columns", ["80", "120"])
@pytest.mark.parametrize("form", ["incident", "interview", "disappearance"])
def test_forms_show_prints_every_field_name_whole_and_every_choice(
    run: Run, form: str, columns: str
) -> None:
    """`forms show` cut "location.coordinates.latitude" to "location.coordina…" even at 120
    columns and showed choice values only under --json; both are what --set and CSV need."""
    result = run("forms", "show", form, env={"COLUMNS": columns})
    assert result.exit_code == 0, result.stderr
    first_words = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
    fields = [f for f in builtin_forms()[form].walk() if not f.hidden]
    for field in fields:
        assert field.dotted in first_words, field.dotted
    for field in fields:
        for choice in field.choices:
            assert f"{choice.value} — {choice.label} — {choice.label_ar}" in result.stdout
    assert "…" not in result.stdout
