"""``admin report --chart``: the monthly series of the main tallies, drawn with matplotlib."""

from __future__ import annotations

import os
import warnings
from datetime import date
from pathlib import Path
from typing import Any

from fieldsync.errors import OutputPathError

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


def draw(path: Path, monthly: list[dict[str, Any]], title: str) -> None:
    """One line per tally, one point per month from the first to the last (gaps as zero)."""
    import matplotlib  # heavy: imported only when a chart is asked for

    matplotlib.use("Agg")  # no display: files only
    from matplotlib import dates, pyplot, ticker

    months = _every_month(monthly)
    by_month = {row["month"]: row for row in monthly}
    days = [date(int(m[:4]), int(m[5:]), 1) for m in months]
    figure, axes = pyplot.subplots(figsize=(10, 5.5), dpi=120)
    try:
        for key, label in LINES:
            values = [by_month.get(m, {}).get(key, 0) for m in months]
            marker = "o" if len(months) <= 36 else None
            axes.plot(days, values, marker=marker, linewidth=1.8, label=label)  # type: ignore[arg-type]
        axes.yaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        if months:
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
        partial = path.with_name(f".{path.name}.fieldsync-partial{path.suffix}")
        try:
            figure.savefig(partial, format=path.suffix.lower().lstrip("."))
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
    finally:
        pyplot.close(figure)


def _every_month(monthly: list[dict[str, Any]]) -> list[str]:
    if not monthly:
        return []
    first, last = monthly[0]["month"], monthly[-1]["month"]
    year, month = int(first[:4]), int(first[5:])
    months = []
    while f"{year:04d}-{month:02d}" <= last:
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months
