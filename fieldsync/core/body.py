"""The plaintext inside an entry: a full snapshot of one version of a record.

Canonical JSON::

    {"answers": {...},                 the form's answers, exactly as entered
     "attachments": [Attachment, ...], in the order they were attached
     "form": "incident@1",             form id and version
     "note": "..." | null}             optional note on this version
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from fieldsync.core import encoding
from fieldsync.core.ids import is_hex32, is_record_id
from fieldsync.errors import MalformedData

FORM_REF = re.compile(r"^([a-z][a-z0-9_-]{0,63})@([1-9][0-9]{0,5})$")
BODY_KEYS = frozenset({"answers", "attachments", "form", "note"})
ATTACHMENT_KEYS = frozenset({"id", "blob", "key", "name", "media_type", "size", "sha256"})
MAX_NAME = 255


@dataclass(frozen=True)
class Attachment:
    id: str  # UUIDv7: the identity of this attachment across versions (merged as a set by id)
    blob: str  # blob id: hash of the encrypted file
    key: str  # hex secretstream key of the blob; exists only inside encrypted bodies
    name: str  # the original file name, as the person chose it
    media_type: str
    size: int  # bytes of the original file
    sha256: str  # hex SHA-256 of the original file

    def to_json(self) -> dict[str, Any]:
        return {
            "blob": self.blob,
            "id": self.id,
            "key": self.key,
            "media_type": self.media_type,
            "name": self.name,
            "sha256": self.sha256,
            "size": self.size,
        }

    @classmethod
    def from_json(cls, value: object) -> Attachment:
        if not isinstance(value, dict) or set(value) != ATTACHMENT_KEYS:
            raise MalformedData("attachment descriptor does not have the expected fields")
        ok = (
            isinstance(value["id"], str)
            and is_record_id(value["id"])
            and is_hex32(value["blob"])
            and is_hex32(value["key"])
            and is_hex32(value["sha256"])
            and isinstance(value["name"], str)
            and 0 < len(value["name"]) <= MAX_NAME
            and isinstance(value["media_type"], str)
            and len(value["media_type"]) <= 255
            and isinstance(value["size"], int)
            and not isinstance(value["size"], bool)
            and value["size"] >= 0
        )
        if not ok:
            raise MalformedData("attachment descriptor has invalid values")
        return cls(**value)


@dataclass(frozen=True)
class Body:
    form: str
    answers: dict[str, Any]
    attachments: tuple[Attachment, ...] = field(default_factory=tuple)
    note: str | None = None

    @property
    def form_id(self) -> str:
        return self.form.split("@", 1)[0]

    @property
    def form_version(self) -> int:
        return int(self.form.split("@", 1)[1])

    def to_json(self) -> dict[str, Any]:
        return {
            "answers": self.answers,
            "attachments": [a.to_json() for a in self.attachments],
            "form": self.form,
            "note": self.note,
        }

    def encode(self) -> bytes:
        return encoding.encode(self.to_json())

    @classmethod
    def decode(cls, data: bytes) -> Body:
        value = encoding.decode(data, what="record body")
        if not isinstance(value, dict) or set(value) != BODY_KEYS:
            raise MalformedData("record body does not have the expected fields")
        if not isinstance(value["form"], str) or not FORM_REF.fullmatch(value["form"]):
            raise MalformedData("record body names no valid form")
        if not isinstance(value["answers"], dict):
            raise MalformedData("record body answers are not an object")
        if not isinstance(value["attachments"], list):
            raise MalformedData("record body attachments are not a list")
        if value["note"] is not None and not isinstance(value["note"], str):
            raise MalformedData("record body note is not text")
        return cls(
            form=value["form"],
            answers=value["answers"],
            attachments=tuple(Attachment.from_json(a) for a in value["attachments"]),
            note=value["note"],
        )
