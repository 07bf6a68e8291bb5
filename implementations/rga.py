"""A fast RGA sequence replica: edit by visible index in logarithmic time, replicate by deltas.

``RGA(replica_id)`` is one replica of a replicated growable array. Every element has an id
``(counter, replica)``; a local insert after an element gets a counter one greater than any
counter this replica has seen, so a child's counter always exceeds its parent's. Elements
are kept in document order (the depth-first order of the RGA tree, children greatest id
first), deleted ones included as tombstones.

How it is fast:

* The document is cut into chunks of at most ``CHUNK_MAX`` elements. Each chunk holds its
  ids, items and a ``bytearray`` of alive flags, and counts its visible elements.
* A Fenwick tree over the chunks' visible counts finds the chunk of a visible index in
  O(log chunks); inside a chunk, a binary search over ``bytearray.count`` finds the
  element. Typing and deleting in one place skip most of that: a cursor remembers the
  chunk used last (a neighbouring chunk is reached without the tree), the cursor chunk's
  count changes reach the tree only when it is next asked, the tree is rebuilt lazily
  after a chunk splits, and a hint remembers the last position in the cursor chunk, so a
  nearby element is found by a short walk.
* ``_where`` maps every id to its chunk, so a remote insert finds its parent at once. It is
  placed RGA-style: right after the parent, skipping every element whose id is greater
  than the new id (exactly the greater siblings and their subtrees, because a child's
  counter exceeds its parent's).
* A remote insert whose parent is not known yet waits in ``_waiting`` until the parent
  arrives; a delete of an element not known yet is remembered in ``_early_deletes``. Both
  are part of the full state, so nothing is lost on the way.

Wire (MessagePack arrays, ``implementations/wire.py``): inserts travel as five columns,
counter steps, replicas, parent gaps, parent replicas and items (see ``_decode_inserts``). A
delta (``rga.delta``) is ``[inserts, [delete counters, delete replicas]]``: the edits made
here since the last ``take_deltas``. The full state (``rga.state``) is ``[elements,
alive flags, waiting inserts, early deletes]``: every element in document order with its
parent, one 0/1 byte per element, then the inserts still waiting for their parent and the
deletes still waiting for their element, both sorted. Decoding (``decode_delta``,
``decode_state``) is pure and checks the whole message (a parent's counter is below its
child's, no id twice, a state's elements in exactly their tree's document order), raising
only ``DecodeError``; applying a decoded message (``apply_decoded_delta``, ``apply_state``)
cannot fail.

Items are strings, bytes or integers (what the wire carries). Replica ids are integers in
``[0, 2**64)``.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from itertools import accumulate, compress
from operator import sub

import attrs

from implementations.wire import DecodeError, decode, encode, expect_bytes, expect_list

__all__ = ["CHUNK_MAX", "RGA", "Delta", "State", "decode_delta", "decode_state"]

#: An element's id: ``(counter, replica)``; ids compare as tuples.
Id = tuple[int, int]

#: A chunk that grows past this many elements is split in two.
CHUNK_MAX = 256
STATE_KIND, DELTA_KIND, VERSION = "rga.state", "rga.delta", 1
_MAX_U64 = 2**64 - 1
_ITEM_TYPES = (str, bytes, int)


class _Chunk:
    """A run of consecutive elements of the document, tombstones included."""

    __slots__ = ("alive", "ids", "index", "items", "visible")

    def __init__(self, ids: list[Id], items: list, alive: bytearray, index: int) -> None:
        self.ids = ids
        self.items = items
        self.alive = alive
        self.visible = alive.count(1)
        self.index = index


class _ChunkIndex:
    """A Fenwick tree over the chunks' visible counts (1-based inside)."""

    __slots__ = ("size", "top", "tree")

    def __init__(self, counts: list[int]) -> None:
        size = len(counts)
        tree = [0, *counts]
        for i in range(1, size + 1):
            j = i + (i & -i)
            if j <= size:
                tree[j] += tree[i]
        self.tree, self.size = tree, size
        self.top = 1 << (size.bit_length() - 1) if size else 0

    def add(self, chunk: int, delta: int) -> None:
        tree, size, i = self.tree, self.size, chunk + 1
        while i <= size:
            tree[i] += delta
            i += i & -i

    def before(self, chunk: int) -> int:
        """Visible elements in the chunks before ``chunk``."""
        tree, total, i = self.tree, 0, chunk
        while i:
            total += tree[i]
            i &= i - 1
        return total

    def find(self, index: int) -> tuple[int, int]:
        """The chunk holding visible element ``index``, and the visible elements before it."""
        tree, size, position, rest, step = self.tree, self.size, 0, index, self.top
        while step:
            following = position + step
            if following <= size and tree[following] <= rest:
                position = following
                rest -= tree[following]
            step >>= 1
        return position, index - rest


