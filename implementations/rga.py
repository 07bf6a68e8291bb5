"""An RGA sequence replica that stays small and logarithmic at millions of characters.

``RGA(replica_id)`` is one replica of a replicated growable array. Every element has an id
``(counter, replica)``; a local insert gets a counter one greater than any counter this
replica has seen, so a child's counter always exceeds its parent's. The document is the
depth-first walk of the RGA tree (children greatest id first), deleted elements included
as tombstones.

How it is stored (the way Yrs and diamond-types merge items):

* **Runs.** Consecutive elements ``(c, r), (c + 1, r), ...`` where each is the parent of the
  next and they are adjacent in the document (a typed word) are one ``_Run``: the first id,
  its parent, the items (a ``str`` when every item is one character, else a list), and the
  tombstones (``flags``: ``None`` when the run is all visible or all deleted, else one byte
  per element). A run holds at most ``RUN_MAX`` elements, so splitting one costs little.
  Deleting never splits a run; inserting inside one does (the tail becomes a new run).
* **Document order.** Runs sit in the leaves of a B-tree (``_Leaf``, ``_Node``) whose inner
  nodes keep, per child, its visible count (a visible index is found in O(log n); a leaf or
  node *is* the array of those counts, one object fewer on the way down) and the least id
  of its subtree as an int ``counter << 64 | replica``: a remote insert goes right after its
  parent, past the greater siblings' subtrees, and every id in those subtrees is
  greater than the new one while the first element after them is smaller, so the place is
  "the first run after the parent whose first id is smaller", found through the subtree
  minima in O(log n) however many siblings there are. Nothing is renumbered when a node
  splits, and a split reads none of the runs: the two halves' least ids stay unknown until
  such an insert asks (``_least_of``). A cursor (the leaf used last and the visible elements
  before it) and a hint (the run used last in it) make typing and deleting in one place O(1)
  besides the counts.
* **Ids.** Per replica, a B+ tree (``_SortedMap``) from each run's first counter to the run:
  an element is found by its replica and the greatest run start at or below its counter.
* **Pending operations.** Inserts whose parent has not arrived wait, keyed by parent, with
  the ranges of waiting ids per replica (so a redelivered one is not kept twice); deletes of
  ids not known yet are kept as ranges per replica. Both are part of the full state.
* **The delta queue** is compacted as it grows: a typed run is one pending run, and deletes
  of neighbouring ids are one range. It is kept as columns of integers (``_Outbox``), so an
  edit adds no Python object to it.

Wire (MessagePack arrays, ``implementations/wire.py``), version 2. Runs travel as five
columns: counter steps (each run's first counter minus the previous run's, the first from
0, taken modulo 2**64 so that every step fits a MessagePack integer: a step back below
-2**63 travels as the step forward that lands on the same counter), replicas, parent gaps
(first counter minus the parent's counter; -1 for the head, with parent replica 0), parent
replicas, and contents (a ``str``, one element per character, or a list of items). Deletes
travel as ranges ``[counters, replicas, lengths]``. A delta (``rga.delta``) is ``[runs,
deletes]``: the local edits since the last ``take_deltas``. The full state (``rga.state``)
is ``[runs, alive lengths, waiting runs, early deletes]``: the document's runs in order
(maximal: equal documents encode to equal bytes), the lengths of its alternately visible
and deleted stretches (visible first), then the inserts waiting for their parent and the
deletes waiting for their element. Decoding (``decode_delta``, ``decode_state``) is pure,
checks the whole message (counters in range, a parent's counter below its child's, no id
twice, a state's runs in exactly their tree's document order) and raises only
``DecodeError``; applying a decoded message cannot fail.

Limits (``implementations/limits.py``): counters are unsigned 64-bit. A replica that has
seen the counter ``RGA_MAX_COUNTER`` (``U64_MAX``) can make no further insert
(``CounterSpaceExhausted``, raised before anything changes); everything else (deletes,
merges, deltas, ``state()``) keeps working. Why there is no lower ceiling: see there.
Items are strings, bytes or integers that fit MessagePack (``[-2**63, 2**64)``).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Hashable, Iterable, Iterator
from itertools import accumulate, compress, groupby, pairwise, repeat

import attrs

from implementations.limits import RGA_MAX_COUNTER, U64_MAX
from implementations.wire import DecodeError, decode, encode, expect_list

__all__ = [
    "LEAF_MAX",
    "NODE_MAX",
    "RGA",
    "RUN_MAX",
    "CounterSpaceExhausted",
    "Delta",
    "State",
    "decode_delta",
    "decode_state",
    "encode_delta",
]

#: An element's id: ``(counter, replica)``; ids compare as tuples.
Id = tuple[int, int]
#: A run as it travels: first counter, replica, parent counter (0: the head), parent
#: replica, and its items (a ``str``, one per character, or a list).
RunTuple = tuple[int, int, int, int, "str | list"]

#: Most elements in one run (so a split copies little and a run's counts are small ints).
RUN_MAX = 256
#: Most runs in one leaf of the document tree, and most children of an inner node.
LEAF_MAX = 32
NODE_MAX = 32
#: Most keys in one page of a ``_SortedMap``.
PAGE_MAX = 64
STATE_KIND, DELTA_KIND, VERSION = "rga.state", "rga.delta", 2
_ITEM_TYPES = (str, bytes, int)
_INT_ITEMS = (-(2**63), U64_MAX)


class CounterSpaceExhausted(Exception):
    """A local insert needs a counter above ``U64_MAX``: this replica has seen the greatest
    counter the wire can carry. Nothing changed; deletes and replication still work."""


def _check_item(item: object) -> None:
    kind = type(item)
    if kind not in _ITEM_TYPES:
        raise TypeError(f"an item must be str, bytes or int, got {kind.__name__}")
    if kind is int and not _INT_ITEMS[0] <= item <= _INT_ITEMS[1]:
        raise ValueError(f"an integer item must fit in 64 bits, got {item}")


# ----- a sorted map: ids to runs, and sets of id ranges ------------------------------------


class _Page:
    """A page of a ``_SortedMap``: a leaf holds keys and values; an inner page holds the least
    key of each child and the children. Keys are an unsigned 64-bit array: one block of memory
    to search, not an object per key."""

    __slots__ = ("items", "keys", "leaf")

    def __init__(self, keys: array, items: list, leaf: bool) -> None:
        self.keys, self.items, self.leaf = keys, items, leaf


class _SortedMap:
    """A B+ tree from int keys to values: floor, ceiling, insert and delete in O(log n).

    An inner page's keys are exactly its children's least keys. Pages that empty are
    removed; pages that shrink are not merged (the height stays that of the largest size).
    """

    __slots__ = ("root",)

    def __init__(self) -> None:
        self.root = _Page(array("Q"), [], True)

    def __bool__(self) -> bool:
        return bool(self.root.keys)

    def floor_value(self, key: int):
        """The value of the greatest key <= ``key``, or None."""
        page = self.root
        while not page.leaf:
            i = bisect_right(page.keys, key) - 1
            if i < 0:
                return None
            page = page.items[i]
        i = bisect_right(page.keys, key) - 1
        return page.items[i] if i >= 0 else None

    def floor(self, key: int) -> tuple[int, object] | None:
        """The entry with the greatest key <= ``key``, or None."""
        page = self.root
        while not page.leaf:
            i = bisect_right(page.keys, key) - 1
            if i < 0:
                return None
            page = page.items[i]
        i = bisect_right(page.keys, key) - 1
        return (page.keys[i], page.items[i]) if i >= 0 else None

    def get(self, key: int):
        page = self.root
        while not page.leaf:
            i = bisect_right(page.keys, key) - 1
            if i < 0:
                return None
            page = page.items[i]
        i = bisect_left(page.keys, key)
        return page.items[i] if i < len(page.keys) and page.keys[i] == key else None

    def _descend(self, key: int) -> tuple[list[tuple[_Page, int]], _Page]:
        path, page = [], self.root
        while not page.leaf:
            i = bisect_right(page.keys, key) - 1
            if i < 0:
                i = 0
            path.append((page, i))
            page = page.items[i]
        return path, page

    def ceiling(self, key: int) -> tuple[int, object] | None:
        """The entry with the least key >= ``key``, or None."""
        path, page = self._descend(key)
        j = bisect_left(page.keys, key)
        if j < len(page.keys):
            return page.keys[j], page.items[j]
        for parent, i in reversed(path):
            if i + 1 < len(parent.items):
                page = parent.items[i + 1]
                while not page.leaf:
                    page = page.items[0]
                return page.keys[0], page.items[0]
        return None

    def insert(self, key: int, value: object) -> None:
        """Add ``key`` (not present yet)."""
        path, page = self._descend(key)
        j = bisect_left(page.keys, key)
        page.keys.insert(j, key)
        page.items.insert(j, value)
        if j == 0:  # a new least key of this page: so of every ancestor reached through child 0
            for parent, i in reversed(path):
                parent.keys[i] = key
                if i:
                    break
        while len(page.keys) > PAGE_MAX:
            half = len(page.keys) >> 1
            right = _Page(page.keys[half:], page.items[half:], page.leaf)
            del page.keys[half:], page.items[half:]
            if not path:
                self.root = _Page(array("Q", (page.keys[0], right.keys[0])), [page, right], False)
                return
            parent, i = path.pop()
            parent.keys.insert(i + 1, right.keys[0])
            parent.items.insert(i + 1, right)
            page = parent

    def set(self, key: int, value: object) -> None:
        """Replace the value of ``key`` (present)."""
        _, page = self._descend(key)
        page.items[bisect_left(page.keys, key)] = value

    def delete(self, key: int) -> None:
        """Remove ``key`` (present)."""
        path, page = self._descend(key)
        j = bisect_left(page.keys, key)
        del page.keys[j], page.items[j]
        first = j == 0
        while path:
            parent, i = path.pop()
            if not page.keys:
                del parent.keys[i], parent.items[i]
            elif first:
                parent.keys[i] = page.keys[0]
            else:
                break
            first = i == 0
            page = parent
        root = self.root
        while not root.leaf and len(root.items) == 1:
            root = root.items[0]
        self.root = root if root.leaf or root.items else _Page(array("Q"), [], True)

    def items(self) -> Iterator[tuple[int, object]]:
        stack = [self.root]
        while stack:
            page = stack.pop()
            if page.leaf:
                yield from zip(page.keys, page.items, strict=True)
            else:
                stack.extend(reversed(page.items))


def _ranges_add(ranges: _SortedMap, start: int, end: int) -> list[tuple[int, int]]:
    """Add ``[start, end)`` to disjoint ranges (start -> end); the parts that were not in yet."""
    new: list[tuple[int, int]] = []
    cursor, merged_start, merged_end = start, start, end
    hit = ranges.floor(start)
    if hit is not None and hit[1] >= start:
        if hit[1] >= end:
            return new
        merged_start, cursor = hit[0], hit[1]
        ranges.delete(hit[0])
    while True:
        hit = ranges.ceiling(cursor)
        if hit is None or hit[0] > end:
            break
        if hit[0] > cursor:
            new.append((cursor, hit[0]))
        cursor = max(cursor, hit[1])
        merged_end = max(merged_end, hit[1])
        ranges.delete(hit[0])
    if cursor < end:
        new.append((cursor, end))
    ranges.insert(merged_start, merged_end)
    return new


def _ranges_remove(ranges: _SortedMap, start: int, end: int) -> list[tuple[int, int]]:
    """Remove ``[start, end)`` from disjoint ranges; the parts that were in them."""
    removed: list[tuple[int, int]] = []
    hit = ranges.floor(start)
    if hit is not None and hit[1] > start:
        low, high = hit
        removed.append((start, min(high, end)))
        if low < start:
            ranges.set(low, start)
        else:
            ranges.delete(low)
        if high > end:
            ranges.insert(end, high)
            return removed
    while True:
        hit = ranges.ceiling(start)
        if hit is None or hit[0] >= end:
            return removed
        low, high = hit
        removed.append((low, min(high, end)))
        ranges.delete(low)
        if high > end:
            ranges.insert(end, high)
            return removed


# ----- the wire: pure decoding --------------------------------------------------------


def _elements(runs: Iterable[RunTuple]) -> list[tuple[Id, Id | None, Hashable]]:
    out = []
    for counter, replica, parent_counter, parent_replica, content in runs:
        parent = (parent_counter, parent_replica) if parent_counter else None
        for offset, item in enumerate(content):
            out.append(((counter + offset, replica), parent, item))
            parent = (counter + offset, replica)
    return out


@attrs.frozen
class Delta:
    """A decoded, checked delta: runs of inserts and ranges ``(counter, replica, length)``
    of deletes. ``inserts`` lists them element by element (for small deltas)."""

    runs: list[RunTuple]
    deletes: list[tuple[int, int, int]]
    max_counter: int

    @property
    def inserts(self) -> list[tuple[Id, Id | None, Hashable]]:
        return _elements(self.runs)


@attrs.frozen
class State:
    """A decoded, checked full state.

    ``runs`` are the document in order, ``alive`` the lengths of its alternately visible and
    deleted stretches (visible first); ``waiting_runs`` are inserts whose parent the sender
    had not seen; ``deletes`` are ranges of deleted ids it had not seen. ``elements`` and
    ``waiting`` list the inserts element by element (for small states).
    """

    runs: list[RunTuple]
    alive: list[int]
    waiting_runs: list[RunTuple]
    deletes: list[tuple[int, int, int]]
    max_counter: int

    @property
    def elements(self) -> list[tuple[Id, Id | None, Hashable]]:
        return _elements(self.runs)

    @property
    def waiting(self) -> list[tuple[Id, Id | None, Hashable]]:
        return _elements(self.waiting_runs)


def _ints(value: object, where: str, low: int, length: int | None = None) -> list[int]:
    values = expect_list(value, where, length)
    if values and not set(map(type, values)) <= {int}:
        bad = next(v for v in values if type(v) is not int)
        raise DecodeError(f"{where}: expected int, got {type(bad).__name__} {bad!r:.60}")
    if values and (min(values) < low or max(values) > U64_MAX):
        bad = next(v for v in values if not low <= v <= U64_MAX)
        raise DecodeError(f"{where}: {bad} is outside [{low}, {U64_MAX}]")
    return values


def _decode_runs(body: object, where: str) -> list[RunTuple]:
    """Runs from their five columns (see the module docstring)."""
    columns = expect_list(body, where, 5)
    steps = _ints(columns[0], f"{where}[0] (counter steps)", -(2**63))
    size = len(steps)
    replicas = _ints(columns[1], f"{where}[1] (replicas)", 0, size)
    gaps = _ints(columns[2], f"{where}[2] (parent gaps)", -1, size)
    parent_replicas = _ints(columns[3], f"{where}[3] (parent replicas)", 0, size)
    contents = expect_list(columns[4], f"{where}[4] (contents)", size)
    runs = []
    for n, (counter, replica, gap, parent_replica, content) in enumerate(
        zip((total & U64_MAX for total in accumulate(steps)), replicas, gaps, parent_replicas, contents, strict=True)
    ):
        kind = type(content)
        if kind is list:
            if content and not set(map(type, content)) <= set(_ITEM_TYPES):
                bad = next(v for v in content if type(v) not in _ITEM_TYPES)
                raise DecodeError(f"{where}: run {n}: an item must be str, bytes or int, got {type(bad).__name__} {bad!r:.60}")
        elif kind is not str:
            raise DecodeError(f"{where}: run {n}: its content must be a str or a list of items, got {kind.__name__}")
        if not content:
            raise DecodeError(f"{where}: run {n}: a run holds at least one element")
        if not 1 <= counter <= U64_MAX - len(content) + 1:
            raise DecodeError(f"{where}: run {n}: its counters {counter}.. are outside [1, {U64_MAX}]")
        if gap == -1:
            if parent_replica != 0:
                raise DecodeError(f"{where}: run {n}: the head is parent replica 0, got {parent_replica}")
            parent_counter = 0
        elif 1 <= gap < counter:
            parent_counter = counter - gap
        else:
            raise DecodeError(
                f"{where}: run {n}: id ({counter}, {replica}) does not exceed its parent ({counter - gap}, {parent_replica})"
            )
        runs.append((counter, replica, parent_counter, parent_replica, content))
    return runs


def _decode_ranges(body: object, where: str) -> list[tuple[int, int, int]]:
    columns = expect_list(body, where, 3)
    counters = _ints(columns[0], f"{where}[0] (counters)", 1)
    replicas = _ints(columns[1], f"{where}[1] (replicas)", 0, len(counters))
    lengths = _ints(columns[2], f"{where}[2] (lengths)", 1, len(counters))
    for n, (counter, length) in enumerate(zip(counters, lengths, strict=True)):
        if counter > U64_MAX - length + 1:
            raise DecodeError(f"{where}: range {n}: counters {counter}.. (length {length}) go past {U64_MAX}")
    return list(zip(counters, replicas, lengths, strict=True))


def _check_distinct(runs: list[RunTuple], where: str) -> None:
    spans = sorted((replica, counter, counter + len(content)) for counter, replica, _, _, content in runs)
    for (replica, _, end), (next_replica, next_start, _) in pairwise(spans):
        if replica == next_replica and next_start < end:
            raise DecodeError(f"{where}: the id ({next_start}, {replica}) appears twice")


def _greatest_counter(run_groups: Iterable[list[RunTuple]], deletes: list[tuple[int, int, int]]) -> int:
    """The greatest counter a message mentions (a parent's counter is always below its child's)."""
    inserted = (counter + len(content) - 1 for runs in run_groups for counter, _, _, _, content in runs)
    deleted = (counter + length - 1 for counter, _, length in deletes)
    return max(0, max(inserted, default=0), max(deleted, default=0))


def decode_delta(data: bytes) -> Delta:
    """The checked content of an ``rga.delta`` message, or ``DecodeError``. Changes nothing."""
    body = decode(data, DELTA_KIND, VERSION)
    expect_list(body, f"{DELTA_KIND}: body", 2)
    runs = _decode_runs(body[0], f"{DELTA_KIND}: inserts")
    deletes = _decode_ranges(body[1], f"{DELTA_KIND}: deletes")
    _check_distinct(runs, f"{DELTA_KIND}: inserts")
    return Delta(runs, deletes, _greatest_counter([runs], deletes))


def _check_document_order(runs: list[RunTuple], where: str) -> None:
    """The runs must be exactly the depth-first walk of their tree, greatest sibling first.

    A run's parent must be the head or an element on the path from the head to the element
    before it, and the run must be smaller than the parent's previous child. The path is
    kept as runs ``[counter, replica, length]``: the path goes through each one's first
    ``length`` elements. A parent inside a run has an implicit first child, the next element
    of that run, which comes earlier in the document.
    """
    path: list[list[int]] = []
    last_child: dict[Id | None, Id] = {}
    for n, (counter, replica, parent_counter, parent_replica, content) in enumerate(runs):
        element = (counter, replica)
        parent = None
        previous = last_child.get(None)
        if parent_counter == 0:
            path.clear()
        else:
            while path:
                top = path[-1]
                if top[1] == parent_replica and top[0] <= parent_counter < top[0] + top[2]:
                    break
                path.pop()
            else:
                raise DecodeError(
                    f"{where}: run {n} {element}: its parent {(parent_counter, parent_replica)} is not an enclosing "
                    "element before it"
                )
            parent = (parent_counter, parent_replica)
            previous = last_child.get(parent)
            if previous is None and parent_counter < top[0] + top[3] - 1:
                previous = (parent_counter + 1, parent_replica)
            top[2] = parent_counter - top[0] + 1
        if previous is not None and previous < element:
            raise DecodeError(f"{where}: run {n} {element} comes after its smaller sibling {previous}")
        last_child[parent] = element
        path.append([counter, replica, len(content), len(content)])


def decode_state(data: bytes) -> State:
    """The checked content of an ``rga.state`` message, or ``DecodeError``. Changes nothing."""
    body = decode(data, STATE_KIND, VERSION)
    expect_list(body, f"{STATE_KIND}: body", 4)
    runs = _decode_runs(body[0], f"{STATE_KIND}: runs")
    alive = _ints(body[1], f"{STATE_KIND}: alive lengths", 0)
    total = sum(len(run[4]) for run in runs)
    if sum(alive) != total:
        raise DecodeError(f"{STATE_KIND}: alive lengths: they add up to {sum(alive)}, the runs hold {total} elements")
    if 0 in alive[1:] or alive == [0]:
        raise DecodeError(f"{STATE_KIND}: alive lengths: only the first (visible) stretch may be empty")
    waiting = _decode_runs(body[2], f"{STATE_KIND}: waiting runs")
    deletes = _decode_ranges(body[3], f"{STATE_KIND}: early deletes")
    _check_distinct(runs + waiting, STATE_KIND)
    _check_document_order(runs, f"{STATE_KIND}: runs")
    return State(runs, alive, waiting, deletes, _greatest_counter([runs, waiting], deletes))


# ----- the wire: encoding ---------------------------------------------------------------


def _content(parts: list) -> str | list:
    """One run's items in canonical form: a str when each is one character, else a list."""
    if all(type(part) is str for part in parts):
        return "".join(parts)
    items = [item for part in parts for item in part]
    if all(type(item) is str and len(item) == 1 for item in items):
        return "".join(items)
    return items


