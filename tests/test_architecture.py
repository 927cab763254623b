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


def imports_of(path: Path, *, with_names: bool = False) -> set[str]:
    """Every module a file imports; ``with_names``, each name taken from one too (a name may
    be a submodule: ``from fieldsync.store import store``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            if with_names:
                found |= {f"{node.module}.{alias.name}" for alias in node.names}
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


LONG_MODULE = 420  # lines; about 400, with room for a docstring's reason


def test_a_long_module_says_at_its_top_why_it_is_kept_whole() -> None:
    """Modules stay small enough to read at once; one that is not says why, so that the next
    person splits it or keeps the reason in mind."""
    unexplained = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > LONG_MODULE:
            docstring = ast.get_docstring(ast.parse(text)) or ""
            if "Kept whole:" not in docstring:
                unexplained.append(str(path.relative_to(PACKAGE)))
    assert unexplained == []


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    return ".".join(parts)


def module_graph() -> dict[str, set[str]]:
    """Every fieldsync module -> the fieldsync modules it imports (type-only imports too: a
    cycle drawn only for the type checker still ties two modules to each other)."""
    names = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        targets = imports_of(path, with_names=True)
        graph[name] = {
            t for t in targets if t in names and t != name and names[t].stem != "__init__"
        }
    return graph


def test_no_two_modules_import_each_other_even_through_others() -> None:
    graph = module_graph()
    # Tarjan's strongly connected components; the graph is small enough to recurse
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            members = []
            while True:
                member = stack.pop()
                members.append(member)
                if member == node:
                    break
            if len(members) > 1:
                circles.append(sorted(members))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert circles == []