# ----- the wire: pure decoding --------------------------------------------------------


@attrs.frozen
class Delta:
    """A decoded, checked delta: inserts ``(id, parent, item)`` and deletes (ids)."""

    inserts: list[tuple[Id, Id | None, Hashable]]
    deletes: list[Id]
    max_counter: int


@attrs.frozen
class State:
    """A decoded, checked full state.

    ``elements`` are ``(id, parent, item)`` in document order, ``alive`` one 0/1 byte each;
    ``waiting`` are inserts whose parent the sender had not seen; ``deletes`` are deletes of
    elements it had not seen.
    """

    elements: list[tuple[Id, Id | None, Hashable]]
    alive: bytes
    waiting: list[tuple[Id, Id | None, Hashable]]
    deletes: list[Id]
    max_counter: int


def _ints(value: object, where: str, low: int, length: int | None = None) -> list[int]:
    values = expect_list(value, where, length)
    if values and not set(map(type, values)) <= {int}:
        bad = next(v for v in values if type(v) is not int)
        raise DecodeError(f"{where}: expected int, got {type(bad).__name__} {bad!r:.60}")
    if values and (min(values) < low or max(values) > _MAX_U64):
        bad = next(v for v in values if not low <= v <= _MAX_U64)
        raise DecodeError(f"{where}: {bad} is outside [{low}, {_MAX_U64}]")
    return values


def _items(value: object, where: str, length: int) -> list:
    items = expect_list(value, where, length)
    if items and not set(map(type, items)) <= set(_ITEM_TYPES):
        bad = next(v for v in items if type(v) not in _ITEM_TYPES)
        raise DecodeError(f"{where}: an item must be str, bytes or int, got {type(bad).__name__} {bad!r:.60}")
    return items


def _decode_inserts(body: object, where: str) -> list[tuple[Id, Id | None, Hashable]]:
    """Inserts from their five columns: counter steps, replicas, parent gaps, parent
    replicas, items.

    Counters are sent as steps from the previous insert's counter (the first from 0), so a
    typed run costs a byte each. A parent is sent as the gap from its child's counter down
    to its own, with its replica; the head is gap -1 with replica 0. A gap must be at least
    1 (a replica only inserts after elements it has seen, whose counters are smaller) and
    leave the parent a counter of at least 1.
    """
    columns = expect_list(body, where, 5)
    steps = _ints(columns[0], f"{where}[0] (counter steps)", -_MAX_U64)
    size = len(steps)
    replicas = _ints(columns[1], f"{where}[1] (replicas)", 0, size)
    gaps = _ints(columns[2], f"{where}[2] (parent gaps)", -1, size)
    parent_replicas = _ints(columns[3], f"{where}[3] (parent replicas)", 0, size)
    items = _items(columns[4], f"{where}[4] (items)", size)
    counters = list(accumulate(steps))
    if counters and (min(counters) < 1 or max(counters) > _MAX_U64):
        n, bad = next((n, c) for n, c in enumerate(counters) if not 1 <= c <= _MAX_U64)
        raise DecodeError(f"{where}: insert {n}: its counter {bad} is outside [1, {_MAX_U64}]")
    inserts = []
    for n, (counter, replica, gap, parent_replica, item) in enumerate(
        zip(counters, replicas, gaps, parent_replicas, items, strict=True)
    ):
        if gap == -1:
            if parent_replica != 0:
                raise DecodeError(f"{where}: insert {n}: the head is parent replica 0, got {parent_replica}")
            parent = None
        elif 1 <= gap < counter:
            parent = (counter - gap, parent_replica)
        else:
            raise DecodeError(
                f"{where}: insert {n}: id ({counter}, {replica}) does not exceed its parent "
                f"({counter - gap}, {parent_replica})"
            )
        inserts.append(((counter, replica), parent, item))
    return inserts


