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
from implementations.limits import MAX_CLOUD_RANGES, MAX_CONTEXT_REPLICAS, MAX_SET_DOTS
from implementations.orset import DELTA_KIND, STATE_KIND, VERSION, DeltaORSet, DotStore, decode_delta, decode_state, encode_body
from implementations.wire import element_key, encode
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


#: Elements the bookkeeping asks a replica about besides those it shows (one of each kind).
ABSENT = ("a", 0, b"\x00")
#: A stranger's dot, and the context that holds it; the next stranger (the two as wire values).
_DOT, _CONTEXT = [2**40, 1], [[2**40, 1]]
_X, _Y = 2**40, 2**40 + 1
#: A context of exactly MAX_CONTEXT_REPLICAS replicas in the vector: at the limit, accepted alone.
_FULL_VECTOR = [[2**32 + r, 1] for r in range(MAX_CONTEXT_REPLICAS)]


@functools.lru_cache(maxsize=8)
def _decoded_state(state: bytes) -> DotStore:
    """``decode_state``, remembered by the bytes for the bookkeeping check: a replica whose state
    a step left alone encodes the same bytes, and a 65,536-run dot cloud takes 0.17 CPU s to
    decode (read only: the check compares it, never changes it)."""
    return decode_state(state)


#: What a refusal of a run of dots that is not canonical says after the run.
_NOT_A_RUN = ", out of order, adjacent to the previous one or belongs in the version vector"
#: Spoilings of a message's body (the ``not_canonical`` lie), by name: what its refusal names after
#: the kind (the path of the spoiled part and what is wrong with it), the limit it passes, and the body.
#: ``runs_at_limit``: exactly MAX_CLOUD_RANGES runs and an element without dots: within the limit, so
#: refused for the element, not the count; ``dots_at_limit``, the same for MAX_SET_DOTS dots, the first
#: malformed. ``cloud_starts_at_gap``: a cloud whose run starts right after the vector's ``n + 1`` is canonical,
#: but its dot ``n + 1`` then is not in the context (the element of it is refused for that).
SPOILINGS: dict[str, tuple[str, str | None, Any]] = {
    "body_of_two": ("expected 3 items, got 2", None, lambda: [[], []]),
    "vector_not_a_list": ("[0]: expected array, got int 0", None, lambda: [0, [], []]),
    "cloud_not_a_list": ("[1]: expected array, got int 0", None, lambda: [[], 0, []]),
    "entries_not_a_list": ("[2]: expected array, got int 0", None, lambda: [[], [], 0]),
    "vector_over_limit": (f"[0]: {MAX_CONTEXT_REPLICAS + 1:,} replicas in the version vector", "MAX_CONTEXT_REPLICAS",
                          lambda: [[[2**32 + r, 1] for r in range(MAX_CONTEXT_REPLICAS + 1)], [], []]),
    "cloud_over_limit": (f"[1]: {MAX_CONTEXT_REPLICAS + 1:,} replicas in the dot cloud", "MAX_CONTEXT_REPLICAS",
                         lambda: [[], [[2**32 + r, [[2, 2]]] for r in range(MAX_CONTEXT_REPLICAS + 1)], []]),
    "context_over_limit": (f"the context names more than {MAX_CONTEXT_REPLICAS:,} replicas", "MAX_CONTEXT_REPLICAS",
                           lambda: [_FULL_VECTOR, [[_X, [[2, 2]]]], []]),
    "vector_item_of_three": ("[0][0]: expected 2 items, got 3", None, lambda: [[[_X, 1, 0]], [], []]),
    "vector_item_not_a_list": ("[0][0]: expected array, got int 0", None, lambda: [[0], [], []]),
    "vector_replica_not_an_integer": ("[0][0][0]: expected int, got str 'x'", None, lambda: [[["x", 1]], [], []]),
    "vector_counter_zero": ("[0][0][1]: 0 is outside [1, 18446744073709551615]", None, lambda: [[[_X, 0]], [], []]),
    "vector_counter_not_an_integer": ("[0][0][1]: expected int, got str 'x'", None, lambda: [[[_X, "x"]], [], []]),
    "vector_out_of_order": (f"[0][1]: replica {_X} is out of order (ascending, no repeats)", None,
                            lambda: [[[_Y, 1], [_X, 1]], [], []]),
    "vector_replica_repeated": (f"[0][1]: replica {_X} is out of order (ascending, no repeats)", None,
                                lambda: [[[_X, 1], [_X, 2]], [], []]),
    "cloud_pair_of_three": ("[1][0]: expected 2 items, got 3", None, lambda: [[], [[_X, [[2, 2]], 0]], []]),
    "cloud_replica_not_an_integer": ("[1][0][0]: expected int, got str 'x'", None, lambda: [[], [["x", [[2, 2]]]], []]),
    "cloud_out_of_order": (f"[1][1]: replica {_X} is out of order (ascending, no repeats)", None,
                           lambda: [[], [[_Y, [[2, 2]]], [_X, [[2, 2]]]], []]),
    "cloud_replica_repeated": (f"[1][1]: replica {_X} is out of order (ascending, no repeats)", None,
                               lambda: [[], [[_X, [[2, 2]]], [_X, [[4, 4]]]], []]),
    "cloud_runs_not_a_list": ("[1][0][1]: expected array, got int 0", None, lambda: [[], [[_X, 0]], []]),
    "cloud_empty": (f"[1][0]: replica {_X} has an empty cloud", None, lambda: [[], [[_X, []]], []]),
    "run_of_three": ("[1][0][1][0]: expected 2 items, got 3", None, lambda: [[], [[_X, [[2, 2, 2]]]], []]),
    "run_at_one": ("[1][0][1][0]: run 1..1 is empty" + _NOT_A_RUN, None, lambda: [[], [[_X, [[1, 1]]]], []]),
    "run_in_vector": ("[1][0][1][0]: run 3..3 is empty" + _NOT_A_RUN, None, lambda: [[[_X, 2]], [[_X, [[3, 3]]]], []]),
    "run_reversed": ("[1][0][1][0]: run 5..3 is empty" + _NOT_A_RUN, None, lambda: [[], [[_X, [[5, 3]]]], []]),
    "runs_adjacent": ("[1][0][1][1]: run 4..4 is empty" + _NOT_A_RUN, None, lambda: [[], [[_X, [[2, 3], [4, 4]]]], []]),
    "runs_out_of_order": ("[1][0][1][1]: run 2..2 is empty" + _NOT_A_RUN, None, lambda: [[], [[_X, [[4, 4], [2, 2]]]], []]),
    "runs_over_limit": (f"[1]: more than {MAX_CLOUD_RANGES:,} runs of dots in the cloud", "MAX_CLOUD_RANGES",
                        lambda: [[], [[_X, [[2 + 2 * r, 2 + 2 * r] for r in range(MAX_CLOUD_RANGES)]],
                                      [_Y, [[2, 2]]]], []]),
    "runs_at_limit": ("[2][0]: element 'a' has no dots", None,
                      lambda: [[], [[_X, [[2 + 2 * r, 2 + 2 * r] for r in range(MAX_CLOUD_RANGES)]]], [["a", []]]]),
    "dots_at_limit": ("[2][0][1][0]: expected array, got int 0", None, lambda: [_CONTEXT, [], [["a", [0] * MAX_SET_DOTS]]]),
    "dots_over_limit": (f"[2]: more than {MAX_SET_DOTS:,} dots", "MAX_SET_DOTS",
                        lambda: [_CONTEXT, [], [["a", [_DOT]], ["b", [0] * MAX_SET_DOTS]]]),
    "entry_of_three": ("[2][0]: expected 2 items, got 3", None, lambda: [_CONTEXT, [], [["a", [_DOT], 0]]]),
    "element_bool": ("[2][0][0]: set elements are str, int or bytes, got bool", None,
                     lambda: [_CONTEXT, [], [[True, [_DOT]]]]),
    "element_float": ("[2][0][0]: set elements are str, int or bytes, got float", None,
                      lambda: [_CONTEXT, [], [[0.5, [_DOT]]]]),
    "elements_out_of_order": ("[2][1]: element 'a' is out of order (canonical order, no repeats)", None,
                              lambda: [[[_X, 2]], [], [["b", [[_X, 1]]], ["a", [[_X, 2]]]]]),
    "element_repeated": ("[2][1]: element 'a' is out of order (canonical order, no repeats)", None,
                         lambda: [[[_X, 2]], [], [["a", [[_X, 1]]], ["a", [[_X, 2]]]]]),
    "element_without_dots": ("[2][0]: element 'a' has no dots", None, lambda: [_CONTEXT, [], [["a", []]]]),
    "dots_not_a_list": ("[2][0][1]: expected array, got int 0", None, lambda: [_CONTEXT, [], [["a", 0]]]),
    "dot_of_three": ("[2][0][1][0]: expected 2 items, got 3", None, lambda: [_CONTEXT, [], [["a", [[_X, 1, 0]]]]]),
    "dots_out_of_order": (f"[2][0][1][1]: dot ({_X}, 1) is out of order (ascending, no repeats)", None,
                          lambda: [[[_X, 2]], [], [["a", [[_X, 2], [_X, 1]]]]]),
    "dot_repeated": (f"[2][0][1][1]: dot ({_X}, 1) is out of order (ascending, no repeats)", None,
                     lambda: [_CONTEXT, [], [["a", [_DOT, _DOT]]]]),
    "dot_outside_context": (f"[2][0][1][0]: dot ({_X}, 1) is not in the causal context", None,
                            lambda: [[], [], [["a", [_DOT]]]]),
    "dot_beyond_vector": (f"[2][0][1][0]: dot ({_X}, 2) is not in the causal context", None,
                          lambda: [_CONTEXT, [], [["a", [[_X, 2]]]]]),
    "cloud_starts_at_gap": (f"[2][0][1][0]: dot ({_X}, 2) is not in the causal context", None,
                            lambda: [_CONTEXT, [[_X, [[3, 4]]]], [["a", [[_X, 2]]]]]),
    "dot_between_runs": (f"[2][0][1][0]: dot ({_X}, 5) is not in the causal context", None,
                         lambda: [[], [[_X, [[3, 4], [6, 6]]]], [["a", [[_X, 5]]]]]),
    "dot_of_two_elements": (f"[2][1][1][0]: dot ({_X}, 1) also belongs to 'a'", None,
                            lambda: [_CONTEXT, [], [["a", [_DOT]], ["b", [_DOT]]]]),
}


