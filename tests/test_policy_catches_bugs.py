"""The policy machine catches realistic bugs of a volume enforcer, with short traces.

The bugs are the catalogue's (``tests/bugs/policy.py``), each searched for with the budget
measured for it under ten seeds (``python -m tests.bugs.sweep``).
"""

from __future__ import annotations

import pytest
from hypothesis import settings

from harness import run_machine
from implementations.policy import PolicyEnforcer
from machines.adapters.policy_sqlite import implementation_with
from machines.policy import PolicyMachine
from tests.bugs.hunt import assert_caught, robust

BUGS = robust("policy")


@pytest.mark.parametrize("bug", BUGS, ids=[b.name for b in BUGS])
def test_policy_machine_catches(bug):
    assert_caught(bug, max_steps=8)


def test_the_correct_enforcer_passes_the_same_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("MBT_TRACE_DIR", str(tmp_path))
    impl = implementation_with(PolicyEnforcer, "sqlite-again")
    pinned = settings(settings.get_profile("ci"), max_examples=60, stateful_step_count=40)
    run_machine(PolicyMachine, impl, hypothesis_settings=pinned)
    assert not list(tmp_path.glob("*.json"))
