"""``python -m harness nightly`` end to end (issue 11's acceptance, on a short budget).

With a catalogued bug planted for the whole run, the command leaves exactly one trace of it in
``<out>/traces``, which replays as that failure and is reported as known (the bug's catalogue
trace fails the same way); on a clean build it leaves none, and no machine run fails. The
machine is ``lww``, two of its implementations (the bug in one; the other, Yjs or Automerge,
a Node.js process) with the least budget the command gives a run; the bug is one every seed
of the sweep finds in a few examples, so the fresh randomness of ``nightly`` cannot make
this test miss it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUG = "lww-smaller-writer-wins"


def nightly(out: Path, runs: tuple[str, ...], **env: str) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("MBT_", "PYTEST_", "HYPOTHESIS_")) and key != "CI"}
    environment.update(PYTHONPATH=str(ROOT), **env)
    chosen = [argument for run in runs for argument in ("--machine", run)]
    return subprocess.run([sys.executable, "-m", "harness", "nightly", *chosen, "--budget", "20",
                           "--workers", "1", "--out", str(out)], cwd=out.parent, env=environment,
                          capture_output=True, text=True, timeout=600)


def failing_runs(out: Path) -> list[str]:
    cases = ElementTree.parse(out / "junit.xml").getroot().iter("testcase")
    return [case.get("name") for case in cases if case.find("failure") is not None or case.find("error") is not None]


def test_a_planted_bug_leaves_exactly_one_replayable_trace_reported_as_known(tmp_path):
    from harness.registry import load_adapters
    from harness.runner import replay
    from harness.trace import load_trace
    from tests.bugs.catalogue import bug

    out = tmp_path / "planted"
    run = nightly(out, ("lww[hlc]", "lww[automerge-map]"), MBT_PLANT_BUG=BUG)
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    traces = list((out / "traces").glob("*.json"))
    assert len(traces) == 1, (traces, run.stdout[-3000:])
    assert failing_runs(out) == ["test_lww_machine[hlc]"], failing_runs(out)
    report = (out / "report.md").read_text()
    assert "## Failures: 0 new, 1 known" in report and f"catalogued bug `{BUG}` planted" in report, report[:2000]
    assert "## Rule coverage" in report and "**lww/hlc**" in report
    load_adapters()
    trace = load_trace(traces[0])
    with bug(BUG).plant() as buggy:
        assert replay(trace, impl=buggy).status == "failed"
    assert replay(trace).status == "passed"  # the correct implementation passes it: the trace is the bug's


def test_a_clean_build_leaves_no_trace_and_no_failing_run(tmp_path):
    out = tmp_path / "clean"
    run = nightly(out, ("lww[hlc]", "lww[yjs-map]"))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert list((out / "traces").glob("*.json")) == [] and list((out / "raw").glob("*.json")) == []
    assert failing_runs(out) == [], run.stdout[-3000:]
    report = (out / "report.md").read_text()
    assert "## Failures: 0 new, 0 known" in report and "pytest exit status 0" in report, report[:2000]


def test_machine_runs_are_chosen_by_machine_or_by_implementation_and_bad_names_are_refused():
    from harness.nightly import chosen_runs, wanted

    items = ["machines/lww.py::test_lww_machine[hlc]", "machines/lww.py::test_lww_machine[yjs-map]",
             "machines/orset.py::test_orset_machine[delta-state]"]
    assert [i for i in items if wanted(i, chosen_runs(["lww[yjs-map]"]))] == items[1:2]
    assert [i for i in items if wanted(i, chosen_runs(["lww", "lww[hlc]"]))] == items[:2]
    assert [i for i in items if wanted(i, chosen_runs(["lww[hlc]", "orset"]))] == [items[0], items[2]]
    assert [i for i in items if wanted(i, chosen_runs([]))] == items
    for bad, named in (("lww[hlc", "expected a machine"), ("no_such_machine", "no machines/no_such_machine.py"),
                       ("../lww", "expected a machine")):
        with pytest.raises(ValueError) as refused:
            chosen_runs([bad])
        assert named in str(refused.value) and repr(bad) in str(refused.value), refused.value


def test_a_machine_that_does_not_exist_is_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "never"
    run = nightly(out, ("no_such_machine",))
    assert run.returncode == 2 and "there is no machines/no_such_machine.py" in run.stderr, run.stderr
    assert not out.exists()


def test_a_chosen_implementation_that_no_machine_has_is_refused_by_name(tmp_path):
    out = tmp_path / "none"
    out.mkdir()
    run = nightly(out, ("lww[no-such-implementation]",))
    assert run.returncode == 2 and "no machine run of lww[no-such-implementation] collected" in run.stderr, run.stderr
