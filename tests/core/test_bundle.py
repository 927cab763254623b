"""Key bundles (core/bundle.py): the read keys sealed to one member's box key, signed by the
admin key in force. A round trip, then every refusal of ``open_bundle``, each an attack: a
forged bundle, a retired admin key's, another member's, keys the server made up, an old
bundle, a gap, malformed keys, a newer format, tampering, broken base64."""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

import pytest

from fieldsync.core import bundle, crypto, encoding, orglog
from fieldsync.core.bundle import ReadSecret
from fieldsync.core.orglog import OrgState
from fieldsync.errors import (
    DecryptionFailed,
    IntegrityError,
    MalformedData,
    SignatureInvalid,
    UnsupportedFormat,
)

ADMIN = crypto.SigningPair(bytes([0xA1]) * 32)
SUCCESSOR = crypto.SigningPair(bytes([0xA2]) * 32)
SERVER = crypto.SigningPair(bytes([0x5E]) * 32)
READS = [crypto.BoxPair(bytes([0xB0 + epoch]) * 32) for epoch in (1, 2, 3)]
MEMBER = crypto.SigningPair(bytes([0xC1]) * 32)  # the analyst who opens the bundle
BOX = crypto.BoxPair(bytes([0xD1]) * 32)
OTHER = crypto.SigningPair(bytes([0xC2]) * 32)  # another member
OTHER_BOX = crypto.BoxPair(bytes([0xD2]) * 32)
THIEF = crypto.SigningPair(bytes([0xEE]) * 32)
ROOT = OrgState.root(ADMIN.public.hex(), READS[0].public.hex(), SERVER.public.hex())


def _next(
    state: OrgState, signer: crypto.SigningPair, kind: str, fields: dict[str, Any]
) -> OrgState:
    raw = orglog.sign(signer, state, kind, fields, time_ms=1_000 + state.seq)
    return orglog.apply(state, orglog.parse(raw))


def _member(state: OrgState, key: crypto.SigningPair, box: crypto.BoxPair) -> OrgState:
    fields = {
        "box_key": box.public.hex(),
        "member_key": key.public.hex(),
        "name": "Amal",
        "role": orglog.ANALYST,
    }
    return _next(state, ADMIN, orglog.MEMBER, fields)


CERTIFIED = _member(_member(ROOT, MEMBER, BOX), OTHER, OTHER_BOX)  # seq 2, read key 1
STATE = _next(CERTIFIED, ADMIN, orglog.READ_KEY, {"epoch": 2, "read_key": READS[1].public.hex()})
SECRETS = [ReadSecret(1, READS[0]), ReadSecret(2, READS[1])]


def _make(
    state: OrgState = STATE,
    signer: crypto.SigningPair = ADMIN,
    *,
    member: crypto.SigningPair = MEMBER,
    box: crypto.BoxPair = BOX,
    secrets: list[ReadSecret] = SECRETS,
) -> bytes:
    # a signer other than the admin key in force forges: make refuses to, so it is told
    # the signer is in force
    as_signed = dataclasses.replace(state, admin_key=signer.public.hex())
    return bundle.make(
        signer, as_signed, member=member.public.hex(), box_key=box.public.hex(), secrets=secrets
    )


def _open(raw: bytes, state: OrgState = STATE) -> list[ReadSecret]:
    return bundle.open_bundle(raw, state=state, member=MEMBER, box=BOX)


def _inner(keys: list[dict[str, Any]]) -> bytes:
    return encoding.encode({"read_keys": keys})


def _keys(pairs: list[tuple[int, crypto.BoxPair]]) -> list[dict[str, Any]]:
    return [{"epoch": epoch, "secret": pair.secret.hex()} for epoch, pair in pairs]


