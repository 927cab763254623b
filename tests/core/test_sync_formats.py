"""Invites, batches and receipts: the formats of the sync protocol (docs/protocol.md)."""

from __future__ import annotations

import base64
import dataclasses
import json

import pytest

from fieldsync.core import batch as batch_format
from fieldsync.core import crypto, encoding, invite, orglog, receipt
from fieldsync.core import entry as entry_format
from fieldsync.core.clock import HLC
from fieldsync.core.ids import new_record_id
from fieldsync.core.orglog import OrgState
from fieldsync.errors import (
    BatchInvalid,
    IntegrityError,
    InviteExpired,
    MalformedData,
    SignatureInvalid,
)

ADMIN = crypto.SigningPair(bytes([1]) * 32)
DEVICE = crypto.SigningPair(bytes([2]) * 32)
OTHER = crypto.SigningPair(bytes([3]) * 32)
SERVER = crypto.SigningPair(bytes([4]) * 32)
ORG = crypto.BoxPair(bytes([5]) * 32)
NOW = 1_800_000_000_000


def chain(
    signer: crypto.SigningPair, count: int, start: int = 1, prev: str | None = None
) -> list[entry_format.Entry]:
    entries = []
    for seq in range(start, start + count):
        entry, _ = entry_format.seal(
            signer,
            seq=seq,
            prev=prev,
            record=new_record_id(),
            parents=[],
            hlc=HLC(seq, 0),
            body=b'{"x":1}',
        )
        entries.append(entry)
        prev = entry.id
    return entries


def wraps_for(entries: list[entry_format.Entry]) -> list[bytes]:
    return [crypto.wrap_key(ORG.public, crypto.random_bytes(32)) for _ in entries]


def make_invite(**overrides: object) -> str:
    args: dict[str, object] = dict(
        name="field laptop 7",
        server="https://sync.example.org",
        server_key=SERVER.public,
        org_read_key=ORG.public,
        expires_ms=NOW + 3_600_000,
    )
    args.update(overrides)
    return invite.issue(ADMIN, **args)  # type: ignore[arg-type]


# --- invites ---------------------------------------------------------------------------------


def test_an_invite_is_one_line_that_reads_back() -> None:
    text = make_invite()
    assert "\n" not in text
    assert text.startswith("fieldsync-invite-v1:")
    read = invite.read(f"  {text}\n", now_ms=NOW)
    assert read.name == "field laptop 7"
    assert read.server_key == SERVER.public.hex()
    assert read.admin_key == ADMIN.public.hex()
    assert len(bytes.fromhex(read.token)) == 32
    assert invite.read(make_invite(), now_ms=NOW).token != read.token  # one-time tokens


def test_an_expired_invite_is_refused() -> None:
    with pytest.raises(InviteExpired):
        invite.read(make_invite(expires_ms=NOW - 1), now_ms=NOW)


def test_every_changed_character_of_an_invite_is_refused() -> None:
    text = make_invite()
    alphabet = "AQgw-_"
    for position in range(len("fieldsync-invite-v1:"), len(text)):
        if text[position] == ".":
            continue
        changed = (
            text[:position]
            + next(c for c in alphabet if c != text[position])
            + text[position + 1 :]
        )
        with pytest.raises(IntegrityError):
            invite.read(changed, now_ms=NOW)


def test_an_invite_signed_by_someone_else_is_refused() -> None:
    text = make_invite()
    payload_b64 = text.split(":", 1)[1].split(".")[0]
    payload = invite._unb64(payload_b64)
    forged = (
        f"fieldsync-invite-v1:{payload_b64}.{invite._b64(OTHER.sign(crypto.LABEL_INVITE, payload))}"
    )
    with pytest.raises(SignatureInvalid):
        invite.read(forged, now_ms=NOW)
    # A forger who also names their own key as the admin key gets a valid-looking invite; that
    # is why the device shows the admin key's fingerprint, and the server checks its own copy.
    value = json.loads(payload) | {"admin_key": OTHER.public.hex()}
    own = encoding.encode(value)
    self_signed = f"fieldsync-invite-v1:{invite._b64(own)}.{invite._b64(OTHER.sign(crypto.LABEL_INVITE, own))}"
    assert invite.read(self_signed, now_ms=NOW).admin_key != ADMIN.public.hex()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "fieldsync-invite-v1:",
        "fieldsync-invite-v1:a.b.c",
        "fieldsync-invite-v1:!!!.???",
        "x" * 5000,
    ],
)
def test_things_that_are_not_invites(text: str) -> None:
    with pytest.raises(MalformedData):
        invite.read(text, now_ms=NOW)


