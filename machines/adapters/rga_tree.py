"""Adapter: ``implementations.rga.RGA``, the RGA of runs in a counted B-tree, for the ``rga`` machine.

Level ``exact``: it is an RGA, so every replica's value (and its ids) must equal the model's.
The replica already offers the ``SequenceReplica`` protocol (its ``insert`` and ``delete``
return the element's id, which the protocol ignores) and ``ids()``; this adapter adds what
the machine's adversary needs, ``craft_delta`` (``implementations.rga.encode_delta``), and
turns a refused insert (``CounterSpaceExhausted``) into ``Refused("counter_exhausted")``.
``rga.state``/``rga.delta`` are its wire kinds.
"""

from __future__ import annotations

from collections.abc import Hashable

from harness import Implementation, register
from implementations.rga import RGA, CounterSpaceExhausted, Id, encode_delta
from machines.contracts import Refused, SequenceReplica
from models.clock import Clock


class TreeReplica(RGA):
    """``RGA`` as the machine drives it."""

    def insert(self, index: int, item: Hashable) -> Id:
        try:
            return super().insert(index, item)
        except CounterSpaceExhausted as error:
            raise Refused("counter_exhausted", str(error)) from None

    def craft_delta(self, inserts: list[tuple[Id, Id | None, Hashable]], deletes: list[Id]) -> bytes:
        return encode_delta(inserts, deletes)


def make_replica(replica_id: int, clock: Clock) -> SequenceReplica:
    """An RGA replica; it needs no clock (ids come from counters, not time)."""
    return TreeReplica(replica_id)


RGA_TREE = register(
    Implementation(
        machine="rga",
        name="rga",
        make_replica=make_replica,
        level="exact",
        description="implementations.rga: runs in a counted B-tree, ids in B+ trees, buffered out-of-order ops",
    )
)
