"""The daily-volume spending policy: ``models.policy`` against every policy enforcer.

One signer, one manual clock, one database file. The machine loads a policy (bounds drawn
to include ``min == max``, allowlists, a required reason, limits of any size up to
2**64 - 1), submits requests whose amounts sit on every bound (min - 1, min, max, max + 1,
exactly the volume left today, one sompi more, 2**64 - 1), with and without reason, to
allowed and other destinations, with a sender timestamp that must not matter; moves the
clock (to the last nanosecond before UTC midnight, to midnight exactly, by whole days, by
random amounts); expires, rejects and finalizes requests; and restarts the enforcer from
its database, sometimes with a new (or an invalid) policy. Every decision and message, every
refusal, today's volume and the set of live reservations must equal the model's.

Faults at the storage seam (``harness.faults``): ``crash`` arms a crash just before or just
after the k-th commit of the enforcer's next operation; the enforcer is then thrown away
and a new one opened on the file. ``interleave`` runs two operations on two enforcers
sharing the file, the second one at a transaction boundary of the first, as two signer
processes would. The model: every operation is one transaction, so a crash loses it whole
or keeps it whole (only the answer is lost), and two interleaved operations take effect in
the order of their commits.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

from harness import TracedMachine, faults, guard, machine_test
from harness.machine import Observation
from implementations.storage import StorageError, Store
from models import policy as model
from models.clock import NS_PER_DAY, NS_PER_SECOND, ManualClock, utc_day

U64_MAX = model.U64_MAX
DESTINATIONS = ("kaspa:qpay1", "kaspa:qpay2", "kaspa:qpay3")
OTHER_DESTINATION = "kaspa:qelsewhere"
DAY_2026_01_01 = 20_454
REASONS = (None, "", "bridge payout")

#: Each operation an enforcer offers, with its arguments (as the machine's steps record them).
OPERATIONS = {
    "submit": ("request_id", "destination", "amount", "reason", "sender_ts"),
    "release": ("request_id", "why"),
    "finalize": ("request_id",),
}

#: What a caller may wrongly pass as a policy bound or an amount: outside u64, or not an int.
NOT_U64 = (-1, U64_MAX + 1, True, 1.5, "100", None)
#: What a caller may wrongly pass as the end of a session to ``release``.
NOT_RELEASES = ("finalized", "approved", "denied", "", "EXPIRED")
#: The threshold signer's own table in the enforcer's file: its answer to each request, in
#: the same commit as the enforcer's decision (``implementations.threshold`` does the same).
SIGNER_ANSWERS = "CREATE TABLE IF NOT EXISTS signer_answers (request_id TEXT NOT NULL, answer TEXT NOT NULL)"
#: Who calls a submit or a release: the signer's code on its own (mostly), the signer inside
#: its own transaction (``in_signer_transaction``), or a caller passing a bad argument.
CALLERS = ("direct", "direct", "direct", "signer", "mistaken")
#: A caller's mistakes (``bad_argument``) and their arguments: a submit with an amount that is no
#: u64, a release that is neither expired nor rejected, an enforcer opened on plain fields, and a
#: core's use of its storage seam (``seam``: a probe of ``SEAM_PROBES``).
MISTAKES = {"submit": OPERATIONS["submit"], "release": OPERATIONS["release"], "open": ("policy",), "seam": ("probe",)}
#: Probes of the storage seam the enforcer writes through (``implementations.storage.Store``), as its
#: own code could use it: ``write``, a write outside a transaction (on a store just opened, with its
#: schema), and ``declare``, a schema declared inside one, are refused (``StorageError`` naming the
#: file and what was refused) and change nothing;
#: ``reads``, a read of every read-only kind (SELECT, WITH, PRAGMA, EXPLAIN), needs no transaction;
#: ``digest``, a new table, rows in it (equal but for a NULL), a row's value and the table's name
#: each change the file's digest (what every "changed nothing" check compares), and undoing them
#: brings it back; ``no_wal``, a store opened where SQLite refuses write-ahead logging (a private
#: temporary database, path ""), is refused naming the journal mode it got.
SEAM_PROBES = ("write", "declare", "reads", "digest", "no_wal")
#: The durability the storage seam states (``implementations/storage.py``): the file's journal mode,
#: ``synchronous`` (2 is FULL) and the busy timeout in ms, as ``PRAGMA`` reads them back.
DURABILITY = ("wal", 2, 5_000)
#: A request id no step submits: the enforcer must not know it.
NEVER_SUBMITTED = "r-never-submitted"

AMOUNT_KINDS = ("min-1", "min", "max", "max+1", "remaining", "remaining+1", "u64max", "in-range", "zero", "small")
ADVANCE_KINDS = ("last-ns-of-day", "midnight", "one-ns", "day", "seconds", "random")

#: The raw draws of one submit (resolved against the machine's state by ``submit_args``).
SUBMIT_DRAWS = dict(
    reuse=st.integers(0, 5),
    pick=st.integers(0, 10**6),
    destination=st.integers(0, 9),
    kind=st.sampled_from((*AMOUNT_KINDS, "in-range", "in-range", "in-range")),
    fallback=st.integers(0, U64_MAX),
    reason=st.sampled_from((*REASONS, "bridge payout", "bridge payout")),
    sender_skew=st.one_of(st.sampled_from([0, -NS_PER_DAY, NS_PER_DAY]), st.integers(-2 * NS_PER_DAY, 2 * NS_PER_DAY),
                          st.none()),  # None: the sender claimed no time
)
#: Two processes racing: mostly submits, of amounts that each fit today but not together.
RACING = st.sampled_from(["submit", "submit", "release", "finalize"])
RACING_DRAWS = {**SUBMIT_DRAWS, "kind": st.sampled_from(["remaining", "remaining", "max", "in-range"]),
                "reason": st.just("bridge payout")}


@st.composite
def policies(draw, valid: bool = True) -> dict[str, Any]:
    """A policy as plain fields; bounds are drawn to hit their own edges. An invalid one has
    min > max, and sometimes a bound that is not a u64 at all (negative, 2**64, a bool, a
    float, a string, null): a policy file's mistakes, which loading must name."""
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
    fields = {
        "allowed_destinations": sorted(allowed),
        "min_amount": low,
        "max_amount": high,
        "max_daily_volume": limit,
        "require_reason": draw(st.booleans()),
    }
    if not valid:  # besides min > max, now and then a bound that is no u64 at all (checked first)
        wrong = draw(st.sampled_from((None, "min_amount", "max_amount", "max_daily_volume")))
        if wrong is not None:
            fields[wrong] = draw(st.sampled_from(NOT_U64))
    return fields


