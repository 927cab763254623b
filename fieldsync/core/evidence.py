"""Evidence packages: one record's signed versions with everything needed to check them offline
(docs/evidence.md).

A package is a ZIP archive with exactly these files (names are made from hashes and keys,
never from anything a person typed, so no name can point outside the package)::

    README.txt                        what this is and how to check it, in plain words
    manifest.json                     every other file's name, size and SHA-256; the record;
                                      when and by which admin key it was exported
    manifest.sig                      hex Ed25519 signature by that admin key over
                                      LABEL_EVIDENCE || 0 || manifest.json
    organisation.json                 the organisation's first admin key, first read key and
                                      first receipt key: where its log starts
    organisation-log.json             the organisation's log as the exporter followed it
                                      ({"statements": [base64 of each signed statement]}):
                                      the admin keys that succeeded the first, the receipt keys,
                                      the analysts the admin key certified (optional: a package
                                      without it is checked against the first admin key alone)
    custody.json, custody.txt         the chain of custody: captured, signed, received,
                                      verified, exported (who, when, with what key)
    devices/<key>.enrolment           each author device's enrolment exactly as the server kept
                                      it: the invite the admin key signed and the device's proof
    versions/<id>.entry               every version of the record, exactly as signed
    versions/<id>.key                 its content key (hex): opens that version and no other
    versions/<id>.body.json           the decrypted body, exactly the bytes the key opens to
    attachments/<sha256>[.ext]        each attached file, as recorded
    blobs/<blob id>                   each attachment encrypted, exactly as the server received it
    receipts/<batch id>.json          the server's signed receipts covering the versions
    chain/<id>.entry                  the author's later entries (of other records, sealed: no
                                      key to them is in the package) linking a version to the
                                      entry a receipt names

``verify`` reads a package through ``PackageReader`` (the service opens the ZIP) and checks it
with no store and no server: every file against the signed manifest, every signature, every
hash, every key commitment, every enrolment against the admin keys, every receipt against the
server keys the admin key vouched for, every hash-chain link, and every custody statement
against the signed facts. The manifest's signer must be an admin key in force when it was
made, or an analyst the log certifies and had not revoked then. It reports what holds and
what does not, file by file.

Kept whole: the package format and the checks that read it are one contract (docs/evidence.md),
and the checks share one ``Verdict`` and the facts each earlier check establishes, in order.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from fieldsync.core import blob, crypto, encoding, enrolment, invite, orglog, receipt
from fieldsync.core import entry as entry_format
from fieldsync.core.body import Body
from fieldsync.core.entry import Entry
from fieldsync.core.ids import fingerprint, from_hex, is_hex32, is_record_id
from fieldsync.errors import FieldsyncError, MalformedData

FORMAT = "fieldsync/evidence"
VERSION = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
ORG_LOG = "organisation-log.json"
MAX_SMALL_FILE = 16 * 1024 * 1024  # any file read whole (entries are at most about 8 MiB)
MAX_FILES = 100_000
# What all compressed files together may inflate to: only small files are ever compressed, so
# a package cannot make the verifier hash much more than the bytes it actually holds.
MAX_INFLATED = 256 * 1024 * 1024
HEX = "[0-9a-f]{64}"
NAMES = re.compile(
    rf"(README\.txt|manifest\.json|manifest\.sig|organisation\.json|organisation-log\.json"
    rf"|custody\.json|custody\.txt"
    rf"|devices/{HEX}\.enrolment|versions/{HEX}\.(entry|key|body\.json)"
    rf"|attachments/{HEX}(\.[a-z0-9]{{1,8}})?|blobs/{HEX}|receipts/{HEX}\.json|chain/{HEX}\.entry)"
)
EVENTS = ("captured", "signed", "received", "verified", "exported")


class PackageReader(Protocol):
    """The files of a package, however it is stored (the service reads a ZIP)."""

    def names(self) -> list[str]: ...

    def size(self, name: str) -> int: ...

    def stored_size(self, name: str) -> int:
        """The bytes the file takes in the package (compressed, if it is)."""
        ...

    def package_size(self) -> int:
        """The bytes of the whole package as it is stored."""
        ...

    def read(self, name: str) -> bytes:
        """The whole file (only asked of files up to ``MAX_SMALL_FILE``)."""
        ...

    def chunks(self, name: str) -> Iterator[bytes]: ...


Level = Literal["ok", "warning", "failed"]


@dataclass(frozen=True)
class Finding:
    level: Level
    subject: str  # the file or object it is about
    statement: str  # what holds, or what does not


@dataclass
class Verdict:
    record: str = ""
    exported_by: str = ""  # hex admin key that signed the manifest
    organisation_fingerprint: str = ""
    findings: list[Finding] = field(default_factory=list)

    @property
    def holds(self) -> bool:
        return bool(self.findings) and not any(f.level == "failed" for f in self.findings)

    def ok(self, subject: str, statement: str) -> None:
        self.findings.append(Finding("ok", subject, statement))

    def warn(self, subject: str, statement: str) -> None:
        self.findings.append(Finding("warning", subject, statement))

    def fail(self, subject: str, statement: str) -> None:
        self.findings.append(Finding("failed", subject, statement))

    def to_json(self) -> dict[str, Any]:
        return {
            "holds": self.holds,
            "record": self.record,
            "exported_by": self.exported_by,
            "organisation_fingerprint": self.organisation_fingerprint,
            "findings": [f.__dict__ for f in self.findings],
        }


# --- building ----------------------------------------------------------------------------


def manifest(
    record: str, exported_by: str, created_ms: int, files: dict[str, tuple[int, str]]
) -> bytes:
    """The manifest of ``files`` (name -> (size, hex SHA-256)), canonical JSON."""
    return encoding.encode(
        {
            "created_ms": created_ms,
            "exported_by": exported_by,
            "files": [
                {"name": name, "sha256": digest, "size": size}
                for name, (size, digest) in sorted(files.items())
            ],
            "format": FORMAT,
            "record": record,
            "version": VERSION,
        }
    )


def sign_manifest(admin: crypto.SigningPair, data: bytes) -> bytes:
    return admin.sign(crypto.LABEL_EVIDENCE, data).hex().encode("ascii")


def event(
    kind: str, version: str, time_ms: int, key: str, who: str, note: str = ""
) -> dict[str, Any]:
    """One custody statement: ``kind`` of ``version`` at ``time_ms`` by ``key`` (``who``)."""
    return {
        "event": kind,
        "key": key,
        "note": note,
        "time_ms": time_ms,
        "version": version,
        "who": who,
    }


# --- checking ----------------------------------------------------------------------------


@dataclass
class _Facts:
    """What has been established so far, for the later checks to build on."""

    admin_key: str = ""  # the manifest's signer: an admin key, or an analyst's
    created_ms: int = 0
    root_key: str = ""  # the organisation's first admin key (organisation.json)
    admin_keys: tuple[str, ...] = ()  # the first, then each successor the log names
    members: dict[str, orglog.Member] = field(default_factory=dict)  # as the log certifies them
    receipt_keys: set[str] = field(default_factory=set)  # the first, then each the log names
    # when each admin key and member spoke for the organisation: (from, until or None), Unix ms
    windows: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    listed: dict[str, tuple[int, str]] = field(default_factory=dict)  # manifest: name -> size, sha
    good: set[str] = field(default_factory=set)  # files whose bytes match the signed manifest
    devices: dict[str, str] = field(default_factory=dict)  # device key -> name in its invite
    server_keys: set[str] = field(default_factory=set)  # named by admin-signed invites
    server_key: str = ""
    versions: dict[str, Entry] = field(default_factory=dict)
    bodies: dict[str, Body] = field(default_factory=dict)
    links: dict[tuple[str, int], Entry] = field(default_factory=dict)  # (author, seq) -> entry
    receipts: list[receipt.Receipt] = field(default_factory=list)
    by_device: dict[str, list[receipt.Receipt]] = field(default_factory=dict)  # by last_seq

    def covering(self, header: entry_format.Header) -> receipt.Receipt | None:
        """The first receipt that covers a version, found by bisection: a package may hold
        many thousands of receipts and statements, and each asks."""
        kept = self.by_device.get(header.author, [])
        at = bisect.bisect_left(kept, header.seq, key=lambda r: r.last_seq)
        return kept[at] if at < len(kept) else None


def verify(
    package: PackageReader,
    *,
    org_admin_key: str | None = None,
    org_log: list[bytes] | None = None,
) -> Verdict:
    """Check a package offline; ``org_admin_key``: the organisation's first admin key as
    published (without it, the package's own key is reported for a person to compare);
    ``org_log``: the organisation's log as the verifier holds it, newer than the package's
    perhaps, of which the package's must be the start (a key it retired since signs no
    package after)."""
    verdict = Verdict()
    facts = _Facts()
    if not _names(package, verdict) or not _sizes(package, verdict):
        return verdict
    if not _manifest(package, verdict, facts):
        return verdict
    _files(package, verdict, facts)
    if not _organisation(package, verdict, facts, org_admin_key, org_log):
        return verdict
    _devices(package, verdict, facts)
    _versions(package, verdict, facts)
    _attachments(package, verdict, facts)
    _receipts(package, verdict, facts)
    _made_after_its_receipts(verdict, facts)
    _custody(package, verdict, facts)
    return verdict


def _made_after_its_receipts(verdict: Verdict, facts: _Facts) -> None:
    """A package holds the server's receipts, so it was made after the newest of them: a
    manifest dated before one was backdated (to pass for a key in force then)."""
    newest = max((r.time_ms for r in facts.receipts), default=0)
    if facts.created_ms < newest:
        verdict.fail(
            MANIFEST,
            f"dated {_utc(facts.created_ms)}, before a server receipt it holds "
            f"({_utc(newest)}): its time was set back",
        )


def _names(package: PackageReader, verdict: Verdict) -> bool:
    names = package.names()
    if len(names) > MAX_FILES:
        verdict.fail("package", f"it holds {len(names)} files, more than any package can")
        return False
    if len(set(names)) != len(names):
        verdict.fail("package", "it holds two files under the same name")
        return False
    strange = [n for n in names if not NAMES.fullmatch(n)]
    for name in strange[:20]:
        verdict.fail(_shown(name), "is not a file an evidence package holds")
    if MANIFEST not in names or SIGNATURE not in names:
        verdict.fail("package", "it has no signed manifest: it is not a fieldsync evidence package")
        return False
    return True  # a strange file fails the package, but the rest is still checked


def _sizes(package: PackageReader, verdict: Verdict) -> bool:
    """Refuse, before anything is read or hashed, a package whose files declare more bytes than
    it can hold: a bomb that inflates to terabytes, or many files over the same bytes."""
    names = package.names()
    stored = sum(package.stored_size(n) for n in names)
    if stored > package.package_size():
        verdict.fail("package", "its files claim more bytes than it holds: nothing was read")
        return False
    inflated = 0
    for name in names:
        size, kept = package.size(name), package.stored_size(name)
        if size > kept:
            inflated += size
            if size > MAX_SMALL_FILE:
                verdict.fail(_shown(name), f"declares {size} bytes from {kept}: nothing was read")
                return False
    if inflated > MAX_INFLATED:
        verdict.fail(
            "package", f"its compressed files declare {inflated} bytes in all: nothing was read"
        )
        return False
    return True


def _manifest(package: PackageReader, verdict: Verdict, facts: _Facts) -> bool:
    try:
        raw = _small(package, MANIFEST)
        doc = encoding.decode(raw, what="the manifest", max_bytes=MAX_SMALL_FILE)
        files = _manifest_files(doc)
        signature = from_hex(
            _small(package, SIGNATURE).decode("ascii"), crypto.SIGNATURE_BYTES, what=SIGNATURE
        )
        crypto.verify(
            bytes.fromhex(doc["exported_by"]),
            crypto.LABEL_EVIDENCE,
            raw,
            signature,
            what="the manifest",
        )
    except (FieldsyncError, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        verdict.fail(MANIFEST, f"the manifest or its signature does not verify ({_why(exc)})")
        return False
    facts.admin_key, facts.created_ms, facts.listed = doc["exported_by"], doc["created_ms"], files
    verdict.record, verdict.exported_by = doc["record"], doc["exported_by"]
    return True


def _manifest_files(doc: object) -> dict[str, tuple[int, str]]:
    keys = {"created_ms", "exported_by", "files", "format", "record", "version"}
    if not isinstance(doc, dict) or set(doc) != keys:
        raise ValueError("not the expected fields")
    if doc["format"] != FORMAT or doc["version"] != VERSION:
        raise ValueError("an unknown format or version")
    if not (
        is_hex32(doc["exported_by"])
        and isinstance(doc["record"], str)
        and is_record_id(doc["record"])
    ):
        raise ValueError("invalid values")
    if not isinstance(doc["created_ms"], int) or not isinstance(doc["files"], list):
        raise ValueError("invalid values")
    files: dict[str, tuple[int, str]] = {}
    for item in doc["files"]:
        if not isinstance(item, dict) or set(item) != {"name", "sha256", "size"}:
            raise ValueError("a file entry without name, size and hash")
        name, size, digest = item["name"], item["size"], item["sha256"]
        ok = isinstance(name, str) and NAMES.fullmatch(name) and name not in (MANIFEST, SIGNATURE)
        if not ok or not isinstance(size, int) or size < 0 or not is_hex32(digest) or name in files:
            raise ValueError("a file entry with invalid values")
        files[name] = (size, digest)
    return files


def _files(package: PackageReader, verdict: Verdict, facts: _Facts) -> None:
    present = set(package.names()) - {MANIFEST, SIGNATURE}
    for name in sorted(present - set(facts.listed)):
        if NAMES.fullmatch(name):  # other names were reported already
            verdict.fail(name, "was added: the signed manifest does not list it")
    for name, (size, digest) in sorted(facts.listed.items()):
        if name not in present:
            verdict.fail(name, "is missing: the signed manifest lists it")
            continue
        if package.size(name) != size:
            verdict.fail(name, f"has {package.size(name)} bytes where the manifest says {size}")
            continue
        try:
            found = _sha256(package.chunks(name))[0]
        except FieldsyncError as exc:
            verdict.fail(name, f"cannot be read ({exc.message})")
            continue
        if found != digest:
            verdict.fail(name, "was altered: its SHA-256 is not the one the manifest lists")
            continue
        facts.good.add(name)
    if facts.good == set(facts.listed) and present == set(facts.listed):
        verdict.ok("package", f"all {len(facts.listed)} files are exactly as the manifest lists")


def _organisation(
    package: PackageReader,
    verdict: Verdict,
    facts: _Facts,
    org_key: str | None,
    org_log: list[bytes] | None,
) -> bool:
    """organisation.json and the log: who the organisation is, and whether the manifest's
    signer spoke for it when the package was made."""
    name = "organisation.json"
    try:
        doc = encoding.decode(_small(package, name), what=name)
        if not isinstance(doc, dict) or set(doc) != {"admin_key", "org_read_key", "server_key"}:
            raise ValueError("not the expected fields")
        keys = [doc["admin_key"], doc["org_read_key"]]
        if not all(map(is_hex32, keys)) or not (
            doc["server_key"] is None or is_hex32(doc["server_key"])
        ):
            raise ValueError("invalid keys")
    except (FieldsyncError, ValueError) as exc:
        verdict.fail(name, f"cannot be read ({_why(exc)})")
        return False
    facts.root_key, facts.server_key = doc["admin_key"], doc["server_key"] or ""
    if org_key is not None and org_key != facts.root_key:
        verdict.fail(name, "names an admin key other than the organisation's published admin key")
        return False
    root = orglog.OrgState.root(facts.root_key, doc["org_read_key"], facts.server_key)
    if not _log(package, verdict, facts, root, org_log):
        return False
    verdict.organisation_fingerprint = fingerprint(
        bytes.fromhex(doc["admin_key"]), bytes.fromhex(doc["org_read_key"])
    )
    verdict.ok(name, f"organisation fingerprint {verdict.organisation_fingerprint}")
    return _exporter(verdict, facts)


def _log(
    package: PackageReader,
    verdict: Verdict,
    facts: _Facts,
    root: orglog.OrgState,
    given: list[bytes] | None,
) -> bool:
    """The organisation's log, followed from its root: which keys spoke for it, and when."""
    facts.admin_keys, facts.receipt_keys = (facts.root_key,), {facts.server_key} - {""}
    facts.windows = {facts.root_key: (0, None)}
    if ORG_LOG not in facts.listed and given is None:
        return True
    try:
        raws = read_log(_small(package, ORG_LOG)) if ORG_LOG in facts.listed else []
        state = orglog.follow(root, raws)
        if given is not None:
            if given[: len(raws)] != raws:
                raise ValueError("the package's log is not the start of the one given to check it")
            raws = given
            state = orglog.follow(root, raws)
    except (FieldsyncError, ValueError, TypeError, binascii.Error) as exc:
        verdict.fail(ORG_LOG, f"the organisation's log does not verify ({_why(exc)})")
        return False
    facts.admin_keys = state.admin_keys
    facts.members = {m.key: m for m in state.members}
    facts.receipt_keys = {*state.server_keys, state.server_key} - {""}
    facts.windows = _windows(facts.root_key, [orglog.parse(raw) for raw in raws])
    verdict.ok(
        ORG_LOG,
        f"all {state.seq} statements verify, each signed by the admin key in force"
        + (f"; {len(state.retired)} succession(s) of the admin key" if state.retired else ""),
    )
    return True


