"""The enrolment request's two proofs: of the device key, and of the box key."""

from __future__ import annotations

import pytest

from fieldsync.core import crypto, encoding, enrolment
from fieldsync.errors import SignatureInvalid

DEVICE = crypto.SigningPair(bytes([1]) * 32)
BOX = crypto.BoxPair(bytes([2]) * 32)
TOKEN = "ab" * 32


def test_a_request_proves_both_keys_and_each_proof_is_checked() -> None:
    made = enrolment.request(DEVICE, BOX, "fieldsync-invite-v1:x.y", TOKEN)
    enrolment.verify_proof(enrolment.parse(made.encode()), TOKEN)
    with pytest.raises(SignatureInvalid):
        enrolment.verify_proof(made, "cd" * 32)  # another invite's token
    other = crypto.BoxPair(bytes([3]) * 32)
    swapped = enrolment.request(DEVICE, other, made.invite, TOKEN)
    with pytest.raises(SignatureInvalid, match="another key"):  # its box proof, this box key
        enrolment.verify_proof(
            enrolment.Enrolment(
                made.invite, made.device_key, made.box_key, made.proof, swapped.box_proof
            ),
            TOKEN,
        )


def test_a_box_proof_cannot_be_stripped_to_pass_as_an_older_request() -> None:
    made = enrolment.request(DEVICE, BOX, "fieldsync-invite-v1:x.y", TOKEN)
    stripped = encoding.encode({k: v for k, v in made.to_json().items() if k != "box_proof"})
    with pytest.raises(SignatureInvalid):  # the device's signature covers the box proof
        enrolment.verify_proof(enrolment.parse(stripped), TOKEN)


def test_a_request_from_before_the_box_proof_still_verifies_for_what_it_registered() -> None:
    claim = {"box_key": BOX.public.hex(), "device_key": DEVICE.public.hex(), "token": TOKEN}
    proof = DEVICE.sign(crypto.LABEL_ENROL, encoding.encode(claim)).hex()
    older = encoding.encode(
        {
            "box_key": claim["box_key"],
            "device_key": claim["device_key"],
            "invite": "fieldsync-invite-v1:x.y",
            "proof": proof,
        }
    )
    parsed = enrolment.parse(older)
    assert parsed.box_proof is None
    enrolment.verify_proof(parsed, TOKEN)
    assert parsed.encode() == older


def test_a_box_proof_holds_only_for_its_key_label_and_message() -> None:
    for n in range(1, 33):
        box = crypto.BoxPair(bytes([n]) * 32)
        proof = box.prove(crypto.LABEL_ENROL_BOX, b"claim")
        crypto.verify_box_proof(box.public, crypto.LABEL_ENROL_BOX, b"claim", proof, what="it")
    other = crypto.BoxPair(bytes([99]) * 32).public
    refused = [
        (other, crypto.LABEL_ENROL_BOX, b"claim", proof),
        (box.public, crypto.LABEL_ENROL, b"claim", proof),
        (box.public, crypto.LABEL_ENROL_BOX, b"claim!", proof),
        (box.public, crypto.LABEL_ENROL_BOX, b"claim", proof[:-1]),
        (
            box.public,
            crypto.LABEL_ENROL_BOX,
            b"claim",
            proof[:40] + bytes([proof[40] ^ 1]) + proof[41:],
        ),
        (box.public, crypto.LABEL_ENROL_BOX, b"claim", bytes(96)),
    ]
    for args in refused:
        with pytest.raises(SignatureInvalid):
            crypto.verify_box_proof(*args, what="it")
