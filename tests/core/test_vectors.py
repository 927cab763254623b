"""Known-answer tests: the committed vectors in tests/vectors/ must be reproduced exactly."""

from __future__ import annotations

import dataclasses
import enum
import json
from pathlib import Path
from typing import Any

import pytest

from fieldsync.core import admission, crypto, encoding, invite, pulled, receipt
from fieldsync.core import batch as batch_format
from fieldsync.core import entry as entry_format
from fieldsync.core.clock import HLC
from fieldsync.errors import MalformedData, SignatureInvalid

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def load(name: str) -> list[dict[str, Any]]:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", load("entry-v1.json"), ids=lambda c: c["description"])
def test_entry_vectors(case: dict[str, Any]) -> None:
    raw = bytes.fromhex(case["entry"])
    if case["expect"] == "refused: signature":
        with pytest.raises(SignatureInvalid):
            entry_format.parse(raw)
        return
    if case["expect"] == "refused: malformed":
        with pytest.raises(MalformedData):
            entry_format.parse(raw)
        return
    sealed, _ = entry_format.seal(
        crypto.SigningPair(bytes.fromhex(case["signing_seed"])),
        seq=case["seq"],
        prev=case["prev"],
        record=case["record"],
        parents=case["parents"],
        hlc=HLC.from_json(case["hlc"]),
        body=case["body"].encode("utf-8"),
        content_key=bytes.fromhex(case["content_key"]),
        nonce=bytes.fromhex(case["nonce"]),
    )
    assert sealed.raw == raw
    assert sealed.id == case["entry_id"]
    assert encoding.encode(sealed.header.to_json()).decode() == case["header"]
    assert entry_format.parse(raw).open(bytes.fromhex(case["content_key"])) == case["body"].encode()


@pytest.mark.parametrize("case", load("primitives-v1.json"), ids=lambda c: c["what"])
def test_primitive_vectors(case: dict[str, Any]) -> None:
    what = case["what"]
    if what == "commitment":
        got = crypto.commitment(bytes.fromhex(case["key"]), bytes.fromhex(case["plaintext"])).hex()
    elif what == "hash32":
        got = crypto.hash32(case["label"].encode(), bytes.fromhex(case["data"])).hex()
    elif what == "derive_key":
        got = crypto.derive_key(bytes.fromhex(case["key"]), case["label"].encode()).hex()
    else:
        got = encoding.encode(case["value"]).decode("utf-8")
    assert got == case["expect"]


SYNC = {case["what"]: case for case in load("sync-v1.json")}


def test_invite_vector() -> None:
    case = SYNC["invite"]
    admin = crypto.SigningPair(bytes.fromhex(case["admin_seed"]))
    read = invite.read(case["text"], now_ms=case["now_ms"])
    again = invite.issue(
        admin,
        name=read.name,
        server=read.server,
        server_key=bytes.fromhex(read.server_key),
        org_read_key=bytes.fromhex(read.org_read_key),
        expires_ms=read.expires_ms,
        token=bytes.fromhex(case["token"]),
    )
    assert again == case["text"]


def test_batch_vector() -> None:
    case = SYNC["batch"]
    entries = [entry_format.parse(bytes.fromhex(e)) for e in case["entries"]]
    built = batch_format.build(
        crypto.SigningPair(bytes.fromhex(case["signing_seed"])),
        entries,
        [bytes.fromhex(w) for w in case["wraps"]],
        [tuple(b) for b in case["blobs"]],
        [tuple((r, bytes.fromhex(w)) for r, w in more) for more in case["readers"]],
    )
    assert built.raw.hex() == case["batch"]
    assert built.id == case["batch_id"] == batch_format.parse(built.raw).id


def test_receipt_vector() -> None:
    case = SYNC["receipt"]
    server = crypto.SigningPair(bytes.fromhex(case["server_seed"]))
    got = receipt.verify(case["receipt"].encode(), pinned_server_key=server.public)
    assert got.batch == SYNC["batch"]["batch_id"]
    again = receipt.sign(
        server,
        device=got.device,
        last_seq=got.last_seq,
        head=got.head,
        batch=got.batch,
        time_ms=got.time_ms,
    )
    assert again.decode() == case["receipt"]


