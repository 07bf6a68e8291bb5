"""The nightly run: ``python -m harness nightly`` (or ``mbt nightly``).

Every machine (or those chosen with ``--machine M``, or ``--machine M[IMPL]`` for one
implementation of it) under the ``nightly`` profile for one
wall-clock budget, in ``--workers`` pytest-xdist worker processes, with a progress display;
then every failure is shrunk (Hypothesis), minimized (``harness.minimize``, when present),
replayed twice, deduplicated and written as a trace ready to ``promote``, and a Markdown
report is written: failures new and known, time per machine, rule coverage.

* **Budget.** ``--budget`` seconds for the whole command: each machine run (machine x
  implementation) gets an even share of the worker time, ``(budget - start-up) x workers /
  runs``, and at least ``MIN_RUN_SECONDS`` (5 s: a budget too small for the runs chosen is
  overrun, and the command says each run's share as it starts). A run that fails stops early
  and leaves its time unused; shrinking may overrun,
  so the command stops pytest (its whole process group) at ``budget x 1.5 + 60 s`` at the
  latest and reports what was written by then.
* **Deduplication.** Two failures are the same when they have the same machine, the same
  failing check (the innermost method of the machine the error passed through, and the
  error's type: ``ReplicatedMachine.check: AssertionError``) and the same rule at the step
  where the replay first fails. The shortest trace of each is kept.
* **Known or new.** Every committed trace (``regressions/traces``, ``tests/bugs/traces``)
  is replayed against this build; a failure of a check that a committed trace of the same
  machine also fails here is *known* (a regression came back, or a catalogued bug is
  planted); any other is *new*.
* **Example database.** ``--db`` (or ``MBT_EXAMPLE_DB``): a directory (default
  ``<out>/examples``) or a Redis URL shared by many runners (see the README).

The run writes only into ``--out``: ``report.md``, ``traces/`` (deduplicated, ready to
promote), ``raw/`` (every trace the workers wrote), ``junit.xml``, ``rules/``, ``hypothesis/``.
The machines' SQLite stores go to a directory of the command's own on the real disk (under
``MBT_STORE_DIR`` when it is set), removed when the run ends: a run stopped at the hard stop
runs no teardown, and its stores would otherwise stay behind.
Exit status: 0 when nothing failed, 1 when something did, 2 when pytest itself could not run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ElementTree
from collections import defaultdict
from pathlib import Path

import attrs

from harness.machine import RuleStats, StepNotApplicable
from harness.registry import implementation, load_adapters, machine_class
from harness.replay import reproduces, resolve
from harness.runner import Outcome, replay, rule_stats_from
from harness.trace import Trace, TraceError, load_trace, save_trace

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = (ROOT / "regressions" / "traces", ROOT / "tests" / "bugs" / "traces")
#: Seconds every worker spends before its first example (imports, collection).
START_UP_SECONDS = 20
#: The least share of the budget a machine run gets, however many runs share it.
MIN_RUN_SECONDS = 5.0
#: Examples of one nightly run (of ``profiles.NIGHTLY_STEPS`` steps each): its budget is checked between runs.
RUN_EXAMPLES = 25
_HEX = re.compile(r"\b[0-9a-f]{8,}\b")
_NUMBER = re.compile(r"\d+")


# ----- what a failure is ---------------------------------------------------------------------


@attrs.frozen
class Failure:
    """A trace that fails when replayed, and what makes two failures the same."""

    trace: Trace
    outcome: Outcome
    source: Path
    #: The failing check: the innermost method of the machine the error passed through, and the error's type.
    check: str = ""

    @property
    def message(self) -> str:
        step = self.trace.steps[self.outcome.step]
        return _NUMBER.sub("#", _HEX.sub("#", self.outcome.message.removeprefix(step.describe()).removeprefix(": ")))

    @property
    def rule(self) -> str:
        return self.trace.steps[self.outcome.step].rule

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.trace.machine, self.check, self.rule)


def failing_check(trace: Trace) -> str:
    """Replay ``trace`` and name the check that fails: ``Machine.method: ErrorType`` for the
    innermost method of the machine the error passed through (a step or ``check``)."""
    machine = machine_class(trace.machine)(implementation(trace.machine, trace.implementation))
    try:
        for step in trace.steps:
            try:
                machine.do(step.rule, **step.args)
                machine.check()
            except StepNotApplicable:
                return ""
            except Exception as error:
                where = ""
                traceback = error.__traceback__
                while traceback is not None:
                    if traceback.tb_frame.f_locals.get("self") is machine:
                        where = traceback.tb_frame.f_code.co_qualname
                    traceback = traceback.tb_next
                return f"{where}: {type(error).__name__}"
        return ""
    finally:
        machine.teardown()


def replayed_twice(trace: Trace) -> tuple[Outcome, Outcome]:
    return replay(trace), replay(trace)


def minimized(trace: Trace) -> tuple[Trace, str]:
    """The harness's minimizer on ``trace`` when it exists in this tree (else the trace)."""
    try:
        from harness.minimize import minimize  # lands with the harness workstream
    except ImportError:
        return trace, "not minimized (no harness.minimize here)"
    try:
        result = minimize(trace)
    except Exception as error:  # the minimizer must never lose a failure
        return trace, f"not minimized: {type(error).__name__}: {error}"
    return result.trace, result.summary()


