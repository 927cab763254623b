"""``fieldsync admin evidence`` and ``fieldsync evidence-verify`` (docs/evidence.md).

Building gathers one record's signed versions, their keys, bodies, attachments, the author
devices' enrolments, the server's receipts and the chain links from the administrator's store,
writes them into a ZIP with a manifest the admin key signs, and then checks the written file
exactly as ``evidence-verify`` would: a package that does not verify is not left behind.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from fieldsync.core import encoding, evidence, orglog
from fieldsync.core import entry as entry_format
from fieldsync.core import receipt as receipts
from fieldsync.core.evidence import Verdict
from fieldsync.core.invite import ANALYST
from fieldsync.core.settings import Registry
from fieldsync.errors import IntegrityError, MalformedData, OutputPathError, StoreStateError
from fieldsync.services import problems
from fieldsync.services.reading import author_labels
from fieldsync.store import blobs, custody, orgkeys, settings
from fieldsync.store.custody import KeptReceipt
from fieldsync.store.store import Store
from fieldsync.store.version import Version

README = """\
fieldsync evidence package
==========================

This archive holds every recorded version of one record, exactly as it was signed on the
device that recorded it, with everything needed to check, without any other software
or connection than fieldsync itself, that nothing in it was altered since.

To check it:   fieldsync evidence-verify THIS-FILE.zip --org org-public.json

Then compare the organisation fingerprint it prints with the one the organisation
publishes. docs/evidence.md in fieldsync explains every file, every check, and what
a successful check does and does not prove.

