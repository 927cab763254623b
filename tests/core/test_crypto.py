"""The primitives that open what came from outside (a disk, a server, a file) refuse every
length they cannot hold with a named error, never a crash: a store or a file cut short must say
what is wrong, not end in an internal error."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest

from fieldsync.core import crypto
from fieldsync.errors import DecryptionFailed, FieldsyncError

KEY = bytes(range(32))
NONCE = bytes(crypto.NONCE_BYTES)
SEALED = crypto.aead_encrypt(KEY, NONCE, b"testimony", b"label")
BOX = crypto.BoxPair(bytes([7]) * 32)
WRAPPED = crypto.wrap_key(BOX.public, KEY)
STREAM = b"".join(crypto.stream_encrypt(KEY, io.BytesIO(b"evidence")))


def _aead(ciphertext: bytes) -> object:
    return crypto.aead_decrypt(KEY, NONCE, ciphertext, b"label", what="a test value")


def _unwrap(wrapped: bytes) -> object:
    return BOX.unwrap(wrapped, what="a test version")


def _stream(data: bytes) -> object:
    return b"".join(crypto.stream_decrypt(KEY, io.BytesIO(data), what="a test blob"))


OPENERS: dict[str, tuple[Callable[[bytes], object], bytes]] = {
    "aead": (_aead, SEALED),
    "sealed box": (_unwrap, WRAPPED),
    "secretstream": (_stream, STREAM),
}


@pytest.mark.parametrize("name", sorted(OPENERS))
def test_the_whole_input_opens(name: str) -> None:
    opener, whole = OPENERS[name]
    opener(whole)


@pytest.mark.parametrize("name", sorted(OPENERS))
def test_every_cut_of_the_input_is_refused_by_name(name: str) -> None:
    opener, whole = OPENERS[name]
    for length in range(len(whole)):
        with pytest.raises(FieldsyncError):
            opener(whole[:length])


def test_a_ciphertext_shorter_than_its_tag_is_refused_before_libsodium_sees_it() -> None:
    # libsodium's binding gave ValueError("negative array length"), an internal error
    with pytest.raises(DecryptionFailed, match="a test value cannot be decrypted: it is cut short"):
        _aead(SEALED[: crypto.AEAD_TAG_BYTES - 1])