def _decode_ids(body: object, where: str) -> list[Id]:
    columns = expect_list(body, where, 2)
    counters = _ints(columns[0], f"{where}[0] (counters)", 1)
    replicas = _ints(columns[1], f"{where}[1] (replicas)", 0, len(counters))
    return list(zip(counters, replicas, strict=True))


def _greatest_counter(insert_groups: list[list[tuple[Id, Id | None, Hashable]]], deletes: list[Id]) -> int:
    """The greatest counter a message mentions (a parent's counter is always below its child's)."""
    inserted = (element[0] for inserts in insert_groups for element, _, _ in inserts)
    return max(0, max(inserted, default=0), max((target[0] for target in deletes), default=0))


def decode_delta(data: bytes) -> Delta:
    """The checked content of an ``rga.delta`` message, or ``DecodeError``. Changes nothing."""
    body = decode(data, DELTA_KIND, VERSION)
    expect_list(body, f"{DELTA_KIND}: body", 2)
    inserts = _decode_inserts(body[0], f"{DELTA_KIND}: inserts")
    deletes = _decode_ids(body[1], f"{DELTA_KIND}: deletes")
    ids = [element for element, _, _ in inserts]
    if len(set(ids)) != len(ids):
        raise DecodeError(f"{DELTA_KIND}: inserts: an id appears twice")
    return Delta(inserts, deletes, _greatest_counter([inserts], deletes))


def _check_document_order(elements: list[tuple[Id, Id | None, Hashable]], where: str) -> None:
    """The elements must be exactly the depth-first walk of their tree, greatest sibling first.

    Each element's parent must be the head or on the path from the head to the element
    before it, and it must come after its previous sibling, which must have a greater id.
    """
    path: list[Id] = []
    last_child: dict[Id | None, Id] = {}
    for n, (element, parent, _) in enumerate(elements):
        if parent is None:
            path.clear()
        else:
            while path and path[-1] != parent:
                path.pop()
            if not path:
                raise DecodeError(f"{where}: element {n} {element}: its parent {parent} is not an enclosing element before it")
        previous = last_child.get(parent)
        if previous is not None and previous < element:
            raise DecodeError(f"{where}: element {n} {element} comes after its smaller sibling {previous}")
        last_child[parent] = element
        path.append(element)


def decode_state(data: bytes) -> State:
    """The checked content of an ``rga.state`` message, or ``DecodeError``. Changes nothing."""
    body = decode(data, STATE_KIND, VERSION)
    expect_list(body, f"{STATE_KIND}: body", 4)
    elements = _decode_inserts(body[0], f"{STATE_KIND}: elements")
    alive = expect_bytes(body[1], f"{STATE_KIND}: alive flags", len(elements))
    if alive.translate(None, b"\x00\x01"):
        raise DecodeError(f"{STATE_KIND}: alive flags: every flag must be 0 or 1")
    waiting = _decode_inserts(body[2], f"{STATE_KIND}: waiting inserts")
    deletes = _decode_ids(body[3], f"{STATE_KIND}: early deletes")
    ids = [element for element, _, _ in elements]
    ids.extend(element for element, _, _ in waiting)
    if len(set(ids)) != len(ids):
        raise DecodeError(f"{STATE_KIND}: an element id appears twice")
    _check_document_order(elements, f"{STATE_KIND}: elements")
    return State(elements, alive, waiting, deletes, _greatest_counter([elements, waiting], deletes))


def _encode_inserts(inserts: list[tuple[Id, Id | None, Hashable]]) -> list[list]:
    counters = [element[0] for element, _, _ in inserts]
    return [
        list(map(sub, counters, [0, *counters[:-1]])),
        [element[1] for element, _, _ in inserts],
        [element[0] - parent[0] if parent else -1 for element, parent, _ in inserts],
        [parent[1] if parent else 0 for _, parent, _ in inserts],
        [item for _, _, item in inserts],
    ]


def _encode_ids(ids: list[Id]) -> list[list[int]]:
    return [[c for c, _ in ids], [r for _, r in ids]]


