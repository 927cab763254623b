"""How ``tests/server/release_0_1_0/`` was made: run once, at commit 4fcd3f7 (fieldsync 0.1.0,
whose server created its tables with ``SQLModel.metadata.create_all`` and had no Alembic), as
``python tests/server/release_0_1_0/made_by.py tests/server/release_0_1_0``. It is kept as a
record, not to be run again: today's code would write today's schema, not 0.1.0's.

A real server of that release, on SQLite, took: an enrolment; three batches (one an edit, one
naming an attachment); a complete blob and a half-uploaded one; a fork (quarantined). The
outputs are the database as SQL (``server.sql``, sqlite3's dump), its rows as JSON for loading
into PostgreSQL (``rows.json``), the server's data folder, the test keys (``keys.json``) and the half-uploaded blob's bytes.
"""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
import sys
from pathlib import Path

import httpx

from fieldsync.core import crypto, httpsig
from fieldsync.server import data
from fieldsync.server.app import create_app
from tests.live import running
from tests.server.conftest import NOW, Device, Org, enrol_body, make_invite
from tests.server.test_blobs import sealed_blob


def signed(http: httpx.Client, device: Device, method: str, path: str, body: bytes = b"") -> dict:
    headers = httpsig.sign(device.signer, method, path, body, NOW // 1000)
    answer = http.request(method, path, content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def main(out: Path) -> None:
    work = out / "work"
    org = Org(crypto.SigningPair.generate(), crypto.BoxPair.generate())
    server = data.init(work / "server", org.keys.encode())
    device = Device()
    app = create_app(server, now_ms=lambda: NOW)
    with running(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        enrolled = http.post(
            "/v1/enrol", content=enrol_body(make_invite(org, server), device.signer, device.box)
        )
        assert enrolled.status_code == 200
        first = device.record(3)
        assert http.post("/v1/batches", content=device.batch(first)).status_code == 200
        edit = device.record(1, record=first[0].header.record, parents=(first[0].id,))
        assert http.post("/v1/batches", content=device.batch(edit)).status_code == 200
        content, blob_id = sealed_blob(40_000)
        signed(http, device, "PUT", f"/v1/blobs/{blob_id}/{len(content)}")
        assert signed(http, device, "PATCH", f"/v1/blobs/{blob_id}/0", content)["complete"]
        half, half_id = sealed_blob(30_000)
        signed(http, device, "PUT", f"/v1/blobs/{half_id}/{len(half)}")
        signed(http, device, "PATCH", f"/v1/blobs/{half_id}/0", half[:10_000])
        with_blob = device.record(1)
        raw = device.batch(with_blob, blobs=((blob_id, len(content)),))
        assert http.post("/v1/batches", content=raw).status_code == 200
        forked = Device(signer=device.signer, box=device.box, entries=device.entries[:4])
        assert http.post("/v1/batches", content=forked.batch(forked.record(1))).status_code == 409
    app.state.engine.dispose()

    database = work / "server" / data.DB_FILE
    with sqlite3.connect(database) as db:
        (out / "server.sql").write_text("\n".join(db.iterdump()) + "\n")
        rows: dict[str, list[dict[str, object]]] = {}
        for (table,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name"
        ):
            cursor = db.execute(f'SELECT * FROM "{table}" ORDER BY rowid')
            names = [c[0] for c in cursor.description]
            rows[table] = [
                {
                    n: {"b64": base64.b64encode(v).decode()} if isinstance(v, bytes) else v
                    for n, v in zip(names, r, strict=True)
                }
                for r in cursor
            ]
    (out / "rows.json").write_text(json.dumps(rows, indent=1, sort_keys=True) + "\n")
    shutil.rmtree(out / "server", ignore_errors=True)
    shutil.copytree(work / "server", out / "server", ignore=shutil.ignore_patterns("server.db*"))
    keys = {
        "admin_seed": org.admin.seed.hex(),
        "org_read_secret": org.read.secret.hex(),
        "device_seed": device.signer.seed.hex(),
        "device_box_secret": device.box.secret.hex(),
        "blob": blob_id,
        "half_blob": half_id,
    }
    (out / "half_blob.bin").write_bytes(half)  # the whole of it: the test finishes the upload
    (out / "keys.json").write_text(json.dumps(keys, indent=1) + "\n")
    shutil.rmtree(work)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
