"""Every decoder that reads bytes from outside, each wrapped as ``bytes -> what it decoded``
that raises ``FieldsyncError`` when it refuses its input, with one valid sample each, made from fixed keys
so that the committed corpus (tests/corpus/, written by scripts/make_corpus.py) replays the same
way on every machine. Used by the hypothesis fuzzers (tests/core/test_fuzz.py) and the corpus
replay (tests/core/test_corpus.py).
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fieldsync.core import batch as batch_format
from fieldsync.core import blob, carry, crypto, encoding, enrolment, httpsig, invite, receipt, vault
from fieldsync.core import entry as entry_format
from fieldsync.core.body import Body
from fieldsync.core.clock import HLC
from fieldsync.errors import IntegrityError, StoreCorrupted
from fieldsync.store import epochs
from fieldsync.store.epochs import Epoch, EpochFile

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
ENROLMENT = enrolment.request(
    SIGNER, READER, INVITE, invite.read(INVITE, now_ms=0).token, server_key=SERVER.public
)
REQUEST_PATH = "/v1/blobs/" + "ab" * 32 + "/0"
REQUEST_HEADERS = httpsig.sign(SIGNER, "PATCH", REQUEST_PATH, b"body", NOW_S)


def _headers(data: bytes) -> dict[str, str]:
    """Bytes as the three signature headers, one per line (how the corpus stores them)."""
    lines = data.decode("latin-1").split("\n")
    names = ("content-digest", "signature-input", "signature")
    return dict(zip(names, lines, strict=False))


def decode_entry(data: bytes) -> bytes:
    return entry_format.parse(data).open(CONTENT_KEY)


def decode_body(data: bytes) -> Body:
    return Body.decode(data)


def decode_canonical(data: bytes) -> object:
    return encoding.decode(data)


def decode_blob(data: bytes) -> bytes:
    return b"".join(blob.decrypt(BLOB_KEY, io.BytesIO(data), what="the corpus blob"))


def decode_vault_header(data: bytes) -> vault.KdfParams:
    return vault.read_params(data)  # everything before the (slow) key derivation


def decode_batch(data: bytes) -> batch_format.Batch:
    return batch_format.parse(data)


def decode_receipt(data: bytes) -> receipt.Receipt:
    return receipt.verify(data, pinned_server_key=SERVER.public)


def decode_invite(data: bytes) -> invite.Invite:
    return invite.read(data.decode("utf-8", "replace"), now_ms=0)


def decode_enrolment(data: bytes) -> None:
    """As the server reads one (the request, its invite, and both proofs over the token, the
    box proof opened with the server's key); one from before the box proof as pull reads it."""
    request = enrolment.parse(data)
    token = invite.read(request.invite, now_ms=0).token
    enrolment.verify_proof(request, token)
    if request.box_proof is not None:
        enrolment.verify_box_proof(request, token, SERVER)


def decode_carry(data: bytes) -> list[carry.Item]:
    return carry.index(io.BytesIO(data))


def decode_signed_request(data: bytes) -> tuple[str, str]:
    """The signer and the Content-Digest it signed."""

    def admit(keyid: str) -> None:
        if keyid != SIGNER.public.hex():
            raise IntegrityError("unknown key")

    headers = _headers(data)
    signer = httpsig.verify("PATCH", REQUEST_PATH, headers, b"body", now=NOW_S, admit=admit)
    return signer, headers["content-digest"]


EPOCHS_VAULT_KEY = bytes([6]) * 32
EPOCHS = (Epoch(3, bytes([4]) * 32), None)  # as between wipes: one slot live, one empty
_EPOCHS_FOLDER = Path(tempfile.mkdtemp(prefix="fieldsync-fuzz-epochs-"))


def decode_epochs(data: bytes) -> list[Epoch | None]:
    """``HOME/epochs``, as the store reads it: each slot's epoch, or None where none opens."""
    path = _EPOCHS_FOLDER / "epochs"
    path.write_bytes(data)
    slots = EpochFile(path, EPOCHS_VAULT_KEY).read()
    if not any(slots):
        raise StoreCorrupted("no slot of the epoch key file opens")
    return slots


def _epochs() -> bytes:
    path = _EPOCHS_FOLDER / "sample"
    path.unlink(missing_ok=True)
    file = EpochFile(path, EPOCHS_VAULT_KEY)
    file.create(EPOCHS[0])
    return path.read_bytes()


def _vault() -> bytes:
    return vault.create("pass phrase", vault.Secrets({"k": bytes(32)}))[0]


def _carry() -> bytes:
    return carry.write_start() + carry.header(carry.BATCH, len(BATCH)) + BATCH + carry.write_end()


def _request_headers() -> bytes:
    return "\n".join(REQUEST_HEADERS.values()).encode("latin-1")


@dataclass(frozen=True)
class Decoder:
    name: str
    decode: Callable[[bytes], object]
    sample: Callable[[], bytes]
    # where in the sample a change means something, if not everywhere (the epoch file is
    # mostly random padding, which any change leaves as it was)
    focus: tuple[range, ...] = ()


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
    Decoder(
        "epochs",
        decode_epochs,
        _epochs,
        focus=(range(epochs.SLOT_BYTES), range(epochs.SLOT_STRIDE, epochs.FILE_BYTES)),
    ),
)
BY_NAME = {decoder.name: decoder for decoder in DECODERS}
