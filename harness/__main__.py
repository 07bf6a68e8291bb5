"""Command line: ``python -m harness {replay,explain,minimize,promote,list} ...`` (also ``mbt``).

* ``replay TRACE...``: replay each trace twice; print passed / failed / stale / non-deterministic.
  Exit status 0 only if every trace passed both times identically.
* ``explain TRACE``: the step-by-step report (model beside each replica, first divergence).
  Exit status 0 only if the trace passes: 1 if it fails or is stale.
* ``minimize TRACE [--out FILE]``: the trace without the steps and argument values it does not
  need to fail the same check (``harness.minimize``); written to FILE, or beside TRACE under
  its own name. Exit status 1 if the trace does not fail.
* ``promote TRACE --name NAME --note TEXT``: check a trace, replay it, and write it to
  ``regressions/traces/NAME.json`` to be replayed by ``pytest regressions/`` forever. It must
  pass now (the bug it found is fixed); ``--allow-failing`` promotes a trace of a bug that is
  not fixed yet (the regression test will fail until it is). An existing file is never
  replaced without ``--force``.
* ``list``: the machines and their registered implementations.
* ``limits``: every limit on what a peer may send or store (``implementations.limits``), as
  the Markdown table the README's *Limits* section holds.
* ``node ...`` and ``cluster ...``: a mesh node process, and a local cluster under a workload
  (``implementations.transport.mesh_node`` and ``.cluster``; ``mbt node --help``).
* ``nightly [--budget S] [--workers N] [--machine M] [--out DIR] [--db DIR|redis://...]``: every
  machine under the nightly profile for one wall-clock budget, failures triaged and reported
  (``harness.nightly``; ``mbt nightly --help``).

Exit status 2: a trace that cannot be read, or a machine or implementation that is unknown.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import tempfile
from pathlib import Path

import attrs

from harness.minimize import MinimizeBudget, NothingToMinimize, minimize
from harness.registry import _machines, implementations, load_adapters, machine_class
from harness.replay import replay, reproduces, resolve, walk
from harness.trace import TraceError, load_trace, save_trace

REGRESSIONS = Path(__file__).resolve().parent.parent / "regressions" / "traces"


def _replay_twice(path: str) -> tuple[bool, str]:
    trace = load_trace(path)
    first, second = replay(trace), replay(trace)
    if not reproduces(first, second, resolve(trace)[0]):
        return False, f"non-deterministic: first replay {first}, second replay {second}"
    return first.status == "passed", str(first)


def cmd_replay(args: argparse.Namespace) -> int:
    ok = True
    for path in args.traces:
        try:
            passed, text = _replay_twice(path)
        except (TraceError, LookupError) as error:
            passed, text = False, f"error: {error}"
        ok &= passed
        print(f"{path}: {text}")
    return 0 if ok else 1


def cmd_explain(args: argparse.Namespace) -> int:
    report, outcome = walk(load_trace(args.trace))
    print(report)
    return 0 if outcome.status == "passed" else 1


def cmd_minimize(args: argparse.Namespace) -> int:
    trace = load_trace(args.trace)
    try:
        result = minimize(trace, budget=MinimizeBudget(replays=args.replays, steps=args.steps))
    except NothingToMinimize as nothing:
        print(f"{args.trace}: {nothing}", file=sys.stderr)
        return 1
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(result.trace.to_json(), encoding="utf-8")
    else:
        out = save_trace(result.trace, Path(args.trace).parent)
    print(f"{out}: {result.summary()}; fails {result.trace.failure}")
    return 0


def _write_new(target: Path, text: str, force: bool) -> None:
    """Write ``text`` to ``target``, never over an existing file unless ``force``
    (``FileExistsError``, even if the file appeared a moment ago)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if not force:
        with target.open("x", encoding="utf-8") as file:
            file.write(text)
        return
    descriptor, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def cmd_promote(args: argparse.Namespace) -> int:
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", args.name):
        print(f"--name {args.name!r}: use lower-case letters, digits, '.', '_' and '-'", file=sys.stderr)
        return 2
    trace = load_trace(args.trace)
    passed, text = _replay_twice(args.trace)
    if not passed and not args.allow_failing:
        print(f"{args.trace}: {text}\nNot promoted: a regression trace must pass once its bug is fixed "
              "(use --allow-failing to commit it before the fix).", file=sys.stderr)
        return 1
    target = Path(args.directory) / f"{args.name}.json"
    trace = attrs.evolve(trace, note=args.note or trace.note)
    try:
        _write_new(target, trace.to_json(), args.force)
    except FileExistsError:
        print(f"{target} exists: not replaced (choose another --name, or --force to replace it)", file=sys.stderr)
        return 1
    print(f"{target}: {text}. Commit it:  git add {target}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    load_adapters()
    for module in sorted(Path(__file__).resolve().parent.parent.joinpath("machines").glob("*.py")):
        if module.stem not in {"__init__", "contracts", "replicated"}:
            with contextlib.suppress(KeyError):
                machine_class(module.stem)
    for name in sorted(_machines):
        impls = ", ".join(f"{i.name} ({i.level}) from {i.adapter}" for i in implementations(name)) or "none"
        print(f"{name}: {impls}")
    return 0


def limits_table() -> str:
    """The README's table of limits, made from ``implementations.limits``."""
    from implementations.limits import LIMITS

    lines = ["| limit | value | bounds | why this value |", "|---|---|---|---|"]
    for limit in LIMITS.values():
        lines.append(f"| `{limit.name}` | {limit.value:,} {limit.unit} | {limit.bounds} | {limit.why or '—'} |")
    return "\n".join(lines)


def cmd_limits(args: argparse.Namespace) -> int:
    print(limits_table())
    return 0


#: Commands that are whole programs of their own: their arguments are theirs.
PROGRAMS = {"node": "implementations.transport.mesh_node", "cluster": "implementations.transport.cluster",
            "nightly": "harness.nightly", "constants": "harness.constants"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in PROGRAMS:
        import importlib

        return importlib.import_module(PROGRAMS[argv[0]]).main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m harness", description=__doc__.split("\n\n")[0],
                                     epilog="also: node ... (a mesh node process), cluster ... (a local cluster, a workload), "
                                            "nightly ... (every machine for one budget, a report), "
                                            "constants ... (write the pinned pool of literals again)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("replay", help="replay traces twice and report")
    p.add_argument("traces", nargs="+")
    p.set_defaults(run=cmd_replay)
    p = sub.add_parser("explain", help="walk a trace step by step")
    p.add_argument("trace")
    p.set_defaults(run=cmd_explain)
    p = sub.add_parser("minimize", help="remove the steps and argument values a failing trace does not need")
    p.add_argument("trace")
    p.add_argument("--out", help="where to write the minimized trace (default: beside TRACE, named by its steps)")
    p.add_argument("--replays", type=int, default=2000, help="most candidate traces replayed (default 2000)")
    p.add_argument("--steps", type=int, default=200_000, help="most steps replayed in all (default 200000)")
    p.set_defaults(run=cmd_minimize)
    p = sub.add_parser("promote", help="commit a trace as a regression")
    p.add_argument("trace")
    p.add_argument("--name", required=True, help="file name in regressions/traces, without .json")
    p.add_argument("--note", default="", help="why this trace exists (the bug it found)")
    p.add_argument("--directory", default=str(REGRESSIONS))
    p.add_argument("--allow-failing", action="store_true")
    p.add_argument("--force", action="store_true", help="replace an existing regression of that name")
    p.set_defaults(run=cmd_promote)
    p = sub.add_parser("list", help="machines and their implementations")
    p.set_defaults(run=cmd_list)
    p = sub.add_parser("limits", help="every limit on what a peer may send or store, as a Markdown table")
    p.set_defaults(run=cmd_limits)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except TraceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except LookupError as error:  # an unknown machine or implementation, a registration no machine checks
        print(f"error: {error.args[0]}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
