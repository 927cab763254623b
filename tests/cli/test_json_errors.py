"""Under ``--json`` a failure is stdout's one JSON document, so a script can read what went
wrong; the ``error:``/``hint:`` lines stay on stderr for people (issue 16, item 8)."""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from fieldsync.services import reading
from tests.cli.conftest import Run, as_json
from tests.conftest import example


def error_document(result: Result) -> dict[str, Any]:
    """The one JSON document a failed ``--json`` command printed, checked against its exit."""
    assert result.exit_code != 0, result.stdout
    document: dict[str, Any] = json.loads(result.stdout)  # one document, nothing around it
    assert set(document) <= {"error", "hint", "exit", "kind", "details"}
    assert document["exit"] == result.exit_code
    assert result.stderr.startswith(f"error: {document['error']}")
    if document["hint"] is not None:
        assert f"hint: {document['hint']}" in result.stderr
    return document


def test_show_of_an_unknown_record(run: Run) -> None:
    document = error_document(run("show", "0123456789ab", "--json"))
    assert document["exit"] == 4
    assert document["kind"] == "RecordNotFound"


def test_push_without_a_server(run: Run) -> None:
    document = error_document(run("push", "--json"))
    assert document["hint"] and "enroll" in document["hint"]


def test_a_wrong_passphrase(run: Run) -> None:
    document = error_document(run("list", "--json", env={"FIELDSYNC_PASSPHRASE": "not it at all"}))
    assert (document["exit"], document["kind"]) == (3, "WrongPassphrase")
    assert document["hint"]


def test_import_of_a_missing_file(run: Run, tmp_path: Path) -> None:
    document = error_document(run("import", "incident", str(tmp_path / "gone.csv"), "--json"))
    assert (document["exit"], document["kind"]) == (5, "ImportFileError")
    assert "gone.csv" in document["error"]


def test_an_admin_command_and_a_usage_error(run: Run, tmp_path: Path) -> None:
    admin = error_document(run("admin", "devices", "--home", str(tmp_path / "none"), "--json"))
    assert (admin["exit"], admin["kind"]) == (4, "StoreNotFound")
    missing = run("show", "--json")  # RECORD is missing; typer explains on stderr
    usage = json.loads(missing.stdout)
    assert (usage["exit"], usage["kind"]) == (2, "UsageError") == (missing.exit_code, "UsageError")
    assert usage["hint"] == "Run 'fieldsync show --help' to see what it takes."


@pytest.mark.parametrize(
    ("raised", "code", "kind"),
    [
        (KeyboardInterrupt(), 130, "Interrupted"),
        (OSError(errno.ENOSPC, "No space left on device", "/x"), 7, "DiskFull"),
        (OSError(errno.EACCES, "Permission denied", "/x"), 1, "OSError"),
        (RuntimeError("a bug"), 1, "InternalError"),
    ],
    ids=["interrupt", "disk-full", "os-error", "internal"],
)
def test_interrupts_os_and_internal_errors(
    run: Run,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    raised: Exception,
    code: int,
    kind: str,
) -> None:
    answers = tmp_path / "incident.json"
    answers.write_text(json.dumps(example("incident")), encoding="utf-8")
    record = as_json(run("new", "incident", "--from-file", str(answers), "--json"))["record"]

    def fail(*_args: object, **_kwargs: object) -> Any:
        raise raised

    monkeypatch.setattr(reading, "read", fail)  # a fault in what ``show`` calls, not its handler
    document = error_document(run("show", record, "--json"))
    assert (document["exit"], document["kind"]) == (code, kind)
    assert "a bug" not in json.dumps(document)  # an internal error's own text is not shown


def test_a_failure_after_the_result_adds_no_second_document(run: Run, tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"date": "not a date"}\n', encoding="utf-8")
    result = run("import", "incident", str(rows), "--json")
    assert result.exit_code == 5
    assert json.loads(result.stdout)["refused"][0]["row"] == 1  # the import's own document


def test_without_json_stdout_stays_empty_on_error(run: Run, tmp_path: Path) -> None:
    for args in (["show", "0123456789ab"], ["push"], ["import", "incident", str(tmp_path / "x")]):
        result = run(*args)
        assert result.exit_code != 0
        assert result.stdout == ""
        assert result.stderr.lstrip("\n").startswith("error: ")


@pytest.mark.parametrize(
    "args", [["list", "--json", "--bogus"], ["show", "01a2", "--json", "--version"]], ids=str
)
def test_a_usage_error_of_a_json_command_is_a_json_document(run: Run, args: list[str]) -> None:
    result = run(*args)
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert document["kind"] == "UsageError" and document["exit"] == 2
