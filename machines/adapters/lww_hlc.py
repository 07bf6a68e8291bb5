"""Adapter: ``implementations.lww.LWWRegister`` (hybrid-logical-clock stamps) for the ``lww`` machine.

The register already speaks ``machines.contracts.RegisterReplica``; this wrapper only pins
that down, so a change to either side shows up here and not as a confusing machine failure.
"""

from __future__ import annotations

from collections.abc import Hashable

from harness import Implementation, register
from implementations.lww import LWWRegister
from machines.contracts import RegisterReplica
from models.clock import Clock


class HLCRegisterReplica:
    """One ``LWWRegister`` replica, as the ``lww`` machine sees it."""

    def __init__(self, replica_id: int, clock: Clock) -> None:
        self.register = LWWRegister(replica_id, clock)

    def write(self, value: Hashable) -> None:
        self.register.write(value)

    def value(self) -> Hashable | None:
        return self.register.value()

    def state(self) -> bytes:
        return self.register.state()

    def merge(self, state: bytes) -> None:
        self.register.merge(state)

    def take_deltas(self) -> list[bytes]:
        return self.register.take_deltas()

    def apply_delta(self, delta: bytes) -> None:
        self.register.apply_delta(delta)

    def __repr__(self) -> str:
        return f"HLCRegisterReplica({self.register!r})"


def make_replica(replica_id: int, clock: Clock) -> RegisterReplica:
    return HLCRegisterReplica(replica_id, clock)


HLC = register(
    Implementation(
        machine="lww",
        name="hlc",
        make_replica=make_replica,
        level="exact",
        description="LWWRegister: (wall_ns, counter, writer) order, hybrid logical clock stamps, msgpack wire",
    )
)
