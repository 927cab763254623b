"""``passwd``: a new vault key and a new epoch, the old vault destroyed, and a change cut short
between any two of its steps."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from sqlmodel import select

from fieldsync.core import crypto, vault
from fieldsync.errors import DecryptionFailed, StoreStateError, WrongPassphrase
from fieldsync.services import reading, records
from fieldsync.services.forms import get_form
from fieldsync.store import epochs, integrity, keyvalue
from fieldsync.store.db import DraftRow, EntryRow, MetaRow, RecordRow
from fieldsync.store.index import IndexCodec
from fieldsync.store.keyvalue import LABEL_RECORD_SETTING, RECORD_SETTING
from fieldsync.store.store import NEW_VAULT_FILE, VAULT_FILE, Store
from tests import carving
from tests.conftest import PASSPHRASE, example

NEW = "a brand new passphrase"
STEPS = 4  # Store.passphrase_change yields after each durable step


def fill(store: Store) -> str:
    record = records.create(store, get_form("incident"), example("incident"))
    keyvalue.save_setting(store, "server", {"url": "https://example.org"})
    keyvalue.save_draft(store, "d1", {"answers": {"narrative": "half typed"}})
    keyvalue.save_record_settings(store, {"aside:v1": (record, {"detail": "set aside"})})
    return record


def everything(store: Store, record: str) -> None:
    """The record, the setting and the draft are all there and readable, and check agrees."""
    assert reading.read(store, record).body.answers["narrative"] == example("incident")["narrative"]
    assert keyvalue.setting(store, "server") == {"url": "https://example.org"}
    assert keyvalue.drafts(store) == [("d1", {"answers": {"narrative": "half typed"}})]
    assert keyvalue.record_settings(store, ["aside:v1"]) == {"aside:v1": {"detail": "set aside"}}
    assert integrity.check(store).ok


@pytest.mark.parametrize("done", range(STEPS + 1))
def test_a_passphrase_change_cut_short_opens_with_one_passphrase_and_loses_nothing(
    store: Store, store_home: Path, done: int
) -> None:
    record = fill(store)
    for _ in itertools.islice(store.passphrase_change(NEW), done):
        pass
    store.close()  # killed here: every step before was durable
    took_effect = done >= 3  # the transaction that moved the database to the new keys
    right, wrong = (NEW, PASSPHRASE) if took_effect else (PASSPHRASE, NEW)
    with pytest.raises((WrongPassphrase, StoreStateError)):
        Store.open(store_home, wrong)
    with Store.open(store_home, right) as reopened:
        everything(reopened, record)
    assert not (store_home / NEW_VAULT_FILE).exists()
    with pytest.raises(WrongPassphrase):
        Store.open(store_home, wrong)
    with Store.open(store_home, right) as reopened:
        everything(reopened, record)
        assert [e for e in reopened._epoch_file.read() if e] == [reopened.epoch]


def test_an_old_vault_and_the_old_passphrase_open_nothing_written_after_passwd(
    store: Store, store_home: Path
) -> None:
    carved_vault = (store_home / VAULT_FILE).read_bytes()  # what a carver finds later
    carved_epochs = (store_home / epochs.EPOCHS_FILE).read_bytes()
    store.change_passphrase(NEW)
    record = fill(store)
    store.close()
    old_key, secrets = vault.unlock(carved_vault, PASSPHRASE)
    slot_key = crypto.derive_key(old_key, carving.LABEL_EPOCHS)
    keys = carving.Keys(
        vault_keys=[old_key],
        box_keys=[crypto.BoxPair(secrets.keys["device_box"])],
        epoch_keys=[
            key
            for i in (0, 1)
            for key in carving.epoch_slot(slot_key, i, carved_epochs[i * carving.BLOCK :])
        ],
    )
    assert keys.epoch_keys  # the old epoch key, as it was before the change
    raw = b"".join(p.read_bytes() for p in sorted(store_home.rglob("*")) if p.is_file())
    with Store.open(store_home, NEW) as reopened, reopened.session() as session:
        written = [e.id for e in session.exec(select(EntryRow).where(EntryRow.record == record))]
        row = session.get(RecordRow, record)
        draft = session.get(DraftRow, "d1")
    assert carving.opened_keys(raw, keys, written) == {}
    assert row is not None and draft is not None
    for old in [old_key, *keys.epoch_keys]:
        assert IndexCodec(old).open(row.record, row.heads, row.index_nonce, row.index_ct).problem
    for old in [old_key, *keys.epoch_keys]:  # drafts were under the vault key, now the epoch's
        with pytest.raises(DecryptionFailed):
            crypto.open_with_key(
                crypto.derive_key(old, carving.LABEL_DRAFT),
                draft.nonce,
                draft.ct,
                carving.LABEL_DRAFT + b"d1",
                what="a draft",
            )


def test_passwd_seals_a_records_settings_under_the_new_epoch_key(store: Store) -> None:
    """A record's settings (what a pull set aside) are under the epoch key: a passphrase change
    re-seals them, so the old epoch key opens no live copy of them."""
    record = fill(store)
    old = store.epoch
    store.change_passphrase(NEW)
    with store.session() as session:
        row = session.get(MetaRow, RECORD_SETTING + "aside:v1")
    assert row is not None and row.value.startswith(record + ":")
    sealed = bytes.fromhex(row.value.rpartition(":")[2])
    with pytest.raises(DecryptionFailed):
        crypto.open_with_key(
            crypto.derive_key(old.key, LABEL_RECORD_SETTING),
            sealed[: crypto.NONCE_BYTES],
            sealed[crypto.NONCE_BYTES :],
            LABEL_RECORD_SETTING + b"aside:v1\x00" + record.encode(),
            what="a record's setting",
        )
    assert keyvalue.record_settings(store, ["aside:v1"]) == {"aside:v1": {"detail": "set aside"}}