def _by_hand(
    signer: crypto.SigningPair = ADMIN,
    *,
    inner: bytes | None = None,
    sealed_to: crypto.BoxPair = BOX,
    **changes: object,
) -> bytes:
    """A bundle built from docs/format.md, not by ``make``: any inner bytes, any field changed,
    signed by ``signer`` (the admin key, unless a test says otherwise)."""
    if inner is None:
        inner = _inner(_keys([(1, READS[0]), (2, READS[1])]))
    sealed = base64.b64encode(crypto.seal_for(sealed_to.public, inner)).decode("ascii")
    body = {
        "box_key": BOX.public.hex(),
        "format": "fieldsync/key-bundle",
        "member": MEMBER.public.hex(),
        "org_seq": STATE.seq,
        "sealed": sealed,
        "signer": signer.public.hex(),
        "version": 1,
    } | changes
    signature = signer.sign(b"fieldsync/key-bundle/v1", encoding.encode(body))
    return encoding.encode({"bundle": body, "signature": signature.hex()})


def _secrets(found: list[ReadSecret]) -> list[tuple[int, bytes]]:
    return [(s.epoch, s.pair.secret) for s in found]


# --- a round trip -------------------------------------------------------------------------


def test_a_bundle_opens_to_every_read_key_oldest_first() -> None:
    raw = _make()
    assert _secrets(_open(raw)) == [(1, READS[0].secret), (2, READS[1].secret)]
    doc = encoding.decode(raw)
    assert set(doc) == {"bundle", "signature"}
    assert {k: v for k, v in doc["bundle"].items() if k != "sealed"} == {
        "box_key": BOX.public.hex(),
        "format": "fieldsync/key-bundle",
        "member": MEMBER.public.hex(),
        "org_seq": 3,
        "signer": ADMIN.public.hex(),
        "version": 1,
    }
    assert READS[0].secret.hex() not in raw.decode()  # sealed, not written


def test_a_bundle_built_from_the_format_opens_as_one_make_made() -> None:
    assert _secrets(_open(_by_hand())) == _secrets(_open(_make()))


def test_a_read_secret_never_prints_its_key() -> None:
    shown = repr(_open(_make()))
    assert shown == "[ReadSecret(1), ReadSecret(2)]"
    assert READS[0].secret.hex() not in shown


def test_a_bundle_newer_than_the_log_gives_only_the_keys_the_log_announces() -> None:
    """Read key 3 is not in this reader's log yet: nothing vouches for it, so it is left out."""
    later = _next(STATE, ADMIN, orglog.READ_KEY, {"epoch": 3, "read_key": READS[2].public.hex()})
    raw = _make(later, secrets=[*SECRETS, ReadSecret(3, READS[2])])
    assert [s.epoch for s in _open(raw, STATE)] == [1, 2]
    assert [s.epoch for s in _open(raw, later)] == [1, 2, 3]


# --- who signed it ------------------------------------------------------------------------


def test_a_forged_bundle_signed_by_another_key_is_refused() -> None:
    with pytest.raises(SignatureInvalid, match="not signed by the organisation's admin key"):
        _open(_make(signer=THIEF))


def test_a_forged_bundle_naming_the_admin_key_as_its_signer_is_refused() -> None:
    doc = encoding.decode(_make(signer=THIEF))
    doc["bundle"]["signer"] = ADMIN.public.hex()
    with pytest.raises(SignatureInvalid, match="signature on the key bundle does not verify"):
        _open(encoding.encode(doc))


def test_a_bundle_of_the_retired_admin_key_is_refused_after_a_succession() -> None:
    succeeded = _next(STATE, ADMIN, orglog.SUCCESSION, {"admin_key": SUCCESSOR.public.hex()})
    old = _make(STATE, ADMIN)  # made, and valid, before the succession
    assert len(_open(old, STATE)) == 2
    with pytest.raises(SignatureInvalid, match="not signed by the organisation's admin key"):
        _open(old, succeeded)
    with pytest.raises(SignatureInvalid, match="not signed by the organisation's admin key"):
        _open(_make(succeeded, ADMIN), succeeded)  # nor one it makes after
    assert len(_open(_make(succeeded, SUCCESSOR), succeeded)) == 2


# --- for whom -----------------------------------------------------------------------------


def test_another_members_bundle_is_refused() -> None:
    theirs = _make(member=OTHER, box=OTHER_BOX)
    assert len(bundle.open_bundle(theirs, state=STATE, member=OTHER, box=OTHER_BOX)) == 2
    with pytest.raises(SignatureInvalid, match="made for another member"):
        _open(theirs)


