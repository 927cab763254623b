from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from fieldsync.cli.main import app
from fieldsync.server import data
from fieldsync.server.app import create_app
from tests.conftest import PASSPHRASE, example
from tests.live import running

Run = Callable[..., Result]


@pytest.fixture
def run(store_home: Path) -> Run:
    """Invoke the CLI against a copy of the template store, passphrase from the environment."""
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, env: dict[str, Any] | None = None) -> Result:
        full_env = {"FIELDSYNC_HOME": str(store_home), "FIELDSYNC_PASSPHRASE": PASSPHRASE}
        full_env.update(env or {})
        return runner.invoke(app, list(args), input=input, env=full_env)

    return invoke


@pytest.fixture
def empty_home(tmp_path: Path) -> Path:
    home = tmp_path / "fresh"
    shutil.rmtree(home, ignore_errors=True)
    return home


def as_json(result: Result) -> Any:
    """The one JSON document a successful ``--json`` command printed."""
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@contextlib.contextmanager
def organisation(run: Run, folder: Path) -> Iterator[tuple[Run, str, Path, str]]:
    """An administrator's store made by ``admin init``, a real server for its organisation, the
    documenter's store of ``run`` enrolled there and one incident recorded in it (not pushed).

    Yields ``(in_admin_store, url, org_file, record)``; ``in_admin_store`` runs any command
    with the administrator's store as ``--home``."""
    admin_home = str(folder / "admin")

    def in_admin_store(
        *args: str, input: str | None = None, env: dict[str, Any] | None = None
    ) -> Result:
        full_env = {"FIELDSYNC_PASSPHRASE": PASSPHRASE, "FIELDSYNC_HOME": admin_home}
        return CliRunner().invoke(app, list(args), input=input, env=full_env | (env or {}))

    org = folder / "org.json"
    assert in_admin_store("admin", "init", "--public-out", str(org)).exit_code == 0
    server = data.init(folder / "server", org.read_bytes())
    with running(create_app(server)) as url:
        invite = as_json(in_admin_store("admin", "invite", "laptop", "--server", url, "--json"))
        fingerprint = invite["organisation_fingerprint"]
        as_json(run("enroll", invite["invite"], "--expect-fingerprint", fingerprint, "--json"))
        answers = folder / "incident.json"
        answers.write_text(json.dumps(example("incident")), encoding="utf-8")
        record = as_json(run("new", "incident", "--from-file", str(answers), "--json"))["record"]
        yield in_admin_store, url, org, record
