"""The typed settings write the JSON fieldsync wrote before they existed, byte for byte, and read
what older stores hold (fields missing, no version field)."""

from __future__ import annotations

import pytest

from fieldsync.core import encoding, settings
from fieldsync.core.settings import (
    Aside,
    Delivery,
    DeliveryBeforeRestore,
    Device,
    Enrolment,
    Forgotten,
    Listed,
    Problems,
    Pull,
    Registry,
    Server,
)
from fieldsync.errors import StoreCorrupted, UnsupportedFormat

# Each value, and the canonical JSON the dictionaries of earlier fieldsyncs encoded to: written
# out by hand, not by the code under test.
WRITTEN = [
    (
        Enrolment("aa", "laptop 7", "bb", "https://x.example", "cc"),
        b'{"admin_key":"aa","name":"laptop 7","org_read_key":"bb",'
        b'"server":"https://x.example","server_key":"cc"}',
    ),
    (Server("https://x.example", "cc"), b'{"server_key":"cc","url":"https://x.example"}'),
    (Delivery(), b"{}"),
    (Delivery(last_seq=0), b'{"last_seq":0}'),
    (
        Delivery(4, "e1", "r", 1700),
        b'{"head":"e1","last_seq":4,"receipt":"r","receipt_time_ms":1700}',
    ),
    (
        DeliveryBeforeRestore((Delivery(), Delivery(last_seq=2))),
        b'{"receipts":[{},{"last_seq":2}]}',
    ),
    (Pull(7, None), b'{"after":7,"anchor":null}'),
    (Pull(7, "e9"), b'{"after":7,"anchor":"e9"}'),
    (Pull(after=0, anchor_written=False), b'{"after":0}'),
    (
        Registry({"d1": Device("bk", "tablet", "ZW4=")}, {"t1": "d1", "t2": ""}),
        b'{"devices":{"d1":{"box_key":"bk","enrolment":"ZW4=","name":"tablet"}},'
        b'"tokens":{"t1":"d1","t2":""}}',
    ),
    (Forgotten(("r1", "r2")), b'{"records":["r1","r2"]}'),
    (
        Problems({"a1": ((1, 3), (5, 5))}, {"parts": ["p"]}),
        b'{"parts":["p"],"withheld":{"a1":[[1,3],[5,5]]}}',
    ),
    (
        Aside((Listed("v1", "a1", 3, "r1", "why", "dg", 120, True),)),
        b'{"versions":[["v1","a1",3,"r1","why","dg",120,true]]}',
    ),
]


@pytest.mark.parametrize(("value", "written"), WRITTEN, ids=lambda v: type(v).__name__)
def test_a_setting_writes_the_bytes_written_before_and_reads_them_back(
    value: settings.Setting, written: bytes
) -> None:
    assert encoding.encode(settings.encode(value)) == written
    assert settings.decode(type(value), encoding.decode(written)) == value


def test_what_older_stores_hold_reads_with_the_defaults_the_readers_gave() -> None:
    assert settings.decode(Delivery, {}).seq == 0
    assert settings.decode(Pull, {}) == Pull(0, None, anchor_written=False)
    old = settings.decode(Registry, {"devices": {"d1": {"box_key": "bk", "name": "tablet"}}})
    assert old == Registry({"d1": Device("bk", "tablet", None)}, {})
    assert settings.decode(Forgotten, {}).records == ()
    assert settings.decode(Problems, {"versions": []}) == Problems({}, {"versions": []})
    assert settings.decode(Aside, {}).versions == ()


def test_a_setting_from_a_newer_fieldsync_is_refused_not_misread() -> None:
    assert settings.decode(Server, {"url": "u", "server_key": "k", "version": 1}) == Server(
        "u", "k"
    )
    with pytest.raises(
        UnsupportedFormat, match=r"the setting 'server' .* newer fieldsync \(version 2\)"
    ):
        settings.decode(Server, {"url": "u", "server_key": "k", "version": 2})


def test_a_field_always_written_is_required() -> None:
    with pytest.raises(StoreCorrupted, match="the setting 'enrolment' of this store is malformed"):
        settings.decode(
            Enrolment, {"admin_key": "a", "name": "n", "org_read_key": "o", "server": "s"}
        )


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (Registry, {"devices": {"k": {}}}),
        (DeliveryBeforeRestore, {"receipts": [5]}),
        (Pull, {"after": None}),
        (Forgotten, {"records": None}),
        (Server, {"url": "u", "server_key": "k", "version": True}),
        (Server, {"url": "u", "server_key": "k", "version": -1}),
    ],
)
def test_a_malformed_setting_is_a_damaged_store_not_an_internal_error(
    kind: type[settings.Setting], value: dict[str, object]
) -> None:
    """A sealed setting cannot be a flipped bit, but one this fieldsync never writes (another
    build, a bug) is named as the store's damage, with the hint to run check."""
    with pytest.raises(StoreCorrupted, match=f"the setting '{kind.NAME}' of this store"):
        settings.decode(kind, value)
