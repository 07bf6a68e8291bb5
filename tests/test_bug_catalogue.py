"""The bug catalogue (``tests/bugs``) is what it says: at least 40 bugs across every machine,
each of a known class, each with a committed shortest trace that fails with the bug planted
and passes without it, and a budget measured by ``python -m tests.bugs.sweep``."""

from __future__ import annotations

import pytest

from harness import load_trace, replay
from harness.registry import implementation
from harness.replay import reproduces
from tests.bugs.catalogue import CLASSES, budgets, catalogue

BUGS = sorted(catalogue().values(), key=lambda b: b.name)
WITH_TRACES = [b for b in BUGS if b.trace_path.exists()]


def test_the_catalogue_covers_every_machine_and_class():
    assert len(BUGS) >= 40
    machines = {b.machine for b in BUGS}
    for machine in ("orset", "lww", "rga", "tasklist", "policy", "pskt", "threshold", "mesh_tasklist", "mesh_presence",
                    "mesh_adversary", "realnet"):
        assert machine in machines, f"no bug of {machine}"
    assert {b.kind for b in BUGS} == set(CLASSES), set(CLASSES) - {b.kind for b in BUGS}
    for b in BUGS:
        assert b.description and b.name.startswith(b.machine.split("_")[0]), b
        implementation(b.machine, b.correct)  # the implementation it is planted into exists


def test_every_bug_has_a_committed_trace_and_a_measured_budget():
    missing_traces = [b.name for b in BUGS if not b.trace_path.exists()]
    assert not missing_traces, f"no shortest trace committed (python -m tests.bugs.sweep BUG --write): {missing_traces}"
    measured = budgets()
    assert not [b.name for b in BUGS if b.name not in measured], "bugs never swept"


@pytest.mark.parametrize("bug", WITH_TRACES, ids=[b.name for b in WITH_TRACES])
def test_the_shortest_trace_fails_with_the_bug_and_passes_without(bug):
    trace = load_trace(bug.trace_path)
    assert (trace.machine, trace.implementation) == (bug.machine, bug.correct), trace
    machine = bug.machine_class()
    assert str(replay(trace, machine, bug.correct_implementation())) == "passed"
    with bug.plant() as buggy:
        outcome = replay(trace, machine, buggy)
        again = replay(trace, machine, buggy)
    assert outcome.status == "failed", outcome
    assert reproduces(outcome, again, machine), f"the failing replay is not deterministic: {outcome} / {again}"
    assert outcome.step == len(trace.steps) - 1, f"the trace goes on after its failure at {outcome}"


def test_a_hunt_counts_the_cpu_its_child_processes_spend():
    """The realnet bugs' machine works in node processes: a hunt's CPU clock counts them, the
    live ones too (``time.process_time`` saw 0.2 s to a realnet bug's first failure), and a child
    reaped counts once: the nightly bug benchmark once reported -0.30 CPU s to a handshake bug's
    first failure, its start read just after the endpoint bugs' processes were reaped, while
    their CPU was still in the clock's last read of the live children."""
    import select
    import subprocess
    import sys
    import time

    from tests.bugs import hunt

    before, own = hunt.tree_cpu_seconds(), time.process_time()
    child = subprocess.Popen([sys.executable, "-c", "import time\nend = time.process_time() + 0.6\n"
                              "while time.process_time() < end: pass\nprint('burnt', flush=True)\ninput()"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert select.select([child.stdout], [], [], 60)[0], "the child never burnt its 0.6 CPU s"
        assert child.stdout.readline() == "burnt\n"  # it burnt them and waits, alive
        time.sleep(hunt.CHILDREN_READ_EVERY)  # so the next read of the live children is a fresh one
        alive = hunt.tree_cpu_seconds()
        assert alive - before >= 0.5 and time.process_time() - own < 0.4  # counted while it lives; not ours
    finally:
        child.communicate("\n", timeout=10)
    reaped = hunt.tree_cpu_seconds()  # within CHILDREN_READ_EVERY of the read while it was alive
    time.sleep(hunt.CHILDREN_READ_EVERY)
    later = hunt.tree_cpu_seconds()
    # Counted twice, the child's 0.6 s would show as a jump at the reap and a fall a read later. Other
    # children of this process (a pytest worker's pooled node processes) add only what they spend meanwhile.
    assert alive <= reaped < alive + 0.3 and reaped <= later, (alive, reaped, later)


def test_the_sweep_writes_no_trace_that_fails_only_once(monkeypatch):
    """``sweep --write`` commits a trace only if it fails the same way in two replays with the bug
    planted (as this file's replay-twice test demands of it afterwards) and passes without it."""
    from harness.failure import Failure
    from harness.replay import Outcome
    from tests.bugs import sweep

    the_bug = BUGS[0]
    trace = load_trace(the_bug.trace_path)
    failed = Outcome("failed", 3, "boom", Failure("check", "AssertionError", "boom"))
    for outcomes, why in (([failed, failed, Outcome("passed")], ""),
                          ([failed, Outcome("passed"), Outcome("passed")], "replayed again passed"),
                          ([failed, Outcome("failed", 4, "other"), Outcome("passed")], "replayed again failed at step 4"),
                          ([Outcome("passed"), Outcome("passed"), Outcome("passed")], "with the bug planted the trace passed"),
                          ([failed, failed, failed], "without the bug the trace failed")):
        answers = iter(outcomes)
        monkeypatch.setattr(sweep, "replay", lambda *_args, answers=answers: next(answers))
        note = sweep.verified(the_bug, trace)
        assert (why in note) if why else note == "", (outcomes, note)


def test_the_sweep_writes_no_shorter_trace_that_fails_another_check(monkeypatch):
    """A shorter trace replaces a bug's committed one only if it fails the committed trace's check
    in the same words (numbers aside): one that fails elsewhere shows another thing the patch
    breaks, not the bug (``--write-traces`` once wrote three such)."""
    from harness.failure import Failure
    from harness.replay import Outcome
    from tests.bugs import sweep

    the_bug = BUGS[0]
    trace = load_trace(the_bug.trace_path)

    def failed(check, line):
        return Outcome("failed", 3, line, Failure(check, "AssertionError", line))

    committed = failed("M.check", "node 1 holds 2, not 3")
    for new, why in ((failed("M.check", "node 4 holds 7, not 9"), ""),
                     (failed("M.step_deliver", "node 1 holds 2, not 3"), "another check than the committed trace's"),
                     (failed("M.check", "a hostile message was taken"), "another check than the committed trace's")):
        answers = iter([new, new, committed, Outcome("passed")])
        monkeypatch.setattr(sweep, "replay", lambda *_args, answers=answers: next(answers))
        note = sweep.verified(the_bug, trace, replacing=trace)
        assert (why in note) if why else note == "", (new, note)