@pytest.mark.parametrize(
    "overrides",
    [
        {"server": "javascript:alert(1)"},
        {"server": "file:///etc/passwd"},
        {"name": ""},
        {"name": "bad\x1b[31mname"},
        {"name": "x" * 101},
        {"expires_ms": 0},
    ],
)
def test_invalid_invites_are_never_signed(overrides: dict[str, object]) -> None:
    with pytest.raises(MalformedData):
        make_invite(**overrides)


ROOT = OrgState.root(ADMIN.public.hex(), ORG.public.hex(), SERVER.public.hex())
SUCCESSION = orglog.sign(
    ADMIN, ROOT, orglog.SUCCESSION, {"admin_key": OTHER.public.hex()}, time_ms=NOW
)


def _signed_invite(signer: crypto.SigningPair, value: dict[str, object]) -> str:
    payload = encoding.encode(value)
    signature = signer.sign(crypto.LABEL_INVITE, payload)
    return f"fieldsync-invite-v1:{invite._b64(payload)}.{invite._b64(signature)}"


def test_an_invite_signed_by_a_successor_names_the_first_key_and_its_signer() -> None:
    text = invite.issue(
        OTHER,
        name="laptop",
        server="https://sync.example.org",
        server_key=SERVER.public,
        org_read_key=ORG.public,
        expires_ms=NOW + 1,
        org_log=(1, orglog.statement_id(SUCCESSION)),
        successions=[SUCCESSION],
    )
    shown = invite.read(text, now_ms=NOW)
    assert (shown.admin_key, shown.signer) == (ADMIN.public.hex(), OTHER.public.hex())
    # the organisation is the same one: its fingerprint is the first key's
    assert (
        shown.organisation_fingerprint
        == invite.read(make_invite(), now_ms=NOW).organisation_fingerprint
    )
    # signed by the first key, an invite names no signer (the older form, unchanged)
    assert invite.read(make_invite(), now_ms=NOW).signer is None


def test_an_invite_whose_signer_no_succession_names_is_refused() -> None:
    """The attack: anyone may sign an invite naming the organisation's public keys (so it
    shows the organisation's fingerprint) with a key of their own as its signer. Only a chain
    of successions from the first admin key, each signed by the key the one before named,
    makes a signer the organisation's."""
    thief = crypto.SigningPair(bytes([0x77]) * 32)
    chained = {"signer": OTHER.public.hex(), "successions": [_b64(SUCCESSION)]}
    good = invite.read(make_invite(org_log=(1, "ab" * 32)), now_ms=NOW).to_json() | chained
    assert invite.read(_signed_invite(OTHER, good), now_ms=NOW).signer == OTHER.public.hex()
    thiefs_root = OrgState.root(thief.public.hex(), ORG.public.hex(), "")
    to_thief = {"admin_key": OTHER.public.hex()}
    by_thief = orglog.sign(thief, thiefs_root, orglog.SUCCESSION, to_thief, time_ms=NOW)
    new_read_key = {"epoch": 2, "read_key": crypto.BoxPair(bytes([9]) * 32).public.hex()}
    rotation = orglog.sign(ADMIN, ROOT, orglog.READ_KEY, new_read_key, time_ms=NOW)
    later = orglog.sign(ADMIN, _at(1), orglog.SUCCESSION, to_thief, time_ms=NOW)  # at seq 2
    third = crypto.SigningPair(bytes([0x78]) * 32)
    same_seq = orglog.sign(  # OTHER names a successor at seq 1 too, where it was named
        OTHER,
        dataclasses.replace(ROOT, admin_key=OTHER.public.hex()),
        orglog.SUCCESSION,
        {"admin_key": third.public.hex()},
        time_ms=NOW,
    )
    refused = [
        (thief, good | {"signer": thief.public.hex()}),  # a signer the chain does not end at
        (OTHER, good | {"successions": [_b64(by_thief)]}),  # a chain the thief signed
        (OTHER, good | {"successions": [_b64(rotation)]}),  # not a succession
        (OTHER, good | {"successions": [_b64(later)]}),  # past the invite's log position
        (ADMIN, good),  # the chain ends at OTHER, and the first key signed it
        (third, good | {"signer": third.public.hex(), "successions": [_b64(SUCCESSION)] * 8}),
        (
            third,
            good
            | {"signer": third.public.hex(), "successions": [_b64(SUCCESSION), _b64(same_seq)]},
        ),  # two successions at one seq: not a chain of the log
    ]
    for signer, value in refused:
        with pytest.raises(SignatureInvalid):
            invite.read(_signed_invite(signer, value), now_ms=NOW)
    for value in (
        good | {"signer": ADMIN.public.hex()},  # the first key named as its own successor
        {k: v for k, v in good.items() if k not in ("org_seq", "org_head")},  # no log position
        {k: v for k, v in good.items() if k != "successions"},  # a signer without its chain
        good | {"signer": "not a key"},
        good | {"successions": []},
        good | {"successions": ["not base64!"]},
        good | {"successions": ["QUJD!"]},  # base64 only once what is not base64 is dropped
        good | {"successions": [_b64(SUCCESSION)] * 9},
    ):
        with pytest.raises(MalformedData):
            invite.read(_signed_invite(OTHER, value), now_ms=NOW)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _at(seq: int) -> OrgState:
    """The root as if ``seq`` statements had been followed (a succession signed after them)."""
    return dataclasses.replace(ROOT, seq=seq, head="cd" * 32)


