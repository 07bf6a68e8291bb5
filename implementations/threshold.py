"""m-of-n threshold signing of bridge events: sans-I/O signer and coordinator cores.

A group is ``n`` Ed25519 member keys in a fixed order and a threshold ``m``. Any member
node can coordinate: it turns an event into a request, builds the deterministic template
(``implementations.pskt``), and proposes ``{request_id, event, template, validation_hash,
expires_at}`` to every member. Each signer rebuilds the template from *its own* node's view
of the UTXOs and checks, in order (the first failure is the refusal's reason):

1. the event hash ("event hash mismatch");
2. the template hash of its rebuilt template ("template hash mismatch");
3. the validation hash ("validation hash mismatch");
4. ``expires_at`` within ``[now - 30 s, now + 1 h + 30 s]`` ("expires_at outside the accepted window");
5. the policy (``implementations.policy.PolicyEnforcer``: approval reserves today's volume);
6. replay ("event already processed": it signed this event in another request).

It answers accept (with an Ed25519 signature over every input's sighash) or reject with the
reason. A signer never signs two templates for one event; a repeat of a request it already
answered gets the same answer again. Once no coordinator can submit a request it approved
any more -- at ``expires_at`` plus the 30 s of clock skew, since a coordinator submits only
before ``expires_at`` by its own clock -- its tick settles the reservation: kept
(``finalize``) if the transaction is on its node, otherwise given back
(``release(..., "expired")``).

The coordinator keeps the valid signatures of members (at most one per request, input and
member: nothing a non-member sends is stored), and counts, per input, the *distinct member*
keys whose signature is valid over that input's sighash. A request is ``Approved`` once
``m`` members accepted, ``Rejected`` once more than ``n - m`` refused. A live request whose
every input has ``m`` counting keys, before ``expires_at``, is approved (also when the
signatures were relayed by someone else before the members' accepts arrived) and finalized:
the first ``m`` keys in group order sign each input, the transaction is submitted, and only
when the node accepts it is the volume recorded (table ``payments``) and the request
``Finalized``; a refusal makes it ``Aborted``. A live request past ``expires_at`` becomes
``Expired`` at the next ``tick``; nothing of it is ever submitted.

Both cores are sans-I/O: ``handle(data, now)`` and ``tick(now)`` return the envelopes to
send as ``(recipient_public_key, bytes)`` pairs; they never sleep or read a clock. Bytes
are decoded and every transport check (``implementations.threshold_envelope``) is done
before anything changes; a refused envelope raises ``EnvelopeRejected`` / ``DecodeError``
and changes nothing. Every integer that is stored is checked at decode against what its
column holds (``expires_at`` at most ``I64_MAX``), and every limit on what a peer may make
a core store is in ``implementations.limits``. The node (UTXOs, submission) is passed in as
an object: see ``Node``.

**Crashes and processes sharing a file.** All state lives in one SQLite file per core,
written through ``implementations.storage.Store``; several processes may run one core on
one file. Each operation decides in its first transaction, reading again inside it
whatever it decides on (the replay cache, "event already processed", the day's volume, a
request's state), so no second process can slip in between a check and its write:

* a signer answers a proposal in one transaction: the envelope's replay record, the
  policy's reservation, "event already processed", the answer and the template signed for
  the event commit together or not at all; its ``tick`` settles every due reservation and
  marks it settled in one transaction, so a crash never leaves a reservation released but
  unsettled, nor approved without an answer;
* a coordinator opens a request in one transaction; when a request becomes ready it records
  the *decision* to submit, with the signatures chosen, in the transaction that records the
  answer; then, in a transaction of its own, that it is *handing the transaction over*
  (``submitting``); then it submits and records the outcome in a third. **Recovery** (every
  ``tick``, and a restarted coordinator ticks first): a decided request whose transaction
  the node holds is ``Finalized`` and its volume recorded once, on the day of the decision,
  if it was being handed over and no other request of this file paid that very
  transaction; otherwise the node's transaction is another request's and this one is
  ``Aborted`` as a double spend. One the node does not hold is handed over again if it has
  not expired, else ``Expired``. So a crash between the submission and its record neither
  loses the payment nor counts it twice, and a crash before the hand-over never claims
  another coordinator's payment.

A limit of this recovery: the node is asked only whether it holds a transaction id. A
request of one coordinator and another coordinator's request with a byte for byte identical
template (one event sent to both, or two events alike), of which the first crashed while
handing its transaction over (after that record, before the record of the outcome), cannot
be told apart: the restarted one counts the transaction as its own, so two coordinators
record one payment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import nacl.signing
from blake3 import blake3

from implementations import wire
from implementations.ledger import LedgerError
from implementations.limits import (
    I64_MAX,
    MAX_ANSWER_SIGNATURES,
    MAX_LIVE_REQUESTS_PER_COORDINATOR,
    MAX_REASON_CHARS,
)
from implementations.policy import Policy, PolicyEnforcer
from implementations.pskt import (
    Event,
    FeeMode,
    SignedTransaction,
    Template,
    TemplateRefused,
    Utxo,
    build_template,
    decode_event,
    decode_template,
    encode_event,
    encode_template,
    event_hash,
    hashes_equal,
    sighashes,
    tx_template_hash,
    validation_hash,
    verify_signature,
)
from implementations.storage import Store
from implementations.threshold_envelope import (
    EnvelopeRejected,
    ReplayCache,
    authenticate,
    decode_envelope,
    expect_session_id,
    seal,
)
from implementations.wire import DecodeError

NS_PER_SECOND = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_SECOND
SKEW_NS = 30 * NS_PER_SECOND
MAX_LIFETIME_NS = 3600 * NS_PER_SECOND
PROPOSAL, ANSWER = "igra.proposal", "igra.answer"

Outgoing = list[tuple[bytes, bytes]]


class EventRefused(ValueError):
    """A coordinator will not open a request for this event; the message says why."""


class Node(Protocol):
    """What a core needs of its Kaspa node: the group's UTXOs (in whatever order the node
    lists them), whether a transaction is on the ledger, and submission (raises ``LedgerError``)."""

    def utxos(self) -> list[Utxo]: ...
    def has_transaction(self, txid: bytes) -> bool: ...
    def submit(self, tx: SignedTransaction) -> bytes: ...


@dataclass(frozen=True)
class GroupConfig:
    members: tuple[bytes, ...]  # 32-byte Ed25519 public keys, in group key order
    m: int
    change_address: str
    fee: int
    fee_mode: FeeMode
    session_timeout_ns: int = 60 * NS_PER_SECOND
    group_id: bytes = field(default=b"")

    def __post_init__(self) -> None:
        if len(set(self.members)) != len(self.members) or not 1 <= self.m <= len(self.members):
            raise ValueError(f"a group needs distinct keys and 1 <= m <= n, got m={self.m}, n={len(self.members)}")
        if not self.group_id:
            object.__setattr__(self, "group_id", blake3(b"igra:group-id:v1:" + self.change_address.encode()).digest())


@dataclass(frozen=True)
class Proposal:
    request_id: str
    event: Event
    event_hash: bytes
    template: Template
    template_bytes: bytes
    template_hash: bytes
    validation_hash: bytes
    expires_at: int
    round: int = 0


@dataclass(frozen=True)
class Answer:
    request_id: str
    event_hash: bytes
    template_hash: bytes
    accept: bool
    reason: str
    signatures: tuple[tuple[int, bytes, bytes], ...]  # (input index, public key, signature)


def encode_proposal(p: Proposal) -> bytes:
    body = [p.request_id, encode_event(p.event), p.event_hash, p.template_bytes, p.template_hash, p.validation_hash,
            p.expires_at, p.round]
    return wire.encode(PROPOSAL, 1, body)


def decode_proposal(data: bytes) -> Proposal:
    b = wire.expect_list(wire.decode(data, PROPOSAL, 1), "proposal", length=8)
    template_bytes = wire.expect_bytes(b[3], "proposal.template")
    return Proposal(
        request_id=expect_session_id(b[0], "proposal.request_id"),
        event=decode_event(wire.expect_bytes(b[1], "proposal.event")),
        event_hash=wire.expect_bytes(b[2], "proposal.event_hash", 32),
        template=decode_template(template_bytes),
        template_bytes=template_bytes,
        template_hash=wire.expect_bytes(b[4], "proposal.template_hash", 32),
        validation_hash=wire.expect_bytes(b[5], "proposal.validation_hash", 32),
        expires_at=wire.expect_int(b[6], "proposal.expires_at", 0, I64_MAX),  # stored as an SQLite INTEGER
        round=wire.expect_int(b[7], "proposal.round", 0, 2**32 - 1),
    )


def encode_answer(a: Answer) -> bytes:
    sigs = [[i, k, s] for i, k, s in a.signatures]
    return wire.encode(ANSWER, 1, [a.request_id, a.event_hash, a.template_hash, a.accept, a.reason, sigs])


def decode_answer(data: bytes) -> Answer:
    b = wire.expect_list(wire.decode(data, ANSWER, 1), "answer", length=6)
    listed = wire.expect_list(b[5], "answer.signatures")
    if len(listed) > MAX_ANSWER_SIGNATURES:
        raise DecodeError(f"answer.signatures: {len(listed)} signatures exceeds MAX_ANSWER_SIGNATURES={MAX_ANSWER_SIGNATURES}")
    reason = wire.expect_str(b[4], "answer.reason")
    if len(reason) > MAX_REASON_CHARS:
        raise DecodeError(f"answer.reason: {len(reason)} characters exceeds MAX_REASON_CHARS={MAX_REASON_CHARS}")
    sigs = []
    for n, raw in enumerate(listed):
        item = wire.expect_list(raw, f"answer.signatures[{n}]", length=3)
        sigs.append(
            (
                wire.expect_int(item[0], f"answer.signatures[{n}].input", 0, 2**32 - 1),
                wire.expect_bytes(item[1], f"answer.signatures[{n}].key", 32),
                wire.expect_bytes(item[2], f"answer.signatures[{n}].signature", 64),
            )
        )
    return Answer(
        request_id=expect_session_id(b[0], "answer.request_id"),
        event_hash=wire.expect_bytes(b[1], "answer.event_hash", 32),
        template_hash=wire.expect_bytes(b[2], "answer.template_hash", 32),
        accept=wire.expect_bool(b[3], "answer.accept"),
        reason=reason,
        signatures=tuple(sigs),
    )


class _GivenTime:
    """The ``Clock`` handed to the policy enforcer: the ``now`` of the call being handled."""

    def __init__(self) -> None:
        self.value = 0

    def now(self) -> int:
        return self.value


class _Core:
    """What signer and coordinator share: a key, the group, a SQLite file, the replay cache."""

    def __init__(self, seed: bytes, group: GroupConfig, node: Node, store: str) -> None:
        self.key = nacl.signing.SigningKey(seed)
        self.public_key = bytes(self.key.verify_key)
        self.group = group
        self.node = node
        self.path = store
        self.store = Store(store)
        self.replay = ReplayCache(self.store)

    def close(self) -> None:
        self.store.close()

    def _open(self, data: bytes):
        """Decode an envelope and make transport checks 1-3 (changes nothing); returns it.
        Check 4, replay, is ``self.replay.admit`` inside the transaction that acts on it."""
        env = decode_envelope(data)
        authenticate(env, self.group.group_id)
        return env

    def _send(self, to: bytes, session_id: str, payload: bytes, now: int) -> tuple[bytes, bytes]:
        return (to, seal(self.key, self.group.group_id, session_id, self.replay.next_seq(session_id), now, payload))


SIGNER_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (          -- every proposal answered, with the answer given
    request_id    TEXT PRIMARY KEY,
    coordinator   BLOB NOT NULL,
    event_hash    BLOB NOT NULL,
    template      BLOB,                       -- the template this signer rebuilt and signed
    answer        BLOB NOT NULL,              -- the encoded answer payload, re-sent on repeats
    approved      INTEGER NOT NULL,           -- the policy reserved volume for it
    expires_at    INTEGER NOT NULL,
    settled       INTEGER NOT NULL DEFAULT 0  -- the reservation was finalized or released
);
CREATE INDEX IF NOT EXISTS answers_by_coordinator ON answers (coordinator, expires_at);
CREATE INDEX IF NOT EXISTS answers_due ON answers (settled, expires_at);
CREATE TABLE IF NOT EXISTS signed_events (    -- processed events: the one template signed per event
    event_hash    BLOB PRIMARY KEY,
    template_hash BLOB NOT NULL,
    request_id    TEXT NOT NULL
);
"""