POLICY_FIELDS = frozenset({"allowed_destinations", "min_amount", "max_amount", "max_daily_volume", "require_reason"})


def policy_fits(policy: Any) -> bool:
    """A trace's policy has exactly the fields a policy has (their values may be invalid)."""
    return isinstance(policy, dict) and set(policy) == POLICY_FIELDS and isinstance(policy["allowed_destinations"], list)


def load(fields: dict[str, Any]) -> model.GroupPolicy:
    return model.GroupPolicy(**{**fields, "allowed_destinations": frozenset(fields["allowed_destinations"])})


def moment(ns: int) -> str:
    """A clock reading as a UTC time to the nanosecond (``2026-01-01 23:59:59.999999999``)."""
    seconds, rest = divmod(ns, NS_PER_SECOND)
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M:%S") + f".{rest:09d} UTC"


def policy_text(p: dict[str, Any]) -> str:
    allowed = ", ".join(p["allowed_destinations"]) or "any destination"
    return (f"policy min {p['min_amount']}, max {p['max_amount']}, daily limit {p['max_daily_volume']}"
            f"{', reason required' if p['require_reason'] else ''}, to {allowed}")


def operation_text(op: dict[str, Any], now: int) -> str:
    """An enforcer's operation in words (the sender's timestamp only when it is not the local clock's)."""
    if op["op"] == "submit":
        skew = None if op["sender_ts"] is None else op["sender_ts"] - now
        sender = "" if skew == 0 else ", no sender's clock" if skew is None else f", sender's clock {skew:+} ns"
        return f"request {op['request_id']} spends {op['amount']} to {op['destination']} (reason {op['reason']!r}{sender})"
    if op["op"] == "release":
        return f"request {op['request_id']} is released ({op['why']})"
    return f"request {op['request_id']} is finalized"


