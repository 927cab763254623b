from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from fieldsync.core import crypto, enrolment, invite
from fieldsync.core.org import OrgKeys
from fieldsync.server import data
from fieldsync.server.app import create_app
from tests.live import serve

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
