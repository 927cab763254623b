"""The HTTP API's JSON shapes (fieldsync/core/wire.py): the exact JSON the server sends, read
back whole, and every malformed answer a hostile server could send refused as ServerError."""

from __future__ import annotations

import ast
import base64
import json
from pathlib import Path
from typing import Any

import pytest

from fieldsync import errors
from fieldsync.core.wire import (
    ERRORS,
    BlobState,
    DeviceInfo,
    DeviceListing,
    EnrolAnswer,
    ErrorAnswer,
    FeedItem,
    FeedPage,
    RevokeAnswer,
    ServerInfo,
)
from fieldsync.errors import ChainGap, FieldsyncError, ServerError

PACKAGE = Path(__file__).resolve().parents[2] / "fieldsync"
SOURCE = "the server at https://sync.example.org"
UNEXPECTED = "the server at https://sync.example.org sent an unexpected answer"
KEY = "ab" * 32


def sent(value: object) -> str:
    """The bytes FastAPI's JSONResponse writes for a value."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


# Each shape with the JSON the server sends for it, written out by hand (docs/protocol.md).
DEVICE = DeviceInfo(
    device=KEY,
    box_key="cd" * 32,
    name="laptop 7",
    fingerprint="12345 67890",
    status="revoked",
    enrolled_ms=1_800_000_000_000,
    revoked_ms=1_800_000_000_500,
    last_seen_ms=None,
    last_seq=3,
    entries=3,
    alert=None,
    enrolment="eyJ9",
)
DEVICE_JSON = (
    '{"device":"' + KEY + '","box_key":"' + "cd" * 32 + '","name":"laptop 7",'
    '"fingerprint":"12345 67890","status":"revoked","enrolled_ms":1800000000000,'
    '"revoked_ms":1800000000500,"last_seen_ms":null,"last_seq":3,"entries":3,"alert":null,'
    '"enrolment":"eyJ9","role":"device"}'
)
SHAPES: list[tuple[Any, str]] = [
    (
        ServerInfo(1, KEY, "1 2", "ef" * 32, "01" * 32, "3 4", "cd" * 32, "23" * 32, "45" * 64),
        '{"protocol":1,"server_key":"'
        + KEY
        + '","server_fingerprint":"1 2","admin_key":"'
        + "ef" * 32
        + '","org_read_key":"'
        + "01" * 32
        + '","org_fingerprint":"3 4","receipt_key":"'
        + "cd" * 32
        + '","next_receipt_key":"'
        + "23" * 32
        + '","next_receipt_key_proof":"'
        + "45" * 64
        + '"}',
    ),
    (
        EnrolAnswer(KEY, "laptop", "5 6", 42),
        '{"device":"' + KEY + '","name":"laptop","fingerprint":"5 6","enrolled_ms":42}',
    ),
    (
        BlobState("f0" * 16, 100, 40, False),
        '{"id":"' + "f0" * 16 + '","size":100,"offset":40,"complete":false,"busy":false}',
    ),
    (
        BlobState("f0" * 16, 100, 100, True, busy=True),
        '{"id":"' + "f0" * 16 + '","size":100,"offset":100,"complete":true,"busy":true}',
    ),
    (
        FeedPage((FeedItem(7, b"entry", b"wrap"),), 7, False),
        '{"entries":[{"pos":7,"entry":"ZW50cnk=","wrap":"d3JhcA=="}],"next":7,"more":false}',
    ),
    (
        FeedPage((), 0, False, receipts=(b"{}", b"r")),
        '{"entries":[],"next":0,"more":false,"receipts":["e30=","cg=="]}',
    ),
    (DeviceListing((DEVICE,)), "[" + DEVICE_JSON + "]"),
    (DeviceListing(()), "[]"),
    (
        RevokeAnswer(KEY, "revoked", 9),
        '{"device":"' + KEY + '","status":"revoked","revoked_ms":9}',
    ),
    (
        ErrorAnswer("ChainGap", "Gap", "Resend", {"resend_from": 4}),
        '{"error":"ChainGap","message":"Gap","hint":"Resend","details":{"resend_from":4}}',
    ),
    (
        ErrorAnswer("NotFound", "no such upload"),
        '{"error":"NotFound","message":"no such upload","hint":null,"details":{}}',
    ),
]


@pytest.mark.parametrize(("shape", "text"), SHAPES, ids=lambda s: type(s).__name__)
def test_each_shape_is_sent_as_the_protocol_says_and_read_back_whole(shape: Any, text: str) -> None:
    assert sent(shape.to_json()) == text
    assert type(shape).from_json(json.loads(text), SOURCE) == shape


def test_a_blob_state_without_busy_reads_as_not_busy() -> None:
    """docs/protocol.md names four keys; ``busy`` came later."""
    state = {"id": "aa", "size": 5, "offset": 5, "complete": True}
    assert BlobState.from_json(state) == BlobState("aa", 5, 5, True, busy=False)


def test_server_info_keeps_what_it_cannot_read_as_none() -> None:
    """The readers compare each key with the one they trust and name the difference."""
    assert ServerInfo.from_json({"server_key": 5, "protocol": True, "admin_key": "ab"}) == (
        ServerInfo(None, None, None, "ab", None, None)
    )
    with pytest.raises(ServerError) as caught:
        ServerInfo.from_json(["not", "an", "object"], SOURCE)
    assert caught.value.message == UNEXPECTED


def good(shape: type) -> dict[str, Any]:
    """A well-formed answer of each shape read with UNEXPECTED's words."""
    return {
        EnrolAnswer: {"device": KEY, "name": "n", "fingerprint": "f", "enrolled_ms": 1},
        BlobState: {"id": "aa", "size": 10, "offset": 3, "complete": False, "busy": False},
        DeviceInfo: json.loads(DEVICE_JSON) | {"last_seen_ms": 5, "alert": "a fork"},
        RevokeAnswer: {"device": KEY, "status": "revoked", "revoked_ms": 1},
    }[shape]


