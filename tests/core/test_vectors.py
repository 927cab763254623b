"""Known-answer tests: the committed vectors in tests/vectors/ must be reproduced exactly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fieldsync.core import batch as batch_format
from fieldsync.core import crypto, encoding, invite, receipt
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