def committed_failures(machines: set[str]) -> dict[tuple[str, str], str]:
    """(machine, failing check) -> name of a committed trace that fails so against this build.

    Only the traces of ``machines`` are replayed: a failure is known by a trace of its own
    machine, and the others (the realnet machine's start node processes) would only cost time."""
    known = {}
    for directory in COMMITTED:
        for path in sorted(directory.glob("*.json")):
            try:
                trace = load_trace(path)
                if trace.machine not in machines:
                    continue
                outcome = replay(trace)
            except (TraceError, KeyError):
                continue
            if outcome.status == "failed":
                known.setdefault((trace.machine, failing_check(trace)), f"{path.parent.name}/{path.name}")
    return known


@attrs.frozen
class Triaged:
    failures: list  # (Failure, known-as or "", note)
    unreproduced: list  # (path, why)


def triage(raw_dir: Path, out_dir: Path) -> Triaged:
    """Replay, deduplicate and write every raw trace; name the known ones."""
    best: dict[tuple[str, str, str], tuple[Failure, str]] = {}
    unreproduced = []
    for path in sorted(raw_dir.glob("*.json")):
        try:
            trace = load_trace(path)
        except TraceError as error:
            unreproduced.append((path, f"unreadable: {error}"))
            continue
        trace, note = minimized(trace)
        first, second = replayed_twice(trace)
        if not reproduces(first, second, resolve(trace)[0]):
            unreproduced.append((path, f"non-deterministic: {first} / {second}"))
            continue
        if first.status != "failed":
            unreproduced.append((path, f"replays as {first}"))
            continue
        failure = Failure(trace, first, path, failing_check(trace))
        kept = best.get(failure.key)
        if kept is None or len(trace.steps) < len(kept[0].trace.steps):
            best[failure.key] = (failure, note)
    known = committed_failures({failure.trace.machine for failure, _ in best.values()}) if best else {}
    failures = []
    for key, (failure, note) in sorted(best.items()):
        written = save_trace(attrs.evolve(failure.trace, failure=f"{failure.check} at {failure.rule}: {failure.message}"[:300]),
                             out_dir)
        failures.append((attrs.evolve(failure, source=written), known.get(key[:2], ""), note))
    return Triaged(failures, unreproduced)


# ----- running pytest --------------------------------------------------------------------------


