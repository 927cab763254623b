"""Real servers for tests and benchmarks that speak HTTP: in a thread (the helper ``fieldsync
demo`` uses) or as a separate ``fieldsync server run`` process that can be killed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from fieldsync.core import crypto, invite
from fieldsync.core.org import OrgKeys
from fieldsync.server import data
from fieldsync.server.app import create_app
from fieldsync.server.embedded import free_port, running
from fieldsync.server.holdings import ServerHoldings
from fieldsync.services import admin
from fieldsync.store.store import Store
from tests.conftest import PASSPHRASE

__all__ = ["ServerProcess", "free_port", "running"]


def limited(file_size_limit: int | None = None) -> list[str]:
    """The command that runs fieldsync, with no file it writes allowed to grow past
    ``file_size_limit`` bytes (RLIMIT_FSIZE): a write past it fails with EFBIG, the way a write
    to a full disk fails, but for this process only and with no privileges needed."""
    if file_size_limit is None:
        return [sys.executable, "-m", "fieldsync"]
    code = (
        "import resource, runpy, sys; "
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({file_size_limit}, {file_size_limit})); "
        "sys.argv[0] = 'fieldsync'; runpy.run_module('fieldsync', run_name='__main__')"
    )
    return [sys.executable, "-c", code]


class ServerProcess:
    """``fieldsync server run`` on a free loopback port; ``start`` again after ``kill``."""

    def __init__(
        self,
        folder: Path,
        *,
        database_url: str | None = None,
        workers: int = 1,
        log: Path | None = None,
    ) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.options = ["--database-url", database_url] if database_url else []
        self.options += ["--workers", str(workers)]
        self.log = log  # its stderr (the JSON log lines), appended to
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, file_size_limit: int | None = None) -> None:
        """Start it; with ``file_size_limit``, no file it writes may grow past that many bytes
        (RLIMIT_FSIZE: a write past it fails with EFBIG, as on a disk that is full)."""
        command = [*limited(file_size_limit), "server", "run", "--data", str(self.folder)]
        stderr = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port), *self.options],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        finally:
            if self.log:
                stderr.close()  # type: ignore[union-attr]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError("the server did not start")

    def kill(self) -> None:
        """``kill -9``: no chance to finish anything."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


def audit_clean(analyst: Store, server: data.ServerData) -> None:
    """``admin verify`` over everything the server holds finds nothing wrong."""
    holdings = ServerHoldings(server)
    try:
        report = admin.verify(analyst, holdings)
    finally:
        holdings.close()
    assert report.ok, report.to_json()


class CliDevice:
    """A documenter's store driven as real ``fieldsync`` processes (``run`` may put one under
    a file size limit, as ``limited`` does)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = os.environ | {"FIELDSYNC_HOME": str(home), "FIELDSYNC_PASSPHRASE": PASSPHRASE}

    def run(self, *args: str, limit: int | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*limited(limit), *args], env=self.env, capture_output=True, text=True, timeout=180
        )

    def ok(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout


@contextlib.contextmanager
def attackers_invite(tmp_path: Path) -> Iterator[tuple[str, crypto.BoxPair, Any]]:
    """A self-signed invite from an attacker's own 'organisation', for a real server of its
    own (it verifies, as any self-signed invite does): the invite, the attacker's org read key
    and that server's database."""
    admin_key, org_read = crypto.SigningPair.generate(), crypto.BoxPair.generate()
    keys = OrgKeys(admin_key=admin_key.public.hex(), org_read_key=org_read.public.hex())
    server = data.init(tmp_path / "attacker", keys.encode())
    app = create_app(server)
    with running(app) as url:
        text = invite.issue(
            admin_key,
            name="laptop 7",
            server=url,
            server_key=server.receipt_key.public,
            org_read_key=org_read.public,
            expires_ms=int(time.time() * 1000) + 86_400_000,  # a day
        )
        yield text, org_read, app.state.engine
