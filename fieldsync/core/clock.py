"""Hybrid logical clock: orders versions for display and tie-breaks, never for correctness.

A timestamp is ``(wall_ms, counter)``. It never goes backwards on one device, even if the wall
clock does, and after seeing another device's timestamp it moves past it.
"""

from __future__ import annotations

from typing import NamedTuple


class HLC(NamedTuple):
    wall_ms: int
    counter: int

    def to_json(self) -> list[int]:
        return [self.wall_ms, self.counter]

    @classmethod
    def from_json(cls, value: object) -> HLC:
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
        ):
            raise ValueError("an HLC timestamp is [wall_ms, counter] with two whole numbers")
        return cls(value[0], value[1])


ZERO = HLC(0, 0)


def tick(last: HLC, wall_ms: int) -> HLC:
    """The timestamp for a local event after ``last``."""
    if wall_ms > last.wall_ms:
        return HLC(wall_ms, 0)
    return HLC(last.wall_ms, last.counter + 1)


def observe(last: HLC, seen: HLC, wall_ms: int) -> HLC:
    """The timestamp after receiving an event stamped ``seen``."""
    top = max(last.wall_ms, seen.wall_ms, wall_ms)
    if top == last.wall_ms == seen.wall_ms:
        return HLC(top, max(last.counter, seen.counter) + 1)
    if top == last.wall_ms:
        return HLC(top, last.counter + 1)
    if top == seen.wall_ms:
        return HLC(top, seen.counter + 1)
    return HLC(top, 0)
