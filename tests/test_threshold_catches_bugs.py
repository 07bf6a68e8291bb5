"""The threshold machine catches realistic bugs of a signing group, with short traces.

The bugs are the catalogue's (``tests/bugs/threshold.py``: subclasses of the sans-I/O cores).
Each is hunted by the whole machine under the ``ci`` profile with the budget swept for it,
shrinking bounded in examples (``tests.bugs.hunt``: a public bound, no Hypothesis internals);
the volume bug also by a smaller variant without the per-step volume comparison, so it must be
caught where it does harm. Each committed regression trace of a fixed defect fails with its fix
reverted.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

from harness import load_trace, replay
from implementations import threshold
from implementations.limits import U64_MAX
from machines.threshold import ThresholdMachine
from tests.bugs.catalogue import bug as catalogued
from tests.bugs.hunt import FULL, SHRINK_EXAMPLES, assert_caught, hunt, robust
from tests.bugs.threshold import (
    ChecksEventBeforeLocking,
    ChecksReplayBeforeLocking,
    ForgetsDecidedSubmissions,
    OpensEventsOutsideTheLock,
    ReservesBeforeAnswering,
    StoresOutsidersSignatures,
    sans_io_with,
)

REGRESSIONS = Path(__file__).resolve().parent.parent / "regressions" / "traces"


class BugHunt(ThresholdMachine):
    """The threshold machine without the rules that only add noise to the volume bug (funding,
    restarts, tampering, re-delivery, duplication, drops, time, crashes, a second process): a
    smaller search space, so the ``ci`` profile finds and shrinks it in seconds."""

    def fund(self):  # not a rule here
        pass

    def restart(self):
        pass

    def tamper(self):
        pass

    def redeliver(self):
        pass

    def duplicate(self):
        pass

    def drop(self):
        pass

    def advance_clock(self):
        pass

    def crash(self):
        pass

    def interleave(self):
        pass

    come_back_late = come_back_late_2 = come_back_late_3 = None  # (they wait for a crash)
    deliver_at_expiry = None  # (it moves the clock)


class ConcurrentSessionsOnly(BugHunt):
    """The machine without its per-step comparison of each signer's reserved volume, so the
    volume bug must be caught where it does harm: a second concurrent session passes the
    policy (the model's verdict is "daily volume exceeded") and the day's paid volume
    exceeds the limit."""

    def observe(self):
        return [o for o in super().observe() if "volume" not in o.label and "reservations" not in o.label]


#: The volume bug's hunt: at most 20 steps (the trace too), 300 examples.
HARM_STEPS, HARM_EXAMPLES = 20, 300


def test_volume_counted_only_at_finalization_is_caught_where_it_does_harm():
    """The whole machine's search (``test_the_whole_machine_catches``) may catch the bug by its
    per-step comparison of each signer's reserved volume; without it, the harm itself."""
    bounded = settings(settings.get_profile("ci"), max_examples=HARM_EXAMPLES, stateful_step_count=HARM_STEPS - 1,
                       report_multiple_bugs=False, phases=FULL)
    found = hunt(catalogued("threshold-volume-at-finalization"), bounded, shrink_examples=SHRINK_EXAMPLES,
                 machine_cls=ConcurrentSessionsOnly)
    assert found.found, f"threshold-volume-at-finalization was not caught in {found.examples} examples"
    steps = [{"rule": step.rule, "args": step.args} for step in found.trace.steps]
    assert len(steps) <= HARM_STEPS, f"trace of {len(steps)} steps: {steps}"
    assert sum(s["rule"] in ("new_event", "resubmit") for s in steps) >= 2, steps
    error = found.trace.failure
    assert "daily volume exceeded" in error or "above the limit" in error, error


# ----- issue 7 -------------------------------------------------------------------------

#: Each committed regression trace with the implementation variant that reverts its fix.
REVERTED_FIXES = [
    ("threshold-two-signer-processes-one-event", {"signer_class": ChecksEventBeforeLocking}),
    ("threshold-one-envelope-two-signer-processes", {"signer_class": ChecksReplayBeforeLocking}),
    ("threshold-crash-between-reservation-and-answer", {"signer_class": ReservesBeforeAnswering}),
    ("threshold-crash-between-submission-and-its-record", {"coordinator_class": ForgetsDecidedSubmissions}),
    ("threshold-two-coordinator-processes-one-event", {"coordinator_class": OpensEventsOutsideTheLock}),
    ("threshold-outsider-answers-leave-no-trace", {"coordinator_class": StoresOutsidersSignatures}),
]


@pytest.mark.parametrize(("trace", "variant"), REVERTED_FIXES, ids=[t for t, _ in REVERTED_FIXES])
def test_the_committed_trace_fails_with_its_fix_reverted(trace, variant):
    """``pytest regressions/`` shows each trace passes; here each fails without its fix."""
    loaded = load_trace(REGRESSIONS / f"{trace}.json")
    outcome = replay(loaded, ThresholdMachine, sans_io_with(f"reverted-{trace}", **variant))
    assert outcome.status == "failed", outcome
    first_fault = min(i for i, step in enumerate(loaded.steps) if step.rule in ("crash", "interleave", "lie"))
    assert outcome.step >= first_fault, outcome


def test_an_expiry_beyond_sqlite_integers_fails_without_the_decode_bound(monkeypatch):
    """Defect 10 with its fix reverted (``expires_at`` decoded as any u64): the signer
    raises OverflowError halfway through its transaction instead of refusing the bytes."""
    monkeypatch.setattr(threshold, "I64_MAX", U64_MAX)
    loaded = load_trace(REGRESSIONS / "threshold-proposal-expiring-beyond-sqlite-integers.json")
    outcome = replay(loaded, ThresholdMachine, sans_io_with("u64-expiry"))
    assert outcome.status == "failed" and "OverflowError" in outcome.message, outcome


#: Bugs with a robust budget whose search costs more than a push should pay: each is caught on
#: every push by replaying its committed trace (``tests/test_bug_catalogue.py``) and searched
#: for by the nightly runs and the bug-finding benchmark.
COSTLY = {
    # swept 3 December 2026 (after the settle rule): 10 of 10 seeds, 50 to 972 examples, median
    # 235.5 (31 CPU s); the derandomized search of this test took 180 s on 2 cores
    "threshold-ledger-file-checks-a-stale-copy",
}
#: The catalogue's threshold bugs with a budget swept under ten seeds (``tests/bugs/budgets.json``).
ROBUST = [b for b in robust("threshold") if b.name not in COSTLY]


@pytest.mark.parametrize("bug", ROBUST, ids=[b.name for b in ROBUST])
def test_the_whole_machine_catches(bug):
    """The whole threshold machine, with each bug's swept budget: the races of two processes
    on one file at a transaction boundary among them, which contending interleavings reach
    (``machines.threshold_faults``: free draws almost never put two operations on one event).

    The shrunk trace need not hold the rule of the bug's committed trace: the whole machine
    may show a defect by a shorter path (a reservation committed before the answer's
    transaction also changes the file for a tampered envelope the signer then refuses)."""
    assert_caught(bug, involves=frozenset())
