"""Every benchmark in one command, and one Markdown report of all their tables.

    python -m benchmarks [--quick] [--out REPORT.md] [--only NAME ...] [--timeout SECONDS]

Runs each script of ``benchmarks/`` (every ``benchmarks/*.py`` with a ``__main__`` block, so
a new script is picked up without being listed here) and the per-operation micro-benchmarks
(``benchmarks/micro``, pytest-benchmark: each run saved, and compared with the previous one).
Each runs in its own process, one after the other (they measure; running two at once would
measure each other), from a scratch directory, with ``PYTHONPATH`` set to the project root.

``--quick`` passes ``--quick`` to every script that offers it (and smaller sizes, from
``QUICK_FALLBACK``, to those that do not) and runs the micro-benchmarks for a shorter time:
a check that everything runs, with rougher figures.

The report (``--out``; by default ``report-<UTC time>.md`` under
``benchmarks.measure.results_directory()``, never the current directory) has, for each
script, the command, its exit status, the CPU and elapsed seconds of its process tree, and
its output: the tables, each of which states its own time base. A script that fails or runs
past ``--timeout`` is reported as such and makes the exit status 1; the others still run.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.measure import results_directory  # noqa: E402

#: Not benchmarks: the shared helpers and this runner.
NOT_SCRIPTS = {"__init__", "__main__", "measure", "run_all"}
#: The order of the report (the harness first: it is what every test run pays); others follow by name.
ORDER = ["harness_overhead", "machine_steps", "micro", "editing_trace", "rga_scaling", "scaling", "pskt_bench",
         "threshold_bench"]
MICRO = "micro"
#: A quick look at the scripts that do not offer ``--quick`` themselves (used only while their
#: ``--help`` names every flag here; a script that offers ``--quick`` gets ``--quick``).
QUICK_FALLBACK = {
    "mesh_scale": ["--nodes", "20", "--minutes", "2"],  # its docstring's quick look
    "quic_loopback": ["--messages", "5000", "--round-trips", "200", "--handshakes", "10"],
    "crash_signers": ["--kills", "40"],
    "rga_scaling": ["--sizes", "1000", "10000"],
}


@attrs.frozen
class Outcome:
    name: str
    command: list[str]
    status: str  # "ok", "failed (exit N)", "timed out after N s"
    cpu_seconds: float
    wall_seconds: float
    output: str


def scripts() -> list[str]:
    """The benchmark scripts (module names), in report order."""
    found = sorted(
        path.stem for path in HERE.glob("*.py")
        if path.stem not in NOT_SCRIPTS and 'if __name__ == "__main__"' in path.read_text(encoding="utf-8")
    )
    return sorted([*found, MICRO], key=lambda name: (ORDER.index(name) if name in ORDER else len(ORDER), name))


def child_environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def quick_arguments(script: Path, env: dict[str, str], scratch: str) -> list[str]:
    """``--quick`` if ``script --help`` offers it, else its ``QUICK_FALLBACK`` if the help names
    all of those flags, else nothing (the script runs in full)."""
    try:
        result = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, env=env,
                                cwd=scratch, timeout=120, check=False)
    except subprocess.TimeoutExpired:
        return []
    if "--quick" in result.stdout:
        return ["--quick"]
    fallback = QUICK_FALLBACK.get(script.stem, [])
    flags = [part for part in fallback if part.startswith("--")]
    return fallback if flags and all(flag in result.stdout for flag in flags) else []


def command_for(name: str, quick: bool, env: dict[str, str], scratch: str) -> list[str]:
    if name == MICRO:
        # Saved under the commit's name (pytest-benchmark's autosave would look for git in the scratch directory).
        command = [sys.executable, "-m", "pytest", str(HERE / "micro"), "-q", "-p", "no:cacheprovider", "--rootdir", str(ROOT),
                   f"--benchmark-save={git_commit(short=True)}", "--benchmark-compare",
                   "--benchmark-columns=min,median,mean,stddev,rounds", "--benchmark-sort=name"]
        return command + (["--benchmark-max-time=0.1", "--benchmark-min-rounds=3"] if quick else [])
    script = HERE / f"{name}.py"
    return [sys.executable, str(script)] + (quick_arguments(script, env, scratch) if quick else [])


def run(name: str, command: list[str], env: dict[str, str], scratch: str, timeout: float) -> Outcome:
    """Run one benchmark in its own session (so a timeout stops its whole process tree)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=scratch,
                               start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
        status = "ok" if process.returncode == 0 else f"failed (exit {process.returncode})"
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        status = f"timed out after {timeout:.0f} s"
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Outcome(name, command, status, cpu, wall, output)


