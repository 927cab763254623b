"""What a person reads when something goes wrong, as the command line says it (issue 16,
items 6 and 7): each message says what happened, what was lost and what to do next."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import Run, as_json, organisation


def test_a_revoked_device_is_told_so_with_its_own_exit_code_and_keeps_its_queue(
    run: Run, tmp_path: Path
) -> None:
    with organisation(run, tmp_path) as (in_admin_store, _url, _org, _record):
        (laptop,) = as_json(in_admin_store("admin", "devices", "--json"))
        revoked = in_admin_store("admin", "revoke", laptop["device"])
        assert revoked.exit_code == 0, revoked.stderr
        queued = as_json(run("status", "--json"))["pending"]
        assert queued == 1

        pushed = run("push")
        assert pushed.exit_code == 9, pushed.stderr
        assert "revoked by the organisation's administrator" in pushed.stderr
        assert "hint: Nothing was lost on this device" in pushed.stderr
        assert "do not keep retrying" in pushed.stderr
        assert as_json(run("status", "--json"))["pending"] == queued

        pulled = run("pull")
        assert pulled.exit_code == 9, pulled.stderr
        assert "hint: Nothing was lost on this device" in pulled.stderr