def read_log(data: bytes) -> list[bytes]:
    """The statements of an organisation-log.json (a package's, or ``admin org-log``'s)."""
    doc = encoding.decode(data.removesuffix(b"\n"), what=ORG_LOG, max_bytes=MAX_SMALL_FILE)
    if not isinstance(doc, dict) or set(doc) != {"statements"}:
        raise MalformedData("the organisation's log file does not have the expected fields")
    if not isinstance(doc["statements"], list) or not all(
        isinstance(raw, str) for raw in doc["statements"]
    ):
        raise MalformedData("the organisation's log file holds no list of statements")
    try:
        return [base64.b64decode(raw, validate=True) for raw in doc["statements"]]
    except (ValueError, binascii.Error) as exc:
        raise MalformedData("a statement of the organisation's log file is not base64") from exc


def log_file(statements: list[bytes]) -> bytes:
    """An organisation-log.json: ``read_log``'s inverse."""
    return encoding.encode({"statements": [base64.b64encode(raw).decode() for raw in statements]})


def _windows(root: str, log: list[orglog.Statement]) -> dict[str, tuple[int, int | None]]:
    """When each key spoke for the organisation (Unix ms, from; until, or None: still): an
    admin key from its succession (the first from the start) until the next; a member from
    its certification until its revocation."""
    windows: dict[str, tuple[int, int | None]] = {root: (0, None)}
    for statement in log:
        if statement.kind in (orglog.SUCCESSION, orglog.REVOKE):
            ending = statement.signer if statement.kind == orglog.SUCCESSION else None
            key = ending or str(statement.fields["member_key"])
            windows[key] = (windows[key][0], statement.time_ms)
        if statement.kind in (orglog.SUCCESSION, orglog.MEMBER):
            named = statement.fields.get("admin_key") or statement.fields["member_key"]
            windows[str(named)] = (statement.time_ms, None)
    return windows


