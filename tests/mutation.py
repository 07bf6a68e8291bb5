"""Mutation score of one module of ``implementations/``, with the machines as the test command.

    python -m tests.mutation implementations/orset_tombstone.py          # the machines tests/mutation_plan.toml names
    python -m tests.mutation implementations/lww.py --machine lww -k hlc --workers 1 --out /tmp/lww-mutants.md
    python -m tests.mutation implementations/transport/endpoint.py --leave-out realnet   # the plan's machines but one
    python -m tests.mutation --all /var/mutation                        # every planned module not saved there yet
    python -m tests.mutation implementations/rga.py --all /var/mutation # only that one (a runner of the nightly matrix)
    python -m tests.mutation --summary /var/mutation                    # the score over implementations/

``mutmut`` (3.x) mutates the module and, for every mutant, runs the machine's test (the
``ci`` profile without shrinking: a mutant is killed by the first failure, its shrunk trace
is of no use here) and replays the machine's committed traces (``regressions/traces/``:
explicit scenarios, such as a tie at a counter's roll-over, that a search may take long to
find), both restricted to the implementations that run the module's code. Which machines
and implementations those are is ``tests/mutation_plan.toml`` (``--machine``/``-k`` name one
instead). One module per run, so a night holds it; ``--all DIR`` runs every planned module
whose results DIR does not hold for the module as it is now (resumable: a night per module, or
one module per runner of the nightly workflow), ``--summary DIR`` reports the score over all of
``implementations/`` from what DIR holds and names the modules not run yet. The run works in a
scratch copy of the project (mutmut writes its ``mutants/`` tree where it runs).

Every surviving mutant is either *equivalent* or a gap in a machine to close with a rule, a
fault or an invariant. Survivors are accounted for in ``tests/mutation_equivalent.toml``,
each keyed by what stays put while mutmut's numbers move: the module, the function
(``Class.method`` or ``function``), the original line's text and the mutated line's text,
with a ``kind`` and a one-line reason. ``equivalent``: no input the module can get tells it
from the original (say why). ``unreached``: it would change behaviour, but only on input the
machines do not send by design (a caller's programming error, a clock in the year 2554): the
reason says which input, so it stays a known gap and counts against the score. The report
(printed, and written to ``--out``) gives per module the mutants killed, survived-equivalent,
survived-unreached, survived-unaccounted (listed with their diffs) and the score both raw and
with the equivalents left out; an entry whose mutant the machines now kill is listed too (its
reason was wrong, or a machine grew: drop it). ``--save FILE`` keeps the
raw results (status and diff of every mutant) as JSON, and ``--from-saved FILE`` reports on
them again without running mutmut: for accounting after the run. ``--rerun-survivors FILE``
runs mutmut again on the survivors of saved results only (after a machine grew: a survivor
costs a whole machine run, a killed mutant a few steps) and carries the other statuses over;
the module must be unchanged since (its digest is saved), and the report says so. A module
whose machines run real node processes (``IN_CHILD_PROCESSES``) has every kill confirmed by a
second run (timing fails such runs on a loaded machine); ``--confirm-kills FILE`` does that
for results saved before.

A module too big for one sitting (``threshold.py``: 1,231 mutants, about five hours on one
core) runs in parts: ``--parts N --save FILE`` splits its functions, in source order, into N
parts of about as many lines each, tests one part at a time and writes FILE after each; run
again, it goes on from the first part FILE lacks (for the module as it is now), and
``--max-parts K`` stops after K parts so a run fits the time at hand. The report of an
unfinished run says how many parts it holds, and ``--summary`` counts such a module as not run.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: What the scratch copy needs besides the module's package.
COPIED = ("models", "machines", "harness", "examples", "regressions", "tests", "conftest.py", "pyproject.toml")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", "mutants")
#: The accounting of equivalent mutants (see the module docstring).
EQUIVALENTS = ROOT / "tests" / "mutation_equivalent.toml"
#: Which machines and implementations test each module's mutants.
PLAN = ROOT / "tests" / "mutation_plan.toml"
#: The plan's table of modules left out, each with the reason.
NOT_MUTATED = "not_mutated"
#: Machines whose implementations run in child processes (real nodes talking QUIC). mutmut learns
#: which tests call which function by recording calls in its own process ("stats"), so it sees
#: none of a child's, and in that recording mode a child fails; for a module these machines test,
#: every function is declared called by every selected test (``seed_stats``) and the recording is
#: skipped: each mutant runs the machines' tests, and a mutant no child reaches survives.
IN_CHILD_PROCESSES = {"realnet"}
#: The duration mutmut is told each such test takes (seconds): its timeout of a mutant is
#: ``TIMEOUT_MULTIPLIER`` times the sum of wall time, twice that of the worker's CPU (a realnet run
#: takes about 45 s, 10 CPU s).
CHILD_TEST_SECONDS = 60.0
#: mutmut's timeout of a mutant's tests: this many times (their recorded duration + 1 s) of wall
#: time, and twice that of CPU. A mutant that loops for ever costs it, and again when it is run
#: alone to confirm (``run``); at 10 (4 December) each of rga.py's ``_nth_visible`` loop mutants
#: cost about 20 minutes and stopped a part. A timeout is run again alone before it counts, so
#: a lower factor risks little: a correct run must be 4 times slower than recorded, twice.
TIMEOUT_MULTIPLIER = 4
#: mutmut's statuses that mean the machines caught the mutant.
CAUGHT = ("killed", "timeout")
#: mutmut's statuses of a mutant that was not tested at all.
UNTESTED = ("skipped", "not checked")
#: mutmut's statuses of a mutant the machines did not catch: each is accounted for or listed.
#: ("no tests": no machine step calls the mutated function, the plainest gap of all.)
ESCAPED = ("survived", "no tests", "suspicious")
#: The kinds of accounted survivors (see the module docstring).
KINDS = ("equivalent", "unreached")
#: mutmut's separator of class and method in a mutant's name (``xǁClassǁmethod__mutmut_3``).
CLASS_SEPARATOR = "\u01c1"


@dataclass(frozen=True)
class Equivalent:
    """A surviving mutant accounted for: equivalent, or unreached by design, and why."""

    module: str
    function: str
    line: str
    mutant: str
    kind: str
    reason: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.module, self.function, self.line, self.mutant)


def load_equivalents(path: Path = EQUIVALENTS) -> list[Equivalent]:
    """The entries of the accounting file, or ValueError naming the entry that is malformed."""
    with path.open("rb") as file:
        data = tomllib.load(file)
    unknown = set(data) - {"equivalent"}
    if unknown:
        raise ValueError(f"{path.name}: unknown tables {sorted(unknown)}; entries are [[equivalent]]")
    entries = []
    for number, raw in enumerate(data.get("equivalent", []), 1):
        fields = {"module", "function", "line", "mutant", "kind", "reason"}
        # ``mutant`` alone may be empty: a mutant that deletes the line (a keyword argument on a line of its own).
        if set(raw) != fields or not all(isinstance(raw[f], str) and (raw[f].strip() or f == "mutant") for f in fields):
            raise ValueError(f"{path.name}: equivalent #{number} needs exactly the strings {sorted(fields)}, non-empty "
                             f"but for mutant (a deleted line), got {raw!r}")
        if raw["kind"] not in KINDS:
            raise ValueError(f"{path.name}: equivalent #{number}: kind {raw['kind']!r} is not one of {KINDS}")
        entries.append(Equivalent(**raw))
    repeated = [key for key, n in Counter(e.key for e in entries).items() if n > 1]
    if repeated:
        raise ValueError(f"{path.name}: entries repeated: {repeated}")
    return entries


def function_lines(source: str) -> dict[str, list[str]]:
    """Each function of ``source`` (``Class.method`` or ``function``), as its stripped lines."""
    lines = source.splitlines()
    found: dict[str, list[str]] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found[prefix + child.name] = [line.strip() for line in lines[child.lineno - 1:child.end_lineno]]
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")

    visit(ast.parse(source), "")
    return found


def stale_entries(entries: list[Equivalent], root: Path = ROOT) -> list[str]:
    """What no longer matches the source: a module, a function or a line an entry names that is
    gone, or a mutant that is the original line (so the accounting cannot rot silently)."""
    problems = []
    functions_by_module: dict[str, dict[str, list[str]]] = {}
    for entry in entries:
        path = root / entry.module
        if not entry.module.startswith("implementations/") or not path.is_file():
            problems.append(f"{entry.module}: not a file of implementations/")
            continue
        if entry.module not in functions_by_module:
            functions_by_module[entry.module] = function_lines(path.read_text(encoding="utf-8"))
        body = functions_by_module[entry.module].get(entry.function)
        if body is None:
            problems.append(f"{entry.module}: no function {entry.function}")
            continue
        missing = [line for line in entry.line.split("\n") if line.strip() not in body]
        if missing:
            problems.append(f"{entry.module} {entry.function}: no line {missing[0]!r}")
        if entry.mutant.strip() == entry.line.strip():
            problems.append(f"{entry.module} {entry.function}: the mutant of {entry.line!r} is the line itself")
    return problems


def function_of(mutant_name: str) -> str:
    """``Class.method`` or ``function`` from a mutmut mutant name."""
    mangled = mutant_name.partition("__mutmut_")[0].rpartition(".")[2]
    if CLASS_SEPARATOR in mangled:
        _, cls, method = mangled.split(CLASS_SEPARATOR, 2)
        return f"{cls}.{method}"
    return mangled.removeprefix("x_")


def changed_lines(diff: str) -> tuple[str, str]:
    """The original and the mutated lines of a mutant's unified diff, stripped, one per line."""
    body = [line for line in diff.splitlines() if not line.startswith(("---", "+++", "@@", "#"))]
    removed = "\n".join(line[1:].strip() for line in body if line.startswith("-"))
    added = "\n".join(line[1:].strip() for line in body if line.startswith("+"))
    return removed, added


