"""``admin report --chart``: the monthly series of the main tallies, drawn with matplotlib."""

from __future__ import annotations

import calendar
import os
import warnings
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fieldsync.errors import OutputPathError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FORMATS = (".png", ".svg", ".pdf")
LINES = (
    ("killed", "Civilians killed"),
    ("children_killed", "Children killed"),
    ("women_killed", "Women killed"),
    ("arrested", "Arrests and disappearances"),
    ("facility_attacks", "Attacks on vital facilities"),
    ("weapon_attacks", "Attacks with outlawed weapons"),
)


def check_target(path: Path) -> None:
    """Refuse a chart file fieldsync cannot write, before any work is done."""
    if path.suffix.lower() not in FORMATS:
        raise OutputPathError(
            f"cannot draw a chart as {path.name!r}",
            hint="Name the file with .png, .svg or .pdf.",
        )
    if not path.parent.is_dir():
        raise OutputPathError(f"the folder {str(path.parent)!r} does not exist")


def draw(
    path: Path,
    monthly: list[dict[str, Any]],
    title: str,
    start: date | None = None,
    end: date | None = None,
) -> None:
    """One line per tally, one point per month (gaps as zero), on an axis of the months from
    ``start`` to ``end`` (the period asked for; open sides end at the first and last month)."""
    from matplotlib import pyplot

    figure = plot(monthly, title, start, end)
    try:
        partial = path.with_name(f".{path.name}.fieldsync-partial{path.suffix}")
        try:
            figure.savefig(partial, format=path.suffix.lower().lstrip("."))
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
    finally:
        pyplot.close(figure)


def plot(
    monthly: list[dict[str, Any]],
    title: str,
    start: date | None = None,
    end: date | None = None,
) -> Figure:
    """The chart as a figure (the caller closes it). Each month's point sits mid-month and the
    axis runs from the first day of the first month to the last day of the last: matplotlib's
    own limits put a single month on an axis of five years."""
    import matplotlib  # heavy: imported only when a chart is asked for

    matplotlib.use("Agg")  # no display: files only
    from matplotlib import dates, pyplot, ticker

    months = _every_month(monthly, start, end)
    by_month = {row["month"]: row for row in monthly}
    middles = [_first_day(m) + timedelta(days=14) for m in months]
    figure, axes = pyplot.subplots(figsize=(10, 5.5), dpi=120)
    for key, label in LINES:
        values = [by_month.get(m, {}).get(key, 0) for m in months]
        marker = "o" if len(months) <= 36 else None
        axes.plot(middles, values, marker=marker, linewidth=1.8, label=label)  # type: ignore[arg-type]
    axes.yaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    if months:
        axes.set_xlim(_first_day(months[0]), _last_day(months[-1]))  # type: ignore[arg-type]
        step = max(1, -(-len(months) // 12))  # at most about twelve month labels
        axes.xaxis.set_major_locator(dates.MonthLocator(interval=step))  # type: ignore[no-untyped-call]
        axes.xaxis.set_major_formatter(dates.DateFormatter("%Y-%m"))  # type: ignore[no-untyped-call]
    else:
        axes.text(0.5, 0.5, "no dated records in this period", ha="center", va="center")
        axes.set_xticks([])
    axes.set_title(title)
    axes.set_xlabel("month of the incident")
    axes.set_ylabel("count")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", fontsize="small")
    axes.tick_params(axis="x", labelrotation=45)
    with warnings.catch_warnings():  # a layout that cannot be tightened is still a chart
        warnings.simplefilter("ignore", UserWarning)
        figure.tight_layout()
    return figure


def _every_month(
    monthly: list[dict[str, Any]], start: date | None = None, end: date | None = None
) -> list[str]:
    """Every month from ``start`` (or the first month with records) to ``end`` (or the last)."""
    if not monthly and (start is None or end is None):
        return []
    first = f"{start:%Y-%m}" if start else monthly[0]["month"]
    last = f"{end:%Y-%m}" if end else monthly[-1]["month"]
    year, month = int(first[:4]), int(first[5:])
    months = []
    while f"{year:04d}-{month:02d}" <= last:
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def _first_day(month: str) -> date:
    return date(int(month[:4]), int(month[5:]), 1)


def _last_day(month: str) -> date:
    year, number = int(month[:4]), int(month[5:])
    return date(year, number, calendar.monthrange(year, number)[1])
