"""``status`` as a person and a script read it, before enrolling, before a push and after: each
line and each JSON key, written out here."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from tests.cli.conftest import Run, as_json, organisation

FINGERPRINT = r"[0-9a-z]+(?:[ -][0-9a-z]+)*"


def test_status_before_enrolling(run: Run) -> None:
    shown = as_json(run("status", "--json"))
    assert list(shown) == [
        "enrolled",
        "server",
        "server_fingerprint",
        "device_fingerprint",
        "pending",
        "acknowledged_seq",
        "last_receipt",
        "problems",
        "read_key_epoch",
        "alerts",
    ]
    assert shown | {"device_fingerprint": "?"} == {
        "enrolled": False,
        "server": None,
        "server_fingerprint": None,
        "device_fingerprint": "?",
        "pending": 0,
        "acknowledged_seq": 0,
        "last_receipt": None,
        "problems": [],
        "read_key_epoch": None,
        "alerts": [],
    }
    text = run("status")
    assert text.exit_code == 0
    assert text.stdout == (
        f"Device fingerprint: {shown['device_fingerprint']}\n"
        "Not enrolled with a server: run 'fieldsync enroll INVITE'.\n"
        "Waiting to be delivered: 0 version(s)\n"
    )


def test_status_of_an_enrolled_device_before_and_after_a_push(run: Run, tmp_path: Path) -> None:
    with organisation(run, tmp_path) as (_admin, url, _org, _record):
        before = as_json(run("status", "--json"))
        assert before["enrolled"] is True and before["server"] == url
        assert re.fullmatch(FINGERPRINT, before["server_fingerprint"])
        assert (before["pending"], before["acknowledged_seq"], before["last_receipt"]) == (
            1,
            0,
            None,
        )
        assert run("status").stdout == (
            f"Device fingerprint: {before['device_fingerprint']}\n"
            f"Server: {url} (fingerprint {before['server_fingerprint']})\n"
            "Acknowledged by the server: up to seq 0\n"
            "Waiting to be delivered: 1 version(s)\n"
        )

        assert as_json(run("push", "--json"))["delivered"] == 1
        after = as_json(run("status", "--json"))
        assert (after["pending"], after["acknowledged_seq"]) == (0, 1)
        receipt = datetime.fromisoformat(after["last_receipt"])
        assert after["last_receipt"] == receipt.isoformat(timespec="milliseconds")
        shown_at = receipt.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        assert run("status").stdout == (
            f"Device fingerprint: {before['device_fingerprint']}\n"
            f"Server: {url} (fingerprint {before['server_fingerprint']})\n"
            f"Acknowledged by the server: up to seq 1, receipt of {shown_at}\n"
            "Waiting to be delivered: 0 version(s)\n"
        )
