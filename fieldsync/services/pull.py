"""Fetching what others wrote: ``fieldsync pull`` and ``fieldsync admin pull`` (docs/conflicts.md).

Every page is checked in full before anything of it is stored, and refused whole for any sign
that the server, or something between it and this store, altered what it serves: a version
whose signature or id does not verify, one signed by a key this store does not trust (a device:
the organisation's admin key; an administrator: the devices whose enrolment the admin key
vouched for), one served before a version it builds on, a second version at an author's seq,
a receipt that does not verify.

What only a reader can find wrong is the author's doing, not the server's, and must not stop
everyone else's testimony: a wrap that does not open, a body that is not one, answers that do
not fit their form, a parent from another record, an attachment the server cannot give; and,
for an administrator, a device the server lists under an invite whose token another device
already used (a token vouches for one device key: only the server can have made the other,
and setting it aside keeps it from stopping the rest). Such a version is set aside by name
(``fieldsync.services.problems``), kept as served (each version once, up to a cap per author)
and tried again at every pull, and with any other wrap the server serves it with later; the
rest of the page is stored and the cursor moves on. An administrator's pull then names every
version the server's feed skipped, by author and seq.

Then every record with several heads is settled (``settling.settle``): merged into a new signed
version when the heads' changes fit together, marked in conflict when they do not.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from fieldsync.core import enrolment, receipt, words
from fieldsync.core import entry as entry_format
from fieldsync.core.invite import ROLES
from fieldsync.core.settings import Device, Listed, Pull, Registry, Span
from fieldsync.core.wire import FeedPage
from fieldsync.errors import (
    FieldsyncError,
    IntegrityError,
    Interrupted,
    ServerError,
)
from fieldsync.services import members, problems, settling, sync
from fieldsync.services.forms import get_form
from fieldsync.services.judge import REFUSED_HINT, Checked, Judge
from fieldsync.services.sync import ClientFor, signed_client
from fieldsync.store import custody, delivery, orgkeys, settings
from fieldsync.store.store import Store
from fieldsync.transport.client import SyncClient


@dataclass
class PullReport:
    received: int = 0  # versions stored
    held: int = 0  # versions this store had already
    skipped: int = 0  # versions of records this device has wiped after delivery
    blobs: int = 0  # attachments downloaded
    merged: list[str] = field(default_factory=list)  # records merged into a new version
    conflicts: list[str] = field(default_factory=list)  # records left for a person
    restarted: bool = False  # the feed was rewritten under the cursor: read again from the start
    set_aside: int = 0  # versions this pull could not use, kept to try again
    recovered: int = 0  # versions set aside by an earlier pull and stored now
    problems: list[problems.Problem] = field(default_factory=list)  # all still outstanding
    alerts: list[str] = field(default_factory=list)  # forks of the organisation's log
    certified: list[str] = field(default_factory=list)  # members the administrator certified
    held_back: str | None = None  # why the administrator's pull certified no one now
    strangers: list[str] = field(default_factory=list)  # members whose invite it did not make


def pull(
    store: Store,
    *,
    client_for: ClientFor = signed_client,
    progress: Callable[[int], None] = lambda n: None,
    from_start: bool = False,
) -> PullReport:
    """Fetch from the cursor everything this store may read, then settle branched records;
    ``from_start`` reads the whole feed again (after a restore), storing nothing twice."""
    url = sync.destination(store).server
    everything = orgkeys.reads_everything(store)
    report = PullReport()
    saved = Pull() if from_start else settings.load(store, Pull) or Pull()
    cursor, anchor = saved.after, saved.anchor
    touched: set[str] = set()
    earlier = problems.listed(store)
    try:
        with client_for(url, store) as client:
            sync.follow_org_log(store, client)
            forked = bool(orgkeys.alerts(store))  # the log forks: no bundle signed past it
            if orgkeys.role(store) in ROLES and not forked:
                members.receive_bundle(store, client)
            claimed, refused = _registry(store, client) if everything else ({}, {})
            if store.identity.is_admin:
                done = members.certify(store, client)
                report.certified, report.held_back = done.members, done.held_back
                report.strangers = done.strangers
            trusted = _trusted(store)  # with the members the log certifies now
            judge = Judge(store, trusted | set(claimed), earlier, refused)
            for retried in judge.retry(report):
                _store(store, judge, retried, client, report, touched)
            page, report.restarted = _resume(client, cursor, anchor)
            if report.restarted:
                cursor = 0
            while True:
                page = page or client.feed(cursor)
                items, after, more = _page(page, cursor)
                checked = judge.page(items, report)
                custody.keep_receipts(store, _receipts(store, page) if everything else [])
                _store(store, judge, checked, client, report, touched)
                if items:  # the version at the cursor, to see next time that it is still there
                    anchor = entry_format.entry_id(items[-1][0])
                # a crash before this re-reads a page
                settings.save(store, Pull(after, anchor))
                progress(len(items))
                cursor, page = after, None
                if not more:
                    break
    except KeyboardInterrupt:
        # each page is stored, then the cursor saved: nothing checked is lost, and the branched
        # records left unsettled are settled by the next pull (settle_all)
        raise Interrupted(
            f"pull interrupted; {words.count(report.received, 'version')} received and "
            f"checked so far {words.verb(report.received, 'is', 'are')} kept",
            hint="Run 'fieldsync pull' again: it resumes where it stopped.",
        ) from None
    if everything:
        held_back = _withheld(store, judge.kept(), claimed)
        if held_back != problems.withheld(store):
            problems.save_withheld(store, held_back)
    known = {item.id for item in earlier}
    report.set_aside = len(set(judge.aside) - known)
    report.recovered = len(known - set(judge.aside))
    report.problems = problems.named(store)
    report.alerts = orgkeys.alerts(store)
    settle_all(store, report, touched)
    return report


def _store(
    store: Store,
    judge: Judge,
    checked: list[Checked],
    client: SyncClient,
    report: PullReport,
    touched: set[str],
) -> None:
    """Fetch the attachments of what was checked, then store it and keep what was set aside
    (before the cursor moves past it)."""
    usable = judge.with_attachments(checked, client, report)
    if usable:
        with store.writer() as writer:
            for item in usable:
                summary = get_form(item.body.form).summary(item.body.answers)
                if writer.receive(item.entry, item.wrap, item.body, summary):
                    report.received += 1
                    touched.add(item.entry.header.record)
                else:
                    report.held += 1
    judge.stored(usable)
    judge.save()


def settle_all(
    store: Store, report: PullReport | None = None, touched: set[str] | None = None
) -> PullReport:
    """Merge or mark the branched records: those a pull touched, and any not yet marked in
    conflict (so a merge a crash interrupted is made on the next pull)."""
    report = report or PullReport()
    settled = settling.settle(store, delivery.branched_records(store), touched)
    report.merged, report.conflicts = settled.merged, settled.conflicts
    return report


def _trusted(store: Store) -> set[str]:
    """The authors whose versions this store accepts: itself, the organisation's admin key and
    the analysts its log certifies (an administrator and the members add the vouched
    devices)."""
    state = orgkeys.followed(store)
    analysts = state.analysts if state is not None else set()
    return {store.identity.device_id, *orgkeys.admin_keys_trusted(store), *analysts}


def _registry(store: Store, client: SyncClient) -> tuple[dict[str, int], dict[str, str]]:
    """The devices the admin key vouched for, checked here from the enrolments the server
    kept (its word alone is not enough); remembered for sealing analysts' versions. Returns
    each one's last seq as the server claims it (the analysts' log's too): a pull that ends
    short of it names what the feed withheld; and the devices refused because another device
    used their invite's token, each with the reason it is named by."""
    state = orgkeys.followed(store)
    assert state is not None
    admin_keys = state.admin_keys  # who signed every invite: the first, or a successor
    found: dict[str, tuple[enrolment.Vouched, str]] = {}
    claimed: dict[str, int] = {}
    for listed in client.devices():
        if listed.device in admin_keys:
            claimed[listed.device] = _count(listed.last_seq)
            continue
        try:
            raw = base64.b64decode(listed.enrolment, validate=True)
            shown = enrolment.vouched(raw, admin_keys)
        except (FieldsyncError, ValueError, binascii.Error):
            continue  # not vouched for: its versions will be refused by name below
        if shown.device_key == listed.device:
            found[shown.device_key] = (shown, listed.enrolment)
            claimed[shown.device_key] = _count(listed.last_seq)
    saved = settings.load(store, Registry) or Registry()
    bound = _tokens_bound(saved, admin_keys)
    refused = _spent_tokens(store, found, bound)
    devices = {
        key: Device(box_key=shown.box_key, name=shown.name, enrolment=raw, role=shown.role)
        for key, (shown, raw) in found.items()
        if key not in refused
    }
    settings.save(store, Registry(devices, bound))
    return {k: n for k, n in claimed.items() if k not in refused}, refused


