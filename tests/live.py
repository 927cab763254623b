"""A real uvicorn server in a thread, on a free loopback port, for tests that speak HTTP."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(app: FastAPI) -> tuple[str, uvicorn.Server, threading.Thread]:
    """A real uvicorn server for ``app`` on a free loopback port, in a thread."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not running.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    return f"http://127.0.0.1:{port}", running, thread


@contextmanager
def running(app: FastAPI) -> Iterator[str]:
    url, server, thread = serve(app)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
