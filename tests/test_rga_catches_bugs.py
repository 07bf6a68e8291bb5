"""The RGA machine catches realistic bugs, each with a short trace.

Each test patches one bug into ``implementations.rga.RGA`` (a subclass, registered inline,
not through ``machines/adapters``, driven as the adapter drives it, so the machine's
adversary speaks to it too), runs the machine in the ``ci`` profile, and checks that it
fails with a short, explained trace that passes against the correct implementation.
The committed ``regressions/traces/rga-*.json`` are then shown to catch the same bugs by
replay alone.
"""

from __future__ import annotations

from itertools import accumulate
from pathlib import Path

import pytest
from hypothesis import Phase, settings

import implementations.rga as rga_module
from harness import Implementation, expect_caught, load_trace, replay
from implementations.rga import RGA
from implementations.wire import DecodeError
from machines.adapters.rga_tree import RGA_TREE, TreeReplica
from machines.rga import RGAMachine

# Without Hypothesis's explain phase: it re-runs the failure under coverage tracing, which
# costs more than the search itself, and the harness explains the trace anyway.
#: The ci profile with 300 examples: 60 miss the merge-tombstone bug once every project module
#: is loaded (harness.runner.import_project fixes Hypothesis's constant pool); 300 catch every
#: bug here within a few seconds each.
CI = settings(settings.get_profile("ci"), max_examples=300, stateful_step_count=40, report_multiple_bugs=False,
              phases=[Phase.generate, Phase.shrink])
MAX_STEPS = 20


def assert_caught(impl: Implementation, monkeypatch, tmp_path) -> list[str]:
    """Run the machine against ``impl``; it must fail with a short trace. Returns the rules."""
    errors = (AssertionError, DecodeError)
    trace = expect_caught(RGAMachine, impl, hypothesis_settings=CI, trace_dir=tmp_path, errors=errors).trace
    assert len(trace.steps) <= MAX_STEPS, trace.to_json()
    assert replay(trace, RGAMachine, impl).status == "failed"
    assert replay(trace, RGAMachine, RGA_TREE).status == "passed", "the trace fails without the bug too"
    return [step.rule for step in trace.steps]


def buggy(name: str, cls: type[RGA]) -> Implementation:
    """``cls`` as the adapter drives ``RGA`` (``TreeReplica``): the adversary speaks to it too."""
    replica_class = type(cls.__name__, (cls, TreeReplica), {})
    return Implementation("rga", name, lambda replica_id, clock: replica_class(replica_id))


def place_by(key):
    """A remote insert's place with siblings compared by ``key`` (greatest first) instead of by
    id: from just after the parent, every element whose key is greater is skipped."""

    def _place(self: RGA, counter: int, replica: int, parent_counter: int, parent_replica: int, content) -> None:
        new = key((counter, replica))
        elements = [(run, offset) for run in self._runs() for offset in range(len(run.items))]
        position = 0
        if parent_counter:
            position = 1 + next(n for n, (run, offset) in enumerate(elements)
                                if (run.counter + offset, run.replica) == (parent_counter, parent_replica))
        while position < len(elements):
            run, offset = elements[position]
            if key((run.counter + offset, run.replica)) < new:
                break
            position += 1
        if position == len(elements):
            leaf, i = self._rightmost(), len(self._rightmost().runs)
        else:
            run, offset = elements[position]
            leaf, i = run.leaf, run.leaf.runs.index(run)
            if offset:
                self._split_run(leaf, i, offset)
                i += 1
        self._put_chain(leaf, i, counter, replica, parent_counter, parent_replica, content)

    return _place


# ----- (a) siblings ordered by the wrong key --------------------------------------------


class SmallestSiblingFirst(RGA):
    """Concurrent inserts after one element are ordered smallest id first."""

    _place = place_by(lambda element: (-element[0], -element[1]))  # BUG: the order is reversed


class ReplicaBeforeCounter(RGA):
    """Siblings are compared by replica first, then counter: a replica with a greater id
    always wins, even against an insert that saw more."""

    _place = place_by(lambda element: (element[1], element[0]))  # BUG: should be (counter, replica)


