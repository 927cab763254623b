"""Progress on stderr for push, pull and import: how far, how fast, how long still; left on
screen as a summary line when done. Nothing under ``--json`` or when stderr is not a
terminal: a log or a script gets the result lines only."""

from __future__ import annotations

from rich import filesize
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from fieldsync.cli.render import err


class Counts(ProgressColumn):
    """``versions 3/10, 172.0 MB of 300.0 MB``, or ``versions 340 received`` with no total."""

    def render(self, task: Task) -> Text:
        done = int(task.fields.get("count", task.completed))
        total = task.fields.get("count_total", task.total)
        text = f"{task.description} {done}/{int(total)}" if total is not None else None
        if text is None:
            text = f"{task.description} {done} received"
        if task.fields.get("bytes_total"):
            sent, size = task.fields["bytes"], task.fields["bytes_total"]
            text += f", {filesize.decimal(sent)} of {filesize.decimal(size)}"
        return Text(text)


class Rate(ProgressColumn):
    """Bytes a second while attachments go, otherwise items a second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if speed is None and task.elapsed and task.completed:
            speed = task.completed / task.elapsed  # one burst (a short pull): its average
        if speed is None:
            return Text("")
        if task.fields.get("bytes_total"):
            return Text(f"{filesize.decimal(int(speed))}/s")
        return Text(f"{speed:,.0f} {task.description}/s")


def bars(*, json: bool, total_known: bool = True) -> Progress:
    """The one style of progress bar; ``total_known=False`` (a pull) shows time elapsed."""
    time = TimeRemainingColumn(elapsed_when_finished=True) if total_known else TimeElapsedColumn()
    # named colours: rich's default greens turn grey on a 16-colour terminal
    bar = BarColumn(complete_style="magenta", finished_style="green")
    columns = [Counts(), bar, Rate(), time] if total_known else [Counts(), Rate(), time]
    return Progress(*columns, console=err, transient=False, disable=json or not err.is_terminal)


class PushProgress:
    """One line for a push: the bar runs over attachment bytes and versions together (a
    version counts as one byte, next to attachments of megabytes), the text says each."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID = progress.add_task("versions", total=None, count=0)
        self.count = self.sent = 0

    def plan(self, entries: int, blob_bytes: int) -> None:
        work = entries + blob_bytes
        self.progress.update(
            self.task,
            total=max(work, 1),
            completed=0 if work else 1,
            count_total=entries,
            bytes=0,
            bytes_total=blob_bytes,
        )

    def bytes_sent(self, n: int) -> None:
        self.sent += n
        self.progress.update(self.task, advance=n, bytes=self.sent)

    def entries_sent(self, n: int) -> None:
        self.count += n
        self.progress.update(self.task, advance=n, count=self.count)