class Signer(_Core):
    """A member's signer: ``handle`` proposals, ``tick`` to settle expired reservations."""

    def __init__(self, seed: bytes, group: GroupConfig, node: Node, store: str, policy: Policy) -> None:
        super().__init__(seed, group, node, store)
        self.store.declare(SIGNER_SCHEMA)
        self._time = _GivenTime()
        self.policy = PolicyEnforcer(policy, self._time, self.store)

    def handle(self, data: bytes, now: int) -> Outgoing:
        env = self._open(data)
        if env.sender not in self.group.members:
            raise EnvelopeRejected("sender is not a member", f"{env.sender.hex()[:16]} may not propose")
        proposal = decode_proposal(env.payload)
        if proposal.request_id != env.session_id:
            raise DecodeError(f"proposal: request id {proposal.request_id!r} is not the envelope's session {env.session_id!r}")
        refusal, mine = self._refusal(proposal, now)  # checks 1-4 need only the node: outside the lock
        self._time.value = now
        with self.store.transaction():  # the decision: one commit, or nothing
            self.replay.admit(env.replay_key, now)
            row = self.store.execute("SELECT answer FROM answers WHERE request_id = ?", (proposal.request_id,)).fetchone()
            payload = row[0] if row else self._decide(env.sender, proposal, refusal, mine, now)
            return [self._send(env.sender, proposal.request_id, payload, now)]

    def _refusal(self, p: Proposal, now: int) -> tuple[str | None, Template | None]:
        """Checks 1-4 (pure): the reason of the first failure, and the locally rebuilt template."""
        if not hashes_equal(event_hash(p.event), p.event_hash):
            return "event hash mismatch", None
        try:
            mine = build_template(p.event, self.node.utxos(), fee=self.group.fee, fee_mode=self.group.fee_mode,
                                  change_address=self.group.change_address, round=p.round)
        except TemplateRefused:
            return "template hash mismatch", None
        proposed_ok = hashes_equal(tx_template_hash(p.template), p.template_hash)
        if not (hashes_equal(tx_template_hash(mine), p.template_hash) and proposed_ok):
            return "template hash mismatch", None
        if not hashes_equal(validation_hash(p.event_hash, mine), p.validation_hash):
            return "validation hash mismatch", None
        if not now - SKEW_NS <= p.expires_at <= now + MAX_LIFETIME_NS + SKEW_NS:
            return "expires_at outside the accepted window", None
        return None, mine

    def _already_processed(self, p: Proposal) -> bool:
        row = self.store.execute("SELECT request_id FROM signed_events WHERE event_hash = ?", (p.event_hash,)).fetchone()
        return row is not None and row[0] != p.request_id

    def _approve(self, p: Proposal) -> tuple[bool, str]:
        """Check 5: the policy; approval reserves the amount for today."""
        reason = dict(p.event.metadata).get("reason")
        decision = self.policy.submit(p.request_id, p.event.destination, p.event.amount, reason,
                                      sender_timestamp_ns=p.event.timestamp)
        return decision.approved, decision.message

    def _check_peer_bound(self, coordinator: bytes, now: int) -> None:
        (live,) = self.store.execute("SELECT COUNT(*) FROM answers WHERE coordinator = ? AND expires_at > ?",
                                     (coordinator, now)).fetchone()
        if live >= MAX_LIVE_REQUESTS_PER_COORDINATOR:
            raise EnvelopeRejected("peer over its limit", f"{coordinator.hex()[:16]} has {live} live requests here "
                                   f"(MAX_LIVE_REQUESTS_PER_COORDINATOR={MAX_LIVE_REQUESTS_PER_COORDINATOR})")

    def _decide(self, coordinator: bytes, p: Proposal, refusal: str | None, mine: Template | None, now: int) -> bytes:
        """Checks 5 and 6 and the answer, inside the handling transaction."""
        self._check_peer_bound(coordinator, now)
        approved = False
        if refusal is None:
            approved, message = self._approve(p)
            if not approved:
                refusal = message
            elif self._already_processed(p):
                self.policy.release(p.request_id, "rejected")
                approved, refusal = False, "event already processed"
        if refusal is None and mine is not None:
            sigs = tuple((i, self.public_key, self.key.sign(h).signature) for i, h in enumerate(sighashes(mine)))
            answer = Answer(p.request_id, p.event_hash, p.template_hash, True, "", sigs)
        else:
            answer = Answer(p.request_id, p.event_hash, p.template_hash, False, refusal or "", ())
        payload = encode_answer(answer)
        self.store.execute(
            "INSERT INTO answers (request_id, coordinator, event_hash, template, answer, approved, expires_at)"
            " VALUES (?,?,?,?,?,?,?)",
            (p.request_id, coordinator, p.event_hash, encode_template(mine) if answer.accept else None, payload,
             int(approved), p.expires_at),
        )
        if answer.accept:
            self._record_signed(p)
        return payload

    def _record_signed(self, p: Proposal) -> None:
        # a plain INSERT: a second template for one event is an error, never silently ignored
        self.store.execute("INSERT INTO signed_events VALUES (?, ?, ?)", (p.event_hash, p.template_hash, p.request_id))

    def tick(self, now: int) -> Outgoing:
        """Settle the reservation of every approved request due (``expires_at + SKEW_NS <= now``):
        kept if its transaction is on the node, else given back; all in one transaction."""
        self._time.value = now
        with self.store.transaction():
            self.replay.purge(now)
            due = self.store.execute(
                "SELECT request_id, template FROM answers WHERE approved = 1 AND settled = 0 AND expires_at <= ?",
                (now - SKEW_NS,),
            ).fetchall()
            for request_id, template in due:
                self._settle(request_id, template)
        return []

    def _settle(self, request_id: str, template: bytes | None) -> None:
        # Only a live reservation is moved. One settled already (say, by an operator's own
        # call to the enforcer on this file) is marked settled as it is: tick never raises.
        if self.policy.state_of(request_id) == "approved":
            if template is not None and self.node.has_transaction(blake3(template).digest()):
                self.policy.finalize(request_id)
            else:
                self.policy.release(request_id, "expired")
        self.store.execute("UPDATE answers SET settled = 1 WHERE request_id = ?", (request_id,))

    # --- queries (for operators and tests) -------------------------------------------

    def signed_template(self, request_id: str) -> bytes | None:
        """The template bytes this signer rebuilt and signed for ``request_id`` (None if it did not sign)."""
        row = self.store.execute("SELECT template FROM answers WHERE request_id = ?", (request_id,)).fetchone()
        return row[0] if row else None

    def volume_on(self, day: int) -> int:
        return self.policy._reserved(day)

    def live_reservations(self) -> list[str]:
        """The requests whose reservation is live (approved by the policy, not yet settled)."""
        return self.policy.approved()

    def signed_templates(self) -> dict[bytes, set[bytes]]:
        """Per event hash, the hashes of the templates this signer signed for it (one, ever)."""
        signed: dict[bytes, set[bytes]] = {}
        for event, template in self.store.execute("SELECT event_hash, template FROM answers WHERE template IS NOT NULL"):
            signed.setdefault(event, set()).add(blake3(template).digest())
        return signed


