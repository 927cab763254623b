"""Evidence packages: built from an analyst's store after a real exchange with a server, checked
offline, and every kind of file in them tampered with, each time caught and named."""

from __future__ import annotations

import hashlib
import itertools
import json
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import delete

from fieldsync.core import crypto, encoding, evidence, receipt
from fieldsync.core import entry as entry_format
from fieldsync.errors import OutputPathError, StoreStateError
from fieldsync.services import admin, attachments, pull, records, sync
from fieldsync.services import evidence as packages
from fieldsync.services.forms import get_form
from fieldsync.store import keyvalue
from fieldsync.store.db import ReceiptRow
from tests.conftest import example
from tests.exchange.conftest import World


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, str, Path]]:
    """Built once for the module (every test only reads the package, or a copy of it)."""
    tmp_path = tmp_path_factory.mktemp("evidence")
    with ExitStack() as stack:
        world = World(tmp_path, stack)
        yield world, *_recorded(world, tmp_path)


def _recorded(world: World, tmp_path: Path) -> tuple[str, Path]:
    """A record with two of the documenter's versions (one attaching a photo and a file with
    a hostile name), the documenter's unrelated records in between, and an analyst's
    re-attribution; all delivered, pulled and acknowledged."""
    device = world.device("laptop-a")
    record = records.create(device, get_form("incident"), example("incident"))
    records.create(device, get_form("interview"), example("interview"))  # a chain link
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8\xff" + bytes(range(256)) * 300)
    hostile = tmp_path / "..\\..\\evil\x1b[2J.txt"  # a legal name on Linux
    hostile.write_bytes(b"notes")
    attachments.attach(device, record, [photo, hostile])
    records.create(device, get_form("disappearance"), example("disappearance"))
    sync.push(device)
    pull.pull(world.analyst)
    records.edit(
        world.analyst,
        record,
        sets=['perpetrator.parties=["russian_forces"]', "perpetrator.attribution=confirmed"],
    )
    sync.push(world.analyst)
    pull.pull(world.analyst)  # brings the receipt of the analysts' own batch
    out = tmp_path / "case.zip"
    packages.build(world.analyst, record, out)
    return record, out


def test_a_package_verifies_offline_and_says_what_holds(case: tuple[World, str, Path]) -> None:
    world, record, out = case
    org_key = admin.org_keys(world.analyst).admin_key
    verdict = packages.verify_file(out, org_key)
    assert verdict.holds, [f for f in verdict.findings if f.level != "ok"]
    assert verdict.record == record
    assert verdict.organisation_fingerprint == admin.org_keys(world.analyst).fingerprint
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        custody = json.loads(archive.read("custody.json"))
    versions = [n for n in names if n.endswith(".entry") and n.startswith("versions/")]
    assert len(versions) == 3  # recorded, attached, re-attributed
    assert any(n.startswith("chain/") for n in names)  # the interview between two versions
    assert len([n for n in names if n.startswith("attachments/")]) == 2
    assert len([n for n in names if n.startswith("receipts/")]) >= 2  # device and analyst
    kinds = {(e["version"], e["event"]) for e in custody}
    assert {k for _, k in kinds} == set(evidence.EVENTS)
    received = [f for f in verdict.findings if "acknowledged it on" in f.statement]
    assert len(received) == 3  # every version has a receipt and an unbroken chain to it
    # names come from hashes, never from what a person typed
    assert all(evidence.NAMES.match(n) for n in names)


def test_the_wrong_organisation_is_refused(case: tuple[World, str, Path]) -> None:
    _, _, out = case
    verdict = packages.verify_file(out, "ab" * 32)
    assert not verdict.holds
    assert any("published admin key" in f.statement for f in verdict.findings)


KINDS = [
    "README.txt",
    "organisation.json",
    "custody.json",
    "custody.txt",
    "devices/",
    "versions/.entry",
    "versions/.key",
    "versions/.body.json",
    "attachments/",
    "blobs/",
    "receipts/",
    "chain/",
    "manifest.json",
    "manifest.sig",
]


_numbers = itertools.count()