Machines = dict[str, list[str]]  # machine -> its implementations that run a module's code


def load_plan(path: Path = PLAN) -> tuple[dict[str, Machines], dict[str, str]]:
    """The planned modules with their machines, and the modules left out with the reason; or
    ValueError naming the entry that is malformed."""
    with path.open("rb") as file:
        data = tomllib.load(file)
    skipped = data.pop(NOT_MUTATED, {})
    if not all(isinstance(reason, str) and reason.strip() for reason in skipped.values()):
        raise ValueError(f"{path.name}: [{NOT_MUTATED}] maps a module to the reason it is left out, got {skipped!r}")
    plan: dict[str, Machines] = {}
    for module, machines in data.items():
        if not module.startswith("implementations/") or not module.endswith(".py"):
            raise ValueError(f"{path.name}: [{module!r}] is not a module of implementations/")
        good = isinstance(machines, dict) and machines and all(
            isinstance(names, list) and names and all(isinstance(n, str) and n for n in names) for names in machines.values())
        if not good:
            raise ValueError(f"{path.name}: [{module!r}] needs machine = [implementation, ...] lines, got {machines!r}")
        plan[module] = machines
    both = set(plan) & set(skipped)
    if both:
        raise ValueError(f"{path.name}: {sorted(both)} both planned and left out")
    return plan, skipped


