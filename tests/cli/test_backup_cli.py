"""The disaster: the administrator's laptop is lost, and three of five custodians rebuild its
store from their shares and the sealed backup the server keeps. Through the CLI, against a
real server."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tests.cli.conftest import Run, as_json, organisation
from tests.conftest import example
from tests.terminal import at_terminal

NEW_PASSPHRASE = "a new passphrase for a new laptop"


def record_two_more(run: Run, folder: Path) -> None:
    answers = folder / "more.json"
    answers.write_text(json.dumps(example("incident")), encoding="utf-8")
    for _ in range(2):
        assert run("new", "incident", "--from-file", str(answers), "--json").exit_code == 0


def test_the_lost_laptop_is_rebuilt_from_three_of_five_shares(run: Run, tmp_path: Path) -> None:
    with organisation(run, tmp_path) as (in_admin_store, url, _org, first):
        record_two_more(run, tmp_path)
        assert as_json(run("push", "--json"))["delivered"] == 3
        assert as_json(in_admin_store("admin", "pull", "--json"))["received"] == 3
        made = as_json(
            in_admin_store("admin", "backup", "--shares", "5", "--threshold", "3", "--json")
        )
        assert set(made) == {"shares", "threshold"} and made["threshold"] == 3
        assert len(made["shares"]) == 5

        shutil.rmtree(tmp_path / "admin")  # the laptop is gone

        shares_file = tmp_path / "shares.txt"
        shares_file.write_text("\n".join(made["shares"][1:4]) + "\n", encoding="utf-8")
        recovered = in_admin_store(
            "admin",
            "recover",
            "--server",
            url,
            "--shares-file",
            str(shares_file),
            "--public-out",
            str(tmp_path / "org-again.json"),
            "--json",
            env={"FIELDSYNC_PASSPHRASE": NEW_PASSPHRASE},
        )
        shown = as_json(recovered)
        assert shown["read_keys"] == 1
        original = json.loads((tmp_path / "org.json").read_text(encoding="utf-8"))
        assert shown["admin_key"] == original["admin_key"]
        assert json.loads((tmp_path / "org-again.json").read_text(encoding="utf-8")) == original

        def again(*args: str) -> Any:
            return as_json(in_admin_store(*args, env={"FIELDSYNC_PASSPHRASE": NEW_PASSPHRASE}))

        assert again("admin", "pull", "--from-start", "--json")["received"] == 3
        listed = again("list", "--json")
        assert first in {row["record"] for row in listed} and len(listed) == 3
        verified = again("admin", "verify", "--data", str(tmp_path / "server"), "--json")
        assert verified["ok"] is True
        # the recovered store is the organisation's administrator: it can invite a device
        assert again("admin", "invite", "laptop 2", "--server", url, "--json")["invite"]


def test_too_few_mistyped_or_mixed_shares_create_nothing(run: Run, tmp_path: Path) -> None:
    with organisation(run, tmp_path) as (in_admin_store, url, _org, _record):
        made = as_json(
            in_admin_store("admin", "backup", "--shares", "5", "--threshold", "3", "--json")
        )
        other = as_json(
            in_admin_store("admin", "backup", "--shares", "5", "--threshold", "3", "--json")
        )
        home = tmp_path / "recovered"

        def recover(*shares: str) -> Any:
            given = tmp_path / "given.txt"
            given.write_text("\n".join(shares) + "\n", encoding="utf-8")
            return in_admin_store(
                "admin", "recover", "--home", str(home), "--server", url,
                "--shares-file", str(given), "--json",
            )  # fmt: skip

        def refused(result: Any) -> dict[str, Any]:
            assert result.exit_code == 5, result.stdout
            assert not home.exists()
            assert [p.name for p in tmp_path.iterdir() if "recovering" in p.name] == []
            document: dict[str, Any] = json.loads(result.stdout)
            return document

        two = refused(recover(*other["shares"][:2]))
        assert two["error"] == "3 shares are needed, 2 were given"
        assert two["kind"] == "SharesInvalid"

        words = other["shares"][1].split()
        words[7] = words[7][:-2] + "qq"
        typo = refused(recover(other["shares"][0], " ".join(words), other["shares"][2]))
        assert typo["error"].startswith(f"share 2, word 8: '{words[7]}' is not a word")

        mixed = refused(recover(other["shares"][0], made["shares"][1], other["shares"][2]))
        assert mixed["error"].startswith("share 2 is of another backup than share 1")

        twice = refused(recover(other["shares"][0], other["shares"][0], other["shares"][2]))
        assert twice["error"].startswith("share 2 is the same as share 1")

        # the first backup's shares, consistent among themselves, no longer open what the
        # server keeps: the second replaced it
        old = recover(*made["shares"][:3])
        assert old.exit_code == 6 and not home.exists()
        assert "does not open with the key these shares make" in json.loads(old.stdout)["error"]

        assert as_json(recover(*other["shares"][2:]))["read_keys"] == 1
        assert (home / "vault").exists()


def test_backup_refuses_a_threshold_of_one_with_several_shares(run: Run, tmp_path: Path) -> None:
    with organisation(run, tmp_path) as (in_admin_store, _url, _org, _record):
        result = in_admin_store("admin", "backup", "--shares", "3", "--threshold", "1", "--json")
        assert result.exit_code == 5
        assert "3 copies of the backup key" in json.loads(result.stdout)["error"]
        shown = in_admin_store("admin", "backup", "--shares", "2", "--threshold", "2", "--qr")
        assert shown.exit_code == 0, shown.stderr
        assert "share 2 of 2, any 2 rebuild; check code " in shown.stdout
        assert "▀" in shown.stdout or "█" in shown.stdout  # the QR codes, in block characters
        assert "one lost share loses the backup" in shown.stderr


def test_shares_typed_at_the_terminal_are_hidden_and_a_mistyped_one_is_asked_again(
    run: Run, tmp_path: Path
) -> None:
    with organisation(run, tmp_path) as (in_admin_store, _url, _org, _record):
        sealed = tmp_path / "org-backup.json"
        made = as_json(
            in_admin_store(
                "admin",
                "backup",
                "--shares",
                "3",
                "--threshold",
                "2",
                "--out",
                str(sealed),
                "--json",
            )
        )
    first, second = made["shares"][0], made["shares"][2]
    words = first.split()
    mistyped = " ".join([*words[:3], words[3] + "zz", *words[4:]])
    home = tmp_path / "recovered"
    code, shown = at_terminal(
        ["admin", "recover", "--home", str(home), "--backup-file", str(sealed)],
        [
            (b"Share 1 (", mistyped.encode() + b"\n"),
            (b"Share 1 (", first.encode() + b"\n"),
            (b"Share 2 of 2", second.encode() + b"\n"),
        ],
        {"FIELDSYNC_PASSPHRASE": NEW_PASSPHRASE},
    )
    assert code == 0, shown
    assert "share 1, word 4 is not a word" in shown and "Type it again" in shown
    codes = [line for line in shown.splitlines() if "check code" in line]
    assert len(codes) == 2 and all(line.split()[-1].count("-") == 1 for line in codes)
    for share in (mistyped, first, second):
        assert " ".join(share.split()[4:8]) not in shown  # never echoed
    assert words[3] + "zz" not in shown and f"'{words[3]}'" not in shown  # nor the word wrong
    assert (home / "vault").exists()


def test_without_a_terminal_or_a_shares_file_nothing_is_asked_or_created(
    run: Run, tmp_path: Path
) -> None:
    home = tmp_path / "recovered"
    result = run("admin", "recover", "--home", str(home), "--backup-file", str(tmp_path / "b"))
    assert result.exit_code == 5
    assert "no terminal to type them at" in result.stderr and "--shares-file" in result.stderr
    assert not home.exists()


def test_a_rotation_after_the_backup_is_in_it_and_everything_reads_after_recovery(
    run: Run, tmp_path: Path
) -> None:
    """The issue's disaster: two devices work across a read-key rotation made after the
    shares were handed out; the laptop is lost; three shares rebuild a store that reads every
    version, old key and new, and whose verify is clean."""
    with organisation(run, tmp_path) as (in_admin_store, url, _org, _first):
        second = {
            "FIELDSYNC_HOME": str(tmp_path / "second"),
            "FIELDSYNC_PASSPHRASE": "the second device passphrase",
        }
        assert run("init", env=second).exit_code == 0
        invite = as_json(in_admin_store("admin", "invite", "laptop 2", "--server", url, "--json"))
        expect = invite["organisation_fingerprint"]
        enrolled = run("enroll", invite["invite"], "--expect-fingerprint", expect, env=second)
        assert enrolled.exit_code == 0, enrolled.stderr
        assert as_json(run("push", "--json"))["delivered"] == 1
        made = as_json(
            in_admin_store("admin", "backup", "--shares", "5", "--threshold", "3", "--json")
        )
        rotated = as_json(in_admin_store("admin", "rotate-read-key", "--json"))
        assert rotated["epoch"] == 2 and rotated["backed_up"] is True
        record_two_more(run, tmp_path)
        assert as_json(run("push", "--json"))["delivered"] == 2
        answers = tmp_path / "second.json"
        answers.write_text(json.dumps(example("interview")), encoding="utf-8")
        assert run("new", "interview", "--from-file", str(answers), env=second).exit_code == 0
        assert as_json(run("push", "--json", env=second))["delivered"] == 1
        assert as_json(in_admin_store("admin", "pull", "--json"))["received"] == 4

        shutil.rmtree(tmp_path / "admin")  # the laptop is gone, after the rotation

        shares_file = tmp_path / "shares.txt"
        shares_file.write_text("\n".join(made["shares"][:3]) + "\n", encoding="utf-8")
        env = {"FIELDSYNC_PASSPHRASE": NEW_PASSPHRASE}
        recovered = in_admin_store(
            "admin",
            "recover",
            "--server",
            url,
            "--shares-file",
            str(shares_file),
            "--json",
            env=env,
        )
        assert as_json(recovered)["read_keys"] == 2
        assert (
            as_json(in_admin_store("admin", "pull", "--from-start", "--json", env=env))["received"]
            == 4
        )
        listed = as_json(in_admin_store("list", "--json", env=env))
        assert len(listed) == 4
        verified = in_admin_store(
            "admin", "verify", "--data", str(tmp_path / "server"), "--json", env=env
        )
        assert as_json(verified)["ok"] is True
        # and it goes on as the administrator: the next rotation is epoch 3
        assert as_json(in_admin_store("admin", "rotate-read-key", "--json", env=env))["epoch"] == 3
