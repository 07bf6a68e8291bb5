"""``TracedMachine``: a Hypothesis rule-based state machine whose every step is data.

A machine is written in two halves:

* **rules** (Hypothesis ``@rule`` methods) draw raw values, resolve them against the
  machine's state into concrete arguments, and call ``self.do("name", **args)``;
* **steps** (methods named ``step_<name>``) take those concrete arguments, check that they
  fit the current state with ``self.require(...)``, apply them to the model and to every
  replica, and assert what must hold.

``do`` records each step, so the run is a trace; replaying a trace calls ``do`` with the
recorded arguments, never the rules, so the same code runs live and in replay. A step whose
``require`` fails raises ``StepNotApplicable``: live, that is a bug of the machine's rules;
in replay, it means the trace is stale.

Invariants go in ``check()`` (run after every step), and ``observe()`` returns, for the
failure report, each replica's value next to the model's value; ``describe_step`` says what
a step does in the domain's words (by default ``rule(arg=value, ...)`` with ids shortened).

Under ``run_machine`` a machine reports to its run's ``Recorder`` every failure it sees (for
one trace per distinct failure, and the best counterexample so far when a run is
interrupted), and asks it before each step whether the run must stop (time budget spent,
shrinking budget spent).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition

from harness.trace import Step, normalize_args

if TYPE_CHECKING:
    from harness.recorder import Recorder
    from harness.registry import Implementation


class StepNotApplicable(Exception):
    """A step whose arguments do not fit the machine's state (in replay: a stale trace)."""


@attrs.frozen
class Observation:
    """One line of a failure report: what the model says and what a replica has.

    ``acceptable`` is the machine's verdict when equality is not the test (an implementation
    of a relaxed level may differ from the model and still be right); by default a replica
    agrees when its value equals the model's.
    """

    label: str
    model: Any
    implementation: Any
    acceptable: bool | None = None

    @property
    def agrees(self) -> bool:
        if self.acceptable is not None:
            return self.acceptable
        return self.model == self.implementation


@attrs.define
class RuleStats:
    """How often each rule ran and how often its precondition refused it, over a whole run."""

    machine: str
    implementation: str
    rules: tuple[str, ...]
    ran: Counter = attrs.field(factory=Counter)
    refused: Counter = attrs.field(factory=Counter)
    examples: int = 0

    def never_ran(self) -> list[str]:
        return [r for r in self.rules if self.ran[r] == 0]

    def rows(self) -> list[tuple[str, int, int]]:
        return [(r, self.ran[r], self.refused[r]) for r in self.rules]


def guard(predicate: Callable[[Any], bool]) -> Callable:
    """A precondition that is counted: each time it refuses its rule, the run's stats say so.

    Use it exactly like Hypothesis's ``@precondition``, above or below ``@rule``.
    """

    def decorate(function: Callable) -> Callable:
        name = function.__name__

        def counted(machine: TracedMachine) -> bool:
            allowed = bool(predicate(machine))
            if not allowed:
                machine.stats.refused[name] += 1
            return allowed

        return precondition(counted)(function)

    return decorate


class TracedMachine(RuleBasedStateMachine):
    """Base of every machine in ``machines/``.

    Subclasses set ``name`` (the registry key of the type they check, e.g. ``"orset"``),
    define ``step_*`` methods and the rules that call them, and override ``check`` and
    ``observe``. They are built with the implementation under test.
    """

    name: ClassVar[str] = ""
    #: Levels of implementation this machine can check (see ``harness.registry``).
    levels: ClassVar[tuple[str, ...]] = ("exact",)
    #: Each step's class of rules, step name -> class (``harness.balance``; merged along the MRO).
    rule_classes: ClassVar[dict[str, str]] = {}
    #: The least share of a run's steps each class must get under ``ci`` (``harness.balance``).
    class_floors: ClassVar[dict[str, float]] = {}
    #: Its implementations run in real time (processes, sockets): two replays of a failing trace
    #: may word the same failure with other numbers (``harness.replay.reproduces``).
    real_time: ClassVar[bool] = False
    #: Steps that committed traces take and no rule draws: left out of ``rule_names`` (the
    #: coverage table's rows), since no run of the search takes them.
    trace_only_steps: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name"):
            from harness.registry import register_machine

            register_machine(cls)

    def __init__(self, implementation: Implementation, stats: RuleStats | None = None) -> None:
        super().__init__()
        self.implementation = implementation
        self.steps: list[Step] = []
        if stats is None:
            stats = RuleStats(self.name, implementation.name, self.rule_names_for(implementation))
        self.stats = stats
        #: The run this machine reports to (set by ``run_machine``; none in replay).
        self.recorder: Recorder | None = None

    @classmethod
    def rule_names(cls) -> tuple[str, ...]:
        """The machine's steps, in the order they are defined (but ``trace_only_steps``)."""
        names = []
        for klass in reversed(cls.__mro__):
            for attribute in vars(klass):
                if attribute.startswith("step_") and attribute[5:] not in names and attribute[5:] not in cls.trace_only_steps:
                    names.append(attribute[5:])
        return tuple(names)

    @classmethod
    def rule_names_for(cls, implementation: Implementation) -> tuple[str, ...]:
        """The steps this machine can take against ``implementation`` (the coverage table's
        rows): all of them, unless a machine has steps some implementations cannot take."""
        return cls.rule_names()

    def do(self, rule: str, **args: Any) -> None:
        """Record the step ``rule(**args)`` and run it."""
        method = getattr(self, f"step_{rule}", None)
        if method is None:
            raise StepNotApplicable(f"{type(self).__name__} has no step {rule!r}")
        args = normalize_args(args, f"step {rule}")
        step = Step(rule, args)
        if self.recorder is not None:
            self.recorder.before_step(self, step)
        self.steps.append(step)
        self.stats.ran[rule] += 1
        try:
            method(**args)
        except TypeError as error:
            # Wrong or missing argument names: in replay, the trace no longer fits the step.
            if "argument" in str(error) and error.__traceback__ is not None and error.__traceback__.tb_next is None:
                raise StepNotApplicable(f"step {rule}: {error}") from None
            self._failed(error)
            raise
        except Exception as error:
            self._failed(error)
            raise

    def _failed(self, error: Exception) -> None:
        if self.recorder is not None:
            self.recorder.failed(self, error)

    def describe_step(self, step: Step) -> str:
        """One line for the report, before ``step`` runs: what it does, in the domain's words.

        Machines may override it to name actors and payloads (who sent which operation to
        whom); the default is ``rule(arg=value, ...)`` with long ids shortened.
        """
        return step.describe()

    def require(self, condition: bool, reason: str) -> None:
        """Refuse a step whose arguments do not fit the current state."""
        if not condition:
            raise StepNotApplicable(reason)

    @classmethod
    def preflight(cls, implementation: Implementation) -> None:
        """Refuse an implementation this machine cannot drive, before any example runs."""

    def check(self) -> None:
        """Invariants: assert what must hold after every step."""

    def observe(self) -> list[Observation]:
        """For the failure report: each replica's value beside the model's value."""
        return []

    def teardown(self) -> None:
        """Release what the implementation holds (files, sockets); called after every run."""

    @invariant()
    def _check_invariants(self) -> None:
        try:
            self.check()
        except Exception as error:
            self._failed(error)
            raise
