"""How soon does the README's ``pytest machines/`` with ``-x`` fail on a build with one catalogued bug patched in?

For each chosen bug of the catalogue (``tests/bugs``), a fresh ``pytest machines/ -x`` under
``ci`` with the bug planted for the whole session (``MBT_PLANT_BUG``, as the nightly runner's
acceptance run does), in each chosen mode, the modes alternating bug by bug so that a busy
machine weighs on all of them alike:

* ``deepening``: this tree as it is (under ``-x`` every machine run's preliminary passes,
  depth by depth and cheapest first, and shrinking bounded at 200 examples: ``harness.deepening``);
* ``full runs only``: this tree with ``MBT_SHALLOW_FIRST=0`` (each machine's full run, in
  collection order);
* ``2 workers``: this tree with ``-n 2`` (pytest-xdist);
* ``shrink 1000``: this tree with ``MBT_SHRINK_EXAMPLES=1000``, the ``ci`` profile's shrinking
  bound instead of the 200 examples of a session under ``-x`` (what the shrinking costs);
* ``before``: the same command in another checkout (``--before PATH``, e.g. a
  ``git worktree add`` of main), to compare a change with what it replaces.

Per bug and mode: whether the session failed, the test that failed first, elapsed seconds
to the end of the session (with ``-x``, the first failure, its shrinking and its trace) and
CPU seconds (user + system of the pytest process and its children), and where the elapsed
time went, from the session's JUnit XML: in the tests before the failing one, in the failing
test (its search, shrinking and minimization), and outside tests (start-up, collection,
teardown). The medians are issue 13's acceptance row (at most 10 seconds).

    python benchmarks/first_failure.py                  # every 6th bug of the catalogue
    python benchmarks/first_failure.py --every 1        # every bug (about an hour a mode)
    python benchmarks/first_failure.py lww-smaller-writer-wins policy-rolling-window
    python benchmarks/first_failure.py --every 3 --before /tmp/main-checkout
    python benchmarks/first_failure.py --measure-costs  # rewrite harness/pass_costs.json

``--measure-costs`` runs a clean ``pytest machines/ -x`` (no bug planted) and writes the
seconds of each of its tests to ``harness/pass_costs.json``, the costs by which the
preliminary passes and full runs are ordered; run it when machines or implementations were
added or changed much.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import attrs
from tabulate import tabulate

ROOT = Path(__file__).resolve().parent.parent
#: The README's main command, stopping at the first failure.
COMMAND = ("-m", "pytest", "machines/", "-x", "-q", "-p", "no:cacheprovider")


@attrs.frozen
class Mode:
    root: Path
    env: dict[str, str] = attrs.field(factory=dict)
    args: tuple[str, ...] = ()


MODES = {"deepening": Mode(ROOT), "full runs only": Mode(ROOT, {"MBT_SHALLOW_FIRST": "0"}),
         "2 workers": Mode(ROOT, args=("-n", "2")), "shrink 1000": Mode(ROOT, {"MBT_SHRINK_EXAMPLES": "1000"})}


def test_seconds(junit: Path) -> list[tuple[str, float, bool]]:
    """(node id, seconds, failed) of each test a session's JUnit XML reports, in the order run."""
    if not junit.exists():
        return []
    cases = []
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        node = f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name')}"
        failed = case.find("failure") is not None or case.find("error") is not None
        cases.append((node, float(case.get("time", 0)), failed))
    return cases


def session(mode: Mode, bug: str | None, timeout: float) -> dict:
    """One ``pytest machines/ -x`` in ``mode`` with ``bug`` planted (None: a clean run)."""
    with tempfile.TemporaryDirectory(prefix="mbt-first-failure-") as scratch:
        junit = Path(scratch) / "junit.xml"
        env = {key: value for key, value in os.environ.items() if not key.startswith(("MBT_", "PYTEST_"))}
        env.update(CI="true", HYPOTHESIS_PROFILE="ci", MBT_TRACE_DIR=str(Path(scratch) / "traces"), PYTHONPATH=str(mode.root),
                   **mode.env)
        if bug:
            env["MBT_PLANT_BUG"] = bug
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        try:
            done = subprocess.run([sys.executable, *COMMAND, *mode.args, f"--junitxml={junit}"], cwd=mode.root, env=env,
                                  capture_output=True, text=True, timeout=timeout, check=False)
            output, status = done.stdout, done.returncode
        except subprocess.TimeoutExpired:
            output, status = "", None
        elapsed = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cases = test_seconds(junit)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    failed = re.search(r"^FAILED (\S+)", output, re.MULTILINE)
    failing = [seconds for _, seconds, bad in cases if bad]
    in_tests = sum(seconds for _, seconds, _ in cases)
    return {"failed": status == 1 and failed is not None, "test": failed.group(1) if failed else
            ("timed out" if status is None else f"exit {status}"), "wall": elapsed, "cpu": cpu, "cases": cases,
            "before": in_tests - sum(failing), "failing": sum(failing), "outside": elapsed - in_tests}


