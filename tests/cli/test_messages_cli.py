"""What a person reads when something goes wrong, as the command line says it (issue 16,
items 6 and 7): each message says what happened, what was lost and what to do next."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fieldsync.core import crypto, invite
from fieldsync.errors import InputError
from fieldsync.services import enrol
from fieldsync.transport.client import SyncClient
from tests.cli.conftest import Run, as_json, organisation
from tests.conftest import PASSPHRASE, example, fast_store, sigint_restored
from tests.terminal import at_terminal


def admin_home(folder: Path) -> dict[str, str]:
    """An administrator's store of its own, for ``run(..., env=admin_home(tmp_path))``."""
    return {"FIELDSYNC_HOME": str(folder / "admin")}


def test_a_revoked_device_is_told_so_with_its_own_exit_code_and_keeps_its_queue(
    run: Run, tmp_path: Path
) -> None:
    with organisation(run, tmp_path) as (in_admin_store, _url, _org, _record):
        (laptop,) = as_json(in_admin_store("admin", "devices", "--json"))
        revoked = in_admin_store("admin", "revoke", laptop["device"], "--yes")
        assert revoked.exit_code == 0, revoked.stderr
        queued = as_json(run("status", "--json"))["pending"]
        assert queued == 1

        pushed = run("push")
        assert pushed.exit_code == 9, pushed.stderr
        assert "revoked by the organisation's administrator" in pushed.stderr
        assert "hint: Nothing was lost on this device" in pushed.stderr
        assert "do not keep retrying" in pushed.stderr
        assert as_json(run("status", "--json"))["pending"] == queued

        pulled = run("pull")
        assert pulled.exit_code == 9, pulled.stderr
        assert "hint: Nothing was lost on this device" in pulled.stderr


def test_admin_revoke_takes_a_name_and_refuses_one_that_names_two_devices(
    run: Run, tmp_path: Path
) -> None:
    with organisation(run, tmp_path) as (in_admin_store, url, _org, _record):
        invite = as_json(in_admin_store("admin", "invite", "laptop", "--server", url, "--json"))
        with fast_store(tmp_path / "second") as second:
            enrol.enrol(
                second, invite["invite"], expect_fingerprint=invite["organisation_fingerprint"]
            )
        ids = {d["device"] for d in as_json(in_admin_store("admin", "devices", "--json"))}
        assert len(ids) == 2

        both = in_admin_store("admin", "revoke", "laptop", "--yes")
        assert both.exit_code == 5, both.stderr
        assert "'laptop' names 2 enrolled devices" in both.stderr
        assert all(key in both.stderr for key in ids)
        assert {d["status"] for d in as_json(in_admin_store("admin", "devices", "--json"))} == {
            "active"
        }

        one = second.identity.device_id
        assert in_admin_store("admin", "revoke", one[:12], "--yes").exit_code == 0
        statuses = {
            d["device"]: d["status"] for d in as_json(in_admin_store("admin", "devices", "--json"))
        }
        assert statuses == {one: "revoked"} | dict.fromkeys(ids - {one}, "active")


def test_admin_revoke_by_name_asks_first_and_needs_yes_without_a_terminal(
    run: Run, tmp_path: Path
) -> None:
    with organisation(run, tmp_path) as (in_admin_store, _url, _org, _record):
        (laptop,) = as_json(in_admin_store("admin", "devices", "--json"))
        unasked = in_admin_store("admin", "revoke", "laptop")
        assert unasked.exit_code == 5, unasked.stderr
        assert "no terminal" in unasked.stderr and "hint: Pass --yes" in unasked.stderr

        env = {"FIELDSYNC_HOME": str(tmp_path / "admin")}
        question = f"Revoke device 'laptop' (id {laptop['device']}, fingerprint ".encode()
        code, shown = at_terminal(["admin", "revoke", "laptop"], [(question, b"n\n")], env)
        assert code == 5, shown
        assert "not confirmed; nothing was revoked" in shown
        (still,) = as_json(in_admin_store("admin", "devices", "--json"))
        assert still["status"] == "active"

        code, shown = at_terminal(["admin", "revoke", "laptop"], [(question, b"y\n")], env)
        assert code == 0, shown
        assert "Revoked device 'laptop'" in shown
        (gone,) = as_json(in_admin_store("admin", "devices", "--json"))
        assert gone["status"] == "revoked"


