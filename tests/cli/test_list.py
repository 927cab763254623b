"""Every record id a command prints can be typed back as it is (issue: ids that collided)."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

from fieldsync.core.ids import new_record_id, unique_prefixes
from fieldsync.services import records
from fieldsync.services.forms import get_form
from fieldsync.store.store import DB_FILE, Store
from tests.cli.conftest import Run
from tests.conftest import example

ID_START = re.compile(r"^│?\s*([0-9a-f]{8}[0-9a-f-]*)\s", re.MULTILINE)


def test_each_id_is_its_shortest_unique_prefix_of_eight_characters_or_more() -> None:
    same_ms = [new_record_id(1_700_000_000_000) for _ in range(500)]
    others = [new_record_id(1_700_000_000_000 + n * 86_400_000) for n in range(1, 50)]
    shown = unique_prefixes(same_ms + others)
    assert len(set(shown.values())) == len(shown) == 549
    for full, prefix in shown.items():
        assert full.startswith(prefix) and len(prefix) >= 8 and not prefix.endswith("-")
        assert [f for f in shown if f.startswith(prefix)] == [full]
        # shortest: one character less names another id too (or falls below eight)
        shorter = prefix[:-1].rstrip("-")
        assert len(shorter) < 8 or sum(f.startswith(shorter) for f in shown) > 1
    assert {len(p) for full, p in shown.items() if full in others} == {8}
    assert unique_prefixes([]) == {}


def test_every_id_list_prints_at_80_columns_names_its_record_alone(run: Run, store: Store) -> None:
    """Records made within one millisecond share the first 13 characters of their ids (48 bits
    of time, then 4 of version): `list` once printed two records as one id, and cut ids to fit
    80 columns."""
    form = get_form("incident")
    store.now_ms = lambda: 1_790_000_000_000  # an import saves many records in a millisecond
    made = [records.create(store, form, example("incident")) for _ in range(120)]
    assert len({m[:13] for m in made}) == 1
    store.close()
    result = run("list", env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.stderr
    printed = ID_START.findall(result.stdout)
    assert len(printed) == len(made) == len(set(printed))
    assert all(len(line) <= 80 for line in result.stdout.splitlines())
    for prefix in printed:
        assert [m for m in made if m.startswith(prefix)] != []
        assert sum(m.startswith(prefix) for m in made) == 1, prefix
    shown = run("show", printed[-1], "--json")
    assert shown.exit_code == 0, shown.stderr
    assert sum(m.startswith(printed[-1]) for m in made) == 1


def test_list_marks_a_damaged_record_and_exits_non_zero(
    run: Run, store: Store, store_home: Path
) -> None:
    kept = records.create(store, get_form("incident"), example("incident"))
    damaged = records.create(store, get_form("interview"), example("interview"))
    store.close()
    with sqlite3.connect(store_home / DB_FILE) as db:
        db.execute("UPDATE records SET heads = '[1]' WHERE record = ?", (damaged,))
    for args in (["list"], ["list", "--json"]):
        result = run(*args)
        assert result.exit_code == 6, result.stdout
        assert "1 record of this store is damaged and cannot be read" in result.stderr
        assert "fieldsync check" in result.stderr
    listed = {r["record"]: r for r in json.loads(run("list", "--json").stdout)}
    assert listed[kept]["problem"] is None and "damaged" in listed[damaged]["problem"]
    (row,) = [line for line in run("list").stdout.splitlines() if "DAMAGED" in line]
    assert damaged.startswith(row.split()[0]) and kept not in row


def test_a_summary_is_cut_to_one_line_with_its_conflict_mark_first(run: Run, store: Store) -> None:
    answers = example("incident")
    answers["narrative"] = "word " * 200
    records.create(store, get_form("incident"), answers)
    store.close()
    lines = run("list", env={"COLUMNS": "80"}).stdout.splitlines()
    assert len(lines) == 4  # the header, its rule, one row, the count
    assert lines[2].endswith("…") is False and "…" in lines[2]