def collect(targets: list[str], env: dict[str, str]) -> list[str]:
    """The machine runs (pytest node ids) among ``targets``."""
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *targets],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    items = [line.strip() for line in done.stdout.splitlines() if "::test_" in line and line.startswith("machines/")]
    if not items:
        raise RuntimeError(f"no machine runs collected from {targets}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return items


def chosen_runs(names: list[str]) -> dict[str, set[str] | None]:
    """``--machine`` values: machine -> the implementations chosen (None: all of them)."""
    chosen: dict[str, set[str] | None] = {}
    for name in names:
        match = re.fullmatch(r"([a-z_][a-z0-9_]*)(?:\[([A-Za-z0-9_.-]+)\])?", name)
        if match is None:
            raise ValueError(f"--machine {name!r}: expected a machine (lww) or a machine and one implementation (lww[hlc])")
        machine, implementation = match[1], match[2]
        if not (ROOT / "machines" / f"{machine}.py").is_file():
            raise ValueError(f"--machine {name!r}: there is no machines/{machine}.py")
        runs = chosen.get(machine, set())
        chosen[machine] = None if implementation is None or runs is None else runs | {implementation}
    return chosen


def wanted(item: str, chosen: dict[str, set[str] | None]) -> bool:
    """Whether the collected ``item`` (a pytest node id) is one of the chosen runs."""
    if not chosen:
        return True
    machine = item.split("/", 1)[-1].split(".py", 1)[0]
    if machine not in chosen:
        return False
    runs = chosen[machine]
    return runs is None or item.rpartition("[")[2].rstrip("]") in runs


def run_pytest(items: list[str], workers: int, env: dict[str, str], out: Path, hard_stop: float) -> int:
    """pytest over ``items`` in ``workers`` processes; prints progress; stopped at ``hard_stop``."""
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", "--no-header", "-n", str(workers),
               f"--junitxml={out / 'junit.xml'}", *items]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stdout] and None, daemon=True)
    reader.start()
    started, done, failed, last_tick = time.monotonic(), 0, 0, 0.0
    log = (out / "pytest.log").open("w", encoding="utf-8")
    try:
        while True:
            try:
                line = lines.get(timeout=5)
            except queue.Empty:
                line = None
            now = time.monotonic()
            if line is not None:
                log.write(line)
                if re.search(r"\] (PASSED|FAILED|ERROR) ", line) and "::test_" in line:
                    done += 1
                    failed += "PASSED" not in line
                    print(f"  [{now - started:6.0f}s] {done}/{len(items)} {line.strip()}", flush=True)
            elif process.poll() is not None and not reader.is_alive():
                break
            if now - last_tick >= 60:
                last_tick = now
                print(f"  [{now - started:6.0f}s] {done}/{len(items)} machine runs done, {failed} failed", flush=True)
            if time.time() > hard_stop and process.poll() is None:
                print("  the budget and its grace are spent: stopping pytest", flush=True)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
        return process.wait(timeout=60)
    finally:
        log.close()
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


# ----- the report --------------------------------------------------------------------------------


def machine_times(junit: Path) -> dict[str, float]:
    times: dict[str, float] = defaultdict(float)
    with contextlib.suppress(OSError, ElementTree.ParseError):
        for case in ElementTree.parse(junit).iter("testcase"):
            times[case.get("classname", "").split(".")[-1]] += float(case.get("time", 0))
    return dict(times)


def rule_coverage(directory: Path) -> list[tuple[str, int, list[tuple[str, int, int]]]]:
    """The worker processes' rule counts (``harness.runner.write_rule_stats`` files) added up per
    machine and implementation: (name, examples, [(rule, ran, refused)])."""
    merged: dict[str, RuleStats] = {}
    for path in sorted(directory.glob("rules-*.json")):
        for run in rule_stats_from(json.loads(path.read_text())):
            name = f"{run.machine}/{run.implementation}"
            total = merged.setdefault(name, RuleStats(run.machine, run.implementation, run.rules))
            total.examples += run.examples
            total.ran.update(run.ran)
            total.refused.update(run.refused)
    return [(name, total.examples, total.rows()) for name, total in sorted(merged.items())]


