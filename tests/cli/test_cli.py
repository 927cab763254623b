from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fieldsync.cli import read_cmds
from fieldsync.cli.main import app
from fieldsync.store.index import IndexEntry
from tests.cli.conftest import Run
from tests.conftest import PASSPHRASE, entered, example


def record_from(
    run: Run, answers: dict[str, object], tmp_path: Path, form: str = "incident"
) -> str:
    path = tmp_path / f"{form}.json"
    path.write_text(json.dumps(answers, ensure_ascii=False), encoding="utf-8")
    result = run("new", form, "--from-file", str(path), "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["record"]


def test_init_prints_a_fingerprint_to_read_aloud(empty_home: Path) -> None:
    env = {"FIELDSYNC_HOME": str(empty_home), "FIELDSYNC_PASSPHRASE": None}
    result = CliRunner().invoke(app, ["init"], input=f"{PASSPHRASE}\n{PASSPHRASE}\n", env=env)
    assert result.exit_code == 0, result.stderr
    assert re.search(r"Device fingerprint: (\d{5} ){7}\d{5}", result.stdout)
    assert PASSPHRASE not in result.stdout  # hidden input
    again = CliRunner().invoke(app, ["init"], env={**env, "FIELDSYNC_PASSPHRASE": PASSPHRASE})
    assert again.exit_code == 7
    assert "already exists" in again.stderr


def test_init_refuses_short_or_mismatched_passphrases_and_creates_nothing(
    empty_home: Path,
) -> None:
    env = {"FIELDSYNC_HOME": str(empty_home), "FIELDSYNC_PASSPHRASE": None}
    short = CliRunner().invoke(app, ["init"], input="abc\nabc\n", env=env)
    assert short.exit_code == 5
    assert "too short" in short.stderr
    mismatch = CliRunner().invoke(app, ["init"], input="first one here\nsecond one\n", env=env)
    assert mismatch.exit_code == 5
    assert not empty_home.exists() or not any(empty_home.iterdir())


def test_wrong_passphrase_is_clear_and_has_no_traceback(run: Run) -> None:
    result = run("list", env={"FIELDSYNC_PASSPHRASE": "wrong passphrase!"})
    assert result.exit_code == 3
    assert result.stderr.startswith("error: The passphrase is wrong for this store.")
    assert "hint: Nothing was changed" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_a_missing_store_is_named_before_any_prompt(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["list", "--home", str(tmp_path / "none")], input="")
    assert result.exit_code == 4
    assert "no fieldsync store" in result.stderr
    assert "fieldsync init" in result.stderr


def test_passphrase_file(run: Run, tmp_path: Path) -> None:
    secret = tmp_path / "pass.txt"
    secret.write_text(PASSPHRASE + "\n", encoding="utf-8")
    result = run("list", "--passphrase-file", str(secret), env={"FIELDSYNC_PASSPHRASE": None})
    assert result.exit_code == 0, result.stderr
    secret.write_text("wrong\n", encoding="utf-8")
    assert run("list", "--passphrase-file", str(secret)).exit_code == 3


def test_new_list_show_round_trip_exactly(run: Run, tmp_path: Path) -> None:
    answers = example("incident")
    record = record_from(run, answers, tmp_path)
    listed = json.loads(run("list", "--json").stdout)
    assert [r["record"] for r in listed] == [record]
    assert listed[0]["form"] == "incident@1"
    shown = json.loads(run("show", record[:8], "--json").stdout)
    assert entered(shown["answers"]) == answers
    assert shown["record"] == record
    only_interviews = json.loads(run("list", "--form", "interview", "--json").stdout)
    assert only_interviews == []


def test_escape_sequences_and_markup_in_record_text_are_shown_literally(
    run: Run, tmp_path: Path
) -> None:
    answers = example("incident")
    answers["narrative"] = "before \x1b]0;pwned\x07 \x1b[2J [red]not red[/red] \u202eevil \x9b31m"
    record = record_from(run, answers, tmp_path)
    for args in (("show", record), ("list",), ("history", record)):
        result = run(*args)
        assert result.exit_code == 0, result.stderr
        assert "\x1b]" not in result.stdout
        assert "\x1b[2J" not in result.stdout
        assert "\u202e" not in result.stdout
        assert "\x9b" not in result.stdout
    shown = re.sub(r"\s+", " ", run("show", record).stdout)  # undo the table's wrapping
    assert "\\x1b[2J" in shown
    assert "[red]not red[/red]" in shown
    assert "\\u202e" in shown
    as_json = run("show", record, "--json").stdout
    assert "\x9b" not in as_json
    assert json.loads(as_json)["answers"]["narrative"] == answers["narrative"]


def test_invalid_answers_are_named_and_nothing_is_saved(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"date": "05/03/2024"}), encoding="utf-8")
    result = run("new", "incident", "--from-file", str(path))
    assert result.exit_code == 5
    assert "Date of the incident must be a real date written YYYY-MM-DD" in result.stderr
    assert "Narrative is required" in result.stderr
    path.write_text("{broken", encoding="utf-8")
    assert "not valid JSON" in run("new", "incident", "--from-file", str(path)).stderr
    assert run("new", "nonsense").exit_code == 4
    assert json.loads(run("list", "--json").stdout) == []