def _run_columns(runs: Iterable[RunTuple]) -> list[list]:
    """The five columns of ``runs``, each continuation of the run before it merged into it."""
    steps: list[int] = []
    replicas: list[int] = []
    gaps: list[int] = []
    parent_replicas: list[int] = []
    contents: list = []
    previous = 0
    end, last_replica, parts = -1, -1, None
    for counter, replica, parent_counter, parent_replica, items in runs:
        if counter == end and replica == last_replica and parent_counter == end - 1 and parent_replica == replica:
            parts.append(items)
            end += len(items)
            continue
        if parts is not None:
            contents.append(_content(parts))
        step = counter - previous
        steps.append(step if step >= -(2**63) else step + 2**64)  # what MessagePack carries; the same modulo 2**64
        previous = counter
        replicas.append(replica)
        gaps.append(counter - parent_counter if parent_counter else -1)
        parent_replicas.append(parent_replica if parent_counter else 0)
        parts, end, last_replica = [items], counter + len(items), replica
    if parts is not None:
        contents.append(_content(parts))
    return [steps, replicas, gaps, parent_replicas, contents]


def _range_columns(ranges: Iterable[tuple[int, int, int]]) -> list[list[int]]:
    """Ranges ``(counter, replica, length)`` sorted by replica and counter, overlapping and
    touching ones merged."""
    merged: list[list[int]] = []
    for counter, replica, length in sorted(ranges, key=lambda r: (r[1], r[0])):
        if merged and merged[-1][1] == replica and counter <= merged[-1][0] + merged[-1][2]:
            last = merged[-1]
            last[2] = max(last[2], counter + length - last[0])
        else:
            merged.append([counter, replica, length])
    return [[r[0] for r in merged], [r[1] for r in merged], [r[2] for r in merged]]


