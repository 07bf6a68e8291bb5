"""A signer's daily-volume spending policy, enforced with durable state in SQLite.

``PolicyEnforcer(policy, clock, store)`` checks spending requests against a ``Policy`` and
keeps the volume ledger and every request's reservation in a SQLite database (``store`` is
a file path, or ``":memory:"`` for a throw-away enforcer). Every operation is one
transaction, so a crash never leaves half a reservation, and a restart -- a new enforcer on
the same file -- loses nothing, even with a new policy.

Use from a threshold signer: call the enforcer *before* signing, and tell it how the
session ended::

    enforcer = PolicyEnforcer(Policy(max_daily_volume=100 * 10**8), clock, "signer.db")
    decision = enforcer.submit(request_id, destination, amount_sompi, reason, sender_timestamp_ns=event_ts)
    if not decision.approved:
        ack_reject(decision.message)          # e.g. "daily volume exceeded: current=C, limit=L"
    else:
        sign(...)                             # the amount is now reserved for today
    ...
    enforcer.finalize(request_id)             # transaction submitted: the reservation stays
    enforcer.release(request_id, "expired")   # or "rejected": the reservation is given back

Rules (SPEC.md section 3): checks in order -- allowlist, minimum, maximum, reason, daily
volume -- with the first failure's message; the volume limit is inclusive; amounts are u64
sompi and sums are exact (never wrapping). The day is the UTC calendar day of the *local*
clock at submission; ``sender_timestamp_ns`` is stored for audit only and never decides the
day. Approval reserves the amount on that day; release gives it back to the same day, even
after midnight. A request id is used once: submitting it again is refused and reserves
nothing. ``release``/``finalize`` raise ``RequestStateError`` for a move the request's state
does not allow; an invalid policy raises ``PolicyError`` when the enforcer is built.

Storage (``implementations.storage``): ``store`` is a path (the enforcer opens its own
``Store`` on it) or a ``Store`` the caller shares with it (a signer keeps its answers and
its reservations in one file). Every operation is one transaction (``BEGIN IMMEDIATE``:
the write lock is taken before the volume is read), so several processes may share one
file and never reserve past the limit together. Called inside the caller's open
transaction, an operation joins it: a signer reserves, checks replay and records its answer
in one commit, so a crash keeps all of it or none. A crash during an operation loses it
whole or keeps it whole; a restart -- a new enforcer on the same file -- finds every
reservation as the last commit left it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from implementations.storage import Store
from models.clock import NS_PER_DAY, Clock

U64_MAX = (1 << 64) - 1
_RELEASES = frozenset({"expired", "rejected"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS daily_volume (
    day      INTEGER PRIMARY KEY,  -- UTC day number of the local clock
    reserved TEXT NOT NULL         -- decimal u64: SQLite integers are signed 64-bit
);
CREATE TABLE IF NOT EXISTS reservations (
    request_id     TEXT PRIMARY KEY,
    day            INTEGER NOT NULL,
    amount         TEXT NOT NULL,
    state          TEXT NOT NULL,    -- approved | denied | finalized | expired | rejected
    submitted_at   INTEGER NOT NULL, -- local clock, ns
    sender_ts      TEXT              -- as claimed by the sender, audit only
);
"""


class PolicyError(ValueError):
    """A policy that cannot be loaded."""


class RequestStateError(ValueError):
    """A release or finalize that the request's state does not allow."""


@dataclass(frozen=True)
class Policy:
    allowed_destinations: frozenset[str] = field(default_factory=frozenset)
    min_amount: int = 0
    max_amount: int = U64_MAX
    max_daily_volume: int = U64_MAX
    require_reason: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed_destinations", frozenset(self.allowed_destinations))
        for name in ("min_amount", "max_amount", "max_daily_volume"):
            value = getattr(self, name)
            if type(value) is not int or value < 0 or value > U64_MAX:
                raise PolicyError(f"invalid policy: {name}={value!r} is not an unsigned 64-bit amount")
        if self.min_amount > self.max_amount:
            raise PolicyError(f"invalid policy: min_amount {self.min_amount} > max_amount {self.max_amount}")


@dataclass(frozen=True)
class Decision:
    approved: bool
    message: str


