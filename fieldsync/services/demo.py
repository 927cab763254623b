"""``fieldsync demo``: the documenter's journey in a throw-away folder, on embedded examples.

The journey records, edits, attaches and reads back; sets up an organisation with a server on
loopback, enrols and pushes; an analyst pulls, settles a conflict, reports and exports; the
organisation backs up its secrets for custodians, takes on an analyst with keys of their own,
rotates its read key, names a successor admin key and a new receipt key, and rebuilds the
administrator's store from three shares; and the device
forgets what the server holds (``push --wipe-after``). It is a generator of ``Step``
events, so the CLI only renders it and the tests can check every step.

Kept whole: the journey is one story whose steps hand each other stores, records and a
server; read top to bottom it is the tour of fieldsync the README promises.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from fieldsync.core import audit
from fieldsync.core.report import Period
from fieldsync.errors import IntegrityError
from fieldsync.services import (
    admin,
    attachments,
    backup,
    enrol,
    evidence,
    export,
    importer,
    pull,
    reading,
    record_history,
    records,
    reports,
    rotation,
    setup,
    succession,
    sync,
)
from fieldsync.services.demo_examples import example
from fieldsync.services.forms import get_form
from fieldsync.store import orgkeys
from fieldsync.store.store import Store

OUTPUTS = "outputs"  # what an administrator writes in plaintext on purpose
DEMO_PASSPHRASE = "demo only, never use this passphrase"  # noqa: S105 - printed on purpose
ADMIN_PASSPHRASE = "demo administrator, never use this passphrase"  # noqa: S105
ANALYST_PASSPHRASE = "demo analyst, never use this passphrase"  # noqa: S105


@dataclass(frozen=True)
class Step:
    title: str  # what was done, as a command a person could type
    detail: str  # what came of it


@dataclass(frozen=True)
class RunningServer:
    url: str
    fingerprint: str
    holdings: Callable[[], AbstractContextManager[audit.Holdings]]  # its data, read as stored
    new_receipt_key: Callable[[], str]  # ``server new-receipt-key``: the key offered, hex


ServerStarter = Callable[[Path, bytes], AbstractContextManager[RunningServer]]


def run(folder: Path, start_server: ServerStarter | None = None) -> Iterator[Step]:
    """Every step of the journey, in order; raises if any step's result is wrong.

    With ``start_server`` (the CLI passes one; services never import the server), the journey
    goes on: an organisation, a server on a free local port, an invite, enrolment, push.
    """
    home = folder / "home"
    needles: list[bytes] = []
    with Store.create(home, DEMO_PASSPHRASE) as store:
        yield from _record(store, folder, needles)
        if start_server is not None:
            yield from _deliver(store, folder, start_server, needles)
    outputs = folder / OUTPUTS  # asked for in plaintext: the export and the evidence package
    searched = [
        p
        for p in folder.rglob("*")
        if p.is_file() and p.suffix != ".jpg" and outputs not in p.parents
    ]
    found = [p.name for p in searched if _contains(p, needles)]
    if found:
        raise IntegrityError(f"plaintext found at rest in {', '.join(found)}")
    places = (
        "the store"
        if start_server is None
        else "the stores (the device's, the administrator's, the analyst's and the recovered "
        "administrator's) and the server"
    )
    yield Step(
        "search every byte written",
        f"no name, text, file name or file content in the "
        f"clear in {places} ({len(searched)} files)",
    )


def _record(store: Store, folder: Path, needles: list[bytes]) -> Iterator[Step]:
    yield Step(
        "fieldsync init",
        f"encrypted store in {store.home}; device fingerprint {store.identity.fingerprint}",
    )
    incident = records.create(store, get_form("incident"), example("incident"))
    yield Step("fieldsync new incident", f"record {incident}, signed entry 1 of this device")

    interviews = folder / "interviews.jsonl"
    second = example("interview") | {
        "interviewee_role": "witness",
        "testimony": "رأيت الطائرة تقصف السوق.",
    }
    interviews.write_text(
        "\n".join(map(_json, [example("interview"), second])) + "\n", encoding="utf-8"
    )
    form = get_form("interview")
    report = importer.import_file(store, form, importer.read_rows(interviews, "jsonl", form))
    interviews.unlink()
    yield Step(
        "fieldsync import interview interviews.jsonl",
        f"{len(report.saved)} interviews saved under one unlock",
    )

    records.edit(
        store,
        incident,
        sets=["victims.total=6", "victims.individuals[2].age=35"],
        note="a sixth victim identified; the second victim's age corrected",
    )
    yield Step(
        "fieldsync edit --set victims.total=6 --set victims.individuals[2].age=35",
        "version 2 (an entry of a list named by its number); version 1 is kept",
    )

    photo = folder / "photo.jpg"
    photo.write_bytes(os.urandom(256 * 1024))
    digest = hashlib.sha256(photo.read_bytes()).hexdigest()
    attachments.attach(store, incident, [photo])
    yield Step("fieldsync attach photo.jpg", "encrypted in 64 KiB chunks; version 3")

    listed = store.index()
    yield Step(
        "fieldsync list",
        f"{len(listed)} records: "
        + "; ".join(f"{r.form.split('@')[0]} ({r.versions} versions)" for r in listed),
    )

    back = attachments.save_attachment(store, incident, 1, folder / "back.jpg", force=False)
    if hashlib.sha256(back.read_bytes()).hexdigest() != digest:
        raise IntegrityError("the attachment did not come back byte-identical")
    yield Step("fieldsync show --attachment 1 --out back.jpg", "byte-identical (SHA-256)")

    history = record_history.history(store, incident)
    yield Step("fieldsync history", "; ".join(_describe(h) for h in history))

    check = setup.check(store)
    if not check.ok:
        raise IntegrityError("; ".join(check.problems))
    yield Step(
        "fieldsync check",
        f"{check.entries} signatures, the hash chain, "
        f"{check.blobs} attachment and the index all verify",
    )
    needles += [
        "سارة".encode(),
        b"nurse on duty",
        "اعتُقلت عند الحاجز".encode(),
        b"photo.jpg",
        photo.read_bytes()[1000:1032],
    ]


def _deliver(
    store: Store, folder: Path, start_server: ServerStarter, needles: list[bytes]
) -> Iterator[Step]:
    public = folder / "org-public.json"
    keys = admin.create_org(folder / "admin", ADMIN_PASSPHRASE, public)
    yield Step(
        "fieldsync admin init",
        f"the organisation's keys in an encrypted admin store; "
        f"organisation fingerprint {keys.fingerprint}",
    )
    with (
        start_server(folder / "server", public.read_bytes()) as server,
        Store.open(folder / "admin", ADMIN_PASSPHRASE) as admin_store,  # one unlock for both
    ):
        url = server.url
        yield Step(
            "fieldsync server init; fieldsync server run",
            f"{url}, server fingerprint {server.fingerprint}",
        )
        text, _ = admin.make_invite(admin_store, "demo laptop", url, valid_ms=86_400_000)
        yield Step("fieldsync admin invite 'demo laptop'", f"one line: {text[:40]}…")
        # the documenter has the fingerprint from the administrator, here the same person
        joined = enrol.enrol(store, text, expect_fingerprint=keys.fingerprint)
        yield Step(
            "fieldsync enroll INVITE (typing the organisation's fingerprint)",
            f"enrolled as {joined.name!r}; {joined.wrapped} "
            "earlier versions now readable by the organisation too",
        )
        report = sync.push(store)
        if report.receipt is None or sync.pending(store):
            raise IntegrityError("push left versions undelivered")
        yield Step(
            "fieldsync push",
            f"{report.sent_entries} versions in {report.batches} "
            f"signed batch(es), {report.blobs} attachment ({report.blob_bytes} bytes); "
            f"the server's receipt up to seq {report.receipt.last_seq} verifies against "
            "the key pinned at enrolment",
        )
        yield Step(
            "fieldsync status",
            "0 versions waiting; the server holds ciphertext only and no key that can read it",
        )
        with server.holdings() as holdings:
            audited = admin.verify(admin_store, holdings)
        if not audited.ok:
            raise IntegrityError(f"admin verify found {audited.problem_count} problem(s)")
        device = next(a for a in audited.authors if a.status == "active")
        yield Step(
            "fieldsync admin verify --data server",
            f"independently of the server's bookkeeping: {device.versions} signatures, the "
            f"chain seq 1–{device.intact_through}, the enrolment, {device.receipts} receipt(s), "
            f"{audited.blobs} blob hash and {audited.attachments} attachment reference(s) "
            "verify; every version opens with the org read key",
        )
        yield from _exchange(store, admin_store, needles)
        yield from _outputs(admin_store, folder / OUTPUTS)
        yield from _team(store, admin_store, folder, server, needles)
        yield from _wipe(store)


def _exchange(store: Store, analyst: Store, needles: list[bytes]) -> Iterator[Step]:
    """The worked example of docs/conflicts.md: an analyst re-attributes the attack while the
    documenter, still offline, adds a victim; the pull merges both."""
    incident = next(row.record for row in store.index() if row.form.startswith("incident@"))
    pulled = pull.pull(analyst)
    yield Step(
        "fieldsync admin pull",
        f"{pulled.received} versions and {pulled.blobs} attachment fetched, every signature "
        "checked, decrypted with the org read key into the admin's encrypted store",
    )
    records.edit(
        analyst,
        incident,
        sets=['perpetrator.parties=["russian_forces"]', "perpetrator.attribution=confirmed"],
    )
    sync.push(analyst)
    yield Step(
        "fieldsync admin edit RECORD --set perpetrator…; fieldsync admin push",
        "the analyst attributes the attack, recorded as joint regime/Russian, to Russian forces: "
        "a version signed by the admin key, sealed for the organisation and for this laptop",
    )
    children = reading.read(store, incident).body.answers["victims"]["children"]
    added = {"name": "ليلى", "age": 9, "sex": "female", "status": "killed"}
    records.edit(
        store,
        incident,
        sets=[
            f"victims.individuals[+]={json.dumps(added, ensure_ascii=False)}",
            f"victims.children={children + 1}",
        ],
    )
    needles.append("ليلى".encode())
    yield Step(
        "fieldsync edit RECORD --set 'victims.individuals[+]={...}' (offline meanwhile)",
        "the documenter adds a victim",
    )
    got = pull.pull(store)
    merged = reading.read(store, incident)
    if got.merged != [incident] or merged.body.answers["perpetrator"]["parties"] != [
        "russian_forces"
    ]:
        raise IntegrityError("the pull did not merge the analyst's and the documenter's edits")
    delivered = sync.push(store)
    victims = len(merged.body.answers["victims"]["individuals"])
    yield Step(
        "fieldsync pull; fieldsync push",
        f"the analyst's version verifies; the edits touch different fields, so they merge into "
        f"a new signed version with both as parents ({victims} "
        f"victims, attributed to Russian forces); {delivered.sent_entries} versions delivered",
    )


def _outputs(analyst: Store, outputs: Path) -> Iterator[Step]:
    """What the centre makes of the records: a report, an export, an evidence package."""
    pull.pull(analyst)  # the documenter's merge
    found = reports.monthly(analyst, Period.month("2024-03"))
    killings = found.killings
    by_party = {row.key: row.counts["killed"] for row in killings.breakdowns["party"].ordered()}
    if killings.totals["killed"] != sum(by_party.values()) or not by_party["russian_forces"]:
        raise IntegrityError("the report's rows do not add up to its totals")
    yield Step(
        "fieldsync admin report --month 2024-03",
        f"{killings.totals['killed']} civilians killed ({killings.totals['children']} children), "
        f"attributed to Russian forces after the re-attribution; "
        f"{found.facility_attacks.totals['attacks']} attack on a medical facility, "
        f"{found.weapon_attacks.totals['attacks']} with cluster munitions; rows add up",
    )
    outputs.mkdir()
    exported = export.export_records(analyst, outputs, "csv")
    rows = sum(w.rows for w in exported.files)
    yield Step(
        "fieldsync admin export --format csv --out outputs",
        f"{len(exported.files)} files (UTF-8 with BOM), {rows} records; names, contacts and "
        "coordinates left out",
    )
    incident = next(r.record for r in analyst.index() if r.form.startswith("incident@"))
    built = evidence.build(analyst, incident, outputs / "incident-evidence.zip")
    checked = evidence.verify_file(built.path, analyst.identity.device_id)
    if not checked.holds:
        raise IntegrityError("the evidence package does not verify")
    yield Step(
        "fieldsync admin evidence RECORD --out incident-evidence.zip; fieldsync evidence-verify",
        f"{built.versions} signed versions with their keys, bodies, the attachment, "
        f"{built.receipts} server receipt(s) and the custody log; "
        f"{sum(f.level == 'ok' for f in checked.findings)} checks hold offline",
    )


def _team(
    store: Store, admin_store: Store, folder: Path, server: RunningServer, needles: list[bytes]
) -> Iterator[Step]:
    """The organisation as a team: the secrets backed up for custodians, an analyst with keys
    of their own, a read key rotation, an admin key succession and a new receipt key that
    they and the device follow, and the administrator's store rebuilt from three of the five
    shares."""
    url = server.url
    made = backup.make_backup(admin_store, 5, 3)
    needles += [made.shares[0].encode()]
    yield Step(
        "fieldsync admin backup --shares 5 --threshold 3",
        f"5 SLIP-39 word lists for custodians (check codes {', '.join(made.codes[:2])}, …); "
        "the secrets sealed under the key they make, kept on the server",
    )
    text, shown = admin.make_invite(admin_store, "Amal", url, valid_ms=86_400_000, role="analyst")
    with Store.create(folder / "analyst", ANALYST_PASSPHRASE) as analyst:
        enrol.enrol(analyst, text, expect_fingerprint=shown["organisation_fingerprint"])
        certified = pull.pull(admin_store).certified
        got = pull.pull(analyst)
        yield Step(
            "fieldsync admin invite Amal --role analyst; fieldsync enroll; fieldsync admin pull; "
            "fieldsync pull (the analyst's own store)",
            f"{', '.join(certified)} certified in the organisation's log, the read keys sealed "
            f"to them; {got.received} versions read with keys of their own",
        )
        rotated = rotation.rotate_read_key(admin_store)
        new = records.create(store, get_form("interview"), example("interview"))
        sync.push(store)
        if pull.pull(analyst).received < 1 or reading.read(analyst, new).body is None:
            raise IntegrityError("the analyst cannot read what was recorded after the rotation")
        yield Step(
            "fieldsync admin rotate-read-key; fieldsync new; fieldsync push; fieldsync pull",
            f"read key {rotated.epoch} announced; the device wraps the new interview for it, and "
            "the analyst opens it from a new bundle; every older record still reads",
        )
        sync.push(admin_store)  # what the administrator signed under the first key, delivered
        succeeded = succession.rotate_admin_key(admin_store)
        sync.push(store)
        pull.pull(analyst)
        if orgkeys.admin_keys_trusted(store)[-1] != admin_store.identity.device_id:
            raise IntegrityError("the device did not follow the admin key's succession")
        yield Step(
            "fieldsync admin rotate-admin-key; fieldsync push; fieldsync pull",
            f"a new admin key ({succeeded.fingerprint[:24]}…) named by the one it succeeds; the "
            "device and the analyst follow it with no new invite, and refuse the old key from "
            "now on",
        )
        offered = server.new_receipt_key()
        named = rotation.rotate_receipt_key(admin_store)
        records.create(store, get_form("interview"), example("interview"))
        pushed = sync.push(store)
        if pushed.receipt is None or pushed.receipt.server != offered:
            raise IntegrityError("the device did not check its receipt under the new receipt key")
        yield Step(
            "fieldsync server new-receipt-key; fieldsync admin rotate-receipt-key; fieldsync push",
            f"the server's receipt key is now {named.fingerprint[:24]}…, named in the "
            "organisation's log: the device checks its next receipt under it, no new invite",
        )
    pull.pull(admin_store)  # the interview recorded after the rotation
    opened = backup.open_backup(made.shares[1:4], server_url=url)
    with Store.open(
        backup.create_recovered(folder / "admin-again", ADMIN_PASSPHRASE, opened).home,
        ADMIN_PASSPHRASE,
    ) as again:
        back = pull.pull(again, from_start=True)
        if len(again.index()) != len(admin_store.index()):
            raise IntegrityError("the recovered store does not read every record")
        if again.identity.signer.public != admin_store.identity.signer.public:
            raise IntegrityError("the recovered store does not hold the admin key in force")
    yield Step(
        "fieldsync admin recover (shares 2, 3 and 4 of 5); fieldsync admin pull --from-start",
        f"as if the administrator's laptop were lost: a new store with the admin key in force and "
        f"{len(opened.secrets.read_keys)} read keys reads all {back.received} versions again",
    )


def _wipe(store: Store) -> Iterator[Step]:
    """Before a checkpoint the documenter forgets what the server holds: the key those records
    were under is destroyed, not only their rows; the store goes on for what comes next."""
    delivered = len(store.index())
    report = sync.push(store, wipe_after=True)
    if report.wiped_records != delivered or store.index():
        raise IntegrityError("push --wipe-after did not forget exactly what the server holds")
    kept = records.create(store, get_form("interview"), example("interview"))
    if [row.record for row in store.index()] != [kept]:
        raise IntegrityError("the store did not go on working after the wipe")
    yield Step(
        "fieldsync push --wipe-after; fieldsync new interview",
        f"{report.wiped_records} delivered records forgotten: the key they were under is "
        "overwritten where it lay, so not even the passphrase opens them again; the store "
        "goes on, holding the new interview",
    )


def _describe(item: record_history.HistoryItem) -> str:
    if not item.version.entry.header.parents:
        return "created"
    if item.attached:
        return "attached " + ", ".join(item.attached)
    return ", ".join(f"{c.path}: {c.old} → {c.new}" for c in item.changes if not c.sensitive)


def _contains(path: Path, needles: list[bytes]) -> bool:
    data = path.read_bytes()
    return any(needle in data for needle in needles)


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)
