#!/usr/bin/env python3
"""Write the known-answer vectors in tests/vectors/ (run once per format change, then commit).

Every input that is normally random (signing seed, content key, nonce) is pinned here, so the
outputs are exact bytes that any implementation of the format must reproduce.
"""

from __future__ import annotations

import json
from pathlib import Path

from fieldsync.core import batch as batch_format
from fieldsync.core import crypto, encoding, invite, receipt
from fieldsync.core import entry as entry_format
from fieldsync.core.clock import HLC

OUT = Path(__file__).resolve().parents[1] / "tests" / "vectors"


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


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, cases in (
        ("entry-v1.json", entry_vectors()),
        ("primitives-v1.json", primitive_vectors()),
        ("sync-v1.json", sync_vectors()),
    ):
        (OUT / name).write_text(
            json.dumps(cases, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        print(f"wrote {OUT / name}")


if __name__ == "__main__":
    main()
