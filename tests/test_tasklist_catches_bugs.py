"""The task-list machine catches realistic task-list bugs, each with a short trace.

The bugs are the catalogue's (``tests/bugs/tasklist.py``), each searched for with the budget
measured for it under ten seeds (``python -m tests.bugs.sweep``); a bug random runs do not
find robustly is caught by its committed trace (``tests/test_bug_catalogue.py``), and the
seed's committed scenarios are shown to fail against the bugs they guard against.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import load_trace, replay
from machines.tasklist import TaskListMachine
from tests.bugs.catalogue import bug as catalogued
from tests.bugs.hunt import assert_caught, robust

BUGS = robust("tasklist")
REGRESSIONS = Path(__file__).resolve().parent.parent / "regressions" / "traces"


@pytest.mark.parametrize("bug", BUGS, ids=[b.name for b in BUGS])
def test_the_tasklist_machine_catches(bug):
    assert_caught(bug)


#: Committed scenarios (``regressions/traces``) and the bug each must expose when replayed.
SCENARIOS = [
    ("tasklist-fields-share-one-clock", "tasklist-one-clock-per-field"),
    ("tasklist-claims-are-not-locks", "tasklist-later-claim-wins"),
    ("tasklist-partition-conflicting-claims", "tasklist-later-claim-wins"),
    ("tasklist-forged-attestations", "tasklist-keeps-unverified-states"),
    ("tasklist-forged-attestations", "tasklist-agent-id-unchecked"),
    ("tasklist-forged-attestations", "tasklist-tampered-copy-shadows-genuine"),
    ("tasklist-context-erases-signed-state", "tasklist-merge-replaces-checkboxes"),
    ("tasklist-context-far-ahead-hides-later-claims", "tasklist-believes-every-message"),
    ("tasklist-counter-bomb-is-refused", "tasklist-believes-every-message"),
]


@pytest.mark.parametrize(("scenario", "bug"), SCENARIOS, ids=[f"{s}-{b}" for s, b in SCENARIOS])
def test_the_committed_scenarios_fail_against_the_bugs(scenario, bug):
    trace = load_trace(REGRESSIONS / f"{scenario}.json")
    with catalogued(bug).plant() as buggy:
        outcome = replay(trace, TaskListMachine, buggy)
    assert outcome.status == "failed", outcome
