"""Shared fixtures.

Creating or unlocking a store costs one Argon2id derivation at MODERATE limits (about 0.7 s),
and the floor forbids anything cheaper. So the session creates one real store, and each test
gets a copy of it, opened with the keys the session already derived: the same code path as
``Store.open`` after the KDF.
"""

from __future__ import annotations

import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fieldsync.core.body import Body
from fieldsync.core.ids import new_record_id
from fieldsync.services import demo_examples
from fieldsync.services.forms import get_form
from fieldsync.store.db import make_engine
from fieldsync.store.store import DB_FILE, Store


@pytest.fixture(autouse=True)
def no_debug_leaking(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--debug` sets FIELDSYNC_DEBUG in the process; a CLI test run in-process must not leave
    it set for the tests after it (their subprocesses would print tracebacks)."""
    monkeypatch.delenv("FIELDSYNC_DEBUG", raising=False)


PASSPHRASE = "correct horse battery staple"
SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


@pytest.fixture(scope="session")
def template_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, Any]:
    home = tmp_path_factory.mktemp("template") / "home"
    store = Store.create(home, PASSPHRASE)
    keys = (store._vault_key, store.identity)
    store.close()
    return home, keys[0], keys[1]


@pytest.fixture
def store_home(template_store: tuple[Path, Any, Any], tmp_path: Path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(template_store[0], home)
    return home


@pytest.fixture
def store(template_store: tuple[Path, Any, Any], store_home: Path) -> Iterator[Store]:
    _, vault_key, identity = template_store
    opened = Store(store_home, make_engine(store_home / DB_FILE), vault_key, identity)
    yield opened
    opened.close()


example = demo_examples.example
EXAMPLES = demo_examples.EXAMPLES


class Endless:
    """A reader of ``size`` bytes that never holds more than one chunk of them."""

    def __init__(self, size: int, fill: bytes = b"\x5a") -> None:
        self.left = size
        self.fill = fill

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return self.fill * n


def fast_store(home: Path, *, admin: bool = False) -> Store:
    """A store with fresh keys of its own, opened without a passphrase (no Argon2id), for tests
    that need several distinct devices or organisations. It has no vault file: it is never
    reopened, only used."""
    from fieldsync.core import crypto
    from fieldsync.store import files
    from fieldsync.store.blobs import BLOBS_DIR
    from fieldsync.store.db import create_schema
    from fieldsync.store.identity import Identity

    files.make_private_dir(home)
    files.make_private_dir(home / BLOBS_DIR / "tmp")
    engine = make_engine(home / DB_FILE)
    create_schema(engine)
    return Store(home, engine, crypto.random_bytes(32), Identity.generate(admin=admin))


def entered(answers: Any) -> Any:
    """Answers as a person entered them: without the ids fieldsync gives list items (victims,
    sources) when it saves a record. Fails if a saved item lacks its id."""
    if isinstance(answers, dict):
        return {k: entered(v) for k, v in answers.items()}
    if isinstance(answers, list):
        if answers and all(isinstance(item, dict) for item in answers):
            assert all(isinstance(item.get("id"), str) for item in answers), answers
            return [{k: entered(v) for k, v in item.items() if k != "id"} for item in answers]
        return [entered(v) for v in answers]
    return answers


def as_an_older_version_recorded(store: Store, form_id: str, answers: dict[str, Any]) -> str:
    """A record saved as an older fieldsync saved it, or as a pull stores a version: held to
    the form and its signed rules only, not to today's entry checks (``records.create`` runs
    those). For tests of what must still be read, merged and counted."""
    form = get_form(form_id)
    form.validate(answers)
    form.identify_items(answers, None, lambda: new_record_id(store.now_ms()))
    record = new_record_id(store.now_ms())
    with store.writer() as writer:
        writer.append(record, [], Body(form.ref, answers), form.summary(answers))
    return record


def sigint_restored() -> None:
    """For a child process, before it runs: SIGINT back to its default, so that Python installs
    its KeyboardInterrupt handler even when the suite itself runs with SIGINT ignored (as a
    shell starts a background job: ``scripts/test &``, nohup). A child inherits an ignored
    SIGINT, and a Ctrl-C test would then wait on a command that cannot be interrupted."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
