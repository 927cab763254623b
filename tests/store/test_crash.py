"""Processes killed mid-write, and several processes writing at once, with real processes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fieldsync.store import blobs, integrity
from fieldsync.store.blobs import BLOBS_DIR
from fieldsync.store.store import Store
from tests.conftest import PASSPHRASE

pytestmark = pytest.mark.slow

SAVER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from fieldsync.core.body import Body
    from fieldsync.core.ids import new_record_id
    from fieldsync.store.store import Store

    store = Store.open(Path(sys.argv[1]), os.environ["PW"])
    count = int(sys.argv[2])
    print("ready", flush=True)
    for n in range(count):
        record = new_record_id()
        with store.writer() as writer:
            writer.append(record, [], Body("incident@1", {"narrative": f"n{n}" * 50}), "s")
        print(record, flush=True)  # printed only after the commit returned
    """
)

ATTACHER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from fieldsync.store import blobs
    from fieldsync.store.store import Store

    class Endless:
        def read(self, n=-1):
            return b"z" * (n if n > 0 else 65536)

    store = Store.open(Path(sys.argv[1]), os.environ["PW"])
    print("ready", flush=True)
    blobs.put_blob(store, Endless())  # never ends: killed while writing
    """
)


def spawn(script: str, *args: str) -> subprocess.Popen[str]:
    env = os.environ | {"PW": PASSPHRASE}
    return subprocess.Popen(
        [sys.executable, "-c", script, *args], stdout=subprocess.PIPE, text=True, env=env
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_9_in_the_middle_of_saves_loses_nothing_committed(store_home: Path, seed: int) -> None:
    child = spawn(SAVER, str(store_home), "100000")
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    committed = [child.stdout.readline().strip() for _ in range(random.Random(seed).randint(5, 60))]
    time.sleep(random.Random(seed).random() * 0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdout.close()
    with Store.open(store_home, PASSPHRASE) as store:
        report = integrity.check(store)
        assert report.ok, report.problems
        present = {row.record for row in store.index()}
        assert set(committed) <= present
        assert all(store.versions(r)[0].body is not None for r in committed)


def test_kill_9_while_encrypting_an_attachment_leaves_only_encrypted_leftovers(
    store_home: Path,
) -> None:
    child = spawn(ATTACHER, str(store_home))
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    tmp = store_home / BLOBS_DIR / "tmp"
    deadline = time.monotonic() + 20
    while not any(p.stat().st_size > 1_000_000 for p in tmp.glob("*")):
        assert time.monotonic() < deadline, "the child never started writing"
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdout.close()
    leftovers = list(tmp.glob("*"))
    assert leftovers
    assert all(b"zzzzzzzz" not in p.read_bytes() for p in leftovers)  # ciphertext only
    with Store.open(store_home, PASSPHRASE) as store:
        assert blobs.discard_partial_blobs(store) == len(leftovers)
        assert integrity.check(store).ok


def test_two_processes_saving_at_once_keep_one_unbroken_chain(store_home: Path) -> None:
    children = [spawn(SAVER, str(store_home), "40") for _ in range(2)]
    saved = []
    for child in children:
        out, _ = child.communicate(timeout=120)
        assert child.returncode == 0
        saved += out.split()[1:]
    assert len(saved) == 80
    with Store.open(store_home, PASSPHRASE) as store:
        assert integrity.check(store).ok
        seqs = sorted(store.versions(r)[0].entry.header.seq for r in saved)
        assert seqs == list(range(1, 81))
