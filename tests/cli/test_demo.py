from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fieldsync.cli.main import app
from fieldsync.errors import IntegrityError
from fieldsync.services import demo


def test_demo_runs_every_step_and_leaves_nothing_behind(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo"], env={"TMPDIR": str(tmp_path)})
    assert result.exit_code == 0, result.stdout + result.stderr
    assert (
        "created; victims.total: 5 → 6, victims.individuals[2].age: 34 → 35; attached photo.jpg"
        in " ".join(result.stdout.split())
    )
    assert "14. fieldsync push" in result.stdout
    assert "receipt up to seq 5 verifies" in result.stdout
    assert "16. fieldsync admin verify --data server" in result.stdout
    assert "the chain seq 1–5, the enrolment, 1 receipt(s), 1 blob hash" in result.stdout
    assert "17. fieldsync admin pull" in result.stdout
    assert "they merge into a new signed version with both as parents (3 victims" in result.stdout
    assert "21. fieldsync admin report --month 2024-03" in result.stdout
    assert "2 civilians killed (2 children), attributed to Russian forces" in result.stdout
    assert "22. fieldsync admin export --format csv" in result.stdout
    assert "23. fieldsync admin evidence" in result.stdout
    assert "checks hold offline" in result.stdout
    assert "24. fieldsync admin backup --shares 5 --threshold 3" in result.stdout
    assert "25. fieldsync admin invite Amal --role analyst" in result.stdout
    assert "Amal certified in the organisation's log" in result.stdout
    assert "26. fieldsync admin rotate-read-key" in result.stdout
    assert "read key 2 announced" in result.stdout
    assert "27. fieldsync admin rotate-admin-key" in result.stdout
    assert "the device and the analyst follow it with no new invite" in result.stdout
    assert (
        "28. fieldsync server new-receipt-key; fieldsync admin rotate-receipt-key" in result.stdout
    )
    assert "the device checks its next receipt under it" in result.stdout
    assert "29. fieldsync admin recover (shares 2, 3 and 4 of 5)" in result.stdout
    assert "a new store with the admin key in force and 2 read keys" in result.stdout
    assert "30. fieldsync push --wipe-after" in result.stdout
    assert "5 delivered records forgotten" in result.stdout
    assert "31. search every byte written" in result.stdout
    assert "the stores (the device's, the administrator's, the analyst's" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_demo_keep_leaves_a_store_that_opens(tmp_path: Path) -> None:
    folder = tmp_path / "kept"
    result = CliRunner().invoke(app, ["demo", "--keep", str(folder)])
    assert result.exit_code == 0, result.stdout + result.stderr
    listed = CliRunner().invoke(
        app,
        ["list", "--json", "--home", str(folder / "home")],
        env={"FIELDSYNC_PASSPHRASE": demo.DEMO_PASSPHRASE},
    )
    assert listed.exit_code == 0
    assert listed.stdout.count('"record"') == 1  # the interview after the wipe


def test_the_demo_fails_loudly_if_plaintext_reaches_the_store(tmp_path: Path) -> None:
    plaintext = tmp_path / "home" / "blobs" / "leak.txt"
    steps = demo.run(tmp_path)
    for step in steps:
        if step.title == "fieldsync check":
            plaintext.write_text("nurse on duty")  # as a bug that wrote a clear file would
            break
    with pytest.raises(IntegrityError, match="plaintext found at rest in leak.txt"):
        list(steps)
