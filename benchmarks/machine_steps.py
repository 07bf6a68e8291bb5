"""Machine steps per CPU second, for every machine against every registered implementation.

    python benchmarks/machine_steps.py [--examples N] [--steps N] [--quick] [MACHINE[:IMPLEMENTATION] ...]

Each machine runs derandomized (the ci profile's search) for the same number of examples and
steps, one after the other in this process, so the rows are comparable within one run.

* ``examples``: the test cases Hypothesis ran to an end, by its own statistics (a machine is
  also built for test cases abandoned while drawing; those are not examples);
* ``steps``: the machine's recorded steps (its rules, ``start`` included), each followed by
  the invariant checks;
* ``CPU s``: CPU seconds of this process (``time.process_time``) for the whole run;
* ``µs/step`` and ``vs orset``: CPU per step, and its ratio to the ``orset``/``delta-state``
  row (the target for ``pskt`` is at most 2).

``MACHINE:IMPLEMENTATION`` runs only that implementation (``orset:delta-state pskt`` is the
issue-12 comparison alone); an implementation that is unavailable here (a JavaScript one
without its ``node_modules``) gets a row saying so instead of stopping the run.

These are measurements, not targets: the machine is noisy, compare ratios in one run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from hypothesis import HealthCheck, settings
from tabulate import tabulate

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.measure import TestCaseCounter, cpu_base_note  # noqa: E402
from harness import implementations, machine_class, run_machine  # noqa: E402
from harness.process import Unavailable  # noqa: E402
from harness.registry import _machines  # noqa: E402
from harness.runner import import_project  # noqa: E402

DEFAULT_MACHINES = ["orset", "lww", "rga", "tasklist", "policy", "pskt", "threshold"]
REFERENCE = ("orset", "delta-state")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("machines", nargs="*", default=DEFAULT_MACHINES, metavar="MACHINE[:IMPLEMENTATION]")
    parser.add_argument("--examples", type=int, default=30)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="10 examples per row")
    args = parser.parse_args(argv)
    if args.quick:
        args.examples = 10
    import_project()  # outside the timings: the first row would otherwise pay for every import
    chosen = settings(
        derandomize=True, database=None, max_examples=args.examples, stateful_step_count=args.steps,
        deadline=None, suppress_health_check=list(HealthCheck), print_blob=False,
    )
    warmed = False
    rows = []
    for chosen_name in args.machines:
        name, _, only = chosen_name.partition(":")
        try:
            cls = machine_class(name)
        except KeyError:
            rows.append([name, "-", "not available", "", "", None])
            continue
        for impl in implementations(name):
            if impl.level not in cls.levels or only not in ("", impl.name):
                continue
            counter = TestCaseCounter()
            try:
                if not warmed:  # the first Hypothesis run of a process pays for its set-up: not a row's cost
                    run_machine(cls, impl, hypothesis_settings=settings(chosen, max_examples=2, stateful_step_count=5))
                    warmed = True
                started = time.process_time()
                with counter:
                    stats = run_machine(cls, impl, hypothesis_settings=chosen)
            except Unavailable as why:
                rows.append([name, impl.name, "unavailable", "", "", None])
                print(why, file=sys.stderr)
                continue
            elapsed = time.process_time() - started
            steps = sum(stats.ran.values())
            rows.append([name, impl.name, counter.examples(), steps, f"{elapsed:.2f}", elapsed / steps * 1e6])
    reference = next((r[5] for r in rows if (r[0], r[1]) == REFERENCE), None)
    reference = reference or min((r[5] for r in rows if r[5] is not None), default=1.0)
    table = [r[:5] + ([f"{r[5]:,.0f}", f"{r[5] / reference:.2f}"] if r[5] is not None else ["", ""]) for r in rows]
    print(f"Time base: {cpu_base_note()}. {args.examples} examples x up to {args.steps} steps each, derandomized.")
    print(tabulate(table, headers=["machine", "implementation", "examples", "steps", "CPU s", "CPU µs/step", "vs orset"],
                   disable_numparse=True, colalign=("left", "left", "right", "right", "right", "right", "right")))
    print(f"\n{len(_machines)} machines registered.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
