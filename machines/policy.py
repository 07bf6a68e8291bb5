"""The daily-volume spending policy: ``models.policy`` against every policy enforcer.

One signer, one manual clock, one database file. The machine loads a policy (bounds drawn
to include ``min == max``, allowlists, a required reason, limits of any size up to
2**64 - 1), submits requests whose amounts sit on every bound (min - 1, min, max, max + 1,
exactly the volume left today, one sompi more, 2**64 - 1), with and without reason, to
allowed and other destinations, with a sender timestamp that must not matter; moves the
clock (to the last nanosecond before UTC midnight, to midnight exactly, by whole days, by
random amounts); expires, rejects and finalizes requests; and restarts the enforcer from
its database, sometimes with a new (or an invalid) policy. Every decision and message, every
refusal and today's volume must equal the model's.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

from harness import TracedMachine, guard, machine_test
from harness.machine import Observation
from models import policy as model
from models.clock import NS_PER_DAY, NS_PER_SECOND, ManualClock, utc_day

U64_MAX = model.U64_MAX
DESTINATIONS = ("kaspa:qpay1", "kaspa:qpay2", "kaspa:qpay3")
OTHER_DESTINATION = "kaspa:qelsewhere"
DAY_2026_01_01 = 20_454
REASONS = (None, "", "bridge payout")
RAM_DIRECTORY = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None

AMOUNT_KINDS = ("min-1", "min", "max", "max+1", "remaining", "remaining+1", "u64max", "in-range", "zero", "small")
ADVANCE_KINDS = ("last-ns-of-day", "midnight", "one-ns", "day", "seconds", "random")


@st.composite
def policies(draw, valid: bool = True) -> dict[str, Any]:
    """A policy as plain fields; bounds are drawn to hit their own edges."""
    low = draw(st.one_of(st.just(0), st.just(1), st.integers(1, 10**8), st.integers(0, U64_MAX)))
    if valid:
        high = draw(st.one_of(st.just(low), st.integers(low, low + 10**11).map(lambda x: min(x, U64_MAX)), st.just(U64_MAX)))
    else:
        low = max(low, 1)
        high = draw(st.integers(0, low - 1))
    limit = draw(
        st.one_of(
            st.integers(1, 5).map(lambda k: min(k * high, U64_MAX)),  # a few requests at the maximum fill the day
            st.integers(0, 10**12),
            st.just(U64_MAX),
            st.integers(0, U64_MAX),
        )
    )
    allowed = draw(st.one_of(st.just(()), st.lists(st.sampled_from(DESTINATIONS), min_size=1, unique=True)))
    return {
        "allowed_destinations": sorted(allowed),
        "min_amount": low,
        "max_amount": high,
        "max_daily_volume": limit,
        "require_reason": draw(st.booleans()),
    }


POLICY_FIELDS = frozenset({"allowed_destinations", "min_amount", "max_amount", "max_daily_volume", "require_reason"})


def policy_fits(policy: Any) -> bool:
    """A trace's policy has exactly the fields a policy has (their values may be invalid)."""
    return isinstance(policy, dict) and set(policy) == POLICY_FIELDS and isinstance(policy["allowed_destinations"], list)


def load(fields: dict[str, Any]) -> model.GroupPolicy:
    return model.GroupPolicy(**{**fields, "allowed_destinations": frozenset(fields["allowed_destinations"])})


