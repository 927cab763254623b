"""Recording and reading back: new records, new versions, attachments, history."""

from __future__ import annotations

import contextlib
import copy
import mimetypes
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fieldsync.core.body import MAX_NAME, Attachment, Body
from fieldsync.core.forms import Form, get_path, set_path
from fieldsync.core.ids import new_record_id
from fieldsync.errors import (
    AttachmentError,
    AttachmentNotFound,
    FieldsyncError,
    InputError,
    OutputPathError,
    StoreCorrupted,
)
from fieldsync.services.forms import get_form
from fieldsync.store.index import IndexEntry
from fieldsync.store.store import Store, Version


@dataclass(frozen=True)
class RecordView:
    """A record as a person sees it: its current version and what the index knows."""

    record: str
    form: Form
    current: Version
    body: Body
    index: IndexEntry
    heads: tuple[str, ...]
    problems: tuple[str, ...] = ()  # damaged versions, and whether an older one is shown

    @property
    def in_conflict(self) -> bool:
        return len(self.heads) > 1


@dataclass(frozen=True)
class HistoryItem:
    version: Version
    changed: tuple[str, ...]  # dotted field paths that differ from the first parent
    attached: tuple[str, ...]  # names of attachments added in this version


def create(
    store: Store,
    form: Form,
    answers: dict[str, Any],
    *,
    note: str | None = None,
    draft_id: str | None = None,
) -> str:
    """Validate and save a new record (dropping its draft in the same transaction)."""
    form.validate(answers)
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
) -> str:
    """A new version: whole new answers, or ``FIELD=VALUE`` changes; returns the version id."""
    view = read(store, record)
    new_answers = copy.deepcopy(answers if answers is not None else view.body.answers)
    for assignment in sets or []:
        apply_set(view.form, new_answers, assignment)
    if new_answers == view.body.answers and note is None:
        raise InputError("nothing changed, so no new version was saved")
    return save_version(store, view, new_answers, view.body.attachments, note)


def save_version(
    store: Store,
    view: RecordView,
    answers: dict[str, Any],
    attachments: tuple[Attachment, ...],
    note: str | None,
) -> str:
    if view.index.problem:  # its heads are unknown: a new version could not name its parents
        raise StoreCorrupted(
            f"the index of record {view.record} is damaged; nothing was saved",
            hint="Run 'fieldsync check --repair' to rebuild it from the signed versions, "
            "then try again.",
        )
    view.form.validate(answers)
    body = Body(view.form.ref, answers, attachments, note)
    with store.writer() as writer:
        entry = writer.append(view.record, list(view.heads), body, view.form.summary(answers))
    return entry.id


def apply_set(form: Form, answers: dict[str, Any], assignment: str) -> None:
    """Apply ``field.path=value`` (value typed as text, turned into the field's type)."""
    if "=" not in assignment:
        raise InputError(f"--set needs FIELD=VALUE, not {assignment!r}")
    dotted, text = assignment.split("=", 1)
    described = form.field(dotted.strip())
    path = described.path
    if text == "":
        parent = get_path(answers, path[:-1]) if len(path) > 1 else answers
        if isinstance(parent, dict):
            parent.pop(path[-1], None)
        return
    set_path(answers, path, described.parse(text))


def attach(store: Store, record: str, paths: list[Path], *, note: str | None = None) -> str:
    """Encrypt files into the store and reference them from a new version."""
    view = read(store, record)
    checked = [_check_attachable(path) for path in paths]
    added = []
    for path in checked:
        try:
            with open(path, "rb") as handle:
                sealed = store.put_blob(handle)
        except OSError as exc:
            raise AttachmentError(f"cannot read {path.name!r}: {exc.strerror}") from exc
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        added.append(
            Attachment(
                id=new_record_id(store.now_ms()),
                blob=sealed.blob_id,
                key=sealed.key.hex(),
                name=path.name[:MAX_NAME],
                media_type=media_type,
                size=sealed.size,
                sha256=sealed.sha256,
            )
        )
    return save_version(store, view, view.body.answers, view.body.attachments + tuple(added), note)


