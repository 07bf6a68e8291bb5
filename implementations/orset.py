"""A delta-state OR-Set (add-wins), after Almeida, Shoker and Baquero, "Delta state
replicated data types" (2018), the add-wins set with a causal context.

State. Every add makes a *dot* ``(replica, seq)``: the replica that made it and that
replica's count of adds so far. The state is

* a *causal context*: every dot this replica has seen, added or removed, kept as a version
  vector (``replica -> n`` means dots 1..n of that replica) plus a *dot cloud* of the dots
  seen out of order, kept as runs ``lo..hi`` (so a context costs memory per run, never per
  dot); a run joins the vector as soon as the gap before it fills;
* an *element store*: ``element -> dots`` for the adds that are still live, with each
  replica's live seqs kept sorted, so a join finds the live dots a context covers by
  bisection instead of walking the store or the context.

A remove drops the element's dots from the store and leaves nothing behind for that element:
the context alone remembers that those dots were seen, which is what stops an old add from
coming back. There are no per-element tombstones.

Join. Of two states, a dot stays if both stores hold it, or if one store holds it and the
other context has not seen it. Contexts are united. That is the whole algorithm, and it is
commutative, associative and idempotent, so deltas may arrive late, twice or out of order.
Its work is the size of the incoming message times a logarithm of the state, plus the dots
it removes (each of which some earlier message paid for when it added it).

Deltas. The delta of ``add(e)`` is the new dot in the store under ``e`` and in the context;
the delta of ``remove(e)`` is an empty store with the removed dots in the context. A replica
joins the deltas of its own operations into one pending delta that ``take_deltas`` hands out.

Peers that lie (issue 7). Dots are not authenticated, so a peer may claim to have seen any
dot. Before a message is joined (``admit``), a replica refuses it whole, with
``wire.OverLimit`` naming the limit (``implementations.limits``), if it

* names a dot of a replica (this one included) more than ``MAX_COUNTER_GAP`` beyond the
  greatest this replica has seen of it: so counters never come near overflow, and no
  context claiming this replica's dot (r, 2^64 - 1) can make every later ``add`` raise;
* would make the context name more than ``MAX_CONTEXT_REPLICAS`` replicas or hold more than
  ``MAX_CLOUD_RANGES`` runs, or the store more than ``MAX_SET_DOTS`` live dots (the same
  bounds refuse a message that alone passes them, when it is decoded).

A replica's next dot is beyond every dot of its own it has seen, so a claim of its own dots
within the gap only makes it skip counters (and a replica restored from its own deltas, or
told of them by peers after losing its state, never reuses a dot). Known limit: within the
gap a lie cannot be told from the truth. A peer claiming dots of replica R that R has not
made yet hides R's next adds from the replicas it lies to (not from R itself). Replicas that
must resist that need authenticated dots, as the task list's signed checkbox states are.

Wire (``implementations.wire``): kinds ``orset.state`` and ``orset.delta``, version 2, both
with the body ``[version_vector, cloud, entries]``:

* ``version_vector``: ``[[replica, n], ...]``, replicas ascending, ``n >= 1``;
* ``cloud``: ``[[replica, [[lo, hi], ...]], ...]``, replicas ascending, runs ascending with
  ``lo <= hi``, the first beyond the vector's ``n + 1``, each beyond the previous ``hi + 1``
  (a canonical context is compacted);
* ``entries``: ``[[element, [[replica, seq], ...]], ...]``, elements in canonical order
  (integers, then strings, then bytes; each by value), dots ascending, every dot in the
  context, no element without dots.

Equal states have equal bytes, and the decoder accepts only that one encoding. Decoding is
pure and raises only ``DecodeError``; joining an admitted state cannot fail, so a bad message
changes nothing. Elements are ``str``, ``int`` (64-bit) or ``bytes``.

The task list reuses this class for its membership set: ``decode_body``/``encode_body`` embed
a state in a larger message, ``admit`` and then ``join`` join an already decoded state.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Hashable, Iterator
from typing import Any

from sortedcontainers import SortedList

from implementations.limits import (
    MAX_CLOUD_RANGES,
    MAX_CONTEXT_REPLICAS,
    MAX_COUNTER_GAP,
    MAX_SET_DOTS,
)
from implementations.wire import DecodeError, OverLimit, decode, element_key, encode, expect_int, expect_list

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
VERSION = 2

Dot = tuple[int, int]
Run = tuple[int, int]

MAX_REPLICA = 2**64 - 1
MAX_SEQ = 2**64 - 1


class CausalContext:
    """The dots a replica has seen: a version vector plus runs of dots seen out of order."""

    __slots__ = ("cloud", "runs", "vector")

    def __init__(self) -> None:
        self.vector: dict[int, int] = {}  # replica -> n: dots (replica, 1..n) seen
        self.cloud: dict[int, list[Run]] = {}  # replica -> sorted, disjoint, non-adjacent runs beyond n + 1
        self.runs = 0  # how many runs the cloud holds, all replicas together

    def __contains__(self, dot: Dot) -> bool:
        replica, seq = dot
        if seq <= self.vector.get(replica, 0):
            return True
        runs = self.cloud.get(replica)
        if not runs:
            return False
        i = bisect_right(runs, (seq, MAX_SEQ + 1)) - 1
        return i >= 0 and runs[i][1] >= seq

    def add(self, dot: Dot) -> None:
        self.add_run(dot[0], dot[1], dot[1])

    def add_run(self, replica: int, lo: int, hi: int) -> None:
        """Dots ``lo..hi`` of ``replica`` are seen."""
        n = self.vector.get(replica, 0)
        if hi <= n:
            return
        lo = max(lo, n + 1)
        runs = self.cloud.get(replica)
        if lo == n + 1:  # the vector grows, and swallows the runs the gap no longer separates
            absorbed = 0
            if runs:
                while absorbed < len(runs) and runs[absorbed][0] <= hi + 1:
                    hi = max(hi, runs[absorbed][1])
                    absorbed += 1
                del runs[:absorbed]
                self.runs -= absorbed
                if not runs:
                    del self.cloud[replica]
            self.vector[replica] = hi
            return
        if runs is None:
            runs = self.cloud[replica] = []
        i = bisect_left(runs, (lo, 0))
        if i > 0 and runs[i - 1][1] >= lo - 1:
            i -= 1
        j = i
        while j < len(runs) and runs[j][0] <= hi + 1:
            lo, hi = min(lo, runs[j][0]), max(hi, runs[j][1])
            j += 1
        runs[i:j] = [(lo, hi)]
        self.runs += 1 - (j - i)

    def update(self, other: CausalContext) -> None:
        """Add every dot ``other`` has seen."""
        for replica, n in other.vector.items():
            self.add_run(replica, 1, n)
        for replica, runs in other.cloud.items():
            for lo, hi in runs:
                self.add_run(replica, lo, hi)

    def max_seq(self, replica: int) -> int:
        """The greatest seq of ``replica`` seen (0 if none)."""
        runs = self.cloud.get(replica)
        return runs[-1][1] if runs else self.vector.get(replica, 0)

    def replicas(self) -> set[int]:
        """Every replica some seen dot is of."""
        return set(self.vector) | set(self.cloud)

    def runs_of(self, replica: int) -> Iterator[Run]:
        """The dots of ``replica`` seen, as runs ``(lo, hi)`` (the vector's ``1..n`` first)."""
        n = self.vector.get(replica, 0)
        if n:
            yield (1, n)
        yield from self.cloud.get(replica, ())

    def is_empty(self) -> bool:
        return not self.vector and not self.cloud

    def copy(self) -> CausalContext:
        twin = CausalContext()
        twin.vector = dict(self.vector)
        twin.cloud = {r: list(runs) for r, runs in self.cloud.items()}
        twin.runs = self.runs
        return twin

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CausalContext) and (self.vector, self.cloud) == (other.vector, other.cloud)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"CausalContext(vector={self.vector}, cloud={self.cloud})"


