"""What the harness costs: the OR-Set machine against a bare Hypothesis machine doing the same work.

    python benchmarks/harness_overhead.py [--examples N] [--steps N] [--rounds N] [--quick]

``BareORSet`` below is what someone would write without ``harness``: a plain
``RuleBasedStateMachine`` over the same three-at-most ``DeltaORSet`` replicas, with the same
rules drawing the same values (so Hypothesis, derandomized, explores the same runs), the
same model (``models.orset``) and the same check after every step, but no step records, no
argument normalization, no contract wrapper, no coverage counts, no report. ``ORSetMachine``
is the project's machine (``machines/orset.py``) run by ``harness.run_machine``, without its
``hostile`` rule (``SameRules``): the lies of a peer (messages the adapter crafts, floods of
dots among them: about 40% of the machine's CPU) are work of the machine's, not of the
harness, and the bare machine has no such rule; with it the two would explore other runs.

Two tables, both in CPU seconds of this process (``time.process_time``), both machines run
alternately in one process on the same seeds (``--rounds`` of them; one forced seed per run
pair, so both explore the same runs), the sums shown:

1. **steps**: a derandomized run of ``--examples`` examples x ``--steps`` steps against the
   correct ``DeltaORSet``; CPU per step, and the ratio traced / bare (target: at most 1.15).
2. **find + shrink** of one planted bug (a join that ignores the causal context, so an old
   add resurrects a removed element): the examples Hypothesis ran in its generate and
   shrink phases (its own statistics, not machine constructions), the shrunk run's length,
   and the CPU of the whole search, the harness's trace and report included (target: at
   most 1.5).

Measurements, never asserted.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule, run_state_machine_as_test
from tabulate import tabulate

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.measure import TestCaseCounter, cpu_base_note, forced_seed  # noqa: E402
from harness import Implementation, load_trace, run_machine  # noqa: E402
from harness.runner import import_project  # noqa: E402
from implementations.orset import DeltaORSet, DotStore  # noqa: E402
from machines.orset import POOL, ORSetMachine, canonical, model_value_of  # noqa: E402
from machines.replicated import ADVANCES, INDEX, SKEWS, START_NS  # noqa: E402
from models.clock import ManualClock  # noqa: E402
from models.orset import Add, Remove, next_tag, observed_tags  # noqa: E402


class ContextIgnoringJoin(DeltaORSet):
    """The planted bug: a join takes every incoming dot it does not hold, without asking
    whether its causal context says the dot was seen (and removed) already."""

    def join(self, other: DotStore) -> None:
        store = self._store
        for dot in [d for d in store.owner if d in other.context and d not in other.owner]:
            store.discard(dot)
        for dot, element in other.owner.items():
            if dot not in store.owner:  # the bug: dots in store.context are not skipped
                store.insert(element, dot)
        store.context.update(other.context)


class BareORSet(RuleBasedStateMachine):
    """The OR-Set machine's rules, model and check, on plain Hypothesis (see the module doc)."""

    replica_type: Any = DeltaORSet
    steps = 0

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock(START_NS)
        self.replicas: list[Any] = []
        self.history: list[set] = []
        self.unsent: list[set] = []
        self.in_flight: list[tuple[int, int, tuple[bytes, ...], frozenset]] = []
        self.delivered: list[tuple[int, int, tuple[bytes, ...], frozenset]] = []

    @initialize(count=st.integers(2, 5), skews=st.lists(SKEWS, min_size=5, max_size=5))
    def start(self, count: int, skews: list[int]) -> None:
        count = max(2, min(3, count))
        self.replicas = [self.replica_type(i) for i in range(count)]
        self.history = [set() for _ in range(count)]
        self.unsent = [set() for _ in range(count)]

    @rule(_unused=st.just(0))
    def sync_all(self, _unused: int) -> None:
        BareORSet.steps += 1
        for source in range(1, len(self.replicas)):
            self._sync(source, 0)
        for target in range(1, len(self.replicas)):
            self._sync(0, target)
        values = [r.value() for r in self.replicas]
        assert all(v == values[0] for v in values), f"replicas disagree after a full sync: {values}"

    @rule(ns=ADVANCES, _unused=st.just(0))
    def advance_clock(self, ns: int, _unused: int) -> None:
        BareORSet.steps += 1
        self.clock.advance(ns)

    @rule(draw=st.integers(0, 255))
    def add(self, draw: int) -> None:
        BareORSet.steps += 1
        replica = draw % len(self.replicas)
        which = draw // len(self.replicas)
        elsewhere: set = set()
        for other, history in enumerate(self.history):
            if other != replica:
                elsewhere |= model_value_of(frozenset(history))
        held = sorted(elsewhere, key=canonical) if which % 2 == 1 and elsewhere else POOL
        element = held[(which // 2) % len(held)]
        tag = next_tag(self.history[replica], replica)
        self.replicas[replica].add(element)
        self.history[replica].add(Add(element, tag))
        self.unsent[replica].add(Add(element, tag))
        assert element in self.replicas[replica].value()

    @rule(draw=st.integers(0, 255))
    def remove(self, draw: int) -> None:
        BareORSet.steps += 1
        replica = draw % len(self.replicas)
        which = draw // len(self.replicas)
        holding = sorted(model_value_of(frozenset(self.history[replica])), key=canonical)
        held = holding if which % 4 != 3 and holding else POOL
        element = held[(which // 4) % len(held)]
        observed = observed_tags(self.history[replica], element)
        self.replicas[replica].remove(element)
        if observed:
            self.history[replica].add(Remove(element, observed))
            self.unsent[replica].add(Remove(element, observed))
        assert element not in self.replicas[replica].value()

    @rule(source=INDEX, to=INDEX)
    def send_delta(self, source: int, to: int) -> None:
        BareORSet.steps += 1
        source = source % len(self.replicas)
        others = [i for i in range(len(self.replicas)) if i != source]
        target = others[to % len(others)]
        before = len(self.in_flight)
        self._broadcast(source)
        for index in range(before, len(self.in_flight)):
            if self.in_flight[index][1] == target:
                self._deliver(self.in_flight.pop(index))
                break

    @rule(source=INDEX, to=INDEX)
    def sync_full(self, source: int, to: int) -> None:
        BareORSet.steps += 1
        self._sync(source % len(self.replicas), to % len(self.replicas))

    @rule(source=INDEX)
    def broadcast(self, source: int) -> None:
        BareORSet.steps += 1
        self._broadcast(source % len(self.replicas))

    @precondition(lambda self: bool(self.in_flight))
    @rule(message=INDEX)
    def deliver(self, message: int) -> None:
        BareORSet.steps += 1
        self._deliver(self.in_flight.pop(message % len(self.in_flight)))

    @precondition(lambda self: bool(self.in_flight))
    @rule(message=INDEX)
    def drop(self, message: int) -> None:
        BareORSet.steps += 1
        self.in_flight.pop(message % len(self.in_flight))

    @precondition(lambda self: bool(self.in_flight))
    @rule(message=INDEX)
    def duplicate(self, message: int) -> None:
        BareORSet.steps += 1
        self.in_flight.append(self.in_flight[message % len(self.in_flight)])

    @precondition(lambda self: bool(self.delivered))
    @rule(message=INDEX)
    def redeliver(self, message: int) -> None:
        BareORSet.steps += 1
        _, target, deltas, ops = self.delivered[message % len(self.delivered)]
        for delta in deltas:
            self.replicas[target].apply_delta(delta)
        self.history[target] |= ops

    def _sync(self, source: int, target: int) -> None:
        self.replicas[target].merge(self.replicas[source].state())
        self.history[target] |= self.history[source]

    def _broadcast(self, source: int) -> None:
        deltas = tuple(self.replicas[source].take_deltas())
        ops = frozenset(self.unsent[source])
        self.unsent[source] = set()
        if deltas or ops:
            self.in_flight.extend((source, t, deltas, ops) for t in range(len(self.replicas)) if t != source)

    def _deliver(self, message: tuple[int, int, tuple[bytes, ...], frozenset]) -> None:
        _, target, deltas, ops = message
        for delta in deltas:
            self.replicas[target].apply_delta(delta)
        self.history[target] |= ops
        self.delivered.append(message)

    @invariant()
    def agrees_with_the_model(self) -> None:
        for i, (history, replica) in enumerate(zip(self.history, self.replicas, strict=True)):
            model, actual = model_value_of(frozenset(history)), frozenset(replica.value())
            assert model == actual, f"replica {i} has {actual!r}, the model says {model!r}"


class BareContextIgnoringJoin(BareORSet):
    replica_type = ContextIgnoringJoin


CORRECT = Implementation("orset", "delta-state-bench", lambda i, clock: DeltaORSet(i), level="exact")
PLANTED = Implementation("orset", "context-ignoring-join", lambda i, clock: ContextIgnoringJoin(i), level="exact")


def chosen_settings(examples: int, steps: int) -> settings:
    """The ci profile's search (no database, no explain phase), sized here; seeded by ``forced_seed``."""
    return settings(
        derandomize=False, database=None, max_examples=examples, stateful_step_count=steps, deadline=None,
        suppress_health_check=list(HealthCheck), print_blob=False, report_multiple_bugs=False,
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    )


@attrs.frozen
class Run:
    cpu: float
    steps: int
    counter: TestCaseCounter
    failed: bool
    shrunk_steps: int | None = None


def run_bare(machine: type[BareORSet], chosen: settings, seed: int) -> Run:
    BareORSet.steps = 0
    counter = TestCaseCounter()
    failed = False
    with forced_seed(seed), counter:
        started = time.process_time()
        try:
            run_state_machine_as_test(machine, settings=chosen)
        except AssertionError:
            failed = True
        elapsed = time.process_time() - started
    return Run(elapsed, BareORSet.steps, counter, failed)


class SameRules(ORSetMachine):
    """The OR-Set machine with the bare machine's rules: all of its own but ``hostile``."""

    hostile = None

    @classmethod
    def rule_names(cls) -> tuple[str, ...]:
        return tuple(name for name in super().rule_names() if name != "hostile")


def run_traced(impl: Implementation, chosen: settings, seed: int) -> Run:
    counter = TestCaseCounter()
    failed, steps, shrunk = False, 0, None
    with tempfile.TemporaryDirectory(prefix="harness-overhead-") as trace_dir, forced_seed(seed), counter:
        started = time.process_time()
        try:
            stats = run_machine(SameRules, impl, hypothesis_settings=chosen, trace_dir=trace_dir)
            steps = sum(stats.ran.values()) - stats.ran["start"]  # the bare machine counts rules, not its initialize
        except AssertionError:
            failed = True
        elapsed = time.process_time() - started
        for path in Path(trace_dir).glob("*.json"):
            shrunk = len(load_trace(path).steps) - 1  # without ``start``
    return Run(elapsed, steps, counter, failed, shrunk)


def alternating(bare: Callable[[int], Run], traced: Callable[[int], Run], seeds: range) -> tuple[list[Run], list[Run]]:
    """Both machines on each seed in turn, so a change in the machine's load hits both alike."""
    pairs = [(bare(seed), traced(seed)) for seed in seeds]
    return [b for b, _ in pairs], [t for _, t in pairs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200, help="examples of the passing run (default 200)")
    parser.add_argument("--steps", type=int, default=50, help="steps per example (default 50)")
    parser.add_argument("--rounds", type=int, default=3, help="seeds; each machine runs once per seed, alternating (default 3)")
    parser.add_argument("--quick", action="store_true", help="60 examples, 1 seed")
    args = parser.parse_args(argv)
    if args.quick:
        args.examples, args.rounds = 60, 1
    import_project()
    # Warm-up outside the timings: the first run in a process pays for Hypothesis's set-up.
    run_bare(BareORSet, chosen_settings(5, 10), 0)
    run_traced(CORRECT, chosen_settings(5, 10), 0)

    seeds = range(args.rounds)
    passing = chosen_settings(args.examples, args.steps)
    bare, traced = alternating(lambda seed: run_bare(BareORSet, passing, seed),
                               lambda seed: run_traced(CORRECT, passing, seed), seeds)
    rows = []
    for name, runs in (("bare Hypothesis", bare), ("harness (ORSetMachine)", traced)):
        cpu, steps = sum(r.cpu for r in runs), sum(r.steps for r in runs)
        rows.append([name, sum(r.counter.examples() for r in runs), steps, cpu, cpu / steps * 1e6])
    for row in rows:
        row.append(row[4] / rows[0][4])
    print(f"Per step: {args.examples} examples x up to {args.steps} steps against the correct DeltaORSet, "
          f"seeds {list(seeds)}, summed. Time base: {cpu_base_note()}.")
    print(tabulate(rows, headers=["machine", "examples", "steps", "CPU s", "CPU µs/step", "vs bare (target <= 1.15)"],
                   floatfmt=("", "", "", ".2f", ".0f", ".2f")))

    hunting = chosen_settings(1000, args.steps)
    bare, traced = alternating(lambda seed: run_bare(BareContextIgnoringJoin, hunting, seed),
                               lambda seed: run_traced(PLANTED, hunting, seed), seeds)
    rows = []
    for name, runs in (("bare Hypothesis", bare), ("harness (ORSetMachine)", traced)):
        shrunk = [r.shrunk_steps for r in runs if r.shrunk_steps is not None]
        rows.append([name, f"{sum(r.failed for r in runs)}/{len(runs)}", sum(r.counter.generated() for r in runs),
                     sum(r.counter.shrunk() for r in runs), ", ".join(map(str, shrunk)) or "-", sum(r.cpu for r in runs)])
    for row in rows:
        row.append(row[5] / rows[0][5])
    print(f"\nFind + shrink of a planted bug (a join that ignores the causal context), at most 1000 examples, "
          f"seeds {list(seeds)}, summed. Time base: {cpu_base_note()}; the harness's row includes writing "
          "and explaining the trace.")
    print(tabulate(rows, headers=["machine", "found", "generate examples", "shrink examples", "shrunk rules", "CPU s",
                                  "vs bare (target <= 1.5)"], floatfmt=("", "", "", "", "", ".2f", ".2f")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
