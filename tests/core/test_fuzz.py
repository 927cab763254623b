"""Every decoder, fed arbitrary or mutated bytes, answers with a result or a named error.

Anything else (an IndexError, a UnicodeError, a RecursionError, a crash in libsodium's
bindings) would reach a person as "internal error", or worse, be mistaken for valid data.
"""

from __future__ import annotations

import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fieldsync.core import batch as batch_format
from fieldsync.core import blob, crypto, encoding, invite, receipt, vault
from fieldsync.core import entry as entry_format
from fieldsync.core.body import Body
from fieldsync.core.clock import HLC
from fieldsync.core.ids import new_record_id
from fieldsync.errors import FieldsyncError, IntegrityError

SIGNER = crypto.SigningPair(bytes(32))
BODY = Body("incident@1", {"narrative": "نص"}).encode()
ENTRY, KEY = entry_format.seal(
    SIGNER, seq=1, prev=None, record=new_record_id(), parents=[], hlc=HLC(1, 0), body=BODY
)
SEALED_BLOB_INFO = blob.Sealed(key=blob.new_key())
BLOB = b"".join(blob.encrypt(io.BytesIO(b"x" * 70_000), SEALED_BLOB_INFO))
VAULT, _ = vault.create("a passphrase", vault.Secrets({"device_sign": bytes(32)}))

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def mutations(original: bytes) -> st.SearchStrategy[bytes]:
    """Flip, insert, delete, truncate and splice, anywhere in a valid input."""
    size = len(original)
    flip = st.tuples(st.integers(0, size - 1), st.integers(1, 255)).map(
        lambda t: original[: t[0]] + bytes([original[t[0]] ^ t[1]]) + original[t[0] + 1 :]
    )
    cut = st.integers(0, size - 1).map(lambda n: original[:n])
    insert = st.tuples(st.integers(0, size), st.binary(min_size=1, max_size=8)).map(
        lambda t: original[: t[0]] + t[1] + original[t[0] :]
    )
    delete = st.tuples(st.integers(0, size - 1), st.integers(1, 16)).map(
        lambda t: original[: t[0]] + original[t[0] + t[1] :]
    )
    return st.one_of(flip, cut, insert, delete, st.binary(max_size=size + 10))


@FUZZ
@given(mutations(ENTRY.raw))
def test_entry_parse_and_open(data: bytes) -> None:
    try:
        opened = entry_format.parse(data).open(KEY)
    except IntegrityError:
        return
    assert data == ENTRY.raw  # only the untouched entry may open ...
    assert opened == BODY  # ... and then to exactly its body


@FUZZ
@given(st.one_of(mutations(BODY), st.binary(max_size=300)))
def test_body_decode(data: bytes) -> None:
    try:
        Body.decode(data)
    except IntegrityError:
        return


@FUZZ
@given(st.one_of(st.binary(max_size=200), st.text(max_size=100).map(str.encode)))
def test_canonical_decode(data: bytes) -> None:
    try:
        value = encoding.decode(data)
    except IntegrityError:
        return
    assert encoding.encode(value) == data


@FUZZ
@given(mutations(BLOB))
def test_blob_decrypt(data: bytes) -> None:
    try:
        plain = b"".join(blob.decrypt(SEALED_BLOB_INFO.key, io.BytesIO(data), what="fuzz"))
    except IntegrityError:
        return
    assert data == BLOB
    assert plain == b"x" * 70_000


@FUZZ
@given(mutations(VAULT))
def test_vault_header(data: bytes) -> None:
    try:
        vault.read_params(data)  # everything before the (slow) key derivation
    except FieldsyncError:
        return


BATCH = batch_format.build(
    SIGNER, [ENTRY], [crypto.wrap_key(crypto.BoxPair.generate().public, KEY)]
).raw
SERVER = crypto.SigningPair(bytes([9]) * 32)
RECEIPT = receipt.sign(
    SERVER,
    device=SIGNER.public.hex(),
    last_seq=1,
    head=ENTRY.id,
    batch=batch_format.batch_id(BATCH),
    time_ms=5,
)
INVITE = invite.issue(
    SIGNER,
    name="n",
    server="https://s.example",
    server_key=SERVER.public,
    org_read_key=bytes(32),
    expires_ms=10**13,
)


@FUZZ
@given(mutations(BATCH))
def test_batch_parse(data: bytes) -> None:
    try:
        parsed = batch_format.parse(data)
    except IntegrityError:
        return
    assert data == BATCH
    assert parsed.entries[0].raw == ENTRY.raw


@FUZZ
@given(mutations(RECEIPT))
def test_receipt_verify(data: bytes) -> None:
    try:
        got = receipt.verify(data, pinned_server_key=SERVER.public)
    except IntegrityError:
        return
    assert got.head == ENTRY.id  # any accepted variant says exactly what the server signed


@FUZZ
@given(mutations(INVITE.encode()))
def test_invite_read(data: bytes) -> None:
    try:
        invite.read(data.decode("utf-8", "replace"), now_ms=0)
    except FieldsyncError:
        return
