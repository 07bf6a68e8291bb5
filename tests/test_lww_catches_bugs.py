"""The LWW machine catches realistic register bugs, each with a short trace.

The bugs are the catalogue's (``tests/bugs/lww.py``), each searched for with the budget
measured for it under ten seeds (``python -m tests.bugs.sweep``); explicit scenarios and
the upstream register's convergent-level defect are replayed as traces.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import Implementation, Step, Trace, load_trace, replay
from machines.adapters.lww_hlc import HLC
from machines.lww import LWWMachine
from tests.bugs.catalogue import bug as catalogued
from tests.bugs.hunt import assert_caught, robust
from tests.bugs.lww import VectorClockHashTieBreak

BUGS = robust("lww")


@pytest.mark.parametrize("bug", BUGS, ids=[b.name for b in BUGS])
def test_the_lww_machine_catches(bug):
    assert_caught(bug)


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
    with catalogued(f"lww-{bug}").plant() as buggy:
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


@pytest.mark.parametrize("name", ["lww-counter-at-max-poisons-writes", "lww-clock-far-ahead-is-refused"])
def test_committed_hostile_traces_fail_against_a_register_that_believes_every_timestamp(name):
    trace = load_trace(Path(__file__).resolve().parent.parent / "regressions" / "traces" / f"{name}.json")
    assert replay(trace, LWWMachine, HLC).status == "passed"
    with catalogued("lww-believes-every-timestamp").plant() as buggy:
        assert replay(trace, LWWMachine, buggy).status == "failed"
