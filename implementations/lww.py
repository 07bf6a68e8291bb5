"""A last-writer-wins register stamped by a hybrid logical clock.

``LWWRegister`` holds one entry: the greatest write it has seen, compared by
``(wall_ns, counter, writer)``. A write is stamped by a ``HybridLogicalClock``, which holds
the greatest timestamp its replica has seen (issued or received) and issues
``(max(now, seen_wall), seen_counter + 1 if the wall did not move else 0)``. So every write
is greater than every write its replica had seen, even when that replica's clock is
behind. Physical time is read only when a write is made, never when a message arrives.

Several registers of one replica may share one clock (the fields of a task, say): pass the
same ``HybridLogicalClock`` to each.

Known limit, as in the model: a peer whose clock is far ahead (or a forged timestamp) drags
every later timestamp of every replica that sees it up to its wall time. Deployed HLCs often
refuse timestamps more than a bound ahead of their own clock; this one does not.

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

from implementations.wire import DecodeError, decode, encode, expect_int, expect_list
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
    items = expect_list(body, where)
    if not items and allow_empty:
        return None
    if len(items) != 4:
        raise DecodeError(f"{where}: expected 4 items [wall_ns, counter, writer, value], got {len(items)}")
    wall_ns = expect_int(items[0], f"{where}[0] (wall_ns)")
    counter = expect_int(items[1], f"{where}[1] (counter)")
    writer = expect_int(items[2], f"{where}[2] (writer)")
    value = items[3]
    if not (value is None or isinstance(value, (str, bytes)) or (isinstance(value, int) and not isinstance(value, bool))):
        raise DecodeError(f"{where}[3] (value): expected nil, int, str or bytes, got {type(value).__name__} {value!r:.60}")
    return Entry(wall_ns, counter, writer, value)


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

    def join(self, entry: Entry | None) -> None:
        """Join a decoded write: it wins if its ``(wall_ns, counter, writer)`` is greater."""
        if entry is None:
            return
        self.hlc.observe((entry.wall_ns, entry.counter))
        current = self._entry
        if current is None or entry.key > current.key:
            self._entry = entry

    def state(self) -> bytes:
        return encode(STATE_KIND, VERSION, entry_to_body(self._entry))

    def merge(self, state: bytes) -> None:
        self.join(decode_state(state))

    def take_deltas(self) -> list[bytes]:
        """The greatest write made here since the last call (earlier ones are below it)."""
        pending, self._pending = self._pending, None
        return [] if pending is None else [encode(DELTA_KIND, VERSION, entry_to_body(pending))]

    def apply_delta(self, delta: bytes) -> None:
        self.join(decode_delta(delta))

    def __repr__(self) -> str:
        return f"LWWRegister(replica_id={self.replica_id}, entry={self._entry!r})"
