"""The straightforward OR-Set (add-wins), in the style of the upstream x0x code: tags and
tombstones per element.

* ``elements: element -> set of tags`` holds the tag of every add this replica has seen;
* ``tombstones: element -> set of tags`` holds every tag some remove has covered.

A tag is ``(replica, seq)``, with ``seq`` a per-replica counter starting at 1. ``remove(e)``
tombstones the tags of ``e`` that are live here (seen and not yet tombstoned). ``e`` is
present iff it has a tag that is not tombstoned. Merging is the union of both maps, tag by
tag, so it is commutative, associative and idempotent; the price is that tombstones are
never collected.

Deltas hold the same two maps, restricted to what the replica's own operations since the
last ``take_deltas`` added.

Peers that lie (issue 7). Before a message is merged (``admit``) a replica refuses it whole
with ``wire.OverLimit`` naming the limit (``implementations.limits``) if a tag of a replica
(this one included) is more than ``MAX_COUNTER_GAP`` beyond the greatest seen of it, or it
names more than ``MAX_CONTEXT_REPLICAS`` replicas or more than ``MAX_TOMBSTONE_TAGS`` tags in
all (the message alone, or the replica after the merge). A new tag is beyond every tag of
this replica seen, not only those it made: a tombstone for a tag it has not made yet would
otherwise kill its own next add of that element. As for the delta-state OR-Set, a lie within
the gap about another replica's future tags cannot be told from the truth.

Wire (``implementations.wire``): kinds ``orset-tombstone.state`` and ``orset-tombstone.delta``,
version 1, body ``[elements, tombstones]``, each ``[[element, [[replica, seq], ...]], ...]``
with elements in canonical order (integers, then strings, then bytes, each by value), tags
ascending and no element without tags. Decoding is pure and raises only ``DecodeError``;
merging a decoded message cannot fail.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from implementations.limits import MAX_CONTEXT_REPLICAS, MAX_COUNTER_GAP, MAX_TOMBSTONE_TAGS
from implementations.wire import DecodeError, OverLimit, decode, element_key, encode, expect_int, expect_list

STATE_KIND = "orset-tombstone.state"
DELTA_KIND = "orset-tombstone.delta"
VERSION = 1

Tag = tuple[int, int]
TagMap = dict[Hashable, set[Tag]]


def _encode_map(tags: TagMap) -> list[Any]:
    return [[e, [list(t) for t in sorted(tags[e])]] for e in sorted(tags, key=element_key) if tags[e]]


def _decode_map(raw: Any, where: str) -> TagMap:
    result: TagMap = {}
    previous = None
    count = 0
    for i, item in enumerate(expect_list(raw, where)):
        pair = expect_list(item, f"{where}[{i}]", length=2)
        element = pair[0]
        try:
            key = element_key(element)
        except (TypeError, ValueError) as error:
            raise DecodeError(f"{where}[{i}][0]: {error}") from None
        if previous is not None and key <= previous:
            raise DecodeError(f"{where}[{i}]: element {element!r:.40} is out of order (canonical order, no repeats)")
        previous = key
        raw_tags = expect_list(pair[1], f"{where}[{i}][1]")
        if not raw_tags:
            raise DecodeError(f"{where}[{i}]: element {element!r:.40} has no tags")
        count += len(raw_tags)
        if count > MAX_TOMBSTONE_TAGS:
            raise OverLimit("MAX_TOMBSTONE_TAGS", f"{where}: more than {MAX_TOMBSTONE_TAGS:,} tags")
        tags: list[Tag] = []
        for j, raw_tag in enumerate(raw_tags):
            t = expect_list(raw_tag, f"{where}[{i}][1][{j}]", length=2)
            tag = (expect_int(t[0], f"{where}[{i}][1][{j}][0]"), expect_int(t[1], f"{where}[{i}][1][{j}][1]", 1))
            if tags and tag <= tags[-1]:
                raise DecodeError(f"{where}[{i}][1][{j}]: tag {tag} is out of order (ascending, no repeats)")
            tags.append(tag)
        result[element] = set(tags)
    return result


def _decode(data: bytes, kind: str) -> tuple[TagMap, TagMap]:
    body = expect_list(decode(data, kind, VERSION), f"{kind}: body", length=2)
    return _decode_map(body[0], f"{kind}: elements"), _decode_map(body[1], f"{kind}: tombstones")


class TombstoneORSet:
    """One replica: per-element tags and tombstones, merged by union."""

    def __init__(self, replica_id: int) -> None:
        self.replica_id = replica_id
        self.seq = 0
        self.elements: TagMap = {}
        self.tombstones: TagMap = {}
        self.highest: dict[int, int] = {}  # replica -> the greatest seq of its tags seen here
        self.tag_count = 0  # tags held, in elements and tombstones
        self._delta_elements: TagMap = {}
        self._delta_tombstones: TagMap = {}

    def new_tag(self) -> Tag:
        """A tag beyond every tag of this replica seen (made here, or claimed by a message)."""
        self.seq = max(self.seq, self.highest.get(self.replica_id, 0)) + 1
        return (self.replica_id, self.seq)

    def add(self, element: Hashable) -> None:
        element_key(element)
        tag = self.new_tag()
        self.highest[self.replica_id] = self.seq
        self.tag_count += 1
        self.elements.setdefault(element, set()).add(tag)
        self._delta_elements.setdefault(element, set()).add(tag)

    def live_tags(self, element: Hashable) -> set[Tag]:
        return self.elements.get(element, set()) - self.tombstones.get(element, set())

    def remove(self, element: Hashable) -> None:
        live = self.live_tags(element)
        if not live:
            return
        self.tag_count += len(live)
        self.tombstones.setdefault(element, set()).update(live)
        self._delta_tombstones.setdefault(element, set()).update(live)

    def value(self) -> frozenset:
        return frozenset(e for e in self.elements if self.live_tags(e))

    def state(self) -> bytes:
        return encode(STATE_KIND, VERSION, [_encode_map(self.elements), _encode_map(self.tombstones)])

    def admit(self, elements: TagMap, tombstones: TagMap, what: str = "a message") -> None:
        """Refuse (``OverLimit``) decoded maps this replica must not merge (see the module
        docstring). Changes nothing; the work is the size of the maps."""
        claimed: dict[int, int] = {}
        new = 0
        for target, source in ((self.elements, elements), (self.tombstones, tombstones)):
            for element, tags in source.items():
                held = target.get(element, ())
                for replica, seq in tags:
                    claimed[replica] = max(claimed.get(replica, 0), seq)
                    new += (replica, seq) not in held
        for replica, seq in claimed.items():
            known = self.highest.get(replica, 0)
            if seq > known + MAX_COUNTER_GAP:
                raise OverLimit("MAX_COUNTER_GAP", f"{what} names tag ({replica}, {seq}); the greatest seen here is {known}")
        replicas = len(self.highest) + sum(1 for replica in claimed if replica not in self.highest)
        if replicas > MAX_CONTEXT_REPLICAS:
            raise OverLimit("MAX_CONTEXT_REPLICAS", f"{what} would make this replica hold tags of {replicas:,} replicas")
        if self.tag_count + new > MAX_TOMBSTONE_TAGS:
            raise OverLimit("MAX_TOMBSTONE_TAGS", f"{what} would make this replica hold {self.tag_count + new:,} tags")

    def merge_maps(self, elements: TagMap, tombstones: TagMap) -> None:
        """Merge admitted maps (cannot fail)."""
        for target, source in ((self.elements, elements), (self.tombstones, tombstones)):
            for element, tags in source.items():
                held = target.setdefault(element, set())
                before = len(held)
                held.update(tags)
                self.tag_count += len(held) - before
                for replica, seq in tags:
                    if seq > self.highest.get(replica, 0):
                        self.highest[replica] = seq

    def merge(self, state: bytes) -> None:
        maps = _decode(state, STATE_KIND)
        self.admit(*maps, what=STATE_KIND)
        self.merge_maps(*maps)

    def take_deltas(self) -> list[bytes]:
        if not self._delta_elements and not self._delta_tombstones:
            return []
        body = [_encode_map(self._delta_elements), _encode_map(self._delta_tombstones)]
        self._delta_elements, self._delta_tombstones = {}, {}
        return [encode(DELTA_KIND, VERSION, body)]

    def apply_delta(self, delta: bytes) -> None:
        maps = _decode(delta, DELTA_KIND)
        self.admit(*maps, what=DELTA_KIND)
        self.merge_maps(*maps)

    def __repr__(self) -> str:
        return f"TombstoneORSet(replica_id={self.replica_id}, elements={self.elements}, tombstones={self.tombstones})"