def describe(name: str) -> str:
    """The first line of a script's docstring: what it answers."""
    path = HERE / ("micro/test_operations.py" if name == MICRO else f"{name}.py")
    text = path.read_text(encoding="utf-8")
    start = text.find('"""')
    return text[start + 3:].splitlines()[0].strip() if start >= 0 else ""


def shown(command: list[str]) -> str:
    return " ".join("python" if part == sys.executable else str(Path(part).relative_to(ROOT)) if part.startswith(str(ROOT))
                    else part for part in command)


def git_commit(short: bool = False) -> str:
    """The commit measured, and whether the tree had changes (``-dirty`` when ``short``)."""
    try:
        result = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                timeout=30, check=False)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    commit = result.stdout.strip() or "unknown"
    if dirty.stdout.strip():
        commit += "-dirty" if short else " (with uncommitted changes)"
    return commit


def report(outcomes: list[Outcome], quick: bool, started: datetime.datetime) -> str:
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "unknown"
    lines = [
        f"# Benchmarks, {started:%Y-%m-%d %H:%M} UTC{' (quick)' if quick else ''}",
        "",
        f"- commit {git_commit()}; Python {platform.python_version()} on {platform.platform()}; {os.cpu_count()} CPUs; "
        f"load average at the end {load}",
        "- Time base: every table states its own; the project's benchmarks measure CPU time of the measuring process "
        "(`time.process_time`), the micro-benchmarks too (pytest-benchmark with `--benchmark-timer time.process_time`, "
        "times in its header's unit). Compare ratios within one run, not seconds across runs.",
        "- The summary's CPU seconds are those of each benchmark's whole process tree (`RUSAGE_CHILDREN`), elapsed "
        "seconds by the monotonic clock: when elapsed is well above CPU, the machine was busy.",
        "",
        "| benchmark | status | CPU s | elapsed s | what it answers |",
        "|---|---|---:|---:|---|",
    ]
    for o in outcomes:
        lines.append(f"| `{o.name}` | {o.status} | {o.cpu_seconds:.1f} | {o.wall_seconds:.1f} | {describe(o.name)} |")
    for o in outcomes:
        lines += ["", f"## `{o.name}`", "", f"`{shown(o.command)}`: {o.status}, {o.cpu_seconds:.1f} s CPU, "
                  f"{o.wall_seconds:.1f} s elapsed", "", "```text", o.output.rstrip(), "```"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="pass --quick to the scripts that offer it; shorter micro runs")
    parser.add_argument("--out", type=Path, help="the Markdown report (default: report-<time>.md under "
                        f"{results_directory()})")
    parser.add_argument("--only", nargs="+", metavar="NAME", help=f"run only these, of: {', '.join(scripts())}")
    parser.add_argument("--timeout", type=float, default=3_600, help="seconds per benchmark before it is stopped (default 3600)")
    args = parser.parse_args(argv)
    names = scripts()
    if args.only:
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            parser.error(f"no benchmark {', '.join(unknown)}; there are: {', '.join(names)}")
        names = [n for n in names if n in args.only]
    started = datetime.datetime.now(datetime.UTC)
    out = args.out or results_directory() / f"report-{started:%Y%m%d-%H%M%S}.md"
    env = child_environment()
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="benchmarks-") as scratch:
        for name in names:
            command = command_for(name, args.quick, env, scratch)
            print(f"== {name}: {shown(command)}", flush=True)
            outcome = run(name, command, env, scratch, args.timeout)
            print(f"   {outcome.status}, {outcome.cpu_seconds:.1f} s CPU, {outcome.wall_seconds:.1f} s elapsed", flush=True)
            outcomes.append(outcome)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report(outcomes, args.quick, started), encoding="utf-8")
    print(f"\nReport: {out}")
    return 0 if all(o.status == "ok" for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