# --- batches ---------------------------------------------------------------------------------


def test_a_batch_round_trips_and_names_its_entries() -> None:
    entries = chain(DEVICE, 3)
    wraps = wraps_for(entries)
    built = batch_format.build(DEVICE, entries, wraps, [("ab" * 32, 1234)])
    parsed = batch_format.parse(built.raw)
    assert parsed.id == built.id == batch_format.batch_id(built.raw)
    assert parsed.manifest.entries == tuple(e.id for e in entries)
    assert (parsed.manifest.first_seq, parsed.manifest.last_seq, parsed.manifest.prev) == (
        1,
        3,
        None,
    )
    assert parsed.entries == tuple(entries)
    assert parsed.wraps == tuple(wraps)
    assert parsed.readers == ((), (), ())
    assert parsed.manifest.blobs == (("ab" * 32, 1234),)
    later = chain(DEVICE, 2, start=4, prev=entries[-1].id)
    assert batch_format.build(DEVICE, later, wraps_for(later)).manifest.prev == entries[-1].id


def test_every_bit_flip_and_truncation_of_a_batch_is_refused() -> None:
    entries = chain(DEVICE, 2)
    raw = batch_format.build(DEVICE, entries, wraps_for(entries)).raw
    for offset in range(len(raw)):
        damaged = bytearray(raw)
        damaged[offset] ^= 0x04
        with pytest.raises(IntegrityError):
            batch_format.parse(bytes(damaged))
    for length in range(0, len(raw), 7):
        with pytest.raises(IntegrityError):
            batch_format.parse(raw[:length])


def manifest_of(
    source: list[entry_format.Entry], author: crypto.SigningPair = DEVICE, **changes: object
) -> batch_format.Manifest:
    values: dict[str, object] = dict(
        author=author.public.hex(),
        first_seq=source[0].header.seq,
        last_seq=source[-1].header.seq,
        prev=source[0].header.prev,
        entries=tuple(e.id for e in source),
        blobs=(),
    )
    values.update(changes)
    return batch_format.Manifest(**values)  # type: ignore[arg-type]


def test_a_dropped_entry_is_a_manifest_mismatch() -> None:
    entries = chain(DEVICE, 3)
    raw = batch_format.encode(
        DEVICE, manifest_of(entries), [entries[0], entries[2]], wraps_for(entries)[:2]
    )
    with pytest.raises(BatchInvalid, match="holds 2 entries, its manifest names 3"):
        batch_format.parse(raw)


def test_reordered_entries_break_the_chain() -> None:
    # Two histories of one device, interleaved: every seq is where it should be, so only the
    # links (each entry's prev, the manifest's prev) can tell that this is not one chain.
    entries, rewritten = chain(DEVICE, 3), chain(DEVICE, 3)
    mixed = [entries[0], rewritten[1], entries[2]]
    raw = batch_format.encode(
        DEVICE, manifest_of(mixed, entries=tuple(e.id for e in mixed)), mixed, wraps_for(mixed)
    )
    with pytest.raises(BatchInvalid, match="entry 2 of the batch does not continue"):
        batch_format.parse(raw)
    later = chain(DEVICE, 2, start=4, prev=entries[-1].id)
    raw = batch_format.encode(  # the manifest says it follows another entry at seq 3
        DEVICE, manifest_of(later, prev=rewritten[-1].id), later, wraps_for(later)
    )
    with pytest.raises(BatchInvalid, match="entry 1 of the batch does not continue"):
        batch_format.parse(raw)