class PolicyMachine(TracedMachine):
    name = "policy"
    rule_classes: ClassVar[dict[str, str]] = {
        "start": "setup", "submit": "operations", "release": "operations", "finalize": "operations", "advance": "time",
        "bad_argument": "operations",
        "in_signer_transaction": "operations", "crash": "crash", "interleave": "crash", "restart": "crash"}
    class_floors: ClassVar[dict[str, float]] = {"operations": 0.18, "time": 0.15, "crash": 0.20}

    def __init__(self, implementation, stats=None):
        super().__init__(implementation, stats)
        self.directory = Path(tempfile.mkdtemp(prefix="mbt-policy-", dir=faults.store_directory()))
        self.path = str(self.directory / "policy.sqlite")
        self.clock: ManualClock | None = None
        self.opener = None
        self.enforcer = None
        self.twin = None  # a second enforcer on the same file (another process), opened on first use
        self.armed: faults.CrashPoint | None = None
        self.state: model.PolicyState | None = None
        self.policy_fields: dict[str, Any] = {}
        self.next_id = 0
        self.last_decision: tuple[bool, str] | None = None
        self.last_answer: tuple[Any, Any] = (None, None)  # (the model's, the enforcer's), for the report
        self.sender_claims: dict[str, int | None] = {}  # request id -> the sender's timestamp, for the audit record
        self.signer_answers = 0  # the answers a signer recorded in the enforcer's commits (in_signer_transaction)
        self.seam_probes = 0  # probes of the storage seam made (each digest probe adds a table of its own)

    def teardown(self) -> None:
        for enforcer in (self.enforcer, self.twin):
            if enforcer is not None:
                enforcer.close()
        self.enforcer = self.twin = None
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
        self.enforcer = self.open_enforcer(policy)

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

    def submit_args(self, reuse, pick, destination, kind, fallback, reason, sender_skew) -> dict[str, Any]:
        """A submit's concrete arguments from raw draws (a known id now and then, amounts on every bound)."""
        known = sorted(self.state.requests)
        request_id = known[pick % len(known)] if reuse == 0 and known else f"r{self.next_id}"
        self.next_id += request_id == f"r{self.next_id}"
        allowed = sorted(self.state.policy.allowed_destinations) or DESTINATIONS
        return dict(
            request_id=request_id,
            destination={0: OTHER_DESTINATION, 1: DESTINATIONS[pick % 3]}.get(destination, allowed[destination % len(allowed)]),
            amount=self.amount(kind, fallback),
            reason=reason,
            sender_ts=None if sender_skew is None else max(0, self.clock.now() + sender_skew),
        )

    @rule(**SUBMIT_DRAWS, caller=st.sampled_from(CALLERS))
    def submit(self, caller, **draws):
        args = self.submit_args(**draws)
        if caller == "signer":
            self.do("in_signer_transaction", op={"op": "submit", **args})
        elif caller == "mistaken" and draws["reuse"] == 5:  # one mistake in six: the policy as plain fields
            self.do("bad_argument", op={"op": "open", "policy": self.policy_fields})
        elif caller == "mistaken" and draws["reuse"] == 4:  # one in six: a probe of the storage seam
            self.seam_probes += 1  # every probe in turn: the search's draws cluster
            probe = SEAM_PROBES[(draws["pick"] + self.seam_probes) % len(SEAM_PROBES)]
            self.do("bad_argument", op={"op": "seam", "probe": probe})
        elif caller == "mistaken":
            self.do("bad_argument", op={"op": "submit", **args, "amount": NOT_U64[draws["pick"] % len(NOT_U64)]})
        else:
            self.do("submit", **args)

    def step_submit(self, request_id: str, destination: str, amount: int, reason: str | None, sender_ts: int | None) -> None:
        self.require(self.state is not None, "not started")
        self.operate({"op": "submit", "request_id": request_id, "destination": destination, "amount": amount,
                      "reason": reason, "sender_ts": sender_ts})

    def check_operation(self, op: dict[str, Any]) -> None:
        """Refuse an operation (from a trace) whose arguments do not fit."""
        kind = op.get("op")
        self.require(kind in OPERATIONS, f"operation {kind!r} is not one of {OPERATIONS}")
        self.require(set(op) == {"op", *OPERATIONS[kind]}, f"{kind} takes {OPERATIONS[kind]}, got {sorted(op)}")
        self.require(isinstance(op["request_id"], str), "request_id is a string")
        if kind == "submit":
            amount, reason = op["amount"], op["reason"]
            self.require(isinstance(amount, int) and 0 <= amount <= U64_MAX, f"amount {amount!r} is not a u64")
            self.require(isinstance(op["destination"], str), "destination is a string")
            self.require(reason is None or isinstance(reason, str), f"reason {reason!r} is not a string or null")
            sender_ts = op["sender_ts"]
            self.require(sender_ts is None or isinstance(sender_ts, int), f"sender_ts {sender_ts!r} is not an integer or null")
            rid = op["request_id"]
            if rid.startswith("r") and rid[1:].isdigit():
                self.next_id = max(self.next_id, int(rid[1:]) + 1)
        if kind == "release":
            self.require(op["why"] in model.RELEASES, f"why={op['why']!r} is not one of {model.RELEASES}")

    # -- operations, crashes and a second enforcer on the same file ----------------------

    def as_signer(self, enforcer, op: dict[str, Any]) -> Any:
        """``op`` as a threshold signer calls it: inside the signer's own transaction, which also
        records the signer's answer, so the enforcer's operation joins it (one commit for both)."""
        with enforcer.store.transaction():
            answer = self.apply(enforcer, op)
            enforcer.store.execute("INSERT INTO signer_answers VALUES (?, ?)", (op["request_id"], repr(answer)))
        return answer

    def apply(self, enforcer, op: dict[str, Any]) -> Any:
        """Carry out ``op`` on ``enforcer``: its decision as a pair, or "ok" (refusals raise)."""
        if op["op"] == "submit":
            got = enforcer.submit(op["request_id"], op["destination"], op["amount"], op["reason"],
                                  sender_timestamp_ns=op["sender_ts"])
            return (got.approved, got.message)
        if op["op"] == "release":
            enforcer.release(op["request_id"], op["why"])
        else:
            enforcer.finalize(op["request_id"])
        return "ok"

    def predict(self, op: dict[str, Any]) -> tuple[model.PolicyState, Any]:
        """The model's state after ``op`` and its answer (a decision pair, "ok" or a refusal)."""
        rid = op["request_id"]
        try:
            if op["op"] == "submit":
                request = model.SpendRequest(rid, op["destination"], op["amount"], op["reason"])
                state, decision = model.submit(self.state, request, self.clock.now())
                return state, (decision.approved, decision.message)
            if op["op"] == "release":
                return model.release(self.state, rid, op["why"]), "ok"
            return model.finalize(self.state, rid), "ok"
        except model.InvalidTransition as error:
            return self.state, str(error)

    def conclude(self, op: dict[str, Any], run: faults.Run, as_signer: bool = False) -> None:
        """Move the model by ``op`` if it took effect, and compare the enforcer's answer."""
        if not run.took_effect:  # crashed before its commit: lost whole
            self.last_answer = ("lost in the crash", "lost in the crash")
            return
        self.signer_answers += as_signer and run.error is None  # a refusal rolls the signer's transaction back
        if op["op"] == "submit" and op["request_id"] not in self.state.requests:  # recorded, approved or denied
            self.sender_claims[op["request_id"]] = op["sender_ts"]
        self.state, expected = self.predict(op)
        if run.crashed:  # committed, then the process died: only the answer is lost
            self.last_answer = ("committed, answer lost in the crash",) * 2
            return
        got = str(run.error) if isinstance(run.error, ValueError) else run.value()
        self.last_answer = (expected, got)
        if op["op"] == "submit":
            self.last_decision = got
        assert got == expected, f"{op['op']} {op['request_id']}: the enforcer says {got!r}, the model says {expected!r}"

    def reopen(self) -> None:
        """A new enforcer on the same file after a crash, with the policy it had."""
        self.enforcer.close()
        self.enforcer = self.open_enforcer(self.policy_fields)

    def open_enforcer(self, policy: dict):
        """The signer's enforcer on the file, with the signer's own table declared beside the
        enforcer's, as a signer declares it when it opens (outside any transaction)."""
        enforcer = self.opener.open(policy, self.path)
        enforcer.store.declare(SIGNER_ANSWERS)
        return enforcer

    def second_enforcer(self):
        if self.twin is None:
            self.twin = self.opener.open(self.policy_fields, self.path)
        return self.twin

    def operate(self, op: dict[str, Any], second: dict[str, Any] | None = None, boundary: int | None = None,
                as_signer: bool = False) -> None:
        """Run ``op`` on the enforcer (under the armed crash point, if any; inside a signer's
        transaction if ``as_signer``) and, if given, ``second`` on the second enforcer at the
        ``boundary``-th transaction boundary of ``op``."""
        self.check_operation(op)
        if second is not None:
            self.check_operation(second)
        crash, self.armed = self.armed, None
        twin = None if second is None else self.second_enforcer()
        other = None if second is None else (lambda: self.apply(twin, second))
        call = self.as_signer if as_signer else self.apply
        run = faults.run_operation(self.enforcer.store, lambda: call(self.enforcer, op), crash=crash,
                                   boundary=boundary, other=other)
        if run.crashed:
            self.reopen()
        order = [(op, run)] if second is None else (
            [(second, run.other), (op, run)] if run.other_first else [(op, run), (second, run.other)])
        for each, outcome in order:
            self.conclude(each, outcome, as_signer and each is op)

    @guard(lambda self: self.armed is None)
    @rule(when=st.sampled_from(faults.WHEN), commit=st.integers(1, 2))
    def crash(self, when, commit):
        self.do("crash", when=when, commit=commit)

    def step_crash(self, when: str, commit: int) -> None:
        """Arm a crash just before/after the ``commit``-th commit of the enforcer's next operation."""
        self.require(self.state is not None, "not started")
        self.require(when in faults.WHEN and isinstance(commit, int) and commit >= 1, f"no crash point {when} {commit}")
        self.armed = faults.CrashPoint(when, commit)

    @rule(first=RACING, first_draws=st.fixed_dictionaries(RACING_DRAWS),
          second=RACING, second_draws=st.fixed_dictionaries(RACING_DRAWS), boundary=st.integers(1, 2))
    def interleave(self, first, first_draws, second, second_draws, boundary):
        ops = [self.operation_args(first, first_draws), self.operation_args(second, second_draws)]
        self.do("interleave", first=ops[0], second=ops[1], boundary=boundary)

    def operation_args(self, kind: str, draws: dict[str, Any]) -> dict[str, Any]:
        if kind == "submit":
            return {"op": "submit", **self.submit_args(**draws)}
        request_id = self.pick_request(draws["pick"], draws["reuse"] % 2 == 0)
        return {"op": kind, "request_id": request_id, **({"why": model.RELEASES[draws["pick"] % 2]} if kind == "release" else {})}

    def step_interleave(self, first: dict, second: dict, boundary: int) -> None:
        """``first`` on the enforcer, and ``second`` on a second enforcer on the same file, run
        at the ``boundary``-th transaction boundary of ``first`` (or after it)."""
        self.require(self.state is not None, "not started")
        self.require(isinstance(first, dict) and isinstance(second, dict), "operations are objects")
        self.require(isinstance(boundary, int) and boundary >= 1, f"boundary {boundary!r} is not k >= 1")
        self.operate(first, second, boundary)

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

    @guard(lambda self: bool(self.state.requests))
    @rule(pick=st.integers(0, 10**6), approved_first=st.booleans(), why=st.sampled_from(model.RELEASES),
          caller=st.sampled_from(CALLERS))
    def release(self, pick, approved_first, why, caller):
        request_id = self.pick_request(pick, approved_first)
        if caller == "signer":
            self.do("in_signer_transaction", op={"op": "release", "request_id": request_id, "why": why})
        elif caller == "mistaken":
            self.do("bad_argument", op={"op": "release", "request_id": request_id, "why": NOT_RELEASES[pick % len(NOT_RELEASES)]})
        else:
            self.do("release", request_id=request_id, why=why)

    def step_release(self, request_id: str, why: str) -> None:
        self.require(self.state is not None, "not started")
        self.operate({"op": "release", "request_id": request_id, "why": why})

    @guard(lambda self: bool(self.state.requests))
    @rule(pick=st.integers(0, 10**6), approved_first=st.booleans(), signer=st.sampled_from((False, False, False, True)))
    def finalize(self, pick, approved_first, signer):
        request_id = self.pick_request(pick, approved_first)
        if signer:
            self.do("in_signer_transaction", op={"op": "finalize", "request_id": request_id})
        else:
            self.do("finalize", request_id=request_id)

    def step_finalize(self, request_id: str) -> None:
        self.require(self.state is not None, "not started")
        self.operate({"op": "finalize", "request_id": request_id})

    # -- the enforcer inside a threshold signer ----------------------------------------

    def step_in_signer_transaction(self, op: dict) -> None:
        """``op`` called by a threshold signer inside its own transaction, which records the
        signer's answer in the same commit: the enforcer joins it, and a crash keeps both or
        neither (the signer's answers are counted against the file)."""
        self.require(self.state is not None, "not started")
        self.require(isinstance(op, dict), "an operation is an object")
        self.operate(op, as_signer=True)

    # -- a caller's bad argument -------------------------------------------------------

    def step_bad_argument(self, op: dict) -> None:
        """A caller's programming error -- an amount that is not a u64, a release that is
        neither expired nor rejected, an enforcer built on plain fields instead of a Policy:
        refused with a ValueError naming what is wrong, and the file is left as it was (no
        request recorded, no volume moved)."""
        self.require(self.state is not None, "not started")
        kind = op.get("op") if isinstance(op, dict) else None
        self.require(kind in MISTAKES, f"{op!r} is not one of the mistakes {sorted(MISTAKES)}")
        self.require(set(op) == {"op", *MISTAKES[kind]}, f"{kind} takes {MISTAKES[kind]}, got {sorted(op)}")
        if kind == "seam":
            self.require(op["probe"] in SEAM_PROBES, f"no probe {op['probe']!r} of the storage seam")
            self.probe_seam(op["probe"])
            return
        if kind == "submit":
            amount = op["amount"]
            self.require(not (type(amount) is int and 0 <= amount <= U64_MAX), f"amount {amount!r} is a u64: no mistake")
            named = repr(amount)
        elif kind == "release":
            self.require(op["why"] not in model.RELEASES, f"why={op['why']!r} is a release: no mistake")
            named = repr(op["why"])
        else:
            self.require(isinstance(op["policy"], dict), f"policy {op['policy']!r} is not plain fields")
            named = "dict"  # what it got instead of a Policy
        before = self.enforcer.store.digest()
        try:
            if kind == "open":
                self.opener.open_as_given(op["policy"], self.path).close()
            else:
                self.apply(self.enforcer, op)
        except ValueError as error:
            got = str(error)
        else:
            got = "accepted"
        self.last_answer = (f"a ValueError naming {named}", got)
        assert named in got, f"a caller's {kind} with {named}: the enforcer says {got!r}, not an error naming it"
        assert self.enforcer.store.digest() == before, f"a caller's {kind} with {named} was refused but changed the file"
        self.last_answer = (got, got)

    def probe_seam(self, probe: str) -> None:
        """One of ``SEAM_PROBES`` on the enforcer's store (see there)."""
        store = self.enforcer.store
        if probe in ("write", "declare"):
            # A write on a store just opened (with its schema, as a core opens its file), before any transaction of it.
            fresh = Store(self.path, SIGNER_ANSWERS) if probe == "write" else None
            before = store.digest()
            named = ("DELETE", self.path) if probe == "write" else ("declare", self.path)
            try:
                if fresh is not None:
                    fresh.execute("DELETE FROM reservations")
                else:
                    with store.transaction():
                        store.declare(SIGNER_ANSWERS)
            except StorageError as error:
                got = str(error)
            else:
                got = "accepted"
            finally:
                if fresh is not None:
                    fresh.close()
            self.last_answer = (f"a StorageError naming {named}", got)
            assert all(name in got for name in named), f"seam {probe}: the store says {got!r}, not an error naming {named}"
            assert store.digest() == before, f"seam {probe}: refused, but the file changed"
        elif probe == "no_wal":
            try:
                Store("").close()
            except StorageError as error:
                got = str(error)
            else:
                got = "opened"
            named = ("write-ahead logging", "'delete'")
            self.last_answer = (f"a StorageError naming {named}", got)
            assert all(name in got for name in named), f"seam no_wal: the store says {got!r}, not an error naming {named}"
        elif probe == "reads":
            reads = ("SELECT count(*) FROM reservations", "WITH r AS (SELECT state FROM reservations) SELECT count(*) FROM r",
                     "PRAGMA user_version", "EXPLAIN SELECT 1")
            got = [len(store.execute(sql).fetchall()) > 0 for sql in reads]  # outside any transaction
            self.last_answer = ([True] * len(reads), got)
            assert all(got), f"seam reads: {[sql for sql, ok in zip(reads, got, strict=True) if not ok]} returned nothing"
        else:
            table = f"seam_probe_{self.seam_probes}"
            before = store.digest()
            store.declare(f"CREATE TABLE IF NOT EXISTS {table} (n INTEGER, m INTEGER)")
            digests = [before, store.digest()]
            # Two rows equal but for a NULL: the digest orders rows whatever their columns hold.
            for sql in (f"INSERT INTO {table} VALUES (1, NULL), (1, 2)", f"UPDATE {table} SET m = 3 WHERE m = 2",
                        f"ALTER TABLE {table} RENAME TO {table}_renamed", f"ALTER TABLE {table}_renamed RENAME TO {table}",
                        f"DELETE FROM {table}"):
                with store.transaction():
                    store.execute(sql)
                digests.append(store.digest())
            self.last_answer = ("each of a new table, rows in it, a row's value and the table's name changes the digest; "
                                "the name and the rows undone, it is as it was", digests)
            assert len(set(digests[:5])) == 5 and digests[5:] == [digests[3], digests[1]], (
                f"seam digest: before; with a new empty table; two rows in it; a row's value changed; the table renamed; "
                f"named back; the rows deleted: {digests}")
        self.last_answer = (self.last_answer[1], self.last_answer[1])

    # -- restart -----------------------------------------------------------------------

    @rule(now=st.integers(0, 2), new_policy=st.one_of(st.none(), policies(), policies(valid=False)))
    def restart(self, now, new_policy):
        if now:  # one draw in three: restarts are rarer than requests
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
        for enforcer in (self.enforcer, self.twin):
            if enforcer is not None:
                enforcer.close()
        self.enforcer = self.twin = None  # the second process restarts too, with the new policy
        try:
            self.enforcer, got = self.open_enforcer(policy), None
        except ValueError as error:
            got = str(error)
        self.last_answer = (expected or "ok", got or "ok")
        assert got == expected, f"loading policy {policy}: the enforcer said {got!r}, the model {expected!r}"
        if loaded is None:  # refused: the signer comes back with the policy it had
            self.enforcer = self.open_enforcer(self.policy_fields)
        else:
            self.state, self.policy_fields = model.restart(self.state, loaded), policy

    # -- the report --------------------------------------------------------------------

    def describe_step(self, step) -> str:
        """The step in the domain's words: which request spends how much where, when."""
        a = step.args
        try:
            if step.rule == "start":
                return f"start at {moment(a['now_ns'])} with {policy_text(a['policy'])}"
            if step.rule == "submit":
                return operation_text({"op": "submit", **a}, self.clock.now())
            if step.rule in ("release", "finalize"):
                return operation_text({"op": step.rule, **a}, self.clock.now())
            if step.rule == "advance":
                return f"the clock moves {a['ns']} ns, to {moment(self.clock.now() + a['ns'])}"
            if step.rule == "crash":
                return f"the enforcer's next operation crashes {a['when']} its commit {a['commit']}"
            if step.rule == "interleave":
                now = self.clock.now()
                return (f"two signer processes: {operation_text(a['first'], now)}; at its transaction boundary "
                        f"{a['boundary']}, the other: {operation_text(a['second'], now)}")
            if step.rule == "in_signer_transaction":
                return f"inside the signer's transaction: {operation_text(a['op'], self.clock.now())}"
            if step.rule == "bad_argument":
                op = a["op"]
                if op["op"] == "seam":
                    return f"the enforcer's own code probes its storage seam: {op['probe']}"
                if op["op"] == "open":
                    return f"a caller's error: an enforcer opened on plain fields, {policy_text(op['policy'])}"
                bad = f"amount {op['amount']!r}" if op["op"] == "submit" else f"release ({op['why']!r})"
                return f"a caller's error: request {op['request_id']} with the {bad}"
            if step.rule == "restart":
                return f"the signer restarts with {policy_text(a['policy'])}"
        except (KeyError, TypeError, ValueError, AttributeError):
            pass
        return step.describe()

    # -- invariants --------------------------------------------------------------------

    def observe(self) -> list[Observation]:
        if self.state is None or self.enforcer is None:
            return []
        requests = self.state.requests
        live = sorted(rid for rid, r in requests.items() if r.state == "approved")
        ids = [*sorted(requests), NEVER_SUBMITTED]
        days = sorted(self.state.volume)
        return [
            Observation("volume today", model.volume_today(self.state, self.clock.now()), self.enforcer.volume_today()),
            Observation("live reservations", live, self.enforcer.approved()),
            Observation("request states", {rid: requests[rid].state if rid in requests else None for rid in ids},
                        {rid: self.enforcer.state_of(rid) for rid in ids}),
            Observation("volume of every day", {day: model.volume_on(self.state, day) for day in days},
                        {day: self.enforcer.volume_on(day) for day in days}),
            Observation("sender's timestamps on the audit record", self.sender_claims, self.opener.sender_claims(self.enforcer)),
            Observation("answers the signer recorded", self.signer_answers, self.recorded_answers()),
            Observation("last answer", *self.last_answer),
            Observation("the file's durability (journal mode, synchronous, busy timeout ms)", DURABILITY, self.durability()),
        ]

    def durability(self) -> tuple:
        store = self.enforcer.store  # PRAGMA reads: outside any transaction
        return tuple(store.execute(f"PRAGMA {name}").fetchone()[0] for name in ("journal_mode", "synchronous", "busy_timeout"))

    def recorded_answers(self) -> int:
        store = self.enforcer.store
        return store.execute("SELECT count(*) FROM signer_answers").fetchone()[0] if "signer_answers" in store.tables() else 0

    def check(self) -> None:
        for obs in self.observe():
            assert obs.agrees, f"{obs.label}: the enforcer has {obs.implementation}, the model says {obs.model}"


test_policy_machine = machine_test(PolicyMachine)