def _tokens_bound(saved: Registry, admin_keys: tuple[str, ...]) -> dict[str, str]:
    """Each invite token this store has seen enrol a device, and the one device key it vouches
    for ("": none, two having shown it); kept across pulls, so a device the server stops
    listing still holds its token. A registry saved before tokens were kept gives them from
    its devices' enrolments."""
    bound = dict(saved.tokens)
    if bound or not saved.devices:
        return bound
    users: dict[str, set[str]] = {}
    for key, device in saved.devices.items():
        if device.enrolment is None:
            continue
        try:
            raw = base64.b64decode(device.enrolment, validate=True)
            users.setdefault(enrolment.vouched(raw, admin_keys).token, set()).add(str(key))
        except (FieldsyncError, KeyError, ValueError, binascii.Error):
            continue
    return {token: next(iter(keys)) if len(keys) == 1 else "" for token, keys in users.items()}


def _spent_tokens(
    store: Store, found: dict[str, tuple[enrolment.Vouched, str]], bound: dict[str, str]
) -> dict[str, str]:
    """The listed devices refused because their invite's token vouches for another device key
    (each with why), binding in ``bound`` the tokens seen for the first time. A token enrols
    one device, so only the server can have made a second from the enrolment it kept: the
    device the token first vouched for here keeps its trust, and of two first seen together
    neither is trusted, now or later."""
    by_token: dict[str, list[str]] = {}
    for key, (shown, _) in found.items():
        by_token.setdefault(shown.token, []).append(key)
    refused = {}
    for token, keys in by_token.items():
        if token not in bound:
            bound[token] = keys[0] if len(keys) == 1 else ""
        owner = bound[token]
        user = problems.who(store, owner) if owner else "another device"
        for key in keys:
            if key != owner:
                refused[key] = (
                    f"the server lists it under invite {found[key][0].name!r}, whose token "
                    f"{user} already used: refused"
                )
    return refused


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _withheld(store: Store, aside: list[Listed], claimed: dict[str, int]) -> dict[str, list[Span]]:
    """Each trusted author's seqs that this store lacks and did not set aside, up to the
    highest seq that its versions held here, a verified receipt, or the server's registry
    show to exist: what the feed skipped."""
    through = dict(claimed)
    for author, seq in custody.receipted_through(store).items():
        if author in claimed:
            through[author] = max(through[author], seq)
    set_aside: dict[str, set[int]] = {}
    for item in aside:
        set_aside.setdefault(item.author, set()).add(item.seq)
    found = {}
    for author, gaps in custody.seqs_missing(store, through).items():
        left = problems.without(gaps, set_aside.get(author, set()))
        if left:
            found[author] = left
    return found


