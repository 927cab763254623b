"""A real ``fieldsync`` process at a pseudo-terminal that is its controlling terminal, driven
the way a person would: each answer typed once its prompt has shown, a typed Ctrl-C
(b"\\x03") a real SIGINT from the terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time

from tests.conftest import PASSPHRASE, sigint_restored


def at_terminal(
    args: list[str],
    answers: list[tuple[bytes, bytes]],
    env: dict[str, str | None],
    *,
    columns: int = 120,
) -> tuple[int, str]:
    """Run ``fieldsync ARGS`` in a terminal ``columns`` wide; type each answer once its prompt
    has shown after the previous answer. ``env`` adds to the environment (with the test
    passphrase), a None removing a variable. Returns the exit code and all the terminal showed."""
    main, side = pty.openpty()
    fcntl.ioctl(side, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    full = os.environ | {"FIELDSYNC_PASSPHRASE": PASSPHRASE}
    for name, value in env.items():
        if value is None:
            full.pop(name, None)
        else:
            full[name] = value

    def own_terminal() -> None:  # in the child: the pty becomes its controlling terminal
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        sigint_restored()

    process = subprocess.Popen(
        [sys.executable, "-m", "fieldsync", *args],
        stdin=side,
        stdout=side,
        stderr=side,
        env=full,
        start_new_session=True,
        preexec_fn=own_terminal,
    )
    os.close(side)
    shown, since, pending = b"", 0, list(answers)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if not select.select([main], [], [], 0.5)[0]:
                if process.poll() is not None:
                    break
                continue
            try:
                piece = os.read(main, 4096)
            except OSError:  # the process has closed the terminal
                break
            if not piece:
                break
            shown += piece
            if pending and pending[0][0] in shown[since:]:
                # Let the prompt reach its read: CPython loses a SIGINT that lands between
                # printing a prompt and blocking in read(2) (a person's second Ctrl-C works).
                time.sleep(0.3)
                since = len(shown)
                os.write(main, pending.pop(0)[1])
        code = process.wait(timeout=30)
    finally:
        os.close(main)
        if process.poll() is None:  # never left running, to fail every later test too
            process.kill()
            process.wait()
    return code, shown.decode("utf-8", errors="replace")