class PolicyEnforcer:
    def __init__(self, policy: Policy, clock: Clock, store: str | Store = ":memory:") -> None:
        if not isinstance(policy, Policy):
            raise PolicyError(f"expected a Policy, got {type(policy).__name__}")
        self.policy = policy
        self.clock = clock
        self._owns_store = not isinstance(store, Store)
        self.store = Store(store) if self._owns_store else store
        self.store.declare(_SCHEMA)

    def close(self) -> None:
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> PolicyEnforcer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _today(self) -> int:
        return self.clock.now() // NS_PER_DAY

    def _reserved(self, day: int) -> int:
        row = self.store.execute("SELECT reserved FROM daily_volume WHERE day = ?", (day,)).fetchone()
        return int(row[0]) if row else 0

    def _set_reserved(self, day: int, total: int) -> None:
        self.store.execute(
            "INSERT INTO daily_volume (day, reserved) VALUES (?, ?) ON CONFLICT(day) DO UPDATE SET reserved = excluded.reserved",
            (day, str(total)),
        )

    def volume_today(self) -> int:
        """The volume reserved on the current UTC day."""
        return self._reserved(self._today())

    def volume_on(self, day: int) -> int:
        """The volume reserved on UTC day ``day`` (``now_ns // NS_PER_DAY``)."""
        return self._reserved(day)

    def state_of(self, request_id: str) -> str | None:
        """The request's state (approved, denied, finalized, expired, rejected), None if unknown."""
        row = self.store.execute("SELECT state FROM reservations WHERE request_id = ?", (request_id,)).fetchone()
        return row[0] if row else None

    def approved(self) -> list[str]:
        """The requests whose reservation is live (approved, not yet finalized or released)."""
        return [r[0] for r in self.store.execute("SELECT request_id FROM reservations WHERE state = 'approved' ORDER BY 1")]

    def _refusal(self, destination: str, amount: int, reason: str | None, current: int) -> str | None:
        p = self.policy
        if p.allowed_destinations and destination not in p.allowed_destinations:
            return f"destination not allowed: {destination}"
        if amount < p.min_amount:
            return f"amount {amount} below minimum {p.min_amount}"
        if amount > p.max_amount:
            return f"amount {amount} exceeds maximum {p.max_amount}"
        if p.require_reason and not reason:
            return "reason metadata required"
        if amount > p.max_daily_volume - current:  # no sum, so nothing to overflow
            return f"daily volume exceeded: current={current}, limit={p.max_daily_volume}"
        return None

    def submit(
        self,
        request_id: str,
        destination: str,
        amount: int,
        reason: str | None = None,
        sender_timestamp_ns: int | None = None,
    ) -> Decision:
        """Check a request; if approved, reserve its amount for today (local clock)."""
        if type(amount) is not int or not 0 <= amount <= U64_MAX:
            raise ValueError(f"amount must be an unsigned 64-bit number of sompi, got {amount!r}")
        now = self.clock.now()
        day = now // NS_PER_DAY
        sender_ts = None if sender_timestamp_ns is None else str(sender_timestamp_ns)
        with self.store.transaction(join=True):
            if self.store.execute("SELECT 1 FROM reservations WHERE request_id = ?", (request_id,)).fetchone():
                return Decision(False, f"request {request_id} already submitted")
            current = self._reserved(day)
            refusal = self._refusal(destination, amount, reason, current)
            self.store.execute(
                "INSERT INTO reservations VALUES (?, ?, ?, ?, ?, ?)",
                (request_id, day, str(amount), "denied" if refusal else "approved", now, sender_ts),
            )
            if refusal:
                return Decision(False, refusal)
            self._set_reserved(day, current + amount)
            return Decision(True, "approved")

    def _load(self, request_id: str, target: str) -> tuple[int, int, bool]:
        row = self.store.execute("SELECT day, amount, state FROM reservations WHERE request_id = ?", (request_id,)).fetchone()
        if row is None:
            raise RequestStateError(f"unknown request: {request_id}")
        day, amount, state = row
        if state == target:
            return day, int(amount), False
        if state != "approved":
            raise RequestStateError(f"invalid state transition: {state} -> {target}")
        return day, int(amount), True

    def release(self, request_id: str, why: str) -> None:
        """The approved request expired or was rejected: give its reservation back to its day."""
        if why not in _RELEASES:
            raise ValueError(f"a release is 'expired' or 'rejected', not {why!r}")
        with self.store.transaction(join=True):
            day, amount, changes = self._load(request_id, why)
            if changes:
                self._set_reserved(day, self._reserved(day) - amount)
                self.store.execute("UPDATE reservations SET state = ? WHERE request_id = ?", (why, request_id))

    def finalize(self, request_id: str) -> None:
        """The approved request's transaction was submitted: its reservation stays."""
        with self.store.transaction(join=True):
            _, _, changes = self._load(request_id, "finalized")
            if changes:
                self.store.execute("UPDATE reservations SET state = 'finalized' WHERE request_id = ?", (request_id,))
