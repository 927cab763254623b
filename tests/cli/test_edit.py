"""``edit``: an answer inside a list named by its entry's number, each change checked as it is
typed, and nothing typed lost to Ctrl-C or to answers that do not fit together."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fieldsync.cli.record_cmds import _menu
from fieldsync.services.forms import get_form
from tests.cli.conftest import Run
from tests.cli.test_cli import record_from
from tests.conftest import example
from tests.terminal import at_terminal


def answers_of(run: Run, record: str) -> dict:
    shown = run("show", record, "--json")
    assert shown.exit_code == 0, shown.stderr
    return json.loads(shown.stdout)["answers"]


def number_of(steps: tuple) -> str:
    """The menu number of an answer, for the example incident's answers."""
    menu = [s for s, _ in _menu(get_form("incident"), example("incident"))]
    return str(menu.index(steps) + 1)


def test_set_names_an_entry_of_a_list_by_its_number(run: Run, tmp_path: Path) -> None:
    record = record_from(run, example("incident"), tmp_path)
    edited = run("edit", record, "--set", "victims.individuals[2].age=13")
    assert edited.exit_code == 0, edited.stderr
    victims = answers_of(run, record)["victims"]["individuals"]
    assert [v["age"] for v in victims] == [7, 13]
    assert all(isinstance(v["id"], str) for v in victims)  # entries keep their ids


@pytest.mark.parametrize(
    ("assignment", "said"),
    [
        pytest.param(
            "victims.individuals.age=13",
            "say which one by its number, e.g. victims.individuals[1].age",
            id="no-position",
        ),
        pytest.param(
            "victims.individuals[3].age=13",
            "has 2 entries, so there is no victims.individuals[3]; add one with "
            "victims.individuals[+]",
            id="past-the-end",
        ),
        pytest.param(
            "victims.individuals[2].age=old",
            "victims.individuals[2].age: Age must be a whole",
            id="word",
        ),
        pytest.param(
            "victims.individuals[2].age=-1",
            "Individual victims #2 › Age must be at least 0",
            id="range",
        ),
        pytest.param(
            "victims.total[1]=3", "victims.total is not a list of entries", id="not-a-list"
        ),
    ],
)
def test_set_refuses_an_address_or_value_that_does_not_fit_and_changes_nothing(
    run: Run, tmp_path: Path, assignment: str, said: str
) -> None:
    """Once ``victims.individuals.age=13`` replaced the list with ``{'age': 13}`` and failed
    only at the end, with a message about a list that was never typed."""
    record = record_from(run, example("incident"), tmp_path)
    before = answers_of(run, record)
    edited = run("edit", record, "--set", assignment)
    assert edited.exit_code == 5
    assert said in " ".join(edited.stderr.split())
    assert answers_of(run, record) == before


def test_set_adds_and_removes_an_entry(run: Run, tmp_path: Path) -> None:
    record = record_from(run, example("incident"), tmp_path)
    added = {"name": "ليلى", "age": 9, "sex": "female", "status": "injured"}
    edited = run(
        "edit",
        record,
        "--set",
        f"victims.individuals[+]={json.dumps(added, ensure_ascii=False)}",
        "--set",
        "victims.individuals[1]=",
    )
    assert edited.exit_code == 0, edited.stderr
    names = [v["name"] for v in answers_of(run, record)["victims"]["individuals"]]
    assert names == ["محمد", "ليلى"]


def test_the_menu_changes_an_entry_by_number_and_checks_each_answer_as_typed(
    run: Run, tmp_path: Path
) -> None:
    record = record_from(run, example("incident"), tmp_path)
    age = number_of(("victims", "individuals", 1, "age"))
    result = run("edit", record, input=f"{age}\nold\n13\n\n")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "Individual victims #2 › Age: 34  [victims.individuals[2].age]" in result.stdout
    assert "Age must be a whole number, not 'old'" in result.stdout  # asked again at once
    assert [v["age"] for v in answers_of(run, record)["victims"]["individuals"]] == [7, 13]


