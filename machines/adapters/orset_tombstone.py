"""Adapter: ``implementations.orset_tombstone.TombstoneORSet`` (per-element tags and
tombstones, the upstream style) for the ``orset`` machine.

The replica already speaks ``machines.contracts.SetReplica``; the clock is not needed (tags
are counters, never timestamps).
"""

from __future__ import annotations

import functools
from typing import Any

from harness import Implementation, register
from harness.hostile import register_crafter
from implementations.orset_tombstone import (
    DELTA_KIND,
    STATE_KIND,
    VERSION,
    TagMap,
    TombstoneORSet,
    _decode,
    _encode_map,
)
from implementations.wire import element_key, encode
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


class TombstoneCrafter:
    """The adversary's pen for ``TombstoneORSet`` messages (see ``machines.orset``).

    A claim of dots the sender saw removed is a tombstone of those tags (under the element
    ``"a"``: the tags are what matter). There is no dot cloud in this format.
    """

    lies = ("own_dots_ahead", "dots_far_ahead", "counter_at_max", "stranger_ops", "one_field_wrong", "huge_vector")

    @staticmethod
    def encode(elements: TagMap, tombstones: TagMap, whole_state: bool) -> bytes:
        return encode(STATE_KIND if whole_state else DELTA_KIND, VERSION, [_encode_map(elements), _encode_map(tombstones)])

    def claim(self, whole_state: bool, dots: list[tuple[int, int]]) -> bytes:
        return self.remove(whole_state, "a", dots)

    def add(self, whole_state: bool, element: Any, dot: tuple[int, int]) -> bytes:
        return self.encode({element: {tuple(dot)}}, {}, whole_state)

    def remove(self, whole_state: bool, element: Any, dots: list[tuple[int, int]]) -> bytes:
        return self.encode({}, {element: {tuple(dot) for dot in dots}}, whole_state)

    def observed(self, holder: TombstoneORSet, element: Any) -> set[tuple[int, int]]:
        elements, tombstones = _decode(holder.state(), STATE_KIND)
        return elements.get(element, set()) - tombstones.get(element, set())

    @functools.lru_cache(maxsize=4)  # noqa: B019 (one crafter per process; the bytes never change)
    def huge_vector(self, whole_state: bool, replicas: int) -> bytes:
        return self.claim(whole_state, [(2**32 + stranger, 1) for stranger in range(replicas)])

    def tamper(self, genuine: bytes, whole_state: bool, dot: tuple[int, int]) -> bytes:
        elements, tombstones = _decode(genuine, STATE_KIND if whole_state else DELTA_KIND)
        if not tombstones and not elements:
            tombstones["a"] = set()
        target = tombstones or elements
        target[min(target, key=element_key)].add(tuple(dot))
        return self.encode(elements, tombstones, whole_state)


register_crafter("orset", "tombstone", TombstoneCrafter(), TombstoneORSet)
