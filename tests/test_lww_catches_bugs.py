"""The LWW machine catches realistic register bugs, each with a short trace.

Each bug is patched into a subclass of the real implementation (or, for the upstream
vector-clock register, written out) and registered inline, never through
``machines/adapters``, so the normal suite does not run it.
"""

from __future__ import annotations

import blake3
import pytest
from hypothesis import Phase, settings

from harness import Implementation, load_trace, run_machine
from implementations.lww import Entry, HybridLogicalClock, LWWRegister
from implementations.wire import decode, encode, expect_int, expect_list
from machines.adapters.lww_hlc import HLCRegisterReplica
from machines.lww import LWWMachine

#: The ci profile, one bug reported per run, and no "explain" phase (it would double the time).
CI = settings(
    settings.get_profile("ci"),
    report_multiple_bugs=False,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)
MAX_TRACE_STEPS = 20


class SmallerWriterWins(LWWRegister):
    """(a) Equal timestamps broken the wrong way: the smaller writer id wins."""

    __slots__ = ()

    def join(self, entry: Entry | None) -> None:
        if entry is None:
            return
        self.hlc.observe((entry.wall_ns, entry.counter))
        current = self._entry
        if current is None or (entry.wall_ns, entry.counter, -entry.writer) > (current.wall_ns, current.counter, -current.writer):
            self._entry = entry


class StrictlyGreaterTimestampWins(LWWRegister):
    """(b) Upstream: a received write wins only with a strictly greater timestamp."""

    __slots__ = ()

    def join(self, entry: Entry | None) -> None:
        if entry is None:
            return
        self.hlc.observe((entry.wall_ns, entry.counter))
        current = self._entry
        if current is None or (entry.wall_ns, entry.counter) > (current.wall_ns, current.counter):
            self._entry = entry


class WallClockOnly(HybridLogicalClock):
    """(c) A "hybrid" clock that forgets what it has seen: every write is stamped (now, 0)."""

    __slots__ = ()

    def issue(self) -> tuple[int, int]:
        return (self.clock.now(), 0)


class VectorClockHashTieBreak:
    """(d) Upstream: a register ordered by vector clocks; concurrent writes are arbitrated by
    the parity of a hash of the merged clock (local if even, remote if odd). Convergent for two
    writers, but with three concurrent writers the winner depends on the order of merges."""

    def __init__(self, replica_id: int, clock) -> None:
        self.replica_id = replica_id
        self.vc: dict[int, int] = {}
        self.current = None
        self.pending = False

    def write(self, value) -> None:
        self.vc[self.replica_id] = self.vc.get(self.replica_id, 0) + 1
        self.current = value
        self.pending = True

    def value(self):
        return self.current

    def _encode(self, kind: str) -> bytes:
        value = self.current
        return encode(kind, 1, [sorted([k, v] for k, v in self.vc.items()), value])

    def _join(self, data: bytes, kind: str) -> None:
        body = decode(data, kind, 1)
        vc = {expect_int(k, "vc"): expect_int(v, "vc") for k, v in (expect_list(p, "vc", 2) for p in expect_list(body[0], "vc"))}
        value = body[1]
        keys = self.vc.keys() | vc.keys()
        theirs_newer = all(vc.get(k, 0) >= self.vc.get(k, 0) for k in keys)
        ours_newer = all(self.vc.get(k, 0) >= vc.get(k, 0) for k in keys)
        merged = {k: max(self.vc.get(k, 0), vc.get(k, 0)) for k in keys}
        if theirs_newer and not ours_newer:
            self.current = value
        elif not ours_newer:  # concurrent: a hash of the merged clock picks a side
            digest = blake3.blake3(repr(sorted(merged.items())).encode()).digest()
            if digest[0] % 2:
                self.current = value
        self.vc = merged

    def state(self) -> bytes:
        return self._encode("vclww.state")

    def merge(self, state: bytes) -> None:
        self._join(state, "vclww.state")

    def take_deltas(self) -> list[bytes]:
        pending, self.pending = self.pending, False
        return [self._encode("vclww.state")] if pending else []

    def apply_delta(self, delta: bytes) -> None:
        self._join(delta, "vclww.state")


def replica_of(register_class, hlc_class=HybridLogicalClock):
    def make(replica_id, clock):
        replica = HLCRegisterReplica(replica_id, clock)
        replica.register = register_class(replica_id, clock, hlc_class(clock))
        return replica

    return make


BUGS = {
    "smaller-writer-wins": replica_of(SmallerWriterWins),
    "strictly-greater-timestamp-wins": replica_of(StrictlyGreaterTimestampWins),
    "wall-clock-only": replica_of(LWWRegister, WallClockOnly),
    "vector-clock-hash-tie-break": VectorClockHashTieBreak,
}


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_the_lww_machine_catches(bug, tmp_path, monkeypatch):
    monkeypatch.setenv("MBT_TRACE_DIR", str(tmp_path))
    buggy = Implementation("lww", f"buggy-{bug}", BUGS[bug], level="exact")
    with pytest.raises(AssertionError) as failure:
        run_machine(LWWMachine, buggy, hypothesis_settings=CI)
    traces = list(tmp_path.glob("lww-*.json"))
    assert len(traces) == 1, traces
    steps = load_trace(traces[0]).steps
    assert len(steps) <= MAX_TRACE_STEPS, [s.describe() for s in steps]
    assert "first divergence" in "\n".join(getattr(failure.value, "__notes__", []))
