"""The SQLite-backed ``PolicyEnforcer`` as the policy machine sees it.

``make_replica(replica_id, clock)`` returns an *opener*: ``opener.open(policy, path)`` builds
an enforcer with the policy given as plain fields (the machine's JSON dict) on the database
file ``path``, reading time from ``clock``; the allowlist is a list the opener empties once
the enforcer is built (a caller's list that changes later must not change the policy).
Opening the same path again is a restart. The enforcer offers
``submit(request_id, destination, amount, reason, sender_timestamp_ns)`` returning an object
with ``approved`` and ``message``, ``release(request_id, why)``, ``finalize(request_id)``,
``volume_today()``, ``volume_on(day)``, ``state_of(request_id)``, ``approved()`` (the
request ids whose reservation is live, sorted) and ``close()``; refusals (an invalid policy,
a move the request's state does not allow, a caller's bad argument) raise ``ValueError``
(with the model's message where the model has one). Its ``store`` is the
``implementations.storage.Store`` its writes go through: the machine crashes it, interleaves
a second enforcer there (``harness.faults``) and runs operations inside a signer's own
transaction on it. ``opener.open_as_given(policy, path)`` builds an enforcer on ``policy``
exactly as given (a caller's mistake: plain fields, not a ``Policy``);
``opener.sender_claims(enforcer)`` reads the audit record: each recorded request's sender
timestamp.
"""

from __future__ import annotations

from typing import Any

from harness import Implementation, register
from implementations.policy import Policy, PolicyEnforcer
from models.clock import Clock


class SqlitePolicyOpener:
    enforcer_class: type[PolicyEnforcer] = PolicyEnforcer

    def __init__(self, clock: Clock, enforcer_class: type[PolicyEnforcer] | None = None) -> None:
        self.clock = clock
        if enforcer_class is not None:
            self.enforcer_class = enforcer_class

    def open(self, policy: dict[str, Any], path: str) -> PolicyEnforcer:
        allowlist = list(policy.get("allowed_destinations", ()))
        enforcer = self.enforcer_class(Policy(**{**policy, "allowed_destinations": allowlist}), self.clock, path)
        allowlist.clear()  # the caller's list changes after loading: a Policy is a value, it keeps its own copy
        return enforcer

    def open_as_given(self, policy: Any, path: str) -> PolicyEnforcer:
        return self.enforcer_class(policy, self.clock, path)

    @staticmethod
    def sender_claims(enforcer: PolicyEnforcer) -> dict[str, int | str | None]:
        """Request id -> the sender's timestamp as the reservations table keeps it (decimal
        text, read back as an int; anything else shown as stored)."""
        rows = enforcer.store.execute("SELECT request_id, sender_ts FROM reservations ORDER BY 1")
        return {rid: int(ts) if isinstance(ts, str) and ts.isdigit() else ts for rid, ts in rows}


def implementation_with(enforcer_class: type[PolicyEnforcer], name: str) -> Implementation:
    """An implementation of the policy machine around ``enforcer_class`` (for tests of buggy variants)."""
    return Implementation(
        machine="policy",
        name=name,
        make_replica=lambda replica_id, clock: SqlitePolicyOpener(clock, enforcer_class),
        level="exact",
        description=f"{enforcer_class.__name__} on SQLite",
    )


SQLITE = register(
    Implementation(
        machine="policy",
        name="sqlite",
        make_replica=lambda replica_id, clock: SqlitePolicyOpener(clock),
        level="exact",
        description="implementations.policy.PolicyEnforcer, volume ledger in a SQLite file",
    )
)
