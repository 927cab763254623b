"""Every command has help text and is documented (as sqlite-utils' test_docs does)."""

from __future__ import annotations

import ast
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
    lines = [line.strip() for line in result.stdout.splitlines()]
    usage = next(n for n, line in enumerate(lines) if line.startswith("Usage:"))
    description = next(line for line in lines[usage + 1 :] if line)  # rich pads blank lines
    assert len(description) > 15, f"{' '.join(command)} has no real help text"


@pytest.mark.parametrize("command", commands(), ids=" ".join)
def test_every_command_is_in_the_readme(command: tuple[str, ...]) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"fieldsync {' '.join(command)}" in readme


def test_typer_never_shows_locals() -> None:
    assert isinstance(app, typer.Typer)
    assert app.pretty_exceptions_show_locals is False


def test_every_test_the_threat_model_names_exists() -> None:
    """docs/threat-model.md maps each threat to tests; a renamed test must not leave it stale,
    and a name must be a test pytest runs: not a helper, not shadowed by a later definition of
    the same name, not skipped unconditionally (read from the source, so it costs no import)."""
    doc = (ROOT / "docs" / "threat-model.md").read_text(encoding="utf-8")
    collected: dict[str, set[str]] = {}
    named = 0
    for cell in doc.split("|"):
        path = None
        for found in re.finditer(r"`([a-z0-9_/]+\.py)(?:::(test_\w+))?`|`(test_\w+)`", cell):
            path = found.group(1) or path
            test = found.group(2) or found.group(3)
            assert path is not None
            if path not in collected:
                collected[path] = collected_by_pytest(ROOT / "tests" / path)
            if test:
                assert test in collected[path], f"{path}::{test} is not a test pytest runs"
                named += 1
    assert named > 50


def collected_by_pytest(path: Path) -> set[str]:
    """The test functions of a test file that pytest collects and does not always skip: its
    top-level ``test*`` functions and the ``test*`` methods of its ``Test*`` classes (pytest's
    default rules, which pyproject.toml keeps)."""
    if not re.fullmatch(r"test_\w+\.py", path.name):
        return set()  # not a file pytest collects
    tree = ast.parse(path.read_text(encoding="utf-8"))
    if any(_skips(node) for node in tree.body):
        return set()
    found: dict[str, bool] = {}  # a later definition of a name replaces the earlier
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for method in node.body:
                if isinstance(method, ast.FunctionDef | ast.AsyncFunctionDef):
                    found[method.name] = _runs(method) and _runs(node)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found[node.name] = _runs(node)
    return {name for name, runs in found.items() if name.startswith("test") and runs}


def _runs(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> bool:
    return not any(_always_skipped(d) for d in node.decorator_list)


def _always_skipped(decorator: ast.expr) -> bool:
    """``@pytest.mark.skip``, ``@pytest.mark.skipif(True, ...)``, ``xfail(run=False)``."""
    call = decorator if isinstance(decorator, ast.Call) else None
    mark = ast.unparse(call.func if call else decorator)
    if mark in ("pytest.mark.skip", "mark.skip"):
        return True
    if call and mark in ("pytest.mark.skipif", "mark.skipif"):
        return (
            bool(call.args) and isinstance(call.args[0], ast.Constant) and bool(call.args[0].value)
        )
    if call and mark in ("pytest.mark.xfail", "mark.xfail"):
        return any(k.arg == "run" and ast.unparse(k.value) == "False" for k in call.keywords)
    return False


def _skips(node: ast.stmt) -> bool:
    """A module-level ``pytest.skip(...)``, ``pytestmark = <skip>`` or ``__test__ = False``."""
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        return ast.unparse(node.value.func) == "pytest.skip"
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target = ast.unparse(node.targets[0])
        if target == "__test__":
            return ast.unparse(node.value) == "False"
        if target == "pytestmark":
            marks = (
                node.value.elts if isinstance(node.value, ast.List | ast.Tuple) else [node.value]
            )
            return any(_always_skipped(mark) for mark in marks)
    return False


def test_the_repository_cites_no_design_document_outside_it() -> None:
    """The project explains itself: its docs carry the design, so nothing points a reader at a
    file that is not in the repository."""
    outside = "DESIGN" + ".md"  # spelled apart, so that this file does not cite it either
    kept = ("fieldsync", "docs", "tests", "scripts", "schemas", ".ci")
    paths = [p for part in kept for p in (ROOT / part).rglob("*") if p.is_file()]
    paths += [ROOT / name for name in ("README.md", "CHANGELOG.md", "pyproject.toml")]
    citing = [
        str(p.relative_to(ROOT))
        for p in paths
        if "__pycache__" not in p.parts and outside.encode() in p.read_bytes()
    ]
    assert citing == []
