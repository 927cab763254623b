"""Holding Ctrl-C back for the few statements that must run together or not at all."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Run the block with SIGINT held: a Ctrl-C during it is raised as ``KeyboardInterrupt``
    when it ends (unless it ends with another exception, which then wins).

    Python raises ``KeyboardInterrupt`` between any two statements, so without this a commit
    could land and the count that reports it not: the person would then be told to import
    again rows that were saved. Only the main thread receives signals, so elsewhere this holds
    nothing back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt
