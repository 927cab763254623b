"""Damage to the store: reported by name, never silently shown as if it were intact."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fieldsync.errors import Interrupted, StoreCorrupted
from fieldsync.services import export, importer, reading, records, reports, setup
from fieldsync.services.forms import get_form
from fieldsync.store.index import IndexEntry
from fieldsync.store.store import DB_FILE, Store
from tests.conftest import PASSPHRASE, entered, example


def damage_entry(home: Path, version_id: str) -> None:
    with sqlite3.connect(home / DB_FILE) as db:
        (raw,) = db.execute("select raw from entries where id=?", (version_id,)).fetchone()
        raw = bytearray(raw)
        raw[-1] ^= 1
        db.execute("update entries set raw=? where id=?", (bytes(raw), version_id))


def test_a_damaged_current_version_is_reported_not_silently_replaced(
    store: Store, store_home: Path
) -> None:
    record = records.create(store, get_form("incident"), example("incident"))
    latest = records.edit(store, record, sets=["victims.total=9"])
    damage_entry(store_home, latest)
    view = reading.read(store, record)
    assert view.body.answers["victims"]["total"] == 5  # the older, intact version ...
    assert any("no current version" in p for p in view.problems)  # ... and it says so
    assert any(latest[:12] in p for p in view.problems)


def test_check_repair_rebuilds_a_damaged_or_missing_index(store: Store, store_home: Path) -> None:
    kept = records.create(store, get_form("incident"), example("incident"))
    lost = records.create(store, get_form("interview"), example("interview"))
    with sqlite3.connect(store_home / DB_FILE) as db:
        db.execute("update records set index_ct=? where record=?", (b"\x00" * 40, kept))
        db.execute("delete from records where record=?", (lost,))
    report = setup.check(store)
    assert any(kept in p for p in report.problems)
    assert any(lost in p and "missing from the index" in p for p in report.problems)
    assert setup.check(store, repair=True).ok
    index = {r.record: r for r in store.index()}
    assert index[kept].form == "incident@1"
    assert index[lost].summary.startswith("2024-04-01")


def rows_then_ctrl_c(good: dict[str, Any], before: int) -> Iterator[tuple[int, Any]]:
    for number in range(1, before + 1):
        yield number, good
    raise KeyboardInterrupt


def test_an_interrupted_import_keeps_the_rows_it_checked_and_says_which(store: Store) -> None:
    form = get_form("interview")
    with pytest.raises(Interrupted, match="rows 1 to 7 were read, 7 records saved") as caught:
        importer.import_file(store, form, rows_then_ctrl_c(example("interview"), 7))
    assert "nothing from row 8 on was saved" in caught.value.message
    assert "Import again from row 8" in (caught.value.hint or "")
    assert len(store.index()) == 7


def test_an_interrupted_import_names_the_rows_it_refused(store: Store) -> None:
    good = example("interview")

    def rows() -> Iterator[tuple[int, Any]]:
        yield from [(1, good), (2, {"nonsense": 1}), (3, good), (4, {})]
        raise KeyboardInterrupt

    with pytest.raises(Interrupted) as caught:
        importer.import_file(store, get_form("interview"), rows())
    assert caught.value.message == (
        "import stopped: rows 1 to 4 were read, 2 records saved (2 rows refused); nothing from "
        "row 5 on was saved"
    )
    assert [row for row, _ in caught.value.refused] == [2, 4]


def test_ctrl_c_during_the_last_save_is_counted_once_it_is_saved(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Ctrl-C waits for the commit, then names the rows as saved: a file under 500 rows has
    only that one save, and calling its rows unsaved would make them be imported twice."""
    writer = store.writer

    def interrupted_writer() -> Any:
        os.kill(os.getpid(), signal.SIGINT)  # arrives while the batch is being saved
        return writer()

    monkeypatch.setattr(store, "writer", interrupted_writer)
    rows = iter([(1, example("interview")), (2, example("interview"))])
    with pytest.raises(Interrupted) as caught:
        importer.import_file(store, get_form("interview"), rows)
    assert "rows 1 to 2 were read, 2 records saved; nothing from row 3 on" in caught.value.message
    assert len(store.index()) == 2


@pytest.mark.parametrize("damage", ['["77d7"84fa"]', "[1]", "{}", "", '["' + "g" * 64 + '"]'])
def test_a_damaged_heads_column_is_a_problem_row_that_repair_fixes(
    store: Store, store_home: Path, damage: str
) -> None:
    made = records.create(store, get_form("incident"), example("incident"))
    store.close()
    with sqlite3.connect(store_home / DB_FILE) as db:
        db.execute("UPDATE records SET heads = ?", (damage,))
    with Store.open(store_home, PASSPHRASE) as reopened:
        (row,) = reopened.index()
        assert row.problem == f"index of record {made}: its heads are damaged"
        with pytest.raises(StoreCorrupted, match="nothing was saved"):
            records.edit(reopened, made, sets=["victims.total=9"])
        assert any("heads are damaged" in p for p in setup.check(reopened).problems)
        setup.check(reopened, repair=True)
        (row,) = reopened.index()
        assert row.problem is None
        assert entered(reading.read(reopened, made).body.answers) == example("incident")


