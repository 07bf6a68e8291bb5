"""The policy machine catches realistic bugs of a volume enforcer, with short traces.

Each bug is a subclass of the real ``PolicyEnforcer`` wrapped as its own implementation
(never registered through ``machines/adapters``), run under the ``ci`` profile.
"""

from __future__ import annotations

import pytest
from hypothesis import Phase, settings

from harness import expect_caught, run_machine
from implementations.policy import PolicyEnforcer
from machines.adapters.policy_sqlite import implementation_with
from machines.policy import PolicyMachine
from models.clock import NS_PER_DAY, ManualClock


class InclusiveLimitRefused(PolicyEnforcer):
    """Checks the limit with ``>=``: reaching the limit exactly is refused."""

    def _refusal(self, destination, amount, reason, current):
        refusal = super()._refusal(destination, amount, reason, current)
        if refusal is None and current + amount >= self.policy.max_daily_volume:
            return f"daily volume exceeded: current={current}, limit={self.policy.max_daily_volume}"
        return refusal


class RollingWindow(PolicyEnforcer):
    """Counts the volume of the last 24 hours instead of the UTC calendar day."""

    def _reserved(self, day):
        since = self.clock.now() - NS_PER_DAY
        rows = self.store.execute(
            "SELECT amount FROM reservations WHERE state IN ('approved', 'finalized') AND submitted_at > ?", (since,)
        )
        return sum(int(amount) for (amount,) in rows)


class SenderClock(PolicyEnforcer):
    """Buckets a request by the sender's timestamp instead of the local clock."""

    def submit(self, request_id, destination, amount, reason=None, sender_timestamp_ns=None):
        local = self.clock
        if sender_timestamp_ns is not None:
            self.clock = ManualClock(sender_timestamp_ns)
        try:
            return super().submit(request_id, destination, amount, reason, sender_timestamp_ns)
        finally:
            self.clock = local


class ForgetsVolumeOnRestart(PolicyEnforcer):
    """Keeps the day's volume in memory: a restart starts the day from zero."""

    def __init__(self, policy, clock, store=":memory:"):
        super().__init__(policy, clock, store)
        with self.store.transaction():
            self.store.execute("DELETE FROM daily_volume")


#: Short runs, one bug reported, no explain phase: the machine's own report explains.
SEARCH = settings(
    settings.get_profile("ci"),
    max_examples=300,
    stateful_step_count=20,
    report_multiple_bugs=False,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
)

class ReleasesFromToday(PolicyEnforcer):
    """Gives a released reservation back to today's volume, not to the day it was approved in."""

    def release(self, request_id, why):
        row = self.store.execute("SELECT day FROM reservations WHERE request_id = ?", (request_id,)).fetchone()
        with self.store.transaction():
            if row is not None:
                self.store.execute("UPDATE reservations SET day = ? WHERE request_id = ?", (self._today(), request_id))
            super().release(request_id, why)


class CountsAtFinalization(PolicyEnforcer):
    """Upstream's behaviour: volume counted only when a request is finalized, so two
    concurrent sessions can both pass the check."""

    def submit(self, request_id, destination, amount, reason=None, sender_timestamp_ns=None):
        decision = super().submit(request_id, destination, amount, reason, sender_timestamp_ns)
        if decision.approved:
            with self.store.transaction():
                self._set_reserved(self._today(), self._reserved(self._today()) - amount)
        return decision

    def finalize(self, request_id):
        row = self.store.execute("SELECT day, amount, state FROM reservations WHERE request_id = ?", (request_id,)).fetchone()
        with self.store.transaction():
            super().finalize(request_id)
            if row is not None and row[2] == "approved":
                self._set_reserved(row[0], self._reserved(row[0]) + int(row[1]))


class ReadsVolumeBeforeLocking(PolicyEnforcer):
    """Reads today's volume before taking the write lock (a check outside the transaction
    that acts on it): two processes sharing the file both approve past the limit."""

    def submit(self, request_id, destination, amount, reason=None, sender_timestamp_ns=None):
        stale = self._reserved(self._today())
        self._reserved = lambda day: stale
        try:
            return super().submit(request_id, destination, amount, reason, sender_timestamp_ns)
        finally:
            del self._reserved


class ReservesInTwoCommits(PolicyEnforcer):
    """Records the approved request in one transaction and adds its amount to the day's
    volume in a second one: a crash between the two loses the reservation's volume."""

    def _set_reserved(self, day, total):
        self.store.execute("SELECT 1")  # the commit of the request row comes first
        pending = getattr(self, "_pending", None)
        if pending is None:
            self._pending = (day, total)
        else:
            super()._set_reserved(day, total)

    def submit(self, request_id, destination, amount, reason=None, sender_timestamp_ns=None):
        self._pending = None
        decision = super().submit(request_id, destination, amount, reason, sender_timestamp_ns)
        pending, self._pending = self._pending, None
        if pending is not None:
            with self.store.transaction():
                super()._set_reserved(*pending)
        return decision


BUGS = [InclusiveLimitRefused, RollingWindow, SenderClock, ForgetsVolumeOnRestart, ReleasesFromToday, CountsAtFinalization,
        ReadsVolumeBeforeLocking, ReservesInTwoCommits]


@pytest.mark.parametrize("bug", BUGS, ids=[b.__name__ for b in BUGS])
def test_policy_machine_catches(bug, tmp_path, monkeypatch):
    impl = implementation_with(bug, f"buggy-{bug.__name__}")
    steps = expect_caught(PolicyMachine, impl, hypothesis_settings=SEARCH, trace_dir=tmp_path).trace.steps
    assert len(steps) <= 8, f"{bug.__name__}: the shrunk trace has {len(steps)} steps"


def test_the_correct_enforcer_passes_the_same_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("MBT_TRACE_DIR", str(tmp_path))
    impl = implementation_with(PolicyEnforcer, "sqlite-again")
    pinned = settings(settings.get_profile("ci"), max_examples=60, stateful_step_count=40)
    run_machine(PolicyMachine, impl, hypothesis_settings=pinned)
    assert not list(tmp_path.glob("*.json"))
