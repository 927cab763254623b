"""One value, one spelling: every pattern that validates input matches the whole text, and a
key decodes only from canonical hex (``bytes.fromhex`` would skip spaces and take capitals)."""

from __future__ import annotations

import pytest

from fieldsync.core import crypto, encoding, httpsig, invite, receipt
from fieldsync.core.body import Body
from fieldsync.core.ids import from_hex, is_hex32, is_record_id, new_record_id
from fieldsync.errors import MalformedData

KEY = crypto.SigningPair(bytes([5]) * 32)
HEX = KEY.public.hex()
OTHER_SPELLINGS = [HEX + "\n", HEX.upper(), f"{HEX[:32]} {HEX[32:]}", f" {HEX}", "\n" + HEX]


@pytest.mark.parametrize("spelling", OTHER_SPELLINGS)
def test_a_key_has_one_spelling(spelling: str) -> None:
    assert bytes.fromhex(spelling) == KEY.public  # what made two spellings one key
    assert not is_hex32(spelling)
    with pytest.raises(MalformedData, match="lowercase hex"):
        from_hex(spelling, 32, what="the key")
    assert from_hex(HEX, 32, what="the key") == KEY.public


def test_a_record_id_has_one_spelling() -> None:
    record = new_record_id()
    assert is_record_id(record)
    assert not is_record_id(record + "\n")
    assert not is_record_id(record.upper())


def test_a_signed_path_with_a_final_newline_is_refused() -> None:
    path = "/v1/blobs/" + "ab" * 32
    headers = {k.lower(): v for k, v in httpsig.sign(KEY, "GET", path, b"", 1000).items()}
    with pytest.raises(MalformedData, match="path"):
        httpsig.sign(KEY, "GET", path + "\n", b"", 1000)
    with pytest.raises(MalformedData, match="path"):
        httpsig.verify("GET", path + "\n", headers, b"", now=1000, admit=lambda _: None)
    for header in ("signature-input", "signature", "content-digest"):
        spelled = headers | {header: headers[header] + "\n"}
        with pytest.raises(MalformedData, match="signature headers"):
            httpsig.verify("GET", path, spelled, b"", now=1000, admit=lambda _: None)


def test_an_invite_for_a_server_url_with_a_final_newline_is_not_made() -> None:
    with pytest.raises(MalformedData, match="invalid values"):
        invite.issue(
            KEY,
            name="laptop",
            server="https://example.org\n",
            server_key=KEY.public,
            org_read_key=KEY.public,
            expires_ms=2,
        )


def test_a_receipt_signature_in_capitals_is_refused() -> None:
    server = crypto.SigningPair(bytes([6]) * 32)
    made = receipt.sign(server, device=HEX, last_seq=1, head="cd" * 32, batch="ef" * 32, time_ms=5)
    doc = encoding.decode(made)
    assert receipt.verify(made, pinned_server_key=server.public).last_seq == 1
    spelled = encoding.encode(doc | {"signature": doc["signature"].upper()})
    with pytest.raises(MalformedData, match="signature is malformed"):
        receipt.verify(spelled, pinned_server_key=server.public)


def test_a_form_reference_with_a_final_newline_is_refused() -> None:
    with pytest.raises(MalformedData):
        Body.decode(
            encoding.encode(
                {"answers": {}, "attachments": [], "form": "incident@1\n", "note": None}
            )
        )
