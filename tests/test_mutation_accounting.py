"""The accounting of equivalent mutants (``tests/mutation_equivalent.toml``) cannot rot.

Cheap: no mutmut run. Every entry parses, names a function of a module of
``implementations/`` and a line that function still holds, and a mutant that differs from
that line; ``tests.mutation`` keys survivors the same way, so an entry matches exactly the
mutant it accounts for.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import mutation
from tests.mutation import (
    EQUIVALENTS,
    IN_CHILD_PROCESSES,
    ROOT,
    Equivalent,
    MutationRunFailed,
    changed_lines,
    digest,
    function_of,
    load_equivalents,
    load_plan,
    mangled_functions,
    report,
    saved_path,
    seed_stats,
    selected_tests,
    stale_entries,
    summary,
)


def test_every_equivalent_mutant_names_a_line_of_the_current_source():
    entries = load_equivalents()
    assert entries, f"{EQUIVALENTS.name} accounts for no mutant"
    assert stale_entries(entries) == []


def test_every_reason_says_why():
    """An unreached survivor names the input that would reach it; an equivalent one says why none can."""
    for entry in load_equivalents():
        assert len(entry.reason.split()) >= 4, f"{entry.function}: `{entry.line}` -> `{entry.mutant}`: reason {entry.reason!r}"


def test_a_stale_entry_is_named(tmp_path):
    module = tmp_path / "implementations" / "counter.py"
    module.parent.mkdir()
    module.write_text("class Counter:\n    def bump(self, by):\n        self.n = self.n + by\n", encoding="utf-8")
    counter = "implementations/counter.py"
    good = Equivalent(counter, "Counter.bump", "self.n = self.n + by", "self.n = self.n - by", "equivalent", "why")
    gone = Equivalent(counter, "Counter.bump", "self.n += by", "self.n -= by", "equivalent", "why")
    elsewhere = Equivalent(counter, "Counter.drop", "self.n = self.n + by", "self.n = 0", "equivalent", "why")
    same = Equivalent(counter, "Counter.bump", "self.n = self.n + by", "self.n = self.n + by", "equivalent", "why")
    problems = stale_entries([good, gone, elsewhere, same], root=tmp_path)
    assert len(problems) == 3
    assert "no line 'self.n += by'" in problems[0] and "no function Counter.drop" in problems[1] and "line itself" in problems[2]


def test_a_malformed_file_is_refused_naming_the_entry(tmp_path):
    path = tmp_path / "equivalent.toml"
    no_reason = '[[equivalent]]\nmodule = "implementations/lww.py"\nfunction = "f"\nline = "x"\nmutant = "y"\n'
    path.write_text(no_reason, encoding="utf-8")
    with pytest.raises(ValueError, match="equivalent #1 needs"):
        load_equivalents(path)
    path.write_text(no_reason + 'kind = "harmless"\nreason = "r"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="kind 'harmless' is not one of"):
        load_equivalents(path)


def test_survivors_are_keyed_and_counted_as_the_accounting_says():
    diff = ("--- implementations/lww.py\n+++ implementations/lww.py\n@@ -1,3 +1,3 @@\n"
            " def observe(self, timestamp):\n-    if a > b:\n+    if a >= b:\n         pass")
    assert changed_lines(diff) == ("if a > b:", "if a >= b:")
    deleted = "--- m.py\n+++ m.py\n@@ -1,3 +1,2 @@\n     f(\n-        raw=False,\n     )"
    assert changed_lines(deleted) == ("raw=False,", "")  # a deleted line: its entry's mutant is empty
    assert function_of("implementations.lww.x\u01c1HybridLogicalClock\u01c1observe__mutmut_3") == "HybridLogicalClock.observe"
    assert function_of("implementations.lww.x_check_value__mutmut_12") == "check_value"
    results = {"module": "implementations/lww.py", "machine": "lww", "selection": "hlc", "mutants": {
        "implementations.lww.x\u01c1HybridLogicalClock\u01c1observe__mutmut_3": {"status": "survived", "diff": diff},
        "implementations.lww.x_check_value__mutmut_1": {"status": "survived", "diff": diff},
        "implementations.lww.x_check_value__mutmut_2": {"status": "killed"},
        "implementations.lww.x_check_value__mutmut_3": {"status": "timeout"},
    }}
    lww = "implementations/lww.py"
    accounted = Equivalent(lww, "HybridLogicalClock.observe", "if a > b:", "if a >= b:", "equivalent", "equal")
    killed_now = Equivalent(lww, "check_value", "return value", "return None", "unreached", "wrong")
    text, unaccounted = report(results, [accounted, killed_now])
    assert unaccounted == 1
    row = "| implementations/lww.py | 4 | 4 | 2 | 1 | 0 | 1 | 50.0% | 66.7% |"
    assert row in text, text
    assert "x_check_value__mutmut_1" in text and "no longer surviving (1)" in text and "`return value`" in text


def test_the_plan_names_a_machine_for_every_module_and_every_machine_exists():
    """Every module of implementations/ is planned (or left out with a reason), and every machine
    and implementation the plan names has tests to select: a module added without an entry, or a
    renamed implementation, fails here rather than in a night's run."""
    plan, skipped = load_plan()
    modules = {str(path.relative_to(ROOT)) for path in (ROOT / "implementations").rglob("*.py") if path.name != "__init__.py"}
    assert set(plan) | set(skipped) == modules, f"not planned: {sorted(modules - set(plan) - set(skipped))}; " \
                                                  f"planned but gone: {sorted(set(plan) | set(skipped) - modules)}"
    for module, machines in plan.items():
        tests = selected_tests(machines)
        for machine, names in machines.items():
            for name in names:
                assert f"machines/{machine}.py::test_{machine}_machine[{name}]" in tests, module
    lww = selected_tests({"lww": ["hlc"]})
    assert "regressions/test_regressions.py::test_trace_replays[lww-clock-far-ahead-is-refused[hlc]]" in lww
    assert not any("orset-" in test or "[yjs-map]" in test for test in lww)
    with pytest.raises(ValueError, match="no implementation"):
        selected_tests({"lww": ["no-such-register"]})


