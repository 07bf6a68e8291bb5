"""The z3 search still finds every kind of policy edge, and each answer is a passing trace.

The search is regenerated here (into a temporary directory); the decisions the policy
machine makes on each trace must be the ones the twin predicted, and each edge must really
sit on its boundary. The committed ``regressions/traces/policy-z3-*.json`` must replay.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import load_trace, replay
from harness.registry import implementation
from implementations.policy import PolicyEnforcer
from machines.adapters.policy_sqlite import implementation_with
from machines.policy import PolicyMachine
from machines.policy_z3 import EDGES, kind_of, search_all, write_traces
from models.clock import NS_PER_DAY

U64_MAX = 2**64 - 1
COMMITTED = Path(__file__).resolve().parent.parent / "regressions" / "traces"

#: What each edge means, on the concrete values of its answer.
ON_THE_EDGE = {
    "limit-exact": lambda v: v["a1"] + v["a2"] == v["limit"],
    "limit-plus-one": lambda v: v["a1"] + v["a2"] == v["limit"] + 1,
    "last-ns-of-day": lambda v: (v["t0"] + v["d"]) % NS_PER_DAY == NS_PER_DAY - 1,
    "first-ns-of-next-day": lambda v: (v["t0"] + v["d"]) % NS_PER_DAY == 0 and v["a1"] + v["a2"] > v["limit"],
    "amount-at-min": lambda v: v["a2"] == v["min"],
    "amount-below-min": lambda v: v["a2"] == v["min"] - 1,
    "amount-at-max": lambda v: v["a2"] == v["max"],
    "amount-above-max": lambda v: v["a2"] == v["max"] + 1,
    "sum-overflows-u64": lambda v: v["a1"] + v["a2"] > U64_MAX,
    "min-equals-max": lambda v: v["min"] == v["max"] == v["a2"],
}


@pytest.fixture(scope="module")
def answers():
    return search_all(count=3)


def decisions(trace) -> list[str]:
    """The kinds of the machine's decisions on each submit of ``trace``."""
    machine = PolicyMachine(implementation("policy", "sqlite"))
    kinds = []
    try:
        for step in trace.steps:
            machine.do(step.rule, **step.args)
            machine.check()
            if step.rule == "submit":
                kinds.append(kind_of(None if machine.last_decision[0] else machine.last_decision[1]))
    finally:
        machine.teardown()
    return kinds


def test_every_edge_is_found(answers):
    assert set(ON_THE_EDGE) == set(EDGES)
    missing = [edge for edge in EDGES if not answers[edge]]
    assert not missing, f"the z3 search found no scenario for {missing}"


@pytest.mark.parametrize("edge", EDGES)
def test_answers_are_distinct_edges_the_machine_agrees_with(answers, edge):
    found = answers[edge]
    assert len({tuple(sorted(a.values.items())) for a in found}) == len(found)
    for index, answer in enumerate(found):
        assert ON_THE_EDGE[edge](answer.values), (edge, answer.values)
        trace = answer.trace(index)
        assert decisions(trace) == [answer.first, answer.second], (edge, answer.values)


def test_regenerated_traces_replay(answers, tmp_path):
    paths = write_traces(tmp_path, answers)
    assert {p.name for p in paths} >= {f"policy-z3-{edge}-0.json" for edge in EDGES}
    for path in paths:
        assert str(replay(load_trace(path))) == "passed", path


def test_committed_traces_replay():
    committed = sorted(COMMITTED.glob("policy-z3-*.json"))
    assert {p.name for p in committed} >= {f"policy-z3-{edge}-0.json" for edge in EDGES}, (
        "regenerate with: python -m machines.policy_z3 --write regressions/traces"
    )
    for path in committed:
        assert str(replay(load_trace(path))) == "passed", path


class WrappingSum(PolicyEnforcer):
    """A u64 volume counter that wraps, as in a compiled language without checked adds."""

    def _refusal(self, destination, amount, reason, current):
        refusal = super()._refusal(destination, amount, reason, 0)
        if refusal is not None:
            return refusal
        if (current + amount) & U64_MAX > self.policy.max_daily_volume:
            return f"daily volume exceeded: current={current}, limit={self.policy.max_daily_volume}"
        return None

    def _set_reserved(self, day, total):
        super()._set_reserved(day, total & U64_MAX)


class LimitExclusive(PolicyEnforcer):
    """Checks the limit with ``>=``."""

    def _refusal(self, destination, amount, reason, current):
        refusal = super()._refusal(destination, amount, reason, current)
        if refusal is None and current + amount >= self.policy.max_daily_volume:
            return f"daily volume exceeded: current={current}, limit={self.policy.max_daily_volume}"
        return refusal


@pytest.mark.parametrize(("edge", "bug"), [("sum-overflows-u64", WrappingSum), ("limit-exact", LimitExclusive)])
def test_committed_edges_catch_the_bug_they_aim_at(edge, bug):
    impl = implementation_with(bug, f"buggy-{bug.__name__}")
    for path in sorted(COMMITTED.glob(f"policy-z3-{edge}-*.json")):
        outcome = replay(load_trace(path), impl=impl)
        assert outcome.status == "failed" and outcome.step == 3, (path, str(outcome))
