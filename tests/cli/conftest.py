from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from fieldsync.cli.main import app
from tests.conftest import PASSPHRASE

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