def test_edit_attach_history_and_decrypting_an_attachment(run: Run, tmp_path: Path) -> None:
    record = record_from(run, example("incident"), tmp_path)
    edited = run("edit", record, "--set", "victims.total=7", "--note", "two more found")
    assert edited.exit_code == 0, edited.stderr
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(bytes(range(256)) * 3000)
    assert run("attach", record, str(photo)).exit_code == 0
    versions = json.loads(run("history", record, "--json").stdout)["versions"]
    assert [v["seq"] for v in versions] == [1, 2, 3]
    assert versions[1]["changed"] == ["victims.total"]
    assert versions[1]["note"] == "two more found"
    assert versions[2]["attached"] == ["photo.jpg"]
    assert versions[2]["parents"] == [versions[1]["version"]]
    out = tmp_path / "back.jpg"
    assert run("show", record, "--attachment", "1", "--out", str(out)).exit_code == 0
    assert out.read_bytes() == photo.read_bytes()
    attachments = json.loads(run("show", record, "--json").stdout)["attachments"]
    assert attachments[0]["name"] == "photo.jpg"
    assert "key" not in attachments[0]  # blob keys never leave the store in output


def test_attach_refuses_missing_files_and_folders(run: Run, tmp_path: Path) -> None:
    record = record_from(run, example("incident"), tmp_path)
    missing = run("attach", record, str(tmp_path / "nope.jpg"))
    assert missing.exit_code == 5
    assert "no file" in missing.stderr
    folder = run("attach", record, str(tmp_path))
    assert folder.exit_code == 5
    assert "folder" in folder.stderr
    assert json.loads(run("history", record, "--json").stdout)["versions"][-1]["seq"] == 1
    assert run("show", "ffffffff").exit_code == 4


def test_import_reports_refused_rows_and_keeps_valid_ones(run: Run, tmp_path: Path) -> None:
    good = json.dumps(example("interview"), ensure_ascii=False)
    path = tmp_path / "rows.jsonl"
    path.write_text(f"{good}\n{{}}\n{good}\n", encoding="utf-8")
    result = run("import", "interview", str(path), "--json")
    assert result.exit_code == 5
    report = json.loads(result.stdout)
    assert report["saved"] == 2
    assert report["refused"][0]["row"] == 2
    assert "1 row(s) were refused; the 2 valid row(s) were saved" in result.stderr
    assert len(json.loads(run("list", "--json").stdout)) == 2


def test_interactive_new_with_numbered_choices_and_arabic(run: Run) -> None:
    answers = (
        "\n".join(
            [
                "خالد",  # person.name
                "1",  # sex: male
                "",  # age skipped
                "",  # occupation
                "",  # hometown
                "2013-10-12",  # date
                "",  # precision
                "1",  # event: arrest
                "1",  # governorate: damascus
                "",  # district
                "المزة",  # place
                "n",  # coordinates?
                "2",  # perpetrator: regime security
                "",  # facility
                "n",  # family contact?
                "1",  # status: missing
                "n",  # add status update?
                "اعتقل من منزله",  # narrative line
                "",  # end of narrative
            ]
        )
        + "\n"
    )
    result = run("new", "disappearance", input=answers)
    assert result.exit_code == 0, result.stdout + result.stderr
    record = json.loads(run("list", "--json").stdout)[0]["record"]
    saved = json.loads(run("show", record, "--json").stdout)["answers"]
    assert saved == {
        "person": {"name": "خالد", "sex": "male"},
        "date": "2013-10-12",
        "event": "arrest",
        "location": {"governorate": "damascus", "place": "المزة"},
        "perpetrator_party": "regime_security",
        "status": "missing",
        "narrative": "اعتقل من منزله",
    }


