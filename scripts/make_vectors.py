#!/usr/bin/env python3
"""Write the known-answer vectors in tests/vectors/ (run once per format change, then commit).

Every input that is normally random (signing seed, content key, nonce) is pinned here, so the
outputs are exact bytes that any implementation of the format must reproduce.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fieldsync.core import batch as batch_format
from fieldsync.core import bundle, crypto, encoding, invite, orglog, receipt
from fieldsync.core import entry as entry_format
from fieldsync.core.clock import HLC
from fieldsync.core.orglog import OrgState

OUT = Path(__file__).resolve().parents[1] / "tests" / "vectors"
Case = dict[str, Any]


def entry_vectors() -> list[dict[str, object]]:
    signer = crypto.SigningPair(
        bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    )
    body = encoding.encode(
        {
            "answers": {"date": "2024-03-05", "narrative": "قصف المستشفى فجراً"},
            "attachments": [],
            "form": "incident@1",
            "note": None,
        }
    )
    cases = []
    prev = None
    parents: list[str] = []
    for seq in (1, 2):
        key = bytes([seq]) * 32
        nonce = bytes([0x40 + seq]) * 24
        hlc = HLC(1_709_600_000_000 + seq, 0)
        record = "018e0c2a-3b00-7000-8000-000000000001"
        entry, _ = entry_format.seal(
            signer,
            seq=seq,
            prev=prev,
            record=record,
            parents=parents,
            hlc=hlc,
            body=body,
            content_key=key,
            nonce=nonce,
        )
        cases.append(
            {
                "description": f"entry seq {seq} of one device",
                "signing_seed": signer.seed.hex(),
                "content_key": key.hex(),
                "nonce": nonce.hex(),
                "seq": seq,
                "prev": prev,
                "record": record,
                "parents": parents,
                "hlc": hlc.to_json(),
                "body": body.decode("utf-8"),
                "expect": "ok",
                "entry": entry.raw.hex(),
                "entry_id": entry.id,
                "header": encoding.encode(entry.header.to_json()).decode("utf-8"),
            }
        )
        prev, parents = entry.id, [entry.id]
    flipped = bytearray(bytes.fromhex(cases[0]["entry"]))  # type: ignore[arg-type]
    flipped[-1] ^= 1
    cases.append(
        {
            "description": "last signature byte flipped",
            "entry": flipped.hex(),
            "expect": "refused: signature",
        }
    )
    truncated = bytes.fromhex(cases[0]["entry"])[:-1]  # type: ignore[arg-type]
    cases.append(
        {"description": "one byte short", "entry": truncated.hex(), "expect": "refused: malformed"}
    )
    return cases


def primitive_vectors() -> list[dict[str, object]]:
    key = bytes(range(32))
    plain = "شهادة".encode()
    return [
        {
            "what": "commitment",
            "key": key.hex(),
            "plaintext": plain.hex(),
            "expect": crypto.commitment(key, plain).hex(),
        },
        {
            "what": "hash32",
            "label": crypto.LABEL_ENTRY_ID.decode(),
            "data": plain.hex(),
            "expect": crypto.hash32(crypto.LABEL_ENTRY_ID, plain).hex(),
        },
        {
            "what": "derive_key",
            "key": key.hex(),
            "label": "fieldsync/index/v1",
            "expect": crypto.derive_key(key, b"fieldsync/index/v1").hex(),
        },
        {
            "what": "canonical_json",
            "value": {"b": [1, None, True], "a": "سلام\n"},
            "expect": encoding.encode({"b": [1, None, True], "a": "سلام\n"}).decode("utf-8"),
        },
    ]


def sync_vectors() -> list[dict[str, object]]:
    """An invite, a batch of the two entry vectors, and the receipt for it, all pinned."""
    admin = crypto.SigningPair(bytes([0xA1]) * 32)
    server = crypto.SigningPair(bytes([0x5E]) * 32)
    org_public = bytes([0x0A]) * 32  # treated as opaque bytes by the invite
    invite_text = invite.issue(
        admin,
        name="field laptop 7",
        server="https://sync.example.org",
        server_key=server.public,
        org_read_key=org_public,
        expires_ms=1_900_000_000_000,
        token=bytes([0x70]) * 32,
    )
    cases = entry_vectors()[:2]
    entries = [entry_format.parse(bytes.fromhex(c["entry"])) for c in cases]  # type: ignore[arg-type]
    device = crypto.SigningPair(bytes.fromhex(cases[0]["signing_seed"]))  # type: ignore[arg-type]
    wraps = [bytes([0x77]) * crypto.SEAL_BYTES] * 2  # opaque to the batch format
    readers = [(), (("cc" * 32, bytes([0x88]) * crypto.SEAL_BYTES),)]  # one analyst-style wrap
    built = batch_format.build(device, entries, wraps, [("bb" * 32, 4242)], readers)
    signed_receipt = receipt.sign(
        server,
        device=device.public.hex(),
        last_seq=2,
        head=entries[-1].id,
        batch=built.id,
        time_ms=1_709_600_100_000,
    )
    return [
        {
            "what": "invite",
            "admin_seed": admin.seed.hex(),
            "token": "70" * 32,
            "text": invite_text,
            "now_ms": 1_800_000_000_000,
            "expect": "ok",
        },
        {
            "what": "batch",
            "signing_seed": device.seed.hex(),
            "entries": [c["entry"] for c in cases],
            "wraps": [w.hex() for w in wraps],
            "blobs": [["bb" * 32, 4242]],
            "readers": [[[r, w.hex()] for r, w in more] for more in readers],
            "batch": built.raw.hex(),
            "batch_id": built.id,
            "expect": "ok",
        },
        {
            "what": "receipt",
            "server_seed": server.seed.hex(),
            "receipt": signed_receipt.decode(),
            "expect": "ok",
        },
    ]


def decision_vectors() -> list[dict[str, object]]:
    """The server's and the pull's decisions (core/admission.py, core/pulled.py): each case's
    inputs and its verdict, both written here by hand and never computed, so that the test is
    an oracle independent of the code it checks. Ids are readable names: a decision looks at
    ids only as labels (a1 is device a's entry at seq 1; b2 a different entry at seq 2)."""

    def link(
        seq: int, prev: str | None, id_: str, record: str = "r1", parents: Sequence[str] = ()
    ) -> Case:
        return {"seq": seq, "prev": prev, "id": id_, "record": record, "parents": list(parents)}

    def chain(
        description: str,
        last_seq: int,
        head: str | None,
        links: list[Case],
        stored: dict[int, str],
        expect: Case,
    ) -> Case:
        return {
            "decision": "chain",
            "description": description,
            "chain": {"last_seq": last_seq, "head": head},
            "links": links,
            "stored": {str(seq): id_ for seq, id_ in stored.items()},
            "expect": expect,
        }

    def parents(
        description: str,
        links: list[Case],
        fresh: list[int],
        stored: dict[str, str],
        wanted: list[str],
        expect: Case,
    ) -> Case:
        return {
            "decision": "parents",
            "description": description,
            "links": links,
            "fresh": fresh,
            "stored": stored,
            "wanted": wanted,
            "expect": expect,
        }

    a1, a2, a3 = link(1, None, "a1"), link(2, "a1", "a2"), link(3, "a2", "a3")
    cases = [
        chain(
            "a first batch on an empty chain",
            0,
            None,
            [a1, a2],
            {},
            {"verdict": "accept", "fresh": [0, 1]},
        ),
        chain(
            "a batch continuing the chain", 2, "a2", [a3], {}, {"verdict": "accept", "fresh": [0]}
        ),
        chain(
            "a replayed overlap, then fresh entries",
            2,
            "a2",
            [a2, a3],
            {2: "a2"},
            {"verdict": "accept", "fresh": [1]},
        ),
        chain(
            "every entry stored already (a rebuilt batch)",
            2,
            "a2",
            [a1, a2],
            {1: "a1", 2: "a2"},
            {"verdict": "replay"},
        ),
        chain(
            "a batch past the next seq",
            2,
            "a2",
            [link(4, "a3", "a4")],
            {},
            {"verdict": "gap", "expected": 3, "got": 4},
        ),
        chain(
            "a gap is decided before anything stored is looked at",
            0,
            None,
            [link(2, "a1", "b2")],
            {2: "a2"},
            {"verdict": "gap", "expected": 1, "got": 2},
        ),
        chain(
            "a different entry at the first stored seq",
            2,
            "a2",
            [link(2, "a1", "b2"), link(3, "b2", "b3")],
            {2: "a2"},
            {"verdict": "fork", "seq": 2},
        ),
        chain(
            "a fork after a replayed overlap",
            2,
            "a2",
            [a1, link(2, "a1", "b2")],
            {1: "a1", 2: "a2"},
            {"verdict": "fork", "seq": 2},
        ),
        chain(
            "the first fork in the batch is named",
            3,
            "a3",
            [link(2, "a1", "b2"), link(3, "b2", "b3")],
            {2: "a2", 3: "a3"},
            {"verdict": "fork", "seq": 2},
        ),
        chain(
            "a fork is found before the chain is checked",
            2,
            "a2",
            [link(2, "x1", "b2"), link(3, "b2", "b3")],
            {2: "a2"},
            {"verdict": "fork", "seq": 2},
        ),
        chain(
            "the next seq on another head",
            2,
            "a2",
            [link(3, "b2", "b3")],
            {},
            {"verdict": "broken"},
        ),
        chain(
            "fresh entries that start before the next seq",
            3,
            "a3",
            [a1, a2],
            {1: "a1"},
            {"verdict": "broken"},
        ),
        chain(
            "a first entry that names a head on an empty chain",
            0,
            None,
            [link(1, "a0", "a1")],
            {},
            {"verdict": "broken"},
        ),
        parents(
            "a new record, and a version on it earlier in the batch",
            [a1, link(2, "a1", "a2", parents=["a1"])],
            [0, 1],
            {},
            [],
            {"verdict": "none"},
        ),
        parents(
            "a parent the server holds, of the same record",
            [link(3, "a2", "a3", parents=["a2"])],
            [0],
            {"a2": "r1"},
            ["a2"],
            {"verdict": "none"},
        ),
        parents(
            "two parents the server does not hold",
            [link(3, "a2", "a3", parents=["x1", "x2"])],
            [0],
            {},
            ["x1", "x2"],
            {"verdict": "missing", "count": 2},
        ),
        parents(
            "only the parents not held are counted",
            [link(3, "a2", "a3", parents=["a2", "x9"])],
            [0],
            {"a2": "r1"},
            ["a2", "x9"],
            {"verdict": "missing", "count": 1},
        ),
        parents(
            "a stored parent of another record",
            [link(3, "a2", "a3", parents=["b7"])],
            [0],
            {"b7": "r2"},
            ["b7"],
            {"verdict": "foreign", "seq": 3},
        ),
        parents(
            "a parent earlier in the batch, of another record",
            [a1, link(2, "a1", "a2", "r2", ["a1"])],
            [0, 1],
            {},
            [],
            {"verdict": "foreign", "seq": 2},
        ),
        parents(
            "a missing parent is named before a foreign one",
            [link(2, "a1", "a2", parents=["b7"]), link(3, "a2", "a3", parents=["x9"])],
            [0, 1],
            {"b7": "r2"},
            ["b7", "x9"],
            {"verdict": "missing", "count": 1},
        ),
        parents(
            "the parents of a replayed entry are not looked at",
            [link(1, None, "a1", parents=["x0"]), link(2, "a1", "a2", parents=["a1"])],
            [1],
            {},
            [],
            {"verdict": "none"},
        ),
    ]

    def pull(
        description: str, version: Case, expect: Case, again: bool = False, **known: object
    ) -> Case:
        return {
            "decision": "pull",
            "description": description,
            "known": {"trusted": ["dev1", "admin"]} | known,
            "version": {"author": "dev1", "seq": 5, "record": "r1", "parents": [], "wrap": "w1"}
            | version,
            "again": again,
            "expect": expect,
        }

    opened = {"verdict": "open"}
    fork = {"verdict": "refuse", "why": "fork"}
    kept = {"v5": {"record": "r1", "kept": True, "wrap": "w1"}}
    cases += [
        pull("a trusted author's version, nothing known against it", {"id": "v5"}, opened),
        pull(
            "a version of a record wiped here, before anything else (even an untrusted key)",
            {"id": "v5", "author": "stranger"},
            {"verdict": "skip"},
            forgotten=["r1"],
        ),
        pull(
            "a refused device's version",
            {"id": "v5", "author": "dev9"},
            {"verdict": "set aside", "why": "refused author"},
            refused={"dev9": "the server lists it under invite 'x'"},
        ),
        pull(
            "a refused device's version set aside already",
            {"id": "v5", "author": "dev9"},
            {"verdict": "unchanged"},
            refused={"dev9": "why"},
            aside={"v5": {"record": "r1", "kept": False, "wrap": "w0"}},
        ),
        pull(
            "a key this store does not trust",
            {"id": "v5", "author": "stranger"},
            {"verdict": "refuse", "why": "untrusted"},
        ),
        pull(
            "held here already", {"id": "v5"}, {"verdict": "held"}, held={"v5": ["r1", "dev1", 5]}
        ),
        pull("seen earlier in this pull", {"id": "v5"}, {"verdict": "held"}, seen={"v5": "r1"}),
        pull(
            "held is decided before a fork at its place",
            {"id": "v5"},
            {"verdict": "held"},
            held={"v5": ["r1", "dev1", 5]},
            taken=[["dev1", 5]],
        ),
        pull(
            "set aside with its bytes, served again with the same wrap",
            {"id": "v5"},
            {"verdict": "unchanged"},
            aside=kept,
            aside_at=[["dev1", 5, "v5"]],
        ),
        pull(
            "set aside with its bytes, served with another wrap: that one is tried",
            {"id": "v5", "wrap": "w2"},
            opened,
            aside=kept,
            aside_at=[["dev1", 5, "v5"]],
        ),
        pull(
            "set aside with its bytes, retried as kept",
            {"id": "v5"},
            opened,
            again=True,
            aside=kept,
            aside_at=[["dev1", 5, "v5"]],
        ),
        pull(
            "set aside without its bytes (past the cap), served again",
            {"id": "v5"},
            opened,
            aside={"v5": {"record": "r1", "kept": False, "wrap": "w1"}},
            aside_at=[["dev1", 5, "v5"]],
        ),
        pull("another version held at its author's seq", {"id": "v5"}, fork, taken=[["dev1", 5]]),
        pull(
            "another version seen at its author's seq in this pull",
            {"id": "v5"},
            fork,
            places=[["dev1", 5]],
        ),
        pull(
            "another version set aside at its author's seq",
            {"id": "v5"},
            fork,
            aside_at=[["dev1", 5, "x5"]],
        ),
        pull(
            "a parent held here, of the same record",
            {"id": "v5", "parents": ["v4"]},
            opened,
            held={"v4": ["r1", "dev1", 4]},
        ),
        pull(
            "a parent held here, of another record",
            {"id": "v5", "parents": ["v4"]},
            {"verdict": "set aside", "why": "other record"},
            held={"v4": ["r2", "dev1", 4]},
        ),
        pull(
            "a parent seen in this pull, of another record",
            {"id": "v5", "parents": ["v4"]},
            {"verdict": "set aside", "why": "other record"},
            seen={"v4": "r2"},
        ),
        pull(
            "a parent set aside, of the same record",
            {"id": "v5", "parents": ["v4"]},
            {"verdict": "set aside", "why": "on set aside"},
            aside={"v4": {"record": "r1", "kept": True, "wrap": "w1"}},
        ),
        pull(
            "a parent set aside, of another record",
            {"id": "v5", "parents": ["v4"]},
            {"verdict": "set aside", "why": "other record"},
            aside={"v4": {"record": "r2", "kept": True, "wrap": "w1"}},
        ),
        pull(
            "a parent not served yet (a feed out of order)",
            {"id": "v5", "parents": ["v4"]},
            {"verdict": "refuse", "why": "out of order"},
        ),
        pull(
            "parents are judged in order: one not served, then another record's",
            {"id": "v5", "parents": ["v3", "v4"]},
            {"verdict": "refuse", "why": "out of order"},
            seen={"v4": "r2"},
        ),
        pull(
            "parents are judged in order: another record's, then one not served",
            {"id": "v5", "parents": ["v3", "v4"]},
            {"verdict": "set aside", "why": "other record"},
            seen={"v3": "r2"},
        ),
    ]
    aside_v4 = {"v4": {"record": "r1", "kept": True, "wrap": "w1"}}
    cases += [
        {
            "decision": "waits",
            "description": "a parent set aside after the version was checked",
            "parents": ["v4"],
            "known": {"aside": aside_v4},
            "expect": True,
        },
        {
            "decision": "waits",
            "description": "a parent set aside and then checked in this pull",
            "parents": ["v4"],
            "known": {"aside": aside_v4, "seen": {"v4": "r1"}},
            "expect": False,
        },
        {
            "decision": "waits",
            "description": "no parent set aside",
            "parents": ["v4"],
            "known": {"held": {"v4": ["r1", "dev1", 4]}},
            "expect": False,
        },
        {
            "decision": "settled",
            "description": "a version set aside and held here now",
            "id": "v5",
            "record": "r1",
            "known": {"held": {"v5": ["r1", "dev1", 5]}},
            "expect": True,
        },
        {
            "decision": "settled",
            "description": "a version set aside whose record was wiped",
            "id": "v5",
            "record": "r1",
            "known": {"forgotten": ["r1"]},
            "expect": True,
        },
        {
            "decision": "settled",
            "description": "a version set aside and still not stored",
            "id": "v5",
            "record": "r1",
            "known": {},
            "expect": False,
        },
    ]
    return cases


def org_vectors() -> list[dict[str, object]]:
    """The organisation's log (core/orglog.py) and a key bundle (core/bundle.py), from fixed
    seeds: the root, one statement of each kind in a log of seven, the state every reader
    reaches after following it, and a bundle for the analyst. The state and the refusals are
    written by hand from the seeds (never read back from ``follow``), then checked once here.

    A bundle's ``sealed`` is a sealed box, made with an ephemeral key libsodium draws itself:
    its bytes are pinned as made once, and only its signed fields besides ``sealed`` are
    written by hand. Whatever the seed, ``make`` will not make these bytes again."""
    admin, successor = (
        crypto.SigningPair(bytes([0xA1]) * 32),
        crypto.SigningPair(bytes([0xA2]) * 32),
    )
    server, new_server = (
        crypto.SigningPair(bytes([0x5E]) * 32),
        crypto.SigningPair(bytes([0x5F]) * 32),
    )
    reads = [crypto.BoxPair(bytes([0xB0 + epoch]) * 32) for epoch in (1, 2, 3)]
    analyst, analyst_box = (
        crypto.SigningPair(bytes([0xC1]) * 32),
        crypto.BoxPair(bytes([0xD1]) * 32),
    )
    viewer, viewer_box = crypto.SigningPair(bytes([0xC2]) * 32), crypto.BoxPair(bytes([0xD2]) * 32)
    stranger = crypto.SigningPair(bytes([0xEE]) * 32)
    hexed = {
        name: pair.public.hex()
        for name, pair in [
            ("admin", admin),
            ("successor", successor),
            ("server", server),
            ("new_server", new_server),
            ("analyst", analyst),
            ("viewer", viewer),
            ("analyst_box", analyst_box),
            ("viewer_box", viewer_box),
            ("read1", reads[0]),
            ("read2", reads[1]),
            ("read3", reads[2]),
        ]
    }
    t0 = 1_709_700_000_000
    steps: list[tuple[str, crypto.SigningPair, str, Case]] = [
        (
            "a read key for epoch 2",
            admin,
            orglog.READ_KEY,
            {"epoch": 2, "read_key": hexed["read2"]},
        ),
        (
            "an analyst certified (a name in Arabic)",
            admin,
            orglog.MEMBER,
            {
                "box_key": hexed["analyst_box"],
                "member_key": hexed["analyst"],
                "name": "أمل حداد",
                "role": orglog.ANALYST,
            },
        ),
        (
            "a viewer certified",
            admin,
            orglog.MEMBER,
            {
                "box_key": hexed["viewer_box"],
                "member_key": hexed["viewer"],
                "name": "Basel",
                "role": orglog.VIEWER,
            },
        ),
        ("the viewer revoked", admin, orglog.REVOKE, {"member_key": hexed["viewer"]}),
        ("a new receipt key", admin, orglog.RECEIPT_KEY, {"server_key": hexed["new_server"]}),
        ("a successor admin key", admin, orglog.SUCCESSION, {"admin_key": hexed["successor"]}),
        (
            "a read key for epoch 3, signed by the successor",
            successor,
            orglog.READ_KEY,
            {"epoch": 3, "read_key": hexed["read3"]},
        ),
    ]
    root = OrgState.root(hexed["admin"], hexed["read1"], hexed["server"])
    cases: list[dict[str, object]] = [
        {
            "what": "root",
            "description": "what an invite or org-public.json names: admin, read and receipt keys",
            "admin_seed": admin.seed.hex(),
            "admin_key": hexed["admin"],
            "read_secret": reads[0].secret.hex(),
            "read_key": hexed["read1"],
            "server_seed": server.seed.hex(),
            "server_key": hexed["server"],
        }
    ]
    state, ids, raws = root, [], []
    for seq, (description, signer, kind, fields) in enumerate(steps, start=1):
        raw = orglog.sign(signer, state, kind, fields, time_ms=t0 + seq)
        state = orglog.apply(state, orglog.parse(raw))
        cases.append(
            {
                "what": "statement",
                "description": f"statement {seq}: {description}",
                "signing_seed": signer.seed.hex(),
                "seq": seq,
                "prev": ids[-1] if ids else None,
                "time_ms": t0 + seq,
                "kind": kind,
                "fields": fields,
                "statement": raw.decode("utf-8"),
                "id": orglog.statement_id(raw),
                "expect": "ok",
            }
        )
        ids.append(orglog.statement_id(raw))
        raws.append(raw)
    expected_state: Case = {
        "root_admin_key": hexed["admin"],
        "admin_key": hexed["successor"],
        "retired": [hexed["admin"]],
        "read_keys": [[1, hexed["read1"]], [2, hexed["read2"]], [3, hexed["read3"]]],
        "server_key": hexed["new_server"],
        "server_keys": [hexed["server"]],
        "members": [
            {
                "key": hexed["analyst"],
                "box_key": hexed["analyst_box"],
                "role": "analyst",
                "name": "أمل حداد",
                "revoked": False,
            },
            {
                "key": hexed["viewer"],
                "box_key": hexed["viewer_box"],
                "role": "viewer",
                "name": "Basel",
                "revoked": True,
            },
        ],
        "analysts": [hexed["analyst"]],
        "seq": 7,
        "head": ids[6],
        "forks": [],
    }
    assert described_org_state(orglog.follow(root, raws)) == expected_state
    cases.append(
        {
            "what": "state",
            "description": "what every reader knows after following statements 1 to 7",
            "expect": expected_state,
        }
    )
    secrets = [bundle.ReadSecret(epoch, pair) for epoch, pair in enumerate(reads, start=1)]
    body = {
        "box_key": hexed["analyst_box"],
        "format": "fieldsync/key-bundle",
        "member": hexed["analyst"],
        "org_seq": 7,
        "signer": hexed["successor"],
        "version": 1,
    }
    made = _bundle_made_before(body) or bundle.make(
        successor, state, member=hexed["analyst"], box_key=hexed["analyst_box"], secrets=secrets
    )
    analyst_state = orglog.follow(root, raws)
    opened = bundle.open_bundle(made, state=analyst_state, member=analyst, box=analyst_box)
    assert [(s.epoch, s.pair.secret) for s in opened] == [(s.epoch, s.pair.secret) for s in secrets]
    cases.append(
        {
            "what": "bundle",
            "description": "the analyst's bundle of read keys 1 to 3, signed by the successor",
            "admin_seed": successor.seed.hex(),
            "member_seed": analyst.seed.hex(),
            "box_secret": analyst_box.secret.hex(),
            "read_secrets": [[s.epoch, s.pair.secret.hex()] for s in secrets],
            "bundle": made.decode("utf-8"),
            "body": body,
            "expect": "ok",
        }
    )

    invite_text = invite.issue(
        successor,
        name="laptop 3",
        server="https://fieldsync.example.org",
        server_key=server.public,
        org_read_key=reads[0].public,
        expires_ms=t0 + 86_400_000,
        token=bytes([0x5E]) * 32,
        org_log=(7, ids[6]),
        successions=[raws[5]],
    )
    next_receipt_key = crypto.SigningPair(bytes([0x60]) * 32).public
    cases += [
        {
            "what": "invite",
            "description": "an invite signed by the successor (statement 6 named it): it names "
            "the first admin key, read key and receipt key, where the log starts",
            "signing_seed": successor.seed.hex(),
            "text": invite_text,
            "admin_key": hexed["admin"],
            "signer": hexed["successor"],
            "expect": "ok",
        },
        {
            "what": "receipt-key offer",
            "description": "the server's offer of its next receipt key (GET /v1/info), signed "
            "by the receipt key in force (statement 5 named it)",
            "signing_seed": new_server.seed.hex(),
            "next_receipt_key": next_receipt_key.hex(),
            "proof": new_server.sign(crypto.LABEL_NEXT_RECEIPT_KEY, next_receipt_key).hex(),
            "expect": "ok",
        },
    ]

    def by_hand(signer: crypto.SigningPair, seq: int, kind: str, fields: Case) -> bytes:
        """A statement as ``sign`` would refuse to make it."""
        body = {
            "format": "fieldsync/org-statement",
            "kind": kind,
            "prev": ids[seq - 2] if seq > 1 else None,
            "seq": seq,
            "signer": signer.public.hex(),
            "time_ms": t0 + 100 + seq,
            "version": 1,
        } | fields
        signature = signer.sign(crypto.LABEL_ORG_STATEMENT, encoding.encode(body))
        return encoding.encode({"signature": signature.hex(), "statement": body})

    def refused(
        description: str,
        log: list[bytes],
        expect: Case,
        *,
        forks: Sequence[bytes] = (),
        known: int | None = None,
    ) -> dict[str, object]:
        return {
            "what": "refused",
            "description": description,
            "log": [raw.decode("utf-8") for raw in log],
            "forks": [raw.decode("utf-8") for raw in forks],
            "known": None if known is None else [known, ids[known - 1]],
            "expect": expect,
        }

    fresh = {"epoch": 3, "read_key": crypto.BoxPair(bytes([0xBF]) * 32).public.hex()}
    other_successor = crypto.SigningPair(bytes([0xA3]) * 32).public.hex()
    second_succession = by_hand(admin, 6, orglog.SUCCESSION, {"admin_key": other_successor})
    altered = raws[0].replace(b'"time_ms":%d' % (t0 + 1), b'"time_ms":%d' % (t0 + 9))
    assert altered != raws[0]
    cases += [
        refused(
            "statement 2 signed by a key that is not the admin key in force",
            [raws[0], by_hand(stranger, 2, orglog.READ_KEY, fresh)],
            {"error": "SignatureInvalid", "match": "a key that is not the organisation's"},
        ),
        refused(
            "statement 7 signed by the admin key statement 6 retired",
            [*raws[:6], by_hand(admin, 7, orglog.READ_KEY, fresh)],
            {"error": "SignatureInvalid", "match": "a retired admin key"},
        ),
        refused(
            "statement 1 with its time changed after it was signed",
            [altered],
            {"error": "SignatureInvalid", "match": "does not verify"},
        ),
        refused(
            "statement 2 left out",
            [raws[0], *raws[2:]],
            {"error": "MalformedData", "match": "statement 3 .* does not follow statement 1"},
        ),
        refused(
            "statement 2 at the right seq, naming another statement as its prev",
            [raws[0], by_hand(admin, 2, orglog.READ_KEY, fresh | {"prev": ids[0][::-1]})],
            {"error": "MalformedData", "match": "statement 2 .* does not follow statement 1"},
        ),
        refused(
            "a log cut back to 5 statements, served to a reader that followed 7",
            raws[:5],
            {"error": "RolledBack", "match": "older than the 7"},
            known=7,
        ),
        refused(
            "a second succession at seq 6, signed by the key in force there (a fork)",
            raws,
            {
                "fork": 6,
                "signer": hexed["admin"],
                "ids": [ids[5], orglog.statement_id(second_succession)],
                "followed": 5,
                "admin_key": hexed["admin"],
            },
            forks=[second_succession],
        ),
        {
            "what": "ignored",
            "description": "a second statement 6 offered as a fork, signed by a key not in "
            "force there (the server's noise): the whole log is followed",
            "forks": [
                by_hand(stranger, 6, orglog.SUCCESSION, {"admin_key": other_successor}).decode()
            ],
            "expect": {"followed": 7, "forks": []},
        },
    ]
    return cases


def _bundle_made_before(body: Case) -> bytes | None:
    """The bundle org-v1.json holds already, if its fields other than ``sealed`` are ``body``:
    a sealed box is random, so making it again would change the file at every run."""
    path = OUT / "org-v1.json"
    if not path.exists():
        return None
    for case in json.loads(path.read_text(encoding="utf-8")):
        if case["what"] == "bundle":
            raw: str = case["bundle"]
            held = json.loads(raw)["bundle"]
            if {k: v for k, v in held.items() if k != "sealed"} == body:
                return raw.encode("utf-8")
    return None


def described_org_state(state: OrgState) -> Case:
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


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, cases in (
        ("entry-v1.json", entry_vectors()),
        ("primitives-v1.json", primitive_vectors()),
        ("sync-v1.json", sync_vectors()),
        ("decisions-v1.json", decision_vectors()),
        ("org-v1.json", org_vectors()),
    ):
        (OUT / name).write_text(
            json.dumps(cases, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        print(f"wrote {OUT / name}")


if __name__ == "__main__":
    main()