def test_a_malformed_plan_is_refused_naming_the_entry(tmp_path):
    path = tmp_path / "plan.toml"
    path.write_text('["implementations/lww.py"]\nlww = "hlc"\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"\[.implementations/lww.py.\] needs machine = \[implementation"):
        load_plan(path)
    path.write_text('["models/lww.py"]\nlww = ["hlc"]\n', encoding="utf-8")
    with pytest.raises(ValueError, match="not a module of implementations/"):
        load_plan(path)


def test_the_summary_scores_what_was_run_and_names_what_was_not(tmp_path):
    lww = "implementations/lww.py"
    diff = ("--- implementations/lww.py\n+++ implementations/lww.py\n@@ -1,3 +1,3 @@\n"
            " def observe(self, timestamp):\n-    if a > b:\n+    if a >= b:\n         pass")
    mutants = {f"implementations.lww.x_check_value__mutmut_{n}": {"status": "killed"} for n in range(1, 10)}
    mutants["implementations.lww.x_check_value__mutmut_10"] = {"status": "survived", "diff": diff}
    results = {"module": lww, "digest": digest(lww), "machines": {"lww": ["hlc"]}, "mutants": mutants}
    saved_path(tmp_path, lww).write_text(json.dumps(results), encoding="utf-8")
    stale = dict(results, module="implementations/rga.py", digest="0" * 64)
    saved_path(tmp_path, "implementations/rga.py").write_text(json.dumps(stale), encoding="utf-8")
    text, unaccounted = summary(tmp_path, [])
    assert unaccounted == 1
    assert "| `implementations/lww.py` | lww [hlc] | 10 | 10 | 9 | 0 | 0 | 1 | 90.0% | 90.0% |" in text, text
    assert "| **all run** | | 10 | 10 | 9 |" in text and "1 of " in text
    not_run = text.split("Not run, or changed since their run")[1]
    assert "`implementations/rga.py`" in not_run and "`implementations/orset.py`" in not_run and "lww.py" not in not_run
    assert saved_path(tmp_path, "implementations/node/core.py").name == "node.core.json"


def test_a_module_run_in_child_processes_has_every_function_declared_called_by_every_test(tmp_path, monkeypatch):
    """mutmut records which tests call which function in its own process only, so the modules
    the realnet machine tests (real node processes) get that record written beforehand, in the
    form mutmut itself reads: every function and method, by every selected test."""
    from mutmut.state import state
    from mutmut.stats import load_stats

    module = "implementations/transport/framing.py"
    names = mangled_functions(module)
    assert "implementations.transport.framing.x_frame" in names
    assert "implementations.transport.framing.x\u01c1FrameReader\u01c1feed" in names
    tests = ["machines/realnet.py::test_realnet_machine[processes]"]
    seed_stats(tmp_path / "mutants", module, tests)
    monkeypatch.chdir(tmp_path)
    assert load_stats()
    for name in names:
        assert state().tests_by_mangled_function_name[name] == set(tests)
    assert set(state().duration_by_test) == set(tests)
    plan = load_plan()[0]
    in_children = [module for module, machines in plan.items() if set(machines) & IN_CHILD_PROCESSES]
    assert "implementations/transport/endpoint.py" in in_children and "implementations/transport/mesh_node.py" in in_children
    assert "implementations/ledger_file.py" not in in_children  # its machine is in process (threshold, shared-ledger)


def test_a_mutmut_run_that_stops_before_the_mutants_is_an_error_not_a_score(monkeypatch):
    """A failed record of calls, a failing clean run or a forced failure that passes make mutmut
    exit non-zero before any mutant is tested: the run fails with its output, nothing is saved
    (it once reported 30 transport mutants "not checked" and a score of 0%)."""

    class Done:
        returncode, stdout, stderr = 1, "failed to collect stats. runner returned 1\n", ""

    monkeypatch.setattr(mutation, "_in_own_group", lambda *args, **kwargs: Done())
    with pytest.raises(MutationRunFailed, match=r"framing\.py.*exit 1(.|\n)*failed to collect stats"):
        mutation.run("implementations/transport/framing.py", {"realnet": ["processes"]}, 1)


def test_a_kill_by_real_processes_counts_only_when_it_happens_twice(monkeypatch):
    """Real processes in real time fail a run by timing alone on a loaded machine: for a module
    the realnet machine tests, every caught mutant runs again, and one that survives then is a
    survivor (with its diff, to account for); in-process machines are not run twice."""
    calls = []

    def fake(module, machines, workers, only=None):
        calls.append(only)
        if only is None:
            return {"module": module, "mutants": {"m.x_f__mutmut_1": {"status": "killed"},
                                                  "m.x_f__mutmut_2": {"status": "killed"},
                                                  "m.x_f__mutmut_3": {"status": "survived", "diff": "-a\n+b"}}}
        return {"module": module, "mutants": {"m.x_f__mutmut_1": {"status": "killed"},
                                              "m.x_f__mutmut_2": {"status": "survived", "diff": "-c\n+d"}}}

    monkeypatch.setattr(mutation, "_mutmut", fake)
    results = mutation.run("implementations/transport/framing.py", {"realnet": ["processes"]}, 1)
    assert calls == [None, ["m.x_f__mutmut_1", "m.x_f__mutmut_2"]]
    assert results["mutants"]["m.x_f__mutmut_1"]["status"] == "killed"
    assert results["mutants"]["m.x_f__mutmut_2"] == {"status": "survived", "diff": "-c\n+d", "first": "killed"}
    assert "2 caught mutants were run again" in results["confirmed"] and "1 counted as survivors" in results["confirmed"]
    calls.clear()
    assert mutation.run("implementations/lww.py", {"lww": ["hlc"]}, 1)["mutants"]["m.x_f__mutmut_2"]["status"] == "killed"
    assert calls == [None]


def test_a_run_in_parts_names_as_gone_only_entries_of_the_functions_it_ran():
    """An entry of a function whose part has not run is not "no longer surviving": its mutants
    were not tested (the report of threshold.py's part 2 asked to drop 110 valid entries)."""
    lww = "implementations/lww.py"
    diff = ("--- implementations/lww.py\n+++ implementations/lww.py\n@@ -1,2 +1,2 @@\n"
            " def check_value(value):\n-    return value\n+    return None")
    results = {"module": lww, "machine": "lww", "selection": "hlc", "parts": {"of": 2, "done": [0]}, "mutants": {
        "implementations.lww.x_check_value__mutmut_1": {"status": "killed"},
        "implementations.lww.x_check_value__mutmut_2": {"status": "survived", "diff": diff},
    }}
    ran_and_killed = Equivalent(lww, "check_value", "if value:", "if not value:", "equivalent", "why")
    matched = Equivalent(lww, "check_value", "return value", "return None", "unreached", "why")
    not_run = Equivalent(lww, "HybridLogicalClock.observe", "if a > b:", "if a >= b:", "equivalent", "why")
    found = mutation.score(results, [ran_and_killed, matched, not_run])
    assert found.gone == [ran_and_killed] and found.unreached == [matched]
    del results["parts"]  # a whole run: every entry its mutants do not match is gone
    assert mutation.score(results, [ran_and_killed, matched, not_run]).gone == [ran_and_killed, not_run]


def test_a_run_in_parts_goes_on_where_it_stopped_and_is_whole_only_when_every_part_ran(monkeypatch, tmp_path):
    """``--parts``: a module's functions are split in source order, each part's results saved
    as it ends; a second invocation runs only the parts missing; a mutant of a function no part
    names (listed by every mutmut run) runs with the last part; until every part ran, the
    results say so and ``--summary`` counts the module as not run."""
    module = "implementations/lww.py"
    split = mutation.function_parts(module, 3)
    assert len(split) == 3 and [f for part in split for f in part] == mutation.mangled_functions(module)
    stray = "implementations.lww.xǁInnerǁf__mutmut_1"
    calls = []

    def fake(module, machines, workers, only=None):
        calls.append(only)
        every = {f"{f}__mutmut_1": {"status": "not checked"} for part in split for f in part} | {stray: {"status": "not checked"}}
        ran = {name: {"status": "killed"} for name in every if any(fnmatch.fnmatch(name, pattern) for pattern in only)}
        return {"module": module, "mutants": every | ran}

    monkeypatch.setattr(mutation, "_mutmut", fake)
    save = tmp_path / "lww.json"
    first = mutation.run_in_parts(module, {"lww": ["hlc"]}, 1, 3, save, max_parts=2)
    assert len(calls) == 2 and first["parts"] == {"of": 3, "done": [0, 1]}
    assert mutation.unfinished(json.loads(save.read_text(encoding="utf-8"))) == "2 of its 3 parts run"
    assert all(found["status"] == "killed" for found in first["mutants"].values())
    assert mutation.saved_results(tmp_path, module) is None
    assert "`implementations/lww.py` (2 of its 3 parts run)" in mutation.summary(tmp_path, [])[0]
    calls.clear()
    whole = mutation.run_in_parts(module, {"lww": ["hlc"]}, 1, 3, save)
    assert len(calls) == 1 and stray in calls[0] and whole["parts"]["done"] == [0, 1, 2]
    assert set(whole["mutants"]) == set(fake(module, {}, 1, [])["mutants"])
    assert all(found["status"] == "killed" for found in whole["mutants"].values())
    assert mutation.saved_results(tmp_path, module) is not None and mutation.unfinished(whole) is None
    calls.clear()
    mutation.run_in_parts(module, {"lww": ["hlc"]}, 1, 3, save)
    assert calls == []


def test_one_part_runs_alone_in_any_order_and_again(monkeypatch, tmp_path):
    """``--part K``: only that part runs, now, whatever the save holds (a changed function's
    part first); its results replace the part's, and the run is whole once every part ran."""
    module = "implementations/lww.py"
    split = mutation.function_parts(module, 3)
    calls = []

    def fake(module, machines, workers, only=None):
        calls.append(only)
        every = {f"{f}__mutmut_1": {"status": "not checked"} for part in split for f in part}
        status = "survived" if len(calls) == 1 else "killed"
        return {"module": module, "mutants": every | {name: {"status": status} for name in every
                                                      if any(fnmatch.fnmatch(name, pattern) for pattern in only)}}

    monkeypatch.setattr(mutation, "_mutmut", fake)
    save = tmp_path / "lww.json"
    last = mutation.run_in_parts(module, {"lww": ["hlc"]}, 1, 3, save, part=3)
    assert len(calls) == 1 and last["parts"]["done"] == [2]
    assert {name.partition("__mutmut_")[0] for name in last["mutants"]} == set(split[2])
    again = mutation.run_in_parts(module, {"lww": ["hlc"]}, 1, 3, save, part=3)
    assert len(calls) == 2 and again["parts"]["done"] == [2]
    assert {found["status"] for found in again["mutants"].values()} == {"killed"}
    whole = mutation.run_in_parts(module, {"lww": ["hlc"]}, 1, 3, save)
    assert len(calls) == 4 and whole["parts"]["done"] == [0, 1, 2] and mutation.unfinished(whole) is None
    with pytest.raises(ValueError, match="no part 4"):
        mutation.run_in_parts(module, {"lww": ["hlc"]}, 1, 3, save, part=4)


def test_an_interrupted_mutation_run_kills_the_whole_process_group(monkeypatch, tmp_path):
    """mutmut forks workers that run pytest (and node processes): interrupted (Ctrl-C, or the
    SIGTERM of ``timeout``, which ``python -m tests.mutation`` turns into an exit), the run
    kills its child's whole process group, not only the child."""
    marker = tmp_path / "grandchild.pid"
    script = f"import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)']); " \
             f"open({str(marker)!r}, 'w').write(str(p.pid)); time.sleep(60)"
    real = subprocess.Popen.communicate

    def interrupted(self, *args, **kwargs):
        for _ in range(500):  # at most 5 s for the grandchild to start
            if marker.exists() and marker.read_text():
                break
            time.sleep(0.01)
        raise KeyboardInterrupt

    monkeypatch.setattr(subprocess.Popen, "communicate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        mutation._in_own_group([sys.executable, "-c", script])
    monkeypatch.setattr(subprocess.Popen, "communicate", real)
    grandchild = int(marker.read_text())
    for _ in range(500):
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        with contextlib.suppress(ChildProcessError):
            os.waitpid(grandchild, os.WNOHANG)
        time.sleep(0.01)
    else:
        os.kill(grandchild, signal.SIGKILL)
        raise AssertionError(f"the grandchild {grandchild} outlived the interrupted run")


def test_rerunning_the_survivors_of_a_run_in_parts_keeps_its_parts(monkeypatch):
    """Saved again, the survivors of a run in parts run again are still that run's parts: so a
    later run goes on from the first part missing and ``--summary`` names the module unfinished."""
    saved = {"module": "implementations/lww.py", "digest": "d", "machines": {"lww": ["hlc"]},
             "parts": {"of": 4, "done": [0]}, "every_mutant": ["x_a__mutmut_1", "x_a__mutmut_2", "x_b__mutmut_1"],
             "mutants": {"x_a__mutmut_1": {"status": "survived"}, "x_a__mutmut_2": {"status": "killed"}}}
    ran = []

    def run(module, machines, workers, only=None):
        ran.append(only)
        return {"module": module, "digest": "d", "machines": machines, "log": "",
                "mutants": {"x_a__mutmut_1": {"status": "killed"}}}

    monkeypatch.setattr(mutation, "run", run)
    results = mutation.rerun_survivors(saved, 1)
    assert ran == [["x_a__mutmut_1"]]
    assert results["parts"] == {"of": 4, "done": [0]} and results["every_mutant"] == saved["every_mutant"]
    assert results["mutants"] == {"x_a__mutmut_1": {"status": "killed"}, "x_a__mutmut_2": {"status": "killed"}}
    assert mutation.unfinished(results) == "1 of its 4 parts run"


def test_rerunning_survivors_uses_the_machines_the_plan_names_now(monkeypatch):
    """A machine added to a module's plan after its run (it reaches code the others do not)
    tests the survivors run again; the results say which machines ran."""
    saved = {"module": "implementations/node/core.py", "digest": "d", "machines": {"mesh_tasklist": ["node"]},
             "mutants": {"x_a__mutmut_1": {"status": "survived"}}}
    ran = []

    def run(module, machines, workers, only=None):
        ran.append(machines)
        return {"module": module, "digest": "d", "machines": machines, "log": "", "mutants": {}}

    monkeypatch.setattr(mutation, "run", run)
    results = mutation.rerun_survivors(saved, 1)
    assert ran == [mutation.load_plan()[0]["implementations/node/core.py"]]
    assert "mesh_threshold" in results["machines"]


@pytest.mark.parametrize("profile", ["ci", "mutation"])
def test_a_networked_machine_searches_with_its_ci_budget_under_ci_and_under_mutation(profile):
    """A mutation run (the ``mutation`` profile: ci's search) gives a networked machine its own
    ``ci`` budget, as ``pytest machines/`` does: it ran the profile's 250 examples of 50 steps
    instead (the endpoint machine's is 30 of 50), and a surviving ``tls.py`` mutant cost minutes."""
    from hypothesis import settings

    from harness.network import ci_settings

    before = settings.get_current_profile_name()
    settings.load_profile(profile)
    try:
        budget = ci_settings(30, 30)
    finally:
        settings.load_profile(before)
    assert (budget.max_examples, budget.stateful_step_count) == (30, 30)
    assert budget.phases == settings.get_profile(profile).phases  # the profile's search, shrinking or not


def test_an_interrupted_mutation_run_leaves_no_store_behind(monkeypatch):
    """The machines' stores (threshold's and policy's SQLite files, realnet's node directories) go
    under a directory of the run's own, removed when the run ends, interrupted or not: a mutation
    run stopped by ``timeout`` once left /dev/shm/mbt-realnet-* behind."""
    seen: list[Path] = []

    def interrupted(args, cwd=None, env=None):
        stores = Path(env["MBT_STORE_DIR"])
        (stores / "mbt-realnet-left").mkdir(parents=True)
        seen.append(stores)
        raise KeyboardInterrupt

    monkeypatch.setattr(mutation, "scratch_copy", lambda into: None)
    monkeypatch.setattr(mutation, "selected_tests", lambda machines: [])
    monkeypatch.setattr(mutation, "_in_own_group", interrupted)
    with pytest.raises(KeyboardInterrupt):
        mutation._mutmut("implementations/lww.py", {"lww": ["hlc"]}, workers=1)
    assert len(seen) == 1 and not seen[0].exists(), seen


def test_leave_out_takes_a_machine_out_of_the_plan_s_and_names_a_mistake():
    """``--leave-out realnet``: the plan's other machines test the module; leaving out a machine the
    plan does not name, every machine, or combining it with ``--machine`` is a usage error."""
    parser = argparse.ArgumentParser()

    def machines(*argv):
        args = argparse.Namespace(module="implementations/transport/endpoint.py", machine=None, selection=None,
                                  leave_out=[])
        for flag, value in zip(argv[::2], argv[1::2], strict=True):
            if flag == "--leave-out":
                args.leave_out.append(value)
            else:
                args.machine = value
        return mutation._machines(parser, args)

    assert machines("--leave-out", "realnet") == {"endpoint": ["quic-loopback"], "driver": ["quic-loopback"]}
    for argv in (("--leave-out", "lww"), ("--leave-out", "realnet", "--leave-out", "endpoint", "--leave-out", "driver"),
                 ("--leave-out", "realnet", "--machine", "endpoint")):
        with pytest.raises(SystemExit):
            machines(*argv)
