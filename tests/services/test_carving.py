"""A seized laptop, carved: the store on a real ext4 image, then the raw blocks searched with the
passphrase and every key the store still holds for anything that opens what was wiped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import select

from fieldsync.core.entry import parse as parse_entry
from fieldsync.services import admin, enrol, reading, records, sync
from fieldsync.services.forms import get_form
from fieldsync.store import integrity, keyvalue
from fieldsync.store.db import DraftRow, EntryRow, RecordRow
from fieldsync.store.store import VAULT_FILE, Store, wipe
from fieldsync.transport.client import SyncClient
from tests import carving
from tests.conftest import PASSPHRASE, example
from tests.services.conftest import DAY, quick

pytestmark = pytest.mark.slow


def entries(store: Store) -> dict[str, bytes]:
    with store.session() as session:
        return {row.id: row.raw for row in session.exec(select(EntryRow)).all()}


def test_push_wipe_after_leaves_no_key_to_the_wiped_records_on_the_disk(
    admin_store: Store, live: tuple[str, object], tmp_path: Path
) -> None:
    url = live[0]
    with carving.loop_filesystem(tmp_path) as (mount, image):
        home = mount / "home"
        with Store.create(home, PASSPHRASE) as store:
            invite, shown = admin.make_invite(
                admin_store, "laptop", url, valid_ms=DAY, client_for=quick
            )
            fingerprint = shown["organisation_fingerprint"]
            enrol.enrol(store, invite, expect_fingerprint=fingerprint, client_for=quick)
            drafts = {}
            for number in range(30):
                draft = f"draft-{number:02}"  # typed, then saved as a record: the draft goes
                keyvalue.save_draft(store, draft, {"answers": example("incident")})
                drafts[draft] = draft_size(store, draft)
                records.create(store, get_form("incident"), example("incident"))
                keyvalue.delete_draft(store, draft)
            sizes = index_sizes(store)
            report = sync.push(store, client_for=quick_signed, wipe_after=True)
            assert report.wiped_records == 30
            wiped = entries(store)
            assert len(wiped) == 30
            kept = records.create(store, get_form("interview"), example("interview"))
        with Store.open(home, PASSPHRASE) as store:  # what was not wiped still opens
            assert reading.read(store, kept).body.answers == example("interview")
            assert integrity.check(store).ok
        carving.unmount(mount)
        raw = image.read_bytes()
    keys = carving.keys_in(raw, PASSPHRASE)
    assert keys.vault_keys and keys.box_keys  # the carver does hold the passphrase's keys
    opened = carving.opened_keys(raw, keys, list(wiped))
    for entry_id, key in opened.items():  # each find is real: the key opens the version
        parse_entry(wiped[entry_id]).open(key)
    assert not opened, f"{len(opened)} of {len(wiped)} wiped versions open from the image"
    summaries = carving.opened_index_rows(raw, keys, sizes)
    assert not summaries, f"{len(summaries)} wiped records' summaries open from the image"
    typed = carving.opened_drafts(raw, keys, drafts)
    assert not typed, f"{len(typed)} deleted drafts of wiped records open from the image"


def index_sizes(store: Store) -> dict[str, int]:
    with store.session() as session:
        return {row.record: len(row.index_ct) for row in session.exec(select(RecordRow)).all()}


def draft_size(store: Store, draft: str) -> int:
    with store.session() as session:
        row = session.get(DraftRow, draft)
    assert row is not None
    return len(row.ct)


def quick_signed(url: str, store: Store) -> SyncClient:
    return SyncClient(url, signer=store.identity.signer, attempts=2, timeout=10)


def sealed_vault_key(vault_bytes: bytes) -> bytes:
    """The bytes that are this vault's alone: its vault key, sealed under the passphrase."""
    return json.loads(vault_bytes)["key"]["ct"].encode()


def test_passwd_and_wipe_leave_no_old_vault_on_the_disk(tmp_path: Path) -> None:
    with carving.loop_filesystem(tmp_path) as (mount, image):
        home = mount / "home"
        with Store.create(home, PASSPHRASE) as store:
            first = sealed_vault_key((home / VAULT_FILE).read_bytes())
            store.change_passphrase("a brand new passphrase")
            second = sealed_vault_key((home / VAULT_FILE).read_bytes())
        carving.unmount(mount)
        raw = image.read_bytes()
        assert second in raw
        assert first not in raw  # the old vault was overwritten before it was replaced
        assert carving.mount_image(image, mount).returncode == 0
        wipe(home)
        carving.unmount(mount)
        assert second not in image.read_bytes()