class DotStore:
    """A causal context with the live dots of each element: a full state, or a delta.

    Invariant: every dot in ``entries`` is in ``context``; ``owner`` maps each live dot back
    to its element and ``live`` holds each replica's live seqs sorted (so a remove or a join
    touches only the dots it concerns).
    """

    __slots__ = ("context", "entries", "live", "owner")

    def __init__(self) -> None:
        self.entries: dict[Hashable, set[Dot]] = {}
        self.owner: dict[Dot, Hashable] = {}
        self.live: dict[int, SortedList] = {}
        self.context = CausalContext()

    def insert(self, element: Hashable, dot: Dot) -> None:
        """Make ``dot`` a live dot of ``element`` (the caller adds it to the context)."""
        self.entries.setdefault(element, set()).add(dot)
        self.owner[dot] = element
        seqs = self.live.get(dot[0])
        if seqs is None:
            seqs = self.live[dot[0]] = SortedList()
        seqs.add(dot[1])

    def discard(self, dot: Dot) -> None:
        element = self.owner.pop(dot)
        dots = self.entries[element]
        dots.discard(dot)
        if not dots:
            del self.entries[element]
        seqs = self.live[dot[0]]
        seqs.remove(dot[1])
        if not seqs:
            del self.live[dot[0]]

    def join(self, other: DotStore) -> None:
        """Join ``other`` into this store. ``other`` is not changed; this cannot fail."""
        # A live dot of ours that the other side has seen but no longer holds was removed there.
        for replica in other.context.replicas():
            seqs = self.live.get(replica)
            if not seqs:
                continue
            for lo, hi in list(other.context.runs_of(replica)):
                for seq in list(seqs.irange(lo, hi)):
                    if (replica, seq) not in other.owner:
                        self.discard((replica, seq))
                if replica not in self.live:
                    break
        # A live dot of theirs that we have never seen is a new add.
        for dot, element in other.owner.items():
            if dot not in self.owner and dot not in self.context:
                self.insert(element, dot)
        self.context.update(other.context)

    def copy(self) -> DotStore:
        twin = DotStore()
        twin.entries = {e: set(d) for e, d in self.entries.items()}
        twin.owner = dict(self.owner)
        twin.live = {r: SortedList(seqs) for r, seqs in self.live.items()}
        twin.context = self.context.copy()
        return twin

    def is_empty(self) -> bool:
        return not self.owner and self.context.is_empty()

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
    cloud = [[r, [list(run) for run in runs]] for r, runs in sorted(context.cloud.items()) if runs]
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