def test_a_second_server_init_names_the_data_option(run: Run, tmp_path: Path) -> None:
    org = tmp_path / "org.json"
    assert run("admin", "init", "--public-out", str(org), env=admin_home(tmp_path)).exit_code == 0
    folder = str(tmp_path / "server")
    assert run("server", "init", "--data", folder, "--org", str(org)).exit_code == 0
    again = run("server", "init", "--data", folder, "--org", str(org))
    assert again.exit_code == 7, again.stderr
    assert "hint: Nothing was changed. Use another --data folder" in again.stderr
    assert "--home" not in again.stderr


def test_a_server_url_without_a_scheme_is_refused_up_front_everywhere(
    run: Run, tmp_path: Path
) -> None:
    nowhere = {"FIELDSYNC_HOME": str(tmp_path / "no store here")}  # checked before the store
    for args in (
        ["admin", "invite", "laptop", "--server", "127.0.0.1:18443"],
        ["admin", "devices", "--server", "127.0.0.1:18443"],
        ["admin", "revoke", "laptop", "--yes", "--server", "127.0.0.1:18443"],
        ["admin", "import-file", str(tmp_path / "carried"), "--server", "127.0.0.1:18443"],
    ):
        refused = run(*args, env=nowhere)
        assert refused.exit_code == 5, (args, refused.stderr)
        assert "'127.0.0.1:18443' is not a server URL" in refused.stderr, args
        assert "hint: Add https:// (or http:// for a test server)" in refused.stderr
        assert "dropped" not in refused.stderr
    with pytest.raises(InputError, match="does not start with https:// or http://"):
        SyncClient("127.0.0.1:18443")
    with pytest.raises(InputError, match="not a server URL fieldsync can use"):
        SyncClient("https://exa mple.org")


