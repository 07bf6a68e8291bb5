"""Time, as every model and core sees it.

Nothing in this project reads the wall clock except the real network drivers. A model,
a replica or a node is handed a ``Clock`` and asks it for ``now()``: an integer number of
nanoseconds since the Unix epoch, UTC. Tests and machines use ``ManualClock``, whose time
moves only when told to; ``OffsetClock`` is a replica's view of a shared clock with a
fixed skew, so machines can make replicas disagree about the time.

A UTC calendar day is ``floor(now_ns / NS_PER_DAY)``; day ``d`` starts at
``d * NS_PER_DAY`` and its last nanosecond is ``(d + 1) * NS_PER_DAY - 1``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

NS_PER_MS = 1_000_000
NS_PER_SECOND = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_SECOND


@runtime_checkable
class Clock(Protocol):
    """Anything that tells the time in integer nanoseconds since the epoch (UTC)."""

    def now(self) -> int: ...


class ManualClock:
    """A clock that moves only when told to. It never goes backwards."""

    def __init__(self, now_ns: int = 0) -> None:
        if now_ns < 0:
            raise ValueError(f"a clock cannot start before the epoch: now_ns={now_ns}")
        self._now = now_ns

    def now(self) -> int:
        return self._now

    def advance(self, ns: int) -> None:
        if ns < 0:
            raise ValueError(f"a clock only moves forward: advance({ns})")
        self._now += ns

    def set(self, now_ns: int) -> None:
        if now_ns < self._now:
            raise ValueError(f"a clock only moves forward: set({now_ns}) at {self._now}")
        self._now = now_ns

    def __repr__(self) -> str:
        return f"ManualClock({self._now})"


class OffsetClock:
    """A replica's view of a shared clock, ``offset_ns`` ahead of it (or behind, if negative).

    Readings never go below zero, so a replica far behind sees the epoch.
    """

    def __init__(self, base: Clock, offset_ns: int) -> None:
        self.base = base
        self.offset_ns = offset_ns

    def now(self) -> int:
        return max(0, self.base.now() + self.offset_ns)

    def __repr__(self) -> str:
        return f"OffsetClock({self.base!r}, {self.offset_ns:+d})"


def utc_day(now_ns: int) -> int:
    """The UTC calendar day that contains ``now_ns`` (day 0 is 1970-01-01)."""
    return now_ns // NS_PER_DAY


def day_start(day: int) -> int:
    """The first nanosecond of UTC day ``day``."""
    return day * NS_PER_DAY


def to_millis(now_ns: int) -> int:
    """Whole milliseconds since the epoch, as the upstream systems stamp their records."""
    return now_ns // NS_PER_MS
