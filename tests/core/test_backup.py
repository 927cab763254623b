"""The sealed backup (core/backup.py) and its shares (core/shares.py): round trips, and every
way a share or a backup can be wrong, each with the words a person reads."""

from __future__ import annotations

import hashlib
import json

import pytest
import shamir_mnemonic

from fieldsync.core import backup, crypto, encoding, shares
from fieldsync.errors import (
    DecryptionFailed,
    InputError,
    MalformedData,
    SharesInvalid,
    UnsupportedFormat,
)

ADMIN = crypto.SigningPair(bytes(range(32)))
SECRETS = backup.Secrets(
    admin_seed=ADMIN.seed,
    read_keys=((1, b"\x11" * 32), (2, b"\x22" * 32)),
    org_seq=1,
    org_head="ab" * 32,
)


@pytest.fixture(scope="module")
def key() -> bytes:
    return backup.new_key()


@pytest.fixture(scope="module")
def five(key: bytes) -> list[str]:
    return shares.split(key, 3, 5)


# --- the sealed backup -------------------------------------------------------------------


def test_a_backup_opens_with_its_key_to_what_was_sealed(key: bytes) -> None:
    raw = backup.seal(key, ADMIN.public.hex(), SECRETS)
    doc = json.loads(raw)
    assert set(doc) == {"admin_key", "ct", "format", "nonce", "version"}
    assert doc["format"] == "fieldsync/org-backup" and doc["version"] == 1
    assert doc["admin_key"] == ADMIN.public.hex()
    assert encoding.encode(doc) == raw  # canonical
    opened = backup.open_sealed(key, backup.parse(raw))
    assert opened == SECRETS
    assert "11" * 32 not in repr(opened) and ADMIN.seed.hex() not in raw.decode()


def test_the_plaintext_is_the_documented_json(key: bytes) -> None:
    """An independent reading: XChaCha20-Poly1305 with the label and the admin key as
    associated data, decrypted here with the AEAD itself rather than open_sealed."""
    raw = backup.seal(key, ADMIN.public.hex(), SECRETS)
    doc = json.loads(raw)
    associated = b"fieldsync/org-backup/v1\x00" + ADMIN.public
    plain = crypto.aead_decrypt(
        key, bytes.fromhex(doc["nonce"]), bytes.fromhex(doc["ct"]), associated, what="it"
    )
    assert json.loads(plain) == {
        "admin_seed": ADMIN.seed.hex(),
        "org_head": "ab" * 32,
        "org_seq": 1,
        "read_keys": [{"epoch": 1, "secret": "11" * 32}, {"epoch": 2, "secret": "22" * 32}],
    }


def test_a_tampered_backup_does_not_open(key: bytes) -> None:
    raw = backup.seal(key, ADMIN.public.hex(), SECRETS)
    doc = json.loads(raw)
    flipped_ct = doc | {"ct": doc["ct"][:-2] + f"{int(doc['ct'][-2:], 16) ^ 1:02x}"}
    flipped_nonce = doc | {"nonce": "00" * 24}
    moved = doc | {"admin_key": crypto.SigningPair.generate().public.hex()}  # another org's
    truncated = doc | {"ct": doc["ct"][:-32]}
    for tampered in (flipped_ct, flipped_nonce, moved, truncated):
        with pytest.raises(DecryptionFailed, match="does not open with the key these shares"):
            backup.open_sealed(key, backup.parse(encoding.encode(tampered)))
    with pytest.raises(DecryptionFailed):
        backup.open_sealed(backup.new_key(), backup.parse(raw))