@pytest.mark.parametrize(
    ("member", "box"),
    [(MEMBER, OTHER_BOX), (OTHER, BOX)],
    ids=["this member, another box key", "another member, this box key"],
)
def test_a_bundle_for_another_box_key_or_member_key_is_refused(
    member: crypto.SigningPair, box: crypto.BoxPair
) -> None:
    with pytest.raises(SignatureInvalid, match="made for another member"):
        _open(_make(member=member, box=box))


def test_a_bundle_naming_this_box_key_but_sealed_to_another_does_not_open() -> None:
    with pytest.raises(DecryptionFailed, match="does not open with this store's box key"):
        _open(_by_hand(sealed_to=OTHER_BOX))


# --- the keys inside ----------------------------------------------------------------------


def test_a_read_key_that_is_not_the_logs_at_its_epoch_is_refused() -> None:
    """The server substituting keys: even signed, a secret whose public key is not the one
    the log announces at its epoch is not used, nor any other key of the bundle."""
    made_up = crypto.BoxPair(bytes([0x99]) * 32)
    for secrets, epoch in (
        ([ReadSecret(1, READS[0]), ReadSecret(2, made_up)], 2),
        ([ReadSecret(1, made_up), ReadSecret(2, READS[1])], 1),
        ([ReadSecret(1, READS[1]), ReadSecret(2, READS[0])], 1),  # two keys swapped
    ):
        with pytest.raises(IntegrityError, match=f"read key {epoch} in the key bundle is not"):
            _open(_make(secrets=secrets))


def test_a_bundle_older_than_the_log_is_refused_with_what_to_do() -> None:
    old = _make(CERTIFIED, secrets=SECRETS[:1])  # before read key 2
    assert len(_open(old, CERTIFIED)) == 1
    with pytest.raises(IntegrityError, match="holds 1 read keys, .* announces 2") as raised:
        _open(old)
    assert type(raised.value) is IntegrityError
    assert "fieldsync admin pull" in (raised.value.hint or "")
    with pytest.raises(IntegrityError, match="holds 0 read keys"):
        _open(_by_hand(inner=_inner([])))


@pytest.mark.parametrize(
    "epochs",
    [[1, 3], [2, 3], [1, 1], [2, 1], [0, 1]],
    ids=["a gap", "no epoch 1", "one epoch twice", "out of order", "an epoch 0"],
)
def test_epochs_that_are_not_one_two_three_are_refused(epochs: list[int]) -> None:
    inner = _inner(_keys(list(zip(epochs, READS, strict=False))))
    with pytest.raises(MalformedData, match="not epochs 1, 2, 3"):
        _open(_by_hand(inner=inner))


@pytest.mark.parametrize(
    "inner",
    [
        b"not json",
        b'{"read_keys": []}',  # not canonical: a space
        encoding.encode([]),
        encoding.encode({"read_keys": "all of them"}),
        encoding.encode({"keys": []}),
        encoding.encode({"read_keys": [], "more": 1}),
        _inner([{"epoch": 1}]),
        _inner([{"epoch": 1, "secret": READS[0].secret.hex(), "public": "x"}]),
        _inner([{"epoch": True, "secret": READS[0].secret.hex()}]),
        _inner([{"epoch": "1", "secret": READS[0].secret.hex()}]),
        _inner([{"epoch": 1, "secret": READS[0].secret.hex().upper()}]),
        _inner([{"epoch": 1, "secret": READS[0].secret.hex()[:-2]}]),
        _inner([["epoch", 1]]),
    ],
    ids=[
        "not JSON",
        "not canonical",
        "a list",
        "read_keys a string",
        "another field name",
        "a field more",
        "a key without its secret",
        "a key with a field more",
        "an epoch true",
        "an epoch a string",
        "a secret in capitals",
        "a secret a byte short",
        "a key a list",
    ],
)
def test_malformed_keys_inside_are_refused(inner: bytes) -> None:
    with pytest.raises(MalformedData, match="the key bundle's keys"):
        _open(_by_hand(inner=inner))


# --- the format ---------------------------------------------------------------------------


def test_a_bundle_of_a_newer_version_is_refused_in_words() -> None:
    with pytest.raises(UnsupportedFormat, match="made by a newer fieldsync"):
        _open(_by_hand(version=2))


