"""An organisation of its own per test: an analyst's store, a real server, enrolled devices."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from fieldsync.server import data
from fieldsync.server.app import create_app
from fieldsync.services import admin, enrol
from fieldsync.store.store import Store
from tests.conftest import fast_store
from tests.live import running
from tests.services.conftest import DAY, quick


class World:
    def __init__(self, folder: Path, stack: ExitStack, database_url: str | None = None) -> None:
        self.folder = folder
        self.analyst = stack.enter_context(fast_store(folder / "analyst", admin=True))
        org = admin.org_keys(self.analyst).encode()
        self.server = data.init(folder / "server", org, database_url)
        self.app = create_app(self.server, database_url=database_url)
        stack.callback(self.app.state.engine.dispose)  # a PostgreSQL pool's connections too
        self.url = stack.enter_context(running(self.app))
        self._stack = stack
        # the analyst's store learns the server (and pins its key) from its first invite
        admin.make_invite(self.analyst, "first", self.url, valid_ms=DAY, client_for=quick)

    def device(self, name: str) -> Store:
        return self.device_at(name, self.folder / name)

    def device_at(self, name: str, home: Path) -> Store:
        """An enrolled device whose store lives in ``home`` (a file system of the test's own)."""
        store = self._stack.enter_context(fast_store(home))
        text, shown = admin.make_invite(
            self.analyst, name, self.url, valid_ms=DAY, client_for=quick
        )
        enrol.enrol(
            store, text, expect_fingerprint=shown["organisation_fingerprint"], client_for=quick
        )
        return store

    def member(self, name: str, role: str = "analyst") -> Store:
        """A member of staff, enrolled with an invite naming ``role`` (not yet certified)."""
        store = self._stack.enter_context(fast_store(self.folder / name))
        text, shown = admin.make_invite(
            self.analyst, name, self.url, valid_ms=DAY, client_for=quick, role=role
        )
        enrol.enrol(
            store, text, expect_fingerprint=shown["organisation_fingerprint"], client_for=quick
        )
        return store


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with ExitStack() as stack:
        yield World(tmp_path, stack)
