"""The seed's volume scenarios (seeds/003, 1.4 and 2.3), as committed traces with the
decisions the SPEC demands: the machine checks the enforcer against the model on each
step; this test checks the model's decisions against the seed's expectations."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import load_trace, replay
from harness.registry import implementation
from machines.policy import PolicyMachine

TRACES = Path(__file__).resolve().parent.parent / "regressions" / "traces"
OK = (True, "approved")


def full(current: int, limit: int) -> tuple[bool, str]:
    return False, f"daily volume exceeded: current={current}, limit={limit}"


EXPECTED = {
    "policy-seed-daily-limit-then-reset": [OK] * 5 + [full(100_000_000_000, 100_000_000_000), OK],
    "policy-seed-concurrent-reservations": [
        OK,
        full(20_000_000_000, 30_000_000_000),  # a second concurrent session cannot pass
        OK,
        OK,  # after a's expiry: 10 + 20 reaches 30 exactly
        (False, "request a already submitted"),
    ],
    "policy-seed-restrictive-policy": [
        (False, "destination not allowed: kaspa:qelsewhere"),
        (False, "amount 999999 below minimum 1000000"),
        (False, "amount 1000000001 exceeds maximum 1000000000"),
        (False, "reason metadata required"),
        (False, "reason metadata required"),
        *[OK] * 11,
        full(10_000_000_000, 10_000_000_000),
        full(10_000_000_000, 10_000_000_000),
    ],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_seed_scenario(name):
    trace = load_trace(TRACES / f"{name}.json")
    assert str(replay(trace)) == "passed"
    machine = PolicyMachine(implementation("policy", "sqlite"))
    decisions = []
    try:
        for step in trace.steps:
            machine.do(step.rule, **step.args)
            if step.rule == "submit":
                decisions.append(machine.last_decision)
    finally:
        machine.teardown()
    assert decisions == EXPECTED[name]
