"""One search for one planted bug, measured: found or not, CPU seconds and examples to the
first failure, the shrunk trace. Used by the sweep, the benchmark and the bug tests.

The machine is wrapped in a subclass that notes the first failure as it happens (a step or
a check raising), so what is measured is the search, not the shrinking after it; the trace
is what ``harness.run_machine`` writes once it has shrunk the failure.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs
from hypothesis import Phase, settings

from harness import Trace, load_trace, replay, run_machine
from harness.machine import StepNotApplicable
from harness.minimize import RUN_BUDGET
from implementations.transport.process import process_table
from tests.bugs.catalogue import Bug, Search

#: Hypothesis's phases for a search that stops at the first failure (no shrinking): the
#: examples it generates are the same as a full run's up to that failure (the target phase
#: runs mixed in with generation, where a machine calls ``hypothesis.target``).
SEARCH_ONLY = (Phase.generate, Phase.target)
FULL = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink)


@attrs.frozen
class Hunt:
    bug: str
    found: bool
    #: CPU seconds of this process from the start of the run to the first failure (or to its end).
    seconds: float
    #: Examples run up to and including the first failing one (or all of them if none failed).
    examples: int
    #: The first line of the first failure.
    failure: str = ""
    #: The trace the run wrote after shrinking (None when not found or not shrunk).
    trace: Trace | None = attrs.field(default=None, eq=False)

    @property
    def steps(self) -> int | None:
        return None if self.trace is None else len(self.trace.steps)


#: How often (wall seconds) ``tree_cpu_seconds`` reads its live children's CPU from ``/proc`` again.
CHILDREN_READ_EVERY = 0.25
_children_cpu: list[float] = [0.0, -CHILDREN_READ_EVERY]  # [CPU seconds of live children, when read]


def _live_children_cpu() -> float:
    """CPU seconds of this process's live descendants, from one read of the process table."""
    table = process_table()
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    ticks, seen, pending = 0, set(), list(children.get(os.getpid(), []))
    while pending:
        pid = pending.pop()
        if pid not in seen:  # (a pid reused while the table was read could make a loop)
            seen.add(pid)
            ticks += table[pid][1]
            pending += children.get(pid, [])
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds() -> float:
    """CPU seconds of this process and of its children, the live ones too: a machine of node
    processes (``realnet``) spends most of its CPU in them, where ``time.process_time`` does not
    look (it counted 0.2 s to a realnet bug's first failure, and let shrinking run for Hypothesis's
    own five-minute limit). The live children are read at most every ``CHILDREN_READ_EVERY`` s,
    and again as soon as a child was reaped: its CPU has moved from the live ones to the reaped
    ones, and the last read of the live ones would count it twice."""
    times = os.times()
    reaped = times.children_user + times.children_system
    if time.monotonic() - _children_cpu[1] >= CHILDREN_READ_EVERY or reaped != _children_cpu[2]:
        _children_cpu[:] = [_live_children_cpu(), time.monotonic(), reaped]
    return times.user + times.system + reaped + _children_cpu[0]


class OutOfTime(KeyboardInterrupt):
    """Raised before a step once a hunt's CPU budget is spent: Hypothesis lets interrupts
    through at once, so the run ends within one step."""


class _Probe:
    def __init__(self, cpu_seconds: float | None = None, shrink_seconds: float | None = None,
                 shrink_examples: int | None = None) -> None:
        self.examples = 0
        self.shrink_examples = shrink_examples
        self.last_example: int | None = None
        self.first: tuple[int, float, str] | None = None
        self.started = tree_cpu_seconds()
        self.deadline = None if cpu_seconds is None else self.started + cpu_seconds
        self.shrink_seconds = shrink_seconds
        #: The shortest failing run seen (steps), for a run stopped while it shrinks.
        self.shortest: list | None = None

    def failed(self, error: BaseException, steps: list) -> None:
        now = tree_cpu_seconds()
        if self.first is None:
            text = str(error).strip().splitlines()
            self.first = (self.examples, now - self.started, f"{type(error).__name__}: {text[0] if text else ''}"[:200])
            if self.shrink_seconds is not None:
                self.deadline = now + self.shrink_seconds
            if self.shrink_examples is not None:
                self.last_example = self.examples + self.shrink_examples
        if self.shortest is None or len(steps) < len(self.shortest):
            self.shortest = list(steps)

    def before_step(self) -> None:
        if self.deadline is not None and tree_cpu_seconds() > self.deadline:
            raise OutOfTime("the hunt's CPU budget is spent")
        if self.last_example is not None and self.examples > self.last_example:
            raise OutOfTime("the hunt's shrinking budget (examples) is spent")


