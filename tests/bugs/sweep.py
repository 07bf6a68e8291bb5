"""Measure the search budget at which a catalogued bug is found robustly, and its shortest trace.

    python -m tests.bugs.sweep BUG [BUG ...] [--seeds 10] [--cap 2000] [--write]
    python -m tests.bugs.sweep --machine orset --write        # every bug of a machine
    python -m tests.bugs.sweep --all --workers 2 --write      # the whole catalogue
    python -m tests.bugs.sweep --list

For each bug, the ``ci`` search (examples of ``--steps`` steps, stopping at the first
failure) runs under each of ``--seeds`` different Hypothesis seeds, up to ``--cap``
examples each, and the examples each needed are noted. The budget is twice the greatest
of them (``MARGIN``; ``--rebudget`` applies it again to every recorded sweep): a
derandomized search with that budget found the bug under
every seed tried, so a run under any other constant pool (a new module anywhere) very
likely finds it too. A bug some seed misses within the cap has no budget: it is not robust;
nor has one swept under fewer than ``MIN_SEEDS`` seeds (a cheap first measurement).

With ``--write`` the budget goes to ``tests/bugs/budgets.json``, and the shortest shrunk
trace of a few full searches (the derandomized one and ``--shrink-seeds`` seeded ones) goes
to ``tests/bugs/traces/<bug>.json`` if it is shorter than the committed one; it must fail
with the bug planted and pass without it (else it is not written).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time

import attrs

from harness import replay
from harness.replay import reproduces
from tests.bugs.catalogue import Bug, Search, budgets, bug, catalogue, write_budget
from tests.bugs.hunt import Hunt, hunt, in_workers, load_everything, search_settings

#: The budget is the most examples any seed needed, times this. 1.25 was not enough: the
#: examples a bug needs have a long tail (orset-tombstones-replaced: median 30, most 107 of
#: ten seeds), and one derandomized run after a merge needed more than 140.
MARGIN = 2
#: A sweep of fewer seeds measures a bug (and may find its trace) but gives it no budget: a
#: few seeds say too little about the others.
MIN_SEEDS = 5
DEFAULT_STEPS = 50


@attrs.frozen
class Sweep:
    bug: str
    steps: int
    cap: int
    hunts: tuple[Hunt, ...]
    #: The shortest failing trace the full searches found (None when not asked or not found).
    shortest: object = None
    note: str = ""

    @property
    def found(self) -> int:
        return sum(h.found for h in self.hunts)

    @property
    def needed(self) -> list[int]:
        return [h.examples for h in self.hunts if h.found]

    @property
    def budget(self) -> Search | None:
        if self.found < len(self.hunts) or len(self.hunts) < MIN_SEEDS:
            return None
        return Search(max(20, math.ceil(max(self.needed) * MARGIN / 10) * 10), self.steps)


def verified(the_bug: Bug, trace, replacing=None) -> str:
    """Why ``trace`` cannot be the bug's committed trace ('' when it can): it must fail with the
    bug planted, the same way in two replays (``harness.replay.reproduces``: the catalogue's test
    replays it twice too), and pass without it. ``replacing``: the committed trace it would
    replace, whose failure with the bug planted it must share (the same check, in the same words
    numbers aside: ``Failure.signature``). A shorter trace that fails another check shows
    something else the patch breaks (a hostile message it takes, a refusal naming another dot),
    not the bug's own symptom."""
    correct = attrs.evolve(trace, implementation=the_bug.correct)
    with the_bug.plant() as buggy:
        with_bug = replay(correct, the_bug.machine_class(), buggy)
        again = replay(correct, the_bug.machine_class(), buggy)
        before = None if replacing is None else replay(attrs.evolve(replacing, implementation=the_bug.correct),
                                                       the_bug.machine_class(), buggy)
    without = replay(correct, the_bug.machine_class(), the_bug.correct_implementation())
    if with_bug.status != "failed":
        return f"with the bug planted the trace {with_bug}"
    if not reproduces(with_bug, again, the_bug.machine_class()):
        return f"with the bug planted the trace {with_bug}, and replayed again {again}"
    if without.status != "passed":
        return f"without the bug the trace {without}"
    if before is not None and before.failure is not None and not same_check(with_bug.failure, before.failure):
        return f"it fails {with_bug.failure}, another check than the committed trace's {before.failure}"
    return ""