def _exporter(verdict: Verdict, facts: _Facts) -> bool:
    """The manifest's signer spoke for the organisation when the package was made: an admin
    key then in force, or an analyst certified and not yet revoked."""
    key, when = facts.admin_key, facts.created_ms
    member = facts.members.get(key)
    if key in facts.admin_keys:
        who = "the admin key"
    elif member is not None and member.role == orglog.ANALYST:
        who = f"analyst {_safe(member.name)!r}, certified in the organisation's log,"
    else:
        verdict.fail(MANIFEST, "signed by a key other than the organisation's admin key")
        return False
    start, until = facts.windows[key]
    if when < start:
        verdict.fail(MANIFEST, f"signed by {who} at a time before the organisation's log named it")
        return False
    if until is not None and when >= until:
        verdict.fail(
            MANIFEST,
            f"signed by {who} after the organisation's log "
            + ("retired it" if key in facts.admin_keys else "revoked them")
            + f" ({_utc(until)})",
        )
        return False
    verdict.ok(MANIFEST, f"signed by {who} {key[:16]}… on {_utc(when)}")
    if until is not None:
        verdict.warn(
            MANIFEST,
            f"the organisation's log has since {'retired' if member is None else 'revoked'} "
            f"that key ({_utc(until)}): the package's time is its signer's word; ask the "
            "organisation whether it made this package",
        )
    return True