@pytest.mark.parametrize(
    "changes",
    [{"format": "fieldsync/backup"}, {"extra": 1}],
    ids=["another format", "a field more"],
)
def test_a_bundle_of_another_format_or_shape_is_refused(changes: dict[str, object]) -> None:
    with pytest.raises(MalformedData, match="does not have the expected fields"):
        _open(_by_hand(**changes))


def test_a_bundle_without_its_signature_or_with_a_field_more_is_refused() -> None:
    doc = encoding.decode(_make())
    for changed in ({"bundle": doc["bundle"]}, doc | {"note": "x"}, doc | {"signature": "ab"}):
        with pytest.raises(MalformedData):
            _open(encoding.encode(changed))


def test_a_bundle_not_in_canonical_form_or_too_large_is_refused() -> None:
    raw = _make()
    spaced = json.dumps(json.loads(raw), indent=1).encode()
    with pytest.raises(MalformedData, match="not in canonical form"):
        _open(spaced)
    with pytest.raises(MalformedData, match="too large"):
        _open(b" " * (bundle.MAX_BUNDLE + 1))


@pytest.mark.parametrize(
    "field", ["org_seq", "member", "box_key", "sealed"], ids=lambda f: f"{f} changed"
)
def test_a_bundle_tampered_with_after_signing_is_refused(field: str) -> None:
    doc = encoding.decode(_make())
    other = encoding.decode(_make(member=OTHER, box=OTHER_BOX))["bundle"]
    replacement = {
        "org_seq": 1,
        "member": OTHER.public.hex(),
        "box_key": OTHER_BOX.public.hex(),
        "sealed": other["sealed"],  # another member's sealed keys moved in
    }[field]
    doc["bundle"][field] = replacement
    with pytest.raises(SignatureInvalid, match="signature on the key bundle does not verify"):
        bundle.open_bundle(
            encoding.encode(doc),
            state=STATE,
            member=OTHER if field == "member" else MEMBER,
            box=OTHER_BOX if field in ("box_key", "sealed") else BOX,
        )


def test_a_flipped_signature_is_refused() -> None:
    doc = encoding.decode(_make())
    signature = bytearray(bytes.fromhex(doc["signature"]))
    signature[0] ^= 1
    doc["signature"] = signature.hex()
    with pytest.raises(SignatureInvalid, match="does not verify"):
        _open(encoding.encode(doc))


@pytest.mark.parametrize(
    "sealed",
    ["!!!!", "YWJjZA", "YWJj ZA==", "YWJjZA==\n"],
    ids=["not the alphabet", "no padding", "a space", "a final newline"],
)
def test_sealed_keys_that_are_not_base64_are_refused(sealed: str) -> None:
    with pytest.raises(MalformedData, match="sealed keys are not base64"):
        _open(_by_hand(sealed=sealed))


def test_sealed_keys_too_short_for_a_sealed_box_do_not_open() -> None:
    with pytest.raises(DecryptionFailed, match="does not open"):
        _open(_by_hand(sealed="YWJj"))


# --- Checks found missing while writing these tests (each failed before its fix) ----------


def test_a_bundle_whose_org_seq_is_negative_is_malformed() -> None:
    with pytest.raises(MalformedData):
        _open(_by_hand(org_seq=-1))


def test_a_bundle_whose_version_is_true_is_malformed() -> None:
    with pytest.raises(MalformedData):
        _open(_by_hand(version=True))


def test_make_refuses_a_key_that_is_not_the_admin_key_in_force() -> None:
    with pytest.raises(SignatureInvalid, match="not the organisation's admin key in force"):
        bundle.make(
            THIEF, STATE, member=MEMBER.public.hex(), box_key=BOX.public.hex(), secrets=SECRETS
        )


def test_a_bundle_made_before_any_statement_opens() -> None:
    root = OrgState.root(ADMIN.public.hex(), SECRETS[0].pair.public.hex(), "00" * 32)
    made = bundle.make(
        ADMIN, root, member=MEMBER.public.hex(), box_key=BOX.public.hex(), secrets=SECRETS[:1]
    )
    assert b'"org_seq":0' in made
    assert len(bundle.open_bundle(made, state=root, member=MEMBER, box=BOX)) == 1
