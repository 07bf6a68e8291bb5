"""How a failing, interrupted or budgeted run ends: one trace per distinct failure naming its
check, shrinking bounded in examples, the best counterexample kept on Ctrl-C, and one time
budget shared by a whole command."""

from __future__ import annotations

import pytest
from hypothesis import settings

from harness import budget, load_trace, replay, run_machine
from tests.toy import BUGGY, GOOD, TWO_BUGS, CounterMachine

CI = settings(settings.get_profile("ci"))


def traces_in(directory):
    return [load_trace(path) for path in sorted(directory.glob("*.json"))]


# ----- several distinct failures ---------------------------------------------------------------


def test_each_distinct_failure_gets_its_own_trace_and_report(tmp_path):
    with pytest.raises(ExceptionGroup) as group:
        run_machine(CounterMachine, TWO_BUGS, hypothesis_settings=CI, trace_dir=tmp_path)
    failures = {load.failure.split(":")[0]: load for load in traces_in(tmp_path)}
    assert set(failures) == {"CounterMachine.check", "CounterMachine.step_increment"}, failures
    assert failures["CounterMachine.check"].failure.startswith("CounterMachine.check: AssertionError: replica ")
    assert failures["CounterMachine.step_increment"].failure == (
        "CounterMachine.step_increment: OverflowError: replica 2 cannot count past 3")
    for trace in failures.values():
        assert "ExceptionGroup" not in trace.failure
        outcome = replay(trace, CounterMachine, TWO_BUGS)
        assert outcome.status == "failed" and str(outcome.failure) == trace.failure
    for error in group.value.exceptions:  # each failure carries its own trace and report
        notes = "\n".join(error.__notes__)
        assert "Trace written to" in notes and "first divergence" in notes
    assert "2 distinct failures, one trace each" in "\n".join(group.value.__notes__)


class CountsExamples(CounterMachine):
    """The toy machine, counting the examples Hypothesis runs (not replays) before and after
    the first failure."""

    examples = 0
    first_failure: int | None = None

    def do(self, rule, **args):
        if self.recorder is not None and not self.steps:
            type(self).examples += 1
        super().do(rule, **args)

    def check(self) -> None:
        try:
            super().check()
        except AssertionError:
            if type(self).first_failure is None and self.recorder is not None:
                type(self).first_failure = type(self).examples
            raise


def test_shrinking_is_bounded_in_examples_and_the_best_failure_is_still_reported(tmp_path):
    CountsExamples.examples, CountsExamples.first_failure = 0, None
    with pytest.raises(AssertionError) as error:
        run_machine(CountsExamples, BUGGY, hypothesis_settings=CI, trace_dir=tmp_path, shrink_examples=5)
    assert CountsExamples.first_failure is not None
    assert CountsExamples.examples - CountsExamples.first_failure <= 6  # five more, and the one that is stopped
    notes = "\n".join(error.value.__notes__)
    assert "Shrinking stopped: shrinking budget of 5 examples spent" in notes and "first divergence" in notes
    [trace] = traces_in(tmp_path)
    assert replay(trace, CounterMachine, BUGGY).status == "failed"
    assert replay(trace, CounterMachine, GOOD).status == "passed"


def test_the_private_shrinking_constant_is_not_used_anywhere():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    users = [p for p in root.rglob("*.py") if ".venv" not in p.parts and p != Path(__file__).resolve()
             and "MAX_SHRINKING_SECONDS" in p.read_text(encoding="utf-8")]
    assert users == []


# ----- Ctrl-C ---------------------------------------------------------------------------------


class InterruptedAfterFailures(CounterMachine):
    """The toy machine whose user presses Ctrl-C once the run has failed three times."""

    failures = 0

    def check(self) -> None:
        try:
            super().check()
        except AssertionError:
            type(self).failures += 1
            raise

    def step_increment(self, replica: int) -> None:
        if type(self).failures >= 3:
            raise KeyboardInterrupt
        super().step_increment(replica)


def test_ctrl_c_writes_the_best_counterexample_so_far_and_says_so(tmp_path, capsys):
    InterruptedAfterFailures.failures = 0
    with pytest.raises(KeyboardInterrupt) as interrupt:
        run_machine(InterruptedAfterFailures, BUGGY, hypothesis_settings=CI, trace_dir=tmp_path)
    [trace] = traces_in(tmp_path)
    assert trace.failure.startswith("CounterMachine.check: AssertionError: replica")
    assert replay(trace, CounterMachine, BUGGY).status == "failed"
    said = capsys.readouterr().err
    assert "Interrupted: machine toy-counter against buggy had failed" in said
    assert f"python -m harness minimize {tmp_path}" in said
    assert said.strip() in "\n".join(interrupt.value.__notes__)


def test_ctrl_c_before_any_failure_says_there_is_nothing_to_write(tmp_path, capsys):
    InterruptedAfterFailures.failures = 3
    with pytest.raises(KeyboardInterrupt):
        run_machine(InterruptedAfterFailures, GOOD, hypothesis_settings=CI, trace_dir=tmp_path)
    assert not list(tmp_path.iterdir())
    assert "had not failed yet; no trace written" in capsys.readouterr().err