def _devices(package: PackageReader, verdict: Verdict, facts: _Facts) -> None:
    for name in _under(package, "devices/"):
        key = name.split("/")[1].split(".")[0]
        try:
            request = enrolment.parse(_small(package, name))
            shown = invite.read(request.invite, now_ms=None)
            if shown.admin_key != facts.root_key or shown.signed_by not in facts.admin_keys:
                raise ValueError("its invite was not signed by the admin key of this package")
            enrolment.verify_proof(request, shown.token)
            if request.device_key != key:
                raise ValueError("it enrols another key than its file name says")
        except (FieldsyncError, ValueError) as exc:
            verdict.fail(name, f"the enrolment does not verify ({_why(exc)})")
            continue
        facts.devices[key] = shown.name
        facts.server_keys.add(shown.server_key)
        verdict.ok(
            name,
            f"device {_safe(shown.name)!r} (fingerprint "
            f"{fingerprint(bytes.fromhex(key), bytes.fromhex(request.box_key))}) was let in by "
            "the admin key",
        )


def _versions(package: PackageReader, verdict: Verdict, facts: _Facts) -> None:
    for name in _under(package, "versions/", ".entry"):
        version_id = name.split("/")[1].split(".")[0]
        subject = f"version {version_id[:16]}"
        try:
            entry = entry_format.parse(_small(package, name))
        except FieldsyncError as exc:
            verdict.fail(name, f"its signature or format does not verify ({exc.message})")
            continue
        header = entry.header
        if entry.id != version_id:
            verdict.fail(name, "its bytes hash to another id than its file name says")
            continue
        if header.record != verdict.record:
            verdict.fail(name, "is a version of another record")
            continue
        if header.author not in facts.admin_keys and header.author not in facts.devices:
            verdict.fail(name, "is signed by a key the package shows no enrolment for")
            continue
        try:
            key_file = f"versions/{version_id}.key"
            key = from_hex(
                _small(package, key_file).decode("ascii"), crypto.KEY_BYTES, what=key_file
            )
            plain = entry.open(key)
            if plain != _small(package, f"versions/{version_id}.body.json"):
                raise ValueError("the decrypted body file is not what the key opens the version to")
            facts.bodies[entry.id] = Body.decode(plain)
        except (FieldsyncError, ValueError, UnicodeDecodeError) as exc:
            verdict.fail(
                subject, f"its key or body does not match the signed version ({_why(exc)})"
            )
            continue
        facts.versions[entry.id] = entry
        facts.links[(header.author, header.seq)] = entry
        member = facts.members.get(header.author)
        by = (
            "the admin key (the administrator)"
            if header.author in facts.admin_keys
            else f"analyst {_safe(member.name)!r}, certified in the organisation's log"
            if member is not None
            else f"device {_safe(facts.devices[header.author])!r}"
        )
        verdict.ok(
            subject,
            f"signed by {by} as seq {header.seq}; its key opens it to exactly the body given, "
            "which matches the commitment it was signed with",
        )
    if not facts.versions:
        verdict.fail("versions", "the package holds no version that verifies")
    for entry in facts.versions.values():
        missing = [p for p in entry.header.parents if p not in facts.versions]
        if missing:
            verdict.fail(f"version {entry.id[:16]}", "builds on a version the package lacks")
    for name in _under(package, "chain/", ".entry"):
        try:
            link = entry_format.parse(_small(package, name))
        except FieldsyncError as exc:
            verdict.fail(name, f"its signature or format does not verify ({exc.message})")
            continue
        if link.id != name.split("/")[1].split(".")[0]:
            verdict.fail(name, "its bytes hash to another id than its file name says")
            continue
        facts.links[(link.header.author, link.header.seq)] = link


