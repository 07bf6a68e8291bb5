"""Adapter: ``implementations.rga.RGA``, the chunked RGA sequence, for the ``rga`` machine.

Level ``exact``: it is an RGA, so every replica's value must equal the model's. The replica
already offers the ``SequenceReplica`` protocol (its ``insert`` and ``delete`` return the
element's id, which the protocol ignores); ``rga.state``/``rga.delta`` are its wire kinds.
"""

from __future__ import annotations

from harness import Implementation, register
from implementations.rga import RGA
from machines.contracts import SequenceReplica
from models.clock import Clock


def make_replica(replica_id: int, clock: Clock) -> SequenceReplica:
    """An RGA replica; it needs no clock (ids come from counters, not time)."""
    return RGA(replica_id)


RGA_TREE = register(
    Implementation(
        machine="rga",
        name="rga",
        make_replica=make_replica,
        level="exact",
        description="implementations.rga: chunked document order, Fenwick index, buffered out-of-order ops",
    )
)