def probed(machine_cls: type, probe: _Probe) -> type:
    """``machine_cls`` noting its first failure in ``probe`` (not registered: no ``name`` of its own)."""

    class Probed(machine_cls):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            probe.examples += 1
            super().__init__(*args, **kwargs)

        def do(self, rule: str, **args: Any) -> None:
            probe.before_step()
            try:
                super().do(rule, **args)
            except StepNotApplicable:
                raise
            except Exception as error:
                probe.failed(error, self.steps)
                raise

        def check(self) -> None:
            try:
                super().check()
            except Exception as error:
                probe.failed(error, self.steps)
                raise

    Probed.__name__ = Probed.__qualname__ = machine_cls.__name__
    return Probed


def search_settings(search: Search, *, shrink: bool, base: settings | None = None) -> settings:
    """``base`` (the ``ci`` profile by default) with the search's examples and steps."""
    return settings(base or settings.get_profile("ci"), max_examples=search.examples, stateful_step_count=search.steps,
                    report_multiple_bugs=False, phases=FULL if shrink else SEARCH_ONLY)


def hunt(bug: Bug, hypothesis_settings: settings, *, seed: int | None = None, trace_dir: str | Path | None = None,
         cpu_seconds: float | None = None, shrink_seconds: float | None = None,
         shrink_examples: int | None = None, machine_cls: type | None = None) -> Hunt:
    """Run ``bug``'s machine against the planted bug once: at most ``cpu_seconds`` of CPU
    before the first failure, and ``shrink_seconds`` of CPU or ``shrink_examples`` examples
    after it (None: no bound; examples keep a derandomized run reproducible, seconds do not).
    ``machine_cls``: a variant of the bug's machine (default: the registered one)."""
    # The run itself bounds its shrinking (``shrink_examples``) and then writes its shortest
    # failing run; the probe only notes the first failure (and bounds CPU seconds, if asked).
    probe = _Probe(cpu_seconds, shrink_seconds)
    with tempfile.TemporaryDirectory(prefix="mbt-hunt-") as scratch:
        directory = Path(trace_dir or scratch)
        with bug.plant() as buggy:
            machine = probed(machine_cls or bug.machine_class(), probe)
            # What failed is what the probe saw: a coverage complaint is no catch.
            with contextlib.suppress(Exception, OutOfTime):
                # A search without shrinking wants no minimized trace either: only how far it got.
                run_machine(machine, buggy, hypothesis_settings=hypothesis_settings, trace_dir=directory, seed=seed,
                            shrink_examples=shrink_examples,
                            minimize_budget=RUN_BUDGET if Phase.shrink in hypothesis_settings.phases else None)
        if probe.first is None:
            return Hunt(bug.name, False, tree_cpu_seconds() - probe.started, probe.examples)
        examples, seconds, failure = probe.first
        traces = sorted(directory.glob(f"{bug.machine}-*.json"), key=lambda p: len(load_trace(p).steps))
        # Stopped while shrinking, no trace was written: the shortest failing run seen is the result.
        trace = load_trace(traces[0]) if traces else Trace(bug.machine, buggy.name, tuple(probe.shortest or ()), failure=failure)
        return Hunt(bug.name, True, seconds, examples, failure, trace)


# ----- worker processes ---------------------------------------------------------------------


def _init_worker() -> None:
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))


def in_workers(function: Callable[[Any], Any], tasks: Iterable[Any], workers: int) -> Iterator[Any]:
    """``function`` over ``tasks`` in ``workers`` forked processes, one fresh process per task
    (a plant's patches and Hypothesis's state never outlive their task); results as they come.
    The parent has loaded the project already, so every child mines the same constants."""
    tasks = list(tasks)
    if workers <= 1:
        yield from map(function, tasks)
        return
    with multiprocessing.get_context("fork").Pool(workers, initializer=_init_worker, maxtasksperchild=1) as pool:
        yield from pool.imap_unordered(function, tasks)


