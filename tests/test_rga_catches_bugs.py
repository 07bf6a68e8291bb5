"""The RGA machine catches realistic bugs, each with a short trace.

The bugs are the catalogue's (``tests/bugs/rga.py``), each searched for with the budget
measured for it under ten seeds (``python -m tests.bugs.sweep``). The committed
``regressions/traces/rga-*.json`` are then shown to catch the same bugs by replay alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import implementations.rga as rga_module
from harness import Implementation, load_trace, replay
from machines.adapters.rga_tree import RGA_TREE
from machines.rga import RGAMachine
from tests.bugs.hunt import assert_caught, robust
from tests.bugs.rga import (
    DeletesByValue,
    EarlyDeleteDropped,
    InsertsPastTheCeiling,
    MergeKeepsKnownAlive,
    OrphanInsertDropped,
    OwnCounterOnly,
    ReplicaBeforeCounter,
    SmallestSiblingFirst,
    as_replica,
    signed_steps,
)

#: rga-orphan-insert-dropped-convergent is searched by tests/test_adapter_gaps.py (gap 3),
#: without shrinking: shrinking it at level convergent costs half a minute.
BUGS = [b for b in robust("rga") if b.name != "rga-orphan-insert-dropped-convergent"]
REGRESSIONS = Path(__file__).resolve().parent.parent / "regressions" / "traces"


@pytest.mark.parametrize("bug", BUGS, ids=[b.name for b in BUGS])
def test_the_rga_machine_catches(bug):
    rules = assert_caught(bug)
    if bug.name == "rga-redelivery-revives":  # caught where it comes back, not at a later full sync
        assert rules[-1] in {"deliver", "redeliver", "deliver_all"}, rules


def test_the_ceiling_trace_catches_signed_counter_steps(monkeypatch):
    trace = load_trace(REGRESSIONS / "rga-counter-steps-back-from-the-ceiling.json")
    assert replay(trace, RGAMachine, RGA_TREE).status == "passed"
    monkeypatch.setattr(rga_module, "_run_columns", signed_steps(rga_module._run_columns))
    assert replay(trace, RGAMachine, RGA_TREE).status == "failed"


@pytest.mark.parametrize(("trace_name", "bug"), [
    ("rga-concurrent-inserts-greatest-id-first", ReplicaBeforeCounter),
    ("rga-concurrent-inserts-greatest-id-first", SmallestSiblingFirst),
    ("rga-concurrent-inserts-greatest-id-first", OwnCounterOnly),
    ("rga-delete-overtakes-its-insert", EarlyDeleteDropped),
    ("rga-child-overtakes-its-parent", OrphanInsertDropped),
    ("rga-merge-brings-a-delete-of-a-known-element", MergeKeepsKnownAlive),
    ("rga-equal-characters-are-different-elements", DeletesByValue),
    ("rga-no-insert-after-the-greatest-counter", InsertsPastTheCeiling),
])
def test_regression_trace_catches_its_bug(trace_name, bug):
    trace = load_trace(REGRESSIONS / f"{trace_name}.json")
    assert replay(trace, RGAMachine, RGA_TREE).status == "passed"
    assert replay(trace, RGAMachine, Implementation("rga", bug.__name__, as_replica(bug))).status == "failed"
