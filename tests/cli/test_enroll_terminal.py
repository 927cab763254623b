"""``fieldsync enroll`` at a terminal: nothing is sent or saved until the person has typed the
organisation's fingerprint, as their administrator gave it. Run as real processes in a
pseudo-terminal, the way a person meets the prompt."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlmodel import Session
from sqlmodel import select as select_rows

from fieldsync.core import crypto
from fieldsync.core.org import OrgKeys
from fieldsync.errors import DecryptionFailed
from fieldsync.server import data
from fieldsync.server.app import create_app
from fieldsync.server.tables import DeviceRow
from fieldsync.services import admin, records
from fieldsync.services.forms import get_form
from fieldsync.store import keyvalue
from fieldsync.store.store import DB_FILE, Store
from tests import terminal
from tests.cli.conftest import Run, as_json, organisation
from tests.conftest import example, fast_store
from tests.live import attackers_invite, running
from tests.services.conftest import DAY

PROMPT = b"Organisation's fingerprint: "


def at_terminal(home: Path, args: list[str], typed: str) -> tuple[int, str]:
    """Run ``fieldsync ARGS`` in a pseudo-terminal; type ``typed`` at the fingerprint prompt
    (if it comes). Returns the exit code and everything the terminal showed."""
    return terminal.at_terminal(
        args, [(PROMPT, typed.encode() + b"\n")], {"FIELDSYNC_HOME": str(home)}
    )


def test_a_hostile_invite_refused_at_the_prompt_leaves_no_wrap_for_its_key(
    store: Store, tmp_path: Path
) -> None:
    records.create(store, get_form("interview"), example("interview"))
    records.create(store, get_form("incident"), example("incident"))
    genuine = OrgKeys(
        admin_key=crypto.SigningPair.generate().public.hex(),
        org_read_key=crypto.BoxPair.generate().public.hex(),
    ).fingerprint  # what the person's administrator told them
    with attackers_invite(tmp_path) as (text, org_read, engine):
        code, shown = at_terminal(store.home, ["enroll", text], genuine)
        with Session(engine) as session:  # type: ignore[call-overload]
            registered = session.exec(select_rows(DeviceRow)).all()
    attacker = org_read.public
    raw = b"".join(p.read_bytes() for p in store.home.glob(f"{DB_FILE}*"))  # and its WAL
    assert attacker not in raw and attacker.hex().encode() not in raw
    with sqlite3.connect(store.home / DB_FILE) as db:
        wraps = db.execute("SELECT reader, wrapped FROM wraps").fetchall()
    assert all(reader != attacker.hex() for reader, _ in wraps)  # the own copies: local_wraps
    for _, wrapped in wraps:  # the attacker's read key opens no past record
        with pytest.raises(DecryptionFailed):
            org_read.unwrap(wrapped, what="a past record")
    assert registered == []  # its server was never contacted
    assert code == 3, shown
    assert "nothing was sent, saved or made readable" in shown
    assert keyvalue.setting(store, "enrolment") is None


def test_the_fingerprint_typed_at_the_prompt_enrols(store: Store, tmp_path: Path) -> None:
    with fast_store(tmp_path / "admin", admin=True) as analyst:
        keys = admin.org_keys(analyst)
        server = data.init(tmp_path / "server", keys.encode())
        with running(create_app(server)) as url:
            text, _ = admin.make_invite(analyst, "laptop 7", url, valid_ms=DAY)
            grouped = " ".join(keys.fingerprint.split()[:4])  # the first four groups
            code, shown = at_terminal(store.home, ["enroll", text], grouped)
    assert code == 0, shown
    # never shown before it is typed (it would be copied from the screen, not checked)
    assert keys.fingerprint not in shown.split("Organisation's fingerprint")[0]
    assert "Enrolled as 'laptop 7'" in shown
    assert keyvalue.setting(store, "enrolment") is not None


def test_without_a_fingerprint_nothing_is_saved(store: Store, tmp_path: Path) -> None:
    with attackers_invite(tmp_path) as (text, _, _):
        code, shown = at_terminal(store.home, ["enroll", text], "")
    assert code == 5, shown
    assert "was not confirmed; nothing was sent or saved" in shown
    assert keyvalue.setting(store, "enrolment") is None


def test_admin_invite_refuses_an_impostor_with_both_fingerprints_until_re_pinned(
    run: Run, tmp_path: Path
) -> None:
    with organisation(run, tmp_path) as (in_admin_store, url, org, _record):
        pinned = as_json(in_admin_store("admin", "invite", "two", "--server", url, "--json"))
        assert pinned["server_key_pinned"] == "kept"
        impostor = data.init(tmp_path / "impostor", org.read_bytes())
        with running(create_app(impostor)) as impostor_url:
            refused = in_admin_store("admin", "invite", "three", "--server", impostor_url)
            assert refused.exit_code == 3
            assert pinned["server_fingerprint"] in refused.stderr
            assert impostor.fingerprint in refused.stderr
            assert "--repin-server-key" in refused.stderr
            repinned = in_admin_store(
                "admin",
                "invite",
                "three",
                "--server",
                impostor_url,
                "--repin-server-key",
                impostor.fingerprint,
            )
    assert repinned.exit_code == 0, repinned.stderr
    assert f"Re-pinned the server's receipt key: fingerprint {impostor.fingerprint}" in (
        repinned.stderr
    )