def _attachments(package: PackageReader, verdict: Verdict, facts: _Facts) -> None:
    present: dict[str, str] = {}
    for name in _under(package, "attachments/"):
        sha = name.split("/")[1].split(".")[0]
        if sha in present:
            verdict.fail(name, "holds the same file as another attachment, under another name")
        present[sha] = name
    seen: set[str] = set()
    for body in facts.bodies.values():
        for attached in body.attachments:
            if attached.sha256 in seen:
                continue
            seen.add(attached.sha256)
            subject = f"attachment {attached.sha256[:16]}"
            original = present.get(attached.sha256)
            if original is None:
                verdict.fail(subject, "a version references it, but the package lacks the file")
                continue
            sealed = f"blobs/{attached.blob}"
            if sealed not in package.names():
                verdict.fail(subject, "the encrypted copy the server received is missing")
                continue
            try:
                hashed = (  # a file the manifest check hashed already is not read again
                    facts.listed[original][::-1]
                    if original in facts.good
                    else _sha256(package.chunks(original))
                )
                if hashed != (attached.sha256, attached.size):
                    raise ValueError(f"{original} is not the file the signed version describes")
                if blob.blob_id_of_pieces(package.chunks(sealed)) != attached.blob:
                    raise ValueError(f"{sealed} is not the encrypted file the version names")
                reader = _ChunkReader(package.chunks(sealed))
                opened = blob.decrypt(bytes.fromhex(attached.key), reader, what=sealed)  # type: ignore[arg-type]
                if _sha256(opened)[0] != attached.sha256:
                    raise ValueError("it decrypts to another file")
            except (FieldsyncError, ValueError) as exc:
                verdict.fail(subject, f"does not hold ({_why(exc)})")
                continue
            verdict.ok(
                original,
                f"{attached.size} bytes, SHA-256 as the signed version records; the encrypted "
                "copy the server received decrypts to exactly this file",
            )
    for sha in sorted(set(present) - seen):
        verdict.fail(present[sha], "no version of the record references this file")


