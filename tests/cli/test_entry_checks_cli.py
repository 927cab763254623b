"""The entry checks at each door a person's answers come in by: new (from a file and typed),
import, edit. An older version's record that breaks one still takes an edit elsewhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fieldsync.store.store import Store
from tests.cli.conftest import Run, as_json
from tests.conftest import as_an_older_version_recorded, example

WHY = "a date after tomorrow cannot have happened yet: check the year"


def written(tmp_path: Path, answers: Any, name: str = "answers.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(answers, ensure_ascii=False), encoding="utf-8")
    return str(path)


def test_new_from_a_file_refuses_an_impossible_place_count_or_date(
    run: Run, tmp_path: Path
) -> None:
    answers = example("incident")
    answers["location"]["coordinates"] = {"latitude": "95", "longitude": "200"}
    answers["victims"] = {"total": 3, "children": 5}
    answers["date"] = "2099-03-05"
    result = run("new", "incident", "--from-file", written(tmp_path, answers))
    assert result.exit_code == 5, result.stderr
    for words in ("must be from -90 to 90 (not 95)", "must be from -180 to 180 (not 200)"):
        assert words in result.stderr
    assert run("list", "--json").stdout.strip() == "[]"  # nothing was saved
    answers["location"].pop("coordinates")
    answers["date"] = "2024-03-05"
    result = run("new", "incident", "--from-file", written(tmp_path, answers))
    assert result.exit_code == 5 and "children (5) are more than the total (3)" in result.stderr


def test_import_refuses_the_rows_with_a_date_after_tomorrow(run: Run, tmp_path: Path) -> None:
    good, future = example("disappearance"), example("disappearance")
    future["date"] = "2099-10-12"
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(a) for a in (good, future)) + "\n", encoding="utf-8")
    result = run("import", "disappearance", str(path), "--json")
    assert result.exit_code == 5
    document = json.loads(result.stdout)
    assert document["saved"] == 1
    assert document["refused"] == [
        {
            "row": 2,
            "problems": [f"Date of arrest or last sighting is 2099-10-12, but {WHY}"],
        }
    ]


def test_typed_answers_are_checked_as_they_are_typed(run: Run) -> None:
    answers = [
        "Nour", "2", "", "", "",  # person: name, sex, age, occupation, hometown
        "2099-10-12", "2013-10-12",  # a date after tomorrow, then the real one
        "", "1", "1", "", "",  # precision, event, governorate, district, place
        "y", "33.5", "200", "36.3", "",  # coordinates: longitude 200 asked again
        "2", "", "n", "1", "n",  # party, facility, family contact, status, updates
        "taken at a checkpoint", "",  # narrative
    ]  # fmt: skip
    result = run("new", "disappearance", input="\n".join(answers) + "\n")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert WHY in result.stdout
    assert "must be from -180 to 180 (not 200)" in result.stdout
    record = as_json(run("list", "--json"))[0]["record"]
    saved = as_json(run("show", record, "--json"))["answers"]
    assert saved["date"] == "2013-10-12"
    assert saved["location"]["coordinates"] == {"latitude": "33.5", "longitude": "36.3"}


def older_versions_record(store: Store) -> str:
    """What an older version let through: children 14 of a total of 5, longitude 200, 2099."""
    answers = example("incident")
    answers["victims"] = {"total": 5, "children": 14}
    answers["location"]["coordinates"] = {"latitude": "36.2", "longitude": "200"}
    answers["date"] = "2099-03-05"
    return as_an_older_version_recorded(store, "incident", answers)


def test_an_old_record_breaking_the_checks_takes_an_edit_elsewhere(
    run: Run, store_home: Path, store: Store
) -> None:
    record = older_versions_record(store)
    store.close()
    edited = run("edit", record, "--set", "narrative=Struck twice at dawn.", "--json")
    assert edited.exit_code == 0, edited.stderr
    recount = run("edit", record, "--set", "victims.total=6")
    assert recount.exit_code == 5 and "children (14) are more than the total (6)" in recount.stderr
    fixed = run("edit", record, "--set", "victims.total=14", "--set", "date=2024-03-05")
    assert fixed.exit_code == 0, fixed.stderr


def test_what_happened_to_the_victims_is_asked_only_where_the_violation_does_not_say(
    run: Run,
) -> None:
    def typed(violation: str, *outcome: str) -> list[str]:
        return [
            violation, "2024-03-05", "",  # violations, date, precision
            "4", "", "", "n",  # Idlib, district, place, no coordinates
            "14", "4",  # landmines of unknown origin, attribution unknown
            "y", "4", "", "", *outcome,  # victims: total, children, women (then the outcome)
            "n",  # no individuals
            "", "", "n",  # no facility, no weapons, no sources
            "a mine on the road to the fields", "",
        ]  # fmt: skip

    landmine = run("new", "incident", input="\n".join(typed("17", "1")) + "\n")
    assert landmine.exit_code == 0, landmine.stdout + landmine.stderr
    assert "What happened to the victims counted in the totals" in landmine.stdout
    killing = run("new", "incident", input="\n".join(typed("1")) + "\n")
    assert killing.exit_code == 0, killing.stdout + killing.stderr
    assert "What happened to the victims" not in killing.stdout
    saved = {
        tuple(a["violations"]): a["victims"]
        for a in (
            as_json(run("show", r["record"], "--json"))["answers"]
            for r in as_json(run("list", "--json"))
        )
    }
    assert saved == {
        ("landmine_erw",): {"total": 4, "outcome": "killed"},
        ("extrajudicial_killing",): {"total": 4},
    }
