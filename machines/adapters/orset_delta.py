"""Adapter: ``implementations.orset.DeltaORSet`` (delta-state, causal context, no tombstones)
for the ``orset`` machine.

The replica already speaks ``machines.contracts.SetReplica``; the clock is not needed (dots
are counters, never timestamps).
"""

from __future__ import annotations

import functools
from typing import Any

from harness import Implementation, register
from harness.hostile import register_crafter
from implementations.orset import DELTA_KIND, STATE_KIND, VERSION, DeltaORSet, DotStore, decode_delta, decode_state, encode_body
from implementations.wire import encode
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


#: A stranger's dot, and the context that holds it.
_DOT, _CONTEXT = [2**40, 1], [[2**40, 1]]
#: Spoilings of a message's body (the ``not_canonical`` lie), by name: what its refusal names after
#: the kind (the path of the spoiled part and what is wrong with it), the limit it passes, and the body.
SPOILINGS: dict[str, tuple[str, str | None, Any]] = {
    "element_bool": ("[2][0][0]: set elements are str, int or bytes, got bool", None,
                     lambda: [_CONTEXT, [], [[True, [_DOT]]]]),
    "element_float": ("[2][0][0]: set elements are str, int or bytes, got float", None,
                      lambda: [_CONTEXT, [], [[0.5, [_DOT]]]]),
}


class DeltaStateCrafter:
    """The adversary's pen for ``DeltaORSet`` messages (see ``machines.orset``, the adversary).

    Messages are built as ``DotStore`` objects and encoded by the implementation's own
    encoder, so they are canonical and well-formed: they lie only in what they say.
    """

    lies = ("own_dots_ahead", "dots_far_ahead", "counter_at_max", "stranger_ops", "one_field_wrong",
            "huge_vector", "dot_cloud", "not_canonical")
    spoilings = tuple(SPOILINGS)

    def kind(self, whole_state: bool) -> str:
        """The kind of message this crafter renders, which a refusal of it names."""
        return STATE_KIND if whole_state else DELTA_KIND

    def spoiling(self, how: str) -> tuple[str, str | None]:
        """What a refusal of the message ``spoil`` renders must name after the kind, and the limit
        it passes (None if it passes none)."""
        return SPOILINGS[how][0], SPOILINGS[how][1]

    def spoil(self, whole_state: bool, how: str) -> bytes:
        """A message whose body is spoiled as ``SPOILINGS[how]`` says."""
        return encode(self.kind(whole_state), VERSION, SPOILINGS[how][2]())

    @staticmethod
    def encode(store: DotStore, whole_state: bool) -> bytes:
        return encode(STATE_KIND if whole_state else DELTA_KIND, VERSION, encode_body(store))

    def claim(self, whole_state: bool, dots: list[tuple[int, int]]) -> bytes:
        store = DotStore()
        for dot in dots:
            store.context.add(tuple(dot))
        return self.encode(store, whole_state)

    def add(self, whole_state: bool, element: Any, dot: tuple[int, int]) -> bytes:
        store = DotStore()
        store.insert(element, tuple(dot))
        store.context.add(tuple(dot))
        return self.encode(store, whole_state)

    def remove(self, whole_state: bool, element: Any, dots: list[tuple[int, int]]) -> bytes:
        return self.claim(whole_state, dots)

    def observed(self, holder: DeltaORSet, element: Any) -> set[tuple[int, int]]:
        return decode_state(holder.state()).entries.get(element, set())

    @functools.lru_cache(maxsize=4)  # noqa: B019 (one crafter per process; the bytes never change)
    def huge_vector(self, whole_state: bool, replicas: int) -> bytes:
        store = DotStore()
        for stranger in range(replicas):
            store.context.add((2**32 + stranger, 1))
        return self.encode(store, whole_state)

    @functools.lru_cache(maxsize=4)  # noqa: B019 (one crafter per process; the bytes never change)
    def dot_cloud(self, whole_state: bool, replica: int, runs: int) -> bytes:
        store = DotStore()
        for run in range(runs):
            store.context.add((replica, 2 + 2 * run))
        return self.encode(store, whole_state)

    def tamper(self, genuine: bytes, whole_state: bool, dot: tuple[int, int]) -> bytes:
        store = (decode_state if whole_state else decode_delta)(genuine)
        store.context.add(tuple(dot))
        return self.encode(store, whole_state)


register_crafter("orset", "delta-state", DeltaStateCrafter(), DeltaORSet)
