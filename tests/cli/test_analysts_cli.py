"""Analysts of their own, through the CLI against a real server: invited with a role, certified
in the organisation's log, given the read keys in a sealed bundle; they pull, edit and push
under their own keys, devices trust them by the log, a rotation reaches them, and a revoked
analyst is refused."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fieldsync.core import crypto, orglog
from fieldsync.errors import AccessDenied, SignatureInvalid
from fieldsync.store.store import Store
from fieldsync.transport.client import SyncClient
from tests.cli.conftest import Run, as_json, organisation


@contextlib.contextmanager
def staff(run: Run, tmp_path: Path) -> Iterator[tuple[Any, Any, Any, str]]:
    """An organisation (a device with one record, pushed) and an analyst, Amal, enrolled."""
    with organisation(run, tmp_path) as (in_admin_store, url, _org, record):
        assert as_json(run("push", "--json"))["delivered"] == 1
        env = {"FIELDSYNC_HOME": str(tmp_path / "amal"), "FIELDSYNC_PASSPHRASE": "amal's own pass"}

        def amal(*args: str) -> Any:
            return run(*args, env=env)

        assert amal("init").exit_code == 0
        invite = as_json(
            in_admin_store(
                "admin", "invite", "Amal", "--server", url, "--role", "analyst", "--json"
            )
        )
        expect = invite["organisation_fingerprint"]
        enrolled = amal("enroll", invite["invite"], "--expect-fingerprint", expect)
        assert enrolled.exit_code == 0, enrolled.stderr
        yield in_admin_store, amal, url, record


def test_an_analyst_pulls_edits_and_pushes_under_their_own_key(run: Run, tmp_path: Path) -> None:
    with staff(run, tmp_path) as (in_admin_store, amal, _url, record):
        waiting = amal("pull", "--json")
        assert waiting.exit_code == 7
        assert "has not yet given this store the organisation's keys" in waiting.stdout

        shown = in_admin_store("admin", "devices", env={"COLUMNS": "300"})
        assert "analyst" in shown.stdout and "not yet certified" in shown.stdout
        pulled = as_json(in_admin_store("admin", "pull", "--json"))
        assert pulled["certified"] == ["Amal"]
        registry = {
            row["name"]: row for row in as_json(in_admin_store("admin", "devices", "--json"))
        }
        assert (registry["Amal"]["role"], registry["Amal"]["certified"]) == ("analyst", True)
        assert (registry["laptop"]["role"], registry["laptop"]["certified"]) == ("device", False)
        assert as_json(in_admin_store("admin", "pull", "--json"))["certified"] == []  # once

        assert as_json(amal("pull", "--json"))["received"] == 1
        assert [row["record"] for row in as_json(amal("list", "--json"))] == [record]
        edited = amal("edit", record, "--set", "victims.total=7", "--note", "checked")
        assert edited.exit_code == 0, edited.stderr
        assert as_json(amal("push", "--json"))["delivered"] == 1

        # the device trusts the analyst by the log's certification, and names them
        assert as_json(run("pull", "--json"))["received"] == 1
        shown = as_json(run("show", record, "--json"))
        assert shown["answers"]["victims"]["total"] == 7
        history = run("history", record)
        assert "analyst Amal" in history.stdout, history.stdout

        assert as_json(in_admin_store("admin", "pull", "--json"))["received"] == 1
        server = tmp_path / "server"
        assert as_json(in_admin_store("admin", "verify", "--data", str(server), "--json"))["ok"]
        with sqlite3.connect(server / "server.db") as db:
            assert db.execute("select count(*) from quarantine").fetchone() == (0,)

        # the analyst reports over what the organisation received
        report = as_json(amal("admin", "report", "--json"))
        assert report
        # the evidence package names the analyst who made a version, with their enrolment
        package = tmp_path / "case.zip"
        built = in_admin_store("admin", "evidence", record, "--out", str(package), "--json")
        assert built.exit_code == 0, built.stderr
        checked = as_json(in_admin_store("evidence-verify", str(package), "--json"))
        assert checked["holds"] is True
        # Amal makes one of her own, signed by her key, which the log in it certifies
        mine = tmp_path / "amal.zip"
        assert amal("admin", "evidence", record, "--out", str(mine)).exit_code == 0
        org = str(tmp_path / "org.json")
        theirs = as_json(amal("evidence-verify", str(mine), "--org", org, "--json"))
        assert theirs["holds"] and "analyst 'Amal'" in json.dumps(theirs["findings"])
        with zipfile.ZipFile(package) as opened:
            names = opened.namelist()
            text = "\n".join(
                opened.read(n).decode("utf-8", "replace") for n in names if n.endswith(".json")
            )
        assert "Amal" in text


def test_a_rotation_reaches_the_analyst_and_revoking_them_refuses_what_they_send(
    run: Run, tmp_path: Path
) -> None:
    with staff(run, tmp_path) as (in_admin_store, amal, _url, record):
        as_json(in_admin_store("admin", "pull", "--json"))
        as_json(amal("pull", "--json"))
        rotated = as_json(in_admin_store("admin", "rotate-read-key", "--json"))
        assert rotated["epoch"] == 2

        answers = tmp_path / "incident.json"
        later = as_json(run("new", "incident", "--from-file", str(answers), "--json"))["record"]
        assert as_json(run("push", "--json"))["delivered"] == 1
        assert as_json(amal("pull", "--json"))["received"] == 1  # wrapped for key 2
        assert as_json(amal("show", later, "--json"))["record"] == later
        status = as_json(amal("status", "--json"))
        assert status["read_key_epoch"] == 2

        assert amal("edit", record, "--set", "victims.total=3").exit_code == 0
        revoked = in_admin_store("admin", "revoke", "Amal", "--yes", "--rotate")
        assert revoked.exit_code == 0, revoked.stderr
        assert "cannot take back what they already hold" in revoked.stderr
        with sqlite3.connect(tmp_path / "server" / "server.db") as db:
            (stored,) = db.execute("select count(*) from stored_entries").fetchone()
        refused = amal("push", "--json")
        assert refused.exit_code == 9  # DeviceRevoked, at its first request
        assert json.loads(refused.stdout)["kind"] == "DeviceRevoked"
        with sqlite3.connect(tmp_path / "server" / "server.db") as db:
            assert db.execute("select count(*) from stored_entries").fetchone() == (stored,)
        # the device follows the revocation: the analyst is no longer trusted
        assert run("push", "--json").exit_code == 0
        joined = as_json(run("status", "--json"))
        assert joined["read_key_epoch"] == 3
        # a package Amal makes now holds alone (her copy of the log ends before her
        # revocation) and fails against the organisation's log as it stands
        package, log = tmp_path / "amal.zip", tmp_path / "org-log.json"
        made = amal("admin", "evidence", record, "--out", str(package))
        assert made.exit_code == 0, made.stderr
        org = str(tmp_path / "org.json")
        assert as_json(amal("evidence-verify", str(package), "--org", org, "--json"))["holds"]
        assert in_admin_store("admin", "org-log", "--out", str(log)).exit_code == 0
        checked = amal(
            "evidence-verify", str(package), "--org", org, "--org-log", str(log), "--json"
        )
        assert checked.exit_code != 0
        assert "after the organisation's log revoked them" in checked.stdout


def test_an_analyst_cannot_invite_revoke_or_rotate(run: Run, tmp_path: Path) -> None:
    with staff(run, tmp_path) as (in_admin_store, amal, url, _record):
        as_json(in_admin_store("admin", "pull", "--json"))
        for args in (
            ("admin", "invite", "laptop 9", "--server", url, "--json"),
            ("admin", "revoke", "laptop", "--yes", "--json"),
            ("admin", "rotate-read-key", "--json"),
        ):
            result = amal(*args)
            assert result.exit_code == 7, (args, result.stdout)
            assert json.loads(result.stdout)["kind"] == "NotAdminStore"
        # and the server refuses the same requests signed with the analyst's own key
        with Store.open(tmp_path / "amal", "amal's own pass") as store:
            signer = store.identity.signer
        with SyncClient(url, signer=signer) as client:
            device = next(d for d in client.devices() if d.name == "laptop")
            with pytest.raises(AccessDenied, match="only the organisation's administrator"):
                client.revoke(device.device)
            with pytest.raises(AccessDenied, match="only the organisation's administrator"):
                client.put_bundle(device.device, b"{}")
            forged = orglog.sign(
                signer,
                orglog.OrgState.root(signer.public.hex(), "00" * 32, "00" * 32),
                orglog.READ_KEY,
                {"epoch": 2, "read_key": crypto.BoxPair.generate().public.hex()},
                time_ms=1,
            )
            with pytest.raises(SignatureInvalid, match="not the organisation's"):
                client.send_statement(forged)