class DeltaStateCrafter:
    """The adversary's pen for ``DeltaORSet`` messages (see ``machines.orset``, the adversary).

    Messages are built as ``DotStore`` objects and encoded by the implementation's own
    encoder, so they are canonical and well-formed: they lie only in what they say.
    """

    lies = ("own_dots_ahead", "dots_far_ahead", "counter_at_max", "stranger_ops", "one_field_wrong",
            "huge_vector", "dot_cloud", "dots_at_gap", "not_canonical")
    spoilings = tuple(SPOILINGS)

    def kind(self, whole_state: bool) -> str:
        """The kind of message this crafter renders, which a refusal of it names."""
        return STATE_KIND if whole_state else DELTA_KIND

    def spoiling(self, how: str) -> tuple[str, str | None]:
        """What a refusal of the message ``spoil`` renders must name after the kind, and the limit
        it passes (None if it passes none)."""
        return SPOILINGS[how][0], SPOILINGS[how][1]

    @functools.lru_cache(maxsize=128)  # noqa: B019 (one crafter per process; the bytes never change)
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

    @staticmethod
    def gap_refusal(replica: int, counter: int, own: bool, known: int) -> str:
        """What a refusal of the dot ``(replica, counter)`` past the counter gap says of it."""
        whose = " (this replica's own)" if own else ""
        return f"claims dot ({replica}, {counter}){whose}; the greatest seen here is {known}"

    @staticmethod
    def bookkeeping(replica: DeltaORSet) -> list[str]:
        """What the replica keeps beside its elements and is wrong, found in a snapshot of its state:
        the count of runs in its cloud (MAX_CLOUD_RANGES), the cloud's runs in canonical form (sorted,
        apart, beyond the vector's ``n + 1``, no replica without one), the indexes of its live dots
        (``owner``, ``live``: each dot once, under its element, in the context); and a snapshot that
        is not its state, or readings (``in``, ``len``, ``elements``, ``dots``) that disagree with it."""
        wrong = []
        store = replica.snapshot()
        context = store.context
        counted = sum(len(runs) for runs in context.cloud.values())
        if context.runs != counted:
            wrong.append(f"it counts {context.runs} runs in its cloud and holds {counted}")
        for origin, runs in sorted(context.cloud.items()):
            last = context.vector.get(origin, 0) + 1
            for lo, hi in runs:
                if lo <= last or hi < lo:
                    wrong.append(f"its cloud of {origin} is not canonical: {runs} beyond {context.vector.get(origin, 0)}")
                    break
                last = hi + 1
            if not runs:
                wrong.append(f"its cloud holds no run of {origin}")
        owner = {dot: element for element, dots in store.entries.items() for dot in dots}
        live: dict[int, list[int]] = {}
        for origin, seq in sorted(owner):
            live.setdefault(origin, []).append(seq)
        if store.owner != owner or {r: list(seqs) for r, seqs in store.live.items()} != live:
            wrong.append(f"its index of live dots {store.owner}, {dict(store.live)} is not its entries {store.entries}")
        if any(not dots for dots in store.entries.values()) or any(dot not in context for dot in owner):
            wrong.append(f"it holds an element without dots or a dot outside its context: {store!r}")
        decoded = _decoded_state(replica.state())
        if store != decoded or context.runs != decoded.context.runs:
            wrong.append(f"its snapshot {store!r} is not its state {decoded!r}")
        shown = replica.value()
        if len(replica) != len(shown) or replica.elements() != sorted(shown, key=element_key):
            wrong.append(f"it shows {sorted(shown, key=element_key)} but has {len(replica)} elements, {replica.elements()}")
        for element in (*shown, *ABSENT):
            held = store.entries.get(element, set())
            if (element in replica) != (element in shown) or replica.dots(element) != held:
                wrong.append(f"{element!r} in it is {element in replica}, its dots {set(replica.dots(element))}, "
                             f"but its state says {element in shown}, {held}")
                break
        return wrong

    def tamper(self, genuine: bytes, whole_state: bool, dot: tuple[int, int]) -> bytes:
        store = (decode_state if whole_state else decode_delta)(genuine)
        store.context.add(tuple(dot))
        return self.encode(store, whole_state)


register_crafter("orset", "delta-state", DeltaStateCrafter(), DeltaORSet)