def same_check(first, second) -> bool:
    """Whether two failures are the same check in the same words, numbers aside."""
    return first is not None and (first.check, first.signature()) == (second.check, second.signature())


def sweep_one(task: tuple[str, int, int, int, int]) -> Sweep:
    name, seeds, cap, steps, shrink_seeds = task
    the_bug = bug(name)
    hunts = tuple(hunt(the_bug, search_settings(Search(cap, steps), shrink=False), seed=seed) for seed in range(seeds))
    shortest, note = None, ""
    if shrink_seeds and any(h.found for h in hunts):
        budget = Search(max(h.examples for h in hunts if h.found), steps)
        full = [hunt(the_bug, search_settings(budget, shrink=True))]
        full += [hunt(the_bug, search_settings(budget, shrink=True), seed=seed) for seed in range(shrink_seeds)]
        traces = sorted((h.trace for h in full if h.trace is not None), key=lambda t: len(t.steps))
        for trace in traces:
            note = verified(the_bug, trace)
            if not note:
                shortest = attrs.evolve(trace, implementation=the_bug.correct, note=the_bug.description)
                break
    return Sweep(name, steps, cap, hunts, shortest, note)


def report(result: Sweep) -> str:
    needed = result.needed
    cpu = [h.seconds for h in result.hunts if h.found]
    budget = result.budget
    summary = (f"{result.bug}: found under {result.found}/{len(result.hunts)} seeds"
               + (f", examples needed min {min(needed)} median {statistics.median(needed):g} max {max(needed)}"
                  f", CPU s median {statistics.median(cpu):.2f}" if needed else "")
               + (f" -> budget {budget.examples} x {budget.steps}" if budget else f" -> no robust budget within {result.cap}"))
    if result.shortest is not None:
        summary += f"; shortest trace {len(result.shortest.steps)} steps"
    elif result.note:
        summary += f"; no trace written: {result.note}"
    return summary


def record_trace(the_bug: Bug, trace, note: str | None = None) -> str:
    """Commit ``trace`` as ``the_bug``'s shortest known trace if it is shorter than the one
    committed (or there is none), fails with the bug (the committed trace's check) and passes
    without it; what happened.
    ``note``: the committed trace's note (default: the bug's description)."""
    from harness import load_trace
    from harness.trace import TraceError

    try:
        replacing = load_trace(the_bug.trace_path)
    except TraceError:
        replacing = None
    committed = None if replacing is None else len(replacing.steps)
    if committed is not None and len(trace.steps) >= committed:
        return ""
    why_not = verified(the_bug, trace, replacing)
    if why_not:
        return f"trace not written: {why_not}"
    the_bug.trace_path.parent.mkdir(parents=True, exist_ok=True)
    shortest = attrs.evolve(trace, implementation=the_bug.correct, note=note or the_bug.description)
    the_bug.trace_path.write_text(shortest.to_json(), encoding="utf-8")
    return f"trace ({len(trace.steps)} steps, was {committed})"


def minimize_committed(the_bug: Bug) -> str:
    """Minimize the bug's committed trace with the bug planted (``harness.minimize``, a large
    budget) and commit the result if it is shorter and still fails with the bug and passes
    without it; what happened."""
    from harness import load_trace
    from harness.minimize import MinimizeBudget, NothingToMinimize, minimize

    if not the_bug.trace_path.exists():
        return "no trace to minimize"
    trace = load_trace(the_bug.trace_path)
    with the_bug.plant() as buggy:
        try:
            result = minimize(trace, the_bug.machine_class(), buggy, MinimizeBudget(replays=3000, steps=300_000))
        except NothingToMinimize as error:
            return f"not minimized: {error}"
    if len(result.trace.steps) >= len(trace.steps):
        return f"already minimal ({len(trace.steps)} steps)"
    written = record_trace(the_bug, result.trace, note=trace.note)
    return f"minimized: {result.summary()}" if written.startswith("trace (") else f"minimized {written}"


