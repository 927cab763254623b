"""A dishonest or impostor server that sends an attachment without end fills no disk: the pull
reads no more than the file the version's body describes can be, and sets the version aside."""

from __future__ import annotations

import re
import resource
import signal
from pathlib import Path

from fieldsync.core import crypto
from fieldsync.services import attachments, problems, pull, records, sync
from fieldsync.services.forms import get_form
from tests.conftest import example
from tests.exchange.conftest import World

DISK_LEFT = 64 * 1024 * 1024  # what the analyst's disk has room for, as RLIMIT_FSIZE


def test_an_attachment_served_without_end_is_cut_at_its_size_and_set_aside(
    world: World, tmp_path: Path
) -> None:
    device = world.device("laptop")
    record = records.create(device, get_form("incident"), example("incident"))
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8" + crypto.random_bytes(5000))
    attachments.attach(device, record, [photo])
    sync.push(device)
    (served,) = [
        p for p in (world.folder / "server").rglob("*") if re.fullmatch("[0-9a-f]{64}", p.name)
    ]
    served.chmod(0o600)
    with open(served, "r+b") as handle:  # a gigabyte of (sparse) zeros after the real bytes
        handle.truncate(1 << 30)

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    before = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails
    resource.setrlimit(resource.RLIMIT_FSIZE, (DISK_LEFT, hard))
    try:
        report = pull.pull(world.analyst)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, before)

    (found,) = report.problems
    assert found.why == problems.BLOB_ALTERED and found.author == device.identity.device_id
    assert found.spans == ((2, 2),)  # the version that attached it; the first one is stored
    assert {e.record for e in world.analyst.index()} == {record}