def encode_delta(inserts: Iterable[tuple[Id, Id | None, Hashable]], deletes: Iterable[Id]) -> bytes:
    """An ``rga.delta`` carrying these inserts ``(id, parent, item)`` and deletes (ids), as
    any replica would send them. For tests and for machines that speak the wire."""
    runs: list[list] = []
    for (counter, replica), parent, item in inserts:
        _check_item(item)
        last = runs[-1] if runs else None
        if last and last[1] == replica and counter == last[0] + len(last[4]) and parent == (counter - 1, replica):
            last[4].append(item)
        else:
            runs.append([counter, replica, parent[0] if parent else 0, parent[1] if parent else 0, [item]])
    body = [_run_columns(runs), _range_columns((c, r, 1) for c, r in deletes)]
    return encode(DELTA_KIND, VERSION, body)


# ----- the document tree ----------------------------------------------------------------


class _Run:
    """Elements ``(counter, replica), (counter + 1, replica), ...``, each the parent of the
    next and adjacent in the document; the first one's parent is ``(parent_counter,
    parent_replica)`` (counter 0: the head). ``after`` is the run cut from its end by an
    insert inside it, whose ids follow on: the ids are registered by the first run of such a
    chain only (an insert at a random place then writes no cold page of the id index)."""

    __slots__ = ("after", "counter", "flags", "items", "leaf", "parent_counter", "parent_replica", "replica", "visible")

    def __init__(self, counter, replica, parent_counter, parent_replica, items, visible, flags, leaf) -> None:
        self.counter = counter
        self.replica = replica
        self.parent_counter = parent_counter
        self.parent_replica = parent_replica
        self.items = items  # str (one element per character) or list
        self.visible = visible  # how many of its elements are visible
        self.flags = flags  # None: all visible or all deleted (by ``visible``); else one 0/1 byte each
        self.leaf = leaf
        self.after = None


