from __future__ import annotations

from pathlib import Path

import pytest

from fieldsync.core import org
from fieldsync.errors import MalformedData, NotAdminStore, OutputPathError, StoreExists
from fieldsync.services import admin
from fieldsync.store.store import Store
from tests.conftest import PASSPHRASE


def test_an_admin_store_holds_the_org_read_key_and_publishes_only_public_keys(
    tmp_path: Path,
) -> None:
    public = tmp_path / "org-public.json"
    keys = admin.create_org(tmp_path / "admin", PASSPHRASE, public)
    assert org.parse(public.read_bytes()) == keys
    with Store.open(tmp_path / "admin", PASSPHRASE) as store:
        assert store.identity.is_admin
        assert store.identity.org_read is not None
        assert store.identity.org_read.public.hex() == keys.org_read_key
        assert store.identity.signer.public.hex() == keys.admin_key
        secret = store.identity.org_read.secret
        store.change_passphrase("another passphrase")  # keeps every key, the org's too
    with Store.open(tmp_path / "admin", "another passphrase") as store:
        assert store.identity.org_read is not None
        assert store.identity.org_read.secret == secret
    assert secret.hex() not in public.read_text()


def test_nothing_is_created_over_an_existing_store_or_file(
    tmp_path: Path, store_home: Path
) -> None:
    existing = tmp_path / "org-public.json"
    existing.write_text("{}")
    with pytest.raises(OutputPathError):
        admin.create_org(tmp_path / "admin", PASSPHRASE, existing)
    assert not (tmp_path / "admin").exists()
    with pytest.raises(StoreExists):
        admin.create_org(store_home, PASSPHRASE, tmp_path / "other.json")


def test_a_documenters_store_is_not_an_administrators(store: Store) -> None:
    assert not store.identity.is_admin
    with pytest.raises(NotAdminStore):
        admin.org_keys(store)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"{}",
        b'{"format":"fieldsync/org"}',
        b"\x00\xff",
        b'{"admin_key":"00","format":"fieldsync/org","org_read_key":"00","version":1}',
    ],
)
def test_broken_public_key_files_are_refused(data: bytes) -> None:
    with pytest.raises(MalformedData):
        org.parse(data)


def test_a_pretty_printed_public_keys_file_still_reads(tmp_path: Path) -> None:
    import json

    keys = admin.create_org(tmp_path / "admin", PASSPHRASE, tmp_path / "org.json")
    pretty = json.dumps(json.loads((tmp_path / "org.json").read_text()), indent=4).encode()
    assert org.parse(pretty) == keys
