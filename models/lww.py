"""Last-writer-wins register: the value of the greatest write a replica has seen.

Semantics
---------
A replica's knowledge is its *history*: the set of writes it has seen, its own and the
ones that reached it. Merging two replicas is the union of their histories. A write
carries a timestamp, the id of the replica that made it (its writer) and a value.

* Writes are ordered by ``(timestamp, writer)``, timestamps first. Timestamps are ordered
  lexicographically by ``(wall_ns, counter)``.
* The register's value is the value of the greatest write in the history; ``None`` if the
  history is empty. (A write may also write ``None``: ``winner`` tells the two apart.)
* A replica stamps a new write with ``next_timestamp`` over the timestamps of every write
  it has seen and its own clock reading at the time of the write (a hybrid logical clock):
  ``top`` is the greatest timestamp seen; ``wall = max(now, top.wall_ns)``; the counter is
  ``top.counter + 1`` when ``wall`` equals ``top.wall_ns`` and 0 otherwise. With nothing
  seen, the timestamp is ``(now, 0)``. A counter never passes ``MAX_COUNTER``: the next
  timestamp is then ``(wall + 1, 0)``, still above every one seen (replicas refuse larger
  counters from peers, so that no message can push a counter to overflow).

Why ``(timestamp, writer)`` is a total order on writes: the timestamp a replica issues is
strictly greater than every timestamp it has seen, its own earlier writes included, so no
two writes of one writer share a timestamp; writes of different writers differ in the
writer. Two different writes therefore never have the same ``(timestamp, writer)``, and
comparing those pairs orders every set of writes the same way at every replica. Equal
timestamps (replicas whose clocks agree, or that saw the same greatest write) are broken
by the writer id, greater writer wins, so there is never a tie. The value depends only on
the history, so merge is commutative, associative and idempotent by construction.

And why a write made after seeing another write wins over it: ``next_timestamp`` is greater
than every timestamp seen, even when the writer's clock is behind. The timestamp depends
only on the writes seen and the clock reading at the write, never on when messages arrived.

Upstream faults this rules out (SPEC.md, section 1):

* vector clocks with a hash tie-break over the merged clock: with three concurrent
  writers the winner depends on the order of the merges (not associative);
* "strictly greater timestamp wins", keeping the local value on equal timestamps: two
  replicas that wrote at the same timestamp each keep their own value forever (diverges).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

import attrs

#: The greatest counter a timestamp may have (``implementations.limits.MAX_HLC_COUNTER``).
MAX_COUNTER = 2**32 - 1


@attrs.frozen(order=True)
class Timestamp:
    """A hybrid-logical-clock reading: wall time in ns, then a counter; compared in that order."""

    wall_ns: int
    counter: int


@attrs.frozen
class Write:
    """One write to the register: when (``timestamp``), by whom (``writer``), and what (``value``)."""

    timestamp: Timestamp
    writer: int
    value: Hashable


def arbitration(write: Write) -> tuple[Timestamp, int]:
    """The key that orders writes: the timestamp, then the writer id."""
    return (write.timestamp, write.writer)


def winner(history: Iterable[Write]) -> Write | None:
    """The greatest write of ``history``, or None if it is empty."""
    return max(history, key=arbitration, default=None)


def value(history: Iterable[Write]) -> Hashable | None:
    """The register's value: that of the greatest write seen; None before any write."""
    greatest = winner(history)
    return None if greatest is None else greatest.value


def next_timestamp(seen: Iterable[Timestamp], now_ns: int) -> Timestamp:
    """The timestamp of a new write by a replica that has seen ``seen``, its clock reading ``now_ns``.

    ``seen`` is every timestamp of every write the replica has seen (for a replica holding
    several registers that share one clock, the writes of all of them).
    """
    top = max(seen, default=None)
    if top is None:
        return Timestamp(now_ns, 0)
    wall = max(now_ns, top.wall_ns)
    counter = top.counter + 1 if wall == top.wall_ns else 0
    if counter > MAX_COUNTER:
        wall, counter = wall + 1, 0
    return Timestamp(wall, counter)