def _expect_at_most(items: list, limit: str, bound: int, where: str, what: str) -> list:
    if len(items) > bound:
        raise OverLimit(limit, f"{where}: {len(items):,} {what}")
    return items


def decode_body(body: Any, where: str) -> DotStore:
    """A ``DotStore`` from a wire body, checked whole; raises only ``DecodeError``."""
    parts = expect_list(body, where, length=3)
    store = DotStore()
    context = store.context
    vector = _expect_at_most(expect_list(parts[0], f"{where}[0]"), "MAX_CONTEXT_REPLICAS", MAX_CONTEXT_REPLICAS,
                             f"{where}[0]", "replicas in the version vector")
    cloud = _expect_at_most(expect_list(parts[1], f"{where}[1]"), "MAX_CONTEXT_REPLICAS", MAX_CONTEXT_REPLICAS,
                            f"{where}[1]", "replicas in the dot cloud")
    previous = -1
    for i, item in enumerate(vector):
        replica, n = _expect_dot(item, f"{where}[0][{i}]")
        if replica <= previous:
            raise DecodeError(f"{where}[0][{i}]: replica {replica} is out of order (ascending, no repeats)")
        previous = replica
        context.vector[replica] = n
    previous = -1
    for i, item in enumerate(cloud):
        pair = expect_list(item, f"{where}[1][{i}]", length=2)
        replica = expect_int(pair[0], f"{where}[1][{i}][0]", 0, MAX_REPLICA)
        if replica <= previous:
            raise DecodeError(f"{where}[1][{i}]: replica {replica} is out of order (ascending, no repeats)")
        previous = replica
        raw_runs = expect_list(pair[1], f"{where}[1][{i}][1]")
        if not raw_runs:
            raise DecodeError(f"{where}[1][{i}]: replica {replica} has an empty cloud")
        context.runs += len(raw_runs)
        if context.runs > MAX_CLOUD_RANGES:
            raise OverLimit("MAX_CLOUD_RANGES", f"{where}[1]: more than {MAX_CLOUD_RANGES:,} runs of dots in the cloud")
        last = context.vector.get(replica, 0) + 1  # a canonical cloud starts beyond n + 1
        runs: list[Run] = []
        for j, raw in enumerate(raw_runs):
            lo, hi = _expect_dot(raw, f"{where}[1][{i}][1][{j}]")
            if lo <= last or hi < lo:
                raise DecodeError(f"{where}[1][{i}][1][{j}]: run {lo}..{hi} is empty, out of order, adjacent to the "
                                  "previous one or belongs in the version vector")
            runs.append((lo, hi))
            last = hi + 1
        context.cloud[replica] = runs
    if len(set(context.vector) | set(context.cloud)) > MAX_CONTEXT_REPLICAS:
        raise OverLimit("MAX_CONTEXT_REPLICAS", f"{where}: the context names more than {MAX_CONTEXT_REPLICAS:,} replicas")
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
        if len(store.owner) + len(raw_dots) > MAX_SET_DOTS:
            raise OverLimit("MAX_SET_DOTS", f"{where}[2]: more than {MAX_SET_DOTS:,} dots")
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


