"""Machine steps per second, for every machine against every registered implementation.

    python benchmarks/machine_steps.py [--examples N] [--steps N] [MACHINE ...]

Each machine runs derandomized for the same number of examples and steps, so the rows are
comparable within one run; the last column is each row's speed relative to the fastest.
Steps are the machine's recorded steps (rules), each followed by the invariant checks.
These are measurements, not targets: the machine is noisy, compare ratios in one run.
"""

from __future__ import annotations

import argparse
import time

from hypothesis import HealthCheck, settings
from tabulate import tabulate

from harness import implementations, machine_class, run_machine
from harness.registry import _machines
from harness.runner import import_project

DEFAULT_MACHINES = ["orset", "lww", "rga", "tasklist", "policy", "pskt", "threshold"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("machines", nargs="*", default=DEFAULT_MACHINES)
    parser.add_argument("--examples", type=int, default=30)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    chosen = settings(
        derandomize=True, database=None, max_examples=args.examples, stateful_step_count=args.steps,
        deadline=None, suppress_health_check=list(HealthCheck), print_blob=False,
    )
    import_project()  # outside the timings: the first row would otherwise pay for every import
    rows = []
    for name in args.machines:
        try:
            cls = machine_class(name)
        except KeyError:
            rows.append([name, "-", "not available", "", "", ""])
            continue
        for impl in implementations(name):
            if impl.level not in cls.levels:
                continue
            started = time.perf_counter()
            stats = run_machine(cls, impl, hypothesis_settings=chosen)
            elapsed = time.perf_counter() - started
            steps = sum(stats.ran.values())
            rows.append([name, impl.name, stats.examples, steps, f"{elapsed:.2f}", steps / elapsed])
    fastest = max((r[5] for r in rows if isinstance(r[5], float)), default=1.0)
    table = [r[:5] + ([f"{r[5]:,.0f}", f"{r[5] / fastest:.2f}"] if isinstance(r[5], float) else ["", ""]) for r in rows]
    print(tabulate(table, headers=["machine", "implementation", "examples", "steps", "seconds", "steps/s", "vs fastest"]))
    print(f"\n{len(_machines)} machines registered; {args.examples} examples x up to {args.steps} steps each.")


if __name__ == "__main__":
    main()
