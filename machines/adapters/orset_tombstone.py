"""Adapter: ``implementations.orset_tombstone.TombstoneORSet`` (per-element tags and
tombstones, the upstream style) for the ``orset`` machine.

The replica already speaks ``machines.contracts.SetReplica``; the clock is not needed (tags
are counters, never timestamps).
"""

from __future__ import annotations

from harness import Implementation, register
from implementations.orset_tombstone import TombstoneORSet
from machines.contracts import SetReplica
from models.clock import Clock


def make_replica(replica_id: int, clock: Clock) -> SetReplica:
    return TombstoneORSet(replica_id)


TOMBSTONE = register(
    Implementation(
        machine="orset",
        name="tombstone",
        make_replica=make_replica,
        level="exact",
        description="TombstoneORSet: element -> tags and element -> tombstones, merged by union, msgpack wire",
    )
)