def test_entries_swapped_out_of_seq_order_break_the_chain() -> None:
    entries = chain(DEVICE, 3)
    swapped = [entries[1], entries[0], entries[2]]
    raw = batch_format.encode(
        DEVICE,
        manifest_of(entries, entries=tuple(e.id for e in swapped)),
        swapped,
        wraps_for(swapped),
    )
    with pytest.raises(BatchInvalid, match="does not continue the author's chain"):
        batch_format.parse(raw)


def test_another_devices_entry_moved_into_a_batch_is_refused() -> None:
    mine, theirs = chain(DEVICE, 2), chain(OTHER, 2)
    moved = [mine[0], theirs[1]]
    raw = batch_format.encode(
        DEVICE, manifest_of(mine, entries=tuple(e.id for e in moved)), moved, wraps_for(moved)
    )
    with pytest.raises(BatchInvalid, match="signed by another author"):
        batch_format.parse(raw)


def test_a_batch_signed_by_someone_other_than_its_author_is_refused() -> None:
    entries = chain(DEVICE, 2)
    raw = batch_format.encode(OTHER, manifest_of(entries), entries, wraps_for(entries))
    with pytest.raises(SignatureInvalid):
        batch_format.parse(raw)


def test_a_gap_inside_a_batch_is_refused() -> None:
    entries = chain(DEVICE, 3)
    gapped = [entries[0], entries[2]]
    raw = batch_format.encode(
        DEVICE,
        manifest_of(entries, last_seq=2, entries=tuple(e.id for e in gapped)),
        gapped,
        wraps_for(gapped),
    )
    with pytest.raises(BatchInvalid):
        batch_format.parse(raw)


def readers_for(count: int) -> batch_format.Readers:
    keys = [crypto.BoxPair(bytes([10 + n]) * 32).public for n in range(count)]
    return tuple((key.hex(), crypto.wrap_key(key, crypto.random_bytes(32))) for key in keys)


def test_reader_wraps_round_trip_up_to_the_limit() -> None:
    entries = chain(ADMIN, 2)
    readers = [readers_for(batch_format.MAX_READERS), readers_for(1)]
    parsed = batch_format.parse(
        batch_format.build(ADMIN, entries, wraps_for(entries), (), readers).raw
    )
    assert parsed.entries == tuple(entries)
    assert parsed.readers == tuple(readers)
    with pytest.raises(ValueError):  # one set of reader wraps per entry, no more, no fewer
        batch_format.build(ADMIN, entries, wraps_for(entries), (), readers[:1])


def test_too_many_or_repeated_reader_wraps_are_refused() -> None:
    entries = chain(ADMIN, 1)
    many = [readers_for(batch_format.MAX_READERS + 1)]
    raw = batch_format.encode(ADMIN, manifest_of(entries, ADMIN), entries, wraps_for(entries), many)
    with pytest.raises(MalformedData, match="too many reader wraps"):
        batch_format.parse(raw)
    (reader,) = readers_for(1)
    twice = [(reader, (reader[0], crypto.wrap_key(bytes.fromhex(reader[0]), bytes(32))))]
    raw = batch_format.encode(
        ADMIN, manifest_of(entries, ADMIN), entries, wraps_for(entries), twice
    )
    with pytest.raises(MalformedData, match="names one reader twice"):
        batch_format.parse(raw)


def test_every_cut_and_extension_of_a_batch_signed_by_its_author_is_refused_by_name() -> None:
    # A hostile device signs whatever layout it likes: the signature holds, so only the layout
    # checks stand between it and an IndexError (an "internal error" on the server).
    entries = chain(ADMIN, 2)
    readers = [readers_for(1), readers_for(2)]
    signed = batch_format.build(ADMIN, entries, wraps_for(entries), (), readers).raw[:-64]
    for length in range(len(signed)):
        cut = signed[:length]
        with pytest.raises(IntegrityError, match="truncated"):
            batch_format.parse(cut + ADMIN.sign(crypto.LABEL_BATCH, cut))
    for extra in (b"\x00", b"\x00" * 4, b"\x01" + bytes(111)):
        longer = signed + extra
        with pytest.raises(MalformedData, match="bytes after its last entry"):
            batch_format.parse(longer + ADMIN.sign(crypto.LABEL_BATCH, longer))