# ----- one budget for the whole command -------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_budget_gives_each_run_an_even_share_of_what_remains():
    clock = FakeClock()
    plan = budget.Budget(120, runs=4, clock=clock)
    assert plan.next_deadline() == 30  # a quarter of 120
    clock.now = 10  # the first run ended early
    assert plan.next_deadline() == 10 + 110 / 3
    clock.now = 60  # the second ran late
    assert plan.next_deadline() == 60 + 60 / 2
    clock.now = 125  # the third overran the whole budget
    assert plan.next_deadline() == 125  # the last gets nothing and stops at its first step
    assert plan.next_deadline() == 125  # a run beyond the plan too


class TicksTheClock(CounterMachine):
    """The toy machine in which every step takes one second of a fake clock."""

    clock = FakeClock()

    def do(self, rule, **args):
        super().do(rule, **args)
        type(self).clock.now += 1


def test_a_budgeted_command_overruns_by_at_most_one_step(monkeypatch):
    monkeypatch.setattr("harness.profiles.current_profile", lambda: "nightly")
    monkeypatch.setattr("harness.profiles.STRICT_COVERAGE", frozenset())  # time is tested here, not coverage
    TicksTheClock.clock.now = 0.0
    budget.plan(500, runs=3, clock=TicksTheClock.clock)
    try:
        few = settings(CI, max_examples=5, derandomize=False, database=None)
        steps = [run_machine(TicksTheClock, GOOD, hypothesis_settings=few).ran.total() for _ in range(3)]
    finally:
        budget.reset()
    assert TicksTheClock.clock.now <= 500 + 1, steps
    assert all(s >= 500 / 3 - 1 for s in steps[:1]), steps  # the first run used its share, and more runs than one
    assert sum(steps) == TicksTheClock.clock.now


def test_the_session_plans_the_budget_over_the_collected_machine_runs(monkeypatch):
    import conftest
    from harness.runner import machine_test

    monkeypatch.setattr("harness.profiles.current_profile", lambda: "nightly")
    monkeypatch.setenv("MBT_BUDGET_SECONDS", "90")
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # the plan is the controlling session's, as without xdist
    test = machine_test(CounterMachine)

    class Item:
        def __init__(self, function):
            self.function = function

    session = type("Session", (), {"items": [Item(test), Item(test), Item(test), Item(lambda: None)]})()
    try:
        conftest.pytest_collection_finish(session)
        assert budget._session is not None and budget._session.runs_left == 3
        assert budget._session.end - budget._session.clock() == pytest.approx(90, abs=1)
    finally:
        budget.reset()


# ----- -x: every machine's shallow pass first ---------------------------------------------------


def _session(tmp_path, target: str, *args: str, cwd=None, **env: str):
    """``pytest target args`` in a fresh process under ``ci``, its traces in ``tmp_path``, with none of
    this session's ``MBT_`` or ``PYTEST_`` variables (an xdist worker's would mislead it)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("MBT_", "PYTEST_"))}
    environment.update(CI="true", MBT_TRACE_DIR=str(tmp_path / "traces"), PYTHONPATH=str(root), **env)
    return subprocess.run([sys.executable, "-m", "pytest", target, "-q", "-p", "no:cacheprovider", *args],
                          cwd=cwd or tmp_path, env=environment, capture_output=True, text=True, timeout=300)


def _toy_session(tmp_path, *args: str, **env: str):
    from pathlib import Path

    return _session(tmp_path, str(Path(__file__).resolve().parent / "toy_session.py"), *args, **env)


def test_under_x_every_shallow_pass_runs_before_any_full_run(tmp_path):
    collected = _toy_session(tmp_path, "-x", "--collect-only").stdout.splitlines()
    ids = [line.split("[")[1].rstrip("]") for line in collected if "::" in line]
    shallow = [i for i in ids if i.endswith("-shallow")]
    assert shallow and ids[:len(shallow)] == shallow and len(ids) == 2 * len(shallow), ids
    assert all("-shallow" not in line for line in _toy_session(tmp_path, "--collect-only").stdout.splitlines())
    assert all("-shallow" not in line
               for line in _toy_session(tmp_path, "-x", "--collect-only", MBT_SHALLOW_FIRST="0").stdout.splitlines())
    run = _toy_session(tmp_path, "-x", "-rf", "-k", "two")  # two-bugs: its shallow pass fails it
    assert "FAILED" in run.stdout and "test_toy_counter_machine[two-bugs-shallow]" in run.stdout, run.stdout[-3000:]
    assert "1 failed" in run.stdout and "passed" not in run.stdout.splitlines()[-1], run.stdout[-500:]
    assert len(list((tmp_path / "traces").glob("toy-counter-two-bugs-*.json"))) == 2  # one per distinct failure


def test_a_bug_planted_for_the_session_is_in_the_machine_runs_it_was_collected_for(tmp_path):
    """MBT_PLANT_BUG replaces an implementation once the adapters are loaded, which may be after
    a machine module collected it: the machine run takes what is registered when it runs."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    run = _session(tmp_path, "machines/lww.py", "-k", "hlc", cwd=root, MBT_PLANT_BUG="lww-smaller-writer-wins",
                   MBT_SHALLOW_FIRST="0")
    assert "1 failed" in run.stdout, run.stdout[-2000:]
