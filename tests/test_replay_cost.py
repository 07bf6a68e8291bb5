"""Replay costs what the machine's steps cost, and no more: counted in calls, never timed.

Replaying 2,000 steps of a long run took 8 s and 8,000 steps over two minutes: after every
step the replicated machines re-evaluated the model for every replica from its whole
history, and the OR-Set model scanned that history once per element. These tests count the
work so the fix cannot silently regress.
"""

from __future__ import annotations

import sys
from collections import Counter

from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

from harness import Implementation, Step, Trace, TracedMachine, load_trace, replay, save_trace
from harness.replay import walk
from machines.adapters.orset_delta import DELTA_STATE
from machines.orset import ORSetMachine
from models import orset


def calls_made(function, *args) -> Counter:
    """Every Python and C function call ``function(*args)`` makes, by name."""
    counted: Counter = Counter()

    def profile(frame, event, arg):
        if event == "call":
            counted[frame.f_code.co_qualname] += 1
        elif event == "c_call":
            counted[getattr(arg, "__qualname__", "?")] += 1

    sys.setprofile(profile)
    try:
        function(*args)
    finally:
        sys.setprofile(None)
    return counted


class Tally:
    def __init__(self, replica_id, clock) -> None:
        self.count = 0


class TallyMachine(TracedMachine):
    """Steps that cost the same whatever came before: what is left is the framework's own work."""

    name = "test-tally"

    @initialize()
    def start(self) -> None:
        self.do("start")

    def step_start(self) -> None:
        self.tally, self.model = self.implementation.make_replica(0, None), 0

    @rule(by=st.integers(0, 3))
    def add(self, by: int) -> None:
        self.do("add", by=by)

    def step_add(self, by: int) -> None:
        self.tally.count += by
        self.model += by

    def check(self) -> None:
        assert self.tally.count == self.model


TALLY = Implementation("test-tally", "tally", Tally)


def tally_trace(steps: int) -> Trace:
    return Trace("test-tally", "tally", (Step("start"), *(Step("add", {"by": i % 4}) for i in range(steps))))


def test_the_framework_does_constant_work_per_step(tmp_path):
    small, large = tally_trace(500), tally_trace(2000)
    for work in (lambda t: replay(t, TallyMachine, TALLY), lambda t: walk(t, TallyMachine, TALLY),
                 lambda t: load_trace(save_trace(t, tmp_path))):
        ratio = sum(calls_made(work, large).values()) / sum(calls_made(work, small).values())
        assert ratio < 4.2, ratio  # four times the steps, four times the work (plus a constant)


def orset_trace(clock_steps: int) -> Trace:
    """Adds on three replicas, then many steps that change no history (clock advances)."""
    adds = [Step("add", {"replica": i % 3, "element": f"e{i}"}) for i in range(30)]
    advances = [Step("advance_clock", {"ns": 1})] * clock_steps
    return Trace("orset", "delta-state", (Step("start", {"replicas": 3, "skews_ns": [0, 0, 0]}), *adds, *advances))


def test_a_replica_whose_history_did_not_change_is_not_evaluated_again():
    counted = calls_made(replay, orset_trace(400), ORSetMachine, DELTA_STATE)
    evaluations = counted["ORSetMachine.model_value"]
    # three replicas evaluated once each at the start and after each of their adds, not after
    # every one of the 400 clock advances (which would be over 1,200)
    assert evaluations <= 3 + 3 + 30, evaluations


def history(elements: int, adds_per_element: int) -> list:
    ops = []
    for e in range(elements):
        tags = [(0, e * adds_per_element + k + 1) for k in range(adds_per_element)]
        ops += [orset.Add(f"e{e}", tag) for tag in tags]
        ops.append(orset.Remove(f"e{e}", frozenset(tags[:1])))
    return ops


def test_the_orset_model_reads_its_history_once_whatever_the_number_of_elements():
    few, many = history(10, 10), history(100, 1)  # the same length, ten times the elements
    assert abs(len(few) - len(many)) <= 100
    work_few = sum(calls_made(orset.value, few).values())
    work_many = sum(calls_made(orset.value, many).values())
    assert work_many < 2 * work_few, (work_few, work_many)
    assert orset.value(few) == frozenset(f"e{e}" for e in range(10))
    assert orset.value(many) == frozenset()


def test_a_history_that_changes_is_evaluated_again():
    """Each step below changes one replica's value: a model value kept too long would differ."""
    steps = (Step("start", {"replicas": 2, "skews_ns": [0, 0]}), Step("add", {"replica": 0, "element": "a"}),
             Step("sync_full", {"source": 0, "target": 1}), Step("remove", {"replica": 1, "element": "a"}),
             Step("sync_full", {"source": 1, "target": 0}), Step("add", {"replica": 0, "element": "a"}),
             Step("sync_all"))
    trace = Trace("orset", "delta-state", steps)
    assert replay(trace, ORSetMachine, DELTA_STATE).status == "passed"
    report = walk(trace, ORSetMachine, DELTA_STATE)[0]
    assert "model {'a'}" in report and "model {}" in report
