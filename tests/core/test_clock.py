from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fieldsync.core import clock
from fieldsync.core.clock import HLC

walls = st.integers(0, 2**45)


@given(st.lists(walls, min_size=1, max_size=50))
def test_local_ticks_strictly_increase_even_when_the_wall_clock_goes_back(times: list[int]) -> None:
    last = clock.ZERO
    for wall in times:
        nxt = clock.tick(last, wall)
        assert nxt > last
        last = nxt


@given(walls, st.integers(0, 1000), walls, st.integers(0, 1000), walls)
def test_observing_moves_past_both_clocks(lw: int, lc: int, sw: int, sc: int, wall: int) -> None:
    last, seen = HLC(lw, lc), HLC(sw, sc)
    after = clock.observe(last, seen, wall)
    assert after > last and after > seen


def test_json_form_is_checked() -> None:
    assert HLC.from_json([5, 1]) == HLC(5, 1)
    for bad in ([1], [1, -1], ["1", 2], [True, 1], "x"):
        try:
            HLC.from_json(bad)
        except ValueError:
            continue
        raise AssertionError(f"accepted {bad!r}")
