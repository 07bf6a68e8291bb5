"""Presence: who a node believes is online (SPEC 4: presence records expire after 900 s).

Every member gossips a *beacon* now and then. A node's *view* maps each other member to
the time, by the node's own clock, at which it last took a beacon of that member (taken
as ``models.gossip`` says: a replayed or stale beacon is not taken, so it refreshes
nothing). A member is *online* for the node while that time is less than the presence TTL
ago; then it is offline, until a new beacon of it is taken (back online). A node's own
beacons say nothing to itself. The view lives in memory: a node that restarts starts with
an empty view.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

NS_PER_SECOND = 1_000_000_000
PRESENCE_TTL_NS = 900 * NS_PER_SECOND


def observe(view: Mapping[Hashable, int], observer: Hashable, subject: Hashable, now_ns: int) -> dict[Hashable, int]:
    """The observer's view after it took a beacon of ``subject`` at ``now_ns``."""
    if subject == observer:
        return dict(view)
    return {**view, subject: now_ns}


def online(view: Mapping[Hashable, int], now_ns: int, ttl_ns: int = PRESENCE_TTL_NS) -> frozenset:
    """The members whose last beacon the observer took less than ``ttl_ns`` ago."""
    return frozenset(subject for subject, at in view.items() if now_ns - at < ttl_ns)