def every_implementation(machine: str) -> list[str]:
    """The names of every implementation registered for ``machine``."""
    from harness.registry import implementations, load_adapters

    load_adapters()
    return [i.name for i in implementations(machine)]


def machines_of(results: dict) -> Machines:
    """The machines of saved results (those saved before the plan named one machine and a ``-k``
    that was an implementation's name)."""
    if "machines" in results:
        return results["machines"]
    selection = results.get("selection")
    return {results["machine"]: [selection] if selection else every_implementation(results["machine"])}


def describe(machines: Machines) -> str:
    return ", ".join(f"{machine} [{', '.join(names)}]" for machine, names in machines.items())


def selected_tests(machines: Machines) -> list[str]:
    """pytest node ids: each machine's test of each implementation named, and every committed
    trace of those machines replayed against those implementations; or ValueError naming a
    machine or implementation that does not exist."""
    from harness import load_trace
    from harness.registry import implementations, load_adapters
    from regressions.test_regressions import _cases

    load_adapters()
    tests = []
    for machine, names in machines.items():
        known = {i.name for i in implementations(machine)}
        unknown = [name for name in names if name not in known]
        if not known or unknown:
            raise ValueError(f"machine {machine!r}: no implementation {unknown or names} (it has {sorted(known)})")
        tests += [f"machines/{machine}.py::test_{machine}_machine[{name}]" for name in names]
    for case in _cases():
        path, name = case.values
        if name is not None and name in machines.get(load_trace(path).machine, ()):
            tests.append(f"regressions/test_regressions.py::test_trace_replays[{case.id}]")
    return tests


def scratch_copy(into: Path) -> None:
    for name in (*COPIED, "implementations"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, into / name, ignore=IGNORED)
        elif source.exists():
            shutil.copy2(source, into / name)


def _sized_functions(module: str) -> list[tuple[str, int]]:
    """mutmut's name of each function and method of ``module``, in source order, with its length in lines."""
    from mutmut.mutation.trampoline_templates import mangle_function_name

    dotted = module.removesuffix(".py").replace("/", ".")
    functions = ast.FunctionDef | ast.AsyncFunctionDef
    sized = []
    for node in ast.parse((ROOT / module).read_text(encoding="utf-8")).body:
        members = [(node, None)] if isinstance(node, functions) else \
            [(item, node.name) for item in node.body if isinstance(item, functions)] if isinstance(node, ast.ClassDef) else []
        sized += [(f"{dotted}.{mangle_function_name(name=item.name, class_name=owner)}", item.end_lineno - item.lineno + 1)
                  for item, owner in members]
    return sized


def mangled_functions(module: str) -> list[str]:
    """mutmut's names of the functions and methods of ``module`` (``pkg.mod.x_function``,
    ``pkg.mod.x\u01c1Class\u01c1method``): the keys of its record of which tests call what."""
    return [name for name, _ in _sized_functions(module)]


