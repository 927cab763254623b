"""admin report --chart: a real image in each format, for any number of months, atomically."""

from __future__ import annotations

from pathlib import Path

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