def test_an_invite_cut_when_copied_is_called_incomplete_not_a_non_invite(run: Run) -> None:
    text = invite.issue(
        crypto.SigningPair.generate(),
        name="desk",
        server="https://fieldsync.example.org",
        server_key=crypto.random_bytes(32),
        org_read_key=crypto.random_bytes(32),
        expires_ms=2**45,
    )
    for cut in (len(invite.PREFIX) + 10, len(text) // 2, len(text) - 5):
        refused = run("enroll", text[:cut])
        assert refused.exit_code == 6, refused.stderr
        assert "this invite is incomplete or damaged (probably cut when it was copied)" in (
            refused.stderr
        )
        assert "should start with" not in refused.stderr
    other = run("enroll", "hello")
    assert other.exit_code == 5 and "incomplete" not in other.stderr


def test_ctrl_c_at_the_passphrase_prompt_is_an_interruption(store_home: Path) -> None:
    env = {"FIELDSYNC_HOME": str(store_home), "FIELDSYNC_PASSPHRASE": ""}
    code, shown = at_terminal(["list"], [(b"Passphrase:", b"\x03")], env)
    assert code == 130, shown
    assert "interrupted at the passphrase prompt; nothing was changed" in shown
    assert "no passphrase was given" not in shown


def test_without_a_terminal_the_passphrase_is_refused_without_getpass_warnings(
    store_home: Path,
) -> None:
    env = os.environ | {"FIELDSYNC_HOME": str(store_home), "FIELDSYNC_PASSPHRASE": ""}
    done = subprocess.run(
        [sys.executable, "-m", "fieldsync", "list"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        start_new_session=True,  # no controlling terminal: getpass cannot open /dev/tty
        timeout=60,
        check=False,
    )
    assert done.returncode == 5, done.stderr
    assert "Warning" not in done.stderr and ".py" not in done.stderr, done.stderr
    assert "error: the passphrase cannot be asked for: there is no terminal" in done.stderr
    assert "hint: Set FIELDSYNC_PASSPHRASE, or pass --passphrase-file FILE" in done.stderr


def interrupted_at(url: str, args: list[str], home: Path) -> tuple[int, str]:
    """Run ``fieldsync ARGS`` against a server at ``url`` that takes the connection and never
    answers, and press Ctrl-C (SIGINT) once the command is waiting on it."""
    port = int(url.rsplit(":", 1)[1])
    with socket.socket() as silent:
        silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        silent.bind(("127.0.0.1", port))
        silent.listen()
        silent.settimeout(60)
        child = subprocess.Popen(
            [sys.executable, "-m", "fieldsync", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ | {"FIELDSYNC_HOME": str(home), "FIELDSYNC_PASSPHRASE": PASSPHRASE},
            preexec_fn=sigint_restored,
        )
        taken, _ = silent.accept()  # the command is now waiting for an answer
        with taken:
            time.sleep(0.3)
            child.send_signal(signal.SIGINT)
            try:
                _, stderr = child.communicate(timeout=30)
            finally:
                if child.poll() is None:  # never left running, to fail later tests too
                    child.kill()
                    child.communicate()
    return child.returncode, stderr


def test_ctrl_c_during_push_and_pull_says_what_stays_queued_and_that_they_resume(
    run: Run, tmp_path: Path, store_home: Path
) -> None:
    with organisation(run, tmp_path) as (_in_admin_store, url, _org, record):
        photo = tmp_path / "photo.jpg"
        photo.write_bytes(os.urandom(4096))
        assert run("attach", record[:12], str(photo)).exit_code == 0
    assert as_json(run("status", "--json"))["pending"] == 2  # the incident and its new version

    code, stderr = interrupted_at(url, ["push"], store_home)
    assert code == 130, stderr
    assert (
        "push interrupted; nothing was lost: 2 versions and 1 attachment stay queued on this device"
    ) in stderr
    assert "hint: Run 'fieldsync push' again: it resumes where it stopped." in stderr
    assert "was not saved" not in stderr
    assert as_json(run("status", "--json"))["pending"] == 2

    code, stderr = interrupted_at(url, ["pull"], store_home)
    assert code == 130, stderr
    assert "pull interrupted; 0 versions received and checked so far are kept" in stderr
    assert "hint: Run 'fieldsync pull' again: it resumes where it stopped." in stderr


def test_a_date_in_another_form_is_refused_once_saying_yyyy_mm_dd(run: Run, tmp_path: Path) -> None:
    typed = ["1", "yesterday", "12/03/2024", "2024-3-5"]
    asked = run("new", "incident", input="\n".join(typed) + "\n")
    said = "Date of the incident must be a real date written YYYY-MM-DD (e.g. 2024-03-05), not "
    for wrong in typed[1:]:
        assert asked.stdout.count(f"{said}{wrong!r}") == 1, asked.stdout

    answers = tmp_path / "incident.json"
    answers.write_text(json.dumps(example("incident")), encoding="utf-8")
    record = as_json(run("new", "incident", "--from-file", str(answers), "--json"))["record"]
    for wrong in typed[1:]:
        refused = run("edit", record[:12], "--set", f"date={wrong}")
        assert refused.exit_code == 5, refused.stderr
        assert refused.stderr.count("must be a real date") == 1, refused.stderr
        assert f"{said}{wrong!r}" in refused.stderr


def test_answers_too_large_are_refused_naming_the_limit(run: Run, tmp_path: Path) -> None:
    big = example("incident") | {"narrative": "x" * (20 * 1024 * 1024)}
    answers = tmp_path / "big.json"
    answers.write_text(json.dumps(big), encoding="utf-8")
    refused = run("new", "incident", "--from-file", str(answers))
    assert refused.exit_code == 5, refused.stderr
    assert "(20 MiB; the limit is 16 MiB" in refused.stderr

    answers.write_text(json.dumps(big | {"narrative": "x" * 200_000}), encoding="utf-8")
    field = run("new", "incident", "--from-file", str(answers))
    assert "Narrative is too long (at most 100000 characters)" in field.stderr

    rows = tmp_path / "rows.csv"
    rows.write_text("narrative\n" + "x" * (17 * 1024 * 1024) + "\n", encoding="utf-8")
    line = run("import", "incident", str(rows))
    assert line.exit_code == 5, line.stderr
    assert "line 2 of 'rows.csv' is too long (more than 16 MiB, the limit for one line)" in (
        line.stderr
    )
