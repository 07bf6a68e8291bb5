"""Running machines live under Hypothesis.

``run_machine`` runs one machine against one implementation under the active profile. When
it fails, each distinct failure Hypothesis reports (several arrive as an ``ExceptionGroup``)
becomes its own trace: the shrunk run, minimized further (``harness.minimize``), written to
the trace directory (``MBT_TRACE_DIR``, ``--trace-dir``, default in the per-user cache), its
``failure`` naming the failing check; and its exception gets a step-by-step report: each
step, each replica's value beside the model's, and a mark at the first step where they
part. Interrupted (Ctrl-C), a run writes the shortest failing run it has seen of each
distinct failure, and says so.

Replay and the step-by-step report live in ``harness.replay``.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import attrs
from hypothesis import Phase, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.stateful import run_state_machine_as_test

from harness import balance, budget, constants, deepening, profiles
from harness.database import Namespaced
from harness.failure import failure_of, leaves
from harness.machine import RuleStats, TracedMachine
from harness.minimize import RUN_BUDGET, MinimizeBudget, NothingToMinimize, minimize
from harness.recorder import Recorder, Seen, StopRun
from harness.registry import Implementation, RegistrationError, check_level, implementations
from harness.registry import implementation as registered
from harness.replay import Outcome, explain, replay, show, walk
from harness.trace import Step, Trace, load_trace, save_trace

__all__ = ["Caught", "Outcome", "expect_caught", "explain", "machine_test", "replay", "run_machine", "show", "walk"]

#: Every run of this process, for the coverage table printed at the end of a pytest session.
RUNS: list[RuleStats] = []
#: Every trace written by a failing run of this process.
TRACES_WRITTEN: list[Path] = []

#: The project's packages whose modules ``import_project`` loads (tests are not among them).
PROJECT_PACKAGES = ("models", "implementations", "machines", "harness", "examples")
_project_imported = False


def import_project() -> None:
    """Import every module of the project's packages, once, and pin Hypothesis's constants.

    Hypothesis mixes literals of the *loaded* local modules into the data it generates, so a
    derandomized run searched differently by the modules its process happened to have loaded
    (``pytest machines/`` against the whole suite, whose tests import a few more); its pool is
    pinned (``harness.constants``, installed here). Every module is loaded all the same: what a
    module does when imported (a registration) happens before any run, whatever the selection
    of tests.
    """
    global _project_imported
    constants.install()
    if _project_imported:
        return
    _project_imported = True
    for package_name in PROJECT_PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
            if not info.name.endswith("__main__"):
                importlib.import_module(info.name)


def write_rule_stats(directory: str | Path) -> Path:
    """This process's rule counts (``RUNS``) as JSON in ``directory``, one file per process
    (``python -m harness nightly`` adds up its worker processes' files)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"rules-{os.getpid()}.json"
    path.write_text(json.dumps(rule_stats_records()))
    return path


def rule_stats_records() -> list[dict]:
    """This process's rule counts (``RUNS``) as plain data (JSON, or an xdist worker's output)."""
    return [{"machine": s.machine, "implementation": s.implementation, "examples": s.examples,
             "ran": dict(s.ran), "refused": dict(s.refused), "rules": list(s.rules)} for s in RUNS]


def rule_stats_from(records: list[dict]) -> list[RuleStats]:
    """``rule_stats_records``' output read back."""
    return [RuleStats(r["machine"], r["implementation"], tuple(r["rules"]), Counter(r["ran"]), Counter(r["refused"]),
                      r["examples"]) for r in records]


def trace_directory() -> Path:
    return profiles.trace_directory()


#: ``shrink_examples`` of ``run_machine`` when it is not given: the profile's bound.
PROFILE_DEFAULT = object()


def run_machine(
    machine_cls: type[TracedMachine],
    impl: Implementation,
    *,
    hypothesis_settings: settings | None = None,
    in_summary: bool = False,
    trace_dir: str | Path | None = None,
    shrink_examples: int | object | None = PROFILE_DEFAULT,
    minimize_budget: MinimizeBudget | None = RUN_BUDGET,
    seed: int | None = None,
    full_run: bool = True,
) -> RuleStats:
    """Run ``machine_cls`` against ``impl``; on failure save and explain a trace per failure.

    ``in_summary`` adds the run's rule counts (and any trace it writes) to the table printed
    at the end of the pytest session; ``machine_test`` sets it, tests of the framework don't.
    ``trace_dir`` is where a failing run's traces go (default: ``trace_directory()``).
    ``shrink_examples`` bounds the examples spent after the first failure (default: the
    profile's, ``profiles.shrink_examples``; None: no bound); ``minimize_budget`` bounds the
    minimization of each trace (None: write Hypothesis's shrunk run as it is); settings without
    Hypothesis's shrink phase (the ``mutation`` profile: a mutant is killed at its first
    failure) minimize nothing either: a run that does not shrink wants its failure, not the
    shortest trace of it (each of up to 300 replays of an ``endpoint`` run costs seconds).
    ``seed`` fixes Hypothesis's randomness (``hypothesis.seed``; it overrides ``derandomize``):
    the bug catalogue's sweeps run one search under many seeds to measure its budget.
    ``full_run`` False (a preliminary pass, ``harness.deepening``): the run's rule counts are neither in the summary nor
    held to the coverage checks (a few examples need not reach every rule).
    """
    import_project()
    profiles.use_cache_directory()  # also when no conftest set the profiles up (a script, a benchmark)
    machine_cls.preflight(impl)
    stats = RuleStats(machine_cls.name, impl.name, machine_cls.rule_names_for(impl))
    if in_summary and full_run:
        RUNS.append(stats)
    profile = profiles.current_profile()
    deadline = budget.next_deadline(profiles.budget_seconds()) if profile in profiles.BUDGETED else None
    if shrink_examples is PROFILE_DEFAULT:
        shrink_examples = profiles.shrink_examples(profile)
    recorder = Recorder(deadline=deadline, shrink_examples=shrink_examples, clock=budget.clock())
    last: list[TracedMachine] = []
    directory = Path(trace_dir or trace_directory())

    def factory() -> TracedMachine:
        machine = machine_cls(impl, stats)
        recorder.started(machine)
        last[:] = [machine]
        stats.examples += 1
        return machine

    if seed is not None:
        factory = hypothesis_seed(seed)(factory)
    chosen = hypothesis_settings or capped_settings(impl)
    if Phase.shrink not in chosen.phases:
        minimize_budget = None
    if chosen.database is not None and not isinstance(chosen.database, Namespaced):
        # one factory serves every machine: without a namespace they would share (and prune) one key
        chosen = settings(chosen, database=Namespaced(chosen.database, f"{machine_cls.name}/{impl.name}"))
    repetitions = 0
    while True:
        try:
            run_state_machine_as_test(factory, settings=chosen)
        except StopRun as stop:
            if not recorder.best:
                break  # the time budget was spent before any failure: the run passed
            # Spent while shrinking: the shortest failing run seen of each failure is the result.
            best = recorder.shortest(distinct=chosen.report_multiple_bugs)
            error = best[0].error if len(best) == 1 else ExceptionGroup(f"{len(best)} distinct failures",
                                                                         [seen.error for seen in best])
            error.add_note(f"(Shrinking stopped: {stop}. The shortest failing run seen is reported.)")
            failures = [(seen.error, seen) for seen in best]
            _report_failures(error, failures, last, machine_cls, impl, in_summary, directory, minimize_budget)
            raise error from None
        except KeyboardInterrupt as interrupt:
            _write_best_so_far(interrupt, recorder, machine_cls, impl, in_summary, directory)
            raise
        except Exception as error:
            failures = [(leaf, recorder.seen(leaf)) for leaf in leaves(error)]
            _report_failures(error, failures, last, machine_cls, impl, in_summary, directory, minimize_budget)
            raise
        repetitions += 1
        if deadline is None or recorder.stop_reason():
            break
    # A run its deadline cut short before one whole repetition says nothing of its rules.
    # So does a budgeted run too short to expect every rule (profiles.coverage_checked).
    if full_run and repetitions and profiles.coverage_checked(profile, stats.examples):
        missing = stats.never_ran()
        if missing:
            raise AssertionError(
                f"machine {machine_cls.name} against {impl.name}: rules that never ran in "
                f"{stats.examples} examples: {', '.join(missing)}. A rule that never runs checks nothing: "
                "loosen its precondition or its strategy."
            )
        if profile in profiles.FLOORS_CHECKED:
            balance.check_floors(machine_cls, stats)
    return stats


def capped_settings(impl: Implementation) -> settings:
    """The active profile's settings, with at most ``impl.max_examples`` examples."""
    current = settings()
    if impl.max_examples is None or impl.max_examples >= current.max_examples:
        return current
    return settings(current, max_examples=impl.max_examples)


def _trace(machine_cls: type[TracedMachine], impl: Implementation, steps: tuple[Step, ...], failure: str) -> Trace:
    return Trace(machine_cls.name, impl.name, steps, failure=failure, adapter=impl.adapter, level=impl.level)


def _save(trace: Trace, directory: Path, in_summary: bool) -> tuple[Path | None, str]:
    """Write ``trace``; the path (None if it could not be written) and a sentence saying where."""
    try:
        path = save_trace(trace, directory)
    except OSError as os_error:
        return None, f"Could not write the trace to {directory}: {os_error}"
    if in_summary:
        TRACES_WRITTEN.append(path)
    return path, f"Trace written to {path}\nReplay it with:  python -m harness replay {path}"


def _report_failures(
    error: BaseException,
    failures: list[tuple[BaseException, Seen | None]],
    last: list[TracedMachine],
    machine_cls: type[TracedMachine],
    impl: Implementation,
    in_summary: bool,
    directory: Path,
    minimize_budget: MinimizeBudget | None,
) -> None:
    """One trace and one report for each distinct failure of the run (``failures``: each error
    Hypothesis reported, with what the recorder saw of it)."""
    written = []
    for leaf, seen in failures:
        if seen is not None:
            steps, failure = seen.steps, seen.failure
        else:  # raised outside a step or a check (in a rule's own code): the last example's steps
            machine = last[0] if last else None
            steps, failure = (tuple(machine.steps) if machine else ()), failure_of(leaf, machine)
        trace = _trace(machine_cls, impl, steps, str(failure))
        written.append(_write_and_explain(leaf, trace, machine_cls, impl, in_summary, directory, minimize_budget))
    if len(failures) > 1:
        listing = "\n".join(f"  {failure_of(leaf)}: {path}" for (leaf, _), path in zip(failures, written, strict=True))
        error.add_note(f"\n{len(failures)} distinct failures, one trace each:\n{listing}")


def _write_and_explain(
    error: BaseException,
    trace: Trace,
    machine_cls: type[TracedMachine],
    impl: Implementation,
    in_summary: bool,
    directory: Path,
    minimize_budget: MinimizeBudget | None,
) -> Path | None:
    minimized_note = ""
    if minimize_budget is not None and trace.steps:
        try:
            minimized = minimize(trace, machine_cls, impl, minimize_budget)
        except KeyboardInterrupt:
            path, where = _save(trace, directory, in_summary)
            print(f"Interrupted while minimizing. {where}", file=sys.stderr)
            raise
        except NothingToMinimize as nothing:
            minimized_note = f"Not minimized: {nothing}."
        except Exception as failure:  # the minimizer must never hide the real failure
            minimized_note = f"Not minimized: {type(failure).__name__}: {failure}"
        else:
            trace, minimized_note = minimized.trace, f"Hypothesis's shrunk run {minimized.summary()}."
    path, where = _save(trace, directory, in_summary)
    try:
        report = explain(trace, machine_cls, impl)
    except Exception as explain_error:  # the report must never hide the real failure
        report = f"(no step-by-step report: {type(explain_error).__name__}: {explain_error})"
    error.add_note(f"\n{where}\n{minimized_note}\n\n{report}")
    return path


def _write_best_so_far(
    interrupt: KeyboardInterrupt,
    recorder: Recorder,
    machine_cls: type[TracedMachine],
    impl: Implementation,
    in_summary: bool,
    directory: Path,
) -> None:
    """Interrupted: write the shortest failing run seen of each distinct failure, and say so."""
    if not recorder.best:
        message = f"Interrupted: machine {machine_cls.name} against {impl.name} had not failed yet; no trace written."
    else:
        lines = [f"Interrupted: machine {machine_cls.name} against {impl.name} had failed; "
                 "the best counterexample found so far of each failure:"]
        for seen in recorder.best.values():
            path, where = _save(_trace(machine_cls, impl, seen.steps, str(seen.failure)), directory, in_summary)
            lines.append(f"  {seen.failure} ({len(seen.steps)} steps)")
            lines.append("  " + where.replace("\n", "\n  "))
            if path is not None:
                lines.append(f"  Minimize it with:  python -m harness minimize {path}")
        message = "\n".join(lines)
    interrupt.add_note(message)
    print(message, file=sys.stderr)
    if sys.stderr is not sys.__stderr__ and sys.__stderr__ is not None:  # pytest captures stderr; Ctrl-C shows no capture
        print(message, file=sys.__stderr__)


@attrs.frozen
class Caught:
    """A failure ``expect_caught`` saw: the error, the shrunk trace, the step-by-step report."""

    error: Exception
    trace: Trace
    report: str


def expect_caught(
    machine_cls: type[TracedMachine],
    impl: Implementation,
    *,
    hypothesis_settings: settings,
    trace_dir: str | Path,
    errors: tuple[type[Exception], ...] = (AssertionError,),
    shrink_examples: int | object | None = PROFILE_DEFAULT,
    seed: int | None = None,
) -> Caught:
    """Run ``machine_cls`` against a deliberately buggy ``impl`` and insist it is caught.

    The run must fail with one of ``errors``, write exactly one trace into ``trace_dir``
    (which should start empty), and explain itself with a marked first divergence. What a
    test asks beyond that (the trace is short, it passes without the bug) it asks of the
    returned ``Caught``. ``shrink_examples`` is passed on to ``run_machine``.
    """
    try:
        run_machine(machine_cls, impl, hypothesis_settings=hypothesis_settings, trace_dir=trace_dir,
                    shrink_examples=shrink_examples, seed=seed)
    except errors as error:
        caught = error
    else:
        raise AssertionError(f"machine {machine_cls.name} did not catch implementation {impl.name!r}")
    report = "\n".join(getattr(caught, "__notes__", []))
    traces = sorted(Path(trace_dir).glob(f"{machine_cls.name}-*.json"))
    assert len(traces) == 1, (f"expected one trace of {machine_cls.name} in {trace_dir}, found {traces}; "
                              f"the run failed with {failure_of(caught)}")
    assert "first divergence" in report, f"{caught!r}\n{report}"
    return Caught(caught, load_trace(traces[0]), report)


def machine_test(
    machine_cls: type[TracedMachine], settings_for: Callable[..., settings] | None = None
) -> Callable[..., None]:
    """A pytest test that runs ``machine_cls`` against each of its registered implementations.

    ``settings_for``, called when the test runs with the implementation's name, gives the
    Hypothesis settings (default: the active profile's); called without one, it gives the
    settings of the implementations not singled out (the bug benchmark asks so). Every
    implementation must have a level the machine checks (``RegistrationError`` otherwise, at
    collection). In a session that stops at its first failure each implementation also gets a
    preliminary pass of each depth (``<implementation>-shallow``, ``<implementation>-deeper``:
    see ``harness.deepening``).
    """
    import pytest

    impls = implementations(machine_cls.name)
    for impl in impls:
        check_level(machine_cls, impl)
    if not impls:
        raise RegistrationError(f"no implementation is registered for machine {machine_cls.name!r}")

    params = [pytest.param(impl, id=impl.name) for impl in impls]
    if deepening.enabled:
        preliminary = [deepening.Preliminary(impl, depth) for depth in deepening.DEPTHS for impl in impls]
        params = [pytest.param(p, id=p.id) for p in preliminary] + params

    @pytest.mark.parametrize("implementation", params)
    def test(implementation: Implementation | deepening.Preliminary) -> None:
        preliminary = isinstance(implementation, deepening.Preliminary)
        name = implementation.implementation.name if preliminary else implementation.name
        chosen = settings_for(name) if settings_for is not None else None
        # What is registered under that name now: a session may replace an implementation after
        # this module was collected (MBT_PLANT_BUG plants a catalogued bug into it).
        impl = registered(machine_cls.name, name)
        if preliminary:
            base = chosen or capped_settings(impl)
            chosen = settings(base, max_examples=implementation.depth.examples_of(base.max_examples))
        shrink = deepening.shrink_examples() if deepening.enabled else PROFILE_DEFAULT
        run_machine(machine_cls, impl, hypothesis_settings=chosen, in_summary=True, full_run=not preliminary,
                    shrink_examples=shrink)

    test.__name__ = test.__qualname__ = f"test_{machine_cls.name}_machine"
    test.__doc__ = f"{machine_cls.__name__} against every registered {machine_cls.name} implementation."
    test.mbt_machine = machine_cls.name  # one machine run per collected item: see conftest's budget plan
    test.mbt_settings = settings_for or settings  # what a run of this test uses (the bug benchmark asks, with no name)
    return test
