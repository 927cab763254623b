from __future__ import annotations

import struct

import pytest

from fieldsync.core import crypto, encoding
from fieldsync.core import entry as entry_format
from fieldsync.core.clock import HLC
from fieldsync.core.ids import new_record_id
from fieldsync.errors import DecryptionFailed, IntegrityError, MalformedData, SignatureInvalid

SIGNER = crypto.SigningPair(bytes(range(32)))
BODY = encoding.encode(
    {"answers": {"narrative": "شهادة"}, "attachments": [], "form": "x@1", "note": None}
)


def make(**overrides: object) -> tuple[entry_format.Entry, bytes]:
    args: dict[str, object] = dict(
        seq=1,
        prev=None,
        record=new_record_id(),
        parents=[],
        hlc=HLC(1_700_000_000_000, 0),
        body=BODY,
    )
    args.update(overrides)
    return entry_format.seal(SIGNER, **args)  # type: ignore[arg-type]


def test_seal_parse_open_round_trip() -> None:
    entry, key = make()
    again = entry_format.parse(entry.raw)
    assert again.id == entry.id == entry_format.entry_id(entry.raw)
    assert again.header == entry.header
    assert again.open(key) == BODY


def test_ids_differ_for_different_content() -> None:
    a, _ = make()
    b, _ = make(record=a.header.record)
    assert a.id != b.id  # fresh key and nonce each time


def test_every_single_bit_flip_is_refused() -> None:
    entry, key = make()
    for offset in range(len(entry.raw)):
        for bit in (0x01, 0x80):
            damaged = bytearray(entry.raw)
            damaged[offset] ^= bit
            with pytest.raises(IntegrityError):
                entry_format.parse(bytes(damaged)).open(key)


def test_every_truncation_and_any_extension_is_refused() -> None:
    entry, _ = make()
    for length in range(len(entry.raw)):
        with pytest.raises(IntegrityError):
            entry_format.parse(entry.raw[:length])
    with pytest.raises(MalformedData):
        entry_format.parse(entry.raw + b"\x00")


def test_ciphertext_moved_into_another_entry_does_not_open() -> None:
    """Borg's moved-file case: a valid ciphertext under another valid, signed header."""
    first, key = make()
    second, _ = make(seq=2, prev=first.id, record=first.header.record)
    header_end = entry_format.PREFIX_BYTES + struct.unpack(">I", second.raw[5:9])[0]
    signed = second.raw[:header_end] + struct.pack(">I", len(first.ciphertext)) + first.ciphertext
    forged = signed + SIGNER.sign(crypto.LABEL_ENTRY, signed)
    moved = entry_format.parse(forged)  # the signature is fine: the signer did sign it ...
    with pytest.raises(DecryptionFailed):
        moved.open(key)  # ... but the header is the AEAD's associated data


def test_wrong_key_and_broken_commitment_are_refused() -> None:
    entry, key = make()
    with pytest.raises(DecryptionFailed):
        entry.open(bytes(32))
    # An entry whose signed commitment does not match the body it decrypts to.
    other_key = crypto.random_bytes(32)
    honest, _ = make(content_key=key)
    header = honest.header.to_json() | {"commit": crypto.commitment(other_key, BODY).hex()}
    header_bytes = encoding.encode(header)
    prefix = entry_format.MAGIC + b"\x01" + struct.pack(">I", len(header_bytes)) + header_bytes
    nonce = bytes.fromhex(header["nonce"])
    cipher = crypto.aead_encrypt(key, nonce, BODY, crypto.labelled(crypto.LABEL_ENTRY, prefix))
    signed = prefix + struct.pack(">I", len(cipher)) + cipher
    lying = entry_format.parse(signed + SIGNER.sign(crypto.LABEL_ENTRY, signed))
    with pytest.raises(DecryptionFailed, match="commitment"):
        lying.open(key)


def test_signature_by_another_key_is_refused() -> None:
    entry, _ = make()
    signed = entry.raw[: -crypto.SIGNATURE_BYTES]
    impostor = crypto.SigningPair.generate()
    with pytest.raises(SignatureInvalid):
        entry_format.parse(signed + impostor.sign(crypto.LABEL_ENTRY, signed))


def test_signature_for_another_purpose_is_refused() -> None:
    entry, _ = make()
    signed = entry.raw[: -crypto.SIGNATURE_BYTES]
    with pytest.raises(SignatureInvalid):
        entry_format.parse(signed + SIGNER.sign(b"fieldsync/batch/v1", signed))


def _resigned(header: dict[str, object], version: int = 1) -> bytes:
    header_bytes = encoding.encode(header)
    prefix = entry_format.MAGIC + bytes([version]) + struct.pack(">I", len(header_bytes))
    signed = prefix + header_bytes + struct.pack(">I", 16) + bytes(16)
    return signed + SIGNER.sign(crypto.LABEL_ENTRY, signed)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seq": 0}, "seq"),
        ({"seq": 2}, "prev"),  # seq 2 without prev
        ({"prev": "00" * 32}, "prev"),  # seq 1 with prev
        ({"record": "not-a-uuid"}, "record"),
        ({"parents": ["bb" * 32, "aa" * 32]}, "parents"),  # unsorted
        ({"nonce": "00"}, "nonce"),
        ({"hlc": [1.5, 0]}, ""),
        ({"extra": 1}, "fields"),
    ],
)
def test_malformed_headers_are_refused_even_when_signed(
    change: dict[str, object], message: str
) -> None:
    entry, _ = make()
    header = entry.header.to_json() | change
    try:
        raw = _resigned(header)
    except ValueError:
        return  # not even encodable (a float): can never be produced
    with pytest.raises(MalformedData, match=message):
        entry_format.parse(raw)


def test_newer_format_version_is_named() -> None:
    entry, _ = make()
    with pytest.raises(MalformedData, match="version 2 is not supported"):
        entry_format.parse(_resigned(entry.header.to_json(), version=2))


def test_oversized_entry_is_refused_before_parsing() -> None:
    with pytest.raises(MalformedData, match="too large"):
        entry_format.parse(b"FSEN" + bytes(entry_format.MAX_ENTRY))