class PolicyMachine(TracedMachine):
    name = "policy"

    def __init__(self, implementation, stats=None):
        super().__init__(implementation, stats)
        # On a RAM file system where there is one: SQLite syncs every commit, and on a busy
        # disk that costs tens of milliseconds a step; the machine cannot observe a power cut.
        self.directory = Path(tempfile.mkdtemp(prefix="mbt-policy-", dir=RAM_DIRECTORY))
        self.path = str(self.directory / "policy.sqlite")
        self.clock: ManualClock | None = None
        self.opener = None
        self.enforcer = None
        self.state: model.PolicyState | None = None
        self.policy_fields: dict[str, Any] = {}
        self.next_id = 0
        self.last_decision: tuple[bool, str] | None = None
        self.last_answer: tuple[Any, Any] = (None, None)  # (the model's, the enforcer's), for the report

    def teardown(self) -> None:
        if self.enforcer is not None:
            self.enforcer.close()
            self.enforcer = None
        shutil.rmtree(self.directory, ignore_errors=True)

    # -- start -------------------------------------------------------------------------

    @initialize(
        policy=policies(),
        offset=st.one_of(st.sampled_from([0, 1, NS_PER_DAY - 1, NS_PER_DAY - 2]), st.integers(0, NS_PER_DAY - 1)),
        days=st.integers(0, 3650),
    )
    def start(self, policy, offset, days):
        self.do("start", policy=policy, now_ns=(DAY_2026_01_01 + days) * NS_PER_DAY + offset)

    def step_start(self, policy: dict, now_ns: int) -> None:
        self.require(self.state is None, "already started")
        self.require(policy_fits(policy), f"policy {policy!r} does not have the fields {sorted(POLICY_FIELDS)}")
        self.require(now_ns >= 0, f"now_ns={now_ns} is before the epoch")
        self.clock = ManualClock(now_ns)
        self.opener = self.implementation.make_replica(0, self.clock)
        self.state = model.PolicyState(load(policy))
        self.policy_fields = policy
        self.enforcer = self.opener.open(policy, self.path)

    # -- submit ------------------------------------------------------------------------

    def amount(self, kind: str, fallback: int) -> int:
        p = self.state.policy
        remaining = p.max_daily_volume - model.volume_today(self.state, self.clock.now())
        value = {
            "min-1": p.min_amount - 1,
            "min": p.min_amount,
            "max": p.max_amount,
            "max+1": p.max_amount + 1,
            "remaining": remaining,
            "remaining+1": remaining + 1,
            "u64max": U64_MAX,
            "in-range": p.min_amount + fallback % (p.max_amount - p.min_amount + 1),
            "zero": 0,
            "small": fallback % 10**9,
        }[kind]
        return min(max(value, 0), U64_MAX)

    @rule(
        reuse=st.integers(0, 5),
        pick=st.integers(0, 10**6),
        destination=st.integers(0, 9),
        kind=st.sampled_from((*AMOUNT_KINDS, "in-range", "in-range", "in-range")),
        fallback=st.integers(0, U64_MAX),
        reason=st.sampled_from((*REASONS, "bridge payout", "bridge payout")),
        sender_skew=st.one_of(st.sampled_from([0, -NS_PER_DAY, NS_PER_DAY]), st.integers(-2 * NS_PER_DAY, 2 * NS_PER_DAY)),
    )
    def submit(self, reuse, pick, destination, kind, fallback, reason, sender_skew):
        known = sorted(self.state.requests)
        request_id = known[pick % len(known)] if reuse == 0 and known else f"r{self.next_id}"
        allowed = sorted(self.state.policy.allowed_destinations) or DESTINATIONS
        self.do(
            "submit",
            request_id=request_id,
            destination={0: OTHER_DESTINATION, 1: DESTINATIONS[pick % 3]}.get(destination, allowed[destination % len(allowed)]),
            amount=self.amount(kind, fallback),
            reason=reason,
            sender_ts=max(0, self.clock.now() + sender_skew),
        )

    def step_submit(self, request_id: str, destination: str, amount: int, reason: str | None, sender_ts: int) -> None:
        self.require(self.state is not None, "not started")
        self.require(isinstance(amount, int) and 0 <= amount <= U64_MAX, f"amount {amount!r} is not a u64")
        self.require(isinstance(request_id, str) and isinstance(destination, str), "request_id and destination are strings")
        self.require(reason is None or isinstance(reason, str), f"reason {reason!r} is not a string or null")
        if request_id.startswith("r") and request_id[1:].isdigit():
            self.next_id = max(self.next_id, int(request_id[1:]) + 1)
        request = model.SpendRequest(request_id, destination, amount, reason)
        self.state, expected = model.submit(self.state, request, self.clock.now())
        got = self.enforcer.submit(request_id, destination, amount, reason, sender_timestamp_ns=sender_ts)
        self.last_decision = (got.approved, got.message)
        self.last_answer = ((expected.approved, expected.message), self.last_decision)
        assert (got.approved, got.message) == (expected.approved, expected.message), (
            f"submit {request_id} of {amount} to {destination}: enforcer says {(got.approved, got.message)}, "
            f"the model says {(expected.approved, expected.message)}"
        )

    # -- time --------------------------------------------------------------------------

    @rule(kind=st.sampled_from(ADVANCE_KINDS), amount=st.integers(0, 3 * NS_PER_DAY))
    def advance(self, kind, amount):
        now = self.clock.now()
        midnight = (utc_day(now) + 1) * NS_PER_DAY
        ns = {
            "last-ns-of-day": (midnight - 1 - now) or NS_PER_DAY,  # already there: the next day's last ns
            "midnight": midnight - now,
            "one-ns": 1,
            "day": NS_PER_DAY,
            "seconds": (amount % 7200) * NS_PER_SECOND,
            "random": amount,
        }[kind]
        self.do("advance", ns=ns)

    def step_advance(self, ns: int) -> None:
        self.require(self.clock is not None, "not started")
        self.require(isinstance(ns, int) and ns >= 0, f"a clock only moves forward, not by {ns!r}")
        self.clock.advance(ns)

    # -- the end of a session ----------------------------------------------------------

    def pick_request(self, pick: int, approved_first: bool) -> str:
        ids = sorted(self.state.requests)
        approved = [r for r in ids if self.state.requests[r].state == "approved"]
        pool = approved if approved_first and approved else ids
        return pool[pick % len(pool)] if pool else "r-unknown"

    def compare_refusal(self, what: str, apply_model, apply_impl) -> None:
        """Run a move on both sides: both succeed, or both refuse with the same message."""
        try:
            new_state = apply_model()
            expected = None
        except model.InvalidTransition as error:
            new_state, expected = self.state, str(error)
        try:
            apply_impl()
            got = None
        except ValueError as error:
            got = str(error)
        self.state = new_state
        self.last_answer = (expected or "ok", got or "ok")
        assert got == expected, f"{what}: the enforcer refused with {got!r}, the model with {expected!r}"

    @guard(lambda self: bool(self.state.requests))
    @rule(pick=st.integers(0, 10**6), approved_first=st.booleans(), why=st.sampled_from(model.RELEASES))
    def release(self, pick, approved_first, why):
        self.do("release", request_id=self.pick_request(pick, approved_first), why=why)

    def step_release(self, request_id: str, why: str) -> None:
        self.require(self.state is not None, "not started")
        self.require(why in model.RELEASES, f"why={why!r} is not one of {model.RELEASES}")
        self.compare_refusal(
            f"release {request_id} ({why})",
            lambda: model.release(self.state, request_id, why),
            lambda: self.enforcer.release(request_id, why),
        )

    @guard(lambda self: bool(self.state.requests))
    @rule(pick=st.integers(0, 10**6), approved_first=st.booleans())
    def finalize(self, pick, approved_first):
        self.do("finalize", request_id=self.pick_request(pick, approved_first))

    def step_finalize(self, request_id: str) -> None:
        self.require(self.state is not None, "not started")
        self.compare_refusal(
            f"finalize {request_id}",
            lambda: model.finalize(self.state, request_id),
            lambda: self.enforcer.finalize(request_id),
        )

    # -- restart -----------------------------------------------------------------------

    @rule(now=st.integers(0, 3), new_policy=st.one_of(st.none(), policies(), policies(valid=False)))
    def restart(self, now, new_policy):
        if now:  # one draw in four: restarts are rarer than requests
            return
        self.do("restart", policy=new_policy if new_policy is not None else self.policy_fields)

    def step_restart(self, policy: dict) -> None:
        """Close the enforcer and open a new one on the same file, loading ``policy``."""
        self.require(self.state is not None, "not started")
        self.require(policy_fits(policy), f"policy {policy!r} does not have the fields {sorted(POLICY_FIELDS)}")
        try:
            loaded, expected = load(policy), None
        except model.InvalidPolicy as error:
            loaded, expected = None, str(error)
        self.enforcer.close()
        self.enforcer = None
        try:
            self.enforcer, got = self.opener.open(policy, self.path), None
        except ValueError as error:
            got = str(error)
        self.last_answer = (expected or "ok", got or "ok")
        assert got == expected, f"loading policy {policy}: the enforcer said {got!r}, the model {expected!r}"
        if loaded is None:  # refused: the signer comes back with the policy it had
            self.enforcer = self.opener.open(self.policy_fields, self.path)
        else:
            self.state, self.policy_fields = model.restart(self.state, loaded), policy

    # -- invariants --------------------------------------------------------------------

    def observe(self) -> list[Observation]:
        if self.state is None or self.enforcer is None:
            return []
        return [
            Observation("volume today", model.volume_today(self.state, self.clock.now()), self.enforcer.volume_today()),
            Observation("last answer", *self.last_answer),
        ]

    def check(self) -> None:
        for obs in self.observe():
            assert obs.agrees, f"{obs.label}: the enforcer has {obs.implementation}, the model says {obs.model}"


test_policy_machine = machine_test(PolicyMachine)