def _receipts(store: Store, page: FeedPage) -> list[custody.KeptReceipt]:
    """The receipts of the batches a page's versions came in, each verified against the
    receipt keys the organisation's log names: the one pinned at the first invite, then each
    named after it (an administrator's page only)."""
    state = orgkeys.followed(store)
    assert state is not None
    keys = [bytes.fromhex(k) for k in (*state.server_keys, state.server_key) if k]
    kept = []
    for raw in page.read_receipts():  # after the page's versions verified, as before
        try:
            shown = receipt.verify_any(raw, keys)
        except IntegrityError as exc:
            raise IntegrityError(
                f"the server sent a receipt that does not verify: {exc.message}",
                hint=REFUSED_HINT,
            ) from exc
        kept.append(
            custody.KeptReceipt(shown.batch, shown.device, shown.last_seq, raw, store.now_ms())
        )
    return kept


def _resume(client: SyncClient, cursor: int, anchor: str | None) -> tuple[FeedPage | None, bool]:
    """The first page to read, and whether the feed was rewritten under this store's cursor.

    The page from just before the cursor must begin with the version this store read there
    last. A server restored from an older backup numbers what devices send it again from where
    the backup ended, so a cursor past that point would skip versions: then everything is read
    again from the start (what is held already is recognised, not stored twice)."""
    if not cursor or not anchor:
        return None, False
    page = client.feed(cursor - 1)
    items, _, more = _page(page, cursor - 1)
    at_cursor = bool(items) and page.entries[0].pos == cursor
    if not at_cursor or entry_format.entry_id(items[0][0]) != anchor:
        return None, True
    rest = replace(page, entries=page.entries[1:])
    return (None if more and not rest.entries else rest), False


def _page(page: FeedPage, cursor: int) -> tuple[list[tuple[bytes, bytes]], int, bool]:
    items = [(item.entry, item.wrap) for item in page.entries]
    after, more = page.next, page.more
    if after < cursor or (more and (not items or after == cursor)):
        raise ServerError("the server's answer to a pull does not move forward")
    return items, after, more
