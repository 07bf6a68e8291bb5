"""Volume-policy bugs: the daily limit, its day, where time comes from, what survives a restart."""

from __future__ import annotations

from implementations.policy import PolicyEnforcer
from machines.adapters.policy_sqlite import implementation_with
from models.clock import NS_PER_DAY, NS_PER_SECOND, ManualClock, OffsetClock
from tests.bugs.catalogue import Bug


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


class ReleasesFromToday(PolicyEnforcer):
    """Gives a released reservation back to today's volume, not to the day it was approved in."""

    def release(self, request_id, why):
        with self.store.transaction(join=True):  # as the real release: inside a signer's transaction too
            row = self.store.execute("SELECT day FROM reservations WHERE request_id = ?", (request_id,)).fetchone()
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


class MinimumIsExclusive(PolicyEnforcer):
    """Refuses an amount equal to the policy's minimum (``<=`` for ``<``)."""

    def _refusal(self, destination, amount, reason, current):
        if amount == self.policy.min_amount and not (self.policy.allowed_destinations
                                                     and destination not in self.policy.allowed_destinations):
            return f"amount {amount} below minimum {self.policy.min_amount}"
        return super()._refusal(destination, amount, reason, current)


class LocalTimeDay(PolicyEnforcer):
    """Buckets requests by the operator's local day (UTC+1) instead of the UTC day."""

    def submit(self, request_id, destination, amount, reason=None, sender_timestamp_ns=None):
        utc = self.clock
        self.clock = OffsetClock(utc, 3600 * NS_PER_SECOND)
        try:
            return super().submit(request_id, destination, amount, reason, sender_timestamp_ns)
        finally:
            self.clock = utc

    def _today(self):
        return (self.clock.now() + 3600 * NS_PER_SECOND) // NS_PER_DAY


class ReservedAsSqliteInteger(PolicyEnforcer):
    """Keeps the day's volume as an SQLite INTEGER (a signed 64-bit number): a volume past
    2**63 - 1 sompi raises OverflowError halfway through a submission instead of deciding."""

    def _set_reserved(self, day, total):
        self.store.execute(
            "INSERT INTO daily_volume (day, reserved) VALUES (?, ?) ON CONFLICT(day) DO UPDATE SET reserved = excluded.reserved",
            (day, total),
        )


class ReleasesFinalized(PolicyEnforcer):
    """Lets an expiry release a request that was already finalized: its volume is given back
    although the payment went out."""

    def release(self, request_id, why):
        row = self.store.execute("SELECT day, amount, state FROM reservations WHERE request_id = ?", (request_id,)).fetchone()
        if row is not None and row[2] == "finalized":
            with self.store.transaction():
                self._set_reserved(row[0], self._reserved(row[0]) - int(row[1]))
                self.store.execute("UPDATE reservations SET state = ? WHERE request_id = ?", (why, request_id))
            return
        super().release(request_id, why)


def _bug(cls, name, description, kind, involves=()):
    def plant():
        import contextlib

        return contextlib.nullcontext(implementation_with(cls, f"bug-{name}"))

    return Bug(f"policy-{name}", "policy", description, kind, plant, correct="sqlite", involves=frozenset(involves))


BUGS = [
    _bug(InclusiveLimitRefused, "inclusive-limit-refused", "reaching the daily limit exactly is refused (>= for >)",
         "off-by-one", {"submit"}),
    _bug(RollingWindow, "rolling-window", "the volume of the last 24 hours is counted, not the UTC calendar day",
         "day-window", {"submit"}),
    _bug(SenderClock, "sender-clock", "a request is bucketed by the sender's timestamp, not the local clock",
         "timestamp-source", {"submit"}),
    _bug(ForgetsVolumeOnRestart, "forgets-volume-on-restart", "the day's volume is kept in memory: a restart zeroes it",
         "persistence", {"restart|interleave"}),  # a second process on the store starts from zero too
    _bug(ReleasesFromToday, "releases-from-today", "a released reservation goes back to today, not to its own day",
         "day-window", {"release"}),
    _bug(CountsAtFinalization, "counts-at-finalization", "volume is counted only at finalization (upstream), so "
         "concurrent approvals pass the limit", "session-race", {"submit"}),
    _bug(ReadsVolumeBeforeLocking, "reads-volume-before-locking", "today's volume is read before the write lock: "
         "two processes on one file both approve past the limit", "session-race", {"interleave"}),
    _bug(ReservesInTwoCommits, "reserves-in-two-commits", "the request row and its volume commit separately: a crash "
         "between them loses the volume", "persistence", {"crash|restart|interleave|in_signer_transaction"}),
    # or a second process sees the row alone, or its second transaction cannot nest in a signer's
    _bug(MinimumIsExclusive, "minimum-is-exclusive", "an amount equal to the minimum is refused", "off-by-one",
         {"submit"}),
    _bug(LocalTimeDay, "local-time-day", "requests are bucketed by the operator's local day (UTC+1)", "day-window",
         {"submit"}),
    _bug(ReservedAsSqliteInteger, "reserved-as-sqlite-integer", "the day's volume is an SQLite INTEGER: past 2**63 - 1 "
         "a submission raises OverflowError", "arithmetic", {"submit"}),
    _bug(ReleasesFinalized, "releases-finalized", "an expiry can release a finalized request and give its volume back",
         "expiry", {"finalize", "release"}),
]
