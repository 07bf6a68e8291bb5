"""RGA bugs: the order of concurrent inserts, ids, and operations that arrive early.

These patch the internals of ``implementations.rga.RGA`` (``_slot``, ``_next_id``,
``_receive_*``, ``_kill``): when the RGA implementation changes, so do they.
"""

from __future__ import annotations

from implementations.rga import RGA, Id
from implementations.wire import DecodeError
from tests.bugs.catalogue import Bug, variant


def slot_by(key):
    """A remote insert's slot, with siblings compared by ``key`` (greatest first) instead of by id."""

    def slot(self: RGA, element: Id, parent: Id | None) -> tuple[int, int]:
        chunks = self._chunks
        if parent is None:
            number, position = 0, 0
        else:
            chunk = self._where[parent]
            number, position = chunk.index, chunk.ids.index(parent) + 1
        while True:
            ids = chunks[number].ids
            while position < len(ids) and key(ids[position]) > key(element):
                position += 1
            if position < len(ids) or number == len(chunks) - 1:
                return number, position
            number, position = number + 1, 0

    return slot


class SmallestSiblingFirst(RGA):
    """Concurrent inserts after one element are ordered smallest id first."""

    _slot = slot_by(lambda element: (-element[0], -element[1]))  # BUG: the order is reversed


class ReplicaBeforeCounter(RGA):
    """Siblings are compared by replica first, then counter: a replica with a greater id
    always wins, even against an insert that saw more."""

    _slot = slot_by(lambda element: (element[1], element[0]))  # BUG: should be (counter, replica)


class OwnCounterOnly(RGA):
    """Each replica counts its own inserts only, ignoring the counters of ids it received: a
    new element can have a smaller id than elements it was inserted after or beside."""

    def __init__(self, replica_id: int) -> None:
        super().__init__(replica_id)
        self._own = 0

    def _next_id(self) -> Id:
        self._own += 1  # BUG: should be 1 + the greatest counter seen, remote ones included
        self._max_counter = max(self._max_counter, self._own)
        return (self._own, self.replica_id)


class EarlyDeleteDropped(RGA):
    """A delete of an element not known yet is ignored instead of remembered."""

    def _receive_delete(self, element: Id) -> None:
        if element in self._where:  # BUG: an unknown element's delete is lost
            self._kill(element)


class OrphanInsertDropped(RGA):
    """An insert whose parent has not arrived yet is ignored instead of kept until it does."""

    def _receive_insert(self, element, parent, item) -> None:
        if element in self._where or (parent is not None and parent not in self._where):
            return  # BUG: should wait for the parent
        self._integrate(element, parent, item)


class MergeKeepsKnownAlive(RGA):
    """A merge only adds elements it did not know; that the sender deleted one it knows is lost."""

    def _kill(self, element: Id) -> bool:
        if getattr(self, "_merging", False):
            return False  # BUG: a known element deleted elsewhere stays visible here
        return super()._kill(element)

    def apply_state(self, state) -> None:
        self._merging = True
        try:
            super().apply_state(state)
        finally:
            self._merging = False

def _bug(name, description, kind, cls, involves=()):
    return Bug(f"rga-{name}", "rga", description, kind,
               variant("rga", name, lambda replica_id, clock: cls(replica_id)), correct="rga",
               errors=(AssertionError, DecodeError), involves=frozenset(involves))


BUGS = [
    _bug("smallest-sibling-first", "concurrent inserts after one element are ordered smallest id first", "tie-break",
         SmallestSiblingFirst, {"insert"}),
    _bug("replica-before-counter", "siblings compared by replica before counter", "tie-break", ReplicaBeforeCounter,
         {"insert"}),
    _bug("own-counter-only", "ids count the replica's own inserts only, not the greatest counter seen", "version-counter",
         OwnCounterOnly, {"insert"}),
    _bug("early-delete-dropped", "a delete of an element not known yet is ignored instead of remembered", "causal-order",
         EarlyDeleteDropped, {"delete"}),
    _bug("orphan-insert-dropped", "an insert whose parent has not arrived yet is dropped", "causal-order",
         OrphanInsertDropped, {"insert"}),
    _bug("merge-keeps-known-alive", "a full-state merge ignores the sender's tombstones of elements already known",
         "resurrection", MergeKeepsKnownAlive, {"delete"}),
]
