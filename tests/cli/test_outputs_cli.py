"""admin report, admin export, admin evidence and evidence-verify as people type them."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from fieldsync.cli.main import app
from tests.cli.conftest import Run, as_json, organisation


def test_report_export_and_evidence_on_the_command_line(run: Run, tmp_path: Path) -> None:
    with organisation(run, tmp_path) as (in_admin_store, _url, org, record):

        def admin(*args: str) -> Any:
            return in_admin_store("admin", *args)

        as_json(run("push", "--json"))
        as_json(admin("pull", "--json"))

    # the report: one JSON document, rows that add up, a chart
    chart = tmp_path / "series.svg"
    report = as_json(admin("report", "--month", "2024-03", "--chart", str(chart), "--json"))
    assert report["records_counted"] == 1
    assert report["killings"]["totals"]["killed"] == 1
    joint = [r for r in report["killings"]["by_party"] if r["key"].startswith("joint:")]
    assert [r["killed"] for r in joint] == [1]
    assert chart.read_text(encoding="utf-8").lstrip().startswith("<?xml")
    shown = admin("report", "--from", "2024-01-01", "--to", "2024-12-31")
    assert shown.exit_code == 0 and "Civilians killed" in shown.stdout
    assert "Joint, undetermined" in shown.stdout

    # the export
    out = tmp_path / "export"
    out.mkdir()
    written = as_json(admin("export", "--format", "csv", "--out", str(out), "--json"))
    assert {Path(f["path"]).name for f in written["files"]} >= {"incident.v1.csv"}
    assert record.encode() in (out / "incident.v1.csv").read_bytes()
    assert "سارة".encode() not in (out / "incident.v1.csv").read_bytes()

    # the evidence package, checked by a reader with no store at all
    package = tmp_path / "case.zip"
    built = as_json(admin("evidence", record[:8], "--out", str(package), "--json"))
    assert built["verification"]["holds"] and built["versions"] == 1
    reader = CliRunner()
    empty = {"FIELDSYNC_HOME": str(tmp_path / "nobody")}
    checked = as_json(
        reader.invoke(
            app, ["evidence-verify", str(package), "--org", str(org), "--json"], env=empty
        )
    )
    assert checked["holds"] and checked["record"] == record
    table = reader.invoke(app, ["evidence-verify", str(package)], env=empty)
    assert table.exit_code == 0 and "Compare the organisation fingerprint" in table.stderr

    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(package) as source, zipfile.ZipFile(tampered, "w") as target:
        for name in source.namelist():
            body = source.read(name)
            target.writestr(name, body.replace(b"nurse", b"guard") if "body" in name else body)
        target.writestr("attachments/\x1b]0;owned\x07", b"x")
    refused = reader.invoke(app, ["evidence-verify", str(tampered)], env=empty)
    assert refused.exit_code == 6
    assert "was altered" in refused.stdout and "does not verify" in refused.stderr
    assert "\x1b" not in refused.stdout and "\x07" not in refused.stdout


def test_bad_arguments_are_refused_before_any_work(run: Run, tmp_path: Path) -> None:
    documenter_report = run("admin", "report")
    assert documenter_report.exit_code == 7  # a documenter's store holds no org read key
    for args, words in [
        (["report", "--month", "2024-13"], "YYYY-MM"),
        (["report", "--month", "2024-03", "--from", "2024-01-01"], "not both"),
        (["report", "--from", "2024-05-01", "--to", "2024-04-01"], "ends before"),
        (["report", "--chart", str(tmp_path / "c.gif")], ".png, .svg or .pdf"),
        (["export", "--format", "xml", "--out", str(tmp_path)], "csv or jsonl"),
        (["evidence", "0000", "--out", str(tmp_path / "p.tar")], ".zip"),
    ]:
        result = run("admin", *args)
        assert result.exit_code in (5, 7), (args, result.stderr)
        assert words in result.stderr, (args, result.stderr)
    missing = run("evidence-verify", str(tmp_path / "none.zip"))
    assert missing.exit_code == 5 and "no file" in missing.stderr
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    assert run("evidence-verify", str(junk)).exit_code == 6