def test_interactive_new_rejects_bad_values_and_insists_on_required_ones(run: Run) -> None:
    answers = (
        "\n".join(
            [
                "",  # name is required: asked again
                "Nour",
                "9",
                "2",
                "",
                "",
                "",
                "not a date",
                "2013-13-40",
                "2013-10-12",
                "",
                "1",
                "1",
                "",
                "",
                "n",
                "1",
                "",
                "n",
                "1",
                "n",
                "",
            ]
        )
        + "\n"
    )
    result = run("new", "disappearance", input=answers)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "This field is required." in result.stdout
    assert "choose a number from 1 to 3" in result.stdout
    assert "must be a real date" in result.stdout


def test_an_interrupted_new_keeps_a_draft_and_resumes(run: Run) -> None:
    first = run("new", "disappearance", input="Nour\n2\n30\n")  # then input ends
    assert first.exit_code == 130
    assert "kept, encrypted, as a draft" in first.stderr
    rest = (
        "\n".join(
            ["y", "", "", "2013-10-12", "", "1", "1", "", "", "n", "1", "", "n", "1", "n", ""]
        )
        + "\n"
    )
    second = run("new", "disappearance", input=rest)
    assert second.exit_code == 0, second.stdout + second.stderr
    assert "Continue it?" in second.stdout
    record = json.loads(run("list", "--json").stdout)[0]["record"]
    person = json.loads(run("show", record, "--json").stdout)["answers"]["person"]
    assert person == {"name": "Nour", "sex": "female", "age": 30}
    third = run("new", "disappearance", input="")
    assert "Continue it?" not in third.stdout  # the draft went with the save


def test_passwd_changes_the_passphrase_and_keeps_records(run: Run, tmp_path: Path) -> None:
    record = record_from(run, example("disappearance"), tmp_path, "disappearance")
    new = "the new passphrase"
    result = run("passwd", env={"FIELDSYNC_NEW_PASSPHRASE": new})
    assert result.exit_code == 0, result.stderr
    assert run("list").exit_code == 3
    shown = run("show", record, "--json", env={"FIELDSYNC_PASSPHRASE": new})
    assert json.loads(shown.stdout)["answers"] == example("disappearance")


def test_wipe_needs_the_typed_word(run: Run, tmp_path: Path, store_home: Path) -> None:
    record_from(run, example("incident"), tmp_path)
    refused = run("wipe", input="yes\n")
    assert refused.exit_code == 5
    assert (store_home / "vault").exists()
    wiped = run("wipe", input="wipe\n", env={"FIELDSYNC_PASSPHRASE": None})
    assert wiped.exit_code == 0, wiped.stderr
    assert not (store_home / "vault").exists()
    assert run("list").exit_code == 4


