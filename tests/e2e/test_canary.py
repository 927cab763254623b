"""No plaintext at rest: a random marker in every field, file name and file, then a search.

The journey runs as real ``fieldsync`` processes (as a documenter would run them), with its own
temporary folder, and then every byte under the store's home and that temporary folder is
searched for the marker in every encoding the code could have used.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fieldsync.services.forms import get_form
from tests.conftest import PASSPHRASE, example

pytestmark = pytest.mark.slow


def encodings_of(marker: str) -> list[bytes]:
    raw = marker.encode("utf-8")
    found = [
        raw,
        marker.encode("utf-16-le"),
        marker.encode("utf-16-be"),
        raw.hex().encode(),
        raw.hex().upper().encode(),
    ]
    for shift in range(3):  # base64 of the marker at each alignment inside a longer string
        padded = base64.b64encode(b"\x00" * shift + raw)
        found.append(padded[4 * ((shift + 2) // 3) + 4 : -4])
        padded_url = base64.urlsafe_b64encode(b"\x00" * shift + raw)
        found.append(padded_url[4 * ((shift + 2) // 3) + 4 : -4])
    return [f for f in found if len(f) >= 8]


def marked_answers(form: str, marker: str) -> dict[str, Any]:
    """The example answers with the marker in every free-text field the form has."""
    answers = example(form)
    described = get_form(form)
    for field in described.walk():
        if field.kind != "text" or field.hidden or "pattern" in field.schema:
            continue
        if "items" in {
            described.field(".".join(field.path[:i])).kind for i in range(1, len(field.path))
        }:
            continue
        node = answers
        for step in field.path[:-1]:
            node = node.setdefault(step, {})
        node[field.path[-1]] = f"{field.name} {marker} نص"
    if form == "incident":
        answers["location"]["coordinates"] = {"latitude": "36.2021", "longitude": "37.1343"}
        for person in answers["victims"]["individuals"]:
            person["name"] = f"victim {marker}"
        for source in answers["sources"]:
            source["description"] = f"source {marker}"
            source["contact"] = f"+963 {marker}"
    if form == "interview":
        answers["quotes"] = [f"quote {marker}"]
    if form == "disappearance":
        answers["status_updates"] = [
            {"date": "2014-01-01", "status": "missing", "note": f"update {marker}"}
        ]
    return answers


def test_no_marker_anywhere_the_tool_wrote(tmp_path: Path) -> None:
    marker = "CANARY" + secrets.token_hex(8)
    home, temp, inputs = tmp_path / "home", tmp_path / "tmp", tmp_path / "inputs"
    temp.mkdir()
    inputs.mkdir()
    env = os.environ | {
        "FIELDSYNC_HOME": str(home),
        "FIELDSYNC_PASSPHRASE": PASSPHRASE,
        "TMPDIR": str(temp),
        "TEMP": str(temp),
        "TMP": str(temp),
    }

    def fieldsync(*args: str, input: str | None = None, ok: bool = True) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "fieldsync", *args],
            env=env,
            capture_output=True,
            text=True,
            input=input,
            timeout=120,
        )
        assert (result.returncode == 0) == ok, result.stderr
        assert marker not in result.stderr or ok  # error messages never echo record text
        return result.stdout

    fieldsync("init")
    records = []
    for form in ("incident", "interview", "disappearance"):
        path = inputs / f"{form}.json"
        path.write_text(json.dumps(marked_answers(form, marker), ensure_ascii=False))
        records.append(
            json.loads(fieldsync("new", form, "--from-file", str(path), "--json"))["record"]
        )
    rows = inputs / "rows.jsonl"
    rows.write_text(
        "\n".join(
            json.dumps(marked_answers("interview", marker), ensure_ascii=False) for _ in range(5)
        )
        + "\n"
    )
    fieldsync("import", "interview", str(rows))
    csv_rows = inputs / "rows.csv"
    csv_rows.write_text(
        f"person.name,date,event,location.governorate,perpetrator_party,status\n"
        f"{marker},2013-10-12,arrest,damascus,unknown,missing\n"
    )
    fieldsync("import", "disappearance", str(csv_rows))
    fieldsync("edit", records[0], "--set", f"location.place=edited {marker}", "--note", marker)
    evidence = inputs / f"evidence-{marker}.txt"
    evidence.write_bytes(f"file content {marker} ".encode() * 20_000)
    fieldsync("attach", records[0], str(evidence))
    # An interrupted interactive session leaves a draft.
    fieldsync("new", "disappearance", input=f"{marker} draft name\n", ok=False)
    fieldsync("list")
    fieldsync("show", records[0])
    fieldsync("history", records[0])
    fieldsync("check")
    out = inputs / "decrypted.txt"
    fieldsync("show", records[0], "--attachment", "1", "--out", str(out))
    assert out.read_bytes() == evidence.read_bytes()  # the journey really ran

    patterns = encodings_of(marker)
    # The search itself works: it finds the marker in the plaintext inputs we wrote ourselves.
    assert all(any(p in f.read_bytes() for p in patterns) for f in (evidence, rows, csv_rows))
    assert base64.b64encode(b"xy" + marker.encode())[8:-8] in b"".join(patterns)
    written = [p for root in (home, temp) for p in root.rglob("*") if p.is_file()]
    assert any(p.name == "store.db" for p in written)
    hits = []
    for path in written:
        assert marker not in str(path.relative_to(tmp_path))
        data = path.read_bytes()
        hits += [f"{path.name}: {pattern!r}" for pattern in patterns if pattern in data]
    assert hits == []