COORDINATOR_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    request_id    TEXT PRIMARY KEY,
    seq           INTEGER NOT NULL,
    event_hash    BLOB NOT NULL,
    proposal      BLOB NOT NULL,             -- the encoded proposal payload
    n_inputs      INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    state         TEXT NOT NULL,             -- Pending | Approved | Rejected | Expired | Finalized | Aborted
    final_tx_id   BLOB,
    abort_reason  TEXT,
    decided_at    INTEGER,                   -- when the submission was decided (NULL: not decided, or carried out)
    submission    BLOB,                      -- the decided signatures: per input, (key, signature) pairs
    submitting    INTEGER NOT NULL DEFAULT 0 -- 1 once it is being handed to the node (committed before the submission)
);
CREATE INDEX IF NOT EXISTS requests_by_event ON requests (event_hash, state);
CREATE INDEX IF NOT EXISTS requests_decided ON requests (decided_at);
CREATE TABLE IF NOT EXISTS acks (             -- members' first answers
    request_id    TEXT NOT NULL,
    member        BLOB NOT NULL,
    accept        INTEGER NOT NULL,
    reason        TEXT NOT NULL,
    PRIMARY KEY (request_id, member)
);
CREATE TABLE IF NOT EXISTS partial_signatures (   -- valid member signatures, one per (request, input, member)
    request_id    TEXT NOT NULL,
    input_index   INTEGER NOT NULL,
    public_key    BLOB NOT NULL,
    signature     BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS partial_signatures_by_request ON partial_signatures (request_id, input_index, public_key);
CREATE TABLE IF NOT EXISTS payments (          -- the volume, recorded once the node accepted the transaction
    request_id    TEXT PRIMARY KEY,
    event_hash    BLOB NOT NULL,
    amount        TEXT NOT NULL,
    day           INTEGER NOT NULL,
    txid          BLOB NOT NULL UNIQUE,      -- a transaction is paid by one request, once
    signers       BLOB NOT NULL              -- per input, the keys whose signatures were used
);
"""

ALIVE = ("Pending", "Approved")


class Coordinator(_Core):
    """A member node's coordinator: ``submit_event``, ``handle`` answers, ``tick`` for timeouts
    and to finish submissions a crash interrupted (a restarted coordinator ticks first)."""

    def __init__(self, seed: bytes, group: GroupConfig, node: Node, store: str) -> None:
        super().__init__(seed, group, node, store)
        self.store.declare(COORDINATOR_SCHEMA)
        self.signatures_checked = 0  # this process's signature verifications (metrics; the cost of answers)

    def submit_event(self, event: Event, now: int) -> tuple[str, Outgoing]:
        """Open a request for ``event`` and propose it to every member.

        Raises ``EventRefused`` if this coordinator has a live or finalized request for the
        event, and ``TemplateRefused`` if no template can be built."""
        the_hash = event_hash(event)
        g = self.group
        with self.store.transaction():
            busy = self.store.execute(
                "SELECT request_id, state FROM requests WHERE event_hash = ? AND state IN ('Pending', 'Approved', 'Finalized')",
                (the_hash,),
            ).fetchone()
            if busy:
                raise EventRefused(f"event already processed: request {busy[0]} is {busy[1]}")
            template = build_template(event, self.node.utxos(), fee=g.fee, fee_mode=g.fee_mode,
                                      change_address=g.change_address)
            seq = self.store.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM requests").fetchone()[0]
            request_id = f"{self.public_key.hex()[:12]}-{seq}"
            template_bytes = encode_template(template)
            proposal = Proposal(request_id, event, the_hash, template, template_bytes, blake3(template_bytes).digest(),
                                validation_hash(the_hash, template), now + g.session_timeout_ns)
            payload = encode_proposal(proposal)
            self.store.execute(
                "INSERT INTO requests (request_id, seq, event_hash, proposal, n_inputs, expires_at, state)"
                " VALUES (?,?,?,?,?,?,?)",
                (request_id, seq, the_hash, payload, len(template.inputs), proposal.expires_at, "Pending"),
            )
            return request_id, [self._send(member, request_id, payload, now) for member in g.members]

    def _request(self, request_id: str):
        return self.store.execute(
            "SELECT proposal, n_inputs, expires_at, state, decided_at FROM requests WHERE request_id = ?", (request_id,)
        ).fetchone()

    def _counts(self, key: bytes) -> bool:
        """Whether signatures by ``key`` may count (and so are worth checking and storing)."""
        return key in self.group.members

    def _fresh_signatures(self, request_id: str, answer: Answer, hashes: tuple[bytes, ...]) -> list[tuple[int, bytes, bytes]]:
        """The answer's valid signatures not yet stored: by keys that count, on inputs the
        request has, once per (input, key). At most inputs x members signature checks."""
        held = set(self.store.execute("SELECT input_index, public_key FROM partial_signatures WHERE request_id = ?",
                                      (request_id,)).fetchall())
        fresh = []
        for index, key, signature in answer.signatures:
            if index >= len(hashes) or not self._counts(key) or (index, key) in held:
                continue
            held.add((index, key))
            self.signatures_checked += 1
            if verify_signature(key, signature, hashes[index]):
                fresh.append((index, key, signature))
        return fresh

    def _store_signature(self, request_id: str, index: int, key: bytes, signature: bytes) -> None:
        self.store.execute(
            "INSERT INTO partial_signatures SELECT ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM partial_signatures"
            " WHERE request_id = ? AND input_index = ? AND public_key = ?)",
            (request_id, index, key, signature, request_id, index, key),
        )

    def handle(self, data: bytes, now: int) -> Outgoing:
        env = self._open(data)
        answer = decode_answer(env.payload)
        if answer.request_id != env.session_id:
            raise DecodeError(f"answer: request id {answer.request_id!r} is not the envelope's session {env.session_id!r}")
        member = env.sender in self.group.members
        row = self._request(answer.request_id)
        if row is None:
            return []  # not a request of ours: nothing to act on, nothing stored
        proposal = decode_proposal(row[0])
        n_inputs = row[1]
        most = n_inputs * len(self.group.members)
        if len(answer.signatures) > most:
            raise DecodeError(f"answer: {len(answer.signatures)} signatures for {n_inputs} inputs and "
                              f"{len(self.group.members)} members (at most {most})")
        about_this = hashes_equal(answer.template_hash, proposal.template_hash) and hashes_equal(answer.event_hash,
                                                                                               proposal.event_hash)
        fresh = self._fresh_signatures(answer.request_id, answer, sighashes(proposal.template)) if about_this else []
        if not member and not fresh:
            return []  # a non-member's envelope leaves no row (it is never remembered either)
        with self.store.transaction():
            if member:
                self.replay.admit(env.replay_key, now)
            _, _, expires_at, state, decided_at = self._request(answer.request_id)
            if state not in ALIVE or decided_at is not None or now >= expires_at or not about_this:
                # too late (finalized, or decided: its signatures are chosen, whoever records the
                # outcome), or an answer about another event or template: nothing of it counts
                return []
            if member:
                self.store.execute("INSERT OR IGNORE INTO acks VALUES (?, ?, ?, ?)",
                                   (answer.request_id, env.sender, int(answer.accept), answer.reason))
            for index, key, signature in fresh:
                self._store_signature(answer.request_id, index, key, signature)
            state = self._after_answers(answer.request_id, state)
            decided = state in ALIVE and self._decide_submission(answer.request_id, n_inputs, now)
        if decided:  # signatures decide: submit as soon as every input has m counting keys
            self._carry_out(answer.request_id, now)
        return []

    def _after_answers(self, request_id: str, state: str) -> str:
        accepts, refusals = self.store.execute(
            "SELECT COALESCE(SUM(accept), 0), COALESCE(SUM(1 - accept), 0) FROM acks WHERE request_id = ?", (request_id,)
        ).fetchone()
        n, m = len(self.group.members), self.group.m
        if state == "Pending" and accepts >= m:
            state = "Approved"
        elif state == "Pending" and refusals > n - m:
            state = "Rejected"
        self.store.execute("UPDATE requests SET state = ? WHERE request_id = ?", (state, request_id))
        return state

    def counting_keys(self, request_id: str, input_index: int) -> list[bytes]:
        """The distinct member keys with a valid signature on the input, in group key order."""
        rows = self.store.execute(
            "SELECT DISTINCT public_key FROM partial_signatures WHERE request_id = ? AND input_index = ?",
            (request_id, input_index),
        ).fetchall()
        signed = {r[0] for r in rows}
        return [k for k in self.group.members if k in signed]

    def _decide_submission(self, request_id: str, n_inputs: int, now: int) -> bool:
        """If every input has ``m`` counting keys, record the decision to submit with the
        first ``m`` of them (in the caller's transaction); whether it decided."""
        m = self.group.m
        chosen = [self.counting_keys(request_id, i)[:m] for i in range(n_inputs)]
        if any(len(keys) < m for keys in chosen):
            return False
        pairs = []
        for i, keys in enumerate(chosen):
            per_input = []
            for key in keys:
                (signature,) = self.store.execute(
                    "SELECT signature FROM partial_signatures WHERE request_id = ? AND input_index = ? AND public_key = ?",
                    (request_id, i, key),
                ).fetchone()
                per_input.append([key, signature])
            pairs.append(per_input)
        # m distinct members' valid signatures on every input: the group approved it (even if
        # their accepts have not arrived: someone may relay a member's signatures)
        self.store.execute("UPDATE requests SET state = 'Approved', decided_at = ?, submission = ? WHERE request_id = ?",
                           (now, wire.encode("igra.submission", 1, pairs), request_id))
        return True

    def _carry_out(self, request_id: str, now: int) -> None:
        """Hand a decided request's transaction to the node: first record, in a transaction of
        its own, that it is being handed over (recovery tells by it whether a transaction the
        node holds may be this request's), then submit it (``_hand_over``)."""
        with self.store.transaction():
            row = self.store.execute(
                "SELECT proposal, state, decided_at, submission FROM requests WHERE request_id = ?", (request_id,)
            ).fetchone()
            if row is None or row[1] not in ALIVE or row[2] is None:
                return  # carried out already (by a process sharing the file)
            self.store.execute("UPDATE requests SET submitting = 1 WHERE request_id = ?", (request_id,))
        self._hand_over(request_id, decode_proposal(row[0]), row[2], row[3])

    def _hand_over(self, request_id: str, proposal: Proposal, decided_at: int, submission: bytes) -> None:
        """Submit a request recorded as being handed over and record the outcome, in one
        transaction (the node is called under the write lock, so no other process submits it
        at the same time), unless a process sharing the file did it first."""
        with self.store.transaction():
            state, decided = self.store.execute("SELECT state, decided_at FROM requests WHERE request_id = ?",
                                                (request_id,)).fetchone()
            if state in ALIVE and decided is not None:
                self._submit(request_id, proposal, decided_at, submission)

    def _submit(self, request_id: str, proposal: Proposal, decided_at: int, submission: bytes) -> None:
        pairs = wire.decode(submission, "igra.submission", 1)
        tx = SignedTransaction(proposal.template, tuple(tuple((k, s) for k, s in per_input) for per_input in pairs))
        try:
            txid = self.node.submit(tx)
        except LedgerError as refused:
            self._record_abort(request_id, str(refused))
            return
        self._record_payment(request_id, proposal, txid, decided_at, pairs)

    def _record_payment(self, request_id: str, proposal: Proposal, txid: bytes, decided_at: int, pairs: list) -> None:
        """The node holds the transaction: only now is the volume recorded, on the day of the decision."""
        signers = wire.encode("igra.signers", 1, [[key for key, _ in per_input] for per_input in pairs])
        self.store.execute("UPDATE requests SET state = 'Finalized', final_tx_id = ?, decided_at = NULL WHERE request_id = ?",
                           (txid, request_id))
        self.store.execute("INSERT INTO payments VALUES (?, ?, ?, ?, ?, ?)",
                           (request_id, proposal.event_hash, str(proposal.event.amount), decided_at // NS_PER_DAY, txid,
                            signers))

    def _record_abort(self, request_id: str, reason: str) -> None:
        self.store.execute("UPDATE requests SET state = 'Aborted', abort_reason = ?, decided_at = NULL WHERE request_id = ?",
                           (reason, request_id))

    def tick(self, now: int) -> Outgoing:
        """Finish every decided submission (recovery, see the module), then expire every live
        request that reached ``expires_at``; nothing of an expired request is submitted."""
        with self.store.transaction():
            self.replay.purge(now)
            decided = self.store.execute(
                "SELECT request_id, proposal, expires_at, decided_at, submission FROM requests"
                " WHERE decided_at IS NOT NULL AND state IN ('Pending', 'Approved') ORDER BY seq"
            ).fetchall()
            handing = []
            for request_id, payload, expires_at, decided_at, submission in decided:
                proposal = decode_proposal(payload)
                chosen = self._recover(request_id, proposal, expires_at, decided_at, submission, now)
                if chosen is not None:
                    handing.append((request_id, proposal, *chosen))
            self.store.execute("UPDATE requests SET state = 'Expired' WHERE state IN ('Pending', 'Approved') AND expires_at <= ?",
                               (now,))
        for request_id, proposal, decided_at, submission in handing:
            self._hand_over(request_id, proposal, decided_at, submission)
        return []

    def _recover(self, request_id: str, proposal: Proposal, expires_at: int, decided_at: int, submission: bytes,
                 now: int) -> tuple[int, bytes] | None:
        """A decided request whose outcome was never recorded (its process died after the
        decision), in the caller's transaction: settled if the node holds its transaction or it
        expired; otherwise recorded as being handed over, and its decision's time and signatures
        returned, to hand it over once the caller commits."""
        txid = proposal.template_hash
        if self.node.has_transaction(txid):
            paid_by = self.store.execute("SELECT request_id FROM payments WHERE txid = ?", (txid,)).fetchone()
            (submitting,) = self.store.execute("SELECT submitting FROM requests WHERE request_id = ?",
                                               (request_id,)).fetchone()
            if paid_by is None and submitting:  # it was submitted, and the crash came before its record
                pairs = wire.decode(submission, "igra.submission", 1)
                self._record_payment(request_id, proposal, txid, decided_at, pairs)
            elif paid_by is None:  # never handed over: the node's transaction is another coordinator's
                self._record_abort(request_id, "double_spend: the node holds this transaction, never handed over")
            else:
                self._record_abort(request_id, f"double_spend: transaction already paid by request {paid_by[0]}")
        elif now < expires_at:  # decided, never submitted: hand it over now
            self.store.execute("UPDATE requests SET submitting = 1 WHERE request_id = ?", (request_id,))
            return decided_at, submission
        else:
            self.store.execute("UPDATE requests SET state = 'Expired', decided_at = NULL WHERE request_id = ?", (request_id,))
        return None

    # --- queries -------------------------------------------------------------------------

    def request_state(self, request_id: str) -> str | None:
        row = self.store.execute("SELECT state FROM requests WHERE request_id = ?", (request_id,)).fetchone()
        return row[0] if row else None

    def abort_reason(self, request_id: str) -> str | None:
        """Why ``request_id`` was aborted: the node's refusal of its transaction (``kind: detail``), or
        the double spend its recovery found; None for a request that is not aborted, or unknown."""
        row = self.store.execute("SELECT abort_reason FROM requests WHERE request_id = ? AND state = 'Aborted'",
                                 (request_id,)).fetchone()
        return row[0] if row else None

    def request_states(self) -> dict[str, str]:
        return dict(self.store.execute("SELECT request_id, state FROM requests").fetchall())

    def final_signers(self, request_id: str) -> list[list[bytes]] | None:
        """Per input, the keys whose signatures the submitted transaction carries."""
        row = self.store.execute("SELECT signers FROM payments WHERE request_id = ?", (request_id,)).fetchone()
        return None if row is None else wire.decode(row[0], "igra.signers", 1)

    def metrics(self) -> dict[str, int]:
        """Counters an operator scrapes: sessions by state, acks, signatures received and used."""
        out = {f"signing_sessions_total{{status={state.lower()}}}": count
               for state, count in self.store.execute("SELECT state, COUNT(*) FROM requests GROUP BY state")}
        out["session_timeouts_total"] = out.get("signing_sessions_total{status=expired}", 0)
        for accept, count in self.store.execute("SELECT accept, COUNT(*) FROM acks GROUP BY accept"):
            out["signer_acks_total{result=" + ("accept" if accept else "reject") + "}"] = count
        out["partial_sigs_total"] = self.signatures_checked  # since this process started, as Prometheus counters go
        out["partial_sigs_valid_total"] = self.store.execute("SELECT COUNT(*) FROM partial_signatures").fetchone()[0]
        return out

    def proposal(self, request_id: str) -> bytes | None:
        """The encoded proposal payload of ``request_id``."""
        row = self.store.execute("SELECT proposal FROM requests WHERE request_id = ?", (request_id,)).fetchone()
        return row[0] if row else None

    def paid_transactions(self) -> list[bytes]:
        """The txid of every payment this coordinator recorded (one per request it finalized)."""
        return [r[0] for r in self.store.execute("SELECT txid FROM payments ORDER BY request_id")]

    def paid_volume_on(self, day: int) -> int:
        return sum(int(a) for (a,) in self.store.execute("SELECT amount FROM payments WHERE day = ?", (day,)))


class LedgerView:
    """A node backed by an ``implementations.ledger.Ledger``: the group's UTXOs, listed in
    this node's own order (``order_seed``), membership of transactions, submission."""

    def __init__(self, ledger, address: str, order_seed: int | None = None) -> None:
        self.ledger, self.address, self.order_seed = ledger, address, order_seed

    def utxos(self) -> list[Utxo]:
        return self.ledger.utxos_for(self.address, self.order_seed)

    def has_transaction(self, txid: bytes) -> bool:
        return txid in self.ledger.accepted

    def submit(self, tx: SignedTransaction) -> bytes:
        return self.ledger.submit(tx)
