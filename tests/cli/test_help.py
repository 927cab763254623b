"""``--help`` reads as words with an example under every command, grouped in panels, and shell
completion works (issue 16, item 9)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import typer.main
from typer.testing import CliRunner

from fieldsync.cli.main import app

WIDE = {"COLUMNS": "120"}


def command_paths() -> list[list[str]]:
    """Every command and group of the click tree typer builds, the app itself first."""
    found: list[list[str]] = []

    def walk(command: object, path: list[str]) -> None:
        found.append(path)
        for name, sub in sorted((getattr(command, "commands", None) or {}).items()):
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


def help_of(path: list[str]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p) or "fieldsync")
def test_help_has_readable_placeholders_and_an_example(path: list[str]) -> None:
    shown = help_of(path)
    assert "{" not in shown  # typer's "{record}" for a required argument
    assert "<list" not in shown and not re.search(r"<(str|int|float|bool|path|file)>", shown)
    assert re.search(r"^\s*Example: fieldsync ", shown, re.MULTILINE), shown


def test_examples_name_the_command_they_stand_under() -> None:
    for path in command_paths()[1:]:
        line = re.search(r"Example: (.*?)\s*$", help_of(path), re.MULTILINE)
        assert line and line.group(1).startswith(" ".join(["fieldsync", *path])), path


def test_commands_are_grouped_in_panels_and_placeholders_are_words() -> None:
    top = help_of([])
    for panel in ("Store", "Records", "Sync", "Reports", "Administration", "Server"):
        assert re.search(rf"─ {panel} ─", top), panel
    assert re.search(r"─ Organisation and devices ─", help_of(["admin"]))
    edit = help_of(["edit"])
    assert "Usage: fieldsync edit [OPTIONS] RECORD" in " ".join(edit.split())
    assert re.search(r"--set\s+FIELD=VALUE", edit)
    assert re.search(r"--from-file\s+FILE", edit)
    assert re.search(r"--json\s+Print", edit)  # a flag takes no placeholder
    attach = " ".join(help_of(["attach"]).split())
    assert "RECORD FILES..." in attach
    # markdown keeps the square brackets of our own help text
    assert "[default: the platform's user data folder]" in " ".join(help_of(["init"]).split())


def test_show_completion_prints_a_bash_script_that_completes_commands() -> None:
    runner = CliRunner()
    script = runner.invoke(app, ["--show-completion", "bash"], prog_name="fieldsync")
    assert script.exit_code == 0, script.output
    assert "_FIELDSYNC_COMPLETE=complete_bash" in script.stdout
    assert "complete -o default -F _fieldsync_completion fieldsync" in script.stdout
    asked = {"_FIELDSYNC_COMPLETE": "complete_bash", "COMP_WORDS": "fieldsync admin rep"}
    completed = runner.invoke(app, [], prog_name="fieldsync", env=asked | {"COMP_CWORD": "2"})
    assert completed.stdout.split() == ["report"]


def test_the_completion_script_names_fieldsync_however_it_is_started() -> None:
    started = [sys.executable, "-m", "fieldsync", "--show-completion", "bash"]
    script = subprocess.run(started, capture_output=True, text=True, timeout=60, check=True)
    assert "complete -o default -F _fieldsync_completion fieldsync" in script.stdout
