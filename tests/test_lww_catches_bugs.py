"""The LWW machine catches realistic register bugs, each with a short trace.

Each bug is patched into a subclass of the real implementation (or, for the upstream
vector-clock register, written out) and registered inline, never through
``machines/adapters``, so the normal suite does not run it.
"""

from __future__ import annotations

import blake3
import pytest
from hypothesis import Phase, settings

from harness import Implementation, Step, Trace, expect_caught, replay
from implementations.lww import Entry, HybridLogicalClock, LWWRegister, decode_delta
from implementations.wire import decode, encode, expect_int, expect_list
from machines.adapters.lww_hlc import HLC, HLCRegisterReplica
from machines.lww import LWWMachine

#: The ci profile, one bug reported per run, and no "explain" phase (it would double the time).
CI = settings(
    settings.get_profile("ci"),
    max_examples=60,  # pinned, with the step count: tuning the ci profile must not reshuffle these searches
    stateful_step_count=40,
    report_multiple_bugs=False,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)
#: Below every pinned step count: the bound says the shrinker did its work.
MAX_TRACE_STEPS = 12
#: Bugs that need more than ``CI``'s examples: a clock that forgets a delta shows only when a
#: replica whose clock is behind writes right after receiving a later write (found at about
#: 100 examples after the transport modules joined the constants Hypothesis draws from).
EXAMPLES = {"delta-forgets-the-clock": 200}


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


class DeltaForgetsTheClock(LWWRegister):
    """(e) A delta is joined without telling the clock: writes after it can be stamped below it."""

    __slots__ = ()

    def apply_delta(self, delta: bytes) -> None:
        entry = decode_delta(delta)
        if self._entry is None or entry.key > self._entry.key:
            self._entry = entry


class VectorClockHashTieBreak:
    """(d) Upstream: a register ordered by vector clocks. Of two concurrent writes, the parity
    of a hash of the merged clock picks the smaller writer (even) or the greater (odd). That is
    symmetric, so two replicas converge; with three concurrent writers the result depends on
    the order of the merges (not associative), and it is not the model's order anyway."""

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
    "delta-forgets-the-clock": replica_of(DeltaForgetsTheClock),
    "vector-clock-hash-tie-break": VectorClockHashTieBreak,
}
#: The step count each search is pinned to. Finding a bug takes a few examples; shrinking it
#: is nearly all of a test's time, and costs more the longer the first failing run: each bug
#: gets the count that finds it cheapest within the first half of its 60 examples (measured
#: over 15 to 40 steps; see benchmarks/README.md, "The suite's cost").
STEPS = {
    "smaller-writer-wins": 25,
    "strictly-greater-timestamp-wins": 25,
    "wall-clock-only": 20,
    "delta-forgets-the-clock": 20,  # after the node processes joined the constant pool, 40 steps missed it in 200
    "vector-clock-hash-tie-break": 30,
}


@pytest.mark.parametrize(
    ("bug", "level"),
    [
        ("smaller-writer-wins", "exact"),
        ("strictly-greater-timestamp-wins", "exact"),
        ("wall-clock-only", "exact"),
        ("delta-forgets-the-clock", "exact"),
        ("vector-clock-hash-tie-break", "exact"),
    ],
)
def test_the_lww_machine_catches(bug, level, tmp_path, monkeypatch):
    buggy = Implementation("lww", f"buggy-{bug}", BUGS[bug], level=level)
    budget = settings(CI, max_examples=EXAMPLES.get(bug, CI.max_examples), stateful_step_count=STEPS[bug])
    steps = expect_caught(LWWMachine, buggy, hypothesis_settings=budget, trace_dir=tmp_path).trace.steps
    assert len(steps) <= MAX_TRACE_STEPS, [s.describe() for s in steps]


# ----- explicit scenarios, replayed as traces -------------------------------------------------

BEHIND = -1_000_000  # a replica whose clock is a millisecond behind

SCENARIOS = {
    # A replica behind overwrites a write it has seen: its write must still win.
    "wall-clock-only": [
        Step("start", {"replicas": 2, "skews_ns": [0, BEHIND]}),
        Step("write", {"replica": 0, "value": "old"}),
        Step("sync_full", {"source": 0, "target": 1}),
        Step("write", {"replica": 1, "value": "new"}),
        Step("sync_full", {"source": 1, "target": 0}),
    ],
    # The same through a delta.
    "delta-forgets-the-clock": [
        Step("start", {"replicas": 2, "skews_ns": [0, BEHIND]}),
        Step("write_and_broadcast", {"replica": 0, "value": "old"}),
        Step("deliver", {"message": 0}),
        Step("write", {"replica": 1, "value": "new"}),
        Step("sync_full", {"source": 1, "target": 0}),
    ],
}


@pytest.mark.parametrize("bug", sorted(SCENARIOS))
def test_explicit_scenario_passes_for_the_real_register_and_fails_for(bug):
    trace = Trace("lww", "hlc", tuple(SCENARIOS[bug]))
    assert str(replay(trace, LWWMachine, HLC)) == "passed"
    buggy = Implementation("lww", f"buggy-{bug}", BUGS[bug], level="exact")
    outcome = replay(trace, LWWMachine, buggy)
    assert (outcome.status, outcome.step) == ("failed", 4), str(outcome)
    assert "the model says 'new'" in outcome.message


def test_checked_only_as_convergent_the_upstream_register_still_resurrects_a_replaced_write():
    """Found by the machine at level ``convergent`` (about a minute of shrinking, so the
    shrunk trace is replayed here): replica 4 overwrites replica 3's write, but merging
    states keeps only each side's winner, and the hash tie-break brings replica 3's back."""
    steps = [
        Step("start", {"replicas": 5, "skews_ns": [0, 0, 0, 0, 0]}),
        Step("write", {"replica": 3, "value": "a"}),
        Step("broadcast", {"source": 3}),
        Step("duplicate", {"message": 0}),
        Step("write_and_broadcast", {"replica": 1, "value": "b"}),
        Step("write_and_broadcast", {"replica": 4, "value": "a"}),
        Step("deliver", {"message": 3}),
        Step("write", {"replica": 4, "value": "a"}),
        Step("write", {"replica": 4, "value": "b"}),
        Step("sync_all", {}),
    ]
    trace = Trace("lww", "hlc", tuple(steps))
    assert str(replay(trace, LWWMachine, HLC)) == "passed"
    buggy = Implementation("lww", "buggy-vector-clock-hash-tie-break", VectorClockHashTieBreak, level="convergent")
    outcome = replay(trace, LWWMachine, buggy)
    assert (outcome.status, outcome.step) == ("failed", 9), str(outcome)
    assert "a later write has replaced" in outcome.message