@pytest.mark.parametrize(
    "change",
    [
        {"blobs": [["zz", 5]]},
        {"blobs": [["ab" * 32, 5, 7]]},
        {"blobs": [["ab" * 32, -1]]},
        {"blobs": [["ab" * 32]]},
        {"first_seq": "1"},
        {"first_seq": True},
        {"last_seq": -1},
    ],
)
def test_manifests_with_invalid_values_are_refused(change: dict[str, object]) -> None:
    value = manifest_of(chain(DEVICE, 1)).to_json() | change
    with pytest.raises(MalformedData, match="batch manifest has invalid values"):
        batch_format.Manifest.from_json(value)


def test_a_manifest_of_exactly_the_most_entries_is_accepted() -> None:
    most = batch_format.MAX_ENTRIES
    ids = [crypto.hash32(b"test", bytes([n % 256, n // 256])).hex() for n in range(most)]
    value = {"author": DEVICE.public.hex(), "blobs": [], "entries": ids, "first_seq": 1}
    manifest = batch_format.Manifest.from_json(value | {"last_seq": most, "prev": None})
    assert len(manifest.entries) == most
    with pytest.raises(MalformedData):
        batch_format.Manifest.from_json(
            value | {"entries": [*ids, "cd" * 32], "last_seq": most + 1, "prev": None}
        )


def test_a_batch_over_the_size_limit_is_refused_before_it_is_read() -> None:
    limit = batch_format.MAX_BATCH_BYTES
    with pytest.raises(MalformedData, match="not a fieldsync batch"):  # at the limit: read
        batch_format.read_manifest(b"F" * limit)
    with pytest.raises(MalformedData, match=f"batch is too large \\({limit + 1} bytes"):
        batch_format.read_manifest(b"F" * (limit + 1))


def test_plan_bounds_batches_by_bytes_and_count() -> None:
    assert batch_format.plan([100] * 10, target=250) == [2, 2, 2, 2, 2]
    assert batch_format.plan([100] * 4, target=200) == [2, 2]  # the target itself still fits
    assert batch_format.plan([10] * 1200) == [500, 500, 200]
    assert batch_format.plan([5_000_000, 10]) == [1, 1]  # an oversized entry travels alone
    assert batch_format.plan([]) == []


# --- receipts --------------------------------------------------------------------------------


def make_receipt(signer: crypto.SigningPair = SERVER) -> bytes:
    return receipt.sign(
        signer, device=DEVICE.public.hex(), last_seq=3, head="aa" * 32, batch="bb" * 32, time_ms=NOW
    )


def test_a_receipt_verifies_against_the_pinned_key() -> None:
    got = receipt.verify(make_receipt(), pinned_server_key=SERVER.public)
    assert (got.last_seq, got.head, got.batch) == (3, "aa" * 32, "bb" * 32)


def test_a_receipt_from_another_key_is_refused_even_if_it_names_that_key() -> None:
    with pytest.raises(SignatureInvalid, match="pinned"):
        receipt.verify(make_receipt(OTHER), pinned_server_key=SERVER.public)


def test_an_altered_receipt_is_refused() -> None:
    doc = json.loads(make_receipt())
    doc["receipt"]["last_seq"] = 4  # claims more was stored than was
    altered = encoding.encode(doc)
    with pytest.raises(SignatureInvalid):
        receipt.verify(altered, pinned_server_key=SERVER.public)
    for bad in (b"", b"{}", b"200 OK", make_receipt()[:-3]):
        with pytest.raises(MalformedData):
            receipt.verify(bad, pinned_server_key=SERVER.public)


def test_a_receipt_whose_signature_is_broken_is_refused_under_the_pinned_key() -> None:
    doc = json.loads(make_receipt())  # names the pinned key, as a genuine one does
    signature = bytearray(bytes.fromhex(doc["signature"]))
    signature[7] ^= 0x01
    doc["signature"] = signature.hex()
    with pytest.raises(SignatureInvalid, match="seq 3"):
        receipt.verify(encoding.encode(doc), pinned_server_key=SERVER.public)


def test_wrapping_for_an_unusable_reader_key_is_a_named_error() -> None:
    with pytest.raises(MalformedData, match="cannot be used"):
        crypto.wrap_key(bytes(32), crypto.random_bytes(32))  # the all-zero, low-order point