def _receipts(package: PackageReader, verdict: Verdict, facts: _Facts) -> None:
    if facts.server_key and facts.server_key not in facts.server_keys and facts.devices:
        verdict.fail("organisation.json", "names a server key no admin-signed invite names")
        return
    for name in _under(package, "receipts/"):
        try:
            if not facts.server_key:
                raise ValueError("organisation.json names no server key")
            shown = receipt.verify_any(
                _small(package, name), {bytes.fromhex(key) for key in facts.receipt_keys}
            )
            if shown.batch != name.split("/")[1].split(".")[0]:
                raise ValueError("it answers another batch than its file name says")
        except (FieldsyncError, ValueError) as exc:
            verdict.fail(name, f"does not verify against the server's key ({_why(exc)})")
            continue
        facts.receipts.append(shown)
    for shown in sorted(facts.receipts, key=lambda r: r.last_seq):
        facts.by_device.setdefault(shown.device, []).append(shown)
    reached: dict[tuple[str, str], str] = {}
    for entry in sorted(facts.versions.values(), key=lambda e: (e.header.author, e.header.seq)):
        header, subject = entry.header, f"version {entry.id[:16]}"
        covering = facts.covering(header)
        if covering is None:
            verdict.warn(subject, "no receipt shows the server received it (not yet delivered?)")
            continue
        shown = covering
        broken = _chain_break(facts, entry, shown, reached)
        if broken:
            verdict.fail(subject, f"the hash chain to the receipt's entry is broken: {broken}")
            continue
        verdict.ok(
            subject,
            f"the server acknowledged it on {_utc(shown.time_ms)} (receipt for seq "
            f"{shown.last_seq}, signed by the server key the admin key vouched for)",
        )


