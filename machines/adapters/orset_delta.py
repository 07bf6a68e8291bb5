"""Adapter: ``implementations.orset.DeltaORSet`` (delta-state, causal context, no tombstones)
for the ``orset`` machine.

The replica already speaks ``machines.contracts.SetReplica``; the clock is not needed (dots
are counters, never timestamps).
"""

from __future__ import annotations

from harness import Implementation, register
from implementations.orset import DeltaORSet
from machines.contracts import SetReplica
from models.clock import Clock


def make_replica(replica_id: int, clock: Clock) -> SetReplica:
    return DeltaORSet(replica_id)


DELTA_STATE = register(
    Implementation(
        machine="orset",
        name="delta-state",
        make_replica=make_replica,
        level="exact",
        description="DeltaORSet: dots, causal context (version vector + dot cloud), no tombstones, msgpack wire",
    )
)
