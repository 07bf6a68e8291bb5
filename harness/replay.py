"""Replaying a saved trace, and explaining it step by step.

``replay`` drives a trace through its machine's steps, checking the invariants after each,
and says ``passed``, ``failed`` (at which step, and which check) or ``stale`` (a step no
longer fits the machine): a stale trace is never a pass. ``explain`` walks the same steps
and shows, after each, every replica's value beside the model's, marking the first step
where they part. Both do a constant amount of the framework's own work per step, so their
time is the machine's (``tests/test_replay_cost.py`` counts it).

A trace names its implementation and the module that registers it (``adapter``); if that
implementation is not registered, the module is imported, so a trace replays the same
whatever ``MBT_ADAPTERS`` says.
"""

from __future__ import annotations

import importlib
from typing import Any

import attrs

from harness.failure import Failure, failure_of
from harness.machine import Observation, StepNotApplicable, TracedMachine
from harness.registry import Implementation, implementation, machine_class
from harness.trace import Trace, shorten


@attrs.frozen
class Outcome:
    """What replaying a trace did: ``passed``, ``failed`` or ``stale``, at which step.

    ``failure`` is the failing check of a ``failed`` outcome."""

    status: str
    step: int | None = None
    message: str = ""
    failure: Failure | None = None

    def __str__(self) -> str:
        if self.status == "passed":
            return "passed"
        return f"{self.status} at step {self.step}: {self.message}"


def reproduces(first: Outcome, second: Outcome, machine_cls: type[TracedMachine]) -> bool:
    """Whether two replays of one trace did the same: equal outcomes; for a machine in real time
    (``real_time``), the same status, step and failing check in the same words, numbers aside
    (``Failure.signature``: how many answers beat a kill is the timing's)."""
    if first == second:
        return True
    if not machine_cls.real_time or first.failure is None or second.failure is None:
        return False
    return (first.status, first.step, first.failure.signature()) == (second.status, second.step,
                                                                     second.failure.signature())


def resolve(
    trace: Trace, machine_cls: type[TracedMachine] | None = None, impl: Implementation | None = None
) -> tuple[type[TracedMachine], Implementation]:
    """The machine class and implementation a trace names (importing its adapter if need be)."""
    if machine_cls is None:
        try:
            machine_cls = machine_class(trace.machine)
        except KeyError:
            if not trace.adapter:
                raise
            importlib.import_module(trace.adapter)  # it may define the machine too (a test's toy machine)
            machine_cls = machine_class(trace.machine)
    return machine_cls, impl or implementation(trace.machine, trace.implementation, adapter=trace.adapter)


def _failed(index: int, described: str, error: Exception, machine: TracedMachine) -> Outcome:
    failure = failure_of(error, machine)
    return Outcome("failed", index, f"{described}: {failure}", failure)


def replay(
    trace: Trace,
    machine_cls: type[TracedMachine] | None = None,
    impl: Implementation | None = None,
) -> Outcome:
    """Drive ``trace`` through its machine's steps, checking invariants after each."""
    machine_cls, impl = resolve(trace, machine_cls, impl)
    machine = machine_cls(impl)
    try:
        for index, step in enumerate(trace.steps):
            try:
                machine.do(step.rule, **step.args)
                machine.check()
            except StepNotApplicable as stale:
                return Outcome("stale", index, f"{step.describe()}: {stale}")
            except Exception as error:
                return _failed(index, step.describe(), error, machine)
        return Outcome("passed")
    finally:
        machine.teardown()


def show(value: Any) -> str:
    """A short, stable rendering of a value for reports (sets sorted, ids and bytes shortened)."""
    if isinstance(value, (set, frozenset)):
        return "{" + ", ".join(sorted(show(v) for v in value)) + "}"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(show(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if isinstance(value, bytes):
        return shorten(value)
    return repr(shorten(value))


def walk(
    trace: Trace,
    machine_cls: type[TracedMachine] | None = None,
    impl: Implementation | None = None,
) -> tuple[str, Outcome]:
    """The step-by-step report of ``trace`` and the outcome of the walk (as ``replay``'s)."""
    machine_cls, impl = resolve(trace, machine_cls, impl)
    machine = machine_cls(impl)
    origin = f"level {impl.level}" + (f", from {impl.adapter}" if impl.adapter else "")
    lines = [f"Step by step: machine {trace.machine}, implementation {impl.name} ({origin}) (✗ = differs from the model)"]
    previous: dict[str, Observation] = {}
    marked = False
    outcome = Outcome("passed")
    try:
        for index, step in enumerate(trace.steps):
            try:
                described = machine.describe_step(step)
            except Exception:  # a machine's description must never hide the walk
                described = step.describe()
            problem = ""
            try:
                machine.do(step.rule, **step.args)
            except StepNotApplicable as stale:
                outcome = Outcome("stale", index, f"{step.describe()}: {stale}")
                problem = f"stale: the step no longer fits the machine: {stale}"
            except Exception as error:
                outcome = _failed(index, step.describe(), error, machine)
                problem = f"{outcome.failure.check or 'the step'} failed: {outcome.failure.error}: {outcome.failure.line}"
            try:
                observations = machine.observe()
            except Exception as error:
                observations = []
                problem = problem or f"observe() raised {failure_of(error, machine)}"
            if not problem:
                try:
                    machine.check()
                except Exception as error:
                    outcome = _failed(index, step.describe(), error, machine)
                    problem = f"{outcome.failure.check or 'check'} failed: {outcome.failure.error}: {outcome.failure.line}"
            parted = problem or any(not o.agrees for o in observations)
            mark = "   <== first divergence" if parted and not marked else ""
            lines.append(f"{index:>4}  {described}{mark}")
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
    lines.append(f"Result: {outcome}")
    return "\n".join(lines), outcome


def explain(
    trace: Trace,
    machine_cls: type[TracedMachine] | None = None,
    impl: Implementation | None = None,
) -> str:
    """The trace walked step by step: each step, the values that changed, and a ``<==``
    at the first step where a replica parts from the model (or a step raises)."""
    return walk(trace, machine_cls, impl)[0]
