"""Every decoder that reads bytes from outside, each wrapped as ``bytes -> None`` that raises
``FieldsyncError`` when it refuses its input, with one valid sample each, made from fixed keys
so that the committed corpus (tests/corpus/, written by scripts/make_corpus.py) replays the same
way on every machine. Used by the hypothesis fuzzers (tests/core/test_fuzz.py) and the corpus
replay (tests/core/test_corpus.py).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

from fieldsync.core import batch as batch_format
from fieldsync.core import blob, carry, crypto, encoding, enrolment, httpsig, invite, receipt, vault
from fieldsync.core import entry as entry_format
from fieldsync.core.body import Body
from fieldsync.core.clock import HLC
from fieldsync.errors import IntegrityError

SIGNER = crypto.SigningPair(bytes(range(32)))
SERVER = crypto.SigningPair(bytes([9]) * 32)
READER = crypto.BoxPair(bytes([7]) * 32)
CONTENT_KEY = bytes([3]) * 32
BLOB_KEY = bytes([5]) * 32
RECORD = "01890a5d-ac96-774b-bcce-b302099a8057"
NOW_S = 1_800_000_000
BODY = Body("incident@1", {"narrative": "نص \x1b[31m", "casualties": 3}).encode()
ENTRY, _ = entry_format.seal(
    SIGNER,
    seq=1,
    prev=None,
    record=RECORD,
    parents=[],
    hlc=HLC(1_700_000_000_000, 0),
    body=BODY,
    content_key=CONTENT_KEY,
    nonce=bytes(24),
)
BLOB_PLAIN = bytes(range(256)) * 4


def _blob() -> bytes:
    """A blob file; secretstream's header is random, so this sample differs per run (the
    committed corpus keeps the one it was made with, with its key)."""
    return b"".join(blob.encrypt(io.BytesIO(BLOB_PLAIN), blob.Sealed(key=BLOB_KEY)))


BATCH = batch_format.build(SIGNER, [ENTRY], [crypto.wrap_key(READER.public, CONTENT_KEY)]).raw
RECEIPT = receipt.sign(
    SERVER,
    device=SIGNER.public.hex(),
    last_seq=1,
    head=ENTRY.id,
    batch=batch_format.batch_id(BATCH),
    time_ms=NOW_S * 1000,
)
INVITE = invite.issue(
    SERVER,
    name="laptop 3",
    server="https://s.example",
    server_key=SERVER.public,
    org_read_key=READER.public,
    expires_ms=10**13,
)
ENROLMENT = enrolment.request(SIGNER, READER.public, INVITE, invite.read(INVITE, now_ms=0).token)
REQUEST_PATH = "/v1/blobs/" + "ab" * 32 + "/0"
REQUEST_HEADERS = httpsig.sign(SIGNER, "PATCH", REQUEST_PATH, b"body", NOW_S)


def _headers(data: bytes) -> dict[str, str]:
    """Bytes as the three signature headers, one per line (how the corpus stores them)."""
    lines = data.decode("latin-1").split("\n")
    names = ("content-digest", "signature-input", "signature")
    return dict(zip(names, lines, strict=False))


def decode_entry(data: bytes) -> None:
    opened = entry_format.parse(data).open(CONTENT_KEY)
    if data == ENTRY.raw:
        assert opened == BODY


def decode_body(data: bytes) -> None:
    Body.decode(data)


def decode_canonical(data: bytes) -> None:
    value = encoding.decode(data)
    assert encoding.encode(value) == data  # one encoding per value


def decode_blob(data: bytes) -> None:
    for _ in blob.decrypt(BLOB_KEY, io.BytesIO(data), what="the corpus blob"):
        pass


def decode_vault_header(data: bytes) -> None:
    vault.read_params(data)  # everything before the (slow) key derivation


def decode_batch(data: bytes) -> None:
    batch_format.parse(data)


def decode_receipt(data: bytes) -> None:
    got = receipt.verify(data, pinned_server_key=SERVER.public)
    assert got.head == ENTRY.id  # an accepted variant says exactly what the server signed


def decode_invite(data: bytes) -> None:
    invite.read(data.decode("utf-8", "replace"), now_ms=0)


def decode_enrolment(data: bytes) -> None:
    enrolment.parse(data)


def decode_carry(data: bytes) -> None:
    carry.index(io.BytesIO(data))


def decode_signed_request(data: bytes) -> None:
    def admit(keyid: str) -> None:
        if keyid != SIGNER.public.hex():
            raise IntegrityError("unknown key")

    httpsig.verify("PATCH", REQUEST_PATH, _headers(data), b"body", now=NOW_S, admit=admit)


def _vault() -> bytes:
    return vault.create("pass phrase", vault.Secrets({"k": bytes(32)}))[0]


def _carry() -> bytes:
    return carry.write_start() + carry.header(carry.BATCH, len(BATCH)) + BATCH + carry.write_end()


def _request_headers() -> bytes:
    return "\n".join(REQUEST_HEADERS.values()).encode("latin-1")


@dataclass(frozen=True)
class Decoder:
    name: str
    decode: Callable[[bytes], None]
    sample: Callable[[], bytes]


DECODERS = (
    Decoder("entry", decode_entry, lambda: ENTRY.raw),
    Decoder("body", decode_body, lambda: BODY),
    Decoder("canonical", decode_canonical, lambda: encoding.encode({"a": [1, "b", None]})),
    Decoder("blob", decode_blob, _blob),
    Decoder("vault-header", decode_vault_header, _vault),
    Decoder("batch", decode_batch, lambda: BATCH),
    Decoder("receipt", decode_receipt, lambda: RECEIPT),
    Decoder("invite", decode_invite, lambda: INVITE.encode()),
    Decoder("enrolment", decode_enrolment, lambda: ENROLMENT.encode()),
    Decoder("carry", decode_carry, _carry),
    Decoder("signed-request", decode_signed_request, _request_headers),
)
BY_NAME = {decoder.name: decoder for decoder in DECODERS}