def test_siblings_smallest_first_is_caught(monkeypatch, tmp_path):
    rules = assert_caught(buggy("smallest-sibling-first", SmallestSiblingFirst), monkeypatch, tmp_path)
    assert "hostile" in rules or rules.count("insert") >= 2  # a sibling flood, or concurrent inserts


def test_siblings_by_replica_first_is_caught(monkeypatch, tmp_path):
    rules = assert_caught(buggy("replica-before-counter", ReplicaBeforeCounter), monkeypatch, tmp_path)
    assert "hostile" in rules or rules.count("insert") >= 2


# ----- (b) ids that do not count past what the replica has seen ---------------------------


class OwnCounterOnly(RGA):
    """Each replica counts its own inserts only, ignoring the counters of ids it received: a
    new element can have a smaller id than elements it was inserted after or beside."""

    def __init__(self, replica_id: int) -> None:
        super().__init__(replica_id)
        self._own = 0

    def _next_counter(self) -> int:
        self._own += 1  # BUG: should be 1 + the greatest counter seen, remote ones included
        return self._own


def test_per_replica_counter_is_caught(monkeypatch, tmp_path):
    rules = assert_caught(buggy("own-counter-only", OwnCounterOnly), monkeypatch, tmp_path)
    assert "insert" in rules


# ----- (c) operations that arrive early are dropped -----------------------------------------


class EarlyDeleteDropped(RGA):
    """A delete of an element not known yet is ignored instead of remembered."""

    def _delete_range(self, start: int, end: int, replica: int) -> None:
        for counter in range(start, end):
            run = self._run_of(counter, replica)
            if run is not None:  # BUG: an unknown element's delete is lost
                self._kill(run, counter - run.counter, counter - run.counter + 1)


class OrphanInsertDropped(RGA):
    """An insert whose parent has not arrived yet is ignored instead of kept until it does."""

    def _wait(self, counter, replica, parent_counter, parent_replica, content) -> None:
        return  # BUG: should wait for the parent


def test_early_delete_dropped_is_caught(monkeypatch, tmp_path):
    rules = assert_caught(buggy("early-delete-dropped", EarlyDeleteDropped), monkeypatch, tmp_path)
    # a delete overtaking its insert: between replicas, or from the adversary (a far delete whose
    # insert comes later or never: dropping it also loses the counter it carried, so the next
    # local insert takes an id the correct replica would not). Deletes come only from these two.
    assert "hostile" in rules or ("delete" in rules and {"deliver", "deliver_all"} & set(rules))


def test_orphan_insert_dropped_is_caught(monkeypatch, tmp_path):
    rules = assert_caught(buggy("orphan-insert-dropped", OrphanInsertDropped), monkeypatch, tmp_path)
    # a child before its parent: between replicas, or in one hostile message (a reversed chain, orphans)
    assert "hostile" in rules or (rules.count("insert") >= 2 and {"deliver", "deliver_all"} & set(rules))


# ----- (d) a full-state merge ignores tombstones of elements already known -----------------


class MergeKeepsKnownAlive(RGA):
    """A merge only adds elements it did not know; that the sender deleted one it knows is lost."""

    def _kill(self, run, start: int, stop: int, i: int | None = None) -> int:
        if getattr(self, "_merging", False):
            return 0  # BUG: a known element deleted elsewhere stays visible here
        return super()._kill(run, start, stop, i)

    def apply_state(self, state) -> None:
        self._merging = True
        try:
            super().apply_state(state)
        finally:
            self._merging = False


def test_merge_ignoring_known_tombstones_is_caught(monkeypatch, tmp_path):
    rules = assert_caught(buggy("merge-keeps-known-alive", MergeKeepsKnownAlive), monkeypatch, tmp_path)
    assert "delete" in rules


# ----- (e) elements told apart by their item (issue 10, gap 2) -------------------------------


class DeletesByValue(RGA):
    """A remote delete removes the first visible element that holds the same item as its
    target, as if an item were its own identity. With a fresh character per insert this is
    invisible; with equal characters, the norm in text, it deletes the wrong element."""

    def _delete_range(self, start: int, end: int, replica: int) -> None:
        for counter in range(start, end):
            run = self._run_of(counter, replica)
            if run is None:
                super()._delete_range(counter, counter + 1, replica)
                continue
            item = run.items[counter - run.counter]
            for element in self.ids():  # BUG: the first element with that item, not the target
                other, offset = self._known(element)
                if other.items[offset] == item:
                    self._kill(other, offset, offset + 1)
                    break


