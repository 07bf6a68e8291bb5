"""m-of-n threshold signing of bridge events (SPEC.md section 2, "Igra").

A group is ``n`` member keys in a fixed *group key order* and a threshold ``m``
(``1 <= m <= n``, keys distinct). A coordinator proposes one unsigned transaction (a
template) per request; members sign every input of it; the coordinator finalizes.

Request states. A request is ``Pending`` when proposed. ``Pending`` may become
``Approved`` (``m`` distinct members accepted, or their valid signatures arrived, maybe
relayed: see below), ``Rejected`` (so many members refused that ``m`` accepts can no
longer be reached), ``Expired`` or ``Finalized``;
``Approved`` may become ``Finalized``, ``Expired`` or ``Aborted`` (the node refused the
signed transaction). Moving a request to the state it is in does nothing. Every other move,
and any move out of ``Rejected``, ``Expired``, ``Finalized`` or ``Aborted``, is an error
"invalid state transition: A -> B".

Which signatures count. A partial signature names an input, a key, and whether it is a
valid signature of that key over that input's sighash. The model does no cryptography: the
caller has verified the signature and passes the verdict. On one input, the keys that
count are the distinct keys of the group with at least one valid signature there. A key
that is not a member never counts, however valid; a key counts once, however many times
it signed.

When a request may be finalized. When every input of its template has at least ``m``
counting keys; the request is then ``Approved`` (if it was not yet) and submitted at once:
signatures decide, not accepts. The submitted transaction carries, on each input, the
signatures of the first ``m`` counting keys in group key order (and no others). Only after
the node accepted it is the volume recorded.

Time. A request proposed at ``now`` with session timeout ``t`` expires at ``now + t``.
It times out at ``expires_at``: from then on it cannot be finalized, and the coordinator's
next look at the clock moves a ``Pending`` or ``Approved`` request to ``Expired``; nothing
of an expired request is ever submitted. A signer accepts a proposal only if
``expires_at`` lies in ``[now - 30 s, now + 1 h + 30 s]`` of its own clock (30 s of clock
skew either way, one hour of lifetime at most). It settles the volume it reserved once no
coordinator can submit: 30 s after ``expires_at`` (``settles``); kept if paid, else given back.

What a signer checks, in this order, the first failure naming the refusal: the event
hash ("event hash mismatch"), the template hash of the template it rebuilt from its own
view of the UTXOs ("template hash mismatch"), the validation hash ("validation hash
mismatch"), the expiry window ("expires_at outside the accepted window"), the group's
policy (the policy's own message, see ``models.policy``), and replay ("event already
processed": it has already signed this event in another request). A signer never signs
two different templates for one event: it records the template it signed per event, and
answers a repeat of the same request with the same signatures.

Crashes. A signer decides a proposal (reservation, answer, template signed) and settles in
one step each: a crash keeps all of it or none (the answer may be lost).

A coordinator's requests (answers, the decision to submit, expiry, crash recovery, payment on
the node) are ``models.threshold_requests``.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

PENDING, APPROVED, REJECTED, EXPIRED, FINALIZED, ABORTED = "Pending", "Approved", "Rejected", "Expired", "Finalized", "Aborted"
TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({APPROVED, REJECTED, EXPIRED, FINALIZED}),
    APPROVED: frozenset({FINALIZED, EXPIRED, ABORTED}),
}
ALIVE = frozenset({PENDING, APPROVED})

NS_PER_SECOND = 1_000_000_000
SKEW_NS = 30 * NS_PER_SECOND
MAX_LIFETIME_NS = 3600 * NS_PER_SECOND


class InvalidTransition(ValueError):
    """A request moved to a state its current state does not lead to."""


def transition(current: str, new: str) -> str:
    """The state after moving a request in ``current`` to ``new``."""
    if current == new:
        return current
    if new not in TRANSITIONS.get(current, frozenset()):
        raise InvalidTransition(f"invalid state transition: {current} -> {new}")
    return new


@attrs.frozen
class Group:
    """``keys`` in group key order, and the threshold ``m``."""

    keys: tuple[str, ...] = attrs.field(converter=tuple)
    m: int

    def __attrs_post_init__(self) -> None:
        if len(set(self.keys)) != len(self.keys):
            raise ValueError("a group's keys must be distinct")
        if not 1 <= self.m <= len(self.keys):
            raise ValueError(f"threshold m={self.m} outside 1..{len(self.keys)}")

    @property
    def n(self) -> int:
        return len(self.keys)


@attrs.frozen
class PartialSignature:
    """A signature by ``key`` on input ``input_index``; ``valid``: it verifies over that input's sighash."""

    input_index: int
    key: str
    valid: bool


def counting_keys(group: Group, signatures: Iterable[PartialSignature], input_index: int) -> tuple[str, ...]:
    """The distinct member keys with a valid signature on ``input_index``, in group key order."""
    signed = {s.key for s in signatures if s.input_index == input_index and s.valid}
    return tuple(key for key in group.keys if key in signed)


def ready_to_finalize(group: Group, n_inputs: int, signatures: Iterable[PartialSignature]) -> bool:
    """Every input has at least ``m`` counting keys."""
    signatures = tuple(signatures)
    return n_inputs > 0 and all(len(counting_keys(group, signatures, i)) >= group.m for i in range(n_inputs))


def chosen_keys(group: Group, n_inputs: int, signatures: Iterable[PartialSignature]) -> tuple[tuple[str, ...], ...]:
    """Per input, the keys whose signatures the finalized transaction carries: the first ``m``."""
    signatures = tuple(signatures)
    return tuple(counting_keys(group, signatures, i)[: group.m] for i in range(n_inputs))


def timed_out(expires_at: int, now: int) -> bool:
    return now >= expires_at


def settles(expires_at: int, now: int) -> bool:
    """A signer settles the reservation of a request expiring at ``expires_at`` (see above)."""
    return expires_at + SKEW_NS <= now


def expiry_acceptable(expires_at: int, now: int) -> bool:
    return now - SKEW_NS <= expires_at <= now + MAX_LIFETIME_NS + SKEW_NS


def signer_refusal(
    event_hash_ok: bool,
    template_ok: bool,
    validation_ok: bool,
    expires_at: int,
    now: int,
    policy_refusal: str | None,
    already_processed: bool,
) -> str | None:
    """None if a signer accepts the proposal, else the reason of the first failing check."""
    if not event_hash_ok:
        return "event hash mismatch"
    if not template_ok:
        return "template hash mismatch"
    if not validation_ok:
        return "validation hash mismatch"
    if not expiry_acceptable(expires_at, now):
        return "expires_at outside the accepted window"
    if policy_refusal is not None:
        return policy_refusal
    if already_processed:
        return "event already processed"
    return None