def from_regressions(the_bug: Bug) -> str:
    """The shortest committed regression trace of the bug's machine that fails with the bug
    planted (cut after its failing step) as the bug's trace, if shorter than the committed one."""
    from pathlib import Path

    from harness import load_trace

    regressions = Path(__file__).resolve().parent.parent.parent / "regressions" / "traces"
    candidates = []
    for path in sorted(regressions.glob("*.json")):
        trace = load_trace(path)
        if trace.machine != the_bug.machine:
            continue
        with the_bug.plant() as buggy:
            outcome = replay(trace, the_bug.machine_class(), buggy)
        if outcome.status == "failed":
            candidates.append(attrs.evolve(trace, steps=trace.steps[: outcome.step + 1], note="", failure=outcome.message))
    for trace in sorted(candidates, key=lambda t: len(t.steps)):
        written = record_trace(the_bug, trace)
        if written and not written.startswith("trace not written"):
            return written
    return ""


def write(result: Sweep) -> list[str]:
    """Record the budget and, if shorter than the committed one, the trace; what was written."""
    budget = result.budget
    write_budget(result.bug, {
        "examples": budget.examples if budget else None, "steps": result.steps, "seeds": len(result.hunts),
        "found": result.found, "cap": result.cap, "needed": result.needed,
    })
    done = ["budget"]
    if result.shortest is not None:
        done.append(record_trace(bug(result.bug), result.shortest) or "no shorter trace")
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bugs.sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("bugs", nargs="*", help="bug names (see --list)")
    parser.add_argument("--all", action="store_true", help="every bug of the catalogue")
    parser.add_argument("--machine", help="every bug of this machine")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--cap", type=int, default=2000, help="examples per seed at most")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="steps per example")
    parser.add_argument("--shrink-seeds", type=int, default=2, help="seeded full searches for the shortest trace")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="record budgets and shorter traces")
    parser.add_argument("--list", action="store_true", help="list the catalogue")
    parser.add_argument("--minimize", action="store_true",
                        help="minimize each named bug's committed trace with the bug planted (no search)")
    parser.add_argument("--rebudget", action="store_true", help="recompute every recorded budget with MARGIN")
    parser.add_argument("--from-regressions", action="store_true",
                        help="only take each bug's trace from the committed regression traces that catch it (no search)")
    args = parser.parse_args(argv)
    load_everything()
    if args.rebudget:
        for name, entry in budgets().items():
            if entry.get("needed") and entry["found"] == entry["seeds"] >= MIN_SEEDS:
                write_budget(name, {**entry, "examples": max(20, math.ceil(max(entry["needed"]) * MARGIN / 10) * 10)})
        return 0
    if args.list:
        for b in catalogue().values():
            print(f"{b.name:<48} {b.machine:<15} {b.kind:<20} {b.description}")
        return 0
    names = list(args.bugs)
    if args.all:
        names = list(catalogue())
    elif args.machine:
        names += [b.name for b in catalogue().values() if b.machine == args.machine]
    if not names:
        parser.error("name bugs, --machine or --all")
    for name in names:
        bug(name)  # a clear error for an unknown name before any work
    if args.minimize:
        for name in names:
            print(f"{name}: {minimize_committed(bug(name))}", flush=True)
        return 0
    if args.from_regressions:
        for name in names:
            print(f"{name}: {from_regressions(bug(name)) or 'no shorter trace among the regressions'}", flush=True)
        return 0
    tasks = [(name, args.seeds, args.cap, args.steps, args.shrink_seeds if args.write else 0) for name in names]
    started, failures = time.monotonic(), 0
    for done, result in enumerate(in_workers(sweep_one, tasks, args.workers), 1):
        line = report(result)
        if args.write:
            line += f"  [wrote {', '.join(write(result))}]"
        failures += result.budget is None
        print(f"[{done}/{len(tasks)} {time.monotonic() - started:6.0f}s] {line}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