def test_answers_that_do_not_fit_together_are_kept_as_a_draft(run: Run, tmp_path: Path) -> None:
    record = record_from(run, example("incident"), tmp_path)
    children = number_of(("victims", "children"))
    refused = run("edit", record, input=f"{children}\n9\n\nn\n")
    assert refused.exit_code == 5
    assert "your changes are kept" in refused.stdout
    assert f"fieldsync edit {record}" in refused.stderr
    assert answers_of(run, record)["victims"]["children"] == 2  # nothing saved ...
    total = number_of(("victims", "total"))
    resumed = run("edit", record, input=f"y\n{total}\n12\n\n")  # ... and nothing lost
    assert resumed.exit_code == 0, resumed.stdout + resumed.stderr
    assert "An unfinished edit of this record" in resumed.stdout
    victims = answers_of(run, record)["victims"]
    assert (victims["children"], victims["total"]) == (9, 12)
    again = run("edit", record, "--set", "victims.total=13")
    assert again.exit_code == 0 and "unfinished" not in again.stdout  # the draft is gone


def test_ctrl_c_in_an_edit_keeps_what_was_typed(run: Run, store_home: Path, tmp_path: Path) -> None:
    """Ctrl-C typed at a real terminal, after one change was typed through the menu."""
    record = record_from(run, example("incident"), tmp_path)
    place = number_of(("location", "place")).encode()
    code, shown = at_terminal(
        ["edit", record],
        [(b"Change: ", place + b"\n"), (b"> ", "سراقب\n".encode()), (b"Change: ", b"\x03")],
        {"FIELDSYNC_HOME": str(store_home)},
    )
    assert code == 130, shown
    assert "stopped; 1 change typed so far is kept, encrypted, as a draft" in " ".join(
        shown.split()
    )
    assert answers_of(run, record)["location"]["place"] == "كفرنبل"  # nothing saved yet ...
    for written in store_home.rglob("*"):  # ... and the draft holding it is encrypted
        assert not written.is_file() or "سراقب".encode() not in written.read_bytes(), written
    resumed = run("edit", record, input="y\n\n")  # ... and nothing lost
    assert resumed.exit_code == 0, resumed.stdout + resumed.stderr
    assert answers_of(run, record)["location"]["place"] == "سراقب"


def test_json_without_answers_is_refused_before_any_prompt(run: Run, tmp_path: Path) -> None:
    """Prompts on stdout would break the one JSON document a script reads."""
    record = record_from(run, example("incident"), tmp_path)
    for args in (["new", "incident", "--json"], ["edit", record, "--json"]):
        result = run(*args, input="1\n")
        assert result.exit_code == 5
        document = json.loads(result.stdout)
        assert document["kind"] == "InputError" and "cannot be asked questions" in document["error"]


def test_a_draft_typed_before_a_new_version_is_replayed_only_when_confirmed(
    run: Run, tmp_path: Path
) -> None:
    """`victims.individuals[2]` typed before the first victim was removed would now name the
    third: the changes are shown and applied only if the person says so."""
    answers = example("incident")
    third = {"name": "كريم", "age": 50, "sex": "male", "status": "injured"}
    answers["victims"]["individuals"].append(third)
    answers["victims"]["total"] = 6
    record = record_from(run, answers, tmp_path)
    age = number_of(("victims", "individuals", 1, "age"))
    stopped = run("edit", record, input=f"{age}\n41\n")  # the input ends: like Ctrl-C
    assert stopped.exit_code == 130, stopped.stdout + stopped.stderr
    removed = run("edit", record, "--set", "victims.individuals[1]=")
    assert removed.exit_code == 0, removed.stderr
    refused = run("edit", record, input="y\nn\nn\n\n")
    assert "A new version of this record came in after these changes were typed" in refused.stdout
    assert "victims.individuals[2].age=41" in refused.stdout
    victims = answers_of(run, record)["victims"]["individuals"]
    assert [v["age"] for v in victims] == [34, 50]  # nothing replayed on the wrong victim
    applied = run("edit", record, input="y\ny\n\n")  # the draft was kept: asked again
    assert applied.exit_code == 0, applied.stdout + applied.stderr
    assert [v["age"] for v in answers_of(run, record)["victims"]["individuals"]] == [34, 41]


def test_an_entry_given_with_an_id_is_refused(run: Run, tmp_path: Path) -> None:
    """Merges match entries by their ids: a typed one could copy another victim's."""
    record = record_from(run, example("incident"), tmp_path)
    other = answers_of(run, record)["victims"]["individuals"][0]["id"]
    entry = json.dumps({"name": "x", "status": "killed", "id": other})
    refused = run("edit", record, "--set", f"victims.individuals[2]={entry}")
    assert refused.exit_code == 5
    assert "an entry's id is given by fieldsync, not typed" in refused.stderr