def load_everything() -> None:
    """The project's modules, the adapters, the profiles and the catalogue, in this process."""
    from harness import profiles
    from harness.registry import load_adapters
    from harness.runner import import_project
    from tests.bugs.catalogue import catalogue

    profiles.register_profiles()
    settings.load_profile("ci")
    import_project()
    load_adapters()
    catalogue()


# ----- the bug tests ------------------------------------------------------------------------

#: Examples a bug test's search may spend shrinking after the first failure; the harness then
#: minimizes the trace. 60 (measured 3 December 2026, every robust bug of the machines but
#: realnet's, 97 searches, derandomized, two workers on an idle host): 320 CPU s against 377
#: with 100, the longest trace 11 steps with either, the median as long as the shortest known
#: (4 against 3 steps); 29 of 97 longer than the shortest against 28. 40 saved more (26%) but
#: left lww-vector-clock-hash-tie-break at 22 steps, past MAX_TRACE_STEPS. (2 December: 100
#: against 300, the files' CPU 225 s against 435 s.) How short a search's traces get with full
#: shrinking is the bug-finding benchmark's column, not these tests'.
SHRINK_EXAMPLES = 60
#: Machines whose bug tests skip Hypothesis's shrinking: the trace minimizer every failing run ends
#: with (``harness.minimize``) alone gives traces within the bound, for less CPU. Measured side by
#: side: ``endpoint`` (3 December 2026; its examples open real QUIC connections, about 0.8 CPU s a
#: shrink example): its bug tests 24 CPU s against 58, traces of 2 to 5 steps against 2 to 4
#: (``close-without-flush``: 7.7 against 24.6, the same 3 steps); ``threshold`` (4 December, one
#: worker): 94 against 127, every bug caught (``recovery-counts-on-its-own-day``: 12.3 against
#: 21.2). Not the others: ``tasklist-later-claim-wins`` then lost the ``claim`` its trace must
#: show, and the mesh and pskt bug tests saved 4 to 7 CPU s each.
SHRINK_EXAMPLES_OF = {"endpoint": 0, "threshold": 0}
#: The longest shrunk trace a bug test accepts.
MAX_TRACE_STEPS = 20


def robust(machine: str) -> list[Bug]:
    """The bugs of ``machine`` with a measured robust budget: what its bug test searches for
    (the others are caught by replaying their committed trace, ``tests/test_bug_catalogue.py``)."""
    from tests.bugs.catalogue import bugs_of

    return [b for b in bugs_of(machine) if b.search() is not None]


def assert_caught(the_bug: Bug, max_steps: int = MAX_TRACE_STEPS, involves: frozenset[str] | None = None) -> list[str]:
    """Search for ``the_bug`` with its measured budget (derandomized ``ci``; shrinking bounded by
    ``SHRINK_EXAMPLES``, or its machine's ``SHRINK_EXAMPLES_OF``): it must be found, with a trace
    of at most ``max_steps`` steps that fails with the bug and passes without it and holds the
    rules ``involves`` (default: the rules the bug ``involves``). Returns the trace's rules."""
    search = the_bug.search()
    assert search is not None, f"{the_bug.name} has no robust budget: python -m tests.bugs.sweep {the_bug.name} --write"
    shrink_examples = SHRINK_EXAMPLES_OF.get(the_bug.machine, SHRINK_EXAMPLES)
    found = hunt(the_bug, search_settings(search, shrink=True), shrink_examples=shrink_examples)
    assert found.found, f"{the_bug.machine} did not catch {the_bug.name} in {found.examples} examples"
    trace = found.trace
    assert trace is not None and len(trace.steps) <= max_steps, [s.describe() for s in trace.steps]
    machine = the_bug.machine_class()
    with the_bug.plant() as buggy:
        assert replay(trace, machine, buggy).status == "failed"
    assert replay(trace, machine, the_bug.correct_implementation()).status == "passed", "it fails without the bug too"
    rules = [step.rule for step in trace.steps]
    involves = the_bug.involves if involves is None else involves
    # The operations a compound step ran count too (the policy machine's ``interleave`` runs one on
    # each of two processes on one store); "a|b" is satisfied by either rule.
    seen = set(rules) | {part["op"] for step in trace.steps for part in step.args.values()
                         if isinstance(part, dict) and isinstance(part.get("op"), str)}
    missing = [need for need in sorted(involves) if not seen & set(need.split("|"))]
    assert not missing, f"{the_bug.name}: expected {sorted(involves)} in {rules} (operations run: {sorted(seen)})"
    return rules