def _check_attachable(path: Path) -> Path:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise AttachmentError(f"there is no file {str(path)!r}") from None
    except OSError as exc:
        raise AttachmentError(f"cannot open {str(path)!r}: {exc.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise AttachmentError(f"{str(path)!r} is a folder; attach the files inside it instead")
    if not stat.S_ISREG(info.st_mode):
        raise AttachmentError(f"{str(path)!r} is not a regular file")
    if not os.access(path, os.R_OK):
        raise AttachmentError(f"{str(path)!r} cannot be read (permission denied)")
    if not path.name or len(path.name.encode("utf-8", "surrogateescape")) > 4 * MAX_NAME:
        raise AttachmentError("the file name is empty or too long")
    return path


def read(store: Store, record: str) -> RecordView:
    """The record's current version (deterministic among several heads: latest clock wins)."""
    index = store.index_entry(record)
    versions = store.versions(record)
    heads = [v for v in versions if v.id in set(index.heads)]
    readable = [v for v in heads if v.body is not None] or [
        v for v in versions if v.body is not None
    ]
    if not readable:
        reasons = "; ".join(v.problem or "" for v in versions)
        raise StoreCorrupted(f"no version of record {record} can be read: {reasons}")
    current = readable[-1]  # versions are sorted by (clock, author, id)
    assert current.body is not None
    problems = [v.problem for v in versions if v.problem]
    if current.id not in index.heads:
        problems.append(
            f"no current version of record {record} can be read; shown is the older version "
            f"{current.id[:12]}"
        )
    return RecordView(
        record=record,
        form=get_form(current.body.form),
        current=current,
        body=current.body,
        index=index,
        heads=index.heads,
        problems=tuple(problems),
    )


def history(store: Store, record: str) -> list[HistoryItem]:
    versions = store.versions(record)
    by_id = {v.id: v for v in versions}
    items = []
    for version in versions:
        parents = [by_id[p] for p in version.entry.header.parents if p in by_id]
        base = parents[0].body if parents and parents[0].body is not None else None
        if version.body is None:
            items.append(HistoryItem(version, (), ()))
            continue
        before = base.answers if base else {}
        changed = tuple(sorted(_diff_paths(before, version.body.answers)))
        known = {a.id for a in base.attachments} if base else set()
        attached = tuple(a.name for a in version.body.attachments if a.id not in known)
        items.append(HistoryItem(version, changed, attached))
    return items


def _diff_paths(before: Any, after: Any, prefix: str = "") -> set[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        paths: set[str] = set()
        for key in set(before) | set(after):
            paths |= _diff_paths(before.get(key), after.get(key), f"{prefix}{key}.")
        return paths
    return {prefix.rstrip(".")} if before != after else set()


def save_attachment(store: Store, record: str, number: int, out: Path, *, force: bool) -> Path:
    """Decrypt attachment ``number`` (from 1, as ``show`` numbers them) to ``out``.

    The plaintext goes to a temporary file beside ``out`` and is renamed into place only after
    the whole blob has been authenticated, so a damaged blob never leaves a partial file.
    """
    view = read(store, record)
    attachments = view.body.attachments
    if not 1 <= number <= len(attachments):
        raise AttachmentNotFound(
            f"record {record[:8]} has {len(attachments)} attachment(s); there is no number {number}"
        )
    attachment = attachments[number - 1]
    if out.is_dir():
        out = out / safe_file_name(attachment.name)
    if out.exists() and not force:
        raise OutputPathError(f"{str(out)!r} already exists", hint="Use --force to replace it.")
    if not out.parent.is_dir():
        raise OutputPathError(f"the folder {str(out.parent)!r} does not exist")
    partial = out.with_name(f".{out.name}.fieldsync-partial")
    try:
        with open(partial, "wb") as handle:
            os.chmod(partial, 0o600)
            for chunk in store.read_blob(attachment.blob, bytes.fromhex(attachment.key)):
                handle.write(chunk)
        os.replace(partial, out)
    except FieldsyncError:
        _discard(partial)
        raise
    except OSError as exc:
        _discard(partial)
        raise OutputPathError(f"cannot write {str(out)!r}: {exc.strerror}") from exc
    return out


def _discard(partial: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()


def safe_file_name(name: str) -> str:
    """A file name that stays inside the folder it is written to, whatever the record says."""
    base = name.replace("\\", "/").split("/")[-1]
    cleaned = "".join(c if c.isprintable() and c not in '<>:"|?*' else "_" for c in base)
    cleaned = cleaned.strip().lstrip(".")
    return cleaned[:MAX_NAME] or "attachment"