# The decisions (core/admission.py, core/pulled.py): verdicts written by hand in
# scripts/make_vectors.py, each case's expectation in the vector, never computed.
DECISIONS = load("decisions-v1.json")
VERDICT_NAMES = {
    admission.Accept: "accept",
    admission.Replay: "replay",
    admission.Gap: "gap",
    admission.Fork: "fork",
    admission.Broken: "broken",
    admission.MissingParents: "missing",
    admission.ForeignParent: "foreign",
    pulled.Skip: "skip",
    pulled.Held: "held",
    pulled.Unchanged: "unchanged",
    pulled.SetAside: "set aside",
    pulled.Refuse: "refuse",
    pulled.Open: "open",
}


def described(verdict: object) -> dict[str, Any]:
    """A verdict as the vectors write it: its name and its fields (an enum by its value)."""
    if verdict is None:
        return {"verdict": "none"}
    assert dataclasses.is_dataclass(verdict) and not isinstance(verdict, type)
    fields = {f.name: getattr(verdict, f.name) for f in dataclasses.fields(verdict)}
    shown = {k: v.value if isinstance(v, enum.Enum) else v for k, v in fields.items()}
    return {"verdict": VERDICT_NAMES[type(verdict)]} | {
        k: list(v) if isinstance(v, tuple) else v for k, v in shown.items()
    }


def links_of(case: dict[str, Any]) -> list[admission.Link]:
    return [
        admission.Link(
            link["seq"], link["prev"], link["id"], link["record"], tuple(link["parents"])
        )
        for link in case["links"]
    ]


@dataclasses.dataclass(frozen=True)
class Aside:
    record: str
    kept: bool
    wrap: str


@dataclasses.dataclass(frozen=True)
class Known:
    """What a pull knows, read from a vector (every field empty unless the case says)."""

    trusted: frozenset[str]
    refused: dict[str, str]
    forgotten: frozenset[str]
    held: dict[str, tuple[str, str, int]]
    taken: frozenset[tuple[str, int]]
    seen: dict[str, str]
    places: frozenset[tuple[str, int]]
    aside: dict[str, Aside]
    aside_at: dict[tuple[str, int], str]

    @classmethod
    def from_json(cls, known: dict[str, Any]) -> Known:
        return cls(
            trusted=frozenset(known.get("trusted", [])),
            refused=dict(known.get("refused", {})),
            forgotten=frozenset(known.get("forgotten", [])),
            held={k: (v[0], v[1], v[2]) for k, v in known.get("held", {}).items()},
            taken=frozenset((a, s) for a, s in known.get("taken", [])),
            seen=dict(known.get("seen", {})),
            places=frozenset((a, s) for a, s in known.get("places", [])),
            aside={k: Aside(**v) for k, v in known.get("aside", {}).items()},
            aside_at={(a, s): v for a, s, v in known.get("aside_at", [])},
        )


@pytest.mark.parametrize("case", DECISIONS, ids=lambda c: f"{c['decision']}: {c['description']}")
def test_decision_vectors(case: dict[str, Any]) -> None:
    decision = case["decision"]
    if decision == "chain":
        chain = admission.Chain(case["chain"]["last_seq"], case["chain"]["head"])
        stored = {int(seq): id_ for seq, id_ in case["stored"].items()}
        got: object = described(admission.judge(chain, links_of(case), stored))
    elif decision == "parents":
        links = links_of(case)
        assert sorted(admission.parents_wanted(links, case["fresh"])) == case["wanted"]
        got = described(admission.parents(links, case["fresh"], case["stored"]))
    elif decision == "pull":
        v = case["version"]
        served = pulled.Served(
            v["id"], v["author"], v["seq"], v["record"], tuple(v["parents"]), v["wrap"]
        )
        known = Known.from_json(case["known"])
        got = described(pulled.judge(served, known, again=case["again"]))
    elif decision == "waits":
        got = pulled.waits_on_set_aside(case["parents"], Known.from_json(case["known"]))
    else:
        assert decision == "settled"
        got = pulled.settled(case["id"], case["record"], Known.from_json(case["known"]))
    assert got == case["expect"]


def test_the_decision_vectors_cover_every_verdict() -> None:
    """Each verdict, and each reason for one, is pinned by at least one case."""
    named = {case["expect"]["verdict"] for case in DECISIONS if isinstance(case["expect"], dict)}
    assert named >= set(VERDICT_NAMES.values()) | {"none"}
    reasons = {case["expect"].get("why") for case in DECISIONS if isinstance(case["expect"], dict)}
    assert reasons >= {r.value for r in pulled.Reason} | {b.value for b in pulled.Breach}
