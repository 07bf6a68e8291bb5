"""RGA bugs: the order of concurrent inserts, ids, operations that arrive early, tombstones,
elements told apart by value, the counter ceiling and the wire's counter steps.

They patch the internals of ``implementations.rga.RGA`` (runs in a counted B-tree:
``_place``, ``_next_counter``, ``_delete_range``, ``_wait``, ``_kill``, ``apply_decoded_delta``,
``index_of``)
and are driven as the adapter drives RGA (``TreeReplica``), so the machine's adversary
speaks to them too: when the RGA implementation changes, so do they.
"""

from __future__ import annotations

import contextlib
from itertools import accumulate
from unittest import mock

import implementations.rga as rga_module
from harness import Implementation
from implementations.rga import RGA
from implementations.wire import DecodeError
from machines.adapters.rga_tree import TreeReplica
from tests.bugs.catalogue import Bug, variant


def place_by(key):
    """A remote insert's place with siblings compared by ``key`` (greatest first) instead of by
    id: from just after the parent, every element whose key is greater is skipped."""

    def _place(self: RGA, counter: int, replica: int, parent_counter: int, parent_replica: int, content) -> None:
        new = key((counter, replica))
        elements = [(run, offset) for run in self._runs() for offset in range(len(run.items))]
        position = 0
        if parent_counter:
            position = 1 + next(n for n, (run, offset) in enumerate(elements)
                                if (run.counter + offset, run.replica) == (parent_counter, parent_replica))
        while position < len(elements):
            run, offset = elements[position]
            if key((run.counter + offset, run.replica)) < new:
                break
            position += 1
        if position == len(elements):
            leaf, i = self._rightmost(), len(self._rightmost().runs)
        else:
            run, offset = elements[position]
            leaf, i = run.leaf, run.leaf.runs.index(run)
            if offset:
                self._split_run(leaf, i, offset)
                i += 1
        self._put_chain(leaf, i, counter, replica, parent_counter, parent_replica, content)

    return _place


class SmallestSiblingFirst(RGA):
    """Concurrent inserts after one element are ordered smallest id first."""

    _place = place_by(lambda element: (-element[0], -element[1]))  # BUG: the order is reversed


class ReplicaBeforeCounter(RGA):
    """Siblings are compared by replica first, then counter: a replica with a greater id
    always wins, even against an insert that saw more."""

    _place = place_by(lambda element: (element[1], element[0]))  # BUG: should be (counter, replica)


class OwnCounterOnly(RGA):
    """Each replica counts its own inserts only, ignoring the counters of ids it received: a
    new element can have a smaller id than elements it was inserted after or beside."""

    def __init__(self, replica_id: int) -> None:
        super().__init__(replica_id)
        self._own = 0

    def _next_counter(self) -> int:
        self._own += 1  # BUG: should be 1 + the greatest counter seen, remote ones included
        return self._own


class EarlyDeleteDropped(RGA):
    """A delete of an element not known yet is ignored instead of remembered."""

    def _delete_range(self, start: int, end: int, replica: int) -> None:
        for counter in range(start, end):
            run = self._run_of(counter, replica)
            if run is not None:  # BUG: an unknown element's delete is lost
                self._kill(run, counter - run.counter, counter - run.counter + 1)


class OrphanInsertDropped(RGA):
    """An insert whose parent has not arrived yet is ignored instead of kept until it does."""

    def _wait(self, counter, replica, parent_counter, parent_replica, content) -> None:
        return  # BUG: should wait for the parent


class WaitingKeptTwice(RGA):
    """An insert that waits for its parent and is delivered again (a duplicated delta, a window
    of a chain sent again) is kept again: the ids already waiting are not left out."""

    def _wait(self, counter, replica, parent_counter, parent_replica, content) -> None:
        ranges = self._waiting_ids.get(replica)
        if ranges is not None:
            rga_module._ranges_remove(ranges, counter, counter + len(content))  # BUG: forgets which ids wait already
        super()._wait(counter, replica, parent_counter, parent_replica, content)


class MergeKeepsKnownAlive(RGA):
    """A merge only adds elements it did not know; that the sender deleted one it knows is lost."""

    def _kill(self, run, start: int, stop: int, i: int | None = None) -> int:
        if getattr(self, "_merging", False):
            return 0  # BUG: a known element deleted elsewhere stays visible here
        return super()._kill(run, start, stop, i)

    def apply_state(self, state) -> None:
        self._merging = True
        try:
            super().apply_state(state)
        finally:
            self._merging = False


class DeletesByValue(RGA):
    """A remote delete removes the first visible element that holds the same item as its
    target, as if an item were its own identity. With a fresh character per insert this is
    invisible; with equal characters, the norm in text, it deletes the wrong element."""

    def _delete_range(self, start: int, end: int, replica: int) -> None:
        for counter in range(start, end):
            run = self._run_of(counter, replica)
            if run is None:
                super()._delete_range(counter, counter + 1, replica)
                continue
            item = run.items[counter - run.counter]
            for element in self.ids():  # BUG: the first element with that item, not the target
                other, offset = self._known(element)
                if other.items[offset] == item:
                    self._kill(other, offset, offset + 1)
                    break


