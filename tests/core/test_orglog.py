"""The organisation's log: signed statements followed from the root, rollbacks and forks
refused (core/orglog.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fieldsync.core import crypto, encoding, orglog
from fieldsync.core.orglog import OrgState, RolledBack
from fieldsync.errors import MalformedData, SignatureInvalid, UnsupportedFormat

ADMIN = crypto.SigningPair(bytes(range(32)))
READ = crypto.BoxPair(bytes(range(1, 33)))
SERVER = crypto.SigningPair(bytes(range(2, 34)))
ROOT = OrgState.root(ADMIN.public.hex(), READ.public.hex(), SERVER.public.hex())


def _rotate(state: OrgState, signer: crypto.SigningPair = ADMIN) -> tuple[bytes, OrgState]:
    key = crypto.BoxPair.generate().public.hex()
    fields = {"epoch": state.read_key.epoch + 1, "read_key": key}
    raw = orglog.sign(signer, state, orglog.READ_KEY, fields, time_ms=1_000 + state.seq)
    return raw, orglog.apply(state, orglog.parse(raw))


def _log(rotations: int) -> tuple[list[bytes], OrgState]:
    state, log = ROOT, []
    for _ in range(rotations):
        raw, state = _rotate(state)
        log.append(raw)
    return log, state


def test_a_reader_follows_each_rotation_and_wraps_for_the_newest_key() -> None:
    log, expected = _log(3)
    state = orglog.follow(ROOT, log)
    assert state == expected
    assert [k.epoch for k in state.read_keys] == [1, 2, 3, 4]
    assert state.read_keys[0].key == READ.public.hex()
    assert state.read_key == expected.read_keys[-1]


def test_an_empty_log_is_the_root() -> None:
    assert orglog.follow(ROOT, []) == ROOT


def test_a_statement_signed_by_another_key_is_refused() -> None:
    thief = crypto.SigningPair.generate()
    forged = OrgState.root(thief.public.hex(), READ.public.hex(), SERVER.public.hex())
    raw, _ = _rotate(forged, thief)
    with pytest.raises(SignatureInvalid, match="not the organisation's"):
        orglog.follow(ROOT, [raw])


def test_an_altered_statement_is_refused() -> None:
    log, _ = _log(1)
    doc = encoding.decode(log[0], what="test")
    doc["statement"]["read_key"] = crypto.BoxPair.generate().public.hex()
    with pytest.raises(SignatureInvalid):
        orglog.follow(ROOT, [encoding.encode(doc)])


def test_a_statement_left_out_reordered_or_replayed_breaks_the_chain() -> None:
    log, _ = _log(3)
    for broken in ([log[0], log[2]], [log[1], log[0], log[2]], [log[0], log[0]], log[1:]):
        with pytest.raises(MalformedData, match="does not follow"):
            orglog.follow(ROOT, broken)


def test_a_log_older_than_the_one_followed_is_refused_as_rolled_back() -> None:
    log, state = _log(2)
    with pytest.raises(RolledBack, match="older than the 2"):
        orglog.follow(ROOT, log[:1], known=(state.seq, state.head or ""))
    with pytest.raises(RolledBack, match="older"):
        orglog.follow(ROOT, [], known=(state.seq, state.head or ""))
    assert orglog.follow(ROOT, log, known=(1, orglog.statement_id(log[0]))) == state


def test_another_statement_at_a_seq_followed_is_refused() -> None:
    _, state = _log(1)
    other, _ = _rotate(ROOT)  # the same key, the same seq, another key announced
    with pytest.raises(RolledBack, match="another statement 1"):
        orglog.follow(ROOT, [other], known=(state.seq, state.head or ""))


def test_a_fork_signed_by_the_key_in_force_stops_the_log_before_it_and_is_named() -> None:
    log, _ = _log(3)
    state_at_1 = orglog.follow(ROOT, log[:1])
    fork, _ = _rotate(state_at_1)  # a second statement 2, by the admin key
    state = orglog.follow(ROOT, log, forks=[fork])
    assert state.seq == 1
    assert state.read_key.epoch == 2
    assert [f.seq for f in state.forks] == [2]
    assert "signed two different statements at seq 2" in state.forks[0].message


def test_a_fork_the_server_made_up_is_ignored() -> None:
    log, expected = _log(2)
    thief = crypto.SigningPair.generate()
    forged_root = OrgState.root(thief.public.hex(), READ.public.hex(), SERVER.public.hex())
    noise, _ = _rotate(forged_root, thief)
    state = orglog.follow(ROOT, log, forks=[noise, b"not json", log[0]])
    assert state == expected


def test_a_stolen_key_cannot_take_over_by_succession_quietly() -> None:
    new_admin, thief_admin = crypto.SigningPair.generate(), crypto.SigningPair.generate()
    honest = orglog.sign(
        ADMIN, ROOT, orglog.SUCCESSION, {"admin_key": new_admin.public.hex()}, time_ms=5
    )
    stolen = orglog.sign(
        ADMIN, ROOT, orglog.SUCCESSION, {"admin_key": thief_admin.public.hex()}, time_ms=6
    )
    state = orglog.follow(ROOT, [stolen], forks=[honest])
    assert state.admin_key == ADMIN.public.hex()  # neither successor is followed
    assert state.forks and state.forks[0].seq == 1


def test_after_a_succession_only_the_new_key_signs() -> None:
    new_admin = crypto.SigningPair.generate()
    raw = orglog.sign(
        ADMIN, ROOT, orglog.SUCCESSION, {"admin_key": new_admin.public.hex()}, time_ms=1
    )
    state = orglog.follow(ROOT, [raw])
    assert state.admin_key == new_admin.public.hex()
    assert state.retired == (ADMIN.public.hex(),)
    body = {"epoch": 2, "read_key": crypto.BoxPair.generate().public.hex()}
    with pytest.raises(SignatureInvalid, match="not the organisation's admin key in force"):
        orglog.sign(ADMIN, state, orglog.READ_KEY, body, time_ms=2)
    forged = _forge(ADMIN, state, orglog.READ_KEY, body)
    with pytest.raises(SignatureInvalid, match="retired admin key"):
        orglog.follow(ROOT, [raw, forged])
    good = orglog.sign(new_admin, state, orglog.READ_KEY, body, time_ms=2)
    assert orglog.follow(ROOT, [raw, good]).read_key.epoch == 2


def _forge(
    signer: crypto.SigningPair, state: OrgState, kind: str, fields: dict[str, object]
) -> bytes:
    """A statement as a retired key would sign it, the way ``sign`` refuses to."""
    body = {
        "format": orglog.FORMAT,
        "kind": kind,
        "prev": state.head,
        "seq": state.seq + 1,
        "signer": signer.public.hex(),
        "time_ms": 3,
        "version": 1,
    } | fields
    sig = signer.sign(crypto.LABEL_ORG_STATEMENT, encoding.encode(body))
    return encoding.encode({"signature": sig.hex(), "statement": body})


@pytest.mark.parametrize(
    "change",
    [
        {"epoch": 3},  # skips epoch 2
        {"epoch": 1},
        {"read_key": READ.public.hex()},  # the root's key again
        {"read_key": "00" * 31 + "80"},  # not canonical X25519
        {"extra": 1},
        {"seq": 0},
        {"time_ms": -1},
        {"time_ms": True},
    ],
)
def test_a_statement_with_bad_values_is_refused(change: dict[str, object]) -> None:
    fields: dict[str, object] = {"epoch": 2, "read_key": crypto.BoxPair.generate().public.hex()}
    body = (
        {
            "format": orglog.FORMAT,
            "kind": orglog.READ_KEY,
            "prev": None,
            "seq": 1,
            "signer": ADMIN.public.hex(),
            "time_ms": 3,
            "version": 1,
        }
        | fields
        | change
    )
    sig = ADMIN.sign(crypto.LABEL_ORG_STATEMENT, encoding.encode(body))
    raw = encoding.encode({"signature": sig.hex(), "statement": body})
    with pytest.raises(MalformedData):
        orglog.follow(ROOT, [raw])


def test_a_statement_of_a_newer_fieldsync_is_refused_in_words() -> None:
    body = {
        "format": orglog.FORMAT,
        "kind": "delegate",
        "prev": None,
        "seq": 1,
        "signer": ADMIN.public.hex(),
        "time_ms": 3,
        "version": 1,
    }
    sig = ADMIN.sign(crypto.LABEL_ORG_STATEMENT, encoding.encode(body))
    with pytest.raises(UnsupportedFormat, match="newer fieldsync"):
        orglog.parse(encoding.encode({"signature": sig.hex(), "statement": body}))


def _member(state: OrgState, role: str = orglog.ANALYST, name: str = "Amal") -> bytes:
    fields = {
        "box_key": crypto.BoxPair.generate().public.hex(),
        "member_key": crypto.SigningPair.generate().public.hex(),
        "name": name,
        "role": role,
    }
    return orglog.sign(ADMIN, state, orglog.MEMBER, fields, time_ms=7)


def test_members_are_certified_then_revoked_and_only_analysts_are_trusted_authors() -> None:
    analyst = _member(ROOT)
    state = orglog.follow(ROOT, [analyst])
    viewer = _member(state, orglog.VIEWER, "Basel")
    state = orglog.follow(ROOT, [analyst, viewer])
    (amal, basel) = state.members
    assert (amal.role, amal.name, basel.role) == ("analyst", "Amal", "viewer")
    assert state.analysts == {amal.key}
    revoke = orglog.sign(ADMIN, state, orglog.REVOKE, {"member_key": amal.key}, time_ms=8)
    after = orglog.follow(ROOT, [analyst, viewer, revoke])
    assert after.analysts == {amal.key}  # what it signed before stays trusted
    assert after.member(amal.key) is not None and after.member(amal.key).revoked  # type: ignore[union-attr]
    with pytest.raises(MalformedData, match="revokes no member"):
        orglog.sign(ADMIN, after, orglog.REVOKE, {"member_key": amal.key}, time_ms=9)
    again = {"box_key": amal.box_key, "member_key": amal.key, "name": "x", "role": "analyst"}
    with pytest.raises(MalformedData, match="certified before"):
        orglog.sign(ADMIN, after, orglog.MEMBER, again, time_ms=9)


@pytest.mark.parametrize("change", [{"role": "admin"}, {"name": ""}, {"name": "a\x1b[2J"}])
def test_a_member_with_a_forged_role_or_a_bad_name_is_refused(change: dict[str, str]) -> None:
    fields = {
        "box_key": crypto.BoxPair.generate().public.hex(),
        "member_key": crypto.SigningPair.generate().public.hex(),
        "name": "Amal",
        "role": "analyst",
    } | change
    with pytest.raises(MalformedData):
        orglog.sign(ADMIN, ROOT, orglog.MEMBER, fields, time_ms=7)


# --- killing the mutants scripts/mutants found alive ---------------------------------------


def test_a_fork_by_the_successor_just_after_its_succession_is_named() -> None:
    new_admin = crypto.SigningPair.generate()
    succession = orglog.sign(
        ADMIN, ROOT, orglog.SUCCESSION, {"admin_key": new_admin.public.hex()}, time_ms=1
    )
    after = orglog.follow(ROOT, [succession])
    first, _ = _rotate(after, new_admin)
    second, _ = _rotate(after, new_admin)
    state = orglog.follow(ROOT, [succession, first], forks=[second])
    assert [f.seq for f in state.forks] == [2] and state.seq == 1


def test_a_succession_back_to_a_retired_key_is_refused() -> None:
    b = crypto.SigningPair.generate()
    to_b = orglog.sign(ADMIN, ROOT, orglog.SUCCESSION, {"admin_key": b.public.hex()}, time_ms=1)
    state = orglog.follow(ROOT, [to_b])
    with pytest.raises(MalformedData, match="used before"):
        orglog.sign(b, state, orglog.SUCCESSION, {"admin_key": ADMIN.public.hex()}, time_ms=2)


def test_the_edges_of_what_a_statement_may_hold_are_accepted() -> None:
    zero_time = orglog.sign(
        ADMIN,
        ROOT,
        orglog.READ_KEY,
        {"epoch": 2, "read_key": crypto.BoxPair.generate().public.hex()},
        time_ms=0,
    )
    state = orglog.follow(ROOT, [zero_time])
    longest = _member(state, name="n" * orglog.MAX_NAME)
    assert orglog.follow(ROOT, [zero_time, longest]).members[0].name == "n" * orglog.MAX_NAME
    with pytest.raises(MalformedData):
        _member(state, name="n" * (orglog.MAX_NAME + 1))


def test_a_log_longer_than_any_fieldsync_makes_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log, _ = _log(3)
    monkeypatch.setattr(orglog, "MAX_STATEMENTS", 3)
    assert orglog.follow(ROOT, log).seq == 3
    with pytest.raises(MalformedData, match="longer than any"):
        orglog.follow(ROOT, [*log, log[0]])


def test_a_document_without_its_signature_is_malformed_not_an_internal_error() -> None:
    log, _ = _log(1)
    doc = encoding.decode(log[0], what="test")
    for broken in ({"statement": doc["statement"]}, [doc], {"signature": doc["signature"]}):
        with pytest.raises(MalformedData):
            orglog.parse(encoding.encode(broken))


def test_a_receipt_key_the_server_used_before_is_refused() -> None:
    new = crypto.SigningPair.generate().public.hex()
    first = orglog.sign(ADMIN, ROOT, orglog.RECEIPT_KEY, {"server_key": new}, time_ms=1)
    state = orglog.follow(ROOT, [first])
    assert (state.server_key, state.server_keys) == (new, (SERVER.public.hex(),))
    with pytest.raises(MalformedData, match="used before"):
        orglog.sign(
            ADMIN, state, orglog.RECEIPT_KEY, {"server_key": SERVER.public.hex()}, time_ms=2
        )


def test_every_fork_offered_is_weighed_and_they_are_named_in_seq_order() -> None:
    log, _ = _log(2)
    at_1, _ = _rotate(ROOT)
    at_2, _ = _rotate(orglog.follow(ROOT, log[:1]))
    state = orglog.follow(ROOT, log, forks=[b"noise", at_2, log[0], at_1])
    assert [f.seq for f in state.forks] == [1, 2] and state.seq == 0


def test_an_invite_carries_how_far_the_log_was_followed() -> None:
    from fieldsync.core import invite

    args = dict(
        name="laptop",
        server="https://sync.example",
        server_key=SERVER.public,
        org_read_key=READ.public,
        expires_ms=2**40,
    )
    text = invite.issue(ADMIN, **args, org_log=(3, "ab" * 32))  # type: ignore[arg-type]
    shown = invite.read(text, now_ms=1)
    assert (shown.org_seq, shown.org_head) == (3, "ab" * 32)
    assert invite.read(invite.issue(ADMIN, **args), now_ms=1).org_seq is None  # type: ignore[arg-type]
    for bad in ((0, "ab" * 32), (1, "zz")):
        with pytest.raises(MalformedData):
            invite.issue(ADMIN, **args, org_log=bad)  # type: ignore[arg-type]


def _succeed(state: OrgState, signer: crypto.SigningPair, to: crypto.SigningPair) -> bytes:
    fields = {"admin_key": to.public.hex()}
    return orglog.sign(signer, state, orglog.SUCCESSION, fields, time_ms=2_000 + state.seq)


def test_a_retired_keys_fork_below_a_succession_followed_stops_nothing() -> None:
    """Review F2: after a succession made because the old key may have leaked, its holder
    forked the log below the succession and froze the organisation for good. A reader that
    had followed the succession before names such a fork and follows on; a reader that had
    not cannot tell the two apart, and stops (as before)."""
    log, state = _log(2)
    successor = crypto.SigningPair.generate()
    log.append(_succeed(state, ADMIN, successor))
    followed = orglog.follow(ROOT, log)
    raw, after = _rotate(followed, successor)
    log.append(raw)
    rival, _ = _rotate(orglog.follow(ROOT, log[:1]))  # the retired key, at seq 2
    rival_succession = _succeed(orglog.follow(ROOT, log[:2]), ADMIN, crypto.SigningPair.generate())
    for fork in (rival, rival_succession):
        seen = orglog.follow(ROOT, log, forks=[fork], floor=3)
        assert seen == replace(after, forks=seen.forks)  # all four followed
        assert [(f.seq, f.superseded) for f in seen.forks] == [(orglog.parse(fork).seq, True)]
        assert not seen.blocked and "retired admin key" in seen.forks[0].message
        unseen = orglog.follow(ROOT, log, forks=[fork], floor=1)
        assert unseen.blocked and unseen.seq == orglog.parse(fork).seq - 1
    # a rival of the first statement, when that one is the succession
    first = _succeed(ROOT, ADMIN, successor)
    named, _ = _rotate(orglog.follow(ROOT, [first]), successor)
    rival_first = _succeed(ROOT, ADMIN, crypto.SigningPair.generate())
    seen = orglog.follow(ROOT, [first, named], forks=[rival_first], floor=1)
    assert seen.seq == 2 and seen.forks[0].superseded
    # the successor forking after its own succession is a fork like any other
    other, _ = _rotate(orglog.follow(ROOT, log[:3]), successor)
    blocked = orglog.follow(ROOT, log, forks=[other], floor=4)
    assert blocked.blocked and not blocked.forks[0].superseded
