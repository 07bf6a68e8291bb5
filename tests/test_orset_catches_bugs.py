"""The OR-Set machine catches realistic bugs, each with a short trace.

Each test patches one bug into an implementation (a subclass, registered inline, not through
``machines/adapters``), runs the machine in the ``ci`` profile, and checks that it fails with
a short, explained trace that passes against the correct implementation.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

from harness import Implementation, expect_caught, load_trace, replay
from implementations.orset import DeltaORSet, DotStore
from implementations.orset_tombstone import TagMap, TombstoneORSet, _union_into
from implementations.wire import DecodeError
from machines.adapters.orset_delta import DELTA_STATE
from machines.adapters.orset_tombstone import TOMBSTONE
from machines.orset import ORSetMachine
from models.clock import to_millis

#: Pinned budgets: tuning the ci profile must not reshuffle these derandomized searches.
#: Finding a bug takes a few examples; shrinking it is nearly all of a test's time, and
#: costs more the longer the first failing run. So each test pins the step count (``steps``)
#: that finds its bug cheapest within the first half of the 60 examples (measured over 15
#: to 40 steps; see benchmarks/README.md, "The suite's cost").
CI = settings(settings.get_profile("ci"), max_examples=60, stateful_step_count=40, report_multiple_bugs=False)
#: Below every pinned step count: the bound says the shrinker did its work.
MAX_STEPS = 12


def assert_caught(impl: Implementation, correct: Implementation, monkeypatch, tmp_path,
                  errors: tuple[type[Exception], ...] = (AssertionError,), steps: int = 40) -> list[str]:
    """Run the machine against ``impl`` (runs of ``steps`` steps); it must fail with a short
    trace. Returns the rules."""
    search = settings(CI, stateful_step_count=steps)
    trace = expect_caught(ORSetMachine, impl, hypothesis_settings=search, trace_dir=tmp_path, errors=errors).trace
    assert len(trace.steps) <= MAX_STEPS, trace.to_json()
    assert replay(trace, ORSetMachine, impl).status == "failed"
    assert replay(trace, ORSetMachine, correct).status == "passed", "the trace fails without the bug too"
    return [step.rule for step in trace.steps]


# ----- (a) an old add (re-delivered delta, stale state) resurrects a removed element ------


class JoinIgnoresContext(DeltaORSet):
    """Joins take every incoming dot they do not hold, without asking whether the causal
    context says it was seen (and removed) already: a re-delivered delta, or the state of a
    replica that has not heard of the remove yet, brings the element back."""

    def join(self, other: DotStore) -> None:
        store = self._store
        for dot in [d for d in store.owner if d in other.context and d not in other.owner]:
            store.discard(dot)
        for dot, element in other.owner.items():
            if dot not in store.owner:  # BUG: should also skip dots in store.context
                store.insert(element, dot)
        store.context.update(other.context)


def test_old_add_resurrecting_a_removed_element_is_caught(monkeypatch, tmp_path):
    impl = Implementation("orset", "join-ignores-context", lambda i, clock: JoinIgnoresContext(i))
    rules = assert_caught(impl, DELTA_STATE, monkeypatch, tmp_path, steps=20)
    assert {"add", "remove"} <= set(rules)


# ----- (b) timestamps as tags: adds in the same millisecond share a tag ------------------


class TimestampTags(TombstoneORSet):
    """Tags are the wall-clock millisecond, without the replica: two adds of an element in
    the same millisecond are one add, and a tombstone for one kills the other."""

    def __init__(self, replica_id: int, clock) -> None:
        super().__init__(replica_id)
        self.clock = clock

    def new_tag(self) -> tuple[int, int]:
        return (0, max(1, to_millis(self.clock.now())))  # BUG: not unique


def test_timestamp_tags_losing_an_add_are_caught(monkeypatch, tmp_path):
    impl = Implementation("orset", "timestamp-tags", TimestampTags)
    rules = assert_caught(impl, TOMBSTONE, monkeypatch, tmp_path, steps=25)
    assert rules.count("add") >= 2


# ----- (c) remove-wins: a remove also kills adds it never observed ------------------------


class RemoveKillsUnobserved(DeltaORSet):
    """A join that learns an element was removed elsewhere drops the element whole, with the
    concurrent adds the remover never saw."""

    def join(self, other: DotStore) -> None:
        store = self._store
        removed_there = {store.owner[d] for d in store.owner if d in other.context and d not in other.owner}
        for element in removed_there:
            for dot in list(store.entries[element]):  # BUG: only the dots other has seen
                store.discard(dot)
        super().join(other)


def test_remove_wins_is_caught(monkeypatch, tmp_path):
    impl = Implementation("orset", "remove-kills-unobserved", lambda i, clock: RemoveKillsUnobserved(i))
    rules = assert_caught(impl, DELTA_STATE, monkeypatch, tmp_path)
    assert "remove" in rules


# ----- (d) merging tombstones by replacement instead of union ----------------------------


class TombstonesReplaced(TombstoneORSet):
    """A merge overwrites an element's tombstones with the incoming ones, forgetting removes
    made here: the removed element comes back."""

    def merge_maps(self, elements: TagMap, tombstones: TagMap) -> None:
        _union_into(self.elements, elements)
        for element, tags in tombstones.items():
            self.tombstones[element] = set(tags)  # BUG: should be a union


def test_tombstones_replaced_on_merge_is_caught(monkeypatch, tmp_path):
    impl = Implementation("orset", "tombstones-replaced", lambda i, clock: TombstonesReplaced(i))
    assert_caught(impl, TOMBSTONE, monkeypatch, tmp_path)


# ----- (e) the delta of a remove is never sent -------------------------------------------


class RemoveNotInDelta(DeltaORSet):
    """Removes change the local state but are left out of the pending delta: only a full
    sync ever tells the others."""

    def remove(self, element) -> None:
        dots = self._store.entries.get(element)
        if not dots:
            return
        delta = DotStore()
        for dot in dots:
            delta.context.add(dot)
        self._store.join(delta)  # BUG: self._pending never hears of it


def test_remove_left_out_of_deltas_is_caught(monkeypatch, tmp_path):
    impl = Implementation("orset", "remove-not-in-delta", lambda i, clock: RemoveNotInDelta(i))
    rules = assert_caught(impl, DELTA_STATE, monkeypatch, tmp_path, steps=30)
    assert {"broadcast", "send_delta"} & set(rules)


# ----- (f) a causal context without a dot cloud ------------------------------------------


class NoDotCloud(DeltaORSet):
    """The causal context is kept as a version vector only, as if every delta arrived in
    causal order: dots seen out of order are forgotten, so a later state holds dots its own
    context does not cover (refused by a correct peer's decoder) and removes are lost."""

    def join(self, other: DotStore) -> None:
        trimmed = other.copy()
        trimmed.context.cloud = {}  # BUG: out-of-order dots are not remembered
        self._store.join(trimmed)


def test_context_without_dot_cloud_is_caught(monkeypatch, tmp_path):
    impl = Implementation("orset", "no-dot-cloud", lambda i, clock: NoDotCloud(i))
    assert_caught(impl, DELTA_STATE, monkeypatch, tmp_path, errors=(AssertionError, DecodeError), steps=30)


# ----- the committed regression traces each catch their bug ---------------------------------

REGRESSIONS = Path(__file__).resolve().parent.parent / "regressions" / "traces"
GUARDS = [
    ("orset-old-add-resurrects-removed-element", lambda i, clock: JoinIgnoresContext(i)),
    ("orset-same-millisecond-adds-are-distinct", TimestampTags),
    ("orset-remove-spares-unobserved-add", lambda i, clock: RemoveKillsUnobserved(i)),
    ("orset-tombstones-from-two-replicas-add-up", lambda i, clock: TombstonesReplaced(i)),
]


@pytest.mark.parametrize(("name", "make_replica"), GUARDS, ids=[name for name, _ in GUARDS])
def test_committed_regression_trace_fails_against_its_bug(name, make_replica):
    trace = load_trace(REGRESSIONS / f"{name}.json")
    outcome = replay(trace, ORSetMachine, Implementation("orset", f"bug-{name}", make_replica))
    assert outcome.status == "failed", outcome
