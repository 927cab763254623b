"""Random sequences of saves, edits, attachments, failed saves and reopenings of one store.

Invariants after every step: every version ever committed is still there, byte for byte, and
opens to the body it was saved with; the device chain is unbroken; the index agrees with the
entries; and `check` finds nothing wrong.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from fieldsync.core.body import Attachment, Body
from fieldsync.core.ids import new_record_id
from fieldsync.store import blobs, integrity
from fieldsync.store.db import make_engine
from fieldsync.store.store import DB_FILE, Store
from tests.conftest import PASSPHRASE

TEXT = st.text(alphabet=st.sampled_from("abc سلام\n\x1b"), max_size=30)
_TEMPLATE: dict[str, Any] = {}


def template() -> dict[str, Any]:
    """One real store (one Argon2id run) copied for every example."""
    if not _TEMPLATE:
        home = Path(tempfile.mkdtemp()) / "home"
        store = Store.create(home, PASSPHRASE)
        _TEMPLATE.update(home=home, key=store._vault_key, identity=store.identity)
        store.close()
    return _TEMPLATE


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        t = template()
        self.work = Path(tempfile.mkdtemp())
        self.home = self.work / "home"
        shutil.copytree(t["home"], self.home)
        self.store = self.open()
        self.committed: dict[str, tuple[str, bytes]] = {}  # version id -> (record, body)
        self.heads: dict[str, str] = {}  # record -> its current head

    def open(self) -> Store:
        t = template()
        return Store(self.home, make_engine(self.home / DB_FILE), t["key"], t["identity"])

    def save(self, record: str, parents: list[str], body: Body) -> None:
        with self.store.writer() as writer:
            entry = writer.append(record, parents, body, "summary")
        self.committed[entry.id] = (record, body.encode())
        self.heads[record] = entry.id

    @rule(text=TEXT)
    def create(self, text: str) -> None:
        self.save(new_record_id(), [], Body("incident@1", {"narrative": text}))

    @precondition(lambda self: self.heads)
    @rule(data=st.data(), text=TEXT)
    def edit(self, data: st.DataObject, text: str) -> None:
        record = data.draw(st.sampled_from(sorted(self.heads)))
        self.save(record, [self.heads[record]], Body("incident@1", {"narrative": text}))

    @precondition(lambda self: self.heads)
    @rule(data=st.data(), content=st.binary(max_size=200_000))
    def attach(self, data: st.DataObject, content: bytes) -> None:
        record = data.draw(st.sampled_from(sorted(self.heads)))
        sealed = blobs.put_blob(self.store, io.BytesIO(content))
        attachment = Attachment(
            new_record_id(),
            sealed.blob_id,
            sealed.key.hex(),
            "f.bin",
            "application/octet-stream",
            sealed.size,
            sealed.sha256,
        )
        body = Body("incident@1", {"narrative": "with file"}, (attachment,))
        self.save(record, [self.heads[record]], body)
        assert b"".join(blobs.read_blob(self.store, sealed.blob_id, sealed.key)) == content

    @rule(text=TEXT)
    def failed_save(self, text: str) -> None:
        try:
            with self.store.writer() as writer:
                writer.append(new_record_id(), [], Body("incident@1", {"narrative": text}), "")
                raise OSError("the disk went away")
        except OSError:
            pass

    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.store = self.open()

    @invariant()
    def every_committed_version_is_intact(self) -> None:
        for record in set(self.heads):
            versions = {v.id: v for v in self.store.versions(record)}
            for version_id, (owner, body) in self.committed.items():
                if owner == record:
                    assert versions[version_id].body is not None
                    assert versions[version_id].body.encode() == body  # type: ignore[union-attr]
            assert self.store.index_entry(record).heads == (self.heads[record],)

    @invariant()
    def the_store_checks_clean(self) -> None:
        report = integrity.check(self.store)
        assert report.ok, report.problems
        assert report.entries == len(self.committed)

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.work, ignore_errors=True)


TestStoreMachine = StoreMachine.TestCase
TestStoreMachine.settings = settings(
    max_examples=25,
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
