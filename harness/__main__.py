"""Command line: ``python -m harness {replay,explain,promote,list} ...`` (also installed as ``mbt``).

* ``replay TRACE...``: replay each trace twice; print passed / failed / stale / non-deterministic.
  Exit status 0 only if every trace passed both times identically.
* ``explain TRACE``: the step-by-step report (model beside each replica, first divergence).
* ``promote TRACE --name NAME --note TEXT``: check a trace, replay it, and write it to
  ``regressions/traces/NAME.json`` to be replayed by ``pytest regressions/`` forever. It must
  pass now (the bug it found is fixed); ``--allow-failing`` promotes a trace of a bug that is
  not fixed yet (the regression test will fail until it is).
* ``list``: the machines and their registered implementations.
* ``node ...`` and ``cluster ...``: a mesh node process, and a local cluster under a workload
  (``implementations.transport.mesh_node`` and ``.cluster``; ``mbt node --help``).
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from pathlib import Path

import attrs

from harness.registry import _machines, implementations, load_adapters, machine_class
from harness.runner import explain, replay
from harness.trace import TraceError, load_trace, save_trace

REGRESSIONS = Path(__file__).resolve().parent.parent / "regressions" / "traces"


def _replay_twice(path: str) -> tuple[bool, str]:
    trace = load_trace(path)
    first, second = replay(trace), replay(trace)
    if first != second:
        return False, f"non-deterministic: first replay {first}, second replay {second}"
    return first.status == "passed", str(first)


def cmd_replay(args: argparse.Namespace) -> int:
    ok = True
    for path in args.traces:
        try:
            passed, text = _replay_twice(path)
        except (TraceError, KeyError) as error:
            passed, text = False, f"error: {error}"
        ok &= passed
        print(f"{path}: {text}")
    return 0 if ok else 1


def cmd_explain(args: argparse.Namespace) -> int:
    print(explain(load_trace(args.trace)))
    return 0


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
    if target.exists() and not args.force:
        print(f"{target} exists (use --force to replace it)", file=sys.stderr)
        return 1
    trace = attrs.evolve(trace, note=args.note or trace.note)
    written = save_trace(trace, args.directory)
    written.replace(target)
    print(f"{target}: {text}. Commit it:  git add {target}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    load_adapters()
    for module in sorted(Path(__file__).resolve().parent.parent.joinpath("machines").glob("*.py")):
        if module.stem not in {"__init__", "contracts", "replicated"}:
            with contextlib.suppress(KeyError):
                machine_class(module.stem)
    for name in sorted(_machines):
        impls = ", ".join(f"{i.name} ({i.level})" for i in implementations(name)) or "none"
        print(f"{name}: {impls}")
    return 0


#: Commands that are whole programs of their own: their arguments are theirs.
PROGRAMS = {"node": "implementations.transport.mesh_node", "cluster": "implementations.transport.cluster"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in PROGRAMS:
        import importlib

        return importlib.import_module(PROGRAMS[argv[0]]).main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m harness", description=__doc__.split("\n\n")[0],
                                     epilog="also: node ... (a mesh node process), cluster ... (a local cluster, a workload)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("replay", help="replay traces twice and report")
    p.add_argument("traces", nargs="+")
    p.set_defaults(run=cmd_replay)
    p = sub.add_parser("explain", help="walk a trace step by step")
    p.add_argument("trace")
    p.set_defaults(run=cmd_explain)
    p = sub.add_parser("promote", help="commit a trace as a regression")
    p.add_argument("trace")
    p.add_argument("--name", required=True, help="file name in regressions/traces, without .json")
    p.add_argument("--note", default="", help="why this trace exists (the bug it found)")
    p.add_argument("--directory", default=str(REGRESSIONS))
    p.add_argument("--allow-failing", action="store_true")
    p.add_argument("--force", action="store_true")
    p.set_defaults(run=cmd_promote)
    p = sub.add_parser("list", help="machines and their implementations")
    p.set_defaults(run=cmd_list)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except TraceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyError as error:
        print(f"error: {error.args[0]}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
