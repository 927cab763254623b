"""kill -9 a real `fieldsync attach` and a real `fieldsync push` at moments in their work: the
store opens, `fieldsync check` passes, and the next push completes with the server's audit
clean (issue 6, the fault suite's client crashes; `test_kill_cli.py` does the same for import)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fieldsync.server import data
from fieldsync.server.app import create_app
from fieldsync.services import admin
from fieldsync.store.store import Store
from tests.conftest import example, fast_store
from tests.live import CliDevice, audit_clean, running

pytestmark = pytest.mark.slow

MB = 1024 * 1024
DAY = 86_400_000
KILLS = int(os.environ.get("FIELDSYNC_KILLS", "3"))  # scripts/soak: more
SEED = int(os.environ.get("FIELDSYNC_TEST_SEED", "0"))


class Device(CliDevice):
    """A documenter's store as real processes, which can be killed mid-command."""

    def kill_during(self, args: list[str], started: Callable[[], bool], rng: random.Random) -> bool:
        """Run ``fieldsync ARGS`` and kill -9 it a random moment after ``started()``; False if
        it finished first."""
        child = subprocess.Popen(
            [sys.executable, "-m", "fieldsync", *args],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while not started():
            if child.poll() is not None:
                return False
            assert time.monotonic() < deadline, "the command never got going"
            time.sleep(0.02)
        time.sleep(rng.uniform(0, 0.4))
        if child.poll() is not None:
            return False
        child.send_signal(signal.SIGKILL)
        child.wait()
        return True


@pytest.fixture
def world(store_home: Path, tmp_path: Path) -> Iterator[tuple[Device, Store, data.ServerData]]:
    with fast_store(tmp_path / "analyst", admin=True) as analyst:
        server = data.init(tmp_path / "server", admin.org_keys(analyst).encode())
        with running(create_app(server)) as url:
            text, shown = admin.make_invite(analyst, "laptop", url, valid_ms=DAY)
            device = Device(store_home)
            device.ok("enroll", text, "--expect-fingerprint", shown["organisation_fingerprint"])
            yield device, analyst, server


def recorded(device: Device, folder: Path) -> str:
    answers = folder / "incident.json"
    answers.write_text(json.dumps(example("incident")), encoding="utf-8")
    return str(
        json.loads(device.ok("new", "incident", "--from-file", str(answers), "--json"))["record"]
    )


def test_kill_9_during_attach_then_check_passes_and_push_completes(
    world: tuple[Device, Store, data.ServerData], tmp_path: Path
) -> None:
    device, analyst, server = world
    rng = random.Random(SEED + 61)
    record = recorded(device, tmp_path)
    video = tmp_path / "video.bin"
    video.write_bytes(os.urandom(48 * MB))
    staging = device.home / "blobs" / "tmp"

    def encrypting() -> bool:
        return any(p.stat().st_size > 2 * MB for p in staging.glob("*"))

    killed = sum(
        device.kill_during(["attach", record, str(video)], encrypting, rng) for _ in range(KILLS)
    )
    assert killed >= 1, "attach finished every time before it could be killed"
    device.ok("check")  # the store opens and verifies; half-written blobs are not attachments
    attached = json.loads(device.ok("show", record, "--json"))["attachments"]
    assert len(attached) <= KILLS  # one per attach that got to its commit, never a partial one
    if not attached:
        device.ok("attach", record, str(video))
    device.ok("push")
    assert json.loads(device.ok("status", "--json"))["pending"] == 0
    device.ok("check")
    for number in range(1, max(len(attached), 1) + 1):  # every attachment is the whole file
        out = tmp_path / f"back-{number}.bin"
        device.ok("show", record, "--attachment", str(number), "--out", str(out))
        assert out.read_bytes() == video.read_bytes()
    audit_clean(analyst, server)


def test_kill_9_during_push_then_the_next_push_completes(
    world: tuple[Device, Store, data.ServerData], tmp_path: Path
) -> None:
    device, analyst, server = world
    rng = random.Random(SEED + 62)
    record = recorded(device, tmp_path)
    video = tmp_path / "video.bin"
    video.write_bytes(os.urandom(64 * MB))
    device.ok("attach", record, str(video))
    for _ in range(5):
        recorded(device, tmp_path)
    partial = server.folder / "blobs" / "partial"

    def uploading() -> bool:
        return (
            any(p.stat().st_size > 1 * MB for p in partial.glob("*")) if partial.exists() else False
        )

    killed = 0
    for _ in range(KILLS + 1):
        killed += device.kill_during(["push"], uploading, rng)
        device.ok("check")  # the store stays whole however the push was cut
    assert killed >= 1, "push finished every time before it could be killed"
    device.ok("push")
    assert json.loads(device.ok("status", "--json"))["pending"] == 0
    audit_clean(analyst, server)
