"""A delta-state OR-Set (add-wins), after Almeida, Shoker and Baquero, "Delta state
replicated data types" (2018), the add-wins set with a causal context.

State. Every add makes a *dot* ``(replica, seq)``: the replica that made it and that
replica's count of adds so far. The state is

* a *causal context*: every dot this replica has seen, added or removed, kept as a version
  vector (``replica -> n`` means dots 1..n of that replica) plus a *dot cloud* of the dots
  seen out of order; a cloud dot joins the vector as soon as the gap before it fills;
* an *element store*: ``element -> dots`` for the adds that are still live.

A remove drops the element's dots from the store and leaves nothing behind for that element:
the context alone remembers that those dots were seen, which is what stops an old add from
coming back. There are no per-element tombstones.

Join. Of two states, a dot stays if both stores hold it, or if one store holds it and the
other context has not seen it. Contexts are united. That is the whole algorithm, and it is
commutative, associative and idempotent, so deltas may arrive late, twice or out of order.

Deltas. The delta of ``add(e)`` is the new dot in the store under ``e`` and in the context;
the delta of ``remove(e)`` is an empty store with the removed dots in the context. A replica
joins the deltas of its own operations into one pending delta that ``take_deltas`` hands out.

Wire (``implementations.wire``): kinds ``orset.state`` and ``orset.delta``, version 1, both
with the body ``[version_vector, cloud, entries]``:

* ``version_vector``: ``[[replica, n], ...]``, replicas ascending, ``n >= 1``;
* ``cloud``: ``[[replica, [seq, ...]], ...]``, replicas ascending, seqs ascending, each seq
  beyond the vector's ``n + 1`` (a canonical context is compacted);
* ``entries``: ``[[element, [[replica, seq], ...]], ...]``, elements in canonical order
  (integers, then strings, then bytes; each by value), dots ascending, every dot in the
  context, no element without dots.

Equal states have equal bytes, and the decoder accepts only that one encoding. Decoding is
pure and raises only ``DecodeError``; joining a decoded state cannot fail, so a bad message
changes nothing. Elements are ``str``, ``int`` (64-bit) or ``bytes``.

The task list reuses this class for its membership set: ``decode_body``/``encode_body`` embed
a state in a larger message, ``join`` joins an already decoded state.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Any

from implementations.wire import DecodeError, decode, element_key, encode, expect_int, expect_list

__all__ = [
    "DELTA_KIND",
    "STATE_KIND",
    "VERSION",
    "CausalContext",
    "DeltaORSet",
    "DotStore",
    "decode_body",
    "decode_delta",
    "decode_state",
    "element_key",
    "encode_body",
]

STATE_KIND = "orset.state"
DELTA_KIND = "orset.delta"
VERSION = 1

Dot = tuple[int, int]

MAX_REPLICA = 2**64 - 1
MAX_SEQ = 2**64 - 1


class CausalContext:
    """The dots a replica has seen: a version vector plus the dots seen out of order."""

    __slots__ = ("cloud", "vector")

    def __init__(self) -> None:
        self.vector: dict[int, int] = {}  # replica -> n: dots (replica, 1..n) seen
        self.cloud: dict[int, set[int]] = {}  # replica -> seqs seen beyond a gap

    def __contains__(self, dot: Dot) -> bool:
        replica, seq = dot
        return seq <= self.vector.get(replica, 0) or seq in self.cloud.get(replica, ())

    def add(self, dot: Dot) -> None:
        replica, seq = dot
        known = self.vector.get(replica, 0)
        if seq <= known:
            return
        if seq != known + 1:
            self.cloud.setdefault(replica, set()).add(seq)
            return
        self._advance(replica, seq)

    def _advance(self, replica: int, seq: int) -> None:
        """Dots 1..seq of ``replica`` are seen: fold the cloud into the vector."""
        seqs = self.cloud.get(replica)
        if seqs:
            seqs.difference_update([s for s in seqs if s <= seq])
            while seq + 1 in seqs:
                seq += 1
                seqs.discard(seq)
            if not seqs:
                del self.cloud[replica]
        self.vector[replica] = seq

    def update(self, other: CausalContext) -> None:
        """Add every dot ``other`` has seen."""
        for replica, n in other.vector.items():
            if n > self.vector.get(replica, 0):
                self._advance(replica, n)
        for replica, seqs in other.cloud.items():
            for seq in seqs:
                self.add((replica, seq))

    def max_seq(self, replica: int) -> int:
        """The greatest seq of ``replica`` seen (0 if none)."""
        return max(self.vector.get(replica, 0), max(self.cloud.get(replica, ()), default=0))

    def size(self) -> int:
        """How many dots this context holds."""
        return sum(self.vector.values()) + sum(len(s) for s in self.cloud.values())

    def dots(self) -> Iterator[Dot]:
        for replica, n in self.vector.items():
            for seq in range(1, n + 1):
                yield (replica, seq)
        for replica, seqs in self.cloud.items():
            for seq in seqs:
                yield (replica, seq)

    def copy(self) -> CausalContext:
        twin = CausalContext()
        twin.vector = dict(self.vector)
        twin.cloud = {r: set(s) for r, s in self.cloud.items()}
        return twin

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CausalContext) and (self.vector, self.cloud) == (other.vector, other.cloud)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"CausalContext(vector={self.vector}, cloud={self.cloud})"


class DotStore:
    """A causal context with the live dots of each element: a full state, or a delta.

    Invariant: every dot in ``entries`` is in ``context``, and ``owner`` maps each live dot
    back to its element (so a remove or a join touches only the dots it concerns).
    """

    __slots__ = ("context", "entries", "owner")

    def __init__(self) -> None:
        self.entries: dict[Hashable, set[Dot]] = {}
        self.owner: dict[Dot, Hashable] = {}
        self.context = CausalContext()

    def insert(self, element: Hashable, dot: Dot) -> None:
        """Make ``dot`` a live dot of ``element`` (the caller adds it to the context)."""
        self.entries.setdefault(element, set()).add(dot)
        self.owner[dot] = element

    def discard(self, dot: Dot) -> None:
        element = self.owner.pop(dot)
        dots = self.entries[element]
        dots.discard(dot)
        if not dots:
            del self.entries[element]

    def join(self, other: DotStore) -> None:
        """Join ``other`` into this store. ``other`` is not changed; this cannot fail."""
        # A live dot of ours that the other side has seen but no longer holds was removed there.
        if other.context.size() <= len(self.owner):
            ours_seen = [dot for dot in other.context.dots() if dot in self.owner]
        else:
            ours_seen = [dot for dot in self.owner if dot in other.context]
        for dot in ours_seen:
            if dot not in other.owner:
                self.discard(dot)
        # A live dot of theirs that we have never seen is a new add.
        for dot, element in other.owner.items():
            if dot not in self.owner and dot not in self.context:
                self.insert(element, dot)
        self.context.update(other.context)

    def copy(self) -> DotStore:
        twin = DotStore()
        twin.entries = {e: set(d) for e, d in self.entries.items()}
        twin.owner = dict(self.owner)
        twin.context = self.context.copy()
        return twin

    def is_empty(self) -> bool:
        return not self.owner and not self.context.vector and not self.context.cloud

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DotStore) and (self.entries, self.context) == (other.entries, other.context)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"DotStore(entries={self.entries}, context={self.context!r})"


# ----- wire ------------------------------------------------------------------------


def encode_body(store: DotStore) -> list[Any]:
    """The canonical wire body of ``store`` (see the module docstring)."""
    context = store.context
    vector = [[r, n] for r, n in sorted(context.vector.items())]
    cloud = [[r, sorted(seqs)] for r, seqs in sorted(context.cloud.items()) if seqs]
    entries = [
        [element, [list(dot) for dot in sorted(store.entries[element])]]
        for element in sorted(store.entries, key=element_key)
    ]
    return [vector, cloud, entries]


def _expect_element(value: Any, where: str) -> Any:
    try:
        element_key(value)
    except (TypeError, ValueError) as error:
        raise DecodeError(f"{where}: {error}") from None
    return value


def _expect_dot(value: Any, where: str) -> Dot:
    pair = expect_list(value, where, length=2)
    return (expect_int(pair[0], f"{where}[0]", 0, MAX_REPLICA), expect_int(pair[1], f"{where}[1]", 1, MAX_SEQ))


def decode_body(body: Any, where: str) -> DotStore:
    """A ``DotStore`` from a wire body, checked whole; raises only ``DecodeError``."""
    parts = expect_list(body, where, length=3)
    store = DotStore()
    context = store.context
    previous = -1
    for i, item in enumerate(expect_list(parts[0], f"{where}[0]")):
        replica, n = _expect_dot(item, f"{where}[0][{i}]")
        if replica <= previous:
            raise DecodeError(f"{where}[0][{i}]: replica {replica} is out of order (ascending, no repeats)")
        previous = replica
        context.vector[replica] = n
    previous = -1
    for i, item in enumerate(expect_list(parts[1], f"{where}[1]")):
        pair = expect_list(item, f"{where}[1][{i}]", length=2)
        replica = expect_int(pair[0], f"{where}[1][{i}][0]", 0, MAX_REPLICA)
        if replica <= previous:
            raise DecodeError(f"{where}[1][{i}]: replica {replica} is out of order (ascending, no repeats)")
        previous = replica
        seqs = expect_list(pair[1], f"{where}[1][{i}][1]")
        if not seqs:
            raise DecodeError(f"{where}[1][{i}]: replica {replica} has an empty cloud")
        last = context.vector.get(replica, 0) + 1  # a canonical cloud starts beyond n + 1
        for j, raw in enumerate(seqs):
            seq = expect_int(raw, f"{where}[1][{i}][1][{j}]", 1, MAX_SEQ)
            if seq <= last:
                raise DecodeError(f"{where}[1][{i}][1][{j}]: seq {seq} is out of order or belongs in the version vector")
            last = seq
        context.cloud[replica] = set(seqs)
    previous_key: tuple[int, Any] | None = None
    for i, item in enumerate(expect_list(parts[2], f"{where}[2]")):
        pair = expect_list(item, f"{where}[2][{i}]", length=2)
        element = _expect_element(pair[0], f"{where}[2][{i}][0]")
        key = element_key(element)
        if previous_key is not None and key <= previous_key:
            raise DecodeError(f"{where}[2][{i}]: element {element!r:.40} is out of order (canonical order, no repeats)")
        previous_key = key
        raw_dots = expect_list(pair[1], f"{where}[2][{i}][1]")
        if not raw_dots:
            raise DecodeError(f"{where}[2][{i}]: element {element!r:.40} has no dots")
        last_dot: Dot | None = None
        for j, raw in enumerate(raw_dots):
            dot = _expect_dot(raw, f"{where}[2][{i}][1][{j}]")
            if last_dot is not None and dot <= last_dot:
                raise DecodeError(f"{where}[2][{i}][1][{j}]: dot {dot} is out of order (ascending, no repeats)")
            last_dot = dot
            if dot not in context:
                raise DecodeError(f"{where}[2][{i}][1][{j}]: dot {dot} is not in the causal context")
            if dot in store.owner:
                raise DecodeError(f"{where}[2][{i}][1][{j}]: dot {dot} also belongs to {store.owner[dot]!r:.40}")
            store.insert(element, dot)
    return store


def decode_state(data: bytes) -> DotStore:
    """A full state from bytes, or ``DecodeError``."""
    return decode_body(decode(data, STATE_KIND, VERSION), STATE_KIND)


def decode_delta(data: bytes) -> DotStore:
    """A delta from bytes, or ``DecodeError``."""
    return decode_body(decode(data, DELTA_KIND, VERSION), DELTA_KIND)


# ----- the replica -----------------------------------------------------------------


class DeltaORSet:
    """One replica of the delta-state OR-Set. Elements are ``str``, ``int`` or ``bytes``."""

    def __init__(self, replica_id: int) -> None:
        if isinstance(replica_id, bool) or not isinstance(replica_id, int) or not 0 <= replica_id <= MAX_REPLICA:
            raise ValueError(f"replica_id must be an integer in [0, 2**64 - 1], got {replica_id!r}")
        self.replica_id = replica_id
        self._store = DotStore()
        self._pending = DotStore()

    # ----- operations ----------------------------------------------------------------

    def add(self, element: Hashable) -> None:
        """Add ``element`` under a fresh dot (also when it is already present).

        The same as joining the delta ``({element: {dot}}, {dot})`` into the state and into
        the pending delta, done in place."""
        element_key(element)
        seq = self._store.context.max_seq(self.replica_id) + 1
        if seq > MAX_SEQ:
            raise OverflowError(f"replica {self.replica_id} has used every sequence number: use a new replica id")
        dot = (self.replica_id, seq)
        for store in (self._store, self._pending):
            store.insert(element, dot)
            store.context.add(dot)

    def remove(self, element: Hashable) -> None:
        """Remove the dots of ``element`` this replica sees; nothing if it is absent.

        The same as joining the delta ``({}, dots)`` into the state and the pending delta."""
        dots = self._store.entries.get(element)
        if not dots:
            return
        for dot in list(dots):
            self._store.discard(dot)
            if dot in self._pending.owner:
                self._pending.discard(dot)
            self._pending.context.add(dot)

    # ----- reading -------------------------------------------------------------------

    def value(self) -> frozenset:
        return frozenset(self._store.entries)

    def __contains__(self, element: object) -> bool:
        return element in self._store.entries

    def __len__(self) -> int:
        return len(self._store.entries)

    def elements(self) -> list:
        """The present elements, in canonical order (integers, strings, bytes)."""
        return sorted(self._store.entries, key=element_key)

    def dots(self, element: Hashable) -> frozenset[Dot]:
        """The live dots of ``element`` (empty if absent)."""
        return frozenset(self._store.entries.get(element, ()))

    def snapshot(self) -> DotStore:
        """A copy of the full state, as an object."""
        return self._store.copy()

    # ----- replication, as objects -----------------------------------------------------

    def join(self, other: DotStore) -> None:
        """Join an already decoded state or delta (cannot fail; ``other`` is not changed)."""
        self._store.join(other)

    def take_delta(self) -> DotStore | None:
        """The joined delta of this replica's operations since the last take, or None."""
        if self._pending.is_empty():
            return None
        delta, self._pending = self._pending, DotStore()
        return delta

    # ----- replication, as bytes -------------------------------------------------------

    def state(self) -> bytes:
        return encode(STATE_KIND, VERSION, encode_body(self._store))

    def merge(self, state: bytes) -> None:
        """Join a full state received as bytes; ``DecodeError`` (and no change) if malformed."""
        self.join(decode_state(state))

    def take_deltas(self) -> list[bytes]:
        delta = self.take_delta()
        return [] if delta is None else [encode(DELTA_KIND, VERSION, encode_body(delta))]

    def apply_delta(self, delta: bytes) -> None:
        """Join a delta received as bytes; ``DecodeError`` (and no change) if malformed."""
        self.join(decode_delta(delta))

    def __repr__(self) -> str:
        return f"DeltaORSet(replica_id={self.replica_id}, elements={self.elements()!r})"
