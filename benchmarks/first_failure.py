"""How soon does ``pytest machines/ -x`` fail on a build with one catalogued bug patched in?

For each chosen bug of the catalogue (``tests/bugs``), a fresh ``pytest machines/ -x`` under
``ci`` with the bug planted for the whole session (``MBT_PLANT_BUG``, as the nightly runner's
acceptance run does), once with every machine's shallow pass first (the default under
``-x``: ``harness.runner.shallow_first``) and once without (``MBT_SHALLOW_FIRST=0``: each
machine's full run, one after the other). Per bug and mode: whether the session failed, the
test that failed first, elapsed seconds and CPU seconds (user + system of the pytest process
and its children) to the end of the session, which with ``-x`` is the first failure, its
shrinking and its trace. The medians are issue 13's acceptance row (at most 10 seconds).

    python benchmarks/first_failure.py                  # every 6th bug of the catalogue
    python benchmarks/first_failure.py --every 1        # every bug (about an hour)
    python benchmarks/first_failure.py lww-smaller-writer-wins policy-rolling-window
    python benchmarks/first_failure.py --every 3 --modes "shallow first"
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parent.parent
MODES = {"shallow first": "1", "full runs only": "0"}


def run(bug: str, shallow: str, timeout: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="mbt-first-failure-") as scratch:
        env = {**os.environ, "CI": "true", "HYPOTHESIS_PROFILE": "ci", "MBT_PLANT_BUG": bug, "MBT_SHALLOW_FIRST": shallow,
               "MBT_TRACE_DIR": str(Path(scratch) / "traces"), "PYTHONPATH": str(ROOT)}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        try:
            done = subprocess.run([sys.executable, "-m", "pytest", "machines/", "-x", "-q", "-p", "no:cacheprovider"],
                                  cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
            output, status = done.stdout, done.returncode
        except subprocess.TimeoutExpired:
            output, status = "", None
        elapsed = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    failed = re.search(r"^FAILED (\S+)", output, re.MULTILINE)
    return {"failed": status == 1 and failed is not None, "test": failed.group(1) if failed else
            ("timed out" if status is None else f"exit {status}"), "wall": elapsed, "cpu": cpu}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bugs", nargs="*", help="bug names (default: every --every-th bug of the catalogue)")
    parser.add_argument("--every", type=int, default=6, help="take every n-th bug of the catalogue")
    parser.add_argument("--timeout", type=float, default=900, help="seconds one session may take")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of: {', '.join(MODES)}")
    args = parser.parse_args(argv)
    modes = {mode: MODES[mode] for mode in args.modes.split(",")}
    sys.path.insert(0, str(ROOT))
    from tests.bugs.catalogue import catalogue

    names = args.bugs or list(catalogue())[:: max(1, args.every)]
    rows, seconds = [], {mode: {"wall": [], "cpu": []} for mode in modes}
    for n, name in enumerate(names, 1):
        row = [name]
        for mode, flag in modes.items():
            result = run(name, flag, args.timeout)
            row += ["yes" if result["failed"] else "NO", result["test"].split("::")[-1], f"{result['wall']:.1f}",
                    f"{result['cpu']:.1f}"]
            if result["failed"]:
                seconds[mode]["wall"].append(result["wall"])
                seconds[mode]["cpu"].append(result["cpu"])
        rows.append(row)
        print(f"[{n}/{len(names)}] " + " | ".join(row), file=sys.stderr, flush=True)
    headers = ["bug"]
    for mode in modes:
        headers += [f"{mode}: failed", "first failing test", "wall s", "CPU s"]
    print(tabulate(rows, headers=headers, tablefmt="github"))
    print()
    summary = [[mode, f"{len(s['wall'])}/{len(names)}", f"{statistics.median(s['wall']):.1f}" if s["wall"] else "-",
                f"{statistics.median(s['cpu']):.1f}" if s["cpu"] else "-"] for mode, s in seconds.items()]
    print(tabulate(summary, headers=["mode", "sessions failed", "median wall s", "median CPU s"], tablefmt="github"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
