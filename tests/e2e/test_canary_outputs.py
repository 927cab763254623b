"""No plaintext at rest on the administrator's side: a marker in every field, pulled through a
real server process, reported on (with a chart), exported and packaged as evidence; then every
byte under the admin's store, the server's data and the temporary folder (the server's log
too) is searched.

The export and the evidence package are plaintext by design, written only where the
administrator points ``--out``; that folder alone is left out of the search, and the test checks
the marker really is there (so the journey ran), with sensitive fields left out of the export.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PASSPHRASE
from tests.e2e.test_canary import encodings_of, marked_answers
from tests.live import ServerProcess

pytestmark = pytest.mark.slow


def test_no_marker_where_the_administrator_did_not_ask_for_plaintext(tmp_path: Path) -> None:
    marker = "CANARY" + secrets.token_hex(8)
    device, analyst, temp = tmp_path / "device", tmp_path / "analyst", tmp_path / "tmp"
    amal = tmp_path / "amal"  # an analyst with a store and keys of their own
    inputs, outputs = tmp_path / "inputs", tmp_path / "outputs"
    for folder in (temp, inputs, outputs):
        folder.mkdir()
    base = os.environ | {"FIELDSYNC_PASSPHRASE": PASSPHRASE, "TMPDIR": str(temp)}
    base |= {"TEMP": str(temp), "TMP": str(temp), "MPLCONFIGDIR": str(temp / "matplotlib")}

    def fieldsync(home: Path, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "fieldsync", *args],
            env=base | {"FIELDSYNC_HOME": str(home)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    org = inputs / "org.json"
    fieldsync(analyst, "admin", "init", "--public-out", str(org))
    fieldsync(analyst, "server", "init", "--data", str(tmp_path / "server"), "--org", str(org))
    server_log = temp / "server.log"  # its JSON log lines, searched with the rest
    server = ServerProcess(tmp_path / "server", log=server_log)
    server.start()
    try:
        invite = json.loads(
            fieldsync(analyst, "admin", "invite", "laptop", "--server", server.url, "--json")
        )
        fieldsync(device, "init")
        fieldsync(
            device,
            "enroll",
            invite["invite"],
            "--expect-fingerprint",
            invite["organisation_fingerprint"],
        )
        incident = ""
        for form in ("incident", "interview", "disappearance"):
            path = inputs / f"{form}.json"
            path.write_text(json.dumps(marked_answers(form, marker), ensure_ascii=False))
            made = json.loads(fieldsync(device, "new", form, "--from-file", str(path), "--json"))
            incident = incident or made["record"]
        photo = inputs / f"photo-{marker}.jpg"
        photo.write_bytes(f"photo {marker} ".encode() * 10_000)
        fieldsync(device, "attach", incident, str(photo))
        fieldsync(device, "push")
        fieldsync(analyst, "admin", "pull")
        fieldsync(analyst, "admin", "report", "--chart", str(temp / "chart.png"))
        fieldsync(analyst, "admin", "report", "--json")
        fieldsync(analyst, "admin", "export", "--format", "csv", "--out", str(outputs))
        fieldsync(analyst, "admin", "export", "--format", "jsonl", "--out", str(outputs))
        fieldsync(analyst, "admin", "evidence", incident, "--out", str(outputs / "case.zip"))
        fieldsync(analyst, "evidence-verify", str(outputs / "case.zip"), "--org", str(org))
        # the organisation as a team: shares, an analyst of their own, a rotation
        shares = json.loads(
            fieldsync(analyst, "admin", "backup", "--shares", "5", "--threshold", "3", "--json")
        )["shares"]
        member = json.loads(
            fieldsync(
                analyst,
                "admin",
                "invite",
                "Amal",
                "--server",
                server.url,
                "--role",
                "analyst",
                "--json",
            )
        )
        fieldsync(amal, "init")
        fieldsync(
            amal,
            "enroll",
            member["invite"],
            "--expect-fingerprint",
            member["organisation_fingerprint"],
        )
        fieldsync(analyst, "admin", "pull")
        fieldsync(analyst, "admin", "rotate-read-key")
        fieldsync(amal, "pull")
        fieldsync(amal, "edit", incident, "--set", f"location.place=checked by Amal {marker}")
        fieldsync(amal, "push")
        fieldsync(amal, "admin", "report", "--json")
        fieldsync(device, "pull")
        fieldsync(analyst, "admin", "pull")
    finally:
        server.stop()

    patterns = [*encodings_of(marker), *(share.encode() for share in shares)]
    patterns += [" ".join(share.split()[:6]).encode() for share in shares]
    assert any(marker.encode() in p.read_bytes() for p in outputs.iterdir())  # the journey ran
    exported = (outputs / "incident.v1.csv").read_bytes()
    assert f"victim {marker}".encode() not in exported  # names stay out of the export
    assert f"+963 {marker}".encode() not in exported  # and contacts
    written = [
        p
        for root in (analyst, amal, tmp_path / "server", temp)
        for p in root.rglob("*")
        if p.is_file()
    ]
    assert any(p.name == "chart.png" for p in written)
    logged = [json.loads(line) for line in server_log.read_text().splitlines()]
    assert {"request", "batch accepted"} <= {line["event"] for line in logged}
    assert any(p.name == "store.db" for p in written) and any("blobs" in p.parts for p in written)
    hits = [
        f"{path.relative_to(tmp_path)}: {pattern!r}"
        for path in written
        for pattern in patterns
        if pattern in path.read_bytes()
    ]
    assert hits == []
    assert not any(marker in str(p) for p in written)
