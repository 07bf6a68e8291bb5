"""The trace minimizer: fewer steps and simpler arguments, failing the same check."""

from __future__ import annotations

import pytest

from harness import MinimizeBudget, Step, Trace, load_trace, minimize, replay, save_trace
from harness.__main__ import main
from harness.minimize import NothingToMinimize, simpler_values
from tests.toy import BUGGY, GOOD, CounterMachine

#: The toy bug (a merge of a count of 3 is lost) buried in steps that do not matter.
PADDED = (
    Step("start", {"replicas": 4}),
    Step("increment", {"replica": 3}),
    Step("increment", {"replica": 2}),
    Step("sync", {"source": 3, "target": 2}),
    Step("increment", {"replica": 1}),
    Step("increment", {"replica": 1}),
    Step("sync", {"source": 1, "target": 3}),
    Step("increment", {"replica": 1}),
    Step("increment", {"replica": 2}),
    Step("sync", {"source": 2, "target": 3}),
    Step("increment", {"replica": 3}),
    Step("sync", {"source": 1, "target": 2}),  # replica 2 loses replica 1's third increment: the failure
    Step("increment", {"replica": 0}),
    Step("sync", {"source": 0, "target": 1}),
)


def padded(implementation: str = "buggy") -> Trace:
    return Trace("toy-counter", implementation, PADDED, adapter="tests.toy", level="exact")


def without(trace: Trace, index: int) -> Trace:
    return Trace(trace.machine, trace.implementation, trace.steps[:index] + trace.steps[index + 1:])


def test_a_padded_trace_is_minimized_until_no_single_step_can_go():
    before = replay(padded(), CounterMachine, BUGGY)
    assert before.status == "failed" and before.step == 11
    result = minimize(padded(), CounterMachine, BUGGY)
    trace = result.trace
    assert not result.exhausted and result.original_steps == len(PADDED)
    assert len(trace.steps) < 11
    after = replay(trace, CounterMachine, BUGGY)
    assert after.status == "failed" and after.failure.signature() == before.failure.signature()
    assert trace.failure == str(after.failure) and trace.failure.startswith("CounterMachine.check: AssertionError")
    for index in range(len(trace.steps)):
        assert replay(without(trace, index), CounterMachine, BUGGY).status in ("passed", "stale"), index
    assert replay(trace, CounterMachine, GOOD).status == "passed"
    # and the arguments were simplified: two replicas, the lowest indices that still fail
    assert trace.steps[0] == Step("start", {"replicas": 2})
    assert [s.rule for s in trace.steps] == ["start", "increment", "increment", "increment", "sync"]


def test_the_minimizer_keeps_to_its_budget_and_keeps_what_it_found():
    result = minimize(padded(), CounterMachine, BUGGY, MinimizeBudget(replays=4, steps=10_000))
    assert result.exhausted and result.replays == 4
    assert replay(result.trace, CounterMachine, BUGGY).status == "failed"
    assert len(result.trace.steps) <= 12  # at least cut after the failing step
    result = minimize(padded(), CounterMachine, BUGGY, MinimizeBudget(replays=1000, steps=60))
    assert result.exhausted and result.steps_replayed <= 60


def test_a_trace_that_does_not_fail_is_not_minimized():
    with pytest.raises(NothingToMinimize, match="the trace passed in replay"):
        minimize(padded("good"), CounterMachine, GOOD)


def test_a_candidate_failing_another_check_is_not_kept():
    """A trace failing two ways: the minimizer keeps the check the trace failed with."""
    from tests.toy import TWO_BUGS

    steps = (*PADDED[:11], Step("increment", {"replica": 2}), Step("increment", {"replica": 2}),
             Step("increment", {"replica": 2}), Step("increment", {"replica": 2}), PADDED[11])
    trace = Trace("toy-counter", "two-bugs", steps)
    before = replay(trace, CounterMachine, TWO_BUGS)
    result = minimize(trace, CounterMachine, TWO_BUGS)
    after = replay(result.trace, CounterMachine, TWO_BUGS)
    assert after.failure.signature() == before.failure.signature()
    assert after.failure.check == before.failure.check


def test_simpler_values_are_simpler_and_of_the_same_type():
    assert list(simpler_values(0)) == [] and list(simpler_values(False)) == [] and list(simpler_values("")) == []
    assert list(simpler_values(10)) == [0, 5, 9]
    assert list(simpler_values(-3)) == [0, 3, -1, -2]
    assert list(simpler_values(True)) == [False]
    assert list(simpler_values("abcd")) == ["", "ab", "abc"]
    assert [] in list(simpler_values([1, 2])) and [1] in list(simpler_values([1, 2])) and [0, 2] in list(simpler_values([1, 2]))
    assert {"a": 0} in list(simpler_values({"a": 5}))


def test_the_cli_minimizes_a_trace_a_person_wrote(tmp_path, capsys):
    path = save_trace(padded(), tmp_path / "nightly")
    out = tmp_path / "minimal.json"
    assert main(["minimize", str(path), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert f"{out}: minimized from {len(PADDED)} to 5 steps" in said and "fails CounterMachine.check" in said
    minimal = load_trace(out)
    assert minimal.adapter == "tests.toy" and len(minimal.steps) == 5
    assert main(["minimize", str(path)]) == 0  # beside the input, named by its steps
    assert (tmp_path / "nightly" / f"toy-counter-buggy-{minimal.digest()}.json").exists()
    passing = save_trace(padded("good"), tmp_path)
    assert main(["minimize", str(passing)]) == 1
    assert "nothing to minimize: the trace passed in replay" in capsys.readouterr().err


def test_a_failing_run_writes_its_trace_minimized(tmp_path):
    from hypothesis import settings

    from harness import run_machine

    with pytest.raises(AssertionError) as error:
        run_machine(CounterMachine, BUGGY, hypothesis_settings=settings(settings.get_profile("ci")), trace_dir=tmp_path)
    [path] = tmp_path.iterdir()
    trace = load_trace(path)
    for index in range(len(trace.steps)):
        assert replay(without(trace, index), CounterMachine, BUGGY).status in ("passed", "stale"), index
    assert "Hypothesis's shrunk run minimized from" in "\n".join(error.value.__notes__)


def test_a_failing_run_that_does_not_shrink_writes_its_failure_unminimized(tmp_path):
    """The ``mutation`` profile (no shrink phase: a mutant is killed at its first failure) writes
    the failing run as it was: minimizing it replays it up to 300 times, minutes a mutant for a
    machine of real endpoints."""
    from hypothesis import settings

    from harness import run_machine

    with pytest.raises(AssertionError) as error:
        run_machine(CounterMachine, BUGGY, hypothesis_settings=settings(settings.get_profile("mutation")),
                    trace_dir=tmp_path)
    [path] = tmp_path.iterdir()
    assert replay(load_trace(path), CounterMachine, BUGGY).status == "failed"
    notes = "\n".join(error.value.__notes__)
    assert "minimized from" not in notes and "Not minimized" not in notes, notes