def admit(store: DotStore, replica_id: int, incoming: DotStore, what: str) -> None:
    """Refuse (``OverLimit``) an ``incoming`` state or delta that ``store``, the state of
    replica ``replica_id``, must not join (see the module docstring). Changes nothing; its
    work is the size of ``incoming`` times a logarithm of ``store``."""
    ours, theirs = store.context, incoming.context
    new_replicas = 0
    for replica in theirs.replicas():
        known = ours.max_seq(replica)
        claimed = theirs.max_seq(replica)
        if claimed > known + MAX_COUNTER_GAP:
            whose = " (this replica's own)" if replica == replica_id else ""
            raise OverLimit("MAX_COUNTER_GAP", f"{what} claims dot ({replica}, {claimed}){whose}; "
                                               f"the greatest seen here is {known}")
        if not known:
            new_replicas += 1
    if len(ours.replicas()) + new_replicas > MAX_CONTEXT_REPLICAS:
        raise OverLimit("MAX_CONTEXT_REPLICAS", f"{what} would make the context name "
                                                f"{len(ours.replicas()) + new_replicas:,} replicas")
    if ours.runs + theirs.runs > MAX_CLOUD_RANGES:  # only then is the exact count worth its cost
        trial = ours.copy()
        trial.update(theirs)
        if trial.runs > MAX_CLOUD_RANGES:
            raise OverLimit("MAX_CLOUD_RANGES", f"{what} would leave {trial.runs:,} runs of dots in the cloud")
    if len(store.owner) + len(incoming.owner) > MAX_SET_DOTS:
        added = sum(1 for dot in incoming.owner if dot not in store.owner and dot not in ours)
        if len(store.owner) + added > MAX_SET_DOTS:
            raise OverLimit("MAX_SET_DOTS", f"{what} would leave {len(store.owner) + added:,} live dots")


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

    def admit(self, other: DotStore, what: str = "a message") -> None:
        """Refuse (``OverLimit``) a decoded state or delta this replica must not join; see the
        module docstring. Changes nothing."""
        admit(self._store, self.replica_id, other, what)

    def join(self, other: DotStore) -> None:
        """Join an already decoded and admitted state or delta (cannot fail; ``other`` is
        not changed)."""
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
        """Join a full state received as bytes; ``DecodeError`` (and no change) if malformed
        or over a limit."""
        store = decode_state(state)
        self.admit(store, STATE_KIND)
        self.join(store)

    def take_deltas(self) -> list[bytes]:
        delta = self.take_delta()
        return [] if delta is None else [encode(DELTA_KIND, VERSION, encode_body(delta))]

    def apply_delta(self, delta: bytes) -> None:
        """Join a delta received as bytes; ``DecodeError`` (and no change) if malformed or
        over a limit."""
        store = decode_delta(delta)
        self.admit(store, DELTA_KIND)
        self.join(store)

    def __repr__(self) -> str:
        return f"DeltaORSet(replica_id={self.replica_id}, elements={self.elements()!r})"
