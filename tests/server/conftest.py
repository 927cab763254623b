from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from fieldsync.core import crypto, enrolment, invite
from fieldsync.core.org import OrgKeys
from fieldsync.server import data
from fieldsync.server.app import create_app

NOW = 1_800_000_000_000


@dataclass
class Org:
    admin: crypto.SigningPair
    read: crypto.BoxPair

    @property
    def keys(self) -> OrgKeys:
        return OrgKeys(self.admin.public.hex(), self.read.public.hex())


@pytest.fixture
def org() -> Org:
    return Org(crypto.SigningPair.generate(), crypto.BoxPair.generate())


@pytest.fixture
def server(org: Org, tmp_path: Path) -> data.ServerData:
    return data.init(tmp_path / "server", org.keys.encode())


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


@pytest.fixture
def client(server: data.ServerData) -> Iterator[httpx.Client]:
    url, running, thread = serve(create_app(server, now_ms=lambda: NOW))
    with httpx.Client(base_url=url, timeout=10) as http:
        yield http
    running.should_exit = True
    thread.join(timeout=10)


def make_invite(org: Org, server: data.ServerData, **overrides: object) -> str:
    args: dict[str, object] = dict(
        name="laptop 3",
        server="http://testserver",
        server_key=server.receipt_key.public,
        org_read_key=org.read.public,
        expires_ms=NOW + 86_400_000,
    )
    args.update(overrides)
    return invite.issue(org.admin, **args)  # type: ignore[arg-type]


def enrol_body(
    text: str, device: crypto.SigningPair | None = None, box: crypto.BoxPair | None = None
) -> bytes:
    device = device or crypto.SigningPair.generate()
    box = box or crypto.BoxPair.generate()
    token = invite.read(text, now_ms=NOW).token
    return enrolment.request(device, box.public, text, token).encode()