def files_of(out: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(out) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def rewrite(out: Path, change: Callable[[dict[str, bytes]], None]) -> Path:
    files = files_of(out)
    change(files)
    tampered = out.with_name(f"tampered-{next(_numbers)}.zip")
    with zipfile.ZipFile(tampered, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return tampered


def resign(files: dict[str, bytes], world: World) -> None:
    """A new manifest over the files as they now are, signed with the real admin key: what an
    insider holding that key could do."""
    doc = json.loads(files["manifest.json"])
    for item in doc["files"]:
        data = files[item["name"]]
        item["size"], item["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    files["manifest.json"] = encoding.encode(doc)
    files["manifest.sig"] = evidence.sign_manifest(
        world.analyst.identity.signer, files["manifest.json"]
    )


def first(files: dict[str, bytes], kind: str) -> str:
    folder, _, suffix = kind.partition("/")
    if not _:
        return kind
    return sorted(n for n in files if n.startswith(folder + "/") and n.endswith(suffix))[0]


def flip(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]


@pytest.mark.parametrize("kind", KINDS)
def test_altering_any_kind_of_file_is_caught(case: tuple[World, str, Path], kind: str) -> None:
    _, _, out = case

    def change(files: dict[str, bytes]) -> None:
        name = first(files, kind)
        files[name] = flip(files[name])

    verdict = packages.verify_file(rewrite(out, change))
    assert not verdict.holds
    failed = [f.subject for f in verdict.findings if f.level == "failed"]
    assert first(files_of(out), kind) in failed or evidence.MANIFEST in failed


@pytest.mark.parametrize("kind", [k for k in KINDS if k not in ("manifest.json", "manifest.sig")])
def test_removing_or_adding_a_file_is_caught(case: tuple[World, str, Path], kind: str) -> None:
    _, _, out = case

    def remove(files: dict[str, bytes]) -> None:
        del files[first(files, kind)]

    removed = packages.verify_file(rewrite(out, remove))
    assert not removed.holds
    assert any("is missing" in f.statement for f in removed.findings)


def test_a_re_signed_manifest_still_cannot_hide_a_changed_body(
    case: tuple[World, str, Path],
) -> None:
    """An insider with the admin key changes a decrypted body and signs a new manifest: the
    body no longer matches what the device's signed version opens to."""
    world, _, out = case

    def forge(files: dict[str, bytes]) -> None:
        name = first(files, "versions/.body.json")
        body = json.loads(files[name])
        body["answers"]["narrative"] = "nothing happened"
        files[name] = encoding.encode(body)
        resign(files, world)

    verdict = packages.verify_file(rewrite(out, forge))
    assert not verdict.holds
    assert any("does not match the signed version" in f.statement for f in verdict.findings)


def test_a_forged_receipt_or_custody_time_is_caught_even_when_re_signed(
    case: tuple[World, str, Path],
) -> None:
    world, _, out = case

    def forge(files: dict[str, bytes]) -> None:
        custody = json.loads(files["custody.json"])
        received = next(e for e in custody if e["event"] == "received")
        received["time_ms"] -= 86_400_000  # a day earlier than the server said
        files["custody.json"] = encoding.encode(custody)
        resign(files, world)

    verdict = packages.verify_file(rewrite(out, forge))
    assert not verdict.holds
    assert any("'received' statement" in f.statement for f in verdict.findings)


def test_a_package_dated_before_a_receipt_it_holds_is_caught_even_when_re_signed(
    case: tuple[World, str, Path],
) -> None:
    """Review F5: a key the log has since retired signs a package dated back to when it was in
    force. The receipts in it say the package cannot be older than they are."""
    world, _, out = case

    def backdate(files: dict[str, bytes]) -> None:
        received = min(
            json.loads(raw)["receipt"]["time_ms"]
            for name, raw in files.items()
            if name.startswith("receipts/")
        )
        custody = json.loads(files["custody.json"])
        for event in custody:
            if event["event"] == "exported":
                event["time_ms"] = received - 1
        files["custody.json"] = encoding.encode(custody)
        doc = json.loads(files["manifest.json"])
        doc["created_ms"] = received - 1
        files["manifest.json"] = encoding.encode(doc)
        resign(files, world)

    verdict = packages.verify_file(rewrite(out, backdate))
    assert not verdict.holds
    assert any("its time was set back" in f.statement for f in verdict.findings)


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd",
        "/etc/passwd",
        "attachments/..\\..\\boot.ini",
        "attachments/\x1b[2Jevil",
        "versions/" + "a" * 64 + ".entry/../../x",
        "README.txt\n",  # a name the pattern's "$" took, before it had to match whole
        "chain/" + "a" * 64 + ".entry\n",
    ],
)
def test_path_tricks_in_a_package_are_refused_not_followed(
    case: tuple[World, str, Path], name: str
) -> None:
    _, _, out = case

    def add(files: dict[str, bytes]) -> None:
        files[name] = b"payload"

    tampered = rewrite(out, add)
    before = set(out.parent.parent.rglob("*"))
    verdict = packages.verify_file(tampered)
    assert not verdict.holds
    assert any("is not a file an evidence package holds" in f.statement for f in verdict.findings)
    assert all("\x1b" not in f.subject for f in verdict.findings)
    assert set(out.parent.parent.rglob("*")) == before  # nothing was extracted anywhere


def test_not_a_zip_and_a_truncated_zip_are_clear_failures(
    case: tuple[World, str, Path], tmp_path: Path
) -> None:
    _, _, out = case
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"PK\x03\x04 this is not an archive")
    assert not packages.verify_file(junk).holds
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(out.read_bytes()[: out.stat().st_size // 2])
    assert not packages.verify_file(truncated).holds


def test_a_zip_bomb_member_is_not_inflated_past_what_it_declares(
    case: tuple[World, str, Path],
) -> None:
    _, _, out = case

    def bomb(files: dict[str, bytes]) -> None:
        files[first(files, "custody.txt")] = b"\0" * (64 * 1024 * 1024)

    verdict = packages.verify_file(rewrite(out, bomb))
    assert not verdict.holds  # its size is not the manifest's: never hashed, never read whole


def test_building_needs_an_analysts_store_and_a_free_zip_path(
    case: tuple[World, str, Path], tmp_path: Path
) -> None:
    world, record, out = case
    with pytest.raises(OutputPathError, match="already exists"):
        packages.build(world.analyst, record, out)
    with pytest.raises(OutputPathError, match=r"\.zip"):
        packages.build(world.analyst, record, tmp_path / "case.tar")
    device = world.device("laptop-b")
    with pytest.raises(StoreStateError, match="administrator"):
        packages.build(device, record, tmp_path / "other.zip")
    assert crypto.LABEL_EVIDENCE == b"fieldsync/evidence/v1"


def test_an_analysts_store_from_before_receipts_gets_them_on_its_next_pull(
    world: World, tmp_path: Path
) -> None:
    """A store that pulled before pulls carried receipts: the schema upgrade resets its cursor,
    so the next pull re-reads the feed (storing nothing twice) and keeps the receipts."""
    device = world.device("laptop-c")
    record = records.create(device, get_form("incident"), example("incident"))
    sync.push(device)
    pull.pull(world.analyst)
    with world.analyst.session() as session, session.begin():  # as an issue-4 pull left it
        session.exec(delete(ReceiptRow))  # type: ignore[call-overload]
    keyvalue.save_setting(world.analyst, "pull", {"after": 0})  # what opening a schema-1 store does
    again = pull.pull(world.analyst)
    assert again.received == 0 and again.held >= 1
    built = packages.build(world.analyst, record, tmp_path / "late.zip")
    assert built.receipts == 1 and built.verdict.holds


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_damage_anywhere_in_the_archive_is_a_verdict_never_a_crash(
    case: tuple[World, str, Path], data: st.DataObject
) -> None:
    _, _, out = case
    raw = bytearray(out.read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(raw) - 1))
        raw[position] ^= data.draw(st.integers(1, 255))
    damaged = out.with_name(f"damaged-{next(_numbers)}.zip")
    damaged.write_bytes(bytes(raw))
    verdict = packages.verify_file(damaged)  # raises nothing: every failure is a finding
    assert verdict.findings


def _zeros_deflated(mib: int) -> bytes:
    """A raw deflate stream of ``mib`` MiB of zero bytes, about 1 KiB per MiB: one flushed block
    repeated (each starts afresh, so copies of it chain) and a final empty block."""
    squeeze = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = squeeze.compress(bytes(1024 * 1024)) + squeeze.flush(zlib.Z_FULL_FLUSH)
    return block * mib + zlib.compressobj(9, zlib.DEFLATED, -15).flush()


def _declare_deflated(path: Path, name: str, size: int) -> None:
    """Make the stored member ``name`` a deflated one of ``size`` bytes, in the archive's
    central directory (what zipfile reads sizes and method from)."""
    raw = bytearray(path.read_bytes())
    at = raw.find(b"PK\x01\x02")
    while (
        raw[at + 46 : at + 46 + int.from_bytes(raw[at + 28 : at + 30], "little")] != name.encode()
    ):
        at = raw.find(b"PK\x01\x02", at + 4)
    raw[at + 10 : at + 12] = (8).to_bytes(2, "little")  # deflated
    raw[at + 24 : at + 28] = size.to_bytes(4, "little")
    path.write_bytes(bytes(raw))


def test_a_package_declaring_gigabytes_is_refused_before_anything_is_hashed(
    case: tuple[World, str, Path],
) -> None:
    """A package signed by its maker (any key will do: the verifier reports whose it is) lists
    a 2 GiB file made of 2 MiB of deflate: the verifier hashed all of it, about 1,000 times
    the package's size, and a package of a few megabytes kept it busy for hours."""
    world, _, out = case
    declared = 2 * 1024**3

    def bomb(files: dict[str, bytes]) -> None:
        files["custody.txt"] = _zeros_deflated(declared // 1024**2)
        resign(files, world)
        doc = json.loads(files["manifest.json"])
        for item in doc["files"]:
            if item["name"] == "custody.txt":
                item["size"] = declared
        files["manifest.json"] = encoding.encode(doc)
        files["manifest.sig"] = evidence.sign_manifest(
            world.analyst.identity.signer, files["manifest.json"]
        )

    tampered = rewrite(out, bomb)
    _declare_deflated(tampered, "custody.txt", declared)
    with zipfile.ZipFile(tampered) as archive:
        assert archive.getinfo("custody.txt").file_size == declared
    verdict = packages.verify_file(tampered)
    assert not verdict.holds
    refused = [f for f in verdict.findings if f.subject == "custody.txt"]
    assert [f.statement for f in refused] == [
        f"declares {declared} bytes from {len(_zeros_deflated(2048))}: nothing was read"
    ]


def test_files_claiming_more_bytes_than_the_package_holds_are_refused_unread(
    case: tuple[World, str, Path],
) -> None:
    """Central-directory entries whose sizes add up to more than the archive (the way to make
    one stored run of bytes count as many files) are refused before any file is read."""
    _, _, out = case
    tampered = rewrite(out, lambda files: None)
    raw = bytearray(tampered.read_bytes())
    with zipfile.ZipFile(tampered) as archive:
        biggest = max(archive.infolist(), key=lambda info: info.compress_size)
        others = [i for i in archive.infolist() if i.compress_size < biggest.compress_size]
    # point two more entries' central records at the biggest file's local header
    for info in others[:2]:
        at = raw.find(b"PK\x01\x02")
        while raw[at + 46 : at + 46 + len(info.filename)] != info.filename.encode():
            at = raw.find(b"PK\x01\x02", at + 4)
        raw[at + 20 : at + 24] = biggest.compress_size.to_bytes(4, "little")
        raw[at + 24 : at + 28] = biggest.file_size.to_bytes(4, "little")
    tampered.write_bytes(bytes(raw))
    verdict = packages.verify_file(tampered)
    assert not verdict.holds
    assert any("claim more bytes than it holds" in f.statement for f in verdict.findings)


def test_thousands_of_receipts_and_statements_cost_seconds_not_hours(
    case: tuple[World, str, Path],
) -> None:
    """Each custody statement sorted every receipt again, and each version scanned them all:
    6,000 receipts and 60,000 statements kept the verifier busy for over half a minute; a package of
    100,000 files, hours. (The maker's own keys would do; the world's stand in for them.)"""
    world, _, out = case
    receipts, statements = 6000, 60_000

    def crowd(files: dict[str, bytes]) -> None:
        version = first(files, "versions/.entry")
        header = entry_format.parse(files[version]).header
        server = world.server.receipt_key
        for n in range(receipts):
            batch = hashlib.sha256(b"batch %d" % n).hexdigest()
            files[f"receipts/{batch}.json"] = receipt.sign(
                server,
                device=header.author,
                last_seq=header.seq,
                head=version.split("/")[1].split(".")[0],
                batch=batch,
                time_ms=n,
            )
        log = json.loads(files["custody.json"])
        received = next(item for item in log if item["event"] == "received")
        log += [received | {"note": str(n)} for n in range(statements)]
        files["custody.json"] = encoding.encode(log)
        doc = json.loads(files["manifest.json"])
        listed = {item["name"] for item in doc["files"]}
        doc["files"] += [
            {"name": name, "sha256": "", "size": 0}
            for name in files
            if name not in listed and name not in ("manifest.json", "manifest.sig")
        ]
        doc["files"].sort(key=lambda item: item["name"])
        files["manifest.json"] = encoding.encode(doc)
        resign(files, world)

    tampered = rewrite(out, crowd)
    started = time.monotonic()
    verdict = packages.verify_file(tampered)
    took = time.monotonic() - started
    assert not [f for f in verdict.findings if f.subject.startswith("receipts/")]  # all hold
    assert took < 12, f"{took:.1f} s"
