from __future__ import annotations

import json
from pathlib import Path

import pytest

from fieldsync.errors import ImportFileError
from fieldsync.services import importer, reading
from fieldsync.services.forms import get_form
from fieldsync.store.store import Store
from tests.conftest import entered, example

FORM = get_form("disappearance")


def run(store: Store, path: Path, fmt: str | None = None) -> importer.ImportReport:
    kind = importer.detect_format(path, fmt)
    return importer.import_file(store, FORM, importer.read_rows(path, kind, FORM))


def test_json_lines_keeps_valid_rows_and_reports_the_rest(store: Store, tmp_path: Path) -> None:
    good = example("disappearance")
    lines = [
        json.dumps(good, ensure_ascii=False),
        "",
        json.dumps({**good, "date": "yesterday"}),
        "{not json",
        json.dumps({**good, "weight": 1.5}),
        json.dumps(good),
    ]
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    report = run(store, path)
    assert len(report.saved) == 2
    assert [r.row for r in report.refused] == [3, 4, 5]
    assert "Date of arrest or last sighting must be a real date" in report.refused[0].problems[0]
    assert "line 4 is not valid JSON" in report.refused[1].problems[0]
    assert "numbers with a fraction are not allowed" in report.refused[2].problems[0]
    assert len(store.index()) == 2
    assert entered(reading.read(store, report.saved[0]).body.answers) == good


def test_json_array(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "rows.json"
    path.write_text(json.dumps([example("disappearance")] * 3), encoding="utf-8")
    assert len(run(store, path).saved) == 3
    path.write_text(json.dumps({"not": "a list"}), encoding="utf-8")
    with pytest.raises(ImportFileError, match="JSON array"):
        run(store, path)


CSV_HEADER = "person.name,person.age,date,event,location.governorate,perpetrator_party,status"


def test_csv_with_arabic_bom_and_typed_cells(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    body = "\n".join(
        [
            CSV_HEADER,
            "خالد,27,2013-10-12,arrest,دمشق,regime_security,missing",
            '"Name, with comma",31,2014-01-02,Arrest,Aleppo,unknown,released',
            "نور,not-a-number,2014-01-02,arrest,aleppo,unknown,missing",
            "short,row",
            "Sami,40,2014-01-02,arrest,aleppo,unknown,",  # missing required status
        ]
    )
    path.write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))
    report = run(store, path)
    assert len(report.saved) == 2
    first = reading.read(store, report.saved[0]).body.answers
    assert first["person"] == {"name": "خالد", "age": 27}
    assert first["location"]["governorate"] == "damascus"
    assert [r.row for r in report.refused] == [3, 4, 5]
    assert "whole number" in report.refused[0].problems[0]
    assert "2 cells but the header names 7" in report.refused[1].problems[0]
    assert report.refused[2].problems == ("Current status is required",)


def test_a_csv_row_with_a_cell_that_does_not_parse_names_its_other_problems_too(
    store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "rows.csv"
    row = "نور,forty,yesterday,arrest,nowhere,unknown,"  # age, date, governorate, status
    path.write_text(f"{CSV_HEADER}\n{row}\n", encoding="utf-8")
    (refused,) = run(store, path).refused
    problems = " | ".join(refused.problems)
    assert "Age at disappearance must be a whole number, not 'forty'" in problems
    assert "Governorate" in problems and "'nowhere'" in problems
    assert "Date of arrest or last sighting must be a real date" in problems
    assert "Current status is required" in problems
    assert problems.count("forty") == 1
    assert store.index() == []


def test_csv_in_utf16_with_bom_is_read(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(
        (CSV_HEADER + "\nخالد,27,2013-10-12,arrest,damascus,unknown,missing\n").encode("utf-16")
    )
    assert len(run(store, path).saved) == 1


def test_csv_in_a_legacy_encoding_is_refused_with_a_fix(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "cp1256.csv"
    path.write_bytes(
        (CSV_HEADER + "\nخالد,27,2013-10-12,arrest,damascus,unknown,missing\n").encode("cp1256")
    )
    with pytest.raises(ImportFileError, match="not UTF-8") as caught:
        run(store, path)
    assert "CSV UTF-8" in (caught.value.hint or "")
    assert store.index() == []


def test_csv_with_unknown_or_repeated_columns_is_refused(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("person.name,person.nmae\nx,y\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match="person.nmae"):
        run(store, path)
    path.write_text("status,status\nmissing,missing\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match="twice"):
        run(store, path)
    path.write_text("", encoding="utf-8")
    with pytest.raises(ImportFileError, match="empty"):
        run(store, path)


def test_csv_missing_required_columns_refuses_every_row(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "partial.csv"
    path.write_text("person.name,date\nA,2013-10-12\nB,2013-10-13\n", encoding="utf-8")
    report = run(store, path)
    assert report.saved == []
    assert len(report.refused) == 2
    assert "What happened is required" in "; ".join(report.refused[0].problems)


def test_deeply_nested_and_unknown_formats(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "deep.jsonl"
    path.write_text("[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    report = run(store, path)
    assert report.saved == []
    assert len(report.refused) == 1
    with pytest.raises(ImportFileError, match="cannot tell the format"):
        importer.detect_format(tmp_path / "rows.xlsx", None)
    with pytest.raises(ImportFileError, match="no file"):
        run(store, tmp_path / "absent.csv")