HUGE = 2**64
MISSING = object()
JUNK: list[object] = [None, "7", 7.0, True, -1, HUGE, [1], {"a": {"b": []}}]


def spoiled(shape: type) -> list[tuple[str, object]]:
    """Each key of a good answer, removed or replaced by a value of the wrong kind."""
    cases: list[tuple[str, object]] = []
    for key, value in good(shape).items():
        if key not in ("busy", "role"):  # may be left out (role: a server before roles)
            cases.append((key, MISSING))
        for junk in JUNK:
            allowed = junk is None and key in {"revoked_ms", "last_seen_ms", "alert"}
            allowed |= type(junk) is type(value) and junk not in (-1, HUGE)
            if not allowed:
                cases.append((key, junk))
    return cases


@pytest.mark.parametrize(
    ("shape", "key", "junk"),
    [
        (shape, key, junk)
        for shape in (EnrolAnswer, BlobState, DeviceInfo, RevokeAnswer)
        for key, junk in spoiled(shape)
    ],
    ids=str,
)
def test_a_missing_or_mistyped_key_is_refused_in_words(shape: Any, key: str, junk: object) -> None:
    answer = good(shape)
    if junk is MISSING:
        del answer[key]
    else:
        answer[key] = junk
    with pytest.raises(ServerError) as caught:
        shape.from_json(answer, SOURCE)
    assert caught.value.message == UNEXPECTED


@pytest.mark.parametrize("value", [None, "text", 5, [], {"device": KEY}])
def test_a_non_object_or_a_bare_one_is_refused(value: object) -> None:
    for shape in (EnrolAnswer, BlobState, DeviceInfo, RevokeAnswer):
        with pytest.raises(ServerError, match="sent an unexpected answer"):
            shape.from_json(value, SOURCE)


def test_a_blob_offset_past_its_size_is_refused() -> None:
    with pytest.raises(ServerError, match="unexpected answer"):
        BlobState.from_json(good(BlobState) | {"offset": 11}, SOURCE)


@pytest.mark.parametrize(
    "listing", [{"devices": []}, "[]", None, [None], [json.loads(DEVICE_JSON) | {"last_seq": "3"}]]
)
def test_a_device_listing_that_is_not_a_list_of_devices_is_refused(listing: object) -> None:
    with pytest.raises(ServerError) as caught:
        DeviceListing.from_json(listing, SOURCE)
    assert caught.value.message == UNEXPECTED