def test_elements_told_apart_by_value_are_caught(monkeypatch, tmp_path):
    rules = assert_caught(buggy("deletes-by-value", DeletesByValue), monkeypatch, tmp_path)
    assert ("hostile" in rules or rules.count("insert") >= 2) and "delete" in rules


# ----- (f) a deleted element that comes back, at the convergent level (issue 10, gap 4) ------


class RedeliveryRevives(RGA):
    """A delta carrying the insert of an element deleted here shows it again (as if an insert
    said "this element is alive"); the next full-state merge that carries its tombstone hides
    it again, so a check made only after full syncs never sees it."""

    def apply_decoded_delta(self, delta) -> None:
        for counter, replica, _, _, content in delta.runs:
            for element in range(counter, counter + len(content)):
                run = self._run_of(element, replica)
                offset = element - run.counter if run is not None else 0
                if run is not None and not (run.flags[offset] if run.flags is not None else run.visible):
                    flags = run.flags if run.flags is not None else bytearray(len(run.items))
                    flags[offset] = 1  # BUG: a tombstone is not undone by an insert
                    run.visible += 1
                    run.flags = None if run.visible == len(run.items) else flags
                    run.leaf.counts[run.leaf.runs.index(run)] += 1
                    rga_module._bump(run.leaf, 1)
        super().apply_decoded_delta(delta)


def test_a_deleted_element_that_comes_back_is_caught_where_it_comes_back(monkeypatch, tmp_path):
    impl = Implementation("rga", "redelivery-revives", lambda replica_id, clock: RedeliveryRevives(replica_id),
                          level="convergent")
    trace = expect_caught(RGAMachine, impl, hypothesis_settings=CI, trace_dir=tmp_path).trace
    rules = [step.rule for step in trace.steps]
    assert len(rules) <= MAX_STEPS and "delete" in rules
    assert rules[-1] in {"deliver", "redeliver", "deliver_all"}, f"caught only at {rules[-1]}: {trace.to_json()}"


# ----- (g) inserts past the greatest counter (issue 7, defect 7) ------------------------------


class InsertsPastTheCeiling(TreeReplica):
    """The ceiling check reverted: a replica that has seen counter 2**64 - 1 goes on
    inserting, with ids the wire cannot carry (its next ``state()`` raises OverflowError)."""

    def _next_counter(self) -> int:
        return self._max_counter + 1  # BUG: no refusal past U64_MAX


def test_inserts_past_the_greatest_counter_are_caught(monkeypatch, tmp_path):
    rules = assert_caught(buggy("inserts-past-the-ceiling", InsertsPastTheCeiling), monkeypatch, tmp_path)
    assert "hostile" in rules and "insert" in rules


def signed_steps(run_columns):
    """The wire fix reverted: counter steps back as negative integers, which MessagePack
    cannot carry below -2**63 (a step back from the top of the range to a small counter)."""

    def columns(runs):
        out = run_columns(runs)
        counters = [total % 2**64 for total in accumulate(out[0])]
        out[0] = [counter - previous for previous, counter in zip([0, *counters], counters, strict=False)]
        return out

    return columns


def test_the_ceiling_trace_catches_signed_counter_steps(monkeypatch):
    trace = load_trace(REGRESSIONS / "rga-counter-steps-back-from-the-ceiling.json")
    assert replay(trace, RGAMachine, RGA_TREE).status == "passed"
    monkeypatch.setattr(rga_module, "_run_columns", signed_steps(rga_module._run_columns))
    assert replay(trace, RGAMachine, RGA_TREE).status == "failed"


# ----- the committed regression traces each catch their bug, without a search ---------------

REGRESSIONS = Path(__file__).resolve().parent.parent / "regressions" / "traces"


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
    assert replay(trace, RGAMachine, buggy(bug.__name__, bug)).status == "failed"