def test_check_reports_a_clean_store(run: Run, tmp_path: Path) -> None:
    record_from(run, example("incident"), tmp_path)
    result = run("check", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["ok"] is True


def test_debug_shows_a_traceback_but_never_local_values(run: Run) -> None:
    result = run("--debug", "list", env={"FIELDSYNC_PASSPHRASE": "a secret passphrase"})
    assert result.exit_code == 3
    assert "Traceback" in result.stderr
    assert "a secret passphrase" not in result.stderr


def test_forms_list_and_show(run: Run) -> None:
    listed = json.loads(run("forms", "list", "--json").stdout)
    assert [f["id"] for f in listed] == ["disappearance", "incident", "interview"]
    assert all(f["title_ar"] for f in listed)
    shown = json.loads(run("forms", "show", "incident", "--json").stdout)
    assert shown["schema"]["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "تقرير حادثة" in run("forms", "show", "incident").stdout


def test_show_of_a_damaged_record_warns_and_exits_with_integrity(
    run: Run, tmp_path: Path, store_home: Path
) -> None:
    import sqlite3

    record = record_from(run, example("incident"), tmp_path)
    run("edit", record, "--set", "victims.total=9")
    latest = json.loads(run("history", record, "--json").stdout)["versions"][-1]["version"]
    with sqlite3.connect(store_home / "store.db") as db:
        (raw,) = db.execute("select raw from entries where id=?", (latest,)).fetchone()
        db.execute("update entries set raw=? where id=?", (raw[:-1] + bytes([raw[-1] ^ 1]), latest))
    result = run("show", record, "--json")
    assert result.exit_code == 6
    shown = json.loads(result.stdout)
    assert shown["answers"]["victims"]["total"] == 5
    assert shown["problems"]
    assert "warning: no current version" in result.stderr
    check = run("check")
    assert check.exit_code == 6
    assert latest[:12] in check.stdout


def test_a_store_header_below_the_kdf_floor_is_refused(run: Run, store_home: Path) -> None:
    vault = store_home / "vault"
    doc = json.loads(vault.read_bytes())
    doc["kdf"]["memlimit"] = 1024 * 1024
    vault.write_bytes(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())
    result = run("list")
    assert result.exit_code == 7
    assert "outside the accepted range" in result.stderr


def test_no_passphrase_source_at_all_is_a_clear_error(run: Run) -> None:
    result = run("list", env={"FIELDSYNC_PASSPHRASE": None}, input="")
    assert result.exit_code == 5
    assert "no passphrase was given" in result.stderr
    assert "FIELDSYNC_PASSPHRASE" in result.stderr


def test_interactive_edit_asks_which_fields_to_change(run: Run, tmp_path: Path) -> None:
    record = record_from(run, example("incident"), tmp_path)
    result = run("edit", record, input="victims.total\n11\nnot.a.field\nlocation.place\nسراقب\n\n")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "has no field 'not.a.field'" in result.stdout
    answers = json.loads(run("show", record, "--json").stdout)["answers"]
    assert answers["victims"]["total"] == 11
    assert answers["location"]["place"] == "سراقب"


def test_interactive_incident_with_lists_groups_and_several_choices(run: Run) -> None:
    answers = (
        "\n".join(
            [
                "6, 8",  # violations: attack on a vital facility, outlawed weapon
                "2024-03-05",
                "",  # date, precision
                "4",
                "",
                "كفرنبل",
                "n",  # location: Idlib, district, place, no coordinates
                "1,5",
                "3",  # perpetrator: regime army + Russian forces, joint
                "y",
                "٣",
                "1",
                "",  # victims: total (Arabic-Indic digit), children, adult women
                "",  # what happened to them: asked, as it is neither a killing nor an arrest
                "y",
                "سارة",
                "7",
                "2",
                "1",
                "",  # one listed victim
                "n",  # no more victims
                "1",
                "1",  # facility: medical; weapons: cluster munitions
                "y",
                "2",
                "2",
                "",
                "",
                "n",  # one source: eyewitness, high
                "قصف المستشفى مرتين",
                "second line",
                "",  # narrative over two lines
            ]
        )
        + "\n"
    )
    result = run("new", "incident", input=answers)
    assert result.exit_code == 0, result.stdout + result.stderr
    record = json.loads(run("list", "--json").stdout)[0]["record"]
    saved = json.loads(run("show", record, "--json").stdout)["answers"]
    (victim,) = saved["victims"].pop("individuals")
    assert re.fullmatch(r"[0-9a-f-]{36}", victim.pop("id"))  # list items get ids, for merging
    assert victim == {"name": "سارة", "age": 7, "sex": "female", "status": "killed"}
    assert saved["sources"][0].pop("id")
    assert saved == {
        "violations": ["attack_on_vital_facility", "outlawed_weapon"],
        "date": "2024-03-05",
        "location": {"governorate": "idlib", "place": "كفرنبل"},
        "perpetrator": {
            "parties": ["regime_army", "russian_forces"],
            "attribution": "joint_undetermined",
        },
        "victims": {"total": 3, "children": 1},
        "facility_type": "medical_facility",
        "weapons": ["cluster_munitions"],
        "sources": [{"type": "eyewitness", "certainty": "high"}],
        "narrative": "قصف المستشفى مرتين\nsecond line",
    }


def test_a_wrong_choice_at_the_prompt_asks_for_a_number(run: Run) -> None:
    answers = (
        "\n".join(
            [
                "Nour",
                "female",
                "",
                "",
                "",
                "2013-10-12",
                "",
                "detained",
                "Arrest",
                "دمشق",
                "",
                "",
                "n",
                "1",
                "",
                "n",
                "1",
                "n",
                "",
            ]
        )
        + "\n"
    )
    result = run("new", "disappearance", input=answers)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "'detained' is not one of the choices; type its number (1 to 3)" in result.stdout
    record = json.loads(run("list", "--json").stdout)[0]["record"]
    saved = json.loads(run("show", record, "--json").stdout)["answers"]
    assert saved["person"]["sex"] == "female"  # by value
    assert saved["event"] == "arrest"  # by English label
    assert saved["location"]["governorate"] == "damascus"  # by Arabic label


def test_admin_init_writes_the_public_keys_and_prints_the_fingerprint(tmp_path: Path) -> None:
    env = {"FIELDSYNC_PASSPHRASE": PASSPHRASE}
    public = tmp_path / "org.json"
    home = tmp_path / "admin"
    result = CliRunner().invoke(
        app, ["admin", "init", "--home", str(home), "--public-out", str(public), "--json"], env=env
    )
    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)
    assert re.fullmatch(r"(\d{5} ){7}\d{5}", shown["fingerprint"])
    assert json.loads(public.read_text())["admin_key"] == shown["admin_key"]
    again = CliRunner().invoke(
        app, ["admin", "init", "--home", str(tmp_path / "b"), "--public-out", str(public)], env=env
    )
    assert again.exit_code == 5
    assert "already exists" in again.stderr


def test_enroll_server_init_and_run_refuse_bad_input_clearly(run: Run, tmp_path: Path) -> None:
    garbage = run("enroll", "not an invite at all")
    assert garbage.exit_code == 5
    assert "neither an invite" in garbage.stderr
    damaged = run("enroll", "fieldsync-invite-v1:AAAA.BBBB")
    assert damaged.exit_code == 6
    assert "invite" in damaged.stderr
    missing_org = CliRunner().invoke(
        app, ["server", "init", "--data", str(tmp_path / "s"), "--org", str(tmp_path / "nope.json")]
    )
    assert missing_org.exit_code == 5
    assert not (tmp_path / "s").exists()
    not_org = tmp_path / "not-org.json"
    not_org.write_text('{"hello": 1}')
    wrong = CliRunner().invoke(
        app, ["server", "init", "--data", str(tmp_path / "s"), "--org", str(not_org)]
    )
    assert wrong.exit_code == 6
    assert "public-keys file" in wrong.stderr
    no_server = CliRunner().invoke(app, ["server", "run", "--data", str(tmp_path / "none")])
    assert no_server.exit_code == 4
    assert "server init" in no_server.stderr


def test_list_search_finds_by_summary_form_or_id_ignoring_case(run: Run, tmp_path: Path) -> None:
    incident = record_from(run, example("incident"), tmp_path)
    interview = record_from(run, example("interview"), tmp_path, form="interview")
    listed = {r["record"]: r for r in json.loads(run("list", "--json").stdout)}
    word = listed[incident]["summary"].split(" · ")[-1]  # a word of the incident's summary
    assert word and word.casefold() not in listed[interview]["summary"].casefold()

    def found(text: str) -> list[str]:
        result = run("list", "--search", text, "--json")
        assert result.exit_code == 0, result.stderr
        return [r["record"] for r in json.loads(result.stdout)]

    assert found(word.upper()) == [incident]
    assert found("INTERVIEW") == [interview]
    assert found(interview[:13]) == [interview]
    assert found("nothing like this anywhere") == []
    assert "0 record(s)" in run("list", "--search", "nothing like this").stdout


def test_a_long_list_is_plain_lines_with_record_text_still_shown_literally(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Above PLAIN_ABOVE rows the list is aligned plain lines (a rich table of 100,000 rows took
    90 s to lay out); escapes, bidi controls and line breaks stay visible there too (a summary
    can hold any text pulled from another device)."""
    monkeypatch.setattr(read_cmds, "PLAIN_ABOVE", 1)
    record_from(run, example("incident"), tmp_path)
    record_from(run, example("incident"), tmp_path)
    result = run("list")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["record", "form", "versions", "files", "updated", "summary"]
    assert len(lines) == 4 and lines[-1] == "2 record(s)"
    hostile = IndexEntry(
        "01a230ea-2ab0-7000-8000-000000000000",
        (),
        form="incident@1",
        summary="2024 \x1b[2J\u202eevil\nnext line [red]x[/red]",
        versions=1,
    )
    read_cmds._print_plain([hostile], {hostile.record: hostile.record[:13]})
    shown = capsys.readouterr().out
    assert "\x1b" not in shown and "\u202e" not in shown
    assert "\\x1b[2J\\u202eevil\\nnext line [red]x[/red]" in shown.splitlines()[1]