def _chain_break(
    facts: _Facts, entry: Entry, shown: receipt.Receipt, reached: dict[tuple[str, str], str]
) -> str:
    """What breaks the chain from ``entry`` to the head ``shown`` names ("" if nothing).
    ``reached`` remembers every entry walked, per receipt, and what the walk from it found:
    a later version of the same run stops there, so each link is followed once per receipt."""
    current, walked, found = entry, [entry.id], None
    for seq in range(entry.header.seq + 1, shown.last_seq + 1):
        found = reached.get((shown.batch, current.id))
        if found is not None:
            break
        link = facts.links.get((entry.header.author, seq))
        if link is None:
            found = f"the entry at seq {seq} is missing"
            break
        if link.header.prev != current.id:
            found = f"the entry at seq {seq} does not follow the one before it"
            break
        current = link
        walked.append(current.id)
    if found is None:
        found = "" if current.id == shown.head else "the receipt names another entry at its seq"
    reached.update(((shown.batch, walked_id), found) for walked_id in walked)
    return found


def _custody(package: PackageReader, verdict: Verdict, facts: _Facts) -> None:
    name = "custody.json"
    try:
        events = encoding.decode(_small(package, name), what=name, max_bytes=MAX_SMALL_FILE)
        if not isinstance(events, list):
            raise ValueError("not a list of events")
    except (FieldsyncError, ValueError) as exc:
        verdict.fail(name, f"cannot be read ({_why(exc)})")
        return
    wrong = 0
    kinds: dict[str, set[str]] = {}
    for item in events:
        problem = _custody_problem(item, facts)
        if problem:
            wrong += 1
            if wrong <= 20:
                verdict.fail(name, problem)
            continue
        kinds.setdefault(item["version"], set()).add(item["event"])
    for version in facts.versions:
        if not {"captured", "signed"} <= kinds.get(version, set()):
            verdict.fail(name, f"has no capture and signature of version {version[:16]}")
    if not wrong:
        verdict.ok(name, f"all {len(events)} statements agree with the signed facts")


