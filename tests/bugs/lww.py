"""LWW register bugs: the order of writes and the hybrid logical clock that stamps them."""

from __future__ import annotations

import blake3

from implementations.lww import Entry, HybridLogicalClock, LWWRegister, decode_delta
from implementations.wire import decode, encode, expect_int, expect_list
from machines.adapters.lww_hlc import HLCRegisterReplica
from tests.bugs.catalogue import Bug, variant


class SmallerWriterWins(LWWRegister):
    """Equal timestamps broken the wrong way: the smaller writer id wins."""

    __slots__ = ()

    def join(self, entry: Entry | None) -> None:
        if entry is None:
            return
        self.hlc.observe((entry.wall_ns, entry.counter))
        current = self._entry
        if current is None or (entry.wall_ns, entry.counter, -entry.writer) > (current.wall_ns, current.counter, -current.writer):
            self._entry = entry


class StrictlyGreaterTimestampWins(LWWRegister):
    """Upstream: a received write wins only with a strictly greater timestamp."""

    __slots__ = ()

    def join(self, entry: Entry | None) -> None:
        if entry is None:
            return
        self.hlc.observe((entry.wall_ns, entry.counter))
        current = self._entry
        if current is None or (entry.wall_ns, entry.counter) > (current.wall_ns, current.counter):
            self._entry = entry


class WallClockOnly(HybridLogicalClock):
    """A "hybrid" clock that forgets what it has seen: every write is stamped (now, 0)."""

    __slots__ = ()

    def issue(self) -> tuple[int, int]:
        return (self.clock.now(), 0)


class DeltaForgetsTheClock(LWWRegister):
    """A delta is joined without telling the clock: writes after it can be stamped below it."""

    __slots__ = ()

    def apply_delta(self, delta: bytes) -> None:
        entry = decode_delta(delta)
        if self._entry is None or entry.key > self._entry.key:
            self._entry = entry


class NoCounterBump(HybridLogicalClock):
    """When the clock has not moved past the greatest timestamp seen, the new write reuses
    that timestamp instead of counting one up: it ties with a write it saw, and loses the
    tie to a greater writer id."""

    __slots__ = ()

    def issue(self) -> tuple[int, int]:
        now, latest = self.clock.now(), self.latest
        stamp = (now, 0) if latest is None or now > latest[0] else latest  # BUG: (latest[0], latest[1] + 1)
        self.latest = stamp
        return stamp


class ObservesWallOnly(HybridLogicalClock):
    """``observe`` keeps the greatest wall time seen but not its counter: after a write
    stamped (w, 5) arrives, a local write at wall time w is stamped (w, 1), below it."""

    __slots__ = ()

    def observe(self, timestamp: tuple[int, int]) -> None:
        if self.latest is None or timestamp[0] > self.latest[0]:  # BUG: compares wall times only
            self.latest = (timestamp[0], 0)


class FreshWallOnTie(HybridLogicalClock):
    """A fresh wall time is taken when the clock reads *at least* the greatest wall time
    seen (``>=`` for ``>``): two writes in one nanosecond get the same stamp, and a write
    after a later-counted one goes back to counter 0."""

    __slots__ = ()

    def issue(self) -> tuple[int, int]:
        now, latest = self.clock.now(), self.latest
        stamp = (now, 0) if latest is None or now >= latest[0] else (latest[0], latest[1] + 1)  # BUG: >=
        self.latest = stamp
        return stamp


class PendingKeepsFirstWrite(LWWRegister):
    """The pending delta keeps the first write since the last broadcast, not the last one:
    the others receive a value this replica already overwrote."""

    __slots__ = ()

    def write(self, value) -> None:
        pending = self._pending
        super().write(value)
        if pending is not None:
            self._pending = pending  # BUG: the greatest local write must be sent


