"""An administrator's store and a live server, for the services that talk to it."""

from __future__ import annotations

import copy
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fieldsync.core.body import Body
from fieldsync.server import data
from fieldsync.server.app import create_app
from fieldsync.services import admin, reading, settling
from fieldsync.store.db import make_engine
from fieldsync.store.store import DB_FILE, Store
from fieldsync.transport.client import SyncClient
from tests.conftest import PASSPHRASE
from tests.live import running

DAY = 86_400_000


@pytest.fixture(scope="session")
def admin_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, Any]:
    folder = tmp_path_factory.mktemp("admin")
    admin.create_org(folder / "home", PASSPHRASE, folder / "org.json")
    with Store.open(folder / "home", PASSPHRASE) as store:
        return folder / "home", store._vault_key, store.identity


@pytest.fixture
def admin_store(admin_template: tuple[Path, Any, Any], tmp_path: Path) -> Iterator[Store]:
    """The organisation's administrator's store: the same keys in every test, and a copy of its
    own (it pins the server key of the first server it makes an invite for)."""
    template, vault_key, identity = admin_template
    home = tmp_path / "admin-home"
    shutil.copytree(template, home)
    opened = Store(home, make_engine(home / DB_FILE), vault_key, identity)
    yield opened
    opened.close()


@pytest.fixture
def server_url(admin_store: Store, tmp_path: Path) -> Iterator[str]:
    server = data.init(tmp_path / "server", admin.org_keys(admin_store).encode())
    with running(create_app(server)) as url:
        yield url


def quick(url: str) -> SyncClient:
    return SyncClient(url, attempts=2, timeout=5, backoff=0.01)


@pytest.fixture
def live(admin_store: Store, tmp_path: Path) -> Iterator[tuple[str, object]]:
    """A fresh server for the organisation of ``admin_store``: its URL and database engine."""
    server = data.init(tmp_path / "live-server", admin.org_keys(admin_store).encode())
    app = create_app(server)
    with running(app) as url:
        yield url, app.state.engine


def in_conflict(store: Store, record: str, field: str, values: tuple[Any, Any]) -> None:
    """Two versions on the same parent that set ``field`` differently, then settled."""
    view = reading.read(store, record)
    with store.writer() as writer:
        for value in values:
            answers = copy.deepcopy(view.body.answers)
            answers[field] = value
            body = Body(view.form.ref, answers, view.body.attachments, None)
            writer.append(record, [view.current.id], body, "")
    assert settling.settle(store, [record]).conflicts == [record]