def test_what_is_not_a_sealed_backup_is_refused_by_name(key: bytes) -> None:
    doc = json.loads(backup.seal(key, ADMIN.public.hex(), SECRETS))
    for wrong in (
        doc | {"extra": 1},
        {k: v for k, v in doc.items() if k != "nonce"},
        doc | {"nonce": "00" * 23},
        doc | {"admin_key": "AB" * 32},
        doc | {"ct": "zz"},
        doc | {"format": "fieldsync/org"},
        [],
    ):
        with pytest.raises(MalformedData):
            backup.parse(encoding.encode(wrong))
    with pytest.raises(MalformedData, match="not in canonical form"):
        backup.parse(json.dumps(doc).encode())
    with pytest.raises(UnsupportedFormat, match="newer fieldsync"):
        backup.parse(encoding.encode(doc | {"version": 2}))
    with pytest.raises(MalformedData, match="too large"):
        backup.parse(b" " * (backup.MAX_BACKUP + 1))


@pytest.mark.parametrize(
    "inside",
    [
        {"admin_seed": "00" * 32, "org_head": None, "org_seq": 0, "read_keys": []},
        {
            "admin_seed": "00" * 32,
            "org_head": None,
            "org_seq": 0,
            "read_keys": [{"epoch": 2, "secret": "11" * 32}],  # epoch 1 missing
        },
        {
            "admin_seed": "00" * 32,
            "org_head": None,
            "org_seq": 3,  # a seq with no head
            "read_keys": [{"epoch": 1, "secret": "11" * 32}],
        },
    ],
)
def test_a_malformed_inside_is_refused_even_under_the_right_key(
    key: bytes, inside: dict[str, object]
) -> None:
    associated = ADMIN.public
    nonce, ct = crypto.seal_with_key(
        key, encoding.encode(inside), crypto.LABEL_ORG_BACKUP, associated
    )
    sealed = backup.Sealed(ADMIN.public.hex(), nonce, ct)
    with pytest.raises(MalformedData, match="the inside of the organisation's sealed backup"):
        backup.open_sealed(key, sealed)


# --- shares ------------------------------------------------------------------------------


def test_any_three_of_five_give_the_key_back(key: bytes, five: list[str]) -> None:
    assert all(len(share.split()) == 33 for share in five)
    assert shares.combine(five[:3]) == key
    assert shares.combine([five[4], five[0], five[2]]) == key
    assert shares.combine(five) == key  # more than needed: every one is checked
    assert shamir_mnemonic.combine_mnemonics(five[1:4]) == key  # the package's own reading


def test_a_share_may_be_typed_in_capitals_spread_out_or_by_four_letters(
    key: bytes, five: list[str]
) -> None:
    loose = "  ".join(word.upper() for word in five[0].split())
    short = " ".join(word[:4] for word in five[1].split())
    assert shares.combine([loose, short, five[2]]) == key
    assert shares.check_code(loose) == shares.check_code(five[0])


def test_fewer_than_the_threshold_are_counted(five: list[str]) -> None:
    with pytest.raises(SharesInvalid) as caught:
        shares.combine(five[:2])
    assert caught.value.message == "3 shares are needed, 2 were given"
    with pytest.raises(SharesInvalid, match="^3 shares are needed, 1 was given$"):
        shares.combine(five[:1])
    with pytest.raises(SharesInvalid, match="no shares were given"):
        shares.combine(["", "  "])


def test_a_mistyped_word_is_named_by_share_and_place(five: list[str]) -> None:
    words = five[1].split()
    wrong = words[9][:-1] + ("x" if words[9][-1] != "x" else "y")
    words[9] = wrong
    with pytest.raises(SharesInvalid) as caught:
        shares.combine([five[0], " ".join(words), five[2]])
    assert caught.value.message.startswith(f"share 2, word 10: {wrong!r} is not a word")
    assert "did you mean" in caught.value.message


def test_swapped_words_fail_the_checksum_and_show_the_check_code(five: list[str]) -> None:
    words = five[2].split()
    words[10], words[11] = words[11], words[10]
    if words[10] == words[11]:
        pytest.skip("the two words are the same")
    swapped = " ".join(words)
    with pytest.raises(SharesInvalid) as caught:
        shares.combine([five[0], five[1], swapped])
    assert caught.value.message.startswith("share 3 does not pass its checksum")
    assert shares.check_code(swapped) in caught.value.message
    assert shares.check_code(swapped) != shares.check_code(five[2])


