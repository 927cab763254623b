"""Rotating the organisation's read key, through the CLI against a real server: devices follow
the announcement on their next push, old records stay readable to the administrator, an old
read key opens nothing written after, and a server that hides the rotation is refused."""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from fieldsync.core import crypto, orglog
from fieldsync.store import orgkeys
from fieldsync.store.store import Store
from tests.cli.conftest import Run, as_json, organisation
from tests.conftest import PASSPHRASE, example

SECOND = "a second documenter's passphrase"


def _new(run: Run, folder: Path, **env: Any) -> str:
    answers = folder / "answers.json"
    answers.write_text(json.dumps(example("incident")), encoding="utf-8")
    made = run("new", "incident", "--from-file", str(answers), "--json", env=env or None)
    return str(as_json(made)["record"])


def _org_wraps(server: Path, record: str) -> list[bytes]:
    with sqlite3.connect(server / "server.db") as db:
        rows = db.execute("select org_wrap from stored_entries where record = ?", (record,))
        return [bytes(row[0]) for row in rows]


def _read_key_secrets(admin_home: Path) -> list[crypto.BoxPair]:
    with Store.open(admin_home, PASSPHRASE) as store:
        return [secret.pair for secret in orgkeys.read_keys(store)]


def test_devices_follow_a_rotation_and_the_old_key_opens_nothing_after_it(
    run: Run, tmp_path: Path
) -> None:
    with organisation(run, tmp_path) as (in_admin_store, url, _org, before):
        # a second device, enrolled before the rotation, records offline across it
        other_home = str(tmp_path / "second")
        other = {"FIELDSYNC_HOME": other_home, "FIELDSYNC_PASSPHRASE": SECOND}
        assert run("init", env=other).exit_code == 0
        invite = as_json(in_admin_store("admin", "invite", "laptop 2", "--server", url, "--json"))
        fingerprint = invite["organisation_fingerprint"]
        enrolled = run("enroll", invite["invite"], "--expect-fingerprint", fingerprint, env=other)
        assert enrolled.exit_code == 0, enrolled.stderr
        offline = _new(run, tmp_path, **other)
        assert as_json(run("push", "--json"))["delivered"] == 1

        rotated = as_json(in_admin_store("admin", "rotate-read-key", "--json"))
        assert (rotated["epoch"], rotated["seq"], rotated["resent"]) == (2, 1, False)
        assert rotated["backed_up"] is False  # and the command warned that there is no backup

        after = _new(run, tmp_path)
        assert as_json(run("push", "--json"))["delivered"] == 1
        assert as_json(run("push", "--json", env=other))["delivered"] == 1

        first_key, second_key = _read_key_secrets(tmp_path / "admin")
        server = tmp_path / "server"
        (old_wrap,) = _org_wraps(server, before)
        assert first_key.unwrap(old_wrap, what="before")
        # what was written after the rotation, and what was recorded before it but delivered
        # after, is wrapped for the new key: a copy of the old one opens none of it
        for record in (after, offline):
            (wrap,) = _org_wraps(server, record)
            with pytest.raises(Exception, match="cannot be unwrapped"):
                first_key.unwrap(wrap, what=record)
            assert second_key.unwrap(wrap, what=record)

        assert as_json(in_admin_store("admin", "pull", "--json"))["received"] == 3
        listed = {row["record"] for row in as_json(in_admin_store("list", "--json"))}
        assert listed == {before, after, offline}
        verified = as_json(in_admin_store("admin", "verify", "--data", str(server), "--json"))
        assert verified["ok"] is True

        # a second rotation: every key is kept, every record still reads
        assert as_json(in_admin_store("admin", "rotate-read-key", "--json"))["epoch"] == 3
        last = _new(run, tmp_path)
        assert as_json(run("push", "--json"))["delivered"] == 1
        assert as_json(in_admin_store("admin", "pull", "--json"))["received"] == 1
        for record in (before, after, offline, last):
            assert as_json(in_admin_store("show", record, "--json"))["record"] == record


def test_a_server_that_hides_a_rotation_is_refused_and_nothing_is_sent(
    run: Run, tmp_path: Path
) -> None:
    with organisation(run, tmp_path) as (in_admin_store, _url, _org, _record):
        assert as_json(in_admin_store("admin", "rotate-read-key", "--json"))["epoch"] == 2
        assert as_json(run("push", "--json"))["delivered"] == 1  # the device followed it
        _new(run, tmp_path)
        with sqlite3.connect(tmp_path / "server" / "server.db") as db:
            db.execute("delete from org_statements")  # restored from before, or hidden
        refused = run("push", "--json")
        assert refused.exit_code == 6
        error = json.loads(refused.stdout)
        assert error["kind"] == "RolledBack"
        assert "older than the 1 this store has followed" in error["error"]
        with sqlite3.connect(tmp_path / "server" / "server.db") as db:
            assert db.execute("select count(*) from stored_entries").fetchone() == (1,)


