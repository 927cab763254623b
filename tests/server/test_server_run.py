"""'fieldsync server run' as an operator starts it: its limits, and a missing database driver."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from fieldsync.core import httpsig
from fieldsync.server import data
from tests.live import free_port
from tests.server.conftest import Device, Org, enrol_body, make_invite
from tests.server.postgres import fresh_postgres
from tests.server.test_blobs import sealed_blob

ROOT = Path(__file__).resolve().parents[2]


def fieldsync(
    *args: str, env: dict[str, str] | None = None, **popen: object
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "fieldsync", *args],
        env=(env or os.environ.copy())
        | {"PYTHONPATH": os.pathsep.join([*popen.pop("path", []), str(ROOT)])},  # type: ignore[arg-type]
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,  # type: ignore[arg-type]
    )


def test_a_postgresql_url_without_its_driver_says_what_to_install(
    server: data.ServerData, tmp_path: Path
) -> None:
    missing = tmp_path / "no-driver" / "psycopg"
    missing.mkdir(parents=True)
    (missing / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'psycopg'\")\n"
    )
    url = "postgresql+psycopg://fieldsync@127.0.0.1:5432/fieldsync"
    run = fieldsync(
        "server",
        "run",
        "--data",
        str(server.folder),
        "--database-url",
        url,
        path=[str(tmp_path / "no-driver")],
    )
    out, err = run.communicate(timeout=60)
    assert run.returncode == 8, (out, err)
    assert "fieldsync[postgres]" in out + err
    assert "internal error" not in out + err


@pytest.mark.parametrize("workers", [1, 2])
def test_server_run_takes_its_limits_from_options_and_the_environment(
    server: data.ServerData, org: Org, workers: int
) -> None:
    """With several workers the limits reach each worker process through the environment."""
    with contextlib.ExitStack() as held:
        database = [] if workers == 1 else ["--database-url", held.enter_context(fresh_postgres())]
        limits_reach_the_server(server, org, [*database, "--workers", str(workers)])


def limits_reach_the_server(server: data.ServerData, org: Org, options: list[str]) -> None:
    port = free_port()
    env = os.environ.copy() | {"FIELDSYNC_MAX_OPEN_UPLOAD_BYTES": "2KiB"}
    run = fieldsync(
        "server",
        "run",
        *options,
        "--data",
        str(server.folder),
        "--port",
        str(port),
        "--max-open-uploads",
        "1",
        "--body-idle-timeout",
        "5",
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline and run.poll() is None, run.communicate()
                time.sleep(0.05)
        device = Device()
        body = enrol_body(make_invite(org, server), device.signer, device.box)
        assert httpx.post(f"{url}/v1/enrol", content=body).status_code == 200

        def put(blob_id: str, size: int) -> httpx.Response:
            path = f"/v1/blobs/{blob_id}/{size}"
            headers = httpsig.sign(device.signer, "PUT", path, b"", int(time.time()))
            return httpx.put(f"{url}{path}", headers=headers)

        too_big = put(sealed_blob(10)[1], 3000)
        assert too_big.status_code == 507 and "2048 bytes" in too_big.json()["message"]
        assert put(sealed_blob(10)[1], 1000).status_code == 200
        second = put(sealed_blob(10)[1], 100)
        assert second.status_code == 507 and "1 upload on the server" in second.json()["message"]
    finally:
        run.terminate()
        run.communicate(timeout=30)
