"""OR-Set bugs: the delta-state set (dots, causal context) and the tombstone set (tags)."""

from __future__ import annotations

from implementations.orset import DeltaORSet, DotStore
from implementations.orset_tombstone import DELTA_KIND, TagMap, TombstoneORSet, _decode
from implementations.wire import DecodeError
from machines.replicated import START_NS
from models.clock import to_millis
from tests.bugs.catalogue import Bug, variant


class JoinIgnoresContext(DeltaORSet):
    """Joins take every incoming dot they do not hold, without asking whether the causal
    context says it was seen (and removed) already."""

    def join(self, other: DotStore) -> None:
        store = self._store
        for dot in [d for d in store.owner if d in other.context and d not in other.owner]:
            store.discard(dot)
        for dot, element in other.owner.items():
            if dot not in store.owner:  # BUG: should also skip dots in store.context
                store.insert(element, dot)
        store.context.update(other.context)


class TimestampTags(TombstoneORSet):
    """Tags are the wall-clock millisecond, without the replica."""

    def __init__(self, replica_id: int, clock) -> None:
        super().__init__(replica_id)
        self.clock = clock

    def new_tag(self) -> tuple[int, int]:
        # BUG: not unique. (One pseudo-replica for every tag, and milliseconds since the
        # machine's start: a raw Unix time in ms is more than MAX_COUNTER_GAP beyond a fresh
        # replica's counters, and a correct peer would refuse it.)
        tag = (2**32, max(1, to_millis(self.clock.now()) - to_millis(START_NS)))
        self.highest[tag[0]] = max(self.highest.get(tag[0], 0), tag[1])  # what its limits are checked by, kept right
        return tag


class RemoveKillsUnobserved(DeltaORSet):
    """A join that learns an element was removed elsewhere drops the element whole."""

    def join(self, other: DotStore) -> None:
        store = self._store
        removed_there = {store.owner[d] for d in store.owner if d in other.context and d not in other.owner}
        for element in removed_there:
            for dot in list(store.entries[element]):  # BUG: only the dots other has seen
                store.discard(dot)
        super().join(other)


class TombstonesReplaced(TombstoneORSet):
    """A merge overwrites an element's tombstones with the incoming ones."""

    def merge_maps(self, elements: TagMap, tombstones: TagMap) -> None:
        super().merge_maps(elements, tombstones)  # the adds, and the counts the limits are checked by
        for element, tags in tombstones.items():
            self.tombstones[element] = set(tags)  # BUG: should be a union
        self.tag_count = sum(len(tags) for held in (self.elements, self.tombstones) for tags in held.values())


class RemoveNotInDelta(DeltaORSet):
    """Removes change the local state but are left out of the pending delta."""

    def remove(self, element) -> None:
        dots = self._store.entries.get(element)
        if not dots:
            return
        delta = DotStore()
        for dot in dots:
            delta.context.add(dot)
        self._store.join(delta)  # BUG: self._pending never hears of it


class NoDotCloud(DeltaORSet):
    """The causal context is kept as a version vector only, as if deltas arrived in order."""

    def join(self, other: DotStore) -> None:
        trimmed = other.copy()
        trimmed.context.cloud = {}  # BUG: out-of-order dots are not remembered
        self._store.join(trimmed)


class ReAddKeepsOldDot(DeltaORSet):
    """Adding an element already present is a no-op: no fresh dot, so a concurrent remove
    that saw the old dot also kills the re-add it never saw."""

    def add(self, element) -> None:
        if element in self._store.entries:
            return  # BUG: an add must always make a fresh dot
        super().add(element)


class AddThenRemoveSendsNothing(DeltaORSet):
    """An element added and removed between two broadcasts is dropped from the pending
    delta whole, dot and context, as if the two cancelled out: a replica that got the add
    by a full sync never hears of the remove."""

    def remove(self, element) -> None:
        dots = set(self._store.entries.get(element, ()))
        pending = self._pending
        super().remove(element)
        cancelled = {dot for dot in dots if dot in pending.context and dot[0] == self.replica_id}
        if cancelled:  # BUG: a remove must always reach the others, cancelled add or not
            kept = DotStore()
            for replica in pending.context.replicas():
                for lo, hi in pending.context.runs_of(replica):
                    for seq in range(lo, hi + 1):
                        if (replica, seq) not in cancelled:
                            kept.context.add((replica, seq))
            for dot, item in pending.owner.items():
                kept.insert(item, dot)
            self._pending = kept


class EarlyTombstoneDropped(TombstoneORSet):
    """Tombstones for an element not seen yet are dropped from a delta, as if there were
    nothing to remove: the add, arriving later, resurrects it."""

    def apply_delta(self, delta: bytes) -> None:
        elements, tombstones = _decode(delta, DELTA_KIND)
        known = self.elements.keys() | elements.keys()
        self.merge_maps(elements, {e: t for e, t in tombstones.items() if e in known})  # BUG: keep them all