# ----- the replica --------------------------------------------------------------------


class RGA:
    """One replica of an RGA sequence. See the module docstring."""

    def __init__(self, replica_id: int) -> None:
        if type(replica_id) is not int or not 0 <= replica_id <= _MAX_U64:
            raise ValueError(f"a replica id is an int in [0, 2**64), got {replica_id!r}")
        self.replica_id = replica_id
        self._chunks = [_Chunk([], [], bytearray(), 0)]
        self._length = 0
        self._max_counter = 0
        self._where: dict[Id, _Chunk] = {}
        self._parent: dict[Id, Id | None] = {}
        self._waiting: dict[Id, list[tuple[Id, Hashable]]] = {}  # parent -> inserts waiting for it
        self._waiting_ids: dict[Id, Id] = {}  # waiting insert -> its parent
        self._early_deletes: set[Id] = set()
        self._sent_inserts: list[tuple[Id, Id | None, Hashable]] = []
        self._sent_deletes: list[Id] = []
        # Finding a visible index. ``_index`` is None when it must be rebuilt from the chunks.
        # The cursor is the chunk used last and the visible elements before it; changes of
        # the cursor chunk's visible count made through the cursor are in ``_unindexed``
        # until the index is next asked. The hint is a position in the cursor chunk and the
        # visible elements before it there, so nearby positions are found by a short walk.
        self._index: _ChunkIndex | None = None
        self._cursor: tuple[int, int] | None = None
        self._unindexed = 0
        self._hint: tuple[_Chunk, int, int] | None = None
        # The chunk and position of the element placed or found last by a remote edit (it
        # may have moved since: ``_find`` checks before it trusts it).
        self._last: tuple[_Chunk | None, int] = (None, 0)

    # ----- reading ----------------------------------------------------------------

    def __len__(self) -> int:
        return self._length

    def value(self) -> list:
        """The visible items, in order."""
        out: list = []
        for chunk in self._chunks:
            if chunk.visible == len(chunk.ids):
                out.extend(chunk.items)
            else:
                out.extend(compress(chunk.items, chunk.alive))
        return out

    def ids(self) -> list[Id]:
        """The ids of the visible elements, in order."""
        out: list[Id] = []
        for chunk in self._chunks:
            out.extend(compress(chunk.ids, chunk.alive))
        return out

    def __iter__(self) -> Iterator:
        return iter(self.value())

    def id_at(self, index: int) -> Id:
        """The id of the visible element at ``index``."""
        if not 0 <= index < self._length:
            raise IndexError(f"no element at {index} in a sequence of {self._length}")
        chunk_number, start = self._locate(index)
        chunk = self._chunks[chunk_number]
        return chunk.ids[self._position(chunk, index - start)]

    def index_of(self, element: Id) -> int | None:
        """The visible index of ``element``, or None if it is deleted or not known here."""
        chunk = self._where.get(element)
        if chunk is None:
            return None
        position = chunk.ids.index(element)
        if not chunk.alive[position]:
            return None
        return self._ready_index().before(chunk.index) + chunk.alive.count(1, 0, position)

    def item_of(self, element: Id) -> Hashable:
        """The item of a known element (deleted or not); KeyError if it is not known here."""
        chunk = self._where[element]
        return chunk.items[chunk.ids.index(element)]

    def knows(self, element: Id) -> bool:
        """Whether ``element`` is in this replica's document (visible or deleted)."""
        return element in self._where

    # ----- local edits ------------------------------------------------------------

    def _next_id(self) -> Id:
        self._max_counter += 1
        return (self._max_counter, self.replica_id)

    def insert(self, index: int, item: Hashable) -> Id:
        """Insert ``item`` at visible ``index`` (0..len): after the visible element at
        ``index - 1``, or at the head. Returns the new element's id."""
        if type(item) not in _ITEM_TYPES:
            raise TypeError(f"an item must be str, bytes or int, got {type(item).__name__}")
        if not 0 <= index <= self._length:
            raise IndexError(f"insert at {index} in a sequence of {self._length}")
        if index == 0:
            self._move_cursor((0, 0))
            chunk_number, chunk, parent, position = 0, self._chunks[0], None, 0
        else:
            chunk_number, start = self._locate(index - 1)
            chunk = self._chunks[chunk_number]
            position = self._position(chunk, index - 1 - start)
            parent = chunk.ids[position]
            position += 1
            index -= start
        element = self._next_id()
        chunk.ids.insert(position, element)
        chunk.items.insert(position, item)
        chunk.alive.insert(position, 1)
        chunk.visible += 1
        self._length += 1
        self._unindexed += 1
        self._where[element] = chunk
        self._parent[element] = parent
        self._hint = (chunk, position, index)
        self._sent_inserts.append((element, parent, item))
        if len(chunk.ids) > CHUNK_MAX:
            self._split(chunk_number)
        return element

    def insert_after(self, parent: Id | None, item: Hashable) -> Id:
        """Insert ``item`` right after element ``parent`` (deleted or not; None: the head).
        Returns the new element's id. KeyError if ``parent`` is not known here."""
        if type(item) not in _ITEM_TYPES:
            raise TypeError(f"an item must be str, bytes or int, got {type(item).__name__}")
        if parent is None:
            chunk_number, position = 0, 0
        else:
            chunk = self._where.get(parent)
            if chunk is None:
                raise KeyError(f"insert after {parent}: no such element here")
            chunk_number, position = chunk.index, chunk.ids.index(parent) + 1
        element = self._next_id()
        self._place(chunk_number, position, element, parent, item, 1)
        self._sent_inserts.append((element, parent, item))
        return element

    def delete(self, index: int) -> Id:
        """Delete the visible element at ``index``; returns its id."""
        if not 0 <= index < self._length:
            raise IndexError(f"delete at {index} in a sequence of {self._length}")
        chunk_number, start = self._locate(index)
        chunk = self._chunks[chunk_number]
        index -= start
        position = self._position(chunk, index)
        chunk.alive[position] = 0
        chunk.visible -= 1
        self._length -= 1
        self._unindexed -= 1
        self._hint = (chunk, position, index)
        element = chunk.ids[position]
        self._sent_deletes.append(element)
        return element

    def delete_id(self, element: Id) -> bool:
        """Delete ``element`` by id (a local edit, sent with the next deltas).

        Returns whether it was visible. KeyError if it is not known here."""
        if element not in self._where:
            raise KeyError(f"delete {element}: no such element here")
        was_visible = self._kill(element)
        self._sent_deletes.append(element)
        return was_visible

    # ----- the document structure -------------------------------------------------

    def _flush(self) -> None:
        """Put the cursor chunk's pending change of visible count into the index."""
        if self._unindexed:
            if self._index is not None:
                self._index.add(self._cursor[0], self._unindexed)
            self._unindexed = 0

    def _ready_index(self) -> _ChunkIndex:
        """The chunk index, brought up to date."""
        self._flush()
        if self._index is None:
            self._index = _ChunkIndex([chunk.visible for chunk in self._chunks])
        return self._index

    def _move_cursor(self, cursor: tuple[int, int] | None) -> None:
        self._flush()
        self._cursor = cursor
        self._hint = None

    def _locate(self, index: int) -> tuple[int, int]:
        """The chunk holding visible element ``index`` and the visible elements before it."""
        cursor = self._cursor
        if cursor is not None:
            number, start = cursor
            chunks = self._chunks
            end = start + chunks[number].visible
            if start <= index < end:
                return cursor
            # Typing and deleting walk into the neighbouring chunks: no need for the index.
            if end <= index and number + 1 < len(chunks) and index < end + chunks[number + 1].visible:
                cursor = (number + 1, end)
            elif index < start and number and start - chunks[number - 1].visible <= index:
                cursor = (number - 1, start - chunks[number - 1].visible)
            else:
                cursor = None
            if cursor is not None:
                self._move_cursor(cursor)
                return cursor
        cursor = self._ready_index().find(index)
        self._move_cursor(cursor)
        return cursor

    def _position(self, chunk: _Chunk, k: int) -> int:
        """The position in ``chunk`` of its ``k``-th visible element (from 0)."""
        alive = chunk.alive
        high = len(alive)
        if chunk.visible == high:
            return k
        hint = self._hint
        if hint is not None and hint[0] is chunk:
            _, position, before = hint
            if before <= k < before + 8:
                position = alive.find(1, position)
                for _ in range(k - before):
                    position = alive.find(1, position + 1)
                return position
            if before - 8 <= k < before:
                for _ in range(before - k):
                    position = alive.rfind(1, 0, position)
                return position
        low, need = 0, k + 1
        while high - low > 1:
            middle = (low + high) >> 1
            count = alive.count(1, low, middle)
            if count >= need:
                high = middle
            else:
                need -= count
                low = middle
        return low

    def _place(self, chunk_number: int, position: int, element: Id, parent: Id | None, item: Hashable, alive: int) -> None:
        """Put a new element at ``position`` of chunk ``chunk_number`` (not through the cursor)."""
        chunk = self._chunks[chunk_number]
        chunk.ids.insert(position, element)
        chunk.items.insert(position, item)
        chunk.alive.insert(position, alive)
        self._where[element] = chunk
        self._parent[element] = parent
        self._last = (chunk, position)
        if self._hint is not None and self._hint[0] is chunk:
            self._hint = None
        if alive:
            chunk.visible += 1
            self._length += 1
            if self._index is not None:
                self._index.add(chunk_number, 1)
            cursor = self._cursor
            if cursor is not None and chunk_number < cursor[0]:
                self._cursor = (cursor[0], cursor[1] + 1)
        if len(chunk.ids) > CHUNK_MAX:
            self._split(chunk_number)

    def _split(self, chunk_number: int) -> None:
        chunk = self._chunks[chunk_number]
        half = len(chunk.ids) // 2
        tail = _Chunk(chunk.ids[half:], chunk.items[half:], chunk.alive[half:], chunk_number + 1)
        del chunk.ids[half:], chunk.items[half:], chunk.alive[half:]
        chunk.visible -= tail.visible
        chunks = self._chunks
        chunks.insert(chunk_number + 1, tail)
        self._where.update(dict.fromkeys(tail.ids, tail))
        for number in range(chunk_number + 1, len(chunks)):
            chunks[number].index = number
        self._index, self._unindexed, self._hint = None, 0, None
        cursor = self._cursor
        if cursor is not None and cursor[0] > chunk_number:
            self._cursor = (cursor[0] + 1, cursor[1])

    def _find(self, element: Id) -> tuple[_Chunk, int]:
        """The chunk and position of a known element. Remote edits come in runs (a typed word,
        a backspaced one), so the element placed or found last, or one next to it, is tried
        before a search of the chunk."""
        chunk = self._where[element]
        ids = chunk.ids
        last_chunk, position = self._last
        if last_chunk is chunk:
            for guess in (position, position - 1, position + 1):
                if 0 <= guess < len(ids) and ids[guess] == element:
                    self._last = (chunk, guess)
                    return chunk, guess
        position = ids.index(element)
        self._last = (chunk, position)
        return chunk, position

    def _kill(self, element: Id) -> bool:
        """Tombstone a known element (not through the cursor); whether it was visible."""
        chunk, position = self._find(element)
        if not chunk.alive[position]:
            return False
        chunk.alive[position] = 0
        chunk.visible -= 1
        self._length -= 1
        if self._index is not None:
            self._index.add(chunk.index, -1)
        if self._hint is not None and self._hint[0] is chunk:
            self._hint = None
        cursor = self._cursor
        if cursor is not None and chunk.index < cursor[0]:
            self._cursor = (cursor[0], cursor[1] - 1)
        return True

    # ----- remote operations --------------------------------------------------------

    def _integrate(self, element: Id, parent: Id | None, item: Hashable) -> None:
        """Place a remote insert whose parent is known, then whatever was waiting for it."""
        work = [(element, parent, item)]
        while work:
            element, parent, item = work.pop()
            chunk_number, position = self._slot(element, parent)
            alive = 1
            if element in self._early_deletes:
                self._early_deletes.discard(element)
                alive = 0
            self._place(chunk_number, position, element, parent, item, alive)
            for child, child_item in self._waiting.pop(element, ()):
                del self._waiting_ids[child]
                work.append((child, element, child_item))

    def _slot(self, element: Id, parent: Id | None) -> tuple[int, int]:
        """Where a remote insert goes: right after its parent, past the greater siblings and
        their subtrees (every id there exceeds ``element``; the first smaller id does not)."""
        chunks = self._chunks
        if parent is None:
            chunk_number, position = 0, 0
        else:
            chunk, position = self._find(parent)
            chunk_number, position = chunk.index, position + 1
        last = len(chunks) - 1
        while True:
            ids = chunks[chunk_number].ids
            size = len(ids)
            while position < size and ids[position] > element:
                position += 1
            if position < size or chunk_number == last:
                return chunk_number, position
            following = chunks[chunk_number + 1].ids
            if following and following[0] < element:
                return chunk_number, position
            chunk_number, position = chunk_number + 1, 0

    def _receive_insert(self, element: Id, parent: Id | None, item: Hashable) -> None:
        if element in self._where or element in self._waiting_ids:
            return
        if parent is not None and parent not in self._where:
            self._waiting.setdefault(parent, []).append((element, item))
            self._waiting_ids[element] = parent
            return
        self._integrate(element, parent, item)

    def _receive_delete(self, element: Id) -> None:
        if element in self._where:
            self._kill(element)
        else:
            self._early_deletes.add(element)

    def _seen(self, max_counter: int) -> None:
        if max_counter > self._max_counter:
            self._max_counter = max_counter

    # ----- replication ------------------------------------------------------------

    def take_deltas(self) -> list[bytes]:
        """The local edits since the last call, as one ``rga.delta`` message (or none)."""
        if not self._sent_inserts and not self._sent_deletes:
            return []
        delta = encode(DELTA_KIND, VERSION, [_encode_inserts(self._sent_inserts), _encode_ids(self._sent_deletes)])
        self._sent_inserts, self._sent_deletes = [], []
        return [delta]

    def apply_delta(self, delta: bytes) -> None:
        """Join a delta from another replica (late, twice or out of order is fine)."""
        self.apply_decoded_delta(decode_delta(delta))

    def apply_decoded_delta(self, delta: Delta) -> None:
        self._seen(delta.max_counter)
        for element, parent, item in delta.inserts:
            self._receive_insert(element, parent, item)
        for element in delta.deletes:
            self._receive_delete(element)

    def state(self) -> bytes:
        """The full state as an ``rga.state`` message."""
        elements = []
        parent_of = self._parent
        alive = bytearray()
        for chunk in self._chunks:
            elements.extend(zip(chunk.ids, map(parent_of.__getitem__, chunk.ids), chunk.items, strict=True))
            alive += chunk.alive
        waiting = [
            (element, parent, item) for parent, group in self._waiting.items() for element, item in group
        ]
        waiting.sort(key=lambda insert: insert[0])
        body = [_encode_inserts(elements), bytes(alive), _encode_inserts(waiting), _encode_ids(sorted(self._early_deletes))]
        return encode(STATE_KIND, VERSION, body)

    def merge(self, state: bytes) -> None:
        """Join another replica's full state."""
        self.apply_state(decode_state(state))

    def apply_state(self, state: State) -> None:
        self._seen(state.max_counter)
        if not self._where and not self._waiting_ids and not self._early_deletes:
            self._load(state.elements, state.alive)
        else:
            for (element, parent, item), alive in zip(state.elements, state.alive, strict=True):
                if element in self._where:
                    if not alive:
                        self._kill(element)
                    continue
                if not alive:
                    self._early_deletes.add(element)
                self._receive_insert(element, parent, item)
        for element, parent, item in state.waiting:
            self._receive_insert(element, parent, item)
        for element in state.deletes:
            self._receive_delete(element)

    def _load(self, elements: list[tuple[Id, Id | None, Hashable]], alive: bytes) -> None:
        """An empty replica takes a checked document as it is: it is already in order."""
        size = CHUNK_MAX // 2
        chunks = []
        for start in range(0, max(len(elements), 1), size):
            part = elements[start : start + size]
            chunk = _Chunk([e for e, _, _ in part], [i for _, _, i in part], bytearray(alive[start : start + size]), len(chunks))
            chunks.append(chunk)
            self._where.update(dict.fromkeys(chunk.ids, chunk))
        self._parent.update((element, parent) for element, parent, _ in elements)
        self._chunks = chunks
        self._length = sum(chunk.visible for chunk in chunks)
        self._index, self._cursor, self._unindexed, self._hint = None, None, 0, None
