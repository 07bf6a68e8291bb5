"""The daily-volume spending policy of a signer (SPEC.md section 3).

A group's policy has five fields. ``allowed_destinations``: if not empty, the only
destinations a request may pay. ``min_amount`` and ``max_amount``: the inclusive bounds of
one request's amount. ``max_daily_volume``: the inclusive bound of the total approved in one
UTC day. ``require_reason``: whether a request must carry reason metadata. Every number is
an unsigned 64-bit amount of sompi; a bound that a group does not set is the widest u64
bound (0 for the minimum, 2**64 - 1 for the others). A policy whose minimum exceeds its
maximum, or with a number outside u64, is invalid: loading it raises ``InvalidPolicy``.

A request (id, destination, amount, reason) is checked in this order, and the first
failing rule gives the reason of the refusal:

1. a non-empty allowlist without the destination: "destination not allowed: D";
2. ``amount < min_amount``: "amount A below minimum M";
3. ``amount > max_amount``: "amount A exceeds maximum M";
4. reason required but missing (None or empty): "reason metadata required";
5. ``current + amount > max_daily_volume``: "daily volume exceeded: current=C, limit=L".

The volume limit is inclusive: reaching it exactly is allowed. Sums are exact integers,
so they never wrap: a sum beyond 2**64 - 1 exceeds every limit.

The day of a request is the UTC calendar day of the signer's own clock when it is
submitted (``utc_day(now)``), never a timestamp chosen by the sender, and never a rolling
24 hours. ``current`` is the volume reserved on that day.

**Choice** (SPEC): volume is *reserved* when a request is approved, so concurrent sessions
cannot together exceed the limit. The reservation belongs to the day it was approved in,
whatever the day is later. A request that expires or is rejected after approval releases
its reservation (from that day); a finalized request keeps it. Request states:
``approved -> {finalized, expired, rejected}``; a refused request is ``denied``. Moving a
request to the state it is in does nothing; any other move is an error
"invalid state transition: A -> B", and an id never submitted is "unknown request: R".
Request ids are unique: submitting a known id again is refused with
"request R already submitted" and changes nothing (no second reservation).

The state is plain data: the volume ledger (day -> reserved total) and the requests
(id -> (day, amount, state)). It lives in storage: a restart keeps it whole, and may load a
new policy.
"""

from __future__ import annotations

import attrs

from models.clock import utc_day

U64_MAX = 2**64 - 1
RELEASES = ("expired", "rejected")


class InvalidPolicy(ValueError):
    """A policy that cannot be loaded; the message says which field is wrong."""


class InvalidTransition(ValueError):
    """A release or finalize that the request's state does not allow."""


def _u64(instance, attribute, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= U64_MAX:
        raise InvalidPolicy(f"invalid policy: {attribute.name}={value!r} is not an unsigned 64-bit amount")


@attrs.frozen
class GroupPolicy:
    allowed_destinations: frozenset[str] = attrs.field(default=frozenset(), converter=frozenset)
    min_amount: int = attrs.field(default=0, validator=_u64)
    max_amount: int = attrs.field(default=U64_MAX, validator=_u64)
    max_daily_volume: int = attrs.field(default=U64_MAX, validator=_u64)
    require_reason: bool = False

    def __attrs_post_init__(self) -> None:
        if self.min_amount > self.max_amount:
            raise InvalidPolicy(f"invalid policy: min_amount {self.min_amount} > max_amount {self.max_amount}")


@attrs.frozen
class SpendRequest:
    request_id: str
    destination: str
    amount: int
    reason: str | None = None


@attrs.frozen
class Decision:
    approved: bool
    message: str


@attrs.frozen
class Request:
    """A submitted request: the day it was submitted in, its amount, its state."""

    day: int
    amount: int
    state: str


@attrs.frozen
class PolicyState:
    policy: GroupPolicy
    volume: dict[int, int] = attrs.field(factory=dict)  # day -> reserved total
    requests: dict[str, Request] = attrs.field(factory=dict)  # id -> Request


def check(policy: GroupPolicy, request: SpendRequest, current_volume: int) -> str | None:
    """None if ``request`` may be approved with ``current_volume`` already reserved today,
    else the reason of the refusal (rules 1-5 above, in order)."""
    amount = request.amount
    if policy.allowed_destinations and request.destination not in policy.allowed_destinations:
        return f"destination not allowed: {request.destination}"
    if amount < policy.min_amount:
        return f"amount {amount} below minimum {policy.min_amount}"
    if amount > policy.max_amount:
        return f"amount {amount} exceeds maximum {policy.max_amount}"
    if policy.require_reason and not request.reason:
        return "reason metadata required"
    if current_volume + amount > policy.max_daily_volume:
        return f"daily volume exceeded: current={current_volume}, limit={policy.max_daily_volume}"
    return None


def volume_on(state: PolicyState, day: int) -> int:
    return state.volume.get(day, 0)


def volume_today(state: PolicyState, now_ns: int) -> int:
    return volume_on(state, utc_day(now_ns))


def submit(state: PolicyState, request: SpendRequest, now_ns: int) -> tuple[PolicyState, Decision]:
    """Check ``request`` against today's volume; approval reserves its amount today."""
    rid = request.request_id
    if rid in state.requests:
        return state, Decision(False, f"request {rid} already submitted")
    day = utc_day(now_ns)
    current = volume_on(state, day)
    refusal = check(state.policy, request, current)
    if refusal is not None:
        denied = Request(day, request.amount, "denied")
        return attrs.evolve(state, requests={**state.requests, rid: denied}), Decision(False, refusal)
    approved = Request(day, request.amount, "approved")
    volume = {**state.volume, day: current + request.amount}
    return PolicyState(state.policy, volume, {**state.requests, rid: approved}), Decision(True, "approved")


def _move(state: PolicyState, request_id: str, target: str) -> tuple[Request, bool]:
    """The request and whether the move changes it; raises if the move is not allowed."""
    if request_id not in state.requests:
        raise InvalidTransition(f"unknown request: {request_id}")
    request = state.requests[request_id]
    if request.state == target:
        return request, False
    if request.state != "approved":
        raise InvalidTransition(f"invalid state transition: {request.state} -> {target}")
    return request, True


def release(state: PolicyState, request_id: str, why: str) -> PolicyState:
    """An approved request expired or was rejected: its reservation is given back to its day."""
    if why not in RELEASES:
        raise ValueError(f"a release is one of {RELEASES}, not {why!r}")
    request, changes = _move(state, request_id, why)
    if not changes:
        return state
    volume = {**state.volume, request.day: state.volume[request.day] - request.amount}
    requests = {**state.requests, request_id: attrs.evolve(request, state=why)}
    return PolicyState(state.policy, volume, requests)


def finalize(state: PolicyState, request_id: str) -> PolicyState:
    """An approved request was signed and submitted: its reservation stays."""
    request, changes = _move(state, request_id, "finalized")
    if not changes:
        return state
    return attrs.evolve(state, requests={**state.requests, request_id: attrs.evolve(request, state="finalized")})


def restart(state: PolicyState, policy: GroupPolicy) -> PolicyState:
    """A restart loads ``policy``; the ledger and the requests come back from storage whole."""
    return attrs.evolve(state, policy=policy)
