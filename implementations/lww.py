"""A last-writer-wins register stamped by a hybrid logical clock.

``LWWRegister`` holds one entry: the greatest write it has seen, compared by
``(wall_ns, counter, writer)``. A write is stamped by a ``HybridLogicalClock``, which holds
the greatest timestamp its replica has seen (issued or received) and issues
``(max(now, seen_wall), seen_counter + 1 if the wall did not move else 0)``, or
``(seen_wall + 1, 0)`` when the counter would pass ``MAX_HLC_COUNTER``. So every write is
greater than every write its replica had seen, even when that replica's clock is behind.

Several registers of one replica may share one clock (the fields of a task, say): pass the
same ``HybridLogicalClock`` to each.

Peers that lie (issue 7). A write received with a wall time more than
``MAX_CLOCK_AHEAD_NS`` ahead of the receiver's clock, or a counter above
``MAX_HLC_COUNTER``, is refused whole with ``wire.OverLimit`` naming the limit (``admit``;
the clock is read when a message arrives for that check only). Without it, a timestamp
``(2^64 - 1, 2^64 - 1)`` made every later ``write`` of the receiver raise OverflowError,
and a peer whose clock is far ahead dragged every later timestamp up to its wall time, as
deployed HLCs bound the offset they accept. Within the bound, a peer a few minutes ahead
still drags timestamps by that much; a write accepted at one replica may be refused by one
whose clock is more than the bound behind, until that clock catches up (a re-delivery or a
full sync then carries it).

Values are ``None``, ``int`` (in ``[-2**63, 2**64 - 1]``), ``str`` or ``bytes``.

Wire (see ``implementations.wire``): a full state is ``["lww.state", 1, body]`` and a
delta is ``["lww.delta", 1, body]``, where ``body`` is ``[wall_ns, counter, writer,
value]``, or ``[]`` for a state that was never written. Decoding (``decode_state``,
``decode_delta``, ``entry_from_body``) is pure and raises only ``DecodeError``; ``join``
applies a decoded entry and cannot fail. Two writes with the same ``(wall_ns, counter,
writer)`` are the same write and a second copy is ignored (so a forged copy with another
value would stay wherever it arrived first: writes are not authenticated here).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from implementations.limits import MAX_CLOCK_AHEAD_NS, MAX_HLC_COUNTER
from implementations.wire import DecodeError, OverLimit, decode, encode, expect_int, expect_list
from models.clock import Clock

STATE_KIND = "lww.state"
DELTA_KIND = "lww.delta"
VERSION = 1

U64_MAX = 2**64 - 1
I64_MIN = -(2**63)

Value = None | int | str | bytes


class Entry(NamedTuple):
    """A write as a register holds it. Compare writes with ``key``, never the whole tuple."""

    wall_ns: int
    counter: int
    writer: int
    value: Value

    @property
    def key(self) -> tuple[int, int, int]:
        return (self.wall_ns, self.counter, self.writer)


class HybridLogicalClock:
    """The greatest timestamp ``(wall_ns, counter)`` a replica has seen, and new ones above it."""

    __slots__ = ("clock", "latest")

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.latest: tuple[int, int] | None = None

    def observe(self, timestamp: tuple[int, int]) -> None:
        """A write stamped ``timestamp`` was seen (merged, received or made here)."""
        if self.latest is None or timestamp > self.latest:
            self.latest = (timestamp[0], timestamp[1])

    def issue(self) -> tuple[int, int]:
        """A timestamp greater than every one seen, from the clock's reading now."""
        now = self.clock.now()
        latest = self.latest
        # The clock moved past everything seen: a fresh wall time. Otherwise count up on the greatest seen.
        stamp = (now, 0) if latest is None or now > latest[0] else (latest[0], latest[1] + 1)
        if stamp[1] > MAX_HLC_COUNTER:  # peers refuse larger counters: move the wall time on instead
            stamp = (stamp[0] + 1, 0)
        if not (0 <= stamp[0] <= U64_MAX and stamp[1] <= U64_MAX):
            raise OverflowError(f"hybrid logical clock: timestamp {stamp} does not fit in two unsigned 64-bit integers")
        self.latest = stamp
        return stamp


def check_value(value: Any) -> Value:
    """``value`` if a register can hold it, else ``TypeError``/``ValueError`` saying why."""
    if value is None or isinstance(value, (str, bytes)):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        if not I64_MIN <= value <= U64_MAX:
            raise ValueError(f"an LWW register holds integers in [{I64_MIN}, {U64_MAX}], got {value}")
        return value
    raise TypeError(f"an LWW register holds None, int, str or bytes, got {type(value).__name__} {value!r:.60}")


def entry_to_body(entry: Entry | None) -> list[Any]:
    """The wire body of ``entry`` (``[]`` for none)."""
    return [] if entry is None else [entry.wall_ns, entry.counter, entry.writer, entry.value]


