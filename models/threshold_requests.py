"""A threshold-signing request's life at its coordinator (SPEC.md section 2, "Igra").

The group, the states and their transitions, which signatures count, when a request may be
finalized and the clocks are ``models.threshold``; this model follows one request from its
proposal to its end, and the node that pays it.

Answers. An answer about another event or template than the request's (its event hash or
template hash is not the request's) changes nothing. A signer's answer to a request that is
alive and has not timed out is kept: its
signatures whoever sent them (counting decides later which count), and its accept or refusal
if the sender is a member answering for the first time. ``m`` accepts approve a ``Pending``
request; more than ``n - m`` refusals reject it. Answers to any other request change nothing.

Submission. The coordinator submits a live request, before it times out, as soon as every
input has ``m`` counting keys: it decides (the request is ``Approved`` by its signatures),
then the node takes the transaction (``Finalized``) or refuses it (``Aborted``). Its next
look at the clock expires a live request that has timed out.

Crashes. A coordinator records its decision to submit, with the signatures chosen, then that
it is handing the transaction over, then submits. A coordinator back from a crash between its
decision and the record of the outcome settles the request (``recover``), at once or, if it
stayed down, when it comes back: the payment of a transaction the node took before the crash
is recorded whenever that is; a transaction the node holds for another request with the same
template aborts it (a double spend); otherwise the request is submitted then if it has not
timed out, and expires if it has. The volume counts on the day of the decision, whenever it is
recorded. One exception, a limit of the implementation (it asks the node only whether it holds
a transaction id): a coordinator that crashed after recording the hand-over, and finds the
same transaction paid for another coordinator's request, cannot tell it from its own
submission and records it as its payment (``claims``): one payment recorded by two requests.

Queries. Asked about a request it never opened, a coordinator has no state, no proposal, no
signers of a payment and no abort reason for it. An aborted request's reason names the double
spend: the node's refusal (its first input already spent, and that coin), or, found by
recovery, that the node holds the transaction and this coordinator never handed it over, or
which of its own requests already paid it; a request not aborted has none.

Payment. The node (the ledger) accepts a transaction only if none of its inputs is spent;
so an event is never paid twice as long as no two requests for it reach ``m`` signers,
which the signers' replay rule guarantees when ``m > n / 2``. The model keeps the set of
paid events and the spent outpoints; paying a paid event is an error "event E paid twice".
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from models.threshold import (
    ABORTED,
    ALIVE,
    APPROVED,
    EXPIRED,
    FINALIZED,
    PENDING,
    REJECTED,
    Group,
    PartialSignature,
    ready_to_finalize,
    timed_out,
    transition,
)


@attrs.frozen
class Request:
    """What the coordinator knows of one request."""

    request_id: str
    event_id: str
    n_inputs: int
    expires_at: int
    state: str = PENDING
    accepted: frozenset[str] = frozenset()
    refused: frozenset[str] = frozenset()
    signatures: frozenset[PartialSignature] = frozenset()


def on_answer(
    group: Group, request: Request, sender: str, accept: bool, signatures: Iterable[PartialSignature], now: int,
    about_this: bool = True,
) -> Request:
    """A signer's answer reaches the coordinator (before any submission is tried).

    Answers about another event or template (``about_this`` false), and answers to a request
    that is no longer alive, or that has timed out, change nothing.
    Only members' accepts and refusals count, each member once (its first answer);
    signatures are kept whoever sent them (counting decides later which count)."""
    if not about_this or request.state not in ALIVE or timed_out(request.expires_at, now):
        return request
    accepted, refused = request.accepted, request.refused
    if sender in group.keys and sender not in accepted | refused:
        accepted, refused = (accepted | {sender}, refused) if accept else (accepted, refused | {sender})
    state = request.state
    if state == PENDING and len(accepted) >= group.m:
        state = transition(state, APPROVED)
    elif state == PENDING and len(refused) > group.n - group.m:
        state = transition(state, REJECTED)
    return attrs.evolve(request, state=state, accepted=accepted, refused=refused, signatures=request.signatures | set(signatures))


def wants_submission(group: Group, request: Request, now: int) -> bool:
    """The coordinator submits a live request, before it times out, as soon as it is ready."""
    return (
        request.state in ALIVE
        and not timed_out(request.expires_at, now)
        and ready_to_finalize(group, request.n_inputs, request.signatures)
    )


def decide(request: Request) -> Request:
    """A request ready to finalize is approved by its signatures: the decision to submit it."""
    return attrs.evolve(request, state=transition(request.state, APPROVED))


def after_submission(request: Request, accepted_by_node: bool) -> Request:
    """A request ready to finalize is decided, then submitted."""
    return attrs.evolve(request, state=transition(decide(request).state, FINALIZED if accepted_by_node else ABORTED))


def on_tick(request: Request, now: int) -> Request:
    """The coordinator looks at the clock: a live request past its expiry expires."""
    if request.state in ALIVE and timed_out(request.expires_at, now):
        return attrs.evolve(request, state=transition(request.state, EXPIRED))
    return request


def recover(request: Request, submitted: bool, paid_elsewhere: bool, accepted_now: bool, now: int,
            claims: bool = False) -> Request:
    """A coordinator back from a crash between its decision to submit ``request`` and the
    record of the outcome: ``submitted``, the node took the transaction before the crash;
    ``paid_elsewhere``, the node holds the same transaction for another request;
    ``accepted_now``, the node would take it now; ``claims``, that other request is another
    coordinator's and this one had recorded the hand-over (the limit in the module's text)."""
    if submitted or claims:
        return after_submission(request, True)
    if paid_elsewhere:
        return after_submission(request, False)
    if not timed_out(request.expires_at, now):
        return after_submission(request, accepted_now)
    return attrs.evolve(request, state=transition(request.state, EXPIRED))


@attrs.frozen
class Ledger:
    """The node: which outpoints are spent and which events are paid."""

    spent: frozenset = frozenset()
    paid: frozenset[str] = frozenset()


def ledger_accepts(ledger: Ledger, inputs: Iterable) -> bool:
    """The node accepts a transaction none of whose inputs is spent."""
    return not set(inputs) & ledger.spent


def pay(ledger: Ledger, event_id: str, inputs: Iterable) -> Ledger:
    """Record the payment of ``event_id`` by a transaction spending ``inputs``."""
    if event_id in ledger.paid:
        raise AssertionError(f"event {event_id} paid twice")
    return Ledger(ledger.spent | set(inputs), ledger.paid | {event_id})