def _custody_problem(item: object, facts: _Facts) -> str:
    keys = {"event", "key", "note", "time_ms", "version", "who"}
    if not isinstance(item, dict) or set(item) != keys or item["event"] not in EVENTS:
        return "a statement is not of the expected form"
    kind, version, key, time_ms = item["event"], item["version"], item["key"], item["time_ms"]
    entry = facts.versions.get(version)
    if entry is None:
        return f"a statement names version {str(version)[:16]}, which does not verify here"
    if kind in ("captured", "signed"):
        expected = (entry.header.author, entry.header.hlc.wall_ms)
    elif kind == "received":
        covering = facts.covering(entry.header)
        expected = ("", -1) if covering is None else (covering.server, covering.time_ms)
    elif kind == "verified":
        expected = (facts.admin_key, time_ms)  # attested by the admin key's signature alone
    else:
        expected = (facts.admin_key, facts.created_ms)
    if (key, time_ms) != expected:
        return f"its '{kind}' statement for version {version[:16]} does not match the signed facts"
    return ""


# --- helpers -----------------------------------------------------------------------------


class _ChunkReader:
    """A file-like reader over chunks, for ``blob.decrypt``."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buffer) < n:
            piece = next(self._chunks, b"")
            if not piece:
                break
            self._buffer += piece
        if n < 0:
            n = len(self._buffer)
        taken, self._buffer = self._buffer[:n], self._buffer[n:]
        return taken


def _small(package: PackageReader, name: str) -> bytes:
    if name not in package.names():
        raise ValueError(f"{name} is missing")
    if package.size(name) > MAX_SMALL_FILE:
        raise ValueError(f"{name} is too large")
    return package.read(name)


def _under(package: PackageReader, folder: str, suffix: str = "") -> list[str]:
    """The well-named files in ``folder`` (any other name was reported already)."""
    return sorted(
        n
        for n in package.names()
        if n.startswith(folder) and n.endswith(suffix) and NAMES.fullmatch(n)
    )


def _sha256(chunks: Iterator[bytes]) -> tuple[str, int]:
    hashed, size = hashlib.sha256(), 0
    for chunk in chunks:
        hashed.update(chunk)
        size += len(chunk)
    return hashed.hexdigest(), size


def _why(exc: Exception) -> str:
    return exc.message if isinstance(exc, FieldsyncError) else str(exc)


def _safe(text: str) -> str:
    return re.sub(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", "?", text)


def _shown(name: str) -> str:
    return _safe(name)[:120]


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