def entry_from_body(body: Any, where: str, *, allow_empty: bool) -> Entry | None:
    """The entry a wire body holds; pure, raises only ``DecodeError`` naming ``where``."""
    try:
        return _entry_from_body(body, allow_empty)
    except DecodeError as error:  # the place is named only when something is wrong (a state holds many entries)
        raise DecodeError(f"{where}{error}") from None


def _entry_from_body(body: Any, allow_empty: bool) -> Entry | None:
    """``entry_from_body`` with each error's place relative to the body (``"[0] (wall_ns): ..."``)."""
    items = expect_list(body, "")
    if not items and allow_empty:
        return None
    if len(items) != 4:
        raise DecodeError(f": expected 4 items [wall_ns, counter, writer, value], got {len(items)}")
    wall_ns = expect_int(items[0], "[0] (wall_ns)")
    counter = expect_int(items[1], "[1] (counter)")
    writer = expect_int(items[2], "[2] (writer)")
    value = items[3]
    if not (value is None or isinstance(value, (str, bytes)) or (isinstance(value, int) and not isinstance(value, bool))):
        raise DecodeError(f"[3] (value): expected nil, int, str or bytes, got {type(value).__name__} {value!r:.60}")
    return Entry(wall_ns, counter, writer, value)


def admit(entry: Entry | None, now_ns: int, where: str) -> None:
    """Refuse (``OverLimit``) a received write whose timestamp is out of bounds for a
    receiver whose clock reads ``now_ns`` (see the module docstring). Changes nothing."""
    if entry is None:
        return
    if entry.wall_ns > now_ns + MAX_CLOCK_AHEAD_NS:
        raise OverLimit("MAX_CLOCK_AHEAD_NS", f"{where}: wall time {entry.wall_ns} is "
                                              f"{entry.wall_ns - now_ns:,} ns ahead of this replica's clock")
    if entry.counter > MAX_HLC_COUNTER:
        raise OverLimit("MAX_HLC_COUNTER", f"{where}: counter {entry.counter}")


def decode_state(data: bytes) -> Entry | None:
    """The entry of a full state (None for a register never written), or ``DecodeError``."""
    return entry_from_body(decode(data, STATE_KIND, VERSION), f"{STATE_KIND}: body", allow_empty=True)


def decode_delta(data: bytes) -> Entry:
    """The write a delta carries, or ``DecodeError``."""
    entry = entry_from_body(decode(data, DELTA_KIND, VERSION), f"{DELTA_KIND}: body", allow_empty=False)
    assert entry is not None
    return entry


class LWWRegister:
    """One replica of a last-writer-wins register."""

    __slots__ = ("_entry", "_pending", "hlc", "replica_id")

    def __init__(self, replica_id: int, clock: Clock, hlc: HybridLogicalClock | None = None) -> None:
        if isinstance(replica_id, bool) or not isinstance(replica_id, int) or not 0 <= replica_id <= U64_MAX:
            raise ValueError(f"an LWW register's replica_id must be an int in [0, 2**64 - 1], got {replica_id!r}")
        self.replica_id = replica_id
        self.hlc = hlc if hlc is not None else HybridLogicalClock(clock)
        self._entry: Entry | None = None
        self._pending: Entry | None = None  # greatest local write not yet taken as a delta

    # ----- local operations -----------------------------------------------------------

    def write(self, value: Value) -> None:
        value = check_value(value)
        wall_ns, counter = self.hlc.issue()
        entry = Entry(wall_ns, counter, self.replica_id, value)
        self._entry = entry  # the clock issued a timestamp above every write seen
        self._pending = entry

    def value(self) -> Value:
        return None if self._entry is None else self._entry.value

    @property
    def entry(self) -> Entry | None:
        """The greatest write seen, or None."""
        return self._entry

    # ----- replication ----------------------------------------------------------------

    def admit(self, entry: Entry | None, where: str = "a message") -> None:
        """Refuse (``OverLimit``) a decoded write this replica must not join (its timestamp
        is out of bounds now). Changes nothing."""
        admit(entry, self.hlc.clock.now(), where)

    def join(self, entry: Entry | None) -> None:
        """Join a decoded, admitted write: it wins if its ``(wall_ns, counter, writer)`` is greater."""
        if entry is None:
            return
        self.hlc.observe((entry.wall_ns, entry.counter))
        current = self._entry
        if current is None or entry.key > current.key:
            self._entry = entry

    def state(self) -> bytes:
        return encode(STATE_KIND, VERSION, entry_to_body(self._entry))

    def merge(self, state: bytes) -> None:
        entry = decode_state(state)
        self.admit(entry, STATE_KIND)
        self.join(entry)

    def take_deltas(self) -> list[bytes]:
        """The greatest write made here since the last call (earlier ones are below it)."""
        pending, self._pending = self._pending, None
        return [] if pending is None else [encode(DELTA_KIND, VERSION, entry_to_body(pending))]

    def apply_delta(self, delta: bytes) -> None:
        entry = decode_delta(delta)
        self.admit(entry, DELTA_KIND)
        self.join(entry)

    def __repr__(self) -> str:
        return f"LWWRegister(replica_id={self.replica_id}, entry={self._entry!r})"
