"""A version one device poisoned, as the administrator sees it on the command line: named by
``admin pull``, ``status`` and ``admin devices``, in words and in ``--json`` (issue 15)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fieldsync.core import batch as batch_format
from fieldsync.core import crypto
from fieldsync.core import entry as entry_format
from fieldsync.core.body import Body
from fieldsync.core.clock import HLC
from fieldsync.core.ids import new_record_id
from fieldsync.services import problems
from fieldsync.services.forms import get_form
from fieldsync.transport.client import SyncClient
from tests.cli.conftest import Run, as_json, organisation
from tests.conftest import example


def test_a_version_that_cannot_be_read_is_named_by_pull_status_and_devices(
    run: Run, tmp_path: Path, template_store: tuple[Path, Any, Any]
) -> None:
    identity = template_store[2]  # the key of the device ``run`` drives
    with organisation(run, tmp_path) as (in_admin_store, url, _org, record):
        as_json(run("push", "--json"))
        head = as_json(run("show", record[:8], "--json"))["version"]
        body = Body(get_form("incident").ref, example("incident")).encode()
        entry, _ = entry_format.seal(
            identity.signer,
            seq=2,
            prev=head,
            record=new_record_id(),
            parents=[],
            hlc=HLC(2**41, 0),
            body=body,
        )
        poisoned = batch_format.build(
            identity.signer, [entry], [crypto.random_bytes(crypto.SEAL_BYTES)]
        )
        with SyncClient(url, signer=identity.signer) as client:
            client.send_batch(poisoned.raw)

        pulled = as_json(in_admin_store("admin", "pull", "--json"))
        assert pulled["received"] == 1 and pulled["set_aside"] == 1
        (problem,) = pulled["problems"]
        assert problem["device"] == identity.device_id and problem["seqs"] == [2]
        assert problem["kind"] == "set aside" and problem["why"] == problems.WRAP

        again = in_admin_store("admin", "pull")
        assert again.exit_code == 0, again.stderr
        assert "problem: 1 version from device 'laptop'" in again.stdout
        assert "(seq 2)" in again.stdout and "tried again at every pull" in again.stdout

        assert as_json(in_admin_store("status", "--json"))["problems"] == [problem]
        assert "problem: 1 version from device 'laptop'" in in_admin_store("status").stdout

        rows = as_json(in_admin_store("admin", "devices", "--json"))
        (laptop,) = [r for r in rows if r["device"] == identity.device_id]
        assert laptop["problems"] == [problem]
        listed = in_admin_store("admin", "devices")
        assert "1 set aside" in listed.stdout and "(seq 2)" in listed.stdout
