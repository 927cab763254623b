"""The small traps of issue 16 (items 11 and 12): each test shows one that a person fell into."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fieldsync.core.forms import Choice, Field
from fieldsync.services import records
from fieldsync.services.forms import builtin_forms, get_form
from fieldsync.store.store import Store
from tests.cli.conftest import Run, as_json
from tests.cli.test_cli import record_from
from tests.conftest import PASSPHRASE, example
from tests.services.conftest import in_conflict
from tests.terminal import at_terminal


@pytest.mark.parametrize("columns", ["80", "120"])
@pytest.mark.parametrize("form", ["incident", "interview", "disappearance"])
def test_forms_show_prints_every_field_name_whole_and_every_choice(
    run: Run, form: str, columns: str
) -> None:
    """`forms show` cut "location.coordinates.latitude" to "location.coordina…" even at 120
    columns and showed choice values only under --json; both are what --set and CSV need."""
    result = run("forms", "show", form, env={"COLUMNS": columns})
    assert result.exit_code == 0, result.stderr
    first_words = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
    fields = [f for f in builtin_forms()[form].walk() if not f.hidden]
    for field in fields:
        assert field.dotted in first_words, field.dotted
    for field in fields:
        for choice in field.choices:
            assert f"{choice.value} — {choice.label} — {choice.label_ar}" in result.stdout
    assert "…" not in result.stdout


def test_show_attachment_out_dash_writes_the_bytes_to_stdout_alone(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--out -` wrote a file named `-` in the current folder."""
    monkeypatch.chdir(tmp_path)
    record = record_from(run, example("incident"), tmp_path)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(bytes(range(256)) * 3000 + b"\n\x1b[2J")
    assert run("attach", record, str(photo)).exit_code == 0
    result = run("show", record, "--attachment", "1", "--out", "-")
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == photo.read_bytes()
    assert not (tmp_path / "-").exists()
    both = run("show", record, "--attachment", "1", "--out", "-", "--json")
    assert both.exit_code == 5 and "both want stdout" in both.stderr


FAKE = "\n  2. court-order.pdf  (pdf, 10 bytes)"  # no "/": it is a file name


def test_a_newline_in_a_file_name_or_note_never_prints_as_a_line_of_its_own(
    run: Run, tmp_path: Path
) -> None:
    """A file named "photo.jpg<newline>  2. court-order.pdf …" showed a second attachment."""
    record = record_from(run, example("incident"), tmp_path)
    hostile = tmp_path / f"photo.jpg{FAKE}"
    hostile.write_bytes(b"jpeg")
    attached = run("attach", record, str(hostile), "--note", f"seen{FAKE}")
    assert attached.exit_code == 0, attached.stderr
    for args in (["show", record], ["history", record]):
        printed = run(*args, env={"COLUMNS": "200"}).stdout
        assert "court-order.pdf" in printed
        assert not any(line.lstrip(" │").startswith("2.") for line in printed.splitlines())
        assert "\\n" in printed
    assert json.loads(run("show", record, "--json").stdout)["attachments"][0]["name"] == (
        hostile.name
    )


def test_a_newline_in_a_summary_never_prints_as_a_line_of_its_own(run: Run, store: Store) -> None:
    record = records.create(store, get_form("interview"), example("interview"))
    in_conflict(store, record, "language", (f"Arabic{FAKE}", "Kurdish"))
    store.close()
    printed = run("conflicts", env={"COLUMNS": "200"}).stdout
    assert "court-order.pdf" in printed
    assert not any(line.lstrip(" │").startswith("2.") for line in printed.splitlines())


def test_wipe_says_how_many_undelivered_versions_and_attachments_it_destroys(
    run: Run, tmp_path: Path, store_home: Path
) -> None:
    """`wipe` of a store with undelivered versions gave only a general warning."""
    record = record_from(run, example("incident"), tmp_path)
    record_from(run, example("interview"), tmp_path, form="interview")
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"jpeg")
    assert run("attach", record, str(photo)).exit_code == 0
    refused = run("wipe", input="no\n")
    assert refused.exit_code == 5
    said = " ".join(refused.stderr.split())
    assert "3 version(s) and 1 attachment(s) recorded on this device were never delivered" in said
    # without the passphrase the wipe still works, with the general warning
    unknown = run("wipe", input="no\n", env={"FIELDSYNC_PASSPHRASE": None})
    assert "Records that were not delivered are lost for good" in unknown.stderr
    wrong = run("wipe", input="wipe\n", env={"FIELDSYNC_PASSPHRASE": "not the passphrase"})
    assert wrong.exit_code == 0, wrong.stderr
    assert "cannot be counted" in wrong.stderr
    assert not (store_home / "vault").exists()


def test_show_lang_ar_gives_arabic_labels_and_choices_and_en_english(
    run: Run, tmp_path: Path
) -> None:
    """`show` printed only English labels."""
    record = record_from(run, example("incident"), tmp_path)
    form = get_form("incident")
    date, governorate = form.field("date"), form.field("location.governorate")
    idlib = governorate.choice_label("idlib")
    idlib_ar = next(c.label_ar for c in governorate.choices if c.value == "idlib")
    arabic = run("show", record, "--lang", "ar", env={"COLUMNS": "200"})
    assert arabic.exit_code == 0, arabic.stderr
    assert date.label_ar in arabic.stdout and date.label not in arabic.stdout
    assert idlib_ar in arabic.stdout and f"{idlib} " not in arabic.stdout
    assert "ضحية #2" in arabic.stdout
    assert "كفرنبل" in arabic.stdout  # answers are shown as they were typed
    for english in (
        run("show", record, env={"COLUMNS": "200"}),
        run("show", record, "--lang", "en"),
    ):
        assert date.label in english.stdout and date.label_ar not in english.stdout
        assert "Victim #2" in english.stdout
    assert run("show", record, "--lang", "fr").exit_code == 2


