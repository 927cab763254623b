"""Writing versions: new records, edits (whole answers or ``FIELD=VALUE`` changes), and whose
keys a new version is sealed for."""

from __future__ import annotations

import copy
from typing import Any

from fieldsync.core import encoding, paths
from fieldsync.core.body import Attachment, Body
from fieldsync.core.forms import Form
from fieldsync.core.ids import new_record_id
from fieldsync.core.invite import ANALYST
from fieldsync.core.settings import Registry
from fieldsync.errors import AnswersInvalid, InputError, StoreCorrupted, StoreStateError
from fieldsync.services.links import Link, link_records, linker
from fieldsync.services.reading import RecordView, read
from fieldsync.store import orgkeys, settings
from fieldsync.store.store import Store


def create(
    store: Store,
    form: Form,
    answers: dict[str, Any],
    *,
    note: str | None = None,
    draft_id: str | None = None,
) -> str:
    """Validate and save a new record (dropping its draft in the same transaction): a
    person's entry, so the entry checks (core/rules.py) apply too."""
    answers = copy.deepcopy(answers)  # the caller's stay as given
    link_records(store, form, answers)
    form.validate(answers, entering=True)
    form.identify_items(answers, None, lambda: new_record_id(store.now_ms()))
    record = new_record_id(store.now_ms())
    with store.writer() as writer:
        writer.append(record, [], Body(form.ref, answers, (), note), form.summary(answers))
        if draft_id is not None:
            writer.delete_draft(draft_id)
    return record


def edit(
    store: Store,
    record: str,
    *,
    answers: dict[str, Any] | None = None,
    sets: list[str] | None = None,
    note: str | None = None,
    draft_id: str | None = None,
) -> str:
    """A new version: whole new answers, or ``FIELD=VALUE`` changes; returns the version id
    (dropping the edit's draft, if any, in the same transaction)."""
    view = read(store, record)
    # answers from a file have their record ids completed here, a --set as it is applied
    if answers is not None:
        new_answers = copy.deepcopy(answers)
        link_records(store, view.form, new_answers)
    else:
        new_answers = copy.deepcopy(view.body.answers)
    for assignment in sets or []:
        apply_set(view.form, new_answers, assignment, link=linker(store))
    if new_answers == view.body.answers and note is None:
        raise InputError("nothing changed, so no new version was saved")
    if not view.in_conflict:  # else save_version refuses it, saying how to settle it first
        # the entry checks, on what this edit changes: a value an older version let through
        # and this edit leaves alone does not stop it
        view.form.validate(new_answers, entering=True, before=view.body.answers)
    return save_version(store, view, new_answers, view.body.attachments, note, draft_id)


def save_version(
    store: Store,
    view: RecordView,
    answers: dict[str, Any],
    attachments: tuple[Attachment, ...],
    note: str | None,
    draft_id: str | None = None,
) -> str:
    if view.index.problem:  # its heads are unknown: a new version could not name its parents
        raise StoreCorrupted(
            f"the index of record {view.record} is damaged; nothing was saved",
            hint="Run 'fieldsync check --repair' to rebuild it from the signed versions, "
            "then try again.",
        )
    if view.in_conflict:  # building on provisional values would settle the conflict unseen
        fields = ", ".join(c.path for c in view.conflicts)
        raise StoreStateError(
            f"record {view.record} is in conflict ({fields}); nothing was saved",
            hint="See the competing values with 'fieldsync conflicts', settle them with "
            "'fieldsync resolve', then edit.",
        )
    view.form.validate(answers)
    answers = copy.deepcopy(answers)
    view.form.identify_items(answers, view.body.answers, lambda: new_record_id(store.now_ms()))
    body = Body(view.form.ref, answers, attachments, note)
    return save_body(store, view, body, draft_id)


def save_body(store: Store, view: RecordView, body: Body, draft_id: str | None = None) -> str:
    """Append ``body`` as the record's next version over all its heads, as it is: the checks are
    the caller's (``save_version``'s, or a resolution's)."""
    with store.writer() as writer:
        entry = writer.append(
            view.record,
            list(view.heads),
            body,
            view.form.summary(body.answers),
            readers=readers_for(store, view),
        )
        if draft_id is not None:
            writer.delete_draft(draft_id)
    return entry.id


def readers_for(store: Store, view: RecordView) -> list[bytes]:
    """Whose keys a new version of this record is sealed for. A device: itself and the
    organisation. An analyst: the organisation and the device that recorded the record, so the
    documenter sees the analyst's version on the next pull."""
    readers = store.readers()
    if orgkeys.role(store) not in (orgkeys.ADMIN, ANALYST):
        return readers
    roots = [v for v in view.versions if not v.entry.header.parents and v.entry.raw]
    recorder = roots[0].entry.header.author if roots else store.identity.device_id
    if recorder == store.identity.device_id:
        return readers
    known = (settings.load(store, Registry) or Registry()).devices
    if recorder not in known:
        raise StoreStateError(
            f"this store does not know the device that recorded {view.record}; nothing was saved",
            hint="Pull first ('fieldsync admin pull', or 'fieldsync pull' in an analyst's "
            "store): it fetches and checks the device registry.",
        )
    return [*readers, bytes.fromhex(known[recorder].box_key)]


def apply_set(
    form: Form, answers: dict[str, Any], assignment: str, *, link: Link | None = None
) -> str:
    """Apply ``FIELD=VALUE`` (the value typed as text, turned into the field's type, checked on
    its own at once) and return the address as shown. An entry of a list is named by its
    number, ``victims.individuals[2].age=13``; ``victims.individuals[+]={...}`` adds one; an
    empty value leaves the answer (or the entry) out. ``link`` completes record ids (a form's
    ``x-records`` fields) before the check."""
    if "=" not in assignment:
        raise InputError(f"--set needs FIELD=VALUE, not {assignment!r}")
    where, text = assignment.split("=", 1)
    address = paths.locate(form, where)
    changed = copy.deepcopy(answers)  # ``answers`` itself changes only once all is well
    if text == "":
        paths.remove(changed, address.steps)
    else:
        entry = isinstance(address.steps[-1], int)  # a whole entry of a list, given as JSON
        value = _entry(text, address.text) if entry else _parsed(address, text)
        if link is not None and not entry:
            value = link(address.field, value)
        paths.put(changed, address.steps, value)
        checked = address.steps[:-1] if entry else address.steps
        problems = form.check_value(address.field, paths.get(changed, checked), at=checked)
        if problems:
            raise AnswersInvalid(problems, form=form.id)
    answers.clear()
    answers.update(changed)
    return address.text


def _parsed(address: paths.Address, text: str) -> Any:
    try:
        return address.field.parse(text)
    except InputError as exc:
        if "[" not in address.text:
            raise
        raise InputError(f"{address.text}: {exc.message}") from None


def _entry(text: str, where: str) -> Any:
    try:
        entry = encoding.parse_input(text)
    except ValueError as exc:
        raise InputError(f"{where} takes a whole entry written as JSON here ({exc})") from None
    if isinstance(entry, dict) and "id" in entry:  # merges match entries by it: one each
        raise InputError(
            f'{where}: an entry\'s id is given by fieldsync, not typed; leave "id" out'
        )
    return entry