class _Leaf(array):
    """Runs in document order. The leaf itself is the array of their visible counts (typecode
    ``H``): finding a visible index scans one block of memory and touches one run. Being
    that array rather than holding one saves an object, so a cache miss, on every edit's way
    down: at a million characters a random edit's leaf is cold memory. Leaves compare and
    hash as the objects they are (an array would compare by value)."""

    __slots__ = ("parent", "runs", "slot", "visible")
    __eq__, __hash__ = object.__eq__, object.__hash__

    def __new__(cls, runs: list[_Run], counts: Iterable[int] | None = None) -> _Leaf:
        self = super().__new__(cls, "H", [run.visible for run in runs] if counts is None else counts)
        self.runs, self.parent, self.slot = runs, None, 0
        self.visible = sum(self)
        for run in runs:
            run.leaf = self
        return self


class _Node(array):
    """An inner node: itself the array of its children's visible counts (typecode ``q``: one
    block of memory to scan, and no separate object, see ``_Leaf``), with the least id (as an
    int) of each child's subtree beside, or None where it is not known yet (``_least_of``).
    Its own total is not kept (``_visible`` sums it when a split needs it): one number fewer
    to rewrite per level on every edit."""

    __slots__ = ("children", "mins", "parent", "slot")
    __eq__, __hash__ = object.__eq__, object.__hash__

    def __new__(cls, children: list, counts: Iterable[int], mins: list[int | None], parent: _Node | None,
                slot: int) -> _Node:
        self = super().__new__(cls, "q", counts)
        self.children, self.mins, self.parent, self.slot = children, mins, parent, slot
        for number, child in enumerate(children):
            child.parent, child.slot = self, number
        return self


def _visible(child: _Leaf | _Node) -> int:
    """The visible elements under a leaf or node."""
    return child.visible if type(child) is _Leaf else sum(child)


def _least(runs: list[_Run]) -> int:
    return min(run.counter << 64 | run.replica for run in runs)


def _least_of(node: _Node, slot: int) -> int:
    """The least id (as an int) in the subtree of child ``slot`` of ``node``, whose entry in
    ``node.mins`` is None: found now, and kept. A split leaves its two halves' least ids
    unknown: finding them reads every run moved, cold memory at a million characters, and only
    a remote insert that must pass greater siblings asks for them."""
    child = node.children[slot]
    if type(child) is _Leaf:
        least = _least(child.runs)
    else:
        mins = child.mins
        least = min(mins) if None not in mins else min(known or _least_of(child, number) for number, known in enumerate(mins))
    node.mins[slot] = least
    return least


def _nth_visible(flags: bytearray, k: int) -> int:
    """The position of the ``k``-th visible element (from 0) of a partly deleted run."""
    if k < 16:
        position = flags.find(1)
        for _ in range(k):
            position = flags.find(1, position + 1)
        return position
    low, high, need = 0, len(flags), k + 1
    while high - low > 1:
        middle = (low + high) >> 1
        count = flags.count(1, low, middle)
        if count >= need:
            high = middle
        else:
            need -= count
            low = middle
    return low


def _is_char(item: object) -> bool:
    return type(item) is str and len(item) == 1


class _Outbox:
    """The local edits not taken yet, as columns: inserts as pending runs (first counter,
    parent, items: a typed run stays one) and deletes as ranges of ids (a backspaced word
    stays one). Columns of integers rather than a list per entry: the queue of a replica that
    is not asked for its deltas grows by no Python object per edit, so by nothing the garbage
    collector walks."""

    __slots__ = ("counters", "deleted", "deleted_lengths", "deleted_replicas", "items", "parent_counters",
                 "parent_replicas")

    def __init__(self) -> None:
        self.counters, self.parent_counters, self.parent_replicas = array("Q"), array("Q"), array("Q")
        self.items: list = []  # each pending run's items: a str (one per character) or a list
        self.deleted, self.deleted_replicas, self.deleted_lengths = array("Q"), array("Q"), array("Q")