def report(args, out: Path, items: list[str], status: int, seconds: float, triaged: Triaged) -> str:
    lines = ["# Nightly run", "",
             f"{len(items)} machine runs, {args.workers} workers, budget {args.budget:g} s "
             f"({seconds:.0f} s taken), example database `{args.db}`"
             + (f", catalogued bug `{os.environ['MBT_PLANT_BUG']}` planted" if os.environ.get("MBT_PLANT_BUG") else "")
             + f"; pytest exit status {status}.", ""]
    new = [f for f in triaged.failures if not f[1]]
    lines += [f"## Failures: {len(new)} new, {len(triaged.failures) - len(new)} known", ""]
    if triaged.failures:
        lines += ["| machine | failing check | first failing step | message | steps | known as | trace |",
                  "|---|---|---|---|---|---|---|"]
        for failure, known, _ in triaged.failures:
            lines.append(f"| {failure.trace.machine} | `{failure.check}` | {failure.rule} | `{failure.message[:100]}` "
                         f"| {len(failure.trace.steps)} | {known or '**new**'} | `{failure.source}` |")
        lines += ["", "Promote a trace once its bug is fixed: `python -m harness promote TRACE --name NAME --note '...'`"]
        lines += [f"- `{failure.source.name}`: {note}" for failure, _, note in triaged.failures]
    else:
        lines.append("None.")
    if triaged.unreproduced:
        lines += ["", "Traces written by the workers that do not replay as failures:", ""]
        lines += [f"- `{path.name}`: {why}" for path, why in triaged.unreproduced]
    lines += ["", "## Time per machine (seconds, summed over its implementations)", "", "| machine | seconds |", "|---|---|"]
    lines += [f"| {machine} | {spent:.0f} |" for machine, spent in sorted(machine_times(out / "junit.xml").items())]
    lines += ["", "## Rule coverage", ""]
    for name, examples, rules in rule_coverage(out / "rules"):
        never = [r for r, ran, _ in rules if not ran]
        lines.append(f"**{name}**: {examples} examples" + (f"; NEVER RAN: {', '.join(never)}" if never else ""))
        lines.append("")
        lines += ["| rule | ran | refused by precondition |", "|---|---|---|"]
        lines += [f"| {rule} | {ran} | {refused} |" for rule, ran, refused in rules]
        lines.append("")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness nightly", description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=float(os.environ.get("MBT_NIGHTLY_SECONDS", 3600)),
                        help="wall-clock seconds for the whole run (default 3600)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--machine", action="append", default=[],
                        help="only this machine, or M[IMPL] for one implementation of it (repeatable)")
    parser.add_argument("--out", default=None, help="where everything goes (default: a new directory under /tmp)")
    parser.add_argument("--db", default=os.environ.get("MBT_EXAMPLE_DB"), help="example database: a directory or redis:// URL")
    args = parser.parse_args(argv)
    try:
        chosen = chosen_runs(args.machine)
    except ValueError as error:
        parser.error(str(error))  # before anything is written
    out = Path(args.out) if args.out else Path(f"/tmp/mbt-nightly-{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    args.db = args.db or str(out / "examples")
    targets = [f"machines/{m}.py" for m in chosen] or ["machines/"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HYPOTHESIS_PROFILE": "nightly", "MBT_EXAMPLE_DB": args.db,
           "MBT_TRACE_DIR": str(out / "raw"), "MBT_COVERAGE_DIR": str(out / "rules"),
           "HYPOTHESIS_STORAGE_DIRECTORY": str(out / "hypothesis"),
           # short runs: a run's budget is checked between runs of this many examples
           "MBT_NIGHTLY_EXAMPLES": os.environ.get("MBT_NIGHTLY_EXAMPLES", str(RUN_EXAMPLES))}
    env.pop("CI", None)
    started = time.monotonic()
    try:
        items = [item for item in collect(targets, env) if wanted(item, chosen)]
        if not items:
            raise RuntimeError(f"no machine run of {' '.join(args.machine)} collected")
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        print(f"nightly: {error}", file=sys.stderr)
        return 2
    share = max(MIN_RUN_SECONDS, (args.budget - START_UP_SECONDS - (time.monotonic() - started)) * args.workers / len(items))
    env["MBT_BUDGET_SECONDS"] = f"{share:.0f}"
    print(f"nightly: {len(items)} machine runs, {args.workers} workers, {share:.0f} s each; writing to {out}", flush=True)
    # The stores go under a directory of this command's: pytest stopped at the hard stop (or
    # killed) runs no teardown, and this removes what its machines left.
    if os.environ.get("MBT_STORE_DIR"):
        os.makedirs(os.environ["MBT_STORE_DIR"], exist_ok=True)
    stores = tempfile.mkdtemp(prefix="mbt-nightly-stores-", dir=os.environ.get("MBT_STORE_DIR") or None)
    env["MBT_STORE_DIR"] = stores
    try:
        status = run_pytest(items, args.workers, env, out, hard_stop=time.time() + args.budget * 1.5 + 60)
    finally:
        shutil.rmtree(stores, ignore_errors=True)
    if os.environ.get("MBT_PLANT_BUG"):
        from tests.bugs.catalogue import plant_for_session

        plant_for_session(os.environ["MBT_PLANT_BUG"])
    load_adapters()
    triaged = triage(out / "raw", out / "traces")
    text = report(args, out, items, status, time.monotonic() - started, triaged)
    (out / "report.md").write_text(text, encoding="utf-8")
    new = sum(1 for _, known, _ in triaged.failures if not known)
    print(f"nightly: {len(triaged.failures)} distinct failures ({new} new); report {out / 'report.md'}; "
          f"traces {out / 'traces'}", flush=True)
    if status not in (0, 1) and not triaged.failures:
        return 2
    return 1 if triaged.failures else 0
