"""``fieldsync admin forms import``, through the CLI: an XLSForm shown as fields with both
labels and written out as the form's JSON Schema, which loads as any form does; a form that
cannot be translated names its row and column and writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fieldsync.cli.main import app
from fieldsync.core.forms import load

FORMS = Path(__file__).resolve().parents[1] / "forms" / "xlsform"


def test_an_xlsform_is_shown_and_written_as_a_form(tmp_path: Path) -> None:
    out = tmp_path / "testimony.json"
    shown = CliRunner().invoke(
        app, ["admin", "forms", "import", str(FORMS / "07_languages.md"), "--out", str(out)]
    )
    assert shown.exit_code == 0, shown.stderr
    assert "Witness" in shown.stdout and "الشاهد" in shown.stdout
    assert "testimony@4" in shown.stdout
    written = json.loads(out.read_text(encoding="utf-8"))
    assert load(written).ref == "testimony@4"
    again = CliRunner().invoke(
        app, ["admin", "forms", "import", str(FORMS / "07_languages.md"), "--out", str(out)]
    )
    assert again.exit_code == 5 and "already exists" in again.stderr
    as_json = CliRunner().invoke(
        app, ["admin", "forms", "import", str(FORMS / "06_repeat.md"), "--json"]
    )
    assert as_json.exit_code == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    assert document["id"] == "victims" and document["out"] is None
    assert [f["name"] for f in document["fields"]] == ["where", "victims"]


def test_a_form_that_cannot_be_translated_writes_nothing(tmp_path: Path) -> None:
    source = tmp_path / "gps.md"
    source.write_text(
        "| survey |\n| | type | name | label |\n| | geopoint | gps | Where |\n"
        "| settings |\n| | form_id | version |\n| | gps | 1 |\n",
        encoding="utf-8",
    )
    out = tmp_path / "gps.json"
    refused = CliRunner().invoke(
        app, ["admin", "forms", "import", str(source), "--out", str(out), "--json"]
    )
    assert refused.exit_code == 5
    error = json.loads(refused.stdout)
    assert "survey, row 2, column 'type'" in error["error"] and "geopoint" in error["error"]
    assert not out.exists()
