"""kill -9 a real `fieldsync import` half-way: the store opens, checks clean, and keeps batches."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fieldsync.services.importer import BATCH
from tests.conftest import PASSPHRASE, example

pytestmark = pytest.mark.slow


def test_kill_9_during_import_then_check_passes(store_home: Path, tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text((json.dumps(example("interview"), ensure_ascii=False) + "\n") * 20_000)
    env = os.environ | {"FIELDSYNC_HOME": str(store_home), "FIELDSYNC_PASSPHRASE": PASSPHRASE}
    child = subprocess.Popen(
        [sys.executable, "-m", "fieldsync", "import", "interview", str(rows)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wal = store_home / "store.db-wal"
    deadline = time.monotonic() + 60
    while not (wal.exists() and wal.stat().st_size > 2_000_000):  # a few batches are in
        assert child.poll() is None, "the import finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()

    def fieldsync(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "fieldsync", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    check = fieldsync("check")
    assert check.returncode == 0, check.stdout + check.stderr
    listed = json.loads(fieldsync("list", "--json").stdout)
    assert 0 < len(listed) < 20_000
    assert len(listed) % BATCH == 0  # whole transactions only
