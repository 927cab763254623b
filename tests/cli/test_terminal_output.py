"""Colour and progress as a person sees them in a terminal (issue 16, item 10): colour on a
terminal and off under NO_COLOR; progress bars with rate and time left that stay on screen as
a summary line. Run as real processes in a pseudo-terminal, as test_enroll_terminal does."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from fieldsync.services import records
from fieldsync.services.forms import get_form
from fieldsync.store.store import Store
from tests.cli.conftest import Run, as_json, organisation
from tests.conftest import example
from tests.services.conftest import in_conflict
from tests.terminal import at_terminal

COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-8]|9[0-7])[;m]")  # a foreground colour
RED_ERROR = "\x1b[1;31merror:\x1b[0m"


def in_terminal(home: Path, args: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``fieldsync ARGS`` in a 120-column pseudo-terminal; the exit code and all it showed."""
    return at_terminal(args, [], {"FIELDSYNC_HOME": str(home), "NO_COLOR": None} | (env or {}))


def final_screen(shown: str) -> list[str]:
    """The lines left on the screen: each line as its last redraw (after its last ``\\r``)."""
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown)
    return [line.split("\r")[-1] for line in plain.replace("\r\n", "\n").split("\n")]


def test_error_is_red_at_a_terminal_and_plain_under_no_color(store_home: Path) -> None:
    code, shown = in_terminal(store_home, ["show", "0123456789ab"])
    assert code == 4, shown
    assert RED_ERROR in shown
    code, plain = in_terminal(store_home, ["show", "0123456789ab"], {"NO_COLOR": "1"})
    assert code == 4, plain
    assert "error:\x1b[0m no record 0123456789ab" in plain  # bold stays, as NO_COLOR asks
    assert not COLOUR.search(plain), plain


def test_check_says_ok_in_green_and_a_pipe_gets_no_colour(store_home: Path, run: Run) -> None:
    code, shown = in_terminal(store_home, ["check"])
    assert code == 0, shown
    assert "\x1b[32mEverything checks out.\x1b[0m" in shown
    _, plain = in_terminal(store_home, ["check"], {"NO_COLOR": "1"})
    assert "Everything checks out." in plain and not COLOUR.search(plain)
    piped = run("check")  # not a terminal: no escapes at all
    assert "Everything checks out." in piped.stdout and "\x1b" not in piped.stdout


def test_in_conflict_is_coloured_in_list_and_show(store: Store) -> None:
    record = records.create(store, get_form("incident"), example("incident"))
    in_conflict(store, record, "date", ("2024-03-04", "2024-03-06"))
    _, listed = in_terminal(store.home, ["list"])
    assert "\x1b[1;33mIN CONFLICT" in listed
    _, shown = in_terminal(store.home, ["show", record])
    assert "\x1b[1;33mIN CONFLICT on date" in shown
    _, plain = in_terminal(store.home, ["list"], {"NO_COLOR": "1"})
    assert "IN CONFLICT" in plain and not COLOUR.search(plain)


def test_import_progress_stays_as_a_summary_line(store_home: Path, tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "\n".join(json.dumps(example("incident")) for _ in range(40)) + "\n", encoding="utf-8"
    )
    code, shown = in_terminal(store_home, ["import", "incident", str(rows)])
    assert code == 0, shown
    screen = final_screen(shown)
    summary = next(line for line in screen if line.startswith("rows 40/40"))
    assert re.search(r"rows 40/40 ━+ [\d,]+ rows/s \d+:\d\d:\d\d$", summary.rstrip()), summary
    assert "Saved 40 incident record(s)." in screen


def test_push_and_pull_progress_and_a_verify_in_green(
    run: Run, store_home: Path, tmp_path: Path
) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(os.urandom(300_000))
    with organisation(run, tmp_path) as (in_admin_store, _url, _org, record):
        assert run("attach", record, str(photo)).exit_code == 0
        pending = as_json(run("status", "--json"))["pending"]
        code, shown = in_terminal(store_home, ["push"])
        assert code == 0, shown
        pushed = final_screen(shown)
        code, pulled = in_terminal(tmp_path / "admin", ["admin", "pull"])
        assert code == 0, pulled
        verify = ["admin", "verify", "--data", str(tmp_path / "server")]
        code, verified = in_terminal(tmp_path / "admin", verify)
        assert code == 0, verified
        assert in_admin_store("status").exit_code == 0
    line = next(x for x in pushed if x.startswith("versions "))
    # the photo sealed: a little over 300 kB
    assert re.match(rf"versions {pending}/{pending}, (300\.\d) kB of \1 kB ━", line), line
    assert re.search(r" [\d.]+ [kMG]?B/s \d+:\d\d:\d\d$", line.rstrip()), line
    assert any(x.startswith("Delivered") for x in pushed)
    received = next(x for x in final_screen(pulled) if x.startswith("versions "))
    assert re.search(rf"^versions {pending} received [\d,]+ versions/s \d+:\d\d:\d\d", received)
    assert "\x1b[32mnone" in verified  # no problems, per device
    assert "\x1b[32mEverything the server holds verifies.\x1b[0m" in verified
