"""Known-answer tests of the organisation's log and of a key bundle (tests/vectors/org-v1.json,
made by scripts/make_vectors.py): every statement is signed again from its seed and must come
out byte for byte; the stored bytes must verify and follow to the state the vector writes by
hand; the stored bundle must open to the read keys it was made of; each refusal must be the
error class the vector names. The labels, the id and the signatures are also checked by hand
(hashlib, labels spelled here, canonical JSON from ``json``), as another implementation would
read docs/format.md."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from fieldsync.core import bundle, crypto, encoding, invite, orglog
from fieldsync.core.orglog import OrgState, RolledBack
from fieldsync.errors import IntegrityError, MalformedData, SignatureInvalid

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
CASES: list[dict[str, Any]] = json.loads((VECTORS / "org-v1.json").read_text(encoding="utf-8"))
ROOT_CASE = next(c for c in CASES if c["what"] == "root")
STATEMENTS = [c for c in CASES if c["what"] == "statement"]
STATE = next(c for c in CASES if c["what"] == "state")
BUNDLE = next(c for c in CASES if c["what"] == "bundle")
REFUSED = [c for c in CASES if c["what"] == "refused"]
INVITE = next(c for c in CASES if c["what"] == "invite")
OFFER = next(c for c in CASES if c["what"] == "receipt-key offer")
ERRORS: dict[str, type[IntegrityError]] = {
    "SignatureInvalid": SignatureInvalid,
    "MalformedData": MalformedData,
    "RolledBack": RolledBack,
}
STATEMENT_ID_LABEL = b"fieldsync/org-statement-id/v1"  # written here, not read from crypto
STATEMENT_LABEL = b"fieldsync/org-statement/v1"
BUNDLE_LABEL = b"fieldsync/key-bundle/v1"
INVITE_LABEL = b"fieldsync/invite/v1"
OFFER_LABEL = b"fieldsync/next-receipt-key/v1"


def verified_by_hand(signer: str, label: bytes, signed: str, signature: str) -> None:
    """Ed25519 over ``label || 0x00 || signed``: crypto.verify is the one way to PyNaCl, so
    its labelling is pinned here first."""
    message = signed.encode("utf-8")
    assert crypto.labelled(label, message) == label + b"\x00" + message
    crypto.verify(bytes.fromhex(signer), label, message, bytes.fromhex(signature), what="a vector")


def root() -> OrgState:
    return OrgState.root(ROOT_CASE["admin_key"], ROOT_CASE["read_key"], ROOT_CASE["server_key"])


def stored() -> list[bytes]:
    return [case["statement"].encode("utf-8") for case in STATEMENTS]


def described(state: OrgState) -> dict[str, Any]:
    """An ``OrgState`` as org-v1.json writes it (read keys as [epoch, key])."""
    return {
        "root_admin_key": state.root_admin_key,
        "admin_key": state.admin_key,
        "retired": list(state.retired),
        "read_keys": [[k.epoch, k.key] for k in state.read_keys],
        "server_key": state.server_key,
        "server_keys": list(state.server_keys),
        "members": [
            {
                "key": m.key,
                "box_key": m.box_key,
                "role": m.role,
                "name": m.name,
                "revoked": m.revoked,
            }
            for m in state.members
        ],
        "analysts": sorted(state.analysts),
        "seq": state.seq,
        "head": state.head,
        "forks": [{"seq": f.seq, "signer": f.signer, "ids": list(f.ids)} for f in state.forks],
    }


def test_the_root_keys_come_from_their_seeds() -> None:
    assert (
        crypto.SigningPair(bytes.fromhex(ROOT_CASE["admin_seed"])).public.hex()
        == (ROOT_CASE["admin_key"])
    )
    assert (
        crypto.BoxPair(bytes.fromhex(ROOT_CASE["read_secret"])).public.hex()
        == (ROOT_CASE["read_key"])
    )
    assert (
        crypto.SigningPair(bytes.fromhex(ROOT_CASE["server_seed"])).public.hex()
        == (ROOT_CASE["server_key"])
    )


def test_the_vectors_hold_one_statement_of_each_kind_in_the_order_the_brief_gives() -> None:
    kinds = [case["kind"] for case in STATEMENTS]
    order = ["read-key", "member", "member", "revoke", "receipt-key", "succession", "read-key"]
    assert kinds == order
    assert set(kinds) == set(orglog.KIND_FIELDS)


@pytest.mark.parametrize("case", STATEMENTS, ids=lambda c: c["description"])
def test_each_statement_is_signed_again_byte_for_byte(case: dict[str, Any]) -> None:
    before = orglog.follow(root(), stored()[: case["seq"] - 1])
    raw = orglog.sign(
        crypto.SigningPair(bytes.fromhex(case["signing_seed"])),
        before,
        case["kind"],
        case["fields"],
        time_ms=case["time_ms"],
    )
    assert raw.decode("utf-8") == case["statement"]
    assert orglog.statement_id(raw) == case["id"]
    parsed = orglog.parse(raw)
    assert (parsed.seq, parsed.prev, parsed.kind, parsed.fields) == (
        case["seq"],
        case["prev"],
        case["kind"],
        case["fields"],
    )


@pytest.mark.parametrize("case", STATEMENTS, ids=lambda c: c["description"])
def test_each_stored_statement_reads_by_hand_as_docs_format_says(case: dict[str, Any]) -> None:
    """Another reader's view: the id is BLAKE2b-256 over the label, a zero byte and the whole
    document; the signature is Ed25519 by ``signer`` over the label, a zero byte and the
    canonical ``statement`` object; the document is exactly the two keys."""
    raw = case["statement"].encode("utf-8")
    assert (
        hashlib.blake2b(STATEMENT_ID_LABEL + b"\x00" + raw, digest_size=32).hexdigest()
        == case["id"]
    )
    doc = json.loads(raw)
    assert sorted(doc) == ["signature", "statement"]
    body = doc["statement"]
    signed = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    assert raw == ('{"signature":"' + doc["signature"] + '","statement":' + signed + "}").encode(
        "utf-8"
    )
    verified_by_hand(body["signer"], STATEMENT_LABEL, signed, doc["signature"])
    common = {"format", "kind", "prev", "seq", "signer", "time_ms", "version"}
    assert {k: v for k, v in body.items() if k not in common} == case["fields"]
    assert (body["format"], body["version"]) == ("fieldsync/org-statement", 1)


def test_the_stored_log_follows_to_the_state_written_by_hand() -> None:
    state = orglog.follow(root(), stored())
    assert described(state) == STATE["expect"]
    assert state.head == STATEMENTS[-1]["id"]
    # read again by a reader that followed it all before: nothing rolled back
    again = orglog.follow(root(), stored(), known=(7, STATEMENTS[-1]["id"]))
    assert described(again) == STATE["expect"]


def test_the_stored_bundle_opens_to_the_read_keys_it_was_made_of() -> None:
    raw = BUNDLE["bundle"].encode("utf-8")
    doc = encoding.decode(raw)
    assert {k: v for k, v in doc["bundle"].items() if k != "sealed"} == BUNDLE["body"]
    state = orglog.follow(root(), stored())
    opened = bundle.open_bundle(
        raw,
        state=state,
        member=crypto.SigningPair(bytes.fromhex(BUNDLE["member_seed"])),
        box=crypto.BoxPair(bytes.fromhex(BUNDLE["box_secret"])),
    )
    assert [[s.epoch, s.pair.secret.hex()] for s in opened] == BUNDLE["read_secrets"]
    assert [s.pair.public.hex() for s in opened] == [k for _, k in STATE["expect"]["read_keys"]]


def test_the_stored_bundle_reads_by_hand_as_docs_format_says() -> None:
    raw = BUNDLE["bundle"].encode("utf-8")
    doc = json.loads(raw)
    body = doc["bundle"]
    signed = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    verified_by_hand(BUNDLE["body"]["signer"], BUNDLE_LABEL, signed, doc["signature"])
    sealed = base64.b64decode(body["sealed"], validate=True)
    box = crypto.BoxPair(bytes.fromhex(BUNDLE["box_secret"]))
    inner = box.open_sealed(sealed, what="the vector's bundle")
    keys = [{"epoch": e, "secret": s} for e, s in BUNDLE["read_secrets"]]
    assert inner == json.dumps({"read_keys": keys}, separators=(",", ":")).encode("ascii")
    assert len(sealed) == 32 + 16 + len(inner)  # ephemeral key, tag, the canonical JSON


def test_a_bundle_made_again_from_the_seeds_has_the_same_signed_fields() -> None:
    """Only ``sealed`` differs (libsodium draws the sealed box's ephemeral key itself)."""
    state = orglog.follow(root(), stored())
    made = bundle.make(
        crypto.SigningPair(bytes.fromhex(BUNDLE["admin_seed"])),
        state,
        member=BUNDLE["body"]["member"],
        box_key=BUNDLE["body"]["box_key"],
        secrets=[
            bundle.ReadSecret(e, crypto.BoxPair(bytes.fromhex(s)))
            for e, s in BUNDLE["read_secrets"]
        ],
    )
    body = encoding.decode(made)["bundle"]
    assert {k: v for k, v in body.items() if k != "sealed"} == BUNDLE["body"]
    assert made != BUNDLE["bundle"].encode("utf-8")


@pytest.mark.parametrize("case", REFUSED, ids=lambda c: c["description"])
def test_each_refusal_is_the_one_the_vector_names(case: dict[str, Any]) -> None:
    log = [raw.encode("utf-8") for raw in case["log"]]
    forks = [raw.encode("utf-8") for raw in case["forks"]]
    known = tuple(case["known"]) if case["known"] is not None else None
    expect = case["expect"]
    if "error" in expect:
        with pytest.raises(ERRORS[expect["error"]], match=expect["match"]) as raised:
            orglog.follow(root(), log, forks=forks, known=known)  # type: ignore[arg-type]
        assert type(raised.value) is ERRORS[expect["error"]]
        return
    state = orglog.follow(root(), log, forks=forks, known=known)  # type: ignore[arg-type]
    assert [(f.seq, f.signer, list(f.ids)) for f in state.forks] == [
        (expect["fork"], expect["signer"], expect["ids"])
    ]
    assert state.seq == expect["followed"]
    assert state.admin_key == expect["admin_key"]


def test_a_fork_signed_by_a_key_not_in_force_is_ignored() -> None:
    case = next(c for c in CASES if c["what"] == "ignored")
    forks = [raw.encode("utf-8") for raw in case["forks"]]
    state = orglog.follow(root(), stored(), forks=forks)
    assert (state.seq, list(state.forks)) == (case["expect"]["followed"], case["expect"]["forks"])
    assert described(state) == STATE["expect"]


def test_the_refusals_name_each_error_class_and_a_fork() -> None:
    named = {c["expect"].get("error") for c in REFUSED}
    assert named >= set(ERRORS)
    assert any("fork" in c["expect"] for c in REFUSED)


# --- Checks found missing while writing these vectors (each failed before its fix) --------


def _signed(signer: crypto.SigningPair, body: dict[str, Any]) -> bytes:
    signature = signer.sign(crypto.LABEL_ORG_STATEMENT, encoding.encode(body))
    return encoding.encode({"signature": signature.hex(), "statement": body})


ADMIN = crypto.SigningPair(bytes.fromhex(ROOT_CASE["admin_seed"]))


@pytest.mark.parametrize("kind", [[], {}], ids=["a list", "an object"])
def test_a_statement_whose_kind_is_not_a_string_is_malformed(kind: object) -> None:
    body = {
        "format": "fieldsync/org-statement",
        "kind": kind,
        "prev": None,
        "seq": 1,
        "signer": ROOT_CASE["admin_key"],
        "time_ms": 1,
        "version": 1,
    }
    raw = _signed(ADMIN, body)
    with pytest.raises(MalformedData):
        orglog.parse(raw)
    assert described(orglog.follow(root(), stored(), forks=[raw])) == STATE["expect"]


def test_an_unsigned_fork_of_an_unknown_kind_is_ignored() -> None:
    body = {
        "format": "fieldsync/org-statement",
        "kind": "delegate",
        "prev": None,
        "seq": 1,
        "signer": ROOT_CASE["admin_key"],
        "time_ms": 1,
        "version": 1,
    }
    noise = encoding.encode({"signature": "00" * 64, "statement": body})
    assert described(orglog.follow(root(), stored(), forks=[noise])) == STATE["expect"]


def test_a_retired_keys_fork_does_not_undo_its_succession() -> None:
    stolen = _signed(
        ADMIN,
        {
            "format": "fieldsync/org-statement",
            "kind": "receipt-key",
            "prev": None,
            "seq": 1,
            "server_key": crypto.SigningPair(bytes([0x66]) * 32).public.hex(),
            "signer": ROOT_CASE["admin_key"],
            "time_ms": 1,
            "version": 1,
        },
    )
    try:
        state = orglog.follow(root(), stored(), forks=[stolen], known=(7, STATEMENTS[-1]["id"]))
    except IntegrityError:
        return  # refusing the log whole would do too
    assert state.admin_key == STATE["expect"]["admin_key"]  # the successor, still
    assert state.read_key.epoch == 3  # nothing new is wrapped for read key 1 or 2


def test_a_statement_whose_version_is_true_is_malformed() -> None:
    case = STATEMENTS[0]
    body = json.loads(case["statement"])["statement"] | {"version": True}
    with pytest.raises(MalformedData):
        orglog.parse(_signed(ADMIN, body))


def test_an_invite_signed_by_the_successor_names_the_first_key_and_verifies_by_hand() -> None:
    shown = invite.read(INVITE["text"], now_ms=None)
    assert (shown.admin_key, shown.signer, shown.signed_by) == (
        INVITE["admin_key"],
        INVITE["signer"],
        INVITE["signer"],
    )
    assert (shown.org_seq, shown.org_head) == (7, STATEMENTS[6]["id"])
    payload, signature = INVITE["text"].removeprefix("fieldsync-invite-v1:").split(".")
    pad = lambda part: base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))  # noqa: E731
    crypto.verify(
        bytes.fromhex(INVITE["signer"]), INVITE_LABEL, pad(payload), pad(signature), what="a vector"
    )
    signer = crypto.SigningPair(bytes.fromhex(INVITE["signing_seed"]))
    assert signer.public.hex() == INVITE["signer"]
    # the successor is the admin key in force after statement 6, and the retired key not
    state = orglog.follow(root(), stored())
    assert shown.signed_by == state.admin_key and ROOT_CASE["admin_key"] in state.retired


def test_the_receipt_key_offer_is_signed_by_the_key_in_force() -> None:
    in_force = orglog.follow(root(), stored()).server_key
    key = crypto.SigningPair(bytes.fromhex(OFFER["signing_seed"]))
    assert key.public.hex() == in_force
    offered = bytes.fromhex(OFFER["next_receipt_key"])
    assert key.sign(crypto.LABEL_NEXT_RECEIPT_KEY, offered).hex() == OFFER["proof"]
    assert (
        crypto.labelled(crypto.LABEL_NEXT_RECEIPT_KEY, offered) == OFFER_LABEL + b"\x00" + offered
    )
    crypto.verify(
        bytes.fromhex(in_force), OFFER_LABEL, offered, bytes.fromhex(OFFER["proof"]), what="offer"
    )
