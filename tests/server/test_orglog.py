"""The organisation's log and members' key bundles on a real server (SQLite and PostgreSQL):
only statements every reader would follow are kept, a fork is kept apart and served, a viewer's
batch and a device's reader wraps are refused, bundles are kept for members only."""

from __future__ import annotations

import base64
import threading

import httpx

from fieldsync.core import bundle, crypto, httpsig, orglog
from fieldsync.core.orglog import OrgState
from fieldsync.server.tables import MemberBundle, OrgForkRow, OrgStatementRow
from tests.server.conftest import NOW, Device, Live, Org, enrol_body, make_invite


def _root(org: Org, live: Live) -> OrgState:
    return OrgState.root(
        org.admin.public.hex(), org.read.public.hex(), live.server.receipt_key.public.hex()
    )


def _rotation(org: Org, state: OrgState, time_ms: int = NOW) -> bytes:
    fields = {"epoch": state.read_key.epoch + 1, "read_key": crypto.BoxPair.generate().public.hex()}
    return orglog.sign(org.admin, state, orglog.READ_KEY, fields, time_ms=time_ms)


def _signed_get(live: Live, signer: crypto.SigningPair, path: str) -> httpx.Response:
    return live.http.get(path, headers=httpsig.sign(signer, "GET", path, b"", NOW // 1000))


def _enrol(live: Live, org: Org, role: str | None = None) -> Device:
    device = Device()
    text = make_invite(org, live.server, role=role)
    answer = live.http.post("/v1/enrol", content=enrol_body(text, device.signer, device.box))
    assert answer.status_code == 200, answer.text
    return device


def test_the_log_keeps_what_readers_follow_and_a_replay_changes_nothing(
    live: Live, org: Org
) -> None:
    first = _rotation(org, _root(org, live))
    answer = live.http.post("/v1/org/statements", content=first)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"forks": [], "statements": [base64.b64encode(first).decode()]}
    assert live.http.post("/v1/org/statements", content=first).json() == answer.json()
    state = orglog.follow(_root(org, live), [first])
    third = _rotation(org, orglog.follow(_root(org, live), [first, _rotation(org, state)]))
    gap = live.http.post("/v1/org/statements", content=third)
    assert (gap.status_code, gap.json()["error"]) == (409, "ChainGap")
    assert live.count(OrgStatementRow) == 1
    device = _enrol(live, org)
    served = _signed_get(live, device.signer, "/v1/org/log")
    assert served.status_code == 200 and served.json() == answer.json()
    stranger = _signed_get(live, crypto.SigningPair.generate(), "/v1/org/log")
    assert stranger.status_code == 403


def test_a_fork_is_refused_kept_apart_and_then_nothing_follows(live: Live, org: Org) -> None:
    root = _root(org, live)
    honest, stolen = _rotation(org, root, NOW), _rotation(org, root, NOW + 1)
    assert live.http.post("/v1/org/statements", content=honest).status_code == 200
    refused = live.http.post("/v1/org/statements", content=stolen)
    assert (refused.status_code, refused.json()["error"]) == (409, "ChainFork")
    assert live.count(OrgForkRow) == 1
    after = _rotation(org, orglog.follow(root, [honest]))
    frozen = live.http.post("/v1/org/statements", content=after)
    assert (frozen.status_code, frozen.json()["error"]) == (409, "ChainFork")
    assert "forks at statement 1" in frozen.json()["message"]
    assert live.count(OrgStatementRow) == 1


def test_a_statement_by_another_key_is_refused_and_not_kept_as_a_fork(live: Live, org: Org) -> None:
    thief = crypto.SigningPair.generate()
    forged_root = OrgState.root(thief.public.hex(), org.read.public.hex(), "00" * 32)
    forged = orglog.sign(
        thief,
        forged_root,
        orglog.READ_KEY,
        {"epoch": 2, "read_key": crypto.BoxPair.generate().public.hex()},
        time_ms=NOW,
    )
    answer = live.http.post("/v1/org/statements", content=forged)
    assert (answer.status_code, answer.json()["error"]) == (400, "SignatureInvalid")
    assert live.http.post("/v1/org/statements", content=_rotation(org, _root(org, live))).is_success
    again = live.http.post("/v1/org/statements", content=forged)
    assert (again.status_code, again.json()["error"]) == (400, "SignatureInvalid")
    assert (live.count(OrgStatementRow), live.count(OrgForkRow)) == (1, 0)
    for junk in (b"{}", b"not json", b'{"signature":"00","statement":{"kind":[]}}'):
        answer = live.http.post("/v1/org/statements", content=junk)
        assert answer.status_code == 400, (junk, answer.text)


def test_two_statements_at_one_seq_at_once_keep_one_and_one_fork(live: Live, org: Org) -> None:
    root = _root(org, live)
    both = [_rotation(org, root, NOW + n) for n in range(2)]
    answers: list[int] = []

    def send(raw: bytes) -> None:
        with httpx.Client(base_url=str(live.http.base_url), timeout=10) as http:
            answers.append(http.post("/v1/org/statements", content=raw).status_code)

    threads = [threading.Thread(target=send, args=(raw,)) for raw in both]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [200, 409]
    assert (live.count(OrgStatementRow), live.count(OrgForkRow)) == (1, 1)


def test_a_viewer_signs_nothing_and_a_device_adds_no_readers(live: Live, org: Org) -> None:
    viewer = _enrol(live, org, role="viewer")
    refused = live.send(viewer.batch(viewer.record()))
    assert (refused.status_code, refused.json()["error"]) == (403, "AccessDenied")
    device = _enrol(live, org)
    assert live.send(device.batch(device.record())).status_code == 200


def test_bundles_are_kept_for_members_only_and_served_to_them_alone(live: Live, org: Org) -> None:
    state = _root(org, live)
    analyst, device = _enrol(live, org, role="analyst"), _enrol(live, org)
    secrets = [bundle.ReadSecret(1, org.read)]

    def made(
        member: Device, box: crypto.BoxPair | None = None, by: crypto.SigningPair = org.admin
    ) -> bytes:
        signed_as = OrgState.root(by.public.hex(), state.read_key.key, state.server_key)
        return bundle.make(
            by,
            signed_as,
            member=member.signer.public.hex(),
            box_key=(box or member.box).public.hex(),
            secrets=secrets,
        )

    def put(member: Device, body: bytes, by: crypto.SigningPair = org.admin) -> httpx.Response:
        path = f"/v1/admin/bundles/{member.signer.public.hex()}"
        headers = httpsig.sign(by, "PUT", path, body, NOW // 1000)
        return live.http.put(path, content=body, headers=headers)

    assert _signed_get(live, analyst.signer, "/v1/org/bundle").status_code == 404
    assert put(analyst, made(analyst)).status_code == 200
    served = _signed_get(live, analyst.signer, "/v1/org/bundle")
    assert served.status_code == 200
    opened = bundle.open_bundle(served.content, state=state, member=analyst.signer, box=analyst.box)
    assert opened[0].pair.public == org.read.public
    assert put(device, made(device)).status_code == 404  # a device is no member
    other_box = put(analyst, made(analyst, crypto.BoxPair.generate()))
    assert other_box.status_code == 403
    thief = crypto.SigningPair.generate()
    assert put(analyst, made(analyst, by=thief), by=thief).status_code == 403  # not the admin
    forged = put(analyst, made(analyst, by=thief))  # the admin's request, a stranger's bundle
    assert (forged.status_code, forged.json()["error"]) == (400, "SignatureInvalid")
    assert live.count(MemberBundle) == 1
    assert _signed_get(live, device.signer, "/v1/org/bundle").status_code == 404
    # enrolled with a role, not yet certified: neither the registry nor the whole feed
    for path in ("/v1/admin/devices", "/v1/feed/0"):
        early = _signed_get(live, analyst.signer, path)
        assert (early.status_code, early.json()["error"]) == (403, "AccessDenied"), path
        assert "not certified" in early.json()["message"]
    fields = {
        "box_key": analyst.box.public.hex(),
        "member_key": analyst.signer.public.hex(),
        "name": "Amal",
        "role": "analyst",
    }
    member = orglog.sign(org.admin, state, orglog.MEMBER, fields, time_ms=NOW)
    assert live.http.post("/v1/org/statements", content=member).status_code == 200
    assert _signed_get(live, analyst.signer, "/v1/feed/0").status_code == 200
    listed = _signed_get(live, analyst.signer, "/v1/admin/devices")
    assert listed.status_code == 200
    assert {row["role"] for row in listed.json()} == {"analyst", "device"}
    assert _signed_get(live, device.signer, "/v1/admin/devices").status_code == 403
