"""Mutation score of one module of ``implementations/``, with the machines as the test command.

    python -m tests.mutation implementations/orset_tombstone.py --machine orset -k tombstone
    python -m tests.mutation implementations/lww.py --machine lww -k hlc --out /tmp/lww-mutants.md

``mutmut`` (3.x) mutates the module and, for every mutant, runs the machine's test (the
``ci`` profile without shrinking: a mutant is killed by the first failure, its shrunk trace
is of no use here) restricted to the implementation that module is (``-k``). One module per
run, so a night holds it. The run works in a scratch copy of the project (mutmut writes its
``mutants/`` tree where it runs), and prints, and writes to ``--out``, the score and every
surviving mutant by file with its diff: each survivor is then either equivalent (say why)
or a gap in a machine to close with a rule, a fault or an invariant.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: What the scratch copy needs besides the module's package.
COPIED = ("models", "machines", "harness", "examples", "regressions", "tests", "conftest.py", "pyproject.toml")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", "mutants", "traces", ".traces")


def scratch_copy(into: Path) -> None:
    for name in (*COPIED, "implementations"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, into / name, ignore=IGNORED)
        elif source.exists():
            shutil.copy2(source, into / name)


def config(module: str, machine: str, selection: str | None, workers: int) -> str:
    tests = [f"machines/{machine}.py"] + (["-k", selection] if selection else [])
    return "\n".join([
        "[mutmut]",
        "source_paths=implementations",
        f"only_mutate={module}",
        "also_copy=" + "\n    ".join(["", *COPIED[:-2], "conftest.py"]),
        "pytest_add_cli_args_test_selection=" + "\n    ".join(["", *tests]),
        "pytest_add_cli_args=\n    -p\n    no:cacheprovider\n    -x\n    -q",
        "timeout_multiplier=5",
        "",
    ])


def run(module: str, machine: str, selection: str | None, workers: int) -> tuple[str, int]:
    with tempfile.TemporaryDirectory(prefix="mbt-mutation-") as scratch:
        work = Path(scratch)
        scratch_copy(work)
        (work / "setup.cfg").write_text(config(module, machine, selection, workers), encoding="utf-8")
        env = {**os.environ, "CI": "true", "HYPOTHESIS_PROFILE": "mutation",
               "MBT_TRACE_DIR": str(work / "traces"), "HYPOTHESIS_STORAGE_DIRECTORY": str(work / ".hypothesis")}
        mutmut = [sys.executable, "-m", "mutmut"]
        done = subprocess.run([*mutmut, "run", "--max-children", str(workers)], cwd=work, env=env, capture_output=True,
                              text=True, check=False)
        log = done.stdout[-4000:] + done.stderr[-4000:]
        results = subprocess.run([*mutmut, "results", "--all", "true"], cwd=work, env=env, capture_output=True, text=True,
                                 check=False)
        statuses: dict[str, str] = {}
        for line in results.stdout.splitlines():
            match = re.match(r"\s*([\w.]+__mutmut_\d+): (.+)$", line)
            if match:
                statuses[match.group(1)] = match.group(2).strip()
        survivors = [name for name, status in statuses.items() if status == "survived"]
        diffs = {}
        for name in survivors:
            shown = subprocess.run([*mutmut, "show", name], cwd=work, env=env, capture_output=True, text=True, check=False)
            diffs[name] = shown.stdout.strip()
    counts: dict[str, int] = defaultdict(int)
    for status in statuses.values():
        counts[status] += 1
    tested = sum(n for status, n in counts.items() if status not in ("skipped", "not checked", "no tests"))
    killed = counts["killed"] + counts["timeout"]
    score = 100 * killed / tested if tested else 0.0
    lines = [f"# Mutation score of {module} (machine {machine}{f', -k {selection}' if selection else ''})", "",
             f"{len(statuses)} mutants: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
             + f". Score (killed + timeout) / tested: **{score:.1f}%**.", ""]
    if not statuses:
        lines += ["mutmut reported no mutants; its output:", "", "```", log, "```"]
    by_function: dict[str, list[str]] = defaultdict(list)
    for name in survivors:
        by_function[name.split("__mutmut_")[0]].append(name)
    if survivors:
        lines += [f"## Surviving mutants in {module}", ""]
        for function, names in sorted(by_function.items()):
            lines.append(f"### {function}")
            for name in names:
                lines += ["", f"`{name}`", "", "```diff", diffs[name], "```"]
            lines.append("")
    return "\n".join(lines) + "\n", len(survivors)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__.split("\n\n")[0])
    parser.add_argument("module", help="a file of implementations/, e.g. implementations/lww.py")
    parser.add_argument("--machine", required=True, help="the machine whose test kills its mutants")
    parser.add_argument("-k", dest="selection", help="pytest -k: the machine's implementations that use the module")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", help="where to write the Markdown report")
    args = parser.parse_args(argv)
    if not (ROOT / args.module).is_file() or not args.module.startswith("implementations/"):
        parser.error(f"{args.module}: expected a file under implementations/")
    text, survivors = run(args.module, args.machine, args.selection, args.workers)
    print(f"{survivors} surviving mutants: account for each (equivalent, or a gap to close)", file=sys.stderr)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
