"""Adapter: ``implementations.lww.LWWRegister`` (hybrid-logical-clock stamps) for the ``lww`` machine.

The register already speaks ``machines.contracts.RegisterReplica``; this wrapper only pins
that down, so a change to either side shows up here and not as a confusing machine failure.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import ClassVar

from harness import Implementation, register
from harness.hostile import register_crafter
from implementations.lww import DELTA_KIND, STATE_KIND, VERSION, Entry, LWWRegister, decode_delta, decode_state, entry_to_body
from implementations.wire import encode
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


class HLCCrafter:
    """The adversary's pen for ``LWWRegister`` messages (see ``machines.lww``, the adversary)."""

    lies = ("clock_ahead", "counter_at_max", "counter_at_limit", "stranger_ops", "one_field_wrong", "forged_copy",
            "bad_envelope")
    version = VERSION
    #: A caller's bad value or replica id is refused naming it (``machines.lww``'s ``caller_mistake``).
    refuses_caller_mistakes = True
    #: Where a refusal of a spoiled field (``one_field_wrong``) names it, word for word after the
    #: kind of message: the field's place in the body ``[wall_ns, counter, writer, value]``.
    places: ClassVar[dict[str, str]] = {
        "wall_ns": "body[0] (wall_ns): ", "counter": "body[1] (counter): ", "writer": "body[2] (writer): ",
        "value": "body[3] (value): ", "body": "body: "}

    def kind(self, whole_state: bool) -> str:
        return STATE_KIND if whole_state else DELTA_KIND

    def write(self, whole_state: bool, wall_ns: int, counter: int, writer: int, value: Hashable) -> bytes:
        return encode(self.kind(whole_state), VERSION, entry_to_body(Entry(wall_ns, counter, writer, value)))

    def tamper(self, genuine: bytes, whole_state: bool, field: str, value: int) -> bytes:
        entry = decode_state(genuine) if whole_state else decode_delta(genuine)
        if entry is None:
            return genuine[:-1]  # nothing to spoil in a register never written: a truncated state
        if field == "body":
            return encode(self.kind(whole_state), VERSION, value)
        return self.write(whole_state, **{**entry._asdict(), field: value})


register_crafter("lww", "hlc", HLCCrafter(), HLCRegisterReplica)
