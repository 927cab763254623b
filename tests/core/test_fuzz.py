"""Every decoder, fed arbitrary or mutated bytes, answers with a result or a named error.

Anything else (an IndexError, a UnicodeError, a RecursionError, a crash in libsodium's
bindings) would reach a person as "internal error", or worse, be mistaken for valid data. The
decoders and their samples are in tests/decoders.py; tests/core/test_corpus.py replays the
committed corpus of past inputs through the same decoders.
"""

from __future__ import annotations

import os
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fieldsync.core import crypto, encoding, enrolment
from fieldsync.core.body import Body
from fieldsync.errors import FieldsyncError
from tests.decoders import BLOB_PLAIN, BODY, BY_NAME, ENTRY, EPOCHS, SERVER

EXAMPLES = int(os.environ.get("FIELDSYNC_FUZZ_EXAMPLES", "300"))  # scripts/soak: many more
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SAMPLES = {name: decoder.sample() for name, decoder in BY_NAME.items()}
DECODED: dict[str, Any] = {name: BY_NAME[name].decode(sample) for name, sample in SAMPLES.items()}


def only_the_original(name: str, variant: bytes, decoded: Any) -> None:
    """Signed or authenticated bytes: of all the variants, only the untouched input passes."""
    assert variant == SAMPLES[name]


def what_was_signed(name: str, variant: bytes, decoded: Any) -> None:
    """Signed, but more than one spelling may pass (a receipt's hex in either case, an invite's
    surrounding blanks): an accepted variant says exactly what its signer said."""
    assert decoded == DECODED[name]


def one_spelling(name: str, variant: bytes, decoded: Any) -> None:
    """Canonical JSON, and the record body inside an entry: one encoding per value, so a value
    accepted is written back to the very bytes it was read from, nothing dropped or added."""
    written = decoded.encode() if isinstance(decoded, Body) else encoding.encode(decoded)
    assert written == variant


def within_the_cap(name: str, variant: bytes, decoded: Any) -> None:
    """A vault's KDF parameters: whatever passes asks for no more Argon2id work or memory than
    the cap (a hostile vault cannot make unlocking take hours), with a salt of full length."""
    params = DECODED[name]
    assert crypto.KDF_OPSLIMIT_RANGE[0] <= decoded.opslimit <= crypto.KDF_OPSLIMIT_RANGE[1]
    assert crypto.KDF_MEMLIMIT_RANGE[0] <= decoded.memlimit <= crypto.KDF_MEMLIMIT_RANGE[1]
    assert len(decoded.salt) == len(params.salt)


def same_items(name: str, variant: bytes, decoded: Any) -> None:
    """A carry file is not signed itself (the batches in it are): an accepted variant holds the
    same items at the same places, so damage can only be inside an item, where its own format
    refuses it."""
    assert decoded == DECODED[name] and len(variant) == len(SAMPLES[name])


def keys_spelled_once(name: str, variant: bytes, decoded: Any) -> None:
    """An enrolment request is checked against its invite by the server, not alone: whatever
    parses names each key in exactly one spelling (lowercase hex of 32 bytes), so one key can
    never be enrolled twice."""
    request = enrolment.parse(variant)
    for key in (request.device_key, request.box_key):
        assert bytes.fromhex(key).hex() == key and len(key) == 64


def only_its_keys(name: str, variant: bytes, decoded: Any) -> None:
    """The epoch key file is sealed slot by slot: whatever a damaged file gives is a slot's own
    epoch and key, in its own place, never another key or number."""
    for index, slot in enumerate(decoded):
        assert slot is None or slot == EPOCHS[index]


PROPERTIES = {
    "entry": only_the_original,
    "blob": only_the_original,
    "batch": only_the_original,
    "receipt": what_was_signed,
    "invite": what_was_signed,
    "signed-request": what_was_signed,
    "canonical": one_spelling,
    "body": one_spelling,
    "vault-header": within_the_cap,
    "carry": same_items,
    "enrolment": keys_spelled_once,
    "epochs": only_its_keys,
}


def test_every_format_has_a_property() -> None:
    assert set(PROPERTIES) == set(BY_NAME)


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_the_valid_sample_is_accepted_and_reads_back(name: str) -> None:
    decoded = DECODED[name]
    PROPERTIES[name](name, SAMPLES[name], decoded)
    if name == "entry":
        assert decoded == BODY
    elif name == "blob":
        assert decoded == BLOB_PLAIN
    elif name == "receipt":
        assert decoded.head == ENTRY.id and decoded.server == SERVER.public.hex()


def mutations(original: bytes) -> st.SearchStrategy[bytes]:
    """Flip, insert, delete, truncate, extend and renumber, anywhere in a valid input."""
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
    extend = st.binary(min_size=1, max_size=8).map(lambda tail: original + tail)
    kinds = [flip, cut, insert, delete, extend, st.binary(max_size=size + 10)]
    numbers = [m.span() for m in re.finditer(rb"\d+", original)]
    if numbers:  # a number of a text format (a count, a limit, a time) set to another
        kinds.append(
            st.tuples(st.sampled_from(numbers), st.integers(0, 2**53)).map(
                lambda t: original[: t[0][0]] + str(t[1]).encode() + original[t[0][1] :]
            )
        )
    return st.one_of(kinds)


@pytest.mark.parametrize("name", sorted(BY_NAME))
@FUZZ
@given(data=st.data())
def test_a_mutated_input_is_refused_with_a_named_error_or_keeps_its_meaning(
    name: str, data: st.DataObject
) -> None:
    sample = SAMPLES[name]
    given_bytes = data.draw(mutations(sample), label="input")
    try:
        decoded = BY_NAME[name].decode(given_bytes)
    except FieldsyncError:
        return
    PROPERTIES[name](name, given_bytes, decoded)


@FUZZ
@given(st.one_of(st.binary(max_size=200), st.text(max_size=100).map(str.encode)))
def test_canonical_decode_of_anything(given_bytes: bytes) -> None:
    try:
        decoded = BY_NAME["canonical"].decode(given_bytes)
    except FieldsyncError:
        return
    one_spelling("canonical", given_bytes, decoded)
