"""PUT /v1/admin/backup and GET /v1/org/backup against a real server (SQLite and PostgreSQL)."""

from __future__ import annotations

import json

import httpx

from fieldsync.core import backup, crypto, encoding, httpsig
from fieldsync.server.tables import OrgBackupRow
from tests.server.conftest import NOW, Live, Org


def sealed_for(admin_key: str) -> bytes:
    secrets = backup.Secrets(crypto.random_bytes(32), ((1, crypto.random_bytes(32)),))
    return backup.seal(backup.new_key(), admin_key, secrets)


def put(live: Live, body: bytes, signer: crypto.SigningPair) -> httpx.Response:
    headers = httpsig.sign(signer, "PUT", "/v1/admin/backup", body, NOW // 1000)
    return live.http.put("/v1/admin/backup", content=body, headers=headers)


def test_the_newest_backup_is_kept_and_served_to_anyone(live: Live, org: Org) -> None:
    assert live.http.get("/v1/org/backup").status_code == 404
    assert live.http.get("/v1/org/backup").json()["error"] == "NotFound"
    first, second = sealed_for(org.admin.public.hex()), sealed_for(org.admin.public.hex())
    answer = put(live, first, org.admin)
    assert answer.status_code == 200
    assert answer.json() == {"stored_ms": NOW, "size": len(first)}
    assert live.http.get("/v1/org/backup").content == first
    assert put(live, second, org.admin).status_code == 200
    served = live.http.get("/v1/org/backup")  # unsigned: whoever recovers has no key yet
    assert served.content == second and served.headers["content-type"] == "application/json"
    assert live.count(OrgBackupRow) == 1


def test_only_the_administrator_may_store_a_backup(live: Live, org: Org) -> None:
    body = sealed_for(org.admin.public.hex())
    stranger = put(live, body, crypto.SigningPair.generate())
    assert stranger.status_code == 403 and stranger.json()["error"] == "AccessDenied"
    unsigned = live.http.put("/v1/admin/backup", content=body)
    assert unsigned.status_code in (400, 401, 403)
    assert live.count(OrgBackupRow) == 0


def test_another_organisations_backup_is_refused(live: Live, org: Org) -> None:
    theirs = sealed_for(crypto.SigningPair.generate().public.hex())
    answer = put(live, theirs, org.admin)
    assert answer.status_code == 403
    assert "another organisation's admin key" in answer.json()["message"]
    assert live.count(OrgBackupRow) == 0


def test_what_is_not_a_sealed_backup_is_refused(live: Live, org: Org) -> None:
    good = sealed_for(org.admin.public.hex())
    for body in (b"{}", b"not json", good[:-10], good.replace(b'"version":1', b'"version":1 ')):
        answer = put(live, body, org.admin)
        assert answer.status_code == 400, body
        assert answer.json()["error"] == "MalformedData"
    newer = encoding.encode(json.loads(good) | {"version": 2})
    later = put(live, newer, org.admin)
    assert later.status_code == 409 and later.json()["error"] == "UnsupportedFormat"
    too_big = put(live, b"x" * (backup.MAX_BACKUP + 1), org.admin)
    assert too_big.status_code == 413
    assert live.count(OrgBackupRow) == 0
