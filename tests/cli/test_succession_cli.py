"""Admin key succession, through the CLI against a real server: the administrator names a new
admin key under the old one; the devices, the analyst and the server follow it without new
invites, and what the retired key signs after it (a request, an invite, a batch, a statement)
is refused. A second succession signed by the retired key at the same seq is a fork, shown to
everyone."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from fieldsync.core import crypto, encoding, invite, orglog
from fieldsync.errors import AccessDenied, SignatureInvalid
from fieldsync.store import orgkeys
from fieldsync.store.store import Store
from fieldsync.transport.client import SyncClient
from tests.cli.conftest import Run, as_json
from tests.cli.test_analysts_cli import staff
from tests.conftest import PASSPHRASE, example


def _keys(admin_home: Path) -> tuple[crypto.SigningPair, list[str]]:
    """The admin key the store signs with, and every admin key its log names."""
    with Store.open(admin_home, PASSPHRASE) as store:
        return store.identity.signer, list(orgkeys.admin_keys_trusted(store))


def _new(run: Run, folder: Path, **env: Any) -> str:
    answers = folder / "answers.json"
    answers.write_text(json.dumps(example("incident")), encoding="utf-8")
    made = run("new", "incident", "--from-file", str(answers), "--json", env=env or None)
    return str(as_json(made)["record"])


def test_everyone_follows_a_succession_and_the_retired_key_is_refused(
    run: Run, tmp_path: Path
) -> None:
    with staff(run, tmp_path) as (in_admin_store, amal, url, record):
        as_json(in_admin_store("admin", "pull", "--json"))  # Amal certified
        assert as_json(amal("pull", "--json"))["received"] == 1
        # a version of the administrator's own, signed by the first key and delivered
        assert in_admin_store("edit", record, "--set", "victims.total=4").exit_code == 0
        assert as_json(in_admin_store("push", "--json"))["delivered"] == 1
        old, _ = _keys(tmp_path / "admin")
        stale_copy, thief_copy = tmp_path / "admin-copy", tmp_path / "thief"
        shutil.copytree(tmp_path / "admin", stale_copy)
        shutil.copytree(tmp_path / "admin", thief_copy)  # follows nothing from now on
        early = tmp_path / "early.zip"  # a package signed by the first key, before
        as_json(in_admin_store("admin", "evidence", record, "--out", str(early), "--json"))

        done = as_json(in_admin_store("admin", "rotate-admin-key", "--json"))
        assert (done["seq"], done["resent"], done["backed_up"]) == (2, False, False)
        assert done["bundles"] == 1  # Amal's bundle, signed again by the new key
        new, chain = _keys(tmp_path / "admin")
        assert new.public != old.public and chain == [old.public.hex(), new.public.hex()]

        # the administrator goes on under the new key: the registry, an edit of its own
        assert as_json(in_admin_store("admin", "devices", "--json"))
        assert in_admin_store("edit", record, "--set", "victims.total=5").exit_code == 0
        assert as_json(in_admin_store("push", "--json"))["delivered"] == 1
        registry = as_json(in_admin_store("admin", "devices", "--json"))
        admin_rows = {r["device"]: r["status"] for r in registry if r["name"] == "administrator"}
        assert admin_rows == {old.public.hex(): "retired", new.public.hex(): "admin"}
        # an invite made now is signed by the new key, and enrols
        other = {
            "FIELDSYNC_HOME": str(tmp_path / "second"),
            "FIELDSYNC_PASSPHRASE": "a second laptop's passphrase",
        }
        assert run("init", env=other).exit_code == 0
        made = as_json(in_admin_store("admin", "invite", "laptop 2", "--server", url, "--json"))
        shown = invite.read(made["invite"], now_ms=None)
        assert (shown.admin_key, shown.signer) == (old.public.hex(), new.public.hex())
        expect = made["organisation_fingerprint"]
        enrolled = run("enroll", made["invite"], "--expect-fingerprint", expect, env=other)
        assert enrolled.exit_code == 0, enrolled.stderr
        fresh = _new(run, tmp_path, **other)
        assert as_json(run("push", "--json", env=other))["delivered"] == 1

        # the first device and the analyst follow the log, and trust both admin keys' versions
        assert as_json(run("pull", "--json"))["received"] == 2
        assert as_json(run("show", record, "--json"))["answers"]["victims"]["total"] == 5
        assert as_json(amal("pull", "--json"))["received"] >= 2  # its bundle opened again
        assert amal("edit", record, "--set", "victims.total=6").exit_code == 0
        assert as_json(amal("push", "--json"))["delivered"] == 1
        later = _new(run, tmp_path)
        assert as_json(run("push", "--json"))["delivered"] == 1

        pulled = as_json(in_admin_store("admin", "pull", "--json"))
        assert pulled["alerts"] == []
        listed = {row["record"] for row in as_json(in_admin_store("list", "--json"))}
        assert {record, fresh, later} <= listed
        server = tmp_path / "server"
        verified = as_json(in_admin_store("admin", "verify", "--data", str(server), "--json"))
        assert verified["ok"] is True, verified

        # what the retired key signs now is refused: a request, an invite, a batch, a statement
        with SyncClient(url, signer=old) as client, pytest.raises(AccessDenied, match="succeeded"):
            client.devices()
        forged = invite.issue(
            old,
            name="thief's laptop",
            server=url,
            server_key=bytes.fromhex(shown.server_key),
            org_read_key=bytes.fromhex(shown.org_read_key),
            expires_ms=shown.expires_ms,
        )
        third = {
            "FIELDSYNC_HOME": str(tmp_path / "third"),
            "FIELDSYNC_PASSPHRASE": "a third laptop's passphrase",
        }
        assert run("init", env=third).exit_code == 0
        refused = run("enroll", forged, "--expect-fingerprint", expect, "--json", env=third)
        assert refused.exit_code != 0
        assert "retired" in json.loads(refused.stdout)["error"]
        with sqlite3.connect(server / "server.db") as db:
            (stored,) = db.execute("select count(*) from stored_entries").fetchone()
        copy = {"FIELDSYNC_HOME": str(stale_copy)}
        assert in_admin_store("edit", record, "--set", "victims.total=9", env=copy).exit_code == 0
        sent = in_admin_store("push", "--json", env=copy)
        assert sent.exit_code != 0 and "retired" in sent.stdout, sent.stdout
        rotated = in_admin_store("admin", "rotate-read-key", "--json", env=copy)
        assert rotated.exit_code != 0
        with sqlite3.connect(server / "server.db") as db:
            assert db.execute("select count(*) from stored_entries").fetchone() == (stored,)
            (kept,) = db.execute("select count(*) from quarantine").fetchone()
        assert kept == 1  # the stale copy's batch, for review
        with Store.open(tmp_path / "admin", PASSPHRASE) as store:
            state = orgkeys.followed(store)
        assert state is not None
        statement = orglog.parse(
            orglog.sign(new, state, orglog.READ_KEY, _read_key(2), time_ms=1)
        )  # what the new key may sign, the old one may not
        forged_statement = _signed_by(old, statement)
        with SyncClient(url, signer=new) as client, pytest.raises(SignatureInvalid):
            client.send_statement(forged_statement)

        # an evidence package made now is signed by the new key, and verifies against the
        # organisation's first key (org-public.json) by the chain of successions it carries
        org_file, log = str(tmp_path / "org.json"), tmp_path / "org-log.json"
        assert in_admin_store("admin", "org-log", "--out", str(log)).exit_code == 0
        package = tmp_path / "case.zip"
        as_json(in_admin_store("admin", "evidence", record, "--out", str(package), "--json"))
        checked = as_json(
            run("evidence-verify", str(package), "--org", org_file, "--org-log", str(log), "--json")
        )
        assert checked["holds"] and checked["exported_by"] == new.public.hex()
        assert any("1 succession" in f["statement"] for f in checked["findings"])
        # one signed before the succession still holds, saying its key was retired since
        before = as_json(
            run("evidence-verify", str(early), "--org", org_file, "--org-log", str(log), "--json")
        )
        assert before["holds"]
        assert any(
            f["level"] == "warning" and "since retired" in f["statement"]
            for f in before["findings"]
        )
        # the stale copy followed the log at its push: it cannot make a package at all
        stale = in_admin_store(
            "admin", "evidence", record, "--out", str(tmp_path / "s.zip"), env=copy
        )
        assert stale.exit_code != 0 and "retired it" in stale.stderr, stale.stderr
        # a thief's copy that never followed the succession makes one that holds alone, and
        # fails against the organisation's log as it stands
        thief = {"FIELDSYNC_HOME": str(thief_copy)}
        forged_package = tmp_path / "forged.zip"
        made = in_admin_store("admin", "evidence", record, "--out", str(forged_package), env=thief)
        assert made.exit_code == 0, made.stderr
        alone = as_json(run("evidence-verify", str(forged_package), "--org", org_file, "--json"))
        assert alone["holds"]
        against = run(
            "evidence-verify",
            str(forged_package),
            "--org",
            org_file,
            "--org-log",
            str(log),
            "--json",
        )
        assert against.exit_code != 0
        assert "after the organisation's log retired it" in against.stdout


def test_a_second_succession_signed_by_the_retired_key_is_a_fork_everyone_sees(
    run: Run, tmp_path: Path
) -> None:
    with staff(run, tmp_path) as (in_admin_store, amal, url, _record):
        as_json(in_admin_store("admin", "pull", "--json"))
        as_json(amal("pull", "--json"))
        old, _ = _keys(tmp_path / "admin")
        with Store.open(tmp_path / "admin", PASSPHRASE) as store:
            before = orgkeys.followed(store)
        assert before is not None
        as_json(in_admin_store("admin", "rotate-admin-key", "--json"))
        # the thief of the old key names a successor of its own at the same seq
        thief = crypto.SigningPair.generate()
        fields = {"admin_key": thief.public.hex()}
        rival = orglog.sign(old, before, orglog.SUCCESSION, fields, time_ms=5)
        with SyncClient(url) as client:
            with pytest.raises(Exception, match="fork"):
                client.send_statement(rival)
        # a reader that had not followed the succession cannot tell which one is the
        # organisation's: it names the fork and follows neither
        for who in (run, amal):
            answer = as_json(who("pull", "--json"))
            assert any("signed two different statements" in a for a in answer["alerts"]), answer
        # the administrator followed its own succession first: the rival is the retired key's
        # other holder, named as such, and the organisation goes on
        pulled = as_json(in_admin_store("admin", "pull", "--json"))
        assert any("retired admin key" in a for a in pulled["alerts"]), pulled
        # the thief's successor is never in force: it cannot sign in the organisation's name
        with SyncClient(url, signer=thief) as client, pytest.raises(AccessDenied):
            client.devices()
        assert as_json(in_admin_store("admin", "rotate-read-key", "--json"))["seq"] == 3
        # nor can the retired key freeze the log by forking below the succession
        with Store.open(tmp_path / "admin", PASSPHRASE) as store:
            first = orglog.parse(orgkeys.statements(store)[0])
        assert first.kind == orglog.MEMBER
        rival_member = orglog.sign(
            old, orglog.OrgState.root(*_root(before)), orglog.READ_KEY, _read_key(2), time_ms=6
        )
        with SyncClient(url) as client, pytest.raises(Exception, match="fork"):
            client.send_statement(rival_member)
        assert as_json(in_admin_store("admin", "rotate-read-key", "--json"))["seq"] == 4


def _root(state: orglog.OrgState) -> tuple[str, str, str]:
    return state.root_admin_key, state.read_keys[0].key, state.server_key


def _read_key(epoch: int) -> dict[str, Any]:
    return {"epoch": epoch, "read_key": crypto.BoxPair.generate().public.hex()}


def _signed_by(signer: crypto.SigningPair, statement: orglog.Statement) -> bytes:
    """``statement``'s body as ``signer`` would sign it (named as its signer)."""
    body = statement.body() | {"signer": signer.public.hex()}
    signature = signer.sign(crypto.LABEL_ORG_STATEMENT, encoding.encode(body))
    return encoding.encode({"signature": signature.hex(), "statement": body})