def test_a_label_with_no_arabic_falls_back_to_english() -> None:
    field = Field(
        "sex",
        ("sex",),
        "choice",
        "Sex",
        "",
        choices=(Choice("f", "Female", ""), Choice("m", "Male", "ذكر")),
    )
    assert field.label_in("ar") == "Sex" and field.label_in("en") == "Sex"
    assert field.choice_label("f", "ar") == "Female" and field.choice_label("m", "ar") == "ذكر"
    assert field.choice_label("m") == "Male" and field.choice_label("x", "ar") == "x"


def test_a_linked_incident_is_entered_by_a_unique_prefix_and_stored_whole(
    run: Run, tmp_path: Path
) -> None:
    """The linked-incident field wanted a full record id; `list` shows an 8-character one."""
    incident = record_from(run, example("incident"), tmp_path)
    other = record_from(run, example("incident"), tmp_path)
    prefix = incident[:8] if incident[:8] != other[:8] else incident[:14]

    def linked(record: str) -> list[str]:
        return as_json(run("show", record, "--json"))["answers"].get("linked_incidents")

    given = example("interview") | {"linked_incidents": [prefix.upper()]}
    interview = record_from(run, given, tmp_path, form="interview")  # new --from-file
    assert linked(interview) == [incident]
    both = json.dumps([prefix, other])
    assert run("edit", interview, "--set", f"linked_incidents={both}").exit_code == 0
    assert linked(interview) == [incident, other]
    # at the prompt: the numbered menu, the field by name, one id a line
    typed = run("edit", interview, input=f"linked_incidents\n{other[:13]}\n\n\n")
    assert typed.exit_code == 0, typed.stdout + typed.stderr
    assert linked(interview) == [other]
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "\n".join(
            json.dumps(example("interview") | {"linked_incidents": [ids]})
            for ids in (prefix, "ffffffff")
        ),
        encoding="utf-8",
    )
    imported = run("import", "interview", str(rows), "--json")
    assert imported.exit_code == 5
    report = json.loads(imported.stdout)
    assert linked(report["records"][0]) == [incident]
    (refused,) = report["refused"]
    assert refused["row"] == 2 and "no record ffffffff in this store" in refused["problems"][0]
    unknown = run("edit", interview, "--set", 'linked_incidents=["ffffffff"]')
    assert (
        unknown.exit_code == 5 and "Linked incident records: no record ffffffff" in unknown.stderr
    )


def answered_at_terminal(home: Path, args: list[str], answers: list[tuple[bytes, str]]) -> str:
    """Run ``fieldsync ARGS`` in a pseudo-terminal with no passphrase in the environment,
    typing each answer once its prompt shows; everything the terminal showed."""
    typed = [(prompt, answer.encode() + b"\n") for prompt, answer in answers]
    env = {"FIELDSYNC_HOME": str(home), "FIELDSYNC_PASSPHRASE": None}
    return " ".join(at_terminal(args, typed, env)[1].split())


def test_wipe_at_a_terminal_offers_to_count_and_enter_skips_it(
    run: Run, tmp_path: Path, store_home: Path
) -> None:
    record_from(run, example("incident"), tmp_path)
    counting = b"Passphrase, to count"
    confirm = b"to confirm"
    counted = answered_at_terminal(store_home, ["wipe"], [(counting, PASSPHRASE), (confirm, "no")])
    assert (
        "1 version(s) and 0 attachment(s) recorded on this device were never delivered" in counted
    )
    assert PASSPHRASE not in counted  # hidden as it is typed
    skipped = answered_at_terminal(store_home, ["wipe"], [(counting, ""), (confirm, "no")])
    assert "Records that were not delivered are lost for good" in skipped
    assert (store_home / "vault").exists()


def test_a_linked_incident_needs_eight_characters_as_list_prints_them(
    run: Run, tmp_path: Path
) -> None:
    """Four characters copied from another device's listing could name another record here."""
    incident = record_from(run, example("incident"), tmp_path)
    interview = record_from(run, example("interview"), tmp_path, form="interview")
    refused = run("edit", interview, "--set", f'linked_incidents=["{incident[:5]}"]')
    assert refused.exit_code == 5
    assert "too short to name a record (8 characters or more" in refused.stderr


def test_attachment_bytes_are_not_written_to_a_terminal(store_home: Path, tmp_path: Path) -> None:
    """A file from another device may hold the terminal's control codes."""
    env = {"FIELDSYNC_HOME": str(store_home)}
    answers = tmp_path / "incident.json"
    answers.write_text(json.dumps(example("incident")), encoding="utf-8")
    photo = tmp_path / "evil.txt"
    photo.write_bytes(b"\x1b]0;owned\x07\x1b[2J")
    code, shown = at_terminal(["new", "incident", "--from-file", str(answers)], [], env)
    assert code == 0, shown
    record = shown.split()[-1]
    code, shown = at_terminal(["attach", record, str(photo)], [], env)
    assert code == 0, shown
    code, shown = at_terminal(["show", record, "--attachment", "1", "--out", "-"], [], env)
    assert code == 5, shown
    assert "\x1b]0;owned" not in shown and "is a terminal here" in shown
