"""Every decoder, fed arbitrary or mutated bytes, answers with a result or a named error.

Anything else (an IndexError, a UnicodeError, a RecursionError, a crash in libsodium's
bindings) would reach a person as "internal error", or worse, be mistaken for valid data. The
decoders and their samples are in tests/decoders.py; tests/core/test_corpus.py replays the
committed corpus of past inputs through the same decoders.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fieldsync.errors import FieldsyncError
from tests.decoders import BY_NAME

EXAMPLES = int(os.environ.get("FIELDSYNC_FUZZ_EXAMPLES", "300"))  # scripts/soak: many more
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SAMPLES = {name: decoder.sample() for name, decoder in BY_NAME.items()}
# Signed or authenticated formats: of all the variants, only the untouched input may pass.
ONLY_THE_ORIGINAL = {"entry", "blob", "batch"}


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


@pytest.mark.parametrize("name", sorted(BY_NAME))
@FUZZ
@given(data=st.data())
def test_a_decoder_accepts_or_refuses_with_a_named_error(name: str, data: st.DataObject) -> None:
    sample = SAMPLES[name]
    given_bytes = data.draw(mutations(sample), label="input")
    try:
        BY_NAME[name].decode(given_bytes)
    except FieldsyncError:
        return
    if name in ONLY_THE_ORIGINAL:
        assert given_bytes == sample


@FUZZ
@given(st.one_of(st.binary(max_size=200), st.text(max_size=100).map(str.encode)))
def test_canonical_decode_of_anything(given_bytes: bytes) -> None:
    try:
        BY_NAME["canonical"].decode(given_bytes)
    except FieldsyncError:
        return
