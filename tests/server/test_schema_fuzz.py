"""schemathesis against the server's own OpenAPI document: every endpoint, fed what the schema
allows and much it does not (random paths, headers, bodies), never answers with a server error,
never stores anything, and never works without a valid signature (only /v1/health, /v1/info
and /v1/org/backup answer anyone; the last has nothing to serve here).

The document declares the bodies and signature headers the endpoints read themselves, so the
fuzzer sends them too. ``FIELDSYNC_SCHEMA_EXAMPLES`` sets the cases per endpoint (CI: 60;
``scripts/soak``: many more).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from sqlmodel import Session, func, select

from fieldsync.core import crypto
from fieldsync.core.org import OrgKeys
from fieldsync.server import data
from fieldsync.server.app import create_app
from fieldsync.server.tables import (
    DeviceRow,
    InviteUseRow,
    OrgBackupRow,
    StoredBlob,
    StoredEntry,
)

EXAMPLES = int(os.environ.get("FIELDSYNC_SCHEMA_EXAMPLES", "60"))
OPEN_TO_ANYONE = {"/v1/health", "/v1/info", "/v1/org/backup"}


def _app() -> Any:
    """The app over a data folder of its own, made when the module loads (schemathesis reads
    the schema then) and removed when the run ends."""
    folder = Path(tempfile.mkdtemp(prefix="fieldsync-schema-fuzz-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    org = OrgKeys(
        crypto.SigningPair.generate().public.hex(), crypto.BoxPair.generate().public.hex()
    )
    return create_app(data.init(folder / "server", org.encode()))


APP = _app()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


def stored_rows(app: Any) -> int:
    with Session(app.state.engine) as session:
        return sum(
            int(session.exec(select(func.count()).select_from(table)).one())
            for table in (DeviceRow, InviteUseRow, StoredBlob, StoredEntry, OrgBackupRow)
        )


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_request_without_a_valid_signature_gets_anything_but_a_clean_refusal(
    case: Any,
) -> None:
    response = case.call()
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:300])
    if case.path not in OPEN_TO_ANYONE:
        assert response.status_code >= 400, (case.method, case.formatted_path, response.text)
        body = response.json()
        assert set(body) >= {"error", "message"}  # fieldsync's own words, echoing nothing
    assert stored_rows(APP) == 0