class RedeliveryRevives(RGA):
    """A delta carrying the insert of an element deleted here shows it again (as if an insert
    said "this element is alive"); the next full-state merge that carries its tombstone hides
    it again, so a check made only after full syncs never sees it."""

    def apply_decoded_delta(self, delta) -> None:
        for counter, replica, _, _, content in delta.runs:
            for element in range(counter, counter + len(content)):
                run = self._run_of(element, replica)
                offset = element - run.counter if run is not None else 0
                if run is not None and not (run.flags[offset] if run.flags is not None else run.visible):
                    flags = run.flags if run.flags is not None else bytearray(len(run.items))
                    flags[offset] = 1  # BUG: a tombstone is not undone by an insert
                    run.visible += 1
                    run.flags = None if run.visible == len(run.items) else flags
                    run.leaf[run.leaf.runs.index(run)] += 1
                    self._bump(run.leaf, 1)
        super().apply_decoded_delta(delta)


class IndexCountsTombstones(RGA):
    """An element's index counts the deleted elements before it in its own run of inserts, as
    if a run were all visible (a cursor kept by id then lands past where the user put it)."""

    def index_of(self, element):
        run = self._run_of(*element)
        place = super().index_of(element)
        if place is None or run is None or run.flags is None:
            return place
        offset = element[0] - run.counter
        return place + offset - run.flags.count(1, 0, offset)  # BUG: the tombstones before it counted


class InsertsPastTheCeiling(TreeReplica):
    """The ceiling check reverted: a replica that has seen counter 2**64 - 1 goes on
    inserting, with ids the wire cannot carry (its next ``state()`` raises OverflowError)."""

    def _next_counter(self) -> int:
        return self._max_counter + 1  # BUG: no refusal past U64_MAX


def signed_steps(run_columns):
    """The wire fix reverted: counter steps back as negative integers, which MessagePack
    cannot carry below -2**63 (a step back from the top of the range to a small counter)."""

    def columns(runs):
        out = run_columns(runs)
        counters = [total % 2**64 for total in accumulate(out[0])]
        out[0] = [counter - previous for previous, counter in zip([0, *counters], counters, strict=False)]
        return out

    return columns


def as_replica(cls):
    """``cls`` as the adapter drives ``RGA`` (``TreeReplica``)."""
    replica_class = cls if issubclass(cls, TreeReplica) else type(cls.__name__, (cls, TreeReplica), {})
    return lambda replica_id, clock: replica_class(replica_id)


def _bug(name, description, kind, cls, involves=(), level="exact"):
    return Bug(f"rga-{name}", "rga", description, kind, variant("rga", name, as_replica(cls), level=level), correct="rga",
               errors=(AssertionError, DecodeError), involves=frozenset(involves))


def _signed_steps_plant():
    @contextlib.contextmanager
    def plant():
        with mock.patch.object(rga_module, "_run_columns", signed_steps(rga_module._run_columns)):
            yield Implementation("rga", "bug-signed-counter-steps", as_replica(TreeReplica))

    return plant


BUGS = [
    _bug("smallest-sibling-first", "concurrent inserts after one element are ordered smallest id first", "tie-break",
         SmallestSiblingFirst),
    _bug("replica-before-counter", "siblings compared by replica before counter", "tie-break", ReplicaBeforeCounter),
    _bug("own-counter-only", "ids count the replica's own inserts only, not the greatest counter seen", "version-counter",
         OwnCounterOnly, {"insert|insert_after"}),
    _bug("early-delete-dropped", "a delete of an element not known yet is ignored instead of remembered", "causal-order",
         EarlyDeleteDropped),
    _bug("orphan-insert-dropped", "an insert whose parent has not arrived yet is dropped", "causal-order",
         OrphanInsertDropped),
    _bug("orphan-insert-dropped-convergent", "an insert whose parent has not arrived yet is dropped, in a library "
         "checked only at level convergent: full states would hide it, deltas alone must converge (issue 10, gap 3)",
         "causal-order", OrphanInsertDropped, level="convergent"),
    _bug("waiting-insert-kept-twice", "an insert waiting for its parent is kept again when delivered again: the "
         "replica's full state names its id twice, and every peer refuses it", "lost-update", WaitingKeptTwice),
    _bug("merge-keeps-known-alive", "a full-state merge ignores the sender's tombstones of elements already known",
         "resurrection", MergeKeepsKnownAlive, {"delete|delete_id"}),
    # A hostile delta's deletes are remote deletes too: a search may expose it there first.
    _bug("deletes-by-value", "a remote delete removes the first element holding the same item, not its target",
         "tie-break", DeletesByValue, {"delete|delete_id|hostile"}),
    _bug("redelivery-revives", "a re-delivered insert shows an element deleted here again", "resurrection",
         RedeliveryRevives, {"delete"}, level="convergent"),
    _bug("index-counts-tombstones", "an element's index counts the deleted elements before it in its run of inserts",
         "off-by-one", IndexCountsTombstones, {"delete|delete_id|hostile"}),
    _bug("inserts-past-the-ceiling", "a replica that has seen counter 2**64 - 1 goes on inserting", "off-by-one",
         InsertsPastTheCeiling, {"insert"}),
    Bug("rga-signed-counter-steps", "rga", "counter steps go on the wire as signed integers, which MessagePack cannot "
        "carry below -2**63", "arithmetic", _signed_steps_plant(), correct="rga", errors=(AssertionError, DecodeError)),
]