def test_a_missing_word_is_counted(five: list[str]) -> None:
    with pytest.raises(SharesInvalid, match="share 1 has 32 words; .* has 33"):
        shares.combine([" ".join(five[0].split()[:-1]), five[1], five[2]])


def test_shares_of_two_backups_are_told_apart(key: bytes, five: list[str]) -> None:
    other = shares.split(key, 3, 5)  # the same key, split again: another identifier
    with pytest.raises(SharesInvalid, match="share 3 is of another backup than share 1"):
        shares.combine([five[0], five[1], other[2]])


def test_the_same_share_twice_counts_once(five: list[str]) -> None:
    with pytest.raises(SharesInvalid, match="share 3 is the same as share 1"):
        shares.combine([five[0], five[1], five[0]])
    with pytest.raises(SharesInvalid, match="share 2 is the same as share 1"):
        shares.combine([five[0], five[0].upper(), five[2]])


def test_a_slip39_share_of_another_kind_is_refused() -> None:
    words = shamir_mnemonic.generate_mnemonics(1, [(2, 3)], b"\x07" * 16)[0]
    padded = words[0]  # 20 words: a 128-bit secret
    with pytest.raises(SharesInvalid, match="has 20 words"):
        shares.combine([padded, words[1]])
    grouped = shamir_mnemonic.generate_mnemonics(1, [(1, 1), (2, 3)], b"\x07" * 32)
    with pytest.raises(SharesInvalid, match="share 1 is a SLIP-39 share, but not of a fieldsync"):
        shares.combine([grouped[0][0]])


@pytest.mark.parametrize(
    ("threshold", "count", "why"),
    [
        (0, 3, "between 1 and the number of shares"),
        (4, 3, "between 1 and the number of shares"),
        (2, 17, "1 to 16 shares"),
        (1, 0, "1 to 16 shares"),
        (1, 5, "5 copies of the backup key"),
    ],
)
def test_thresholds_out_of_range_are_refused(threshold: int, count: int, why: str) -> None:
    with pytest.raises(InputError, match=why):
        shares.split(b"\x00" * 32, threshold, count)


def test_one_of_one_is_a_single_copy_of_the_key(key: bytes) -> None:
    (only,) = shares.split(key, 1, 1)
    assert shares.combine([only]) == key
    sixteen = shares.split(key, 16, 16)
    assert shares.combine(sixteen) == key


def test_the_check_code_is_eight_digits_of_a_labelled_blake2b() -> None:
    words = "academic acid acne acquire acrobat activity actress adapt adequate adjust"
    digest = hashlib.blake2b(
        b"fieldsync/share-check/v1\x00" + words.encode(), digest_size=32
    ).digest()
    number = int.from_bytes(digest[:8], "big") % 10**8
    assert shares.check_code(words) == f"{number:08d}"[:4] + "-" + f"{number:08d}"[4:]
    assert shares.check_code(words.upper()) == shares.check_code(words)


def test_a_word_typed_hidden_is_never_echoed_in_the_error() -> None:
    from fieldsync.core import shares as share_words
    from fieldsync.errors import SharesInvalid

    typed = "secretword " * 20
    with pytest.raises(SharesInvalid) as caught:
        share_words.read(2, typed, hidden=True)
    assert "secretword" not in caught.value.message and "word 1" in caught.value.message


def test_a_sealed_backup_whose_version_is_true_is_malformed() -> None:
    from fieldsync.core import backup as sealed_format
    from fieldsync.core import crypto, encoding
    from fieldsync.errors import MalformedData

    secrets = sealed_format.Secrets(crypto.random_bytes(32), ((1, crypto.random_bytes(32)),))
    raw = sealed_format.seal(sealed_format.new_key(), "ab" * 32, secrets)
    doc = encoding.decode(raw, what="test")
    doc["version"] = True
    with pytest.raises(MalformedData):
        sealed_format.parse(encoding.encode(doc))
