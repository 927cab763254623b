"""The package as `pip install .` builds it: a wheel that carries the forms and the command."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from fieldsync.core.crypto import BoxPair, SigningPair
from fieldsync.core.org import OrgKeys

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_the_wheel_ships_the_schemas_and_runs_outside_the_checkout(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "wheel"),
            str(ROOT),
        ],
        check=True,
    )
    (wheel,) = (tmp_path / "wheel").glob("fieldsync-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {
        f"fieldsync/_schemas/{n}.v1.json" for n in ("incident", "interview", "disappearance")
    } <= set(names)
    migrations = "fieldsync/server/migrations"
    assert {f"{migrations}/env.py", f"{migrations}/versions/0001_first_release.py"} <= set(names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert (
        "fieldsync = fieldsync.cli.main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    )
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
    )
    result = subprocess.run(
        [sys.executable, "-m", "fieldsync", "forms", "list", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        env=os.environ | {"PYTHONPATH": str(target)},
    )
    assert '"incident"' in result.stdout
    probe = subprocess.run(
        [sys.executable, "-c", "import fieldsync; print(fieldsync.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        env=os.environ | {"PYTHONPATH": str(target)},
    )
    assert probe.stdout.startswith(str(target))  # it really ran the installed copy
    org = tmp_path / "org-public.json"
    org.write_bytes(
        OrgKeys(SigningPair.generate().public.hex(), BoxPair.generate().public.hex()).encode()
    )
    for command in (["init", "--org", str(org)], ["migrate"]):  # the migrations, installed
        made = subprocess.run(
            [
                sys.executable,
                "-m",
                "fieldsync",
                "server",
                *command,
                "--data",
                str(tmp_path / "srv"),
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=os.environ | {"PYTHONPATH": str(target)},
        )
        assert made.returncode == 0, made.stderr
    assert "already at schema revision" in made.stdout
