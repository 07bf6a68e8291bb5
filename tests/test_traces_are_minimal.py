"""No committed trace of a bug holds a step it could do without (issue 13).

Every catalogued bug (``tests/bugs``) has its shortest known trace committed. Replayed with
the bug planted, each trace fails one check (``Failure.signature``: the exception type and
its first line with numbers and ids blotted out). Without any single one of its steps, it
must pass, go stale, or fail another check: a step whose removal still fails the same check
is one a reader has to read for nothing, and means the trace was not minimized (``python -m
harness minimize TRACE`` removes it).
"""

from __future__ import annotations

import attrs
import pytest

from harness import load_trace, replay
from tests.bugs.catalogue import catalogue

BUGS = sorted((b for b in catalogue().values() if b.trace_path.exists()), key=lambda b: b.name)


@pytest.mark.parametrize("bug", BUGS, ids=[b.name for b in BUGS])
def test_no_step_of_a_bug_s_shortest_trace_can_go(bug):
    trace = load_trace(bug.trace_path)
    machine = bug.machine_class()
    with bug.plant() as buggy:
        whole = replay(trace, machine, buggy)
        assert whole.status == "failed", whole
        signature = whole.failure.signature()
        removable = []
        for index in range(1, len(trace.steps)):  # step 0 starts the machine: without it every step is stale
            shorter = attrs.evolve(trace, steps=trace.steps[:index] + trace.steps[index + 1:])
            outcome = replay(shorter, machine, buggy)
            if outcome.status == "failed" and outcome.failure.signature() == signature:
                removable.append(f"{index}: {trace.steps[index].describe()}")
    assert not removable, f"{bug.trace_path.name} still fails the same check without step " + "; ".join(removable)
