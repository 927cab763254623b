"""admin report --chart: a real image in each format, for any number of months, atomically."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from fieldsync.cli import chart
from fieldsync.errors import OutputPathError

MONTH = {"killed": 3, "children_killed": 1, "women_killed": 1, "arrested": 2,
         "facility_attacks": 1, "weapon_attacks": 0}  # fmt: skip
SIGNATURES = {".png": b"\x89PNG\r\n\x1a\n", ".svg": b"<?xml", ".pdf": b"%PDF"}


@pytest.mark.parametrize("suffix", sorted(SIGNATURES))
@pytest.mark.parametrize(
    "monthly",
    [
        [],
        [{"month": "2024-03", **MONTH}],
        [{"month": "2023-11", **MONTH}, {"month": "2025-02", **MONTH}],  # a gap of 14 months
    ],
    ids=["no months", "one month", "gap"],
)
def test_a_chart_is_drawn_for_any_series(
    tmp_path: Path, suffix: str, monthly: list[dict[str, object]]
) -> None:
    target = tmp_path / f"series{suffix}"
    chart.check_target(target)
    chart.draw(target, monthly, "fieldsync report: test")  # warnings are errors in this suite
    assert target.read_bytes().startswith(SIGNATURES[suffix])
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no partial file left


def test_months_between_are_drawn_as_zero() -> None:
    months = chart._every_month([{"month": "2023-11"}, {"month": "2024-02"}])
    assert months == ["2023-11", "2023-12", "2024-01", "2024-02"]


def test_unknown_formats_and_missing_folders_are_refused(tmp_path: Path) -> None:
    with pytest.raises(OutputPathError, match="cannot draw a chart") as raised:
        chart.check_target(tmp_path / "series.gif")
    assert ".png, .svg or .pdf" in (raised.value.hint or "")
    with pytest.raises(OutputPathError, match="does not exist"):
        chart.check_target(tmp_path / "missing" / "series.png")


def _axis(monthly: list[dict[str, object]], start: date | None, end: date | None) -> Any:
    figure = chart.plot(monthly, "test", start, end)  # selects the Agg backend first
    from matplotlib import dates, pyplot

    try:
        axes = figure.axes[0]
        figure.canvas.draw()
        left, right = (d.date() for d in dates.num2date(axes.get_xlim()))
        labels = [t.get_text() for t in axes.get_xticklabels() if t.get_text()]
        return left, right, labels, len(axes.lines[0].get_xdata())
    finally:
        pyplot.close(figure)


def test_a_one_month_chart_is_drawn_on_that_month_alone() -> None:
    """`admin report --month 2024-03 --chart` drew its one point on a 2022-2026 axis."""
    march = [{"month": "2024-03", **MONTH}]
    assert _axis(march, date(2024, 3, 1), date(2024, 3, 31)) == (
        date(2024, 3, 1),
        date(2024, 3, 31),
        ["2024-03"],
        1,
    )
    assert _axis(march, None, None)[:2] == (date(2024, 3, 1), date(2024, 3, 31))


def test_the_axis_spans_the_period_asked_for_not_only_the_months_with_records() -> None:
    left, right, labels, points = _axis(
        [{"month": "2024-03", **MONTH}], date(2024, 1, 10), date(2024, 6, 20)
    )
    assert (left, right, points) == (date(2024, 1, 1), date(2024, 6, 30), 6)
    assert labels == ["2024-01", "2024-02", "2024-03", "2024-04", "2024-05", "2024-06"]