def test_a_replayed_announcement_changes_nothing_and_a_stale_copy_is_a_fork(
    run: Run, tmp_path: Path
) -> None:
    """The same announcement again is the same log; an administrator's store copied before a
    rotation that rotates again signs a second statement at the same seq: refused as a fork,
    kept, and every reader then stops following at it and says so."""
    with organisation(run, tmp_path) as (in_admin_store, url, _org, _record):
        shutil.copytree(tmp_path / "admin", tmp_path / "stale")
        assert as_json(in_admin_store("admin", "rotate-read-key", "--json"))["epoch"] == 2
        assert as_json(run("push", "--json"))["delivered"] == 1
        server = tmp_path / "server"
        with sqlite3.connect(server / "server.db") as db:
            (statement,) = db.execute("select raw from org_statements").fetchone()

        replayed = httpx.post(f"{url}/v1/org/statements", content=bytes(statement))
        assert replayed.status_code == 200
        assert len(replayed.json()["statements"]) == 1

        # the copy catches up with the log before it signs, and refuses: it lacks read key 2
        stale_env = {"FIELDSYNC_HOME": str(tmp_path / "stale")}
        stale = in_admin_store("admin", "rotate-read-key", "--json", env=stale_env)
        assert stale.exit_code == 7, stale.stdout
        assert "does not hold read key 2" in json.loads(stale.stdout)["error"]
        # signed offline (as a thief of the key would), a second statement 1 is a fork
        with Store.open(tmp_path / "stale", PASSPHRASE) as copy:
            root = orgkeys.root(copy)
            assert root is not None
            fields = {"epoch": 2, "read_key": crypto.BoxPair.generate().public.hex()}
            forked = orglog.sign(copy.identity.signer, root, orglog.READ_KEY, fields, time_ms=9)
        answer = httpx.post(f"{url}/v1/org/statements", content=forked)
        assert answer.status_code == 409 and answer.json()["error"] == "ChainFork"
        with sqlite3.connect(server / "server.db") as db:
            assert db.execute("select count(*) from org_forks").fetchone() == (1,)
            (fork,) = db.execute("select raw from org_forks").fetchone()
        assert base64.b64encode(bytes(fork)).decode() not in replayed.text

        # every reader is shown the fork at its next push or pull, and follows nothing it had
        # not followed before: the device, which had followed the rotation, stays on key 2
        _new(run, tmp_path)
        pushed = as_json(run("push", "--json"))
        assert pushed["delivered"] == 1
        assert any("signed two different statements at seq 1" in a for a in pushed["alerts"])
        status = as_json(run("status", "--json"))
        assert status["alerts"] == pushed["alerts"] and status["read_key_epoch"] == 2
        shown = run("status")
        assert "alert: the organisation's admin key" in shown.stderr
        assert "Tell your administrator at once" in shown.stderr
        admin_pulled = as_json(in_admin_store("admin", "pull", "--json"))
        assert admin_pulled["alerts"] == pushed["alerts"]


def test_a_device_enrolled_after_a_rotation_refuses_a_server_that_hides_it(
    run: Run, tmp_path: Path
) -> None:
    """The invite carries how far the administrator had followed the log, so even a newcomer's
    first push refuses a server that serves it an older one."""
    with organisation(run, tmp_path) as (in_admin_store, url, _org, _record):
        assert as_json(in_admin_store("admin", "rotate-read-key", "--json"))["epoch"] == 2
        newcomer = {"FIELDSYNC_HOME": str(tmp_path / "new"), "FIELDSYNC_PASSPHRASE": SECOND}
        assert run("init", env=newcomer).exit_code == 0
        invite = as_json(in_admin_store("admin", "invite", "laptop 3", "--server", url, "--json"))
        expect = invite["organisation_fingerprint"]
        joined = run("enroll", invite["invite"], "--expect-fingerprint", expect, env=newcomer)
        assert joined.exit_code == 0, joined.stderr
        with sqlite3.connect(tmp_path / "server" / "server.db") as db:
            db.execute("delete from org_statements")
        refused = run("push", "--json", env=newcomer)
        assert refused.exit_code == 6 and json.loads(refused.stdout)["kind"] == "RolledBack"


def test_the_server_gets_a_new_receipt_key_and_devices_follow_it_without_a_new_invite(
    run: Run, tmp_path: Path
) -> None:
    with organisation(run, tmp_path) as (in_admin_store, _url, org, _before):
        assert as_json(run("push", "--json"))["delivered"] == 1
        offered_none = in_admin_store("admin", "rotate-receipt-key")
        assert offered_none.exit_code != 0 and "server new-receipt-key" in offered_none.stderr
        server = tmp_path / "server"
        made = as_json(run("server", "new-receipt-key", "--data", str(server), "--json"))
        assert made["number"] == 2 and (server / "server-key-2").stat().st_mode & 0o077 == 0
        done = as_json(in_admin_store("admin", "rotate-receipt-key", "--json"))
        assert (done["fingerprint"], done["seq"]) == (made["server_fingerprint"], 1)
        later = _new(run, tmp_path)
        assert as_json(run("push", "--json"))["delivered"] == 1  # its receipt: the new key's
        with sqlite3.connect(server / "server.db") as db:
            (kept,) = db.execute(
                "select receipt from accepted_batches order by received_ms desc limit 1"
            ).fetchone()
        assert json.loads(kept)["receipt"]["server"] == made["server_key"]
        assert as_json(in_admin_store("admin", "pull", "--json"))["received"] == 2
        verified = as_json(in_admin_store("admin", "verify", "--data", str(server), "--json"))
        assert verified["ok"] is True
        package = tmp_path / "later.zip"
        as_json(in_admin_store("admin", "evidence", later, "--out", str(package), "--json"))
        checked = as_json(run("evidence-verify", str(package), "--org", str(org), "--json"))
        assert checked["holds"] is True
