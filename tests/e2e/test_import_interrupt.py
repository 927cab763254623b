"""A real Ctrl-C in the middle of a big `import`: the row it names as the first not saved is
exact, so following its hint neither skips a row nor saves one twice."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fieldsync.services import reading
from fieldsync.store.store import DB_FILE, Store
from tests.conftest import PASSPHRASE, example, sigint_restored

pytestmark = pytest.mark.slow

ROWS = 4000
STOPPED = re.compile(r"rows 1 to (\d+) were read, (\d+) records? saved; nothing from row (\d+)")


def wait_for_a_first_batch(home: Path, child: subprocess.Popen[str]) -> None:
    """Until the import has committed a batch (the database's log grows): by then it has
    unlocked and is saving rows."""
    log = home / f"{DB_FILE}-wal"
    start = log.stat().st_size if log.exists() else 0
    deadline = time.monotonic() + 60
    while not (log.exists() and log.stat().st_size > start):
        assert child.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)


@pytest.mark.parametrize("after", [0.0, 0.05, 0.1, 0.2, 0.35])
def test_the_first_row_named_not_saved_is_exactly_the_first_missing(
    store_home: Path, tmp_path: Path, after: float
) -> None:
    rows = tmp_path / "interviews.jsonl"
    with rows.open("w", encoding="utf-8") as handle:
        for number in range(1, ROWS + 1):
            handle.write(json.dumps(example("interview") | {"testimony": f"row {number}"}) + "\n")
    env = os.environ | {"FIELDSYNC_HOME": str(store_home), "FIELDSYNC_PASSPHRASE": PASSPHRASE}
    child = subprocess.Popen(
        [sys.executable, "-m", "fieldsync", "import", "interview", str(rows)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=sigint_restored,
    )
    wait_for_a_first_batch(store_home, child)
    time.sleep(after)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    if child.returncode == 0:
        pytest.skip("the import finished before the interrupt (a very fast machine)")
    assert child.returncode == 130, err
    found = STOPPED.search(" ".join(err.split()))
    assert found, err
    last, saved, first_missing = map(int, found.groups())
    assert first_missing == last + 1 == saved + 1
    assert f"Import again from row {first_missing}" in " ".join(err.split())
    with Store.open(store_home, PASSPHRASE) as store:
        saved_rows = sorted(
            int(reading.read(store, row.record).body.answers["testimony"].split()[1])
            for row in store.index()
        )
    assert saved_rows == list(range(1, last + 1))  # each row once, none skipped
