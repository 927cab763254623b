from __future__ import annotations

import json
import time

import pytest

from fieldsync.core import crypto, vault
from fieldsync.errors import (
    KdfParamsRefused,
    MalformedData,
    UnsupportedFormat,
    WrongPassphrase,
)

SECRETS = vault.Secrets({"device_sign": bytes(32), "device_box": bytes(range(32))})


@pytest.fixture(scope="module")
def sealed() -> tuple[bytes, bytes]:
    return vault.create("a long passphrase", SECRETS)


def edited(data: bytes, **kdf: object) -> bytes:
    doc = json.loads(data)
    doc["kdf"].update(kdf)
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def test_unlock_returns_the_same_key_and_secrets(sealed: tuple[bytes, bytes]) -> None:
    data, key = sealed
    got_key, got = vault.unlock(data, "a long passphrase")
    assert got_key == key and got.keys == SECRETS.keys


def test_the_default_limits_are_at_least_libsodium_moderate(sealed: tuple[bytes, bytes]) -> None:
    params = vault.read_params(sealed[0])
    assert params.opslimit >= 3 and params.memlimit >= 256 * 1024 * 1024


def test_wrong_passphrase_fails_closed(sealed: tuple[bytes, bytes]) -> None:
    with pytest.raises(WrongPassphrase):
        vault.unlock(sealed[0], "a long passphrasE")


@pytest.mark.parametrize(
    "kdf",
    [
        {"opslimit": 1},  # below the floor: a cheap guess per second would be far cheaper
        {"memlimit": 8 * 1024 * 1024},
        {"opslimit": 10_000},  # above the cap: an unlock that would take hours
        {"memlimit": 64 * 1024**3},
    ],
)
def test_kdf_limits_outside_the_range_are_refused_before_any_work(
    sealed: tuple[bytes, bytes], kdf: dict[str, int]
) -> None:
    started = time.perf_counter()
    with pytest.raises(KdfParamsRefused):
        vault.unlock(edited(sealed[0], **kdf), "a long passphrase")
    assert time.perf_counter() - started < 0.5  # refused, not derived


def test_changing_the_limits_within_range_cannot_unlock(sealed: tuple[bytes, bytes]) -> None:
    with pytest.raises(WrongPassphrase):
        vault.unlock(edited(sealed[0], opslimit=4), "a long passphrase")


def test_newer_version_is_named_and_garbage_is_refused(sealed: tuple[bytes, bytes]) -> None:
    doc = json.loads(sealed[0])
    doc["version"] = 2
    newer = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    with pytest.raises(UnsupportedFormat):
        vault.unlock(newer, "a long passphrase")
    for garbage in (
        b"",
        b"{}",
        sealed[0][:-5],
        b"\x00" * 100,
        sealed[0].replace(b'"key"', b'"kex"'),
    ):
        with pytest.raises(MalformedData):
            vault.unlock(garbage, "a long passphrase")


def test_reseal_with_a_new_passphrase_keeps_the_vault_key(sealed: tuple[bytes, bytes]) -> None:
    _data, key = sealed
    fresh = vault.seal("another passphrase", key, SECRETS, vault.KdfParams.fresh())
    assert vault.unlock(fresh, "another passphrase")[0] == key
    with pytest.raises(WrongPassphrase):
        vault.unlock(fresh, "a long passphrase")


def test_secrets_never_appear_in_repr() -> None:
    assert "00" not in repr(SECRETS)
    assert repr(crypto.SigningPair(bytes(32))) == "SigningPair(<secret>)"


def test_a_passphrase_unlocks_however_its_accents_were_composed() -> None:
    composed, decomposed = "clé du café ١٢٣", "cle\u0301 du cafe\u0301 ١٢٣"
    assert composed != decomposed
    data, key = vault.create(composed, SECRETS)
    assert vault.unlock(data, decomposed)[0] == key
