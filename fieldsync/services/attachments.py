"""Attachments: files encrypted into the store and referenced from a new version; decrypted
back, chunk by chunk or to a file."""

from __future__ import annotations

import contextlib
import mimetypes
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast

from fieldsync.core.body import MAX_NAME, Attachment
from fieldsync.core.ids import new_record_id
from fieldsync.errors import AttachmentError, AttachmentNotFound, FieldsyncError, OutputPathError
from fieldsync.services.reading import read
from fieldsync.services.records import save_version
from fieldsync.store import blobs
from fieldsync.store.store import Store


def attach(store: Store, record: str, paths: list[Path], *, note: str | None = None) -> str:
    """Encrypt files into the store and reference them from a new version."""
    view = read(store, record)
    checked = [_check_attachable(path) for path in paths]
    added = []
    for path in checked:
        try:
            handle = open(path, "rb")  # noqa: SIM115 (closed below)
        except OSError as exc:
            raise AttachmentError(f"cannot read {path.name!r}: {exc.strerror}") from exc
        with handle:
            # A write that fails (a full disk) is the store's, raised as it is; only a read
            # that fails is the file's.
            sealed = blobs.put_blob(store, cast(BinaryIO, _Source(handle, path.name)))
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


class _Source:
    """The file being attached, read for encryption."""

    def __init__(self, handle: BinaryIO, name: str) -> None:
        self._handle, self._name = handle, name

    def read(self, size: int = -1) -> bytes:
        try:
            return self._handle.read(size)
        except OSError as exc:
            raise AttachmentError(f"cannot read {self._name!r}: {exc.strerror}") from exc


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


def attachment_chunks(store: Store, record: str, number: int) -> tuple[Attachment, Iterator[bytes]]:
    """Attachment ``number`` (from 1, as ``show`` numbers them) and its plaintext, chunk by chunk.

    Each chunk is authenticated before it is yielded; a blob cut short raises at its end."""
    attachments = read(store, record).body.attachments
    if not 1 <= number <= len(attachments):
        raise AttachmentNotFound(
            f"record {record} has {len(attachments)} attachment(s); there is no number {number}"
        )
    attachment = attachments[number - 1]
    return attachment, blobs.read_blob(store, attachment.blob, bytes.fromhex(attachment.key))


def save_attachment(store: Store, record: str, number: int, out: Path, *, force: bool) -> Path:
    """Decrypt attachment ``number`` (from 1, as ``show`` numbers them) to ``out``.

    The plaintext goes to a temporary file beside ``out`` and is renamed into place only after
    the whole blob has been authenticated, so a damaged blob never leaves a partial file.
    """
    attachment, chunks = attachment_chunks(store, record, number)
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
            for chunk in chunks:
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
