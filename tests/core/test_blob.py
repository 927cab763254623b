from __future__ import annotations

import hashlib
import io
import tracemalloc

import pytest

from fieldsync.core import blob, crypto
from fieldsync.errors import IntegrityError, MalformedData
from tests.conftest import Endless

CHUNK = crypto.STREAM_CHUNK


def seal(data: bytes) -> tuple[bytes, blob.Sealed]:
    sealed = blob.Sealed(key=blob.new_key())
    return b"".join(blob.encrypt(io.BytesIO(data), sealed)), sealed


def open_(stored: bytes, key: bytes) -> bytes:
    return b"".join(blob.decrypt(key, io.BytesIO(stored), what="test blob"))


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 7])
def test_round_trip_and_measurements(size: int) -> None:
    data = crypto.random_bytes(size)
    stored, sealed = seal(data)
    assert open_(stored, sealed.key) == data
    assert sealed.size == size
    assert sealed.sha256 == hashlib.sha256(data).hexdigest()
    assert sealed.stored_size == len(stored)
    assert blob.sealed_size(size) == len(stored)
    assert sealed.blob_id == blob.blob_id_of(io.BytesIO(stored))


def test_cut_at_any_chunk_boundary_is_detected() -> None:
    stored, sealed = seal(crypto.random_bytes(3 * CHUNK + 10))
    step = CHUNK + crypto.STREAM_ABYTES
    start = len(blob.PREFIX) + crypto.STREAM_HEADER_BYTES
    for cut in (start, start + step, start + 2 * step, start + 3 * step, len(stored) - 1):
        with pytest.raises(IntegrityError):
            open_(stored[:cut], sealed.key)


def test_reordered_chunks_flipped_bits_and_extra_bytes_are_detected() -> None:
    stored, sealed = seal(crypto.random_bytes(3 * CHUNK))
    start = len(blob.PREFIX) + crypto.STREAM_HEADER_BYTES
    step = CHUNK + crypto.STREAM_ABYTES
    first, second = stored[start : start + step], stored[start + step : start + 2 * step]
    swapped = stored[:start] + second + first + stored[start + 2 * step :]
    for damaged in (swapped, stored + b"\x00", stored[:100] + b"\x01" + stored[101:]):
        with pytest.raises(IntegrityError):
            open_(damaged, sealed.key)
    with pytest.raises(IntegrityError):
        open_(stored, blob.new_key())


def test_foreign_files_are_named() -> None:
    with pytest.raises(MalformedData, match="not a fieldsync blob"):
        open_(b"PK\x03\x04" + bytes(100), blob.new_key())


def test_memory_does_not_grow_with_the_size_of_the_file() -> None:
    def peak_for(size: int) -> int:
        tracemalloc.start()
        sealed = blob.Sealed(key=blob.new_key())
        for _ in blob.encrypt(Endless(size), sealed):  # type: ignore[arg-type]
            pass
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert sealed.size == size
        return peak

    small, large = peak_for(4 * CHUNK), peak_for(400 * CHUNK)  # 256 KiB vs 25 MiB
    assert large < small + 512 * 1024
