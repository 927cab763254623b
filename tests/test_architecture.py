"""The layering of docs/architecture.md, checked on the import graph (ruff checks it too, per folder)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fieldsync"

# layer -> fieldsync layers it may import
ALLOWED = {
    "core": {"core", "errors"},  # not durable: core does no disk I/O
    "store": {"store", "core", "errors", "durable"},
    "transport": {"transport", "core", "errors", "durable"},
    "services": {"services", "store", "transport", "core", "errors", "durable"},
    "server": {"server", "core", "errors", "durable"},
    "cli": {"cli", "services", "store", "core", "errors", "server", "__init__", "durable"},
    "errors": set(),
    "durable": set(),
}


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def layer_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if layer_of(p) in ALLOWED)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_layers(path: Path) -> None:
    layer = layer_of(path)
    for module in imports_of(path):
        parts = module.split(".")
        if parts[0] == "nacl":
            assert path.name == "crypto.py" and layer == "core", f"{path} imports nacl"
        if parts[0] == "fieldsync" and len(parts) > 1:
            target = parts[1]
            assert target in ALLOWED[layer] or target == layer, f"{layer} imports {module}"


def test_core_does_no_io() -> None:
    banned = {"pathlib", "shutil", "sqlmodel", "sqlalchemy", "httpx", "rich", "typer", "socket"}
    for path in (PACKAGE / "core").glob("*.py"):
        assert not {m.split(".")[0] for m in imports_of(path)} & banned, path