PAGE: dict[str, Any] = {"entries": [{"pos": 1, "entry": "ZQ==", "wrap": "dw=="}], "next": 1}


@pytest.mark.parametrize(
    "page",
    [
        {"entries": [], "next": 0},  # no "more"
        PAGE | {"more": "yes"},
        PAGE | {"more": 1},
        PAGE | {"more": False, "next": "1"},
        PAGE | {"more": False, "next": HUGE},
        PAGE | {"more": False, "next": -1},
        PAGE | {"more": False, "entries": {"pos": 1}},
        PAGE | {"more": False, "entries": [None]},
        PAGE | {"more": False, "entries": [{"pos": 1, "entry": "ZQ=="}]},
        PAGE | {"more": False, "entries": [{"pos": 1.0, "entry": "ZQ==", "wrap": "dw=="}]},
        PAGE | {"more": False, "entries": [{"pos": 1, "entry": "Z Q==", "wrap": "dw=="}]},
        PAGE | {"more": False, "entries": [{"pos": 1, "entry": "ZQ", "wrap": "dw=="}]},
        PAGE | {"more": False, "entries": [{"pos": 1, "entry": ["ZQ=="], "wrap": "dw=="}]},
        PAGE | {"more": False, "entries": [{"pos": 1, "entry": "é", "wrap": "dw=="}]},
    ],
    ids=str,
)
def test_a_feed_page_that_is_not_one_is_refused_in_words(page: object) -> None:
    with pytest.raises(ServerError) as caught:
        FeedPage.from_json(page)
    assert caught.value.message == "the server's answer to a pull is not a page of versions"


@pytest.mark.parametrize("page", [None, [], "page", 5])
def test_a_feed_answer_that_is_no_object_is_unexpected(page: object) -> None:
    with pytest.raises(ServerError) as caught:
        FeedPage.from_json(page, SOURCE)
    assert caught.value.message == UNEXPECTED


@pytest.mark.parametrize("receipts", [None, "e30=", [5], ["e30"], [["e30="]], {"e30=": 1}])
def test_a_feed_page_with_malformed_receipts_is_refused_in_words(receipts: object) -> None:
    with pytest.raises(ServerError) as caught:
        FeedPage.from_json(PAGE | {"more": False, "receipts": receipts}).read_receipts()
    assert caught.value.message == "the server's answer to a pull has malformed receipts"


def test_a_feed_page_reads_its_bytes_and_receipts() -> None:
    page = FeedPage.from_json(PAGE | {"more": True, "receipts": ["e30="]})
    assert page == FeedPage((FeedItem(1, b"e", b"w"),), 1, True, receipts=(b"{}",))
    assert page.read_receipts() == (b"{}",)


# The error answer and the table of the classes a server may name.


def server_raisable() -> set[str]:
    """Every fieldsync error class named in a call in the server's code, or in the core
    modules it imports (their errors reach the server's one handler), and FieldsyncError
    (the handler's answer to a path or method FastAPI refuses)."""
    classes = {
        name
        for name in dir(errors)
        if isinstance(getattr(errors, name), type)
        and issubclass(getattr(errors, name), FieldsyncError)
    }
    found, seen = {"FieldsyncError"}, set()
    todo = sorted((PACKAGE / "server").rglob("*.py"))
    while todo:
        path = todo.pop()
        if path in seen or path == PACKAGE / "core" / "wire.py":
            continue  # wire's ServerErrors are a device's, reading answers (from_json)
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fieldsync."):
                base = PACKAGE.parent / str(node.module).replace(".", "/")
                todo += [p for p in (base.with_suffix(".py"),) if p.exists()]
                todo += [
                    base / f"{a.name}.py" for a in node.names if (base / f"{a.name}.py").exists()
                ]
            elif isinstance(node, ast.Call) and getattr(node.func, "id", None) in classes:
                found.add(node.func.id)
    assert {"ChainGap", "InviteUsed", "MalformedData", "BatchInvalid"} <= found  # the walk works
    return found