class VectorClockHashTieBreak:
    """Upstream: a register ordered by vector clocks; of two concurrent writes the parity of
    a hash of the merged clock picks a side (symmetric, but not associative, and not the
    model's order)."""

    KIND = "vclww.state"

    def __init__(self, replica_id: int, clock) -> None:
        self.replica_id = replica_id
        self.vc: dict[int, int] = {}
        self.current = None
        self.writer = -1
        self.pending = False

    def write(self, value) -> None:
        self.vc[self.replica_id] = self.vc.get(self.replica_id, 0) + 1
        self.current, self.writer, self.pending = value, self.replica_id, True

    def value(self):
        return self.current

    def state(self) -> bytes:
        return encode(self.KIND, 1, [sorted([k, v] for k, v in self.vc.items()), self.writer, self.current])

    def merge(self, state: bytes) -> None:
        body = decode(state, self.KIND, 1)
        vc = {expect_int(k, "vc"): expect_int(v, "vc") for k, v in (expect_list(p, "vc", 2) for p in expect_list(body[0], "vc"))}
        writer, value = expect_int(body[1], "writer", lo=-1), body[2]
        keys = self.vc.keys() | vc.keys()
        theirs_newer = all(vc.get(k, 0) >= self.vc.get(k, 0) for k in keys)
        ours_newer = all(self.vc.get(k, 0) >= vc.get(k, 0) for k in keys)
        merged = {k: max(self.vc.get(k, 0), vc.get(k, 0)) for k in keys}
        if theirs_newer and not ours_newer:
            self.current, self.writer = value, writer
        elif not ours_newer:  # concurrent: a hash of the merged clock picks a side
            odd = blake3.blake3(repr(sorted(merged.items())).encode()).digest()[0] % 2
            if (writer > self.writer) == bool(odd):
                self.current, self.writer = value, writer
        self.vc = merged

    def take_deltas(self) -> list[bytes]:
        pending, self.pending = self.pending, False
        return [self.state()] if pending else []

    def apply_delta(self, delta: bytes) -> None:
        self.merge(delta)


class BelievesEveryTimestamp(LWWRegister):
    """Issue 7, defect 7: every well-formed write is joined, so a timestamp
    (2^64 - 1, 2^64 - 1) makes every later write raise OverflowError, and a clock far ahead
    drags every later timestamp there."""

    __slots__ = ()

    def admit(self, entry, where: str = "a message") -> None:
        pass  # BUG: no bound on the timestamps peers send


def replica_of(register_class=LWWRegister, hlc_class=HybridLogicalClock):
    def make(replica_id, clock):
        replica = HLCRegisterReplica(replica_id, clock)
        replica.register = register_class(replica_id, clock, hlc_class(clock))
        return replica

    return make


def _bug(name, description, kind, make, involves=()):
    return Bug(f"lww-{name}", "lww", description, kind, variant("lww", name, make), correct="hlc",
               involves=frozenset(involves))


BUGS = [
    _bug("smaller-writer-wins", "equal timestamps: the smaller writer id wins", "tie-break", replica_of(SmallerWriterWins)),
    _bug("strictly-greater-timestamp-wins", "a received write wins only with a strictly greater timestamp, "
         "so equal timestamps keep whichever arrived first", "tie-break", replica_of(StrictlyGreaterTimestampWins)),
    _bug("wall-clock-only", "writes are stamped with the wall clock alone, below writes already seen",
         "timestamp-source", replica_of(LWWRegister, WallClockOnly)),
    _bug("delta-forgets-the-clock", "a delta is joined without the clock observing it", "version-counter",
         replica_of(DeltaForgetsTheClock)),
    _bug("vector-clock-hash-tie-break", "vector clocks with a hash-parity tie-break (upstream)", "tie-break",
         VectorClockHashTieBreak),
    _bug("no-counter-bump", "a write at a wall time already seen reuses the greatest timestamp instead of counting up",
         "version-counter", replica_of(LWWRegister, NoCounterBump)),
    _bug("observes-wall-only", "the clock keeps the greatest wall time seen but drops its counter", "version-counter",
         replica_of(LWWRegister, ObservesWallOnly)),
    _bug("fresh-wall-on-tie", "a fresh wall time when the clock reads >= (not >) the greatest seen", "off-by-one",
         replica_of(LWWRegister, FreshWallOnTie)),
    _bug("pending-keeps-first-write", "the delta sent carries the first local write since the last one, not the last",
         "lost-update", replica_of(PendingKeepsFirstWrite)),
    _bug("believes-every-timestamp", "a peer's timestamp is joined unchecked: one at 2^64 - 1, or a clock far ahead, "
         "poisons every later write", "believes-a-lie", replica_of(BelievesEveryTimestamp), involves=("hostile",)),
]
