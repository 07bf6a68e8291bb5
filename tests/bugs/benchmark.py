"""The bug-finding benchmark: every catalogued bug against its machine, as ``pytest machines/``
runs it under ``ci`` and as a nightly run does with a time budget per bug.

    python -m tests.bugs.benchmark --out /tmp/bug-finding.md                 # everything
    python -m tests.bugs.benchmark --machine orset --nightly-seconds 30 --out /tmp/orset.md
    python -m tests.bugs.benchmark --profiles ci BUG [BUG ...]

Per bug, in its own worker process (``--workers``, default 2):

* **ci**: the machine's ``ci`` settings exactly as its test in ``machines/`` uses them
  (derandomized; 250 examples x 50 steps, or the network machine's own budget), shrinking
  included;
* **nightly**: the machine's settings under the ``nightly`` profile as its test uses them
  (300 examples x 50 steps, or the machine's own; fresh randomness), runs repeated
  until the bug is found or ``--nightly-seconds`` of CPU are spent; shrinking
  then gets ``--shrink-seconds`` more.

Each cell: found or not, CPU seconds to the first failure, examples run to it, and the
steps of the shrunk trace against the shortest known one (``tests/bugs/traces``). Totals
per machine, the overall numbers of the issue's acceptance, and the Markdown table written
to ``--out`` (printed when not given). CPU seconds, not wall time: the machine is shared.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import attrs
from hypothesis import settings

from harness import Step, Trace, load_trace
from harness.trace import TraceError
from tests.bugs.catalogue import Bug, bug, catalogue
from tests.bugs.hunt import FULL, Hunt, hunt, in_workers, load_everything, tree_cpu_seconds
from tests.bugs.sweep import record_trace

PROFILES = ("ci", "nightly")


def machine_settings(the_bug: Bug, profile: str) -> settings:
    """What ``pytest machines/`` runs this bug's machine with under ``profile`` (a machine's test
    may set its own budget per profile: ``mbt_settings``, read with that profile loaded)."""
    machine = the_bug.machine_class()
    module = importlib.import_module(machine.__module__)
    test = getattr(module, f"test_{machine.name}_machine")
    chosen = getattr(test, "mbt_settings", settings)
    previous = settings.get_current_profile_name()
    settings.load_profile(profile)
    try:
        return chosen()
    finally:
        settings.load_profile(previous)


def machine_ci_settings(the_bug: Bug) -> settings:
    return settings(machine_settings(the_bug, "ci"), report_multiple_bugs=False, phases=FULL)


def nightly_settings(the_bug: Bug) -> settings:
    return settings(machine_settings(the_bug, "nightly"), database=None, derandomize=False, report_multiple_bugs=False,
                    phases=FULL)


def shortest_known(the_bug: Bug) -> int | None:
    try:
        return len(load_trace(the_bug.trace_path).steps)
    except TraceError:
        return None


@attrs.frozen
class Row:
    bug: str
    machine: str
    kind: str
    shortest: int | None
    results: dict  # profile -> Hunt


def bench_one(task: tuple[str, tuple[str, ...], float, float]) -> Row:
    try:
        return _bench_one(task)
    except Exception as error:  # one broken plant must not end the benchmark: its row says why
        name = task[0]
        failed = Hunt(name, False, 0.0, 0, f"the bug could not be run: {type(error).__name__}: {error}")
        return Row(name, bug(name).machine, bug(name).kind, None, dict.fromkeys(task[1], failed))


def _bench_one(task: tuple[str, tuple[str, ...], float, float]) -> Row:
    name, profiles, nightly_seconds, shrink_seconds = task
    the_bug = bug(name)
    results: dict[str, Hunt] = {}
    if "ci" in profiles:
        results["ci"] = hunt(the_bug, machine_ci_settings(the_bug), shrink_seconds=shrink_seconds)
    if "nightly" in profiles:
        started, examples, found = tree_cpu_seconds(), 0, None
        rng = random.Random()  # fresh randomness is the nightly profile's point
        while found is None:
            spent = tree_cpu_seconds() - started
            if spent >= nightly_seconds:
                break
            run = hunt(the_bug, nightly_settings(the_bug), seed=rng.getrandbits(64), cpu_seconds=nightly_seconds - spent,
                       shrink_seconds=shrink_seconds)
            if run.found:
                found = attrs.evolve(run, seconds=spent + run.seconds, examples=examples + run.examples)
            examples += run.examples
        results["nightly"] = found or Hunt(name, False, tree_cpu_seconds() - started, examples)
    return Row(name, the_bug.machine, the_bug.kind, shortest_known(the_bug), results)


# ----- the table ---------------------------------------------------------------------------


def _cell(h: Hunt | None, shortest: int | None) -> list[str]:
    if h is None:
        return ["", "", "", ""]
    if not h.found:
        return ["no", f"{h.seconds:.1f}", str(h.examples), ""]
    steps = "" if h.steps is None else f"{h.steps}" + (f" / {shortest}" if shortest else "")
    return ["yes", f"{h.seconds:.2f}", str(h.examples), steps]


def ratio(h: Hunt | None, shortest: int | None) -> float | None:
    if h is None or not h.found or h.steps is None or not shortest:
        return None
    return h.steps / shortest


def markdown(rows: list[Row], profiles: tuple[str, ...], note: str) -> str:
    head = ["machine", "bug", "class"]
    for p in profiles:
        head += [f"{p} found", f"{p} CPU s", f"{p} examples", f"{p} steps / shortest"]
    lines = ["# Bug-finding benchmark", "", note, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in sorted(rows, key=lambda r: (r.machine, r.bug)):
        cells = [row.machine, row.bug, row.kind]
        for p in profiles:
            cells += _cell(row.results.get(p), row.shortest)
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Per machine", ""]
    per = ["machine", "bugs"]
    for p in profiles:
        per += [f"{p} found", f"{p} median CPU s to first failure", f"{p} median steps / shortest"]
    lines += ["| " + " | ".join(per) + " |", "|" + "---|" * len(per)]
    by_machine: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_machine[row.machine].append(row)
    for machine in [*sorted(by_machine), "all"]:
        group = rows if machine == "all" else by_machine[machine]
        cells = [f"**{machine}**" if machine == "all" else machine, str(len(group))]
        for p in profiles:
            found = [r.results[p] for r in group if p in r.results and r.results[p].found]
            seconds = [h.seconds for h in found]
            ratios = [x for x in (ratio(r.results.get(p), r.shortest) for r in group) if x is not None]
            share = f"{len(found)}/{len(group)} ({100 * len(found) / len(group):.0f}%)"
            cells += [share, f"{statistics.median(seconds):.2f}" if seconds else "",
                      f"{statistics.median(ratios):.2f}" if ratios else ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def save_row(path: str, row: Row) -> None:
    entry = {"bug": row.bug, "machine": row.machine, "kind": row.kind, "shortest": row.shortest,
             "results": {p: {"found": h.found, "seconds": h.seconds, "examples": h.examples, "failure": h.failure,
                             "steps": h.steps} for p, h in row.results.items()}}
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(entry) + "\n")


def load_rows(path: str, profiles: tuple[str, ...]) -> list[Row]:
    """Rows of an earlier run with every profile asked for (a trace stands in by its length)."""
    rows = []
    with contextlib.suppress(FileNotFoundError), open(path, encoding="utf-8") as lines:
        for line in lines:
            entry = json.loads(line)
            if not set(profiles) <= set(entry["results"]):
                continue
            results = {p: Hunt(entry["bug"], r["found"], r["seconds"], r["examples"], r["failure"],
                               Trace(entry["machine"], "", (Step("?"),) * r["steps"]) if r["steps"] else None)
                       for p, r in entry["results"].items() if p in profiles}
            rows.append(Row(entry["bug"], entry["machine"], entry["kind"], entry["shortest"], results))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bugs.benchmark", description=__doc__.split("\n\n")[0])
    parser.add_argument("bugs", nargs="*")
    parser.add_argument("--machine", action="append", default=[], help="only this machine's bugs (repeatable)")
    parser.add_argument("--profiles", default="ci,nightly", help="ci, nightly or both (comma-separated)")
    parser.add_argument("--nightly-seconds", type=float, default=60.0, help="CPU seconds per bug under nightly")
    parser.add_argument("--shrink-seconds", type=float, default=60.0, help="CPU seconds of shrinking after a failure")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", help="where to write the Markdown table (printed when not given)")
    parser.add_argument("--results", help="a JSON-lines file of rows: rows already there are not run again (resume)")
    parser.add_argument("--write-traces", action="store_true",
                        help="commit a shrunk trace shorter than a bug's shortest known one (tests/bugs/traces)")
    args = parser.parse_args(argv)
    profiles = tuple(p for p in args.profiles.split(",") if p)
    if not set(profiles) <= set(PROFILES):
        parser.error(f"--profiles: expected some of {PROFILES}, got {args.profiles!r}")
    load_everything()
    names = list(args.bugs) or [b.name for b in catalogue().values() if not args.machine or b.machine in args.machine]
    for name in names:
        bug(name)
    rows = load_rows(args.results, profiles) if args.results else []
    done_already = {row.bug for row in rows}
    tasks = [(name, profiles, args.nightly_seconds, args.shrink_seconds) for name in names if name not in done_already]
    started = time.monotonic()
    for done, row in enumerate(in_workers(bench_one, tasks, args.workers), len(done_already) + 1):
        if args.write_traces:
            for h in row.results.values():
                if h.found and h.trace is not None and h.trace.steps:
                    written = record_trace(bug(row.bug), h.trace)
                    if written:
                        print(f"    {row.bug}: {written}")
        rows.append(row)
        if args.results:
            save_row(args.results, row)
        cells = ", ".join(f"{p}: {'found' if h.found else 'missed'} in {h.seconds:.1f} s, {h.examples} examples"
                          + (f", {h.steps} steps" if h.steps is not None else "") for p, h in row.results.items())
        print(f"[{done}/{len(names)} {time.monotonic() - started:5.0f}s] {row.bug}: {cells} (shortest {row.shortest})",
              flush=True)
    note = (f"{len(rows)} bugs; profiles {', '.join(profiles)}; nightly budget {args.nightly_seconds:g} CPU s per bug, "
            f"shrinking {args.shrink_seconds:g} CPU s; {args.workers} worker processes; "
            f"{time.monotonic() - started:.0f} s wall in all. CPU s = CPU seconds of the worker and of the processes "
            "it started (a networked machine's nodes) to the first failure.")
    table = markdown(rows, profiles, note)
    if args.out:
        Path(args.out).write_text(table, encoding="utf-8")
        print(f"written to {args.out}")
    else:
        print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
