"""A real Ctrl-C (SIGINT) and a real crash (SIGKILL) in the middle of an interactive `new`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import PASSPHRASE, sigint_restored

pytestmark = pytest.mark.slow

REST = ["", "", "2013-10-12", "", "1", "1", "", "", "n", "1", "", "n", "1", "n", ""]


def start(home: Path) -> subprocess.Popen[str]:
    env = os.environ | {
        "FIELDSYNC_HOME": str(home),
        "FIELDSYNC_PASSPHRASE": PASSPHRASE,
        "PYTHONUNBUFFERED": "1",
        "COLUMNS": "200",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "fieldsync", "new", "disappearance"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=sigint_restored,
    )


def type_until(child: subprocess.Popen[str], lines: list[str], waiting_for: str) -> None:
    assert child.stdin is not None
    assert child.stdout is not None
    for line in lines:
        child.stdin.write(line + "\n")
    child.stdin.flush()
    seen = ""
    deadline = time.monotonic() + 30
    while waiting_for not in seen:
        assert time.monotonic() < deadline, seen
        seen += child.stdout.read(1)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "crash"])
def test_typed_fields_survive_an_interruption(store_home: Path, sig: signal.Signals) -> None:
    child = start(store_home)
    type_until(child, ["خالد", "1", "44"], "Occupation")  # three fields done, fourth asked
    child.send_signal(sig)
    _, err = child.communicate(timeout=30)
    if sig == signal.SIGINT:
        assert child.returncode == 130
        assert "kept, encrypted, as a draft" in err
    resumed = start(store_home)
    out, err = resumed.communicate("\n".join(["y", *REST]) + "\n", timeout=60)
    assert resumed.returncode == 0, out + err
    assert "Continue it?" in out
    env = os.environ | {"FIELDSYNC_HOME": str(store_home), "FIELDSYNC_PASSPHRASE": PASSPHRASE}
    listed = subprocess.run(
        [sys.executable, "-m", "fieldsync", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    (row,) = json.loads(listed.stdout)
    shown = subprocess.run(
        [sys.executable, "-m", "fieldsync", "show", row["record"], "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(shown.stdout)["answers"]["person"] == {
        "name": "خالد",
        "sex": "male",
        "age": 44,
    }