# ----- the replica --------------------------------------------------------------------


class RGA:
    """One replica of an RGA sequence. See the module docstring."""

    def __init__(self, replica_id: int) -> None:
        if type(replica_id) is not int or not 0 <= replica_id <= U64_MAX:
            raise ValueError(f"a replica id is an int in [0, 2**64), got {replica_id!r}")
        self.replica_id = replica_id
        self._root: _Leaf | _Node = _Leaf([])
        self._length = 0  # visible elements
        self._max_counter = 0
        self._ids: dict[int, _SortedMap] = {}  # replica -> first counter of each run -> run
        self._waiting: dict[int, _SortedMap] = {}  # parent replica -> parent counter -> waiting runs
        self._waiting_ids: dict[int, _SortedMap] = {}  # replica -> ranges of waiting ids
        self._early: dict[int, _SortedMap] = {}  # replica -> ranges of deleted ids not known yet
        self._out = _Outbox()  # local edits not taken yet
        # The leaf used last and the visible elements before it; the run used last in that leaf
        # and the visible elements before it there. Remote edits and edits by id reset both.
        self._cursor: tuple[_Leaf, int] | None = None
        self._hint: tuple[_Leaf, int, int] | None = None

    # ----- reading ----------------------------------------------------------------

    def __len__(self) -> int:
        return self._length

    def _leaves(self) -> Iterator[_Leaf]:
        stack = [self._root]
        while stack:
            node = stack.pop()
            if type(node) is _Leaf:
                yield node
            else:
                stack.extend(reversed(node.children))

    def _runs(self) -> Iterator[_Run]:
        for leaf in self._leaves():
            yield from leaf.runs

    def value(self) -> list:
        """The visible items, in order."""
        out: list = []
        for run in self._runs():
            if run.flags is not None:
                out.extend(compress(run.items, run.flags))
            elif run.visible:
                out.extend(run.items)
        return out

    def ids(self) -> list[Id]:
        """The ids of the visible elements, in order."""
        out: list[Id] = []
        for run in self._runs():
            if run.visible:
                elements = ((run.counter + offset, run.replica) for offset in range(len(run.items)))
                out.extend(elements if run.flags is None else compress(elements, run.flags))
        return out

    def __iter__(self) -> Iterator:
        return iter(self.value())

    def _run_of(self, counter: int, replica: int) -> _Run | None:
        """The run holding element ``(counter, replica)``, if it is in the document."""
        index = self._ids.get(replica)
        if index is None:
            return None
        run = index.floor_value(counter)
        while run is not None and counter >= run.counter + len(run.items):
            run = run.after
        return run

    def _known(self, element: Id) -> tuple[_Run, int]:
        run = self._run_of(*element) if type(element) is tuple and len(element) == 2 else None
        if run is None:
            raise KeyError(f"{element}: no such element here")
        return run, element[0] - run.counter

    def id_at(self, index: int) -> Id:
        """The id of the visible element at ``index``."""
        if not 0 <= index < len(self):
            raise IndexError(f"no element at {index} in a sequence of {len(self)}")
        leaf, i, offset = self._locate(index)
        run = leaf.runs[i]
        return (run.counter + offset, run.replica)

    def index_of(self, element: Id) -> int | None:
        """The visible index of ``element``, or None if it is deleted or not known here."""
        run = self._run_of(*element)
        if run is None:
            return None
        offset = element[0] - run.counter
        if not (run.flags[offset] if run.flags is not None else run.visible):
            return None
        before = offset if run.flags is None else run.flags.count(1, 0, offset)
        leaf = run.leaf
        for other in leaf.runs:
            if other is run:
                break
            before += other.visible
        child, node = leaf, leaf.parent
        while node is not None:
            before += sum(node[: child.slot])
            child, node = node, node.parent
        return before

    def item_of(self, element: Id) -> Hashable:
        """The item of a known element (deleted or not); KeyError if it is not known here."""
        run, offset = self._known(element)
        return run.items[offset]

    def knows(self, element: Id) -> bool:
        """Whether ``element`` is in this replica's document (visible or deleted)."""
        return self._run_of(*element) is not None

    # ----- finding a visible index --------------------------------------------------

    def _locate(self, index: int) -> tuple[_Leaf, int, int]:
        """The leaf, run number and element offset of visible element ``index``."""
        cursor = self._cursor
        if cursor is not None and cursor[1] <= index < cursor[1] + cursor[0].visible:
            leaf, start = cursor
        else:
            node, k = self._root, index
            while type(node) is _Node:
                slot = 0
                for count in node:
                    if k < count:
                        break
                    k -= count
                    slot += 1
                node = node.children[slot]
            leaf, start = node, index - k
            self._cursor = (leaf, start)
        k = index - start
        counts = leaf
        hint = self._hint
        if hint is not None and hint[0] is leaf:
            _, i, before = hint
            if k >= before:
                visible = counts[i]
                while k >= before + visible:
                    before += visible
                    i += 1
                    visible = counts[i]
            else:
                while k < before:
                    i -= 1
                    before -= counts[i]
        else:
            i = before = 0
            visible = counts[0]
            while k >= before + visible:
                before += visible
                i += 1
                visible = counts[i]
        self._hint = (leaf, i, before)
        flags = leaf.runs[i].flags
        return leaf, i, (k - before if flags is None else _nth_visible(flags, k - before))

    def _leftmost(self) -> _Leaf:
        node = self._root
        while type(node) is _Node:
            node = node.children[0]
        return node

    def _rightmost(self) -> _Leaf:
        node = self._root
        while type(node) is _Node:
            node = node.children[-1]
        return node

    def _following_run(self, leaf: _Leaf) -> _Run | None:
        """The first run of the leaf after ``leaf``, or None at the end of the document."""
        child, node = leaf, leaf.parent
        while node is not None:
            if child.slot + 1 < len(node.children):
                sub = node.children[child.slot + 1]
                while type(sub) is _Node:
                    sub = sub.children[0]
                return sub.runs[0]
            child, node = node, node.parent
        return None

    # ----- changing the tree ----------------------------------------------------------

    def _bump(self, leaf: _Leaf, delta: int) -> None:
        """The visible count of ``leaf``, its ancestors and the document changes by ``delta``."""
        self._length += delta
        leaf.visible += delta
        child, node = leaf, leaf.parent
        while node is not None:
            node[child.slot] += delta
            child, node = node, node.parent

    def _register(self, run: _Run) -> None:
        index = self._ids.get(run.replica)
        if index is None:
            index = self._ids[run.replica] = _SortedMap()
        index.insert(run.counter, run)

    def _split_run(self, leaf: _Leaf, i: int, at: int) -> _Run:
        """Cut run ``i`` of ``leaf`` before its element ``at``; the tail becomes run ``i + 1``."""
        run = leaf.runs[i]
        items = run.items
        tail_items = items[at:]
        run.items = items[:at]
        flags = run.flags
        if flags is None:
            tail_visible = len(tail_items) if run.visible else 0
            run.visible = at if run.visible else 0
            tail_flags = None
        else:
            head_flags, tail_flags = flags[:at], flags[at:]
            head_visible = head_flags.count(1)
            tail_visible = run.visible - head_visible
            run.visible = head_visible
            run.flags = head_flags if 0 < head_visible < at else None
            if not 0 < tail_visible < len(tail_items):
                tail_flags = None
        counter = run.counter + at
        tail = _Run(counter, run.replica, counter - 1, run.replica, tail_items, tail_visible, tail_flags, leaf)
        leaf.runs.insert(i + 1, tail)
        leaf[i] = run.visible
        leaf.insert(i + 1, tail_visible)
        tail.after, run.after = run.after, tail
        return tail

    def _split_leaf(self, leaf: _Leaf) -> None:
        """Move the second half of the runs of ``leaf`` to a new leaf beside it. Reads none of
        the runs (their counts are in ``leaf``, their least ids are left unknown) and writes
        only the moved ones' ``leaf``."""
        runs = leaf.runs
        half = len(runs) >> 1
        right = _Leaf(runs[half:], leaf[half:])
        del runs[half:], leaf[half:]
        leaf.visible -= right.visible
        self._cursor = self._hint = None
        self._adopt(leaf, right)

    def _adopt(self, left, right) -> None:
        """Put ``right``, just cut from ``left``, beside it in their parent (splitting upwards).
        The least ids of both are left unknown (``_least_of``); their parent's is unchanged."""
        parent = left.parent
        if parent is None:
            self._root = _Node([left, right], [_visible(left), _visible(right)], [None, None], None, 0)
            return
        slot = left.slot
        parent[slot] = _visible(left)
        parent.mins[slot] = None
        parent.children.insert(slot + 1, right)
        parent.insert(slot + 1, _visible(right))
        parent.mins.insert(slot + 1, None)
        children = parent.children
        right.parent = parent
        for number in range(slot + 1, len(children)):
            children[number].slot = number
        if len(children) > NODE_MAX:
            half = len(children) >> 1
            sibling = _Node(children[half:], parent[half:], parent.mins[half:], None, 0)
            del children[half:], parent[half:], parent.mins[half:]
            self._adopt(parent, sibling)

    def _put(self, leaf: _Leaf, i: int, run: _Run, local: bool = False) -> None:
        """Place a new run before run ``i`` of ``leaf`` (``i`` may be the end). A local run's
        id is the greatest here, so it lowers no subtree's least id."""
        run.leaf = leaf
        leaf.runs.insert(i, run)
        leaf.insert(i, run.visible)
        if run.visible:
            self._bump(leaf, run.visible)
        if not local:
            # A least id not known yet stays unknown (it is found from the runs, this one
            # included); above it, the known ones may still be greater than this run's id.
            key = run.counter << 64 | run.replica
            child, node = leaf, leaf.parent
            while node is not None:
                least = node.mins[child.slot]
                if least is not None:
                    if not key < least:
                        break
                    node.mins[child.slot] = key
                child, node = node, node.parent
        self._register(run)
        if len(leaf.runs) > LEAF_MAX:
            self._split_leaf(leaf)

    def _kill(self, run: _Run, start: int, stop: int, i: int | None = None) -> int:
        """Delete elements ``start`` to ``stop - 1`` of ``run`` (run ``i`` of its leaf, if the
        caller knows); how many were visible."""
        if not run.visible:
            return 0
        flags = run.flags
        if flags is None:
            if start == 0 and stop == len(run.items):
                killed = run.visible
                run.visible = 0
            else:
                flags = run.flags = bytearray(b"\x01") * len(run.items)
                flags[start:stop] = bytes(stop - start)
                killed = stop - start
                run.visible -= killed
        else:
            killed = flags.count(1, start, stop)
            if not killed:
                return 0
            flags[start:stop] = bytes(stop - start)
            run.visible -= killed
            if not run.visible:
                run.flags = None
        leaf = run.leaf
        leaf[leaf.runs.index(run) if i is None else i] -= killed
        self._bump(leaf, -killed)
        return killed

    # ----- local edits ------------------------------------------------------------

    def _next_counter(self) -> int:
        if self._max_counter >= RGA_MAX_COUNTER:
            raise CounterSpaceExhausted(
                f"replica {self.replica_id} has seen the counter {RGA_MAX_COUNTER}, the greatest the wire carries: "
                "it cannot insert any more (nothing changed)"
            )
        return self._max_counter + 1

    def insert(self, index: int, item: Hashable) -> Id:
        """Insert ``item`` at visible ``index`` (0..len): after the visible element at
        ``index - 1``, or at the head. Returns the new element's id."""
        _check_item(item)
        if not 0 <= index <= self._length:
            raise IndexError(f"insert at {index} in a sequence of {self._length}")
        if index == 0:
            return self._insert_at_head(item)
        leaf, i, offset = self._locate(index - 1)
        return self._insert_after(leaf, i, offset, item)

    def insert_after(self, parent: Id | None, item: Hashable) -> Id:
        """Insert ``item`` right after element ``parent`` (deleted or not; None: the head).
        Returns the new element's id. KeyError if ``parent`` is not known here."""
        _check_item(item)
        if parent is None:
            return self._insert_at_head(item)
        run, offset = self._known(parent)
        self._cursor = self._hint = None
        return self._insert_after(run.leaf, run.leaf.runs.index(run), offset, item)

    def _insert_at_head(self, item: Hashable) -> Id:
        counter = self._next_counter()
        leaf = self._leftmost()
        run = _Run(counter, self.replica_id, 0, 0, item if _is_char(item) else [item], 1, None, leaf)
        self._max_counter = counter
        self._record_insert(counter, 0, 0, item)
        self._cursor, self._hint = (leaf, 0), (leaf, 0, 0)
        self._put(leaf, 0, run, local=True)
        return (counter, self.replica_id)

    def _insert_after(self, leaf: _Leaf, i: int, offset: int, item: Hashable) -> Id:
        """A local insert right after element ``offset`` of run ``i`` of ``leaf``: its id is
        greater than every id here, so no sibling comes between."""
        counter = self._next_counter()
        run = leaf.runs[i]
        me = self.replica_id
        parent_counter, parent_replica = run.counter + offset, run.replica
        self._max_counter = counter
        self._record_insert(counter, parent_counter, parent_replica, item)
        items = run.items
        size = len(items)
        if offset == size - 1:
            if parent_replica == me and parent_counter == counter - 1 and size < RUN_MAX:
                # Typing on: the run grows.
                if type(items) is str and _is_char(item):
                    run.items = items + item
                else:
                    run.items = items = list(items) if type(items) is str else items
                    items.append(item)
                if run.flags is not None:
                    run.flags.append(1)
                elif not run.visible:
                    run.flags = bytearray(size)
                    run.flags.append(1)
                run.visible += 1
                leaf[i] += 1
                self._bump(leaf, 1)
                return (counter, me)
        else:
            self._split_run(leaf, i, offset + 1)
        hint = self._hint
        if hint is not None and hint[0] is leaf and hint[1] == i:
            self._hint = (leaf, i + 1, hint[2] + run.visible)
        else:
            self._hint = None
        new = _Run(counter, me, parent_counter, parent_replica, item if _is_char(item) else [item], 1, None, leaf)
        self._put(leaf, i + 1, new, local=True)
        return (counter, me)

    def delete(self, index: int) -> Id:
        """Delete the visible element at ``index``; returns its id."""
        if not 0 <= index < self._length:
            raise IndexError(f"delete at {index} in a sequence of {self._length}")
        leaf, i, offset = self._locate(index)
        run = leaf.runs[i]
        self._kill(run, offset, offset + 1, i)
        self._record_delete(run.counter + offset, run.replica)
        return (run.counter + offset, run.replica)

    def delete_id(self, element: Id) -> bool:
        """Delete ``element`` by id (a local edit, sent with the next deltas).

        Returns whether it was visible. KeyError if it is not known here."""
        run, offset = self._known(element)
        self._cursor = self._hint = None
        was_visible = self._kill(run, offset, offset + 1) == 1
        self._record_delete(*element)
        return was_visible

    def _record_insert(self, counter: int, parent_counter: int, parent_replica: int, item: Hashable) -> None:
        """Queue a local insert for the next delta; a typed run stays one pending run."""
        out = self._out
        items = out.items
        if (items and counter == out.counters[-1] + len(items[-1]) and parent_counter == counter - 1
                and parent_replica == self.replica_id and len(items[-1]) < RUN_MAX):
            last = items[-1]
            if type(last) is str and _is_char(item):
                items[-1] = last + item
            else:
                if type(last) is str:
                    last = items[-1] = list(last)
                last.append(item)
            return
        out.counters.append(counter)
        out.parent_counters.append(parent_counter)
        out.parent_replicas.append(parent_replica)
        items.append(item if _is_char(item) else [item])

    def _record_delete(self, counter: int, replica: int) -> None:
        """Queue a local delete; deletes of neighbouring ids (a backspaced word) stay one range."""
        out = self._out
        counters, lengths = out.deleted, out.deleted_lengths
        if counters and out.deleted_replicas[-1] == replica:
            if counter == counters[-1] - 1:
                counters[-1] = counter
                lengths[-1] += 1
                return
            if counter == counters[-1] + lengths[-1]:
                lengths[-1] += 1
                return
        counters.append(counter)
        out.deleted_replicas.append(replica)
        lengths.append(1)

    # ----- remote operations --------------------------------------------------------

    def _receive(self, runs: Iterable[RunTuple]) -> None:
        """Integrate runs from another replica: what is known is skipped, what lacks its
        parent waits, and what was waiting for an integrated element follows."""
        for run in runs:
            work = [run]
            while work:
                counter, replica, parent_counter, parent_replica, content = work.pop()
                if parent_counter and self._run_of(parent_counter, parent_replica) is None:
                    self._wait(counter, replica, parent_counter, parent_replica, content)
                    continue
                end, start = counter + len(content), counter
                # What is known of a run is a prefix: an element is integrated only after its parent.
                while start < end:
                    known = self._run_of(start, replica)
                    if known is None:
                        break
                    start = known.counter + len(known.items)
                if start >= end:
                    continue
                if start > counter:
                    content = content[start - counter :]
                    parent_counter, parent_replica = start - 1, replica
                self._integrate(start, replica, parent_counter, parent_replica, content, work)

    def _wait(self, counter: int, replica: int, parent_counter: int, parent_replica: int, content) -> None:
        """Keep a run whose parent is not here yet (the parts of it not already waiting)."""
        ranges = self._waiting_ids.get(replica)
        if ranges is None:
            ranges = self._waiting_ids[replica] = _SortedMap()
        for start, end in _ranges_add(ranges, counter, counter + len(content)):
            piece = content[start - counter : end - counter]
            parent = (parent_counter, parent_replica) if start == counter else (start - 1, replica)
            by_parent = self._waiting.get(parent[1])
            if by_parent is None:
                by_parent = self._waiting[parent[1]] = _SortedMap()
            group = by_parent.get(parent[0])
            if group is None:
                by_parent.insert(parent[0], [(start, replica, parent[0], parent[1], piece)])
            else:
                group.append((start, replica, parent[0], parent[1], piece))

    def _integrate(self, counter: int, replica: int, parent_counter: int, parent_replica: int, content, work: list) -> None:
        """Place unknown elements whose parent is known, then what waited for them."""
        end = counter + len(content)
        waiting_ids = self._waiting_ids.get(replica)
        if waiting_ids:
            _ranges_remove(waiting_ids, counter, end)
            if not waiting_ids:
                del self._waiting_ids[replica]
        self._place(counter, replica, parent_counter, parent_replica, content)
        early = self._early.get(replica)
        if early:
            for start, stop in _ranges_remove(early, counter, end):
                self._delete_range(start, stop, replica)
            if not early:
                del self._early[replica]
        children = self._waiting.get(replica)
        if children:
            while True:
                hit = children.ceiling(counter)
                if hit is None or hit[0] >= end:
                    break
                children.delete(hit[0])
                work.extend(hit[1])
            if not children:
                del self._waiting[replica]

    def _place(self, counter: int, replica: int, parent_counter: int, parent_replica: int, content) -> None:
        """Put unknown elements (one chain) right after their parent, past the greater siblings."""
        if parent_counter == 0:
            leaf, i, parent_run = self._leftmost(), 0, None
        else:
            parent_run = self._run_of(parent_counter, parent_replica)
            leaf = parent_run.leaf
            i = leaf.runs.index(parent_run)
            offset = parent_counter - parent_run.counter
            if offset < len(parent_run.items) - 1:
                # The next element of the parent's run is a child of the parent, a sibling.
                if (parent_counter + 1, parent_replica) < (counter, replica):
                    self._split_run(leaf, i, offset + 1)
                    self._put_chain(leaf, i + 1, counter, replica, parent_counter, parent_replica, content)
                    return
                parent_run = None  # skip the rest of it: its ids are greater still
            i += 1
            if parent_run is not None:
                following = leaf.runs[i] if i < len(leaf.runs) else self._following_run(leaf)
                if following is None or (following.counter, following.replica) < (counter, replica):
                    # Right after the parent, the end of its run: typing arriving from afar.
                    if (parent_replica == replica and parent_counter == counter - 1
                            and len(parent_run.items) + len(content) <= RUN_MAX):
                        self._extend(leaf, i - 1, content)
                    else:
                        self._put_chain(leaf, i, counter, replica, parent_counter, parent_replica, content)
                    return
        leaf, i = self._first_smaller(leaf, i, counter, replica)
        self._put_chain(leaf, i, counter, replica, parent_counter, parent_replica, content)

    def _first_smaller(self, leaf: _Leaf, i: int, counter: int, replica: int) -> tuple[_Leaf, int]:
        """The place before the first run, from run ``i`` of ``leaf`` on, whose first id is
        smaller than ``(counter, replica)`` (the end of the document if there is none)."""
        runs = leaf.runs
        for j in range(i, len(runs)):
            run = runs[j]
            if run.counter < counter or (run.counter == counter and run.replica < replica):
                return leaf, j
        key = counter << 64 | replica
        child, node = leaf, leaf.parent
        while node is not None:
            mins = node.mins
            for slot in range(child.slot + 1, len(mins)):
                if (mins[slot] or _least_of(node, slot)) < key:
                    sub = node.children[slot]
                    while type(sub) is _Node:
                        mins = sub.mins
                        sub = sub.children[next(s for s, least in enumerate(mins) if (least or _least_of(sub, s)) < key)]
                    for j, run in enumerate(sub.runs):
                        if run.counter < counter or (run.counter == counter and run.replica < replica):
                            return sub, j
            child, node = node, node.parent
        last = self._rightmost()
        return last, len(last.runs)

    def _extend(self, leaf: _Leaf, i: int, content) -> None:
        """Run ``i`` of ``leaf`` grows by visible elements (its chain goes on)."""
        run = leaf.runs[i]
        items = run.items
        if type(items) is str and type(content) is str:
            run.items = items + content
        else:
            run.items = [*items, *content]
        size = len(content)
        if run.flags is not None:
            run.flags += b"\x01" * size
        elif not run.visible:
            run.flags = bytearray(len(items)) + b"\x01" * size
        run.visible += size
        leaf[i] += size
        self._bump(leaf, size)

    def _put_chain(self, leaf: _Leaf, i: int, counter: int, replica: int, parent_counter: int, parent_replica: int,
                   content) -> None:
        """New runs for a chain of elements at run ``i`` of ``leaf``, ``RUN_MAX`` at a time."""
        for start in range(0, len(content), RUN_MAX):
            piece = content[start : start + RUN_MAX]
            run = _Run(counter + start, replica, parent_counter, parent_replica, piece, len(piece), None, leaf)
            self._put(leaf, i, run)
            leaf = run.leaf
            i = leaf.runs.index(run) + 1
            parent_counter, parent_replica = counter + start + len(piece) - 1, replica

    def _delete_range(self, start: int, end: int, replica: int) -> None:
        """Delete ids ``start`` to ``end - 1`` of ``replica``: the known ones now, the others
        when they arrive."""
        index = self._ids.get(replica)
        while start < end:
            run = self._run_of(start, replica)
            if run is not None:
                stop = min(end, run.counter + len(run.items))
                self._kill(run, start - run.counter, stop - run.counter)
                start = stop
                continue
            following = index.ceiling(start) if index is not None else None
            stop = end if following is None else min(end, following[0])
            early = self._early.get(replica)
            if early is None:
                early = self._early[replica] = _SortedMap()
            _ranges_add(early, start, stop)
            start = stop

    def _seen(self, max_counter: int) -> None:
        if max_counter > self._max_counter:
            self._max_counter = max_counter

    # ----- replication ------------------------------------------------------------

    def take_deltas(self) -> list[bytes]:
        """The local edits since the last call, as one ``rga.delta`` message (or none)."""
        out = self._out
        if not out.items and not out.deleted:
            return []
        me = self.replica_id
        runs = zip(out.counters, repeat(me), out.parent_counters, out.parent_replicas, out.items)
        body = [_run_columns(runs), _range_columns(zip(out.deleted, out.deleted_replicas, out.deleted_lengths, strict=True))]
        self._out = _Outbox()
        return [encode(DELTA_KIND, VERSION, body)]

    def apply_delta(self, delta: bytes) -> None:
        """Join a delta from another replica (late, twice or out of order is fine)."""
        self.apply_decoded_delta(decode_delta(delta))

    def apply_decoded_delta(self, delta: Delta) -> None:
        self._cursor = self._hint = None
        self._seen(delta.max_counter)
        self._receive(delta.runs)
        for counter, replica, length in delta.deletes:
            self._delete_range(counter, counter + length, replica)

    def state(self) -> bytes:
        """The full state as an ``rga.state`` message."""
        runs = [(run.counter, run.replica, run.parent_counter, run.parent_replica, run.items) for run in self._runs()]
        alive: list[int] = []
        visible_now = True
        for run in self._runs():
            if run.flags is None:
                stretches = [(bool(run.visible), len(run.items))]
            else:
                stretches = [(bool(flag), sum(1 for _ in group)) for flag, group in groupby(run.flags)]
            for visible, length in stretches:
                if visible == visible_now and alive:
                    alive[-1] += length
                else:
                    if not alive and not visible:
                        alive.append(0)
                    alive.append(length)
                    visible_now = visible
        # Sorted by replica and counter, the pieces of one waiting chain are neighbours and
        # ``_run_columns`` makes them one run again.
        waiting = sorted(
            (run for by_parent in self._waiting.values() for _, group in by_parent.items() for run in group),
            key=lambda run: (run[1], run[0]),
        )
        early = ((start, replica, end - start) for replica, ranges in self._early.items() for start, end in ranges.items())
        body = [_run_columns(runs), alive, _run_columns(waiting), _range_columns(early)]
        return encode(STATE_KIND, VERSION, body)

    def merge(self, state: bytes) -> None:
        """Join another replica's full state."""
        self.apply_state(decode_state(state))

    def apply_state(self, state: State) -> None:
        self._cursor = self._hint = None
        self._seen(state.max_counter)
        if not self._ids and not self._waiting and not self._early:
            self._load(state.runs, state.alive)
        else:
            self._receive(state.runs)
            for counter, replica, length in _deleted_stretches(state.runs, state.alive):
                self._delete_range(counter, counter + length, replica)
        self._receive(state.waiting_runs)
        for counter, replica, length in state.deletes:
            self._delete_range(counter, counter + length, replica)

    def _load(self, runs: list[RunTuple], alive: list[int]) -> None:
        """An empty replica takes a checked document as it is: it is already in order."""
        made: list[_Run] = []
        for counter, replica, parent_counter, parent_replica, content in runs:
            for start in range(0, len(content), RUN_MAX):
                piece = content[start : start + RUN_MAX]
                made.append(_Run(counter + start, replica, parent_counter, parent_replica, piece, len(piece), None, None))
                parent_counter, parent_replica = counter + start + len(piece) - 1, replica
        stretches = iter(alive)
        remaining, visible = next(stretches, 0), True
        for run in made:
            size = len(run.items)
            flags = bytearray()
            while len(flags) < size:
                while not remaining:
                    remaining, visible = next(stretches), not visible
                take = min(remaining, size - len(flags))
                flags += (b"\x01" if visible else b"\x00") * take
                remaining -= take
            run.visible = flags.count(1)
            run.flags = flags if 0 < run.visible < size else None
        if not made:
            return
        fill = max(2, LEAF_MAX * 3 // 4)
        level: list = []
        for start in range(0, len(made), fill):
            leaf = _Leaf(made[start : start + fill])
            level.append((leaf, _least(leaf.runs)))
        fan = max(2, NODE_MAX * 3 // 4)
        while len(level) > 1:
            level = [
                (node, min(node.mins))
                for node in (
                    _Node([child for child, _ in group], [_visible(child) for child, _ in group], [least for _, least in group],
                          None, 0)
                    for group in (level[start : start + fan] for start in range(0, len(level), fan))
                )
            ]
        self._root = level[0][0]
        self._length = _visible(self._root)
        for run in sorted(made, key=lambda run: (run.replica, run.counter)):
            self._register(run)


def _deleted_stretches(runs: list[RunTuple], alive: list[int]) -> Iterator[tuple[int, int, int]]:
    """The deleted elements of a state's document as ranges ``(counter, replica, length)``."""
    stretches = iter(alive)
    remaining, visible = next(stretches, 0), True
    for counter, replica, _, _, content in runs:
        position, size = 0, len(content)
        while position < size:
            while not remaining:
                remaining, visible = next(stretches), not visible
            take = min(remaining, size - position)
            if not visible:
                yield counter + position, replica, take
            position += take
            remaining -= take
