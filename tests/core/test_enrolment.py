"""The enrolment request's two proofs: of the device key, which anyone holding the invite can
check, and of the box key, which only the server it was made for can open."""

from __future__ import annotations

import pytest

from fieldsync.core import crypto, encoding, enrolment
from fieldsync.errors import MalformedData, SignatureInvalid

DEVICE = crypto.SigningPair(bytes([1]) * 32)
BOX = crypto.BoxPair(bytes([2]) * 32)
SERVER = crypto.SigningPair(bytes([4]) * 32)
ELSEWHERE = crypto.SigningPair(bytes([5]) * 32)
TOKEN = "ab" * 32
INVITE = "fieldsync-invite-v1:x.y"


def _request(box: crypto.BoxPair = BOX, server: crypto.SigningPair = SERVER) -> enrolment.Enrolment:
    return enrolment.request(DEVICE, box, INVITE, TOKEN, server_key=server.public)


def test_a_request_proves_both_keys_and_each_proof_is_checked() -> None:
    made = enrolment.parse(_request().encode())
    enrolment.verify_proof(made, TOKEN)
    enrolment.verify_box_proof(made, TOKEN, SERVER)
    for check in (
        lambda: enrolment.verify_proof(made, "cd" * 32),  # another invite's token
        lambda: enrolment.verify_box_proof(made, "cd" * 32, SERVER),
        lambda: enrolment.verify_box_proof(made, TOKEN, ELSEWHERE),  # made for another server
    ):
        with pytest.raises(SignatureInvalid):
            check()
    swapped = _request(box=crypto.BoxPair(bytes([3]) * 32)).box_proof  # another box key's
    with pytest.raises(SignatureInvalid, match="does not open"):
        enrolment.verify_box_proof(
            enrolment.Enrolment(made.invite, made.device_key, made.box_key, made.proof, swapped),
            TOKEN,
            SERVER,
        )


def test_a_box_proof_holds_only_for_its_box_key_claim_and_server() -> None:
    label = crypto.LABEL_ENROL_BOX
    for n in range(1, 33):
        box = crypto.BoxPair(bytes([n]) * 32)
        proof = box.prove(SERVER.public, label, b"claim")
        SERVER.open_box_proof(box.public, label, b"claim", proof, what="it")
    other = crypto.BoxPair(bytes([99]) * 32).public
    flipped = proof[:40] + bytes([proof[40] ^ 1]) + proof[41:]
    for_elsewhere = box.prove(ELSEWHERE.public, label, b"claim")
    refused = [
        (SERVER, other, label, b"claim", proof),  # claimed for another box key
        (SERVER, box.public, crypto.LABEL_ENROL, b"claim", proof),
        (SERVER, box.public, label, b"claim!", proof),
        (SERVER, box.public, label, b"claim", proof[:-1]),
        (SERVER, box.public, label, b"claim", flipped),
        (SERVER, box.public, label, b"claim", bytes(len(proof))),
        (ELSEWHERE, box.public, label, b"claim", proof),  # shown to another server
        (SERVER, box.public, label, b"claim", for_elsewhere),  # made for another server
        (SERVER, bytes(32), label, b"claim", proof),  # a low-order key: its secret is no secret
    ]
    for server, *args in refused:
        with pytest.raises(SignatureInvalid):
            server.open_box_proof(*args, what="it")  # type: ignore[arg-type]
    with pytest.raises(MalformedData, match="server's key"):  # not a key anyone can open for
        box.prove(bytes(32), label, b"claim")


def test_a_box_proof_cannot_be_stripped_to_pass_as_an_older_request() -> None:
    made = _request()
    stripped = encoding.encode({k: v for k, v in made.to_json().items() if k != "box_proof"})
    with pytest.raises(SignatureInvalid):  # the device's signature covers the box proof
        enrolment.verify_proof(enrolment.parse(stripped), TOKEN)
    changed = made.to_json() | {"box_proof": _request(server=ELSEWHERE).box_proof}
    with pytest.raises(SignatureInvalid):  # nor can it be swapped for another
        enrolment.verify_proof(enrolment.parse(encoding.encode(changed)), TOKEN)


def test_a_request_from_before_the_box_proof_still_verifies_for_what_it_registered() -> None:
    claim = {"box_key": BOX.public.hex(), "device_key": DEVICE.public.hex(), "token": TOKEN}
    proof = DEVICE.sign(crypto.LABEL_ENROL, encoding.encode(claim)).hex()
    older = encoding.encode(
        {
            "box_key": claim["box_key"],
            "device_key": claim["device_key"],
            "invite": INVITE,
            "proof": proof,
        }
    )
    parsed = enrolment.parse(older)
    assert parsed.box_proof is None
    enrolment.verify_proof(parsed, TOKEN)
    assert parsed.encode() == older
    with pytest.raises(SignatureInvalid):  # but no server registers one now
        enrolment.verify_box_proof(parsed, TOKEN, SERVER)
