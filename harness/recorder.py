"""What one ``run_machine`` call has seen fail, and when it must stop.

Hypothesis hands back only the exceptions of the failures it reports (an ``ExceptionGroup``
when there are several) and re-raises ``KeyboardInterrupt`` as it is. The machines report to
a ``Recorder`` instead, as they go:

* every failure with the steps that led to it, so each exception Hypothesis reports is
  matched to its own trace (``seen``), and the shortest failing steps of each distinct
  failure (``Failure.origin``) are at hand when the run is interrupted (``best``);
* before every step, whether the run must stop: its time budget is spent (nightly), or the
  examples it may spend after the first failure are spent (bounded shrinking, counted in
  examples so a derandomized run stays reproducible). Then the step raises ``StopRun``, an
  interrupt of the run: Hypothesis lets a ``KeyboardInterrupt`` through at once, without
  recording the example, so the run ends within one step and ``run_machine`` reports the
  best failures seen so far itself. (Ending only the example, by ``reject()`` or by skipping
  steps, or with any other exception, makes Hypothesis see one choice sequence behave two
  ways and call the test flaky.)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

from harness.failure import Failure, failure_of
from harness.trace import Step

if TYPE_CHECKING:
    from harness.machine import TracedMachine

#: How many recent failures are kept to match the exceptions Hypothesis finally reports.
RECENT_FAILURES = 256


class StopRun(KeyboardInterrupt):
    """Raised before a step of a run that must stop. It is an interrupt because Hypothesis
    lets only interrupts through untouched; ``run_machine`` always catches it."""


@attrs.frozen
class Seen:
    """One failing example: its steps, the check that failed and the error it raised."""

    steps: tuple[Step, ...]
    failure: Failure
    error: BaseException = attrs.field(eq=False, repr=False)


class Recorder:
    def __init__(
        self,
        *,
        deadline: float | None = None,
        shrink_examples: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.deadline = deadline
        self.shrink_examples = shrink_examples
        self.clock = clock
        self.examples = 0
        self.first_failure_at: int | None = None
        self.recent: dict[int, tuple[BaseException, Seen]] = {}
        #: The shortest failing steps of each distinct failure (by ``Failure.origin``).
        self.best: dict[tuple[str, str], Seen] = {}

    # ----- examples and steps ----------------------------------------------------------

    def started(self, machine: TracedMachine) -> None:
        """A new example begins with ``machine``."""
        self.examples += 1
        machine.recorder = self

    def stop_reason(self) -> str:
        """Why the run has stopped ("" while it goes on)."""
        if self.deadline is not None and self.clock() >= self.deadline:
            return "time budget spent"
        if (
            self.shrink_examples is not None
            and self.first_failure_at is not None
            and self.examples - self.first_failure_at > self.shrink_examples
        ):
            return f"shrinking budget of {self.shrink_examples} examples spent"
        return ""

    def before_step(self, machine: TracedMachine, step: Step) -> None:
        """Stop the run (``StopRun``) if its budget is spent."""
        reason = self.stop_reason()
        if reason:
            raise StopRun(reason)

    # ----- failures -------------------------------------------------------------------

    def failed(self, machine: TracedMachine, error: BaseException) -> None:
        if id(error) in self.recent:
            return  # the same error passing through a nested step
        if self.first_failure_at is None:
            self.first_failure_at = self.examples
        seen = Seen(tuple(machine.steps), failure_of(error, machine), error)
        self.recent[id(error)] = (error, seen)
        while len(self.recent) > RECENT_FAILURES:
            del self.recent[next(iter(self.recent))]
        origin = seen.failure.origin()
        best = self.best.get(origin)
        if best is None or len(seen.steps) < len(best.steps):
            self.best[origin] = seen

    def shortest(self, distinct: bool = True) -> list[Seen]:
        """The best failing run of each distinct failure, or (``distinct=False``, as with
        ``report_multiple_bugs=False``) the shortest of all."""
        best = list(self.best.values())
        return best if distinct or not best else [min(best, key=lambda seen: len(seen.steps))]

    def seen(self, error: BaseException) -> Seen | None:
        """The steps and failure of ``error``, if a machine of this run raised it."""
        entry = self.recent.get(id(error))
        return entry[1] if entry is not None and entry[0] is error else None
