"""An impostor server, or a broken proxy, that answers with more than any answer of the
protocol: the device stops reading at a bound instead of holding it all in memory."""

from __future__ import annotations

import gzip
import socket
import threading
import tracemalloc
from collections.abc import Iterator

import pytest

from fieldsync.core import crypto
from fieldsync.errors import ServerError
from fieldsync.transport.client import MAX_ANSWER_BYTES, SyncClient

PIECE = b" " * (1024 * 1024)


def _serve(head: bytes, pieces: Iterator[bytes]) -> tuple[str, threading.Thread]:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def answer() -> None:
        with listener:
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)
                try:
                    connection.sendall(head)
                    for piece in pieces:
                        connection.sendall(piece)
                except OSError:
                    pass  # the client stopped reading, as it should

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{port}", thread


def _endless_json() -> Iterator[bytes]:
    yield b'{"padding": "'
    for _ in range(3 * MAX_ANSWER_BYTES // len(PIECE)):
        yield PIECE


@pytest.mark.slow
def test_an_endless_answer_is_cut_at_the_bound_not_read_into_memory() -> None:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n"
    url, thread = _serve(head, _endless_json())
    tracemalloc.start()
    try:
        with SyncClient(url, attempts=1) as client, pytest.raises(ServerError) as caught:
            client.info()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    thread.join(10)
    assert f"more than {MAX_ANSWER_BYTES} bytes" in caught.value.message
    assert peak < 3 * MAX_ANSWER_BYTES


def test_a_compressed_answer_counts_at_its_real_size() -> None:
    bomb = gzip.compress(b'{"padding": "' + b" " * (MAX_ANSWER_BYTES + 1) + b'"}', 9)
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\n"
        b"content-length: " + str(len(bomb)).encode() + b"\r\nconnection: close\r\n\r\n"
    )
    url, thread = _serve(head, iter([bomb]))
    with SyncClient(url, attempts=1) as client, pytest.raises(ServerError) as caught:
        client.info()
    thread.join(10)
    assert "more than" in caught.value.message


def test_an_answer_within_the_bound_reads_as_before() -> None:
    body = gzip.compress(b'{"server_key": "ab"}')
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n"
    )
    url, thread = _serve(head, iter([body]))
    with SyncClient(url, attempts=1) as client:
        assert client.info().server_key == "ab"
    thread.join(10)


def test_an_error_answer_to_a_blob_download_is_cut_at_the_bound() -> None:
    bound = 64 * 1024
    bomb = gzip.compress(b'{"error": "' + b" " * (16 * bound) + b'"}', 9)
    head = (
        b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\n"
        b"content-encoding: gzip\r\ncontent-length: " + str(len(bomb)).encode() + b"\r\n"
        b"connection: close\r\n\r\n"
    )
    url, thread = _serve(head, iter([bomb]))
    signer = crypto.SigningPair.generate()
    with (
        SyncClient(url, signer=signer, attempts=1, max_answer=bound) as client,
        pytest.raises(ServerError) as caught,
    ):
        client.blob_content("ab" * 32, lambda piece: None)
    thread.join(10)
    assert f"more than {bound} bytes" in caught.value.message


@pytest.mark.parametrize("status", [b"200 OK", b"500 Internal Server Error"])
def test_an_answer_nested_past_reason_is_refused_in_words(status: bytes) -> None:
    """Small, but nested deeper than the decoder follows: it was a RecursionError, shown as an
    internal error, for an answer and for an error answer alike."""
    body = b"[" * 200_000 + b"]" * 200_000
    head = (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n"
    )
    url, thread = _serve(head, iter([body]))
    with SyncClient(url, attempts=1) as client, pytest.raises(ServerError) as caught:
        client.info()
    thread.join(10)
    assert caught.value.message.startswith(f"the server at {url}")
