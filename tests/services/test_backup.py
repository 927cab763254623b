"""services/backup.py against a real server: refresh after a rotation, what a failure leaves,
and a canary: neither the shares nor the backup key is on disk anywhere."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from fieldsync.core import crypto, shares
from fieldsync.core.bundle import ReadSecret
from fieldsync.core.settings import BackupKey, Server
from fieldsync.errors import AccessDenied, OutputPathError, ServerUnreachable, StoreExists
from fieldsync.server import data
from fieldsync.server.app import create_app
from fieldsync.services import backup
from fieldsync.store import orgkeys, settings
from fieldsync.store.store import Store
from tests.live import running

AGAIN = "another passphrase, for the store made again"


def test_a_refresh_after_a_rotation_recovers_both_read_keys(
    admin_store: Store, server_url: str, tmp_path: Path
) -> None:
    made = backup.make_backup(admin_store, 3, 2, server_url=server_url)
    second = ReadSecret(2, crypto.BoxPair.generate())
    orgkeys.add_read_key(admin_store, second)
    stored = backup.refresh(admin_store)
    assert stored is not None and stored.size > made.stored.size

    home = tmp_path / "again"
    done = backup.recover(home, AGAIN, made.shares[1:], server_url=server_url)  # old shares
    assert done.read_keys == 2
    with Store.open(home, AGAIN) as recovered:
        keys = orgkeys.read_keys(recovered)
        assert [(k.epoch, k.pair.secret) for k in keys] == [
            (1, admin_store.identity.org_read.secret),  # type: ignore[union-attr]
            (2, second.pair.secret),
        ]
        assert recovered.identity.signer.seed == admin_store.identity.signer.seed
        assert recovered.identity.box.secret != admin_store.identity.box.secret  # a new one
        pinned = settings.load(recovered, Server)
        assert pinned == settings.load(admin_store, Server)
        assert settings.load(recovered, BackupKey) is None  # a new backup is the next step


def test_without_a_backup_there_is_nothing_to_refresh(admin_store: Store) -> None:
    assert backup.refresh(admin_store) is None


def test_a_failed_upload_keeps_no_key_and_writes_no_file(
    admin_store: Store, tmp_path: Path
) -> None:
    out = tmp_path / "backup.json"
    with pytest.raises(ServerUnreachable):
        backup.make_backup(admin_store, 3, 2, server_url="http://127.0.0.1:9", out=out)
    assert settings.load(admin_store, BackupKey) is None and not out.exists()


def test_a_server_of_another_organisation_gets_no_backup(
    admin_store: Store, tmp_path: Path
) -> None:
    other = crypto.SigningPair.generate().public.hex(), crypto.BoxPair.generate().public.hex()
    org = b'{"admin_key":"%s","format":"fieldsync/org","org_read_key":"%s","version":1}' % (
        other[0].encode(),
        other[1].encode(),
    )
    with running(create_app(data.init(tmp_path / "theirs", org))) as url:
        with pytest.raises(AccessDenied, match="serves another organisation; nothing was sent"):
            backup.make_backup(admin_store, 3, 2, server_url=url)
    assert settings.load(admin_store, BackupKey) is None


def test_an_existing_backup_file_is_never_overwritten(
    admin_store: Store, server_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "backup.json"
    out.write_bytes(b"an older backup")
    with pytest.raises(OutputPathError):
        backup.make_backup(admin_store, 3, 2, server_url=server_url, out=out)
    assert out.read_bytes() == b"an older backup"


def test_a_backup_file_alone_recovers_and_a_full_folder_is_refused(
    admin_store: Store, server_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "backup.json"
    made = backup.make_backup(admin_store, 2, 2, server_url=server_url, out=out)
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(StoreExists, match="is not empty"):
        backup.recover(full, AGAIN, made.shares, backup_file=out)
    assert sorted(p.name for p in full.iterdir()) == ["notes.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    done = backup.recover(empty, AGAIN, made.shares, backup_file=out)
    assert done.server_url is None and (empty / "vault").exists()
    assert [p.name for p in tmp_path.iterdir() if "recovering" in p.name] == []


def encodings(data: bytes) -> list[bytes]:
    found = [data, data.hex().encode(), data.hex().upper().encode()]
    for shift in range(3):  # base64 at each alignment inside a longer string
        padded = base64.b64encode(b"\x00" * shift + data)
        found.append(padded[4 * ((shift + 2) // 3) + 4 : -4])
    return found


def test_no_share_and_no_backup_key_is_on_disk(
    admin_store: Store, server_url: str, tmp_path: Path
) -> None:
    made = backup.make_backup(admin_store, 5, 3, server_url=server_url, out=tmp_path / "b.json")
    kept = settings.load(admin_store, BackupKey)
    assert kept is not None
    key = bytes.fromhex(kept.key)
    assert shares.combine(made.shares[:3]) == key
    backup.recover(tmp_path / "again", AGAIN, made.shares[2:], server_url=server_url)
    markers = encodings(key)
    for share in made.shares:
        words = share.split()
        markers += [share.encode(), " ".join(words[4:9]).encode(), "".join(words[4:9]).encode()]
        markers += encodings(shares.read(1, share).share.value)  # the share's own bytes
    searched = 0
    for folder in (admin_store.home, tmp_path / "again", tmp_path / "server"):
        for path in (p for p in folder.rglob("*") if p.is_file()):
            content = path.read_bytes()
            searched += len(content)
            for marker in markers:
                assert marker not in content, f"{path} holds a share or the backup key"
    assert searched > 100_000
