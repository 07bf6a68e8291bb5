"""Running machines: live under Hypothesis, and from saved traces.

``run_machine`` runs one machine against one implementation under the active profile.
When it fails, the shrunk run is saved as a trace (to ``MBT_TRACE_DIR``, default
``.traces/``) and the error gets a step-by-step report: each step, each replica's value
beside the model's, and a mark at the first step where they part.

``replay`` drives a trace through the same steps and says ``passed``, ``failed`` (with the
step) or ``stale`` (a step no longer fits the machine): a stale trace is never a pass.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from harness import profiles
from harness.machine import Observation, RuleStats, StepNotApplicable, TracedMachine
from harness.registry import Implementation, implementation, implementations, machine_class
from harness.trace import Trace, load_trace, save_trace

#: Every run of this process, for the coverage table printed at the end of a pytest session.
RUNS: list[RuleStats] = []
#: Every trace written by a failing run of this process.
TRACES_WRITTEN: list[Path] = []


#: The project's packages whose modules ``import_project`` loads (tests are not among them).
PROJECT_PACKAGES = ("models", "implementations", "machines", "harness", "examples")
_project_imported = False


def import_project() -> None:
    """Import every module of the project's packages, once.

    Why: Hypothesis mixes literal constants of the *loaded* local modules into the data it
    generates (``hypothesis.internal.constants_ast``). Without this, a derandomized machine
    run would generate different examples depending on which other modules the same process
    had happened to import (``pytest machines/tasklist.py`` against ``pytest``), and a
    reproducible run would be reproducible only for one selection of tests.
    """
    global _project_imported
    if _project_imported:
        return
    _project_imported = True
    for package_name in PROJECT_PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
            if not info.name.endswith("__main__"):
                importlib.import_module(info.name)


def trace_directory() -> Path:
    return Path(os.environ.get("MBT_TRACE_DIR", ".traces"))


def run_machine(
    machine_cls: type[TracedMachine],
    impl: Implementation,
    *,
    hypothesis_settings: settings | None = None,
    in_summary: bool = False,
    trace_dir: str | Path | None = None,
) -> RuleStats:
    """Run ``machine_cls`` against ``impl``; on failure save and explain the shrunk trace.

    ``in_summary`` adds the run's rule counts (and any trace it writes) to the table printed
    at the end of the pytest session; ``machine_test`` sets it, tests of the framework don't.
    ``trace_dir`` is where a failing run's trace goes (default: ``trace_directory()``).
    """
    import_project()
    machine_cls.preflight(impl)
    stats = RuleStats(machine_cls.name, impl.name, machine_cls.rule_names())
    if in_summary:
        RUNS.append(stats)
    last: list[TracedMachine] = []

    def factory() -> TracedMachine:
        machine = machine_cls(impl, stats)
        last[:] = [machine]
        stats.examples += 1
        return machine

    profile = profiles.current_profile()
    deadline = time.monotonic() + profiles.budget_seconds() if profile in profiles.BUDGETED else None
    run_settings = hypothesis_settings or capped_settings(impl)
    while True:
        try:
            run_state_machine_as_test(factory, settings=run_settings)
        except Exception as error:
            if last:
                _report_failure(error, machine_cls, impl, last[0], in_summary, Path(trace_dir or trace_directory()))
            raise
        if deadline is None or time.monotonic() >= deadline:
            break
    if profile in profiles.STRICT_COVERAGE:
        missing = stats.never_ran()
        if missing:
            raise AssertionError(
                f"machine {machine_cls.name} against {impl.name}: rules that never ran in "
                f"{stats.examples} examples: {', '.join(missing)}. A rule that never runs checks nothing: "
                "loosen its precondition or its strategy."
            )
    return stats


def capped_settings(impl: Implementation) -> settings:
    """The active profile's settings, with at most ``impl.max_examples`` examples."""
    current = settings()
    if impl.max_examples is None or impl.max_examples >= current.max_examples:
        return current
    return settings(current, max_examples=impl.max_examples)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


def _report_failure(
    error: Exception,
    machine_cls: type[TracedMachine],
    impl: Implementation,
    machine: TracedMachine,
    in_summary: bool,
    directory: Path,
) -> None:
    trace = Trace(machine_cls.name, impl.name, tuple(machine.steps), failure=_first_line(error))
    try:
        path = save_trace(trace, directory)
        if in_summary:
            TRACES_WRITTEN.append(path)
        where = f"Trace written to {path}\nReplay it with:  python -m harness replay {path}"
    except OSError as os_error:
        where = f"Could not write the trace to {directory}: {os_error}"
    try:
        report = explain(trace, machine_cls, impl)
    except Exception as explain_error:  # the report must never hide the real failure
        report = f"(no step-by-step report: {type(explain_error).__name__}: {explain_error})"
    error.add_note(f"\n{where}\n\n{report}")


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
) -> Caught:
    """Run ``machine_cls`` against a deliberately buggy ``impl`` and insist it is caught.

    The run must fail with one of ``errors``, write exactly one trace into ``trace_dir``
    (which should start empty), and explain itself with a marked first divergence. What a
    test asks beyond that (the trace is short, it passes without the bug) it asks of the
    returned ``Caught``.
    """
    try:
        run_machine(machine_cls, impl, hypothesis_settings=hypothesis_settings, trace_dir=trace_dir)
    except errors as error:
        caught = error
    else:
        raise AssertionError(f"machine {machine_cls.name} did not catch implementation {impl.name!r}")
    report = "\n".join(getattr(caught, "__notes__", []))
    traces = sorted(Path(trace_dir).glob(f"{machine_cls.name}-*.json"))
    assert len(traces) == 1, f"expected one trace of {machine_cls.name} in {trace_dir}, found {traces}"
    assert "first divergence" in report, f"{caught!r}\n{report}"
    return Caught(caught, load_trace(traces[0]), report)


