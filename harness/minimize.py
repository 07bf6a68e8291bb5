"""The trace minimizer: fewer steps and simpler arguments, failing the same check.

Hypothesis shrinks the choices a run drew, not the trace a person reads, and a shrunk
machine run often keeps steps that do nothing (a clock advanced by 0, an empty broadcast).
``minimize`` works on the trace itself, with the project's own ``replay``:

1. cut everything after the step that fails;
2. delta debugging over the steps (ddmin): remove chunks, halving their size down to single
   steps, keeping a removal whenever the replay still fails;
3. simplify each argument (integers towards 0, shorter strings and lists, earlier indices,
   ``False``), keeping a change whenever the replay still fails;
4. delta debugging again if an argument changed.

"Still fails" means fails *the same check*: the same exception type and the same first line
once numbers and ids are blotted out (``Failure.signature``), at some step. A candidate
that passes, goes stale or fails otherwise is dropped. The result is 1-minimal when the
budget suffices: removing any single step makes the replay pass, go stale or fail another
check.

The work is bounded by counts (``MinimizeBudget``: replays and steps replayed), never by
time, so a derandomized run minimizes the same way everywhere and cannot run away. It runs
on every trace a failing run writes, and on any trace from the command line::

    python -m harness minimize TRACE [--out FILE]
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs

from harness.failure import Failure
from harness.machine import TracedMachine
from harness.registry import Implementation
from harness.replay import replay, resolve
from harness.trace import Step, Trace


@attrs.frozen
class MinimizeBudget:
    #: Candidate traces replayed, at most.
    replays: int = 300
    #: Steps replayed over all candidates, at most.
    steps: int = 10_000


#: The budget of the minimization a failing run does before writing its trace.
RUN_BUDGET = MinimizeBudget()


@attrs.frozen
class Minimized:
    trace: Trace
    original_steps: int
    replays: int
    steps_replayed: int
    #: The budget ran out before the trace was 1-minimal.
    exhausted: bool

    def summary(self) -> str:
        left = ", budget spent" if self.exhausted else ""
        return (f"minimized from {self.original_steps} to {len(self.trace.steps)} steps "
                f"({self.replays} replays, {self.steps_replayed} steps replayed{left})")


class NothingToMinimize(ValueError):
    """The trace does not fail in replay (it passes or is stale)."""


class _OutOfBudget(Exception):
    pass


class _Search:
    def __init__(self, trace: Trace, machine_cls: type[TracedMachine], impl: Implementation, budget: MinimizeBudget):
        self.trace, self.machine_cls, self.impl, self.budget = trace, machine_cls, impl, budget
        self.replays = self.steps_replayed = 0
        self.tried: dict[tuple[str, ...], list[Step] | None] = {}
        first = self._replay(list(trace.steps))
        if first.status != "failed":
            raise NothingToMinimize(f"nothing to minimize: the trace {first} in replay")
        assert first.failure is not None and first.step is not None
        self.failure: Failure = first.failure
        self.best = list(trace.steps[: first.step + 1])

    def _replay(self, steps: list[Step]):
        if self.replays >= self.budget.replays or self.steps_replayed + len(steps) > self.budget.steps:
            raise _OutOfBudget
        self.replays += 1
        outcome = replay(attrs.evolve(self.trace, steps=tuple(steps)), self.machine_cls, self.impl)
        self.steps_replayed += len(steps) if outcome.step is None else outcome.step + 1
        return outcome

    def fails(self, steps: list[Step]) -> list[Step] | None:
        """The candidate cut after its failing step, if it fails the same check; else None."""
        key = tuple(step.key() for step in steps)
        if key not in self.tried:
            outcome = self._replay(steps)
            same = outcome.status == "failed" and outcome.failure.signature() == self.failure.signature()
            self.tried[key] = steps[: outcome.step + 1] if same else None
            if same:
                self.failure = outcome.failure
        return self.tried[key]

    def ddmin(self, steps: list[Step]) -> list[Step]:
        granularity = 2
        while len(steps) >= 2:
            size = -(-len(steps) // granularity)
            for start in range(0, len(steps), size):
                kept = self.fails(steps[:start] + steps[start + size:])
                if kept is not None:
                    steps = self.best = kept
                    granularity = max(granularity - 1, 2)
                    break
            else:
                if size == 1:
                    break
                granularity = min(granularity * 2, len(steps))
        return steps

    def simplify_arguments(self, steps: list[Step]) -> list[Step]:
        changed = True
        while changed:
            changed = False
            index = 0
            while index < len(steps):
                step = steps[index]
                for name, value in step.args.items():
                    for simpler in simpler_values(value):
                        candidate = [*steps[:index], Step(step.rule, {**step.args, name: simpler}), *steps[index + 1:]]
                        kept = self.fails(candidate)
                        if kept is not None:
                            steps = self.best = kept
                            changed = True
                            break
                    if changed:
                        break
                if changed:
                    break
                index += 1
        return steps


def simpler_values(value: Any) -> Iterator[Any]:
    """Values strictly simpler than ``value`` and of its type, simplest first."""
    seen: list[Any] = [value]

    def fresh(candidates: list[Any]) -> Iterator[Any]:
        for candidate in candidates:
            if candidate not in seen:
                seen.append(candidate)
                yield candidate

    if isinstance(value, bool):
        yield from fresh([False] if value else [])
    elif isinstance(value, int):
        if value:
            half = value // 2 if value > 0 else -(-value // 2)
            yield from fresh([0, *([-value] if value < 0 else []), half, value - (1 if value > 0 else -1)])
    elif isinstance(value, float):
        yield from fresh([0.0, float(int(value))] if value else [])
    elif isinstance(value, str):
        yield from fresh(["", value[: len(value) // 2], value[:-1]] if value else [])
    elif isinstance(value, list):
        if value:
            yield from fresh([[], value[: len(value) // 2]])
            yield from fresh([value[:i] + value[i + 1:] for i in range(len(value))])
            for i, item in enumerate(value):
                yield from fresh([[*value[:i], simpler, *value[i + 1:]] for simpler in simpler_values(item)])
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from fresh([{**value, key: simpler} for simpler in simpler_values(item)])


def minimize(
    trace: Trace,
    machine_cls: type[TracedMachine] | None = None,
    impl: Implementation | None = None,
    budget: MinimizeBudget = RUN_BUDGET,
) -> Minimized:
    """The smallest trace found within ``budget`` that fails the same check as ``trace``.

    Raises ``NothingToMinimize`` if ``trace`` does not fail in replay.
    """
    machine_cls, impl = resolve(trace, machine_cls, impl)
    search = _Search(trace, machine_cls, impl, budget)
    exhausted = False
    try:
        steps = search.ddmin(search.best)
        simplified = search.simplify_arguments(steps)
        if simplified != steps:
            search.ddmin(simplified)
    except _OutOfBudget:
        exhausted = True
    minimized = attrs.evolve(trace, steps=tuple(search.best), failure=str(search.failure))
    return Minimized(minimized, len(trace.steps), search.replays, search.steps_replayed, exhausted)