def row_contents(path: Path) -> list[tuple[str, int, int]]:
    """Where each row's protected bytes lie in the database file: ``(the name a problem gives
    them, start, end)`` for entries, the store's key copies and index rows."""
    with sqlite3.connect(path) as db:
        rows = [
            *((f"version {i[:12]}", raw) for i, raw in db.execute("select id, raw from entries")),
            *(
                (f"version {i[:12]}", w)
                for i, w in db.execute("select entry_id, wrapped from local_wraps")
            ),
            *((f"record {r}", ct) for r, ct in db.execute("select record, index_ct from records")),
        ]
    data = path.read_bytes()
    spans = [(name, data.find(value), len(value)) for name, value in rows]
    return [(name, start, start + size) for name, start, size in spans if start >= 0]


@pytest.mark.parametrize("seed", range(12))
def test_random_damage_to_the_database_is_named_or_harmless(
    store: Store, store_home: Path, seed: int
) -> None:
    """Bits flipped inside rows' contents, where SQLite itself notices nothing: every damaged
    version or index row is named by ``check``, and nothing is ever shown wrong."""
    made = {records.create(store, get_form("incident"), example("incident")) for _ in range(20)}
    store.close()
    path = store_home / DB_FILE
    spans = row_contents(path)
    assert len(spans) >= 40  # the file holds (most of) the rows whole
    data = bytearray(path.read_bytes())
    rng = random.Random(seed)
    damaged = set()
    for name, start, end in rng.sample(spans, 8):
        data[rng.randrange(start, end)] ^= 1 << rng.randrange(8)
        damaged.add(name)
    path.write_bytes(bytes(data))
    with Store.open(store_home, PASSPHRASE) as reopened:
        index = reopened.index()
        assert {r.record for r in index} == made  # record ids sit outside the damaged bytes
        shown_right(reopened, index)
        problems = setup.check(reopened).problems
    assert {name for name in damaged if not any(name in p for p in problems)} == set()


@pytest.mark.parametrize("seed", range(6))
def test_random_damage_anywhere_in_the_database_is_named_or_harmless(
    store: Store, store_home: Path, seed: int
) -> None:
    """Bits flipped anywhere, page structure included: either SQLite's own refusal, named as
    the store's database, or a store whose every shown record is right."""
    made = {records.create(store, get_form("incident"), example("incident")) for _ in range(20)}
    store.close()
    path = store_home / DB_FILE
    data = bytearray(path.read_bytes())
    rng = random.Random(seed)
    for _ in range(8):
        data[rng.randrange(100, len(data))] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(data))
    try:
        with Store.open(store_home, PASSPHRASE) as reopened:
            index = reopened.index()
            shown_right(reopened, index)
            shown = {r.record for r in index if not r.problem}
            assert shown <= made  # a damaged id is a problem row (bound in its AEAD)
            setup.check(reopened)
    except StoreCorrupted as exc:
        refused = exc
    else:
        return
    assert str(path) in refused.message  # named: the file, so a person knows what to restore


def shown_right(store: Store, index: list[IndexEntry]) -> None:
    """Every record the index lists is shown with its true answers, or named as unreadable."""
    for row in index:
        if row.problem:
            continue
        try:
            view = reading.read(store, row.record)
        except StoreCorrupted as exc:
            refused = exc
        else:
            if not view.problems:
                assert entered(view.body.answers) == example("incident")  # never wrong data
            continue
        assert row.record in refused.message  # no version left to show: named


def test_reports_and_exports_list_a_damaged_record_instead_of_using_it(
    store: Store, store_home: Path, tmp_path: Path
) -> None:
    """Read from a documenter's store here: the services are the same for an analyst's."""
    intact = records.create(store, get_form("incident"), example("incident"))
    damaged = records.create(store, get_form("incident"), example("incident"))
    damage_entry(store_home, records.edit(store, damaged, sets=["victims.total=9"]))
    found = reports.monthly(store)
    assert found.counted == 1
    assert [r for r, _ in found.excluded] == [damaged]
    assert "damaged" in found.excluded[0][1]
    done = export.export_records(store, tmp_path, "jsonl", form="incident")
    assert [r for r, _ in done.unreadable] == [damaged]
    exported = (tmp_path / "incident.v1.jsonl").read_text(encoding="utf-8")
    assert intact in exported and damaged not in exported


def test_reports_and_exports_list_a_record_whose_index_row_is_damaged(
    store: Store, store_home: Path, tmp_path: Path
) -> None:
    """A damaged index row hides even the record's form: it is listed all the same."""
    damaged = records.create(store, get_form("incident"), example("incident"))
    with sqlite3.connect(store_home / DB_FILE) as db:
        db.execute("update records set index_ct=? where record=?", (b"\x00" * 40, damaged))
    found = reports.monthly(store)
    assert [r for r, _ in found.excluded] == [damaged]
    done = export.export_records(store, tmp_path, "jsonl")
    assert [r for r, _ in done.unreadable] == [damaged]  # once, not once per form