def function_parts(module: str, parts: int) -> list[list[str]]:
    """``module``'s functions (mutmut's names, see ``mangled_functions``) split in source order
    into ``parts`` runs of about as many source lines each (fewer parts if it has fewer
    functions); the same split for the same source, so a run in parts can go on later."""
    sized = _sized_functions(module)
    total = sum(size for _, size in sized)
    split: list[list[str]] = [[] for _ in range(max(1, min(parts, len(sized))))]
    done = 0
    for name, size in sized:
        split[min(len(split) - 1, done * len(split) // max(total, 1))].append(name)
        done += size
    return [part for part in split if part]


def run_in_parts(module: str, machines: Machines, workers: int, parts: int, save: Path,
                 max_parts: int | None = None, part: int | None = None) -> dict:
    """``run`` over ``module`` one part of its functions at a time (``function_parts``),
    ``save`` written after each part; results ``save`` already holds for the module as it is
    now, in as many parts, are kept and their parts skipped. A mutant of a function no part
    names (a method of a nested class) runs with the last part: every run lists all mutants.
    Stops after ``max_parts`` parts run now; ``part`` (1-based): run that part alone, now, even
    if ``save`` holds it (its results replace what it held). The results say which parts they hold."""
    split = function_parts(module, parts)
    if part is not None and not 1 <= part <= len(split):
        raise ValueError(f"{module} splits into {len(split)} parts: there is no part {part}")
    results: dict = {"module": module, "digest": digest(module), "machines": machines, "mutants": {},
                     "parts": {"of": len(split), "done": []}}
    if save.is_file():
        before = json.loads(save.read_text(encoding="utf-8"))
        same = (before.get("module"), before.get("digest"), before.get("parts", {}).get("of"))
        if same == (module, digest(module), len(split)):
            results = before
        else:
            print(f"{save}: not a run in {len(split)} parts of {module} as it is now; starting anew", file=sys.stderr, flush=True)
    named = {function for part in split for function in part}
    ran = 0
    # the part asked for, or else every part the results do not hold yet
    todo = [part - 1] if part is not None else [i for i in range(len(split)) if i not in results["parts"]["done"]]
    for index, functions in enumerate(split):
        if index not in todo:
            continue
        if max_parts is not None and ran >= max_parts:
            break
        last = index == len(split) - 1
        strays = sorted(name for name in results.get("every_mutant", [])
                        if name.partition("__mutmut_")[0] not in named) if last else []
        print(f"{module}: part {index + 1} of {len(split)} ({len(functions)} functions)", file=sys.stderr, flush=True)
        try:
            found = run(module, machines, workers, only=[f"{f}__mutmut_*" for f in functions] + strays)
        except MutationRunFailed as error:
            if "nothing matches" not in str(error):
                raise
            found = {"mutants": {}}  # functions without a mutant (a bare ``pass``)
        mine = set(functions) | ({name.partition("__mutmut_")[0] for name in strays} if last else set())
        results["every_mutant"] = sorted(set(results.get("every_mutant", [])) | set(found["mutants"]))
        for name, status in found["mutants"].items():
            if name.partition("__mutmut_")[0] in mine or name in strays:
                results["mutants"][name] = status
        for key in ("timeouts", "confirmed"):
            if found.get(key):
                results.setdefault("notes", []).append(f"part {index + 1}: {found[key]}")
        results["parts"]["done"] = sorted({*results["parts"]["done"], index})
        results["log"] = found.get("log", "")
        save.write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")
        ran += 1
    return results


def unfinished(results: dict) -> str | None:
    """What a run in parts still lacks (``None`` if it is whole)."""
    parts = results.get("parts")
    if not parts or len(parts["done"]) == parts["of"]:
        return None
    return f"{len(parts['done'])} of its {parts['of']} parts run"


def seed_stats(mutants_dir: Path, module: str, tests: list[str]) -> None:
    """mutmut's record of which tests call which function, written before it runs, for a module
    whose code runs in child processes (``IN_CHILD_PROCESSES``): every function by every test.
    mutmut then records nothing itself (its recording mode breaks the children)."""
    mutants_dir.mkdir(parents=True, exist_ok=True)
    stats = {"tests_by_mangled_function_name": {name: list(tests) for name in mangled_functions(module)},
             "duration_by_test": dict.fromkeys(tests, CHILD_TEST_SECONDS), "stats_time": 0.0}
    (mutants_dir / "mutmut-stats.json").write_text(json.dumps(stats, indent=1), encoding="utf-8")


def config(module: str, tests: list[str]) -> str:
    """mutmut's setup.cfg: mutate ``module``, test each mutant with ``tests`` (pytest node ids)."""
    return "\n".join([
        "[mutmut]",
        "source_paths=implementations",
        f"only_mutate={module}",
        "also_copy=" + "\n    ".join(["", *COPIED[:-2], "conftest.py"]),
        "pytest_add_cli_args_test_selection=" + "\n    ".join(["", *tests]),
        "pytest_add_cli_args=\n    -p\n    no:cacheprovider\n    -x\n    -q",
        f"timeout_multiplier={TIMEOUT_MULTIPLIER}",
        "",
    ])


def digest(module: str) -> str:
    return hashlib.sha256((ROOT / module).read_bytes()).hexdigest()


def run(module: str, machines: Machines, workers: int, only: list[str] | None = None) -> dict:
    """mutmut over ``module`` (only the mutants named in ``only``, if given): every mutant's
    status and, for a survivor, its diff. A mutant that timed out is run again alone: on a
    loaded machine a slow run of an equivalent mutant times out too (seven of eight timeouts
    of one ledger.py run were mutants accounted equivalent), and a timeout counts as caught;
    one that times out twice stays caught (a mutant that loops is a change the tests saw).
    For a module whose machines run real processes in real time (``IN_CHILD_PROCESSES``), every
    kill is run again: a loaded machine fails such a run by timing alone (at load average 10,
    two of eight realnet reruns of transport/identity.py "killed" mutants no input can tell),
    so a mutant counts as killed only if it is killed twice; else it is a survivor."""
    results = _mutmut(module, machines, workers, only)
    timeouts = [name for name, found in results["mutants"].items() if found["status"] == "timeout"]
    if timeouts:
        again = _mutmut(module, machines, 1, timeouts)["mutants"]
        for name in timeouts:
            if name in again:
                results["mutants"][name] = {**again[name], "first": "timeout"}
        results["timeouts"] = (f"{len(timeouts)} timed out and were run again alone: "
                               f"{sum(again.get(n, {}).get('status') == 'timeout' for n in timeouts)} timed out again")
    if set(machines) & IN_CHILD_PROCESSES:
        confirm_kills(results, machines, workers)
    return results


def confirm_kills(results: dict, machines: Machines, workers: int) -> dict:
    """``results`` with every caught mutant run again: one the second run does not catch becomes
    a survivor (its first status kept as ``first``). For machines that run real processes in real
    time (see ``run``); ``--confirm-kills`` applies it to saved results."""
    killed = [name for name, found in results["mutants"].items() if found["status"] in CAUGHT]
    if not killed:
        return results
    again = _mutmut(results["module"], machines, workers, killed)["mutants"]
    flaky = [name for name in killed if again.get(name, {}).get("status") not in CAUGHT]
    for name in flaky:
        results["mutants"][name] = {**again.get(name, {"status": "survived"}), "first": results["mutants"][name]["status"]}
    results["confirmed"] = (f"{len(killed)} caught mutants were run again (real processes, real time): "
                            f"{len(killed) - len(flaky)} caught again, {len(flaky)} counted as survivors")
    return results


class MutationRunFailed(RuntimeError):
    """mutmut could not test the mutants (see the message: its output's end)."""


def _in_own_group(args: list[str], **options) -> subprocess.CompletedProcess:
    """``subprocess.run(args, capture_output=True, text=True)`` in a process group of its own,
    killed whole if this process is interrupted or terminated (``timeout`` sends SIGTERM, which
    ``main`` turns into an exit): mutmut forks its workers, which run pytest, which may start
    node processes; killing mutmut alone would leave them running."""
    child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                             **options)
    try:
        out, err = child.communicate()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        raise
    return subprocess.CompletedProcess(args, child.returncode, out, err)


def _mutmut(module: str, machines: Machines, workers: int, only: list[str] | None = None) -> dict:
    from harness.faults import store_directory

    # The machines' stores in a directory of the run's own (where a ci run keeps them: /dev/shm if it
    # can), removed with the scratch copy however the run ends: a run stopped by ``timeout`` gets no
    # teardown in its pytest processes.
    with tempfile.TemporaryDirectory(prefix="mbt-mutation-") as scratch, \
            tempfile.TemporaryDirectory(prefix="mbt-mutation-stores-", dir=store_directory()) as stores:
        work = Path(scratch)
        scratch_copy(work)
        tests = selected_tests(machines)
        (work / "setup.cfg").write_text(config(module, tests), encoding="utf-8")
        if set(machines) & IN_CHILD_PROCESSES:
            seed_stats(work / "mutants", module, tests)
        env = {**os.environ, "CI": "true", "HYPOTHESIS_PROFILE": "mutation",
               "MBT_TRACE_DIR": str(work / "traces"), "HYPOTHESIS_STORAGE_DIRECTORY": str(work / ".hypothesis"),
               "MBT_STORE_DIR": stores}
        # Child processes buffer their output as they do in use: with PYTHONUNBUFFERED set (some
        # shells and CI images set it), a node that forgets to flush its ready line still starts,
        # and transport/node_host.py's mutants dropping that flush survived a run.
        env.pop("PYTHONUNBUFFERED", None)
        mutmut = [sys.executable, "-m", "mutmut"]
        done = _in_own_group([*mutmut, "run", "--max-children", str(workers), *(only or [])], cwd=work, env=env)
        log = done.stdout[-4000:] + done.stderr[-4000:]
        if done.returncode != 0:  # no record of which tests call what, the clean run failed, or a forced failure passed
            raise MutationRunFailed(f"mutmut stopped before testing the mutants of {module} (exit {done.returncode}); "
                                    f"nothing was saved. The end of its output:\n{log[-3000:]}")
        results = _in_own_group([*mutmut, "results", "--all", "true"], cwd=work, env=env)
        mutants: dict[str, dict[str, str]] = {}
        for line in results.stdout.splitlines():
            match = re.match(r"\s*([\w.\u01c1]+__mutmut_\d+): (.+)$", line)
            if match:
                mutants[match.group(1)] = {"status": match.group(2).strip()}
        for name, found in mutants.items():
            if found["status"] in ESCAPED:
                shown = _in_own_group([*mutmut, "show", name], cwd=work, env=env)
                found["diff"] = shown.stdout.strip()
    return {"module": module, "digest": digest(module), "machines": machines, "mutants": mutants, "log": log}


def rerun_survivors(saved: dict, workers: int, only: list[str] | None = None, machines: Machines | None = None) -> dict:
    """``saved`` results with their survivors (those whose names hold one of ``only``, if
    given; one ending in ``$`` must end the name: ``x_admit__mutmut_5$`` is not ``..._50``) run
    again, by ``machines`` if given, else by the machines the plan names now (it may have grown
    since), the other statuses carried over."""
    def named(name: str, part: str) -> bool:
        return name.endswith(part[:-1]) if part.endswith("$") else part in name

    survivors = [name for name, found in saved["mutants"].items()
                 if found["status"] in ESCAPED and (not only or any(named(name, part) for part in only))]
    machines = machines or load_plan()[0].get(saved["module"]) or machines_of(saved)  # the plan may have grown since
    fresh = run(saved["module"], machines, workers, only=survivors)
    mutants = {name: fresh["mutants"].get(name, found) if name in survivors else found
               for name, found in saved["mutants"].items()}
    kept = {key: saved[key] for key in ("parts", "every_mutant") if key in saved}  # (a run in parts stays one)
    return {**fresh, **kept, "mutants": mutants, "rerun": f"{len(survivors)} survivors run again, the other "
                                                          f"{len(mutants) - len(survivors)} statuses carried over"}


@dataclass
class Score:
    """One module's results against the accounting."""

    mutants: int
    tested: int
    killed: int
    equivalent: list[Equivalent]
    unreached: list[Equivalent]
    unaccounted: list[str]  # mutant names
    gone: list[Equivalent]  # accounted, but no longer surviving
    statuses: Counter

    @property
    def raw(self) -> float:
        return 100 * self.killed / self.tested if self.tested else 0.0

    @property
    def without_equivalents(self) -> float:
        rest = self.tested - len(self.equivalent)
        return 100 * self.killed / rest if rest > 0 else 0.0

    def row(self, first: str) -> str:
        return (f"| {first} | {self.mutants} | {self.tested} | {self.killed} | {len(self.equivalent)} | {len(self.unreached)} "
                f"| {len(self.unaccounted)} | {self.raw:.1f}% | {self.without_equivalents:.1f}% |")


ROW_HEADER = ("| mutants | tested | killed | survived: equivalent | survived: unreached | survived: unaccounted "
              "| score raw | score without equivalents |")
ROW_RULE = "|---:|---:|---:|---:|---:|---:|---:|---:|"


def score(results: dict, equivalents: list[Equivalent]) -> Score:
    module, mutants = results["module"], results["mutants"]
    accounted = {e.key: e for e in equivalents if e.module == module}
    counts = Counter(found["status"] for found in mutants.values())
    matched: dict[str, Equivalent] = {}
    unaccounted: list[str] = []
    for name, found in mutants.items():
        if found["status"] in ESCAPED and "diff" in found:
            key = (module, function_of(name), *changed_lines(found["diff"]))
            if key in accounted:
                matched[name] = accounted[key]
            else:
                unaccounted.append(name)
        elif found["status"] in ESCAPED:
            unaccounted.append(name)  # saved by an older tests.mutation, without its diff
    # An unfinished run in parts tested only its parts' functions: an entry of another is not gone.
    ran = {function_of(name) for name, found in mutants.items() if found["status"] not in UNTESTED}
    gone = [e for e in accounted.values() if e not in matched.values() and (not unfinished(results) or e.function in ran)]
    return Score(mutants=len(mutants), tested=sum(n for status, n in counts.items() if status not in UNTESTED),
                 killed=sum(counts[status] for status in CAUGHT),
                 equivalent=[e for e in matched.values() if e.kind == "equivalent"],
                 unreached=[e for e in matched.values() if e.kind == "unreached"],
                 unaccounted=unaccounted, gone=gone, statuses=counts)


def report(results: dict, equivalents: list[Equivalent]) -> tuple[str, int]:
    """The Markdown report of one module's results, and how many survivors are unaccounted."""
    module, mutants = results["module"], results["mutants"]
    found = score(results, equivalents)
    lines = [f"# Mutation score of {module} (machines {describe(machines_of(results))})", "",
             "| module " + ROW_HEADER, "|---" + ROW_RULE, found.row(module), "",
             "mutmut's statuses: " + ", ".join(f"{n} {s}" for s, n in sorted(found.statuses.items())) + "."
             + (f" {results['rerun']}." if results.get("rerun") else "")
             + (f" {results['timeouts']}." if results.get("timeouts") else "")
             + (f" {results['confirmed']}." if results.get("confirmed") else "")
             + "".join(f" {note}." for note in results.get("notes", [])), ""]
    if unfinished(results):
        lines[2:2] = [f"**Unfinished**: {unfinished(results)}; the counts are of those parts only "
                      "(run again with the same `--parts` and `--save` to go on).", ""]
    if not mutants:
        lines += ["mutmut reported no mutants; its output:", "", "```", results.get("log", ""), "```", ""]
    if found.unaccounted:
        lines += [f"## Surviving mutants not accounted for ({len(found.unaccounted)})", "",
                  "Each is a gap in a machine to close, or a mutant to account for in "
                  f"`{EQUIVALENTS.relative_to(ROOT)}` with its kind and reason.", ""]
        for name in sorted(found.unaccounted, key=lambda n: (function_of(n), int(n.rpartition("_")[2]))):
            lines += [f"`{name}` ({function_of(name)}, {mutants[name]['status']})", "", "```diff",
                      mutants[name].get("diff", "(no diff saved)"), "```", ""]
    if found.gone:
        lines += [f"## Accounted as equivalent but no longer surviving ({len(found.gone)}): drop them", "",
                  "A machine kills each now (so its reason was wrong, or a machine grew), or mutmut no longer makes it.", ""]
        lines += [f"- {e.function}: `{e.line}` -> `{e.mutant}`" for e in found.gone] + [""]
    for kind, entries in (("Equivalent", found.equivalent), ("Unreached", found.unreached)):
        if entries:
            lines += [f"## {kind} survivors ({len(entries)})", ""]
            lines += [f"- {e.function}: `{e.line}` -> `{e.mutant}`: {e.reason}" for e in entries] + [""]
    return "\n".join(lines), len(found.unaccounted)


def saved_path(directory: Path, module: str) -> Path:
    """Where ``--all`` keeps a module's results: ``implementations/node/core.py`` -> ``node.core.json``."""
    return directory / (module.removeprefix("implementations/").removesuffix(".py").replace("/", ".") + ".json")


def saved_results(directory: Path, module: str) -> dict | None:
    """The results ``--all`` saved for ``module``, if they are of the module as it is now."""
    path = saved_path(directory, module)
    if not path.is_file():
        return None
    results = json.loads(path.read_text(encoding="utf-8"))
    current = results.get("module") == module and results.get("digest") == digest(module)
    return results if current and not unfinished(results) else None


def summary(directory: Path, equivalents: list[Equivalent]) -> tuple[str, int]:
    """The score over every planned module from the results ``directory`` holds, the modules not
    run (or changed since their run) named; and the survivors unaccounted in all."""
    plan, skipped = load_plan()
    rows, missing = [], []
    total = Score(0, 0, 0, [], [], [], [], Counter())
    for module in plan:
        results = saved_results(directory, module)
        if results is None:
            path = saved_path(directory, module)
            partial = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
            current = partial.get("digest") == digest(module) and unfinished(partial)
            missing.append(f"`{module}` ({unfinished(partial)})" if current else f"`{module}`")
            continue
        found = score(results, equivalents)
        rows.append(found.row(f"`{module}` | {describe(machines_of(results))}"))
        total = Score(total.mutants + found.mutants, total.tested + found.tested, total.killed + found.killed,
                      total.equivalent + found.equivalent, total.unreached + found.unreached,
                      total.unaccounted + found.unaccounted, total.gone + found.gone, total.statuses + found.statuses)
    lines = ["# Mutation score over implementations/", "",
             f"{len(rows)} of {len(plan)} planned modules run (results in `{directory}`).", "",
             "| module | machines " + ROW_HEADER, "|---|---" + ROW_RULE, *rows, total.row("**all run** |"), ""]
    if missing:
        lines += [f"Not run, or changed since their run ({len(missing)}): " + ", ".join(missing) + ".", ""]
    if skipped:
        lines += ["Left out by the plan: " + "; ".join(f"`{m}`: {reason}" for m, reason in skipped.items()) + ".", ""]
    return "\n".join(lines), len(total.unaccounted)


def _machines(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Machines:
    """The machines that test ``args.module``: ``--machine`` (``-k``), or the plan's; a usage
    error if the plan lacks the module or a machine or implementation does not exist."""
    if args.machine and args.leave_out:
        parser.error("--leave-out takes the plan's machines; with --machine, name only the ones to run")
    if args.machine:
        machines = {args.machine: args.selection.split(",") if args.selection else every_implementation(args.machine)}
    else:
        plan, skipped = load_plan()
        if args.module not in plan:
            parser.error(f"{args.module}: not in {PLAN.name} ({skipped.get(args.module, 'no entry')}); name --machine")
        machines = dict(plan[args.module])
        for left_out in args.leave_out:
            if left_out not in machines:
                parser.error(f"--leave-out {left_out}: not one of the plan's machines for {args.module} ({', '.join(machines)})")
            del machines[left_out]
        if not machines:
            parser.error(f"--leave-out leaves no machine to test {args.module}")
    try:
        selected_tests(machines)
    except ValueError as error:
        parser.error(str(error))
    return machines


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)  # the scratch copy is removed and mutmut's process group killed on the way out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__.split("\n\n")[0])
    parser.add_argument("module", nargs="?", help="a file of implementations/, e.g. implementations/lww.py")
    parser.add_argument("--machine", help="the machine whose test kills its mutants (default: the plan's machines; "
                                          "with --rerun-survivors too)")
    parser.add_argument("--leave-out", action="append", default=[], metavar="MACHINE",
                        help="with the plan's machines: leave this one out (repeatable; realnet's minutes a mutant, say)")
    parser.add_argument("-k", dest="selection", help="with --machine: its implementations that use the module, comma-separated")
    parser.add_argument("--workers", type=int, default=1, help="mutants tested at once (default 1: a shared machine)")
    parser.add_argument("--out", help="where to write the Markdown report")
    parser.add_argument("--save", help="where to keep the raw results as JSON")
    parser.add_argument("--from-saved", help="report on results kept by --save instead of running mutmut")
    parser.add_argument("--rerun-survivors", help="run only the survivors of results kept by --save again")
    parser.add_argument("--confirm-kills", metavar="FILE",
                        help="run the caught mutants of results kept by --save again; one not caught again survives")
    parser.add_argument("--only", nargs="+", help="with --rerun-survivors: only the survivors whose names hold one of these "
                                                     "(one ending in $ must end the name)")
    parser.add_argument("--all", dest="all_into", metavar="DIR",
                        help="run every planned module whose results DIR does not hold for its current source, saving there")
    parser.add_argument("--summary", metavar="DIR", help="the score over implementations/ from the results DIR holds")
    parser.add_argument("--list", action="store_true", help="the planned modules as a JSON list (a CI matrix)")
    parser.add_argument("--parts", type=int, help="run the module's functions in this many parts, saving after each "
                                                  "(needs --save, or --all); run again to go on from the first part missing")
    parser.add_argument("--max-parts", type=int, help="with --parts: stop after running this many parts (of each module)")
    parser.add_argument("--part", type=int, help="with --parts and a module: run this part (1-based) alone, now, "
                                                 "whatever the saved results hold (a changed function's part first)")
    args = parser.parse_args(argv)
    if args.parts is not None and (args.parts < 1 or not (args.save or args.all_into)
                                   or args.from_saved or args.rerun_survivors or args.confirm_kills):
        parser.error("--parts N needs N >= 1 and --save FILE (or --all DIR) to keep each part in; "
                     "it does not go with --from-saved, --rerun-survivors or --confirm-kills")
    if args.max_parts is not None and (args.parts is None or args.max_parts < 1):
        parser.error("--max-parts K needs K >= 1 and --parts")
    if args.part is not None and (args.parts is None or args.all_into or not 1 <= args.part <= args.parts):
        parser.error("--part K needs --parts N with 1 <= K <= N, and one module (not --all)")
    if args.list:
        print(json.dumps(list(load_plan()[0])))
        return 0
    equivalents = load_equivalents()
    if args.all_into or args.summary:
        if args.machine or args.from_saved or args.rerun_survivors or (args.summary and args.module):
            parser.error("--all and --summary take no --machine, --from-saved or --rerun-survivors (--summary no module)")
        directory = Path(args.all_into or args.summary)
        if args.summary and not directory.is_dir():
            parser.error(f"--summary {directory}: no such directory (the one --all saved into)")
        failed: list[str] = []
        if args.all_into:
            plan = load_plan()[0]
            if args.module and args.module not in plan:
                parser.error(f"{args.module}: not a module of {PLAN.name}")
            directory.mkdir(parents=True, exist_ok=True)
            for module, machines in plan.items():
                if (not args.module or module == args.module) and saved_results(directory, module) is None:
                    print(f"{module}: mutmut with {describe(machines)}", file=sys.stderr, flush=True)
                    try:
                        if args.parts:
                            results = run_in_parts(module, machines, args.workers, args.parts,
                                                   saved_path(directory, module), args.max_parts)
                        else:
                            results = run(module, machines, args.workers)
                    except MutationRunFailed as error:
                        print(error, file=sys.stderr, flush=True)
                        failed.append(module)
                        continue
                    saved_path(directory, module).write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")
                    print(report(results, equivalents)[0].split("\n\n")[1], file=sys.stderr, flush=True)
        text, unaccounted = summary(directory, equivalents)
        print(text)
        if args.out:
            Path(args.out).write_text(text, encoding="utf-8")
        print(f"{unaccounted} surviving mutants unaccounted over the modules run", file=sys.stderr)
        if failed:
            print(f"mutmut could not test {', '.join(failed)}: see above", file=sys.stderr)
        return 2 if failed else 0
    if not args.module or not (ROOT / args.module).is_file() or not args.module.startswith("implementations/"):
        parser.error(f"{args.module}: expected a file under implementations/ (or --all DIR, --summary DIR)")
    saved_file = args.from_saved or args.rerun_survivors or args.confirm_kills
    if saved_file:
        results = json.loads(Path(saved_file).read_text(encoding="utf-8"))
        if results.get("module") != args.module:
            parser.error(f"{saved_file} holds results of {results.get('module')}, not {args.module}")
    if (args.confirm_kills or args.rerun_survivors) and results.get("digest") != digest(args.module):
        parser.error(f"{args.module} changed since {saved_file} was saved: its mutants are numbered anew, run them all")
    try:
        if args.confirm_kills:
            results = confirm_kills(results, machines_of(results), args.workers)
        elif args.rerun_survivors:
            results = rerun_survivors(results, args.workers, args.only, _machines(parser, args) if args.machine else None)
        elif args.parts:
            results = run_in_parts(args.module, _machines(parser, args), args.workers, args.parts, Path(args.save),
                                   args.max_parts, args.part)
        elif not args.from_saved:
            results = run(args.module, _machines(parser, args), args.workers)
    except MutationRunFailed as error:
        print(error, file=sys.stderr)
        return 2
    if args.save and not args.from_saved:
        Path(args.save).write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")
    problems = stale_entries(equivalents)
    text, unaccounted = report(results, equivalents)
    print(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    for problem in problems:
        print(f"{EQUIVALENTS.name}: {problem}", file=sys.stderr)
    print(f"{unaccounted} surviving mutants unaccounted: each is a gap to close or an equivalent to account for",
          file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    sys.exit(main())
