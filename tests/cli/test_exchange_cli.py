"""The commands of issue 4 as people type them: pull, conflicts, resolve, admin pull/push/edit,
and push --to-file / --wipe-after, against a real server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.cli.conftest import Run, as_json, organisation


def test_the_exchange_journey_on_the_command_line(run: Run, tmp_path: Path) -> None:
    with organisation(run, tmp_path) as (in_admin_store, _url, _org, record):

        def admin(*args: str) -> Any:
            return in_admin_store("admin", *args)

        carried = tmp_path / "carry.fsc"
        assert as_json(run("push", "--to-file", str(carried), "--json"))["versions"] == 1
        assert carried.stat().st_size > 0
        assert as_json(run("status", "--json"))["pending"] == 1  # carried is not delivered
        assert as_json(run("push", "--json"))["delivered"] == 1

        assert as_json(admin("pull", "--json"))["received"] == 1
        edited = admin(
            "edit",
            record[:8],
            "--set",
            "perpetrator.attribution=confirmed",
            "--set",
            'perpetrator.parties=["russian_forces"]',
            "--json",
        )
        assert as_json(edited)["record"] == record
        assert as_json(admin("push", "--json"))["delivered"] == 1

        assert as_json(run("edit", record[:8], "--set", "victims.total=6", "--json"))
        pulled = as_json(run("pull", "--json"))
        assert pulled["received"] == 1 and pulled["merged"] == [record]
        shown = as_json(run("show", record[:8], "--json"))
        assert shown["answers"]["victims"]["total"] == 6
        assert shown["answers"]["perpetrator"]["parties"] == ["russian_forces"]
        history = as_json(run("history", record[:8], "--json"))["versions"]
        assert [v["author_is"] for v in history].count("analyst") == 1
        assert len(history[-1]["merged"]) == 2
        assert as_json(run("push", "--json"))["delivered"] == 2  # the edit and the merge

        # now both change who did it, differently
        as_json(admin("pull", "--json"))
        as_json(admin("edit", record[:8], "--set", 'perpetrator.parties=["regime_army"]', "--json"))
        as_json(admin("push", "--json"))
        as_json(run("edit", record[:8], "--set", 'perpetrator.parties=["isis"]', "--json"))
        assert as_json(run("pull", "--json"))["in_conflict"] == [record]
        listed = run("list")
        assert "IN CONFLICT" in listed.stdout
        refused = run("edit", record[:8], "--set", "victims.total=7")
        assert refused.exit_code != 0 and "in conflict" in refused.stderr
        (found,) = as_json(run("conflicts", "--json"))
        (field,) = found["fields"]
        assert field["field"] == "perpetrator.parties"
        by_value = {v["value"][0]: v for v in field["values"]}
        assert by_value["regime_army"]["set_by"] == "analyst"
        assert by_value["isis"]["set_by"] == "this device"
        unknown = run("resolve", record[:8], "--field", "narrative", "--take", "1")
        assert unknown.exit_code == 5 and "not in conflict" in unknown.stderr
        take = str(by_value["regime_army"]["number"])
        resolved = as_json(
            run("resolve", record[:8], "--field", "perpetrator.parties", "--take", take, "--json")
        )
        shown = as_json(run("show", record[:8], "--json"))
        assert shown["in_conflict"] is False and shown["version"] == resolved["version"]
        assert shown["answers"]["perpetrator"]["parties"] == ["regime_army"]

        wiped = as_json(run("push", "--wipe-after", "--json"))
        assert wiped["wiped_records"] == 1
        gone = run("show", record[:8])
        assert gone.exit_code != 0

        assert as_json(admin("pull", "--json"))["received"] == 2
        assert as_json(in_admin_store("conflicts", "--json")) == []  # settled there too
        settled = in_admin_store("show", record, "--json")
        assert as_json(settled)["answers"]["perpetrator"]["parties"] == ["regime_army"]


def test_admin_edit_refuses_a_documenters_store(run: Run) -> None:
    result = run("admin", "edit", "0190", "--set", "victims.total=1")
    assert result.exit_code != 0
    assert "not an administrator's" in result.stderr


def test_pull_before_enrolling_says_what_to_do(run: Run) -> None:
    result = run("pull")
    assert result.exit_code != 0
    assert "not enrolled" in result.stderr and "fieldsync enroll" in result.stderr