def test_every_error_the_server_can_raise_is_in_the_table() -> None:
    missing = server_raisable() - set(ERRORS)
    assert not missing, f"add to fieldsync/core/wire.py ERRORS: {sorted(missing)}"


def test_the_table_names_each_class_by_its_own_name() -> None:
    for name, kind in ERRORS.items():
        assert kind.__name__ == name and getattr(errors, name) is kind


def test_a_named_error_is_raised_as_its_class_with_the_servers_words() -> None:
    answer = ErrorAnswer.from_json(
        {"error": "ChainGap", "message": "Gap at 4", "hint": "Resend", "details": {"seq": 4}}
    )
    raised = answer.raised()
    assert type(raised) is ChainGap
    assert (raised.message, raised.hint, raised.details) == (
        "the server refused: gap at 4",
        "Resend",
        {"seq": 4},
    )


@pytest.mark.parametrize("name", ["NoSuchError", "WrongPassphrase", "Exception", "__class__", ""])
def test_an_error_the_table_does_not_name_is_a_server_error(name: str) -> None:
    raised = ErrorAnswer.from_json({"error": name, "message": "Odd", "hint": "h"}).raised()
    assert type(raised) is ServerError
    assert (raised.message, raised.hint) == ("the server refused: odd", None)


def test_an_error_answer_drops_a_hint_or_details_it_cannot_use() -> None:
    answer = ErrorAnswer.from_json(
        {"error": "NotFound", "message": "m", "hint": ["x"], "details": {"a": 1, "b": [2], 3: "c"}}
    )
    assert answer == ErrorAnswer("NotFound", "m", None, {"a": 1, "3": "c"})
    assert ErrorAnswer.from_json({"error": "NotFound", "message": "m", "details": 5}).details == {}


@pytest.mark.parametrize(
    "value",
    [None, [], "x", {"error": "NotFound"}, {"message": "m"}, {"error": 5, "message": "m"}],
    ids=str,
)
def test_an_error_answer_without_a_name_and_message_is_refused(value: object) -> None:
    with pytest.raises(ServerError):
        ErrorAnswer.from_json(value)


def test_an_error_answer_is_made_from_the_error_itself() -> None:
    exc = ChainGap("gap", hint="resend", details={"resend_from": 2})
    assert ErrorAnswer.of(exc).to_json() == {
        "error": "ChainGap",
        "message": "gap",
        "hint": "resend",
        "details": {"resend_from": 2},
    }


def test_receipts_are_sent_as_their_exact_bytes() -> None:
    raw = bytes(range(256))
    page = FeedPage((), 0, False, receipts=(raw,)).to_json()
    assert page["receipts"] == [base64.b64encode(raw).decode("ascii")]
    assert FeedPage.from_json(page).read_receipts() == (raw,)


def test_a_page_s_receipts_are_read_only_when_asked_for() -> None:
    """A documenter's pull never reads receipts, and an administrator's reads them once the
    page's versions verified: junk receipts do not refuse a page before its versions speak."""
    page = FeedPage.from_json(PAGE | {"more": False, "receipts": [5]})
    assert page.entries == (FeedItem(1, b"e", b"w"),)
    with pytest.raises(ServerError, match="malformed receipts"):
        page.read_receipts()
    assert FeedPage.from_json(PAGE | {"more": False}).read_receipts() == ()


@pytest.mark.parametrize("huge", [2**53, 2**60, 2**63 - 1])
def test_a_number_a_device_could_not_keep_is_refused_in_words(huge: int) -> None:
    """The store keeps integers up to 2**53 - 1 (canonical JSON): a page cursor past that was
    read, then failed as an internal error when the pull saved it."""
    with pytest.raises(ServerError, match="not a page of versions"):
        FeedPage.from_json(PAGE | {"next": huge})


def test_an_error_answer_keeps_only_details_a_device_can_keep() -> None:
    answer = ErrorAnswer.from_json(
        {
            "error": "ChainGap",
            "message": "m",
            "details": {"expected_seq": 3, "flag": True, "huge": 2**60, "text": "t"},
        }
    )
    assert answer.details == {"expected_seq": 3, "text": "t"}
