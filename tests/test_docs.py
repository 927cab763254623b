"""Every command has help text and is documented (as sqlite-utils' test_docs does)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from fieldsync.cli.main import app

ROOT = Path(__file__).resolve().parents[1]


def commands() -> list[tuple[str, ...]]:
    root = get_command(app)
    found: list[tuple[str, ...]] = []
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        if hasattr(command, "commands"):
            found += [(name, sub) for sub in command.commands]
        else:
            found.append((name,))
    return found


@pytest.mark.parametrize("command", commands(), ids=" ".join)
def test_every_command_has_help(command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.stdout
    description = result.stdout.split("\n\n")[1].strip()
    assert len(description) > 15, f"{' '.join(command)} has no real help text"


@pytest.mark.parametrize("command", commands(), ids=" ".join)
def test_every_command_is_in_the_readme(command: tuple[str, ...]) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"fieldsync {' '.join(command)}" in readme


def test_typer_never_shows_locals() -> None:
    assert isinstance(app, typer.Typer)
    assert app.pretty_exceptions_show_locals is False


def test_every_test_the_threat_model_names_exists() -> None:
    """docs/threat-model.md maps each threat to tests; a renamed test must not leave it stale."""
    doc = (ROOT / "docs" / "threat-model.md").read_text(encoding="utf-8")
    named = 0
    for cell in doc.split("|"):
        path = None
        for found in re.finditer(r"`([a-z0-9_/]+\.py)(?:::(test_\w+))?`|`(test_\w+)`", cell):
            path = found.group(1) or path
            test = found.group(2) or found.group(3)
            assert path is not None
            source = (ROOT / "tests" / path).read_text(encoding="utf-8")
            if test:
                assert f"def {test}(" in source, f"{path}::{test}"
                named += 1
    assert named > 50