@attrs.frozen
class Outcome:
    """What replaying a trace did: ``passed``, ``failed`` or ``stale``, at which step."""

    status: str
    step: int | None = None
    message: str = ""

    def __str__(self) -> str:
        if self.status == "passed":
            return "passed"
        return f"{self.status} at step {self.step}: {self.message}"


def _resolve(trace: Trace, machine_cls: type[TracedMachine] | None, impl: Implementation | None):
    return (
        machine_cls or machine_class(trace.machine),
        impl or implementation(trace.machine, trace.implementation),
    )


def replay(
    trace: Trace,
    machine_cls: type[TracedMachine] | None = None,
    impl: Implementation | None = None,
) -> Outcome:
    """Drive ``trace`` through its machine's steps, checking invariants after each."""
    machine_cls, impl = _resolve(trace, machine_cls, impl)
    machine = machine_cls(impl)
    try:
        for index, step in enumerate(trace.steps):
            try:
                machine.do(step.rule, **step.args)
                machine.check()
            except StepNotApplicable as stale:
                return Outcome("stale", index, f"{step.describe()}: {stale}")
            except Exception as error:
                return Outcome("failed", index, f"{step.describe()}: {_first_line(error)}")
        return Outcome("passed")
    finally:
        machine.teardown()


def show(value: Any) -> str:
    """A short, stable rendering of a value for reports (sets sorted, bytes shortened)."""
    if isinstance(value, (set, frozenset)):
        return "{" + ", ".join(sorted(show(v) for v in value)) + "}"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(show(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if isinstance(value, bytes):
        return value.hex()[:8] + ("…" if len(value) > 4 else "")
    return repr(value)


def explain(
    trace: Trace,
    machine_cls: type[TracedMachine] | None = None,
    impl: Implementation | None = None,
) -> str:
    """The trace walked step by step: each step, the values that changed, and a ``<==``
    at the first step where a replica parts from the model (or a step raises)."""
    machine_cls, impl = _resolve(trace, machine_cls, impl)
    machine = machine_cls(impl)
    lines = [f"Step by step: machine {trace.machine}, implementation {impl.name} (✗ = differs from the model)"]
    previous: dict[str, Observation] = {}
    marked = False
    try:
        for index, step in enumerate(trace.steps):
            problem = ""
            try:
                machine.do(step.rule, **step.args)
            except Exception as error:
                problem = f"raised {_first_line(error)}"
            try:
                observations = machine.observe()
            except Exception as error:
                observations = []
                problem = problem or f"observe() raised {_first_line(error)}"
            if not problem:
                try:
                    machine.check()
                except Exception as error:
                    problem = f"invariant failed: {_first_line(error)}"
            parted = problem or any(not o.agrees for o in observations)
            mark = "   <== first divergence" if parted and not marked else ""
            lines.append(f"{index:>4}  {step.describe()}{mark}")
            for obs in observations:
                if mark or previous.get(obs.label) != obs:
                    flag = "" if obs.agrees else "   ✗"
                    lines.append(f"        {obs.label:<14} model {show(obs.model):<28} impl {show(obs.implementation)}{flag}")
            previous = {o.label: o for o in observations}
            if problem:
                lines.append(f"        {problem}")
                break
            marked = marked or bool(mark)
    finally:
        machine.teardown()
    return "\n".join(lines)


def machine_test(machine_cls: type[TracedMachine]) -> Callable[..., None]:
    """A pytest test that runs ``machine_cls`` against each of its registered implementations."""
    import pytest

    impls = [i for i in implementations(machine_cls.name) if i.level in machine_cls.levels]
    if not impls:
        raise LookupError(f"no implementation is registered for machine {machine_cls.name!r}")

    @pytest.mark.parametrize("implementation", impls, ids=[i.name for i in impls])
    def test(implementation: Implementation) -> None:
        run_machine(machine_cls, implementation, in_summary=True)

    test.__name__ = test.__qualname__ = f"test_{machine_cls.name}_machine"
    test.__doc__ = f"{machine_cls.__name__} against every registered {machine_cls.name} implementation."
    return test
