"""Every limit an implementation puts on what a peer may send or store, in one place.

A message over a limit is refused whole with ``implementations.wire.OverLimit`` (a
``DecodeError``), whose text and ``limit`` attribute name the limit, and changes nothing.
Each limit below says what it bounds and why its value is what it is; the README's table of
limits is made from this module (``python -m harness limits``) so the two cannot drift apart
(``tests/test_limits.py`` checks it).

Add a limit here with ``declare``, never as a literal where it is checked. ``declare``
returns the plain integer, so ``from implementations.limits import X`` gives a number.
"""

from __future__ import annotations

from typing import NamedTuple


class Limit(NamedTuple):
    """A declared limit: its name, value and unit, what it bounds, and why this value."""

    name: str
    value: int
    unit: str
    bounds: str
    why: str


#: Every declared limit, by name, in the order of declaration.
LIMITS: dict[str, Limit] = {}


def declare(name: str, value: int, unit: str, bounds: str, why: str) -> int:
    """Record a limit in ``LIMITS`` and return its value."""
    if name in LIMITS:
        raise ValueError(f"limit {name} is declared twice")
    LIMITS[name] = Limit(name, value, unit, bounds, why)
    return value


#: Integers on the wire are unsigned 64-bit unless a field says otherwise (not a limit a
#: peer can exceed: the decoder refuses anything else as malformed).
U64_MAX = 2**64 - 1

# ----- every message ----------------------------------------------------------------------

MAX_MESSAGE_BYTES = declare(
    "MAX_MESSAGE_BYTES", 64 * 1024 * 1024, "bytes",
    "any message any decoder accepts",
    "a guard against absurd length headers; the per-kind limits below are what bound the work a message causes",
)

# ----- causal contexts and dots (OR-Sets, and the task list's membership) --------------------

OWN_COUNTER_GAP = declare(
    "OWN_COUNTER_GAP", 0, "counters",
    "how far beyond the last dot (replica, n) a replica made itself a message may name its dots",
    "no peer can have seen an operation this replica has not made yet; a claim that it has would make the "
    "replica's own next operations vanish (or overflow at 2^64 - 1)",
)
MAX_COUNTER_GAP = declare(
    "MAX_COUNTER_GAP", 2**32, "counters",
    "how far beyond the greatest dot of a replica the receiver has seen a message may name that replica's dots",
    "no replica makes four billion operations between two messages that reach a peer; a counter near 2^64 - 1 "
    "then needs 2^32 messages to reach, so no counter ever overflows",
)
MAX_CONTEXT_REPLICAS = declare(
    "MAX_CONTEXT_REPLICAS", 2**16, "replicas",
    "distinct replicas a causal context names, in a message and in a replica's state after the join",
    "each costs memory for ever; 65,536 replicas of one set is beyond any deployment this project models",
)
MAX_CLOUD_RANGES = declare(
    "MAX_CLOUD_RANGES", 2**16, "ranges",
    "runs of dots seen out of order (beyond a gap in a replica's counters), all replicas together, in a "
    "message and in a replica's state after the join",
    "gaps come from deltas lost or late and a full-state sync closes them, so honest clouds stay small; a "
    "lying peer cannot make a receiver keep a million-dot cloud (a run of dots costs one range, not one "
    "entry per dot)",
)
MAX_SET_DOTS = declare(
    "MAX_SET_DOTS", 2**22, "dots",
    "live dots (adds not yet removed) a delta-state OR-Set replica holds after a join",
    "replica ids are not authenticated, so a bound per peer would bound nothing: the whole store is bounded "
    "(about 1 GiB of Python objects at the limit)",
)
MAX_TOMBSTONE_TAGS = declare(
    "MAX_TOMBSTONE_TAGS", 2**22, "tags",
    "tags (added and tombstoned, counted per element) a tombstone OR-Set replica holds after a merge",
    "tombstones are never collected, so this bounds the whole memory of the set; use the delta-state "
    "OR-Set for sets that churn",
)

# ----- hybrid logical clocks (LWW registers, the task list's fields) --------------------------

MAX_CLOCK_AHEAD_NS = declare(
    "MAX_CLOCK_AHEAD_NS", 300 * 10**9, "ns",
    "how far a received write's wall time may be ahead of the receiver's clock",
    "deployed hybrid logical clocks bound the offset they accept (CockroachDB: 500 ms by default); five "
    "minutes tolerates badly set clocks, yet a peer cannot drag every later timestamp to the year 2554",
)
MAX_HLC_COUNTER = declare(
    "MAX_HLC_COUNTER", 2**32 - 1, "counter",
    "the counter of a timestamp: received writes above it are refused, and a clock about to issue more moves "
    "its wall time on by one nanosecond instead",
    "the counter only counts writes within one wall-clock nanosecond; bounding it keeps every counter a "
    "replica issues or accepts far from 2^64 - 1, so no message can make its next write overflow",
)

# ----- the task list -----------------------------------------------------------------------

MAX_TASKS = declare(
    "MAX_TASKS", 2**16, "task ids",
    "task ids a task-list replica keeps field registers of, and (separately) checkbox records of, after a "
    "join; a message carries at most 4 field writes and 2 records per task of that many",
    "fields and checkbox states of a task may arrive before the task does, so they are kept for any id; this "
    "bounds what a peer can make a replica keep (the state holds at most two checkbox records per task: the "
    "best claim and the best completion)",
)