class BelievesEveryContext(DeltaORSet):
    """The delta-state OR-Set before issue 7: every well-formed message is joined, so a
    context claiming this replica's own dot (r, 2^64 - 1) makes every later add raise
    OverflowError, and one claiming (r, n + 1) makes its next add vanish."""

    def admit(self, other: DotStore, what: str = "a message") -> None:
        pass  # BUG: no limit is checked


class BelievesEveryTag(TombstoneORSet):
    """The tombstone OR-Set before issue 7, its limits: a tag (r, 2^64 - 1) is merged."""

    def admit(self, elements: TagMap, tombstones: TagMap, what: str = "a message") -> None:
        pass  # BUG: no limit is checked


class CountsOnlyItsOwnAdds(TombstoneORSet):
    """The tombstone OR-Set before issue 7, its tags: a new tag counts only the adds made
    here, so a tombstone for a tag it has not made yet kills its own next add."""

    def new_tag(self) -> tuple[int, int]:
        self.seq += 1  # BUG: should be beyond every tag of this replica seen
        return (self.replica_id, self.seq)


def _plain(cls):
    return lambda replica_id, clock: cls(replica_id)


BUGS = [
    Bug("orset-join-ignores-context", "orset", "a join re-inserts dots its causal context says were removed",
        "resurrection", variant("orset", "join-ignores-context", _plain(JoinIgnoresContext)), correct="delta-state",
        involves=frozenset({"add", "remove"})),
    Bug("orset-timestamp-tags", "orset", "add tags are the wall-clock millisecond: two adds in one millisecond are one",
        "wall-clock-tag", variant("orset", "timestamp-tags", TimestampTags), correct="tombstone",
        involves=frozenset({"add"})),
    Bug("orset-remove-kills-unobserved", "orset", "a remove learnt by a join also kills adds the remover never saw",
        "tie-break", variant("orset", "remove-kills-unobserved", _plain(RemoveKillsUnobserved)), correct="delta-state",
        involves=frozenset({"remove"})),
    Bug("orset-tombstones-replaced", "orset", "a merge replaces an element's tombstones instead of uniting them",
        "resurrection", variant("orset", "tombstones-replaced", _plain(TombstonesReplaced)), correct="tombstone"),
    Bug("orset-remove-not-in-delta", "orset", "a remove is applied locally but never put in the pending delta",
        "lost-update", variant("orset", "remove-not-in-delta", _plain(RemoveNotInDelta)), correct="delta-state",
        involves=frozenset({"remove"})),
    Bug("orset-no-dot-cloud", "orset", "the causal context keeps a version vector only, forgetting out-of-order dots",
        "causal-order", variant("orset", "no-dot-cloud", _plain(NoDotCloud)), correct="delta-state",
        errors=(AssertionError, DecodeError)),
    Bug("orset-re-add-keeps-old-dot", "orset", "re-adding a present element makes no fresh dot, so a concurrent remove kills it",
        "version-counter", variant("orset", "re-add-keeps-old-dot", _plain(ReAddKeepsOldDot)), correct="delta-state",
        involves=frozenset({"add"})),  # then a remove, or a peer's add in this replica's name (hostile), kills it
    Bug("orset-add-then-remove-sends-nothing", "orset",
        "an add and a remove between two broadcasts cancel out in the delta, so the remove never reaches a replica "
        "that got the add by a full sync", "lost-update",
        variant("orset", "add-then-remove-sends-nothing", _plain(AddThenRemoveSendsNothing)), correct="delta-state",
        involves=frozenset({"add", "remove"})),
    Bug("orset-early-tombstone-dropped", "orset", "a delta's tombstones for an element not seen yet are dropped",
        "causal-order", variant("orset", "early-tombstone-dropped", _plain(EarlyTombstoneDropped)), correct="tombstone",
        involves=frozenset({"remove"})),
    Bug("orset-believes-every-context", "orset",
        "a message's causal context is joined unchecked: a peer's lie about this replica's own dots poisons its adds",
        "believes-a-lie", variant("orset", "believes-every-context", _plain(BelievesEveryContext)), correct="delta-state",
        involves=frozenset({"hostile"})),
    Bug("orset-believes-every-tag", "orset",
        "a message's tags are merged unchecked: a peer's tag (r, 2^64 - 1) poisons replica r's adds",
        "believes-a-lie", variant("orset", "believes-every-tag", _plain(BelievesEveryTag)), correct="tombstone",
        involves=frozenset({"hostile"})),
    Bug("orset-counts-only-its-own-adds", "orset",
        "a new tag counts only the adds made here, not this replica's tags seen in messages: a tombstone for a tag "
        "not made yet kills the next add", "version-counter",
        variant("orset", "counts-only-its-own-adds", _plain(CountsOnlyItsOwnAdds)), correct="tombstone"),
]
