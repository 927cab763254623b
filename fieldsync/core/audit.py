"""Auditing what a server holds, trusting nothing but the organisation's keys (``admin verify``).

An insider can change any byte of the server's database or blob folder. So the audit takes the
server's own bookkeeping (its author, seq and record columns, its device heads) only to report
where it disagrees with the signed bytes, and re-derives everything from three anchors held by
the administrator, not by the server:

    admin key        every device key must come with the invite the admin key signed and the
                     device's proof over that invite's token (the enrolment, kept verbatim);
                     a token vouches for one device key, so two devices sharing one is a
                     device the server made up from an enrolment it kept
    server key       pinned in the administrator's store; every receipt must verify under it,
                     and the versions it acknowledged must still be held
    org read key     every version must open under its org wrap (AEAD and key commitment), so
                     the organisation can in fact read what the server says it holds, and every
                     attachment a version names must be held, its bytes hashing to its id

The feed (the order pulls read versions in) must name every stored version exactly once, each
author's in seq order: a version left out is one no reader is ever served, and nothing else
would show it.

It reports per author how far the chain is intact (seq 1 to n verify and link) and each
problem by author, seq and record, so a person can say precisely what was changed.

Kept whole: the audit is one pass over the holdings whose checks share what earlier ones found
(the devices, then each author's chain, then receipts, feed and blobs).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from fieldsync.core import crypto, enrolment, receipt
from fieldsync.core import entry as entry_format
from fieldsync.core.body import Body
from fieldsync.core.ids import fingerprint
from fieldsync.errors import FieldsyncError


@dataclass(frozen=True)
class Anchors:
    admin_key: bytes  # the organisation's first
    server_key: bytes | None  # as pinned by the administrator; None: use the held one, and say so
    # every read key the organisation has had; without them, bodies and attachments go unchecked
    org_reads: tuple[crypto.BoxPair, ...] = ()
    successors: tuple[bytes, ...] = ()  # the admin keys that succeeded it, as its log names them
    later_receipt_keys: tuple[bytes, ...] = ()  # receipt keys the log named after the first

    @property
    def admin_keys(self) -> tuple[str, ...]:
        return tuple(key.hex() for key in (self.admin_key, *self.successors))


@dataclass(frozen=True)
class HeldDevice:
    key: str
    box_key: str
    name: str
    status: str
    enrolment: bytes  # the enrolment request as the server received it
    last_seq: int  # the server's bookkeeping, compared with the chain
    head: str | None


@dataclass(frozen=True)
class HeldVersion:
    id: str  # the row's claims, compared with the signed bytes
    author: str
    seq: int
    record: str
    raw: bytes
    org_wrap: bytes


@dataclass(frozen=True)
class HeldFeedRow:
    pos: int
    entry: str  # the id of the stored version at this position


@dataclass(frozen=True)
class HeldReceipt:
    batch: str
    author: str
    raw: bytes


@dataclass(frozen=True)
class HeldBlob:
    id: str
    size: int
    actual_id: str | None  # what the stored bytes hash to; None when the file is gone
    actual_size: int


@dataclass(frozen=True)
class HeldQuarantine:
    author: str
    reason: str


class Holdings(Protocol):
    """Everything a server holds, as stored (``fieldsync.server.holdings`` reads it)."""

    admin_key: str
    server_key: str

    def devices(self) -> Iterable[HeldDevice]: ...
    def versions(self) -> Iterable[HeldVersion]: ...
    def feed(self) -> Iterable[HeldFeedRow]: ...  # in position order
    def receipts(self) -> Iterable[HeldReceipt]: ...
    def blobs(self) -> Iterable[HeldBlob]: ...
    def quarantined(self) -> Iterable[HeldQuarantine]: ...


@dataclass(frozen=True)
class Problem:
    what: str
    seq: int | None = None
    record: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"what": self.what, "seq": self.seq, "record": self.record}


@dataclass
class AuthorReport:
    key: str
    name: str | None = None  # None: no enrolment names this key
    fingerprint: str = ""
    status: str = "unknown"  # active | revoked | admin | unknown
    enrolment_ok: bool = False
    versions: int = 0
    last_seq: int = 0  # the highest seq held
    intact_through: int = 0  # seq 1 to this verify, open and link
    receipts: int = 0  # receipts that verify and whose acknowledged versions are still held
    quarantined: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.key,
            "name": self.name,
            "fingerprint": self.fingerprint,
            "status": self.status,
            "enrolment_ok": self.enrolment_ok,
            "versions": self.versions,
            "last_seq": self.last_seq,
            "intact_through": self.intact_through,
            "receipts": self.receipts,
            "quarantined": self.quarantined,
            "problems": [p.to_json() for p in self.problems],
        }


@dataclass
class AuditReport:
    server_key_pinned: bool
    authors: list[AuthorReport]
    blobs: int  # held blobs whose bytes hash to their id
    attachments: int  # attachment references checked against them
    bodies_opened: bool
    problems: list[Problem]  # those of no author: blobs, the server's identity

    @property
    def problem_count(self) -> int:
        return len(self.problems) + sum(len(a.problems) for a in self.authors)

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "problem_count": self.problem_count,
            "server_key_pinned": self.server_key_pinned,
            "bodies_opened": self.bodies_opened,
            "blobs": self.blobs,
            "attachments": self.attachments,
            "authors": [a.to_json() for a in self.authors],
            "problems": [p.to_json() for p in self.problems],
        }


@dataclass
class _Link:
    id: str | None  # None: the bytes at this seq do not verify
    prev: str | None
    record: str
    parents: tuple[str, ...]


def audit(anchors: Anchors, holdings: Holdings) -> AuditReport:
    return _Audit(anchors, holdings).run()


class _Audit:
    def __init__(self, anchors: Anchors, holdings: Holdings) -> None:
        self.anchors = anchors
        self.holdings = holdings
        self.server_key = anchors.server_key or bytes.fromhex(holdings.server_key)
        self.authors: dict[str, AuthorReport] = {}
        self.registry: dict[str, HeldDevice] = {}
        self.tokens: dict[str, list[str]] = defaultdict(list)  # invite token -> device keys
        self.chains: dict[str, dict[int, list[_Link]]] = defaultdict(lambda: defaultdict(list))
        self.held_ids: set[str] = set()
        self.rows: dict[str, tuple[str, int, str]] = {}  # row id -> author, seq, record
        self.attachments: list[tuple[str, int, str, str]] = []  # blob, seq, record, author
        self.problems: list[Problem] = []

    def author(self, key: str) -> AuthorReport:
        if key not in self.authors:
            self.authors[key] = AuthorReport(key=key)
        return self.authors[key]

    def run(self) -> AuditReport:
        self._identity()
        for device in self.holdings.devices():
            self._device(device)
        self._shared_tokens()
        for version in self.holdings.versions():
            self._version(version)
        for key, chain in self.chains.items():
            self._chain(self.author(key), chain)
        self._feed()
        for held in self.holdings.receipts():
            self._receipt(held)
        for quarantined in self.holdings.quarantined():
            self.author(quarantined.author).quarantined.append(quarantined.reason)
        intact_blobs = self._blobs()
        for blob_id, seq, record, author in self.attachments:
            if blob_id not in intact_blobs:
                self.author(author).problems.append(
                    Problem(
                        f"an attachment's blob {blob_id[:12]} is not held intact",
                        seq,
                        record,
                    )
                )
        return AuditReport(
            server_key_pinned=self.anchors.server_key is not None,
            authors=sorted(
                self.authors.values(), key=lambda a: (a.name is None, a.name or "", a.key)
            ),
            blobs=len(intact_blobs),
            attachments=len(self.attachments),
            bodies_opened=bool(self.anchors.org_reads),
            problems=self.problems,
        )

    def _identity(self) -> None:
        if self.holdings.admin_key != self.anchors.admin_key.hex():
            self.problems.append(
                Problem("the server's data names an admin key other than this organisation's")
            )
        if self.anchors.server_key and self.holdings.server_key != self.anchors.server_key.hex():
            self.problems.append(
                Problem(
                    "the server's receipt key is not the one pinned in the administrator's store"
                )
            )
        for key in self.anchors.admin_keys:
            admin = self.author(key)
            admin.name, admin.status, admin.enrolment_ok = "administrator", "admin", True

    def _device(self, device: HeldDevice) -> None:
        self.registry[device.key] = device
        if device.key in self.anchors.admin_keys:  # an administrator's log: no invite to check
            return
        report = self.author(device.key)
        report.name, report.status = device.name, device.status
        try:
            shown = enrolment.vouched(device.enrolment, self.anchors.admin_keys)
            if (shown.device_key, shown.box_key) != (device.key, device.box_key):
                raise ValueError("the registered keys are not the ones the device enrolled")
            if shown.name != device.name:
                raise ValueError("the registered name is not the one in the invite")
        except (FieldsyncError, ValueError) as exc:
            report.problems.append(Problem(f"the enrolment does not verify: {_reason(exc)}"))
            return
        report.enrolment_ok = True
        report.fingerprint = fingerprint(bytes.fromhex(device.key), bytes.fromhex(device.box_key))
        self.tokens[shown.token].append(device.key)

    def _shared_tokens(self) -> None:
        """Each device whose invite's token another device's enrolment used too."""
        for keys in (keys for keys in self.tokens.values() if len(keys) > 1):
            for key in keys:
                others = ", ".join(
                    f"{self.author(other).name!r} ({other[:16]}…)" for other in keys if other != key
                )
                report = self.author(key)
                report.enrolment_ok = False
                report.problems.append(
                    Problem(
                        f"its invite's token was used by another device too ({others}): a token "
                        "enrols one device, so the server made one of them up"
                    )
                )

    def _version(self, held: HeldVersion) -> None:
        self.rows[held.id] = (held.author, held.seq, held.record)
        try:
            entry = entry_format.parse(held.raw)
        except FieldsyncError as exc:
            # The signed bytes cannot be read: all we have is the row's word for where they sat.
            self.author(held.author).problems.append(
                Problem(f"the stored version does not verify: {exc.message}", held.seq, held.record)
            )
            self.chains[held.author][held.seq].append(_Link(None, None, held.record, ()))
            return
        header = entry.header
        report = self.author(header.author)
        report.versions += 1
        claims = (held.id, held.author, held.seq, held.record)
        if claims != (entry.id, header.author, header.seq, header.record):
            report.problems.append(
                Problem(
                    "the database row does not describe the version it holds (its id, author, "
                    f"seq or record were changed: the row says seq {held.seq}, record "
                    f"{held.record})",
                    header.seq,
                    header.record,
                )
            )
        if header.author not in self.registry and report.status != "admin":
            report.problems.append(
                Problem("signed by a key that no enrolment vouches for", header.seq, header.record)
            )
        ok = self._open(entry, held.org_wrap, report)
        self.chains[header.author][header.seq].append(
            _Link(entry.id if ok else None, header.prev, header.record, header.parents)
        )
        self.held_ids.add(entry.id)

    def _open(self, entry: entry_format.Entry, org_wrap: bytes, report: AuthorReport) -> bool:
        if not self.anchors.org_reads:
            return True
        header = entry.header
        try:
            what = f"version {entry.id[:12]}"
            _, key = crypto.unwrap_any(self.anchors.org_reads[::-1], org_wrap, what=what)
            body = Body.decode(entry.open(key))
        except FieldsyncError as exc:
            report.problems.append(
                Problem(
                    f"the organisation cannot read it: {exc.message}", header.seq, header.record
                )
            )
            return False
        for attachment in body.attachments:
            self.attachments.append((attachment.blob, header.seq, header.record, header.author))
        return True

    def _chain(self, report: AuthorReport, chain: dict[int, list[_Link]]) -> None:
        report.last_seq = max(chain)
        expected: str | None = None  # the id at seq - 1, while it is known
        known, broken = True, False
        for seq in range(1, report.last_seq + 1):
            links = chain.get(seq, [])
            problem = None
            if not links:
                problem = Problem(f"seq {seq} is missing: the chain breaks here", seq)
            elif len(links) > 1:
                problem = Problem(f"{len(links)} different versions claim seq {seq}", seq)
            else:
                link = links[0]
                self._parents(report, seq, link)
                if link.id is None:
                    broken = True  # its own problem is reported already
                elif known and link.prev != expected:
                    problem = Problem(
                        f"seq {seq} does not follow seq {seq - 1}: the chain breaks here",
                        seq,
                        link.record,
                    )
            if problem:
                report.problems.append(problem)
                broken = True
            if not broken:
                report.intact_through = seq
            known = len(links) == 1 and links[0].id is not None
            expected = links[0].id if known else None
        device = self.registry.get(report.key)
        if device is not None:
            held_head = chain.get(device.last_seq, [])
            if device.last_seq != report.last_seq or (
                len(held_head) == 1 and held_head[0].id not in (None, device.head)
            ):
                report.problems.append(
                    Problem(
                        f"the server's registry says it holds this device's versions up to seq "
                        f"{device.last_seq}; the versions held end at seq {report.last_seq}"
                    )
                )

    def _feed(self) -> None:
        """Every stored version in the feed exactly once, each author's in seq order."""
        served: dict[str, int] = defaultdict(int)
        last: dict[str, tuple[int, int]] = {}  # author -> (seq, pos) of its latest in the feed
        for row in self.holdings.feed():
            served[row.entry] += 1
            if row.entry not in self.rows:
                self.problems.append(
                    Problem(f"the feed names a version {row.entry[:12]} the server does not hold")
                )
                continue
            author, seq, record = self.rows[row.entry]
            before = last.get(author)
            if before is not None and before[0] >= seq and served[row.entry] == 1:
                self.author(author).problems.append(
                    Problem(f"the feed serves seq {seq} after seq {before[0]}", seq, record)
                )
            last[author] = (seq, row.pos)
        for version, (author, seq, record) in self.rows.items():
            times = served.get(version, 0)
            if times == 1:
                continue
            what = (
                "it is not in the feed: no reader is ever served it"
                if times == 0
                else f"it is in the feed {times} times (served twice)"
            )
            self.author(author).problems.append(
                Problem(f"seq {seq} (version {version[:12]}): {what}", seq, record)
            )

    def _parents(self, report: AuthorReport, seq: int, link: _Link) -> None:
        for parent in link.parents:
            if parent not in self.held_ids:
                report.problems.append(
                    Problem(
                        f"it names a parent version {parent[:12]} the server does not hold",
                        seq,
                        link.record,
                    )
                )

    def _receipt(self, held: HeldReceipt) -> None:
        report = self.author(held.author)
        try:
            keys = {self.server_key, *self.anchors.later_receipt_keys}
            signed = receipt.verify_any(held.raw, keys)
        except FieldsyncError as exc:
            report.problems.append(
                Problem(f"the receipt for batch {held.batch[:12]} does not verify: {exc.message}")
            )
            return
        if signed.device != held.author or signed.batch != held.batch:
            report.problems.append(
                Problem(f"the receipt for batch {held.batch[:12]} was filed under another batch")
            )
            return
        acknowledged = self.chains.get(signed.device, {}).get(signed.last_seq, [])
        if [link.id for link in acknowledged] != [signed.head]:
            report.problems.append(
                Problem(
                    f"a receipt acknowledged seq {signed.last_seq} (version {signed.head[:12]}); "
                    "the server no longer holds that version intact",
                    signed.last_seq,
                )
            )
            return
        report.receipts += 1

    def _blobs(self) -> set[str]:
        intact = set()
        for held in self.holdings.blobs():
            if held.actual_id is None:
                self.problems.append(
                    Problem(f"blob {held.id[:12]} is missing from the blob folder")
                )
            elif held.actual_id != held.id or held.actual_size != held.size:
                self.problems.append(
                    Problem(f"blob {held.id[:12]} was altered: its bytes no longer hash to its id")
                )
            else:
                intact.add(held.id)
        return intact


def _by_name(report: AuthorReport) -> tuple[bool, str, str]:
    return (report.name is None, report.name or "", report.key)


def _reason(exc: Exception) -> str:
    return exc.message if isinstance(exc, FieldsyncError) else str(exc)
