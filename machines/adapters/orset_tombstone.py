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
from implementations.limits import MAX_TOMBSTONE_TAGS
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


#: A tag of a stranger, and its next.
_TAG, _NEXT = [2**40, 1], [2**40, 2]
#: Spoilings of a message's body (the ``not_canonical`` lie), by name: the path its refusal names
#: (after the kind), the limit it passes, and the body. ``tags_at_limit``: exactly MAX_TOMBSTONE_TAGS
#: tags, the first malformed: within the limit, so refused for the malformed tag, not the count.
SPOILINGS: dict[str, tuple[str, str | None, Any]] = {
    "body_of_three": ("body", None, lambda: [[], [], []]),
    "elements_not_a_list": ("elements", None, lambda: [0, []]),
    "tombstones_not_a_list": ("tombstones", None, lambda: [[], 0]),
    "pair_of_three": ("elements[0]", None, lambda: [[["a", [_TAG], 0]], []]),
    "element_of_no_kind": ("elements[0][0]", None, lambda: [[[0.5, [_TAG]]], []]),
    "elements_out_of_order": ("elements[1]", None, lambda: [[["b", [_TAG]], ["a", [_NEXT]]], []]),
    "element_repeated": ("tombstones[1]", None, lambda: [[], [["a", [_TAG]], ["a", [_NEXT]]]]),
    "element_without_tags": ("tombstones[0]", None, lambda: [[], [["a", []]]]),
    "tags_not_a_list": ("elements[0][1]", None, lambda: [[["a", 0]], []]),
    "tag_of_three": ("elements[0][1][0]", None, lambda: [[["a", [[2**40, 1, 0]]]], []]),
    "replica_not_an_integer": ("elements[0][1][0][0]", None, lambda: [[["a", [["x", 1]]]], []]),
    "counter_zero": ("tombstones[0][1][0][1]", None, lambda: [[], [["a", [[2**40, 0]]]]]),
    "tags_repeated": ("elements[0][1][1]", None, lambda: [[["a", [_TAG, _TAG]]], []]),
    "tags_at_limit": ("elements[0][1][0]", None, lambda: [[["a", [0] * MAX_TOMBSTONE_TAGS]], []]),
    "tags_over_limit": ("elements", "MAX_TOMBSTONE_TAGS", lambda: [[["a", [_TAG]], ["b", [0] * MAX_TOMBSTONE_TAGS]], []]),
}


class TombstoneCrafter:
    """The adversary's pen for ``TombstoneORSet`` messages (see ``machines.orset``).

    A claim of dots the sender saw removed is a tombstone of those tags (under the element
    ``"a"``: the tags are what matter). There is no dot cloud in this format.

    ``not_canonical`` messages (``spoil``) decode as MessagePack of the right kind and version
    but break the format's canonical form (``SPOILINGS``); ``bookkeeping`` is what a replica
    keeps to check its limits, recounted from the tags it holds.
    """

    lies = ("own_dots_ahead", "dots_far_ahead", "counter_at_max", "stranger_ops", "one_field_wrong", "huge_vector",
            "dots_at_gap", "vector_at_limit", "not_canonical")
    spoilings = tuple(SPOILINGS)

    def kind(self, whole_state: bool) -> str:
        """The kind of message this crafter renders, which a refusal of it names."""
        return STATE_KIND if whole_state else DELTA_KIND

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

    def spoiling(self, how: str) -> tuple[str, str | None]:
        """What a refusal of the message ``spoil`` renders must name: the path of the spoiled part
        (after the kind: ``elements[0][1]``) and the limit it passes (None if it passes none)."""
        return SPOILINGS[how][0], SPOILINGS[how][1]

    @functools.lru_cache(maxsize=32)  # noqa: B019 (one crafter per process; the bytes never change)
    def spoil(self, whole_state: bool, how: str) -> bytes:
        """A message whose body is spoiled as ``SPOILINGS[how]`` says."""
        return encode(self.kind(whole_state), VERSION, SPOILINGS[how][2]())

    @staticmethod
    def bookkeeping(replica: TombstoneORSet) -> list[str]:
        """What the replica keeps to check its limits and is wrong, by the tags it holds: the count
        of tags (MAX_TOMBSTONE_TAGS), the greatest counter of each replica's tags (MAX_COUNTER_GAP,
        MAX_CONTEXT_REPLICAS; tags are never dropped, so it is at least the greatest held)."""
        wrong = []
        held = [tag for tags in (replica.elements, replica.tombstones) for each in tags.values() for tag in each]
        if replica.tag_count != len(held):
            wrong.append(f"it counts {replica.tag_count} tags and holds {len(held)}")
        for origin, seq in held:
            if replica.highest.get(origin, 0) < seq:
                wrong.append(f"it holds tag ({origin}, {seq}) but counts {replica.highest.get(origin)} the greatest of {origin}")
                break
        return wrong

    def tamper(self, genuine: bytes, whole_state: bool, dot: tuple[int, int]) -> bytes:
        elements, tombstones = _decode(genuine, STATE_KIND if whole_state else DELTA_KIND)
        if not tombstones and not elements:
            tombstones["a"] = set()
        target = tombstones or elements
        target[min(target, key=element_key)].add(tuple(dot))
        return self.encode(elements, tombstones, whole_state)


register_crafter("orset", "tombstone", TombstoneCrafter(), TombstoneORSet)
