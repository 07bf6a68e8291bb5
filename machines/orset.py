"""The OR-Set machine: ``models.orset`` against every registered ``orset`` implementation.

Replicas add and remove elements from a small pool (strings, integers and one 32-byte
``bytes`` value, so different replicas keep touching the same elements) and replicate
through the faulty network of ``ReplicatedMachine``: deltas delivered late, twice, out of
order or never, full-state syncs in any direction, clocks that barely move (so adds on
different replicas often fall in the same millisecond). A remove mostly targets an element
the replica holds, so removes usually remove something.

The model side: an add at replica ``i`` is ``Add(element, next_tag(history_i, i))``; a
remove is ``Remove(element, observed_tags(history_i, element))``. After every step each
replica's value must equal ``models.orset.value`` of the history it has seen.

Elements in a trace are JSON: strings, integers, and ``{"bytes": "<hex>"}`` for bytes.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import rule

from harness import machine_test
from machines.replicated import INDEX, ReplicatedMachine
from models.orset import Add, Remove, next_tag, observed_tags, value

#: The elements replicas add and remove, as they appear in traces.
POOL = ("a", "b", "c", "x", 0, 7, {"bytes": "ab" * 32})


def element_from_trace(raw: Any) -> Any:
    """An element from its JSON form (``{"bytes": hex}`` for bytes), or ValueError."""
    if isinstance(raw, dict):
        if set(raw) != {"bytes"} or not isinstance(raw["bytes"], str):
            raise ValueError(f"a bytes element is written {{'bytes': '<hex>'}}, got {raw!r}")
        return bytes.fromhex(raw["bytes"])
    if isinstance(raw, (str, int)) and not isinstance(raw, bool):
        return raw
    raise ValueError(f"an element is a string, an integer or {{'bytes': '<hex>'}}, got {raw!r}")


def element_to_trace(element: Any) -> Any:
    return {"bytes": element.hex()} if isinstance(element, bytes) else element


def canonical(element: Any) -> tuple[int, Any]:
    """A total order on elements of mixed types, so choices are reproducible."""
    return (0 if isinstance(element, int) else 1 if isinstance(element, str) else 2, element)


class ORSetMachine(ReplicatedMachine):
    name = "orset"

    def model_value(self, history: frozenset) -> frozenset:
        return value(history)

    def replica_value(self, replica: Any) -> frozenset:
        return frozenset(replica.value())

    # ----- operations ------------------------------------------------------------------

    @rule(replica=INDEX, element=st.sampled_from(POOL))
    def add(self, replica: int, element: Any) -> None:
        self.do("add", replica=self.pick(replica, self.replicas), element=element)

    def step_add(self, replica: int, element: Any) -> None:
        self.require_replica(replica)
        try:
            added = element_from_trace(element)
        except ValueError as error:
            self.require(False, str(error))
        tag = next_tag(self.history[replica], replica)
        self.replicas[replica].add(added)
        self.record_local(replica, Add(added, tag))

    @rule(replica=INDEX, element=st.sampled_from(POOL), held=st.integers(0, 3), choice=INDEX)
    def remove(self, replica: int, element: Any, held: int, choice: int) -> None:
        """Three times in four, an element the replica holds (when it holds any)."""
        index = self.pick(replica, self.replicas)
        holding = sorted(value(self.history[index]), key=canonical)
        if held and holding:
            element = element_to_trace(holding[self.pick(choice, holding)])
        self.do("remove", replica=index, element=element)

    def step_remove(self, replica: int, element: Any) -> None:
        self.require_replica(replica)
        try:
            removed = element_from_trace(element)
        except ValueError as error:
            self.require(False, str(error))
        observed = observed_tags(self.history[replica], removed)
        self.replicas[replica].remove(removed)
        if observed:
            self.record_local(replica, Remove(removed, observed))


test_orset_machine = machine_test(ORSetMachine)