custody.txt is the chain of custody in plain words; custody.json is the same for
software. versions/*.body.json are the decrypted records; attachments/ the original files.
"""


SERVER = "the organisation's server"


@dataclass(frozen=True)
class Built:
    path: Path
    record: str
    versions: int
    attachments: int
    receipts: int
    verdict: Verdict


def build(store: Store, record_prefix: str, out: Path, *, force: bool = False) -> Built:
    """Write the evidence package of one record to ``out`` (a .zip), then verify it: from
    the administrator's store (signed by the admin key in force) or an analyst's (signed by
    the analyst's key, which the organisation's log in the package certifies)."""
    if orgkeys.role(store) not in (orgkeys.ADMIN, ANALYST):
        raise StoreStateError(
            "evidence packages are made from the administrator's store or an analyst's",
            hint="Run 'fieldsync admin evidence' with --home set to one of those stores.",
        )
    check_target(out, force)
    record = store.resolve_record(record_prefix)
    versions = store.versions(record)
    damaged = [v.problem for v in versions if v.body is None]
    if damaged:
        raise IntegrityError(
            f"record {record} has versions that cannot be read: {damaged[0]}",
            hint="Run 'fieldsync check'; a package is only made of versions that verify.",
        )
    now = store.now_ms()
    gathered = _gather(store, versions, now)
    partial = out.with_name(f".{out.name}.fieldsync-partial")
    try:
        _write(store, partial, record, gathered, now)
        verdict = verify_file(partial)
        if not verdict.holds:
            failed = next(f for f in verdict.findings if f.level == "failed")
            raise IntegrityError(
                f"the package did not verify after writing: {failed.subject} {failed.statement}",
                hint="Nothing was kept. Run 'fieldsync check' and 'fieldsync admin pull'.",
            )
        os.replace(partial, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return Built(
        out,
        record,
        len(versions),
        len(gathered.attachments),
        len(gathered.receipts),
        verdict,
    )


def check_target(out: Path, force: bool) -> None:
    """Refuse a package path before any work is done."""
    if out.suffix.lower() != ".zip":
        raise OutputPathError(f"{str(out)!r} should end in .zip")
    if not out.parent.is_dir():
        raise OutputPathError(f"the folder {str(out.parent)!r} does not exist")
    if out.exists() and not force:
        raise OutputPathError(f"{str(out)!r} already exists", hint="Use --force to replace it.")


# --- gathering ---------------------------------------------------------------------------


@dataclass
class _Gathered:
    versions: list[Version]
    keys: dict[str, bytes]
    enrolments: dict[str, bytes]  # device key -> enrolment request, verbatim
    receipts: dict[str, KeptReceipt]  # batch -> receipt
    covering: dict[str, KeptReceipt]  # version id -> the first receipt that covers it
    links: dict[str, bytes]  # entry id -> later entries of the author up to a receipt's head
    attachments: dict[str, tuple[str, str, str]]  # sha256 -> (blob id, key hex, extension)
    custody: list[dict[str, Any]]


def _gather(store: Store, versions: list[Version], now: int) -> _Gathered:
    registry = (settings.load(store, Registry) or Registry()).devices
    gathered = _Gathered(versions, {}, {}, {}, {}, {}, {}, [])
    authors = {v.entry.header.author for v in versions}
    own = {v.id for v in versions}
    for author in sorted(authors - set(orgkeys.admin_keys_trusted(store))):
        device = registry.get(author)
        encoded = device.enrolment if device else None
        if not encoded:
            raise StoreStateError(
                f"this store does not hold the enrolment of device {author[:12]}",
                hint="Run 'fieldsync admin pull' to fetch the device registry, then try again.",
            )
        gathered.enrolments[author] = base64.b64decode(encoded)
    kept = {author: custody.receipts_of(store, author) for author in authors}
    lowest: dict[str, int] = {}  # batch -> the lowest seq of this record's versions it covers
    for version in versions:
        header = version.entry.header
        gathered.keys[version.id] = custody.content_key(store, version.id)
        first = next((r for r in kept[header.author] if r.last_seq >= header.seq), None)
        if first is not None:
            gathered.receipts[first.batch] = first
            gathered.covering[version.id] = first
            lowest[first.batch] = min(header.seq, lowest.get(first.batch, header.seq))
        assert version.body is not None
        for attached in version.body.attachments:
            gathered.attachments[attached.sha256] = (
                attached.blob,
                attached.key,
                _ext(attached.name),
            )
    set_aside: dict[str, dict[int, bytes]] | None = None  # read once, only if a link needs it
    for batch, seq in lowest.items():  # one read per receipt covers all its versions' links
        first = gathered.receipts[batch]
        if first.last_seq > seq:
            set_aside = _set_aside_by_author(store) if set_aside is None else set_aside
            aside = set_aside.get(first.author, {})
            later = custody.signed_entries(store, first.author, seq + 1, first.last_seq, aside)
            gathered.links.update((entry_format.entry_id(raw), raw) for raw in later)
    for own_id in own:
        gathered.links.pop(own_id, None)  # a version of this record is in versions/ already
    gathered.custody = _custody_log(store, gathered, author_labels(store), now)
    return gathered


def _set_aside_by_author(store: Store) -> dict[str, dict[int, bytes]]:
    """The signed bytes of the versions a pull set aside, by author and seq."""
    found: dict[str, dict[int, bytes]] = {}
    for version in problems.set_aside(store):
        found.setdefault(version.author, {})[version.seq] = version.raw
    return found


def _receipt_keys(store: Store) -> list[str]:
    """Every receipt key the organisation's log names, the first one first."""
    state = orgkeys.followed(store)
    return [k for k in (*state.server_keys, state.server_key) if k] if state else []


def _first_receipt_key(state: orglog.OrgState) -> str:
    """The receipt key the log starts from: pinned at the first invite ("" before then)."""
    return state.server_keys[0] if state.server_keys else state.server_key


def _ext(name: str) -> str:
    """The original name's extension if it is a plain one (``jpg``), for a viewer's sake; the
    name itself never becomes a path in the package."""
    found = re.fullmatch(r".*\.([A-Za-z0-9]{1,8})", name)
    return f".{found[1].lower()}" if found else ""


def _custody_log(
    store: Store, gathered: _Gathered, label: Callable[[str], str], now: int
) -> list[dict[str, Any]]:
    exporter = store.identity.device_id
    me = "administrator" if store.identity.is_admin else label(exporter)
    receipt_keys = [bytes.fromhex(k) for k in _receipt_keys(store)]
    log: list[dict[str, Any]] = []
    for version in gathered.versions:
        header = version.entry.header
        who = label(header.author)
        log.append(
            evidence.event(
                "captured", version.id, header.hlc.wall_ms, header.author, who,
                "recorded on the author's device; the time is that device's clock",
            )
        )  # fmt: skip
        log.append(
            evidence.event(
                "signed", version.id, header.hlc.wall_ms, header.author, who,
                f"sealed and signed as seq {header.seq} of its author's log",
            )
        )  # fmt: skip
        kept = gathered.covering.get(version.id)
        if kept is not None:
            shown = receipts.verify_any(kept.raw, receipt_keys)
            log.append(
                evidence.event(
                    "received", version.id, shown.time_ms, shown.server, SERVER,
                    f"stored and acknowledged with a signed receipt (batch {shown.batch[:16]})",
                )
            )  # fmt: skip
            log.append(
                evidence.event(
                    "verified", version.id, kept.verified_ms, exporter, me,
                    "signature, enrolment, receipt and key commitment checked on pull",
                )
            )  # fmt: skip
        log.append(
            evidence.event(
                "exported", version.id, now, exporter, me,
                "written into this package, whose manifest the same key signs",
            )
        )  # fmt: skip
    return log


# --- writing -----------------------------------------------------------------------------


def _write(store: Store, path: Path, record: str, gathered: _Gathered, now: int) -> None:
    listed: dict[str, tuple[int, str]] = {}
    exporter = store.identity.device_id
    state = orgkeys.followed(store)
    assert state is not None
    org = {  # where the organisation's log starts
        "admin_key": state.root_admin_key,
        "org_read_key": state.read_keys[0].key,
        "server_key": _first_receipt_key(state) or None,  # none: nothing delivered yet
    }
    statements = orgkeys.statements(store)[: state.seq]  # as far as it was followed
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle, zipfile.ZipFile(handle, "w", allowZip64=True) as package:

        def put(name: str, data: bytes, *, compress: bool = True) -> None:
            kind = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
            package.writestr(_info(name, kind), data)
            listed[name] = (len(data), hashlib.sha256(data).hexdigest())

        def put_stream(name: str, chunks: Iterator[bytes]) -> None:
            hashed, size = hashlib.sha256(), 0
            with package.open(_info(name, zipfile.ZIP_STORED), "w", force_zip64=True) as out:
                for chunk in chunks:
                    out.write(chunk)
                    hashed.update(chunk)
                    size += len(chunk)
            listed[name] = (size, hashed.hexdigest())

        put("README.txt", README.encode("utf-8"))
        put("organisation.json", encoding.encode(org))
        if statements:
            put(evidence.ORG_LOG, evidence.log_file(statements))
        for device, raw in sorted(gathered.enrolments.items()):
            put(f"devices/{device}.enrolment", raw)
        for version in gathered.versions:
            assert version.body is not None
            put(f"versions/{version.id}.entry", version.entry.raw, compress=False)
            put(f"versions/{version.id}.key", gathered.keys[version.id].hex().encode("ascii"))
            put(f"versions/{version.id}.body.json", version.entry.open(gathered.keys[version.id]))
        for sha, (blob_id, key, ext) in sorted(gathered.attachments.items()):
            put_stream(
                f"attachments/{sha}{ext}", blobs.read_blob(store, blob_id, bytes.fromhex(key))
            )
            put_stream(f"blobs/{blob_id}", _file_chunks(blobs.blob_path(store, blob_id)))
        for batch, kept in sorted(gathered.receipts.items()):
            put(f"receipts/{batch}.json", kept.raw)
        for entry_id, raw in sorted(gathered.links.items()):
            put(f"chain/{entry_id}.entry", raw, compress=False)
        put("custody.json", encoding.encode(gathered.custody))
        put("custody.txt", _custody_text(gathered.custody).encode("utf-8"))
        manifest = evidence.manifest(record, exporter, now, listed)
        package.writestr(_info(evidence.MANIFEST, zipfile.ZIP_DEFLATED), manifest)
        signature = evidence.sign_manifest(store.identity.signer, manifest)
        package.writestr(_info(evidence.SIGNATURE, zipfile.ZIP_STORED), signature)
        handle.flush()
        os.fsync(handle.fileno())


def _info(name: str, kind: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # times are in custody.json
    info.compress_type = kind
    info.external_attr = 0o600 << 16
    return info


def _file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        yield from iter(lambda: handle.read(1024 * 1024), b"")


def _custody_text(log: list[dict[str, Any]]) -> str:
    lines = ["Chain of custody (times in UTC; keys in hex)", ""]
    for item in log:
        when = datetime.fromtimestamp(item["time_ms"] / 1000, tz=UTC)
        lines.append(
            f"{when:%Y-%m-%d %H:%M:%S}  {item['event']:<9} version {item['version'][:16]}  "
            f"by {item['who']} (key {item['key'][:16]}…): {item['note']}"
        )
    return "\n".join(lines) + "\n"


# --- reading a package -------------------------------------------------------------------


# What a damaged archive makes zipfile raise: bad headers, a corrupt deflate stream, a member
# "encrypted" or compressed by a method it lacks, a bad CRC, sizes that do not add up.
ARCHIVE_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    NotImplementedError,
    RuntimeError,
    ValueError,
    OverflowError,
    OSError,
)


class ZipPackage:
    """A package's files, read from the ZIP without extracting anything to disk."""

    def __init__(self, archive: zipfile.ZipFile, package_size: int) -> None:
        self._archive = archive
        self._package_size = package_size
        infos = archive.infolist()
        self._names = [info.filename for info in infos]  # asked for often: listed once
        self._by_name = {info.filename: info for info in infos}

    def names(self) -> list[str]:
        return self._names

    def size(self, name: str) -> int:
        return self._by_name[name].file_size

    def stored_size(self, name: str) -> int:
        return self._by_name[name].compress_size

    def package_size(self) -> int:
        return self._package_size

    def read(self, name: str) -> bytes:
        return b"".join(self.chunks(name))

    def chunks(self, name: str) -> Iterator[bytes]:
        info = self._by_name[name]
        try:
            with self._archive.open(info) as member:
                yield from _bounded(member, info.file_size, name)
        except ARCHIVE_ERRORS as exc:
            raise MalformedData(f"{name} cannot be read from the archive ({exc})") from exc


def _bounded(member: IO[bytes], declared: int, name: str) -> Iterator[bytes]:
    """A member's bytes, never more than the archive declares (no decompression bombs)."""
    left = declared
    while True:
        chunk = member.read(min(1024 * 1024, left + 1))
        if not chunk:
            return
        left -= len(chunk)
        if left < 0:
            raise MalformedData(f"{name} is larger than the archive says")
        yield chunk


def verify_file(
    path: Path, org_admin_key: str | None = None, org_log: list[bytes] | None = None
) -> Verdict:
    """``evidence-verify``: check a package file offline."""
    try:
        with zipfile.ZipFile(path) as archive:
            package = ZipPackage(archive, path.stat().st_size)
            return evidence.verify(package, org_admin_key=org_admin_key, org_log=org_log)
    except FileNotFoundError as exc:
        raise OutputPathError(f"there is no file {str(path)!r}") from exc
    except ARCHIVE_ERRORS as exc:
        verdict = Verdict()
        verdict.fail("package", f"it is not a readable ZIP archive ({exc})")
        return verdict