def measure_costs(timeout: float) -> int:
    result = session(MODES["deepening"], None, timeout)
    if result["test"] != "exit 0" or not result["cases"]:
        print(f"the clean pytest machines/ -x did not pass ({result['test']}): costs not written", file=sys.stderr)
        return 1
    costs = {node: round(seconds, 2) for node, seconds, _ in result["cases"]}
    out = ROOT / "harness" / "pass_costs.json"
    out.write_text(json.dumps(dict(sorted(costs.items())), indent=1) + "\n")
    print(f"{len(costs)} tests, {sum(costs.values()):.0f} s in tests, {result['wall']:.0f} s elapsed: written to {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bugs", nargs="*", help="bug names (default: every --every-th bug of the catalogue)")
    parser.add_argument("--every", type=int, default=6, help="take every n-th bug of the catalogue")
    parser.add_argument("--timeout", type=float, default=900, help="seconds one session may take")
    parser.add_argument("--modes", default=None,
                        help=f"comma-separated, of: {', '.join(MODES)}, before (default: before,deepening with --before, "
                             "else deepening,full runs only)")
    parser.add_argument("--before", type=Path, default=None, help="another checkout to run the same command in (mode before)")
    parser.add_argument("--quick", action="store_true", help="three bugs, this tree only (a check that it runs)")
    parser.add_argument("--measure-costs", action="store_true", help="rewrite harness/pass_costs.json from a clean run")
    args = parser.parse_args(argv)
    if args.measure_costs:
        return measure_costs(args.timeout)
    modes = dict(MODES)
    if args.before:
        modes["before"] = Mode(args.before.resolve())
    chosen = args.modes or ("deepening" if args.quick else "before,deepening" if args.before else "deepening,full runs only")
    unknown = [name for name in chosen.split(",") if name not in modes]
    if unknown:
        parser.error(f"unknown modes {unknown} (before needs --before PATH); known: {', '.join(modes)}")
    modes = {name: modes[name] for name in chosen.split(",")}
    sys.path.insert(0, str(ROOT))
    from tests.bugs.catalogue import catalogue

    names = args.bugs or list(catalogue())[:: max(1, args.every)]
    if args.quick:
        names = names[:3]
    rows, seconds = [], {mode: {"wall": [], "cpu": []} for mode in modes}
    for n, name in enumerate(names, 1):
        row = [name]
        order = list(modes.items()) if n % 2 else list(modes.items())[::-1]  # alternate which mode goes first
        results = {mode: session(how, name, args.timeout) for mode, how in order}
        for mode in modes:
            result = results[mode]
            row += ["yes" if result["failed"] else "NO", result["test"].split("::")[-1], f"{result['wall']:.1f}",
                    f"{result['before']:.1f}", f"{result['failing']:.1f}", f"{result['outside']:.1f}", f"{result['cpu']:.1f}"]
            if result["failed"]:
                seconds[mode]["wall"].append(result["wall"])
                seconds[mode]["cpu"].append(result["cpu"])
        rows.append(row)
        print(f"[{n}/{len(names)}] " + " | ".join(row), file=sys.stderr, flush=True)
    headers = ["bug"]
    for mode in modes:
        headers += [f"{mode}: failed", "first failing test", "wall s", "in tests before", "in the failing test",
                    "outside tests", "CPU s"]
    print(tabulate(rows, headers=headers, tablefmt="github"))
    print()
    summary = [[mode, f"{len(s['wall'])}/{len(names)}", f"{statistics.median(s['wall']):.1f}" if s["wall"] else "-",
                f"{statistics.median(s['cpu']):.1f}" if s["cpu"] else "-"] for mode, s in seconds.items()]
    print(tabulate(summary, headers=["mode", "sessions failed", "median wall s", "median CPU s"], tablefmt="github"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
