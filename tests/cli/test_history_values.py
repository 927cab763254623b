"""``history`` shows each change as old → new (sensitive answers masked unless asked), and
``show --version`` shows any version whole, so values that lost a conflict stay readable."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from fieldsync.errors import InputError
from fieldsync.services import reading
from tests.cli.conftest import Run, as_json, organisation
from tests.cli.test_cli import record_from
from tests.conftest import example

MASK = "••• (sensitive; --show-sensitive to see)"


def versions_of(run: Run, record: str, *flags: str) -> list[dict[str, Any]]:
    return list(as_json(run("history", record, "--json", *flags))["versions"])


def test_an_edit_shows_old_and_new_values(run: Run, tmp_path: Path) -> None:
    record = record_from(run, example("incident"), tmp_path)
    edited = run(
        "edit",
        record,
        "--set",
        "victims.total=7",
        "--set",
        "perpetrator.attribution=confirmed",
        "--set",
        'perpetrator.parties=["isis"]',
        "--set",
        "victims.individuals[2].age=35",
    )
    assert edited.exit_code == 0, edited.stderr
    shown = run("history", record)
    assert shown.exit_code == 0, shown.stderr
    text = " ".join(shown.stdout.split())  # a terminal may wrap a line
    assert "victims.total: 5 → 7" in text
    assert (
        "perpetrator.parties: Syrian regime forces: army, Russian forces → Extremist groups: ISIS"
        in text
    ), text
    assert "victims.individuals[2].age: 34 → 35" in text
    latest = versions_of(run, record)[-1]
    assert {"field": "victims.total", "old": 5, "new": 7, "sensitive": False} in latest["changes"]
    assert {
        "field": "victims.individuals[2].age",
        "old": 34,
        "new": 35,
        "sensitive": False,
    } in latest["changes"]
    assert "victims.total" in latest["changed"]  # the keys there were stay as they were


def test_list_entries_are_compared_by_id_not_by_position(run: Run, tmp_path: Path) -> None:
    record = record_from(run, example("incident"), tmp_path)
    removed = run("edit", record, "--set", "victims.individuals[1]=", "--set", "victims.total=4")
    assert removed.exit_code == 0, removed.stderr
    changes = versions_of(run, record, "--show-sensitive")[-1]["changes"]
    gone = {c["field"]: (c["old"], c["new"]) for c in changes}
    # the first victim went; the second, now first, did not change
    assert gone["victims.individuals[1].age"] == (7, None)
    assert gone["victims.individuals[1].name"] == ("سارة", None)
    assert not any(c["field"].startswith("victims.individuals[2]") for c in changes)


def test_a_sensitive_value_is_masked_unless_asked(run: Run, tmp_path: Path) -> None:
    record = record_from(run, example("incident"), tmp_path)
    renamed = run("edit", record, "--set", "victims.individuals[1].name=ليلى")
    assert renamed.exit_code == 0, renamed.stderr

    masked = run("history", record)
    assert masked.exit_code == 0, masked.stderr
    flat = " ".join(masked.stdout.split())
    assert f"victims.individuals[1].name: {MASK}" in flat
    assert "ليلى" not in masked.stdout and "سارة" not in masked.stdout
    (change,) = versions_of(run, record)[-1]["changes"]
    assert change == {
        "field": "victims.individuals[1].name",
        "old": "•••",
        "new": "•••",
        "sensitive": True,
    }
    assert "ليلى" not in run("history", record, "--json").stdout

    shown = run("history", record, "--show-sensitive")
    assert "victims.individuals[1].name: سارة → ليلى" in " ".join(shown.stdout.split())
    (change,) = versions_of(run, record, "--show-sensitive")[-1]["changes"]
    assert (change["old"], change["new"]) == ("سارة", "ليلى")


def test_an_answer_inside_a_sensitive_group_is_masked_too(run: Run, tmp_path: Path) -> None:
    """The schemas mark the group (coordinates, a family's contact), not each answer in it."""
    record = record_from(run, example("incident"), tmp_path)
    placed = run(
        "edit",
        record,
        "--set",
        "location.coordinates.latitude=33.5138",
        "--set",
        "location.coordinates.longitude=36.2765",
    )
    assert placed.exit_code == 0, placed.stderr
    for args in (["history", record], ["history", record, "--json"]):
        shown = run(*args)
        assert shown.exit_code == 0, shown.stderr
        assert "33.5138" not in shown.stdout and "36.2765" not in shown.stdout
    changes = versions_of(run, record)[-1]["changes"]
    assert {c["field"] for c in changes} == {
        "location.coordinates.latitude",
        "location.coordinates.longitude",
    }
    assert all(c["sensitive"] and c["new"] == "•••" for c in changes)


def test_record_text_in_a_change_stays_on_one_line(run: Run, tmp_path: Path) -> None:
    record = record_from(run, example("incident"), tmp_path)
    edited = run("edit", record, "--set", "narrative=line one\nfake: row\x1b[31m")
    assert edited.exit_code == 0, edited.stderr
    shown = run("history", record)
    assert "\x1b[31m" not in shown.stdout
    (line,) = [line for line in shown.stdout.splitlines() if "narrative:" in line]
    assert line.endswith("→ line one\\nfake: row\\x1b[31m")
    assert not any(line.startswith("fake") for line in shown.stdout.splitlines())


def test_each_competing_value_can_be_read_after_resolving(run: Run, tmp_path: Path) -> None:
    with organisation(run, tmp_path) as (in_admin_store, _url, _org, record):

        def admin(*args: str) -> Any:
            return as_json(in_admin_store("admin", *args, "--json"))

        as_json(run("push", "--json"))
        admin("pull")
        confirmed = ("--set", "perpetrator.attribution=confirmed")  # the same on both sides
        admin("edit", record[:8], *confirmed, "--set", 'perpetrator.parties=["regime_army"]')
        admin("push")
        mine = as_json(
            run("edit", record[:8], *confirmed, "--set", 'perpetrator.parties=["isis"]', "--json")
        )
        assert as_json(run("pull", "--json"))["in_conflict"] == [record]
        (found,) = as_json(run("conflicts", "--json"))
        (field,) = found["fields"]
        take = next(v["number"] for v in field["values"] if v["value"] == ["regime_army"])
        run("resolve", record[:8], "--field", "perpetrator.parties", "--take", str(take))
        assert as_json(run("show", record[:8], "--json"))["answers"]["perpetrator"]["parties"] == [
            "regime_army"
        ]

        # every version id history prints can be typed back to show that version whole
        history = run("history", record[:8])
        assert history.exit_code == 0, history.stderr
        printed = set(re.findall(r"\b[0-9a-f]{12,}\b", history.stdout))
        by_version = {v["version"]: v for v in versions_of(run, record[:8])}
        assert {next(f for f in by_version if f.startswith(p)) for p in printed} == set(by_version)
        analysts_version = _by_author(by_version, "analyst")
        for prefix in printed:
            assert run("show", record[:8], "--version", prefix).exit_code == 0

        for version, party, label in [
            (mine["version"], ["isis"], "Extremist groups: ISIS"),
            (
                analysts_version,
                ["regime_army"],
                "Syrian regime forces: army",
            ),
        ]:
            whole = as_json(run("show", record[:8], "--version", version[:12], "--json"))
            assert whole["version"] == version and whole["current"] is False
            assert whole["answers"]["perpetrator"]["parties"] == party
            text = run("show", record[:8], "--version", version[:8])
            assert text.exit_code == 0, text.stderr
            assert label in text.stdout and "not the current version" in text.stdout

        # and the resolution says what it took from which side, the losing value included
        resolution = versions_of(run, record[:8])[-1]
        every = resolution["changes"] + [
            c for other in resolution["against_other_parents"] for c in other["changes"]
        ]
        parties = [c for c in every if c["field"] == "perpetrator.parties"]
        assert parties == [
            {
                "field": "perpetrator.parties",
                "old": ["isis"],
                "new": ["regime_army"],
                "sensitive": False,
                "from": analysts_version,
            }
        ]
        lines = " ".join(run("history", record[:8]).stdout.split())
        won = "perpetrator.parties: Extremist groups: ISIS → Syrian regime forces: army (from "
        assert won + analysts_version[:12] in lines

        # the analyst's store shows the documenter's losing value too
        as_json(run("push", "--json"))
        admin("pull")
        there = as_json(in_admin_store("show", record, "--version", mine["version"], "--json"))
        assert there["answers"]["perpetrator"]["parties"] == ["isis"]
        seen = as_json(in_admin_store("history", record, "--json"))["versions"]
        assert any(c["field"] == "perpetrator.parties" for v in seen for c in v["changes"])


def _by_author(versions: dict[str, dict[str, Any]], author: str) -> str:
    return next(v for v, item in versions.items() if item["author_is"] == author)


def test_an_unknown_or_ambiguous_version_is_refused_clearly(run: Run, tmp_path: Path) -> None:
    record = record_from(run, example("incident"), tmp_path)
    assert run("edit", record, "--set", "victims.total=6").exit_code == 0

    unknown = run("show", record, "--version", "00000000")
    assert unknown.exit_code == 4
    assert "has no version 00000000" in unknown.stderr
    assert f"fieldsync history {record}" in unknown.stderr

    short = run("show", record, "--version", "abc")
    assert short.exit_code == 5 and "too short to name a version" in short.stderr

    (tmp_path / "other").mkdir()
    other = record_from(run, example("incident"), tmp_path / "other")
    foreign = versions_of(run, other)[0]["version"]
    refused = run("show", record, "--version", foreign)
    assert refused.exit_code == 4 and "history" in refused.stderr


def test_a_prefix_two_versions_share_is_refused() -> None:
    # version ids are hashes, so two sharing 8 characters cannot be made on purpose here
    ids = ["ab12cd34" + "0" * 56, "ab12cd34" + "1" * 56]
    with pytest.raises(InputError, match="names 2 versions of record 01900000-0000"):
        reading.version_named("01900000-0000-7000-8000-000000000000", ids, "AB12CD34")
    assert reading.version_named("0190", ids, "ab12cd341") == ids[1]
