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
answered gets the same answer again. When a request it approved is past ``expires_at`` by
more than the clock skew it tolerates (``SKEW_NS``, 30 s) it settles the reservation: kept
(``finalize``) if the transaction is on its node, otherwise given back (``release(...,
"expired")``). Not at ``expires_at`` itself: the coordinator submits until ``expires_at`` by
*its* clock, which may be behind this signer's; a reservation given back while the
coordinator could still submit would let a paid amount out of the day's volume (found by
the ``realnet`` machine: node processes whose clocks disagree by 1.5 s).

The coordinator keeps every signature, and counts, per input, the *distinct member* keys
whose signature is valid over that input's sighash. A request is ``Approved`` once ``m``
members accepted, ``Rejected`` once more than ``n - m`` refused. A live request whose
every input has ``m`` counting keys, before ``expires_at``, is approved (also when the
signatures were relayed by someone else before the members' accepts arrived) and finalized:
the first ``m`` keys in group order sign each input, the transaction is submitted, and only
when the node accepts it is the volume recorded (table ``payments``) and the request
``Finalized``; a refusal makes it ``Aborted``. A live request past ``expires_at`` becomes
``Expired`` at the next ``tick``; nothing of it is ever submitted.

Both cores are sans-I/O: ``handle(data, now)`` and ``tick(now)`` return the envelopes to
send as ``(recipient_public_key, bytes)`` pairs; they never sleep or read a clock. Bytes
are decoded and every transport check (``implementations.threshold_envelope``) is done
before anything changes; a refused envelope raises ``EnvelopeRejected`` / ``DecodeError``.
All state lives in one SQLite file per core, so a new object on the same file after a
crash loses nothing. The node (UTXOs, submission) is passed in as an object: see ``Node``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Protocol

import nacl.signing
from blake3 import blake3

from implementations import wire
from implementations.ledger import LedgerError
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
from implementations.storage import write_transaction
from implementations.threshold_envelope import EnvelopeRejected, ReplayCache, authenticate, decode_envelope, seal
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
        request_id=wire.expect_str(b[0], "proposal.request_id"),
        event=decode_event(wire.expect_bytes(b[1], "proposal.event")),
        event_hash=wire.expect_bytes(b[2], "proposal.event_hash", 32),
        template=decode_template(template_bytes),
        template_bytes=template_bytes,
        template_hash=wire.expect_bytes(b[4], "proposal.template_hash", 32),
        validation_hash=wire.expect_bytes(b[5], "proposal.validation_hash", 32),
        expires_at=wire.expect_int(b[6], "proposal.expires_at"),
        round=wire.expect_int(b[7], "proposal.round", 0, 2**32 - 1),
    )


def encode_answer(a: Answer) -> bytes:
    sigs = [[i, k, s] for i, k, s in a.signatures]
    return wire.encode(ANSWER, 1, [a.request_id, a.event_hash, a.template_hash, a.accept, a.reason, sigs])


def decode_answer(data: bytes) -> Answer:
    b = wire.expect_list(wire.decode(data, ANSWER, 1), "answer", length=6)
    sigs = []
    for n, raw in enumerate(wire.expect_list(b[5], "answer.signatures")):
        item = wire.expect_list(raw, f"answer.signatures[{n}]", length=3)
        sigs.append(
            (
                wire.expect_int(item[0], f"answer.signatures[{n}].input", 0, 2**32 - 1),
                wire.expect_bytes(item[1], f"answer.signatures[{n}].key", 32),
                wire.expect_bytes(item[2], f"answer.signatures[{n}].signature", 64),
            )
        )
    return Answer(
        request_id=wire.expect_str(b[0], "answer.request_id"),
        event_hash=wire.expect_bytes(b[1], "answer.event_hash", 32),
        template_hash=wire.expect_bytes(b[2], "answer.template_hash", 32),
        accept=wire.expect_bool(b[3], "answer.accept"),
        reason=wire.expect_str(b[4], "answer.reason"),
        signatures=tuple(sigs),
    )


def _connect(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    return db


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
        self.store = store
        self.db = _connect(store)
        self.replay = ReplayCache(self.db)

    def close(self) -> None:
        self.db.close()

    def _open(self, data: bytes, now: int):
        """Decode and authenticate an envelope (changes nothing); returns it."""
        env = decode_envelope(data)
        authenticate(env, self.group.group_id, self.replay.seen(env.replay_key, now))
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
        self.db.executescript(SIGNER_SCHEMA)
        self._time = _GivenTime()
        self.policy = PolicyEnforcer(policy, self._time, store)

    def close(self) -> None:
        self.policy.close()
        super().close()

    def handle(self, data: bytes, now: int) -> Outgoing:
        env = self._open(data, now)
        if env.sender not in self.group.members:
            raise EnvelopeRejected("sender is not a member", f"{env.sender.hex()[:16]} may not propose")
        proposal = decode_proposal(env.payload)
        if proposal.request_id != env.session_id:
            raise DecodeError(f"proposal: request id {proposal.request_id!r} is not the envelope's session {env.session_id!r}")
        self._time.value = now
        self.replay.remember(env.replay_key, now)
        row = self.db.execute("SELECT answer FROM answers WHERE request_id = ?", (proposal.request_id,)).fetchone()
        payload = row[0] if row else self._decide(env.sender, proposal, now)
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
        row = self.db.execute("SELECT request_id FROM signed_events WHERE event_hash = ?", (p.event_hash,)).fetchone()
        return row is not None and row[0] != p.request_id

    def _approve(self, p: Proposal) -> tuple[bool, str]:
        """Check 5: the policy; approval reserves the amount for today."""
        reason = dict(p.event.metadata).get("reason")
        decision = self.policy.submit(p.request_id, p.event.destination, p.event.amount, reason,
                                      sender_timestamp_ns=p.event.timestamp)
        return decision.approved, decision.message

    def _decide(self, coordinator: bytes, p: Proposal, now: int) -> bytes:
        refusal, mine = self._refusal(p, now)
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
        with write_transaction(self.db):
            self.db.execute(
                "INSERT INTO answers (request_id, coordinator, event_hash, template, answer, approved, expires_at)"
                " VALUES (?,?,?,?,?,?,?)",
                (p.request_id, coordinator, p.event_hash, encode_template(mine) if answer.accept else None, payload,
                 int(approved), p.expires_at),
            )
            if answer.accept:
                self.db.execute("INSERT OR IGNORE INTO signed_events VALUES (?, ?, ?)",
                                (p.event_hash, p.template_hash, p.request_id))
        return payload

    def tick(self, now: int) -> Outgoing:
        """Settle the reservation of every approved request past ``expires_at`` by more than ``SKEW_NS``."""
        self._time.value = now
        self.replay.purge(now)
        due = self.db.execute(
            "SELECT request_id, template FROM answers WHERE approved = 1 AND settled = 0 AND expires_at + ? <= ?",
            (SKEW_NS, now),
        ).fetchall()
        for request_id, template in due:
            if template is not None and self.node.has_transaction(blake3(template).digest()):
                self.policy.finalize(request_id)
            else:
                self.policy.release(request_id, "expired")
            self.db.execute("UPDATE answers SET settled = 1 WHERE request_id = ?", (request_id,))
        return []

    # --- queries (for operators and tests) -------------------------------------------

    def signed_template(self, request_id: str) -> bytes | None:
        """The template bytes this signer rebuilt and signed for ``request_id`` (None if it did not sign)."""
        row = self.db.execute("SELECT template FROM answers WHERE request_id = ?", (request_id,)).fetchone()
        return row[0] if row else None

    def volume_on(self, day: int) -> int:
        return self.policy._reserved(day)


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
    abort_reason  TEXT
);
CREATE TABLE IF NOT EXISTS acks (             -- members' first answers
    request_id    TEXT NOT NULL,
    member        BLOB NOT NULL,
    accept        INTEGER NOT NULL,
    reason        TEXT NOT NULL,
    PRIMARY KEY (request_id, member)
);
CREATE TABLE IF NOT EXISTS partial_signatures (   -- every signature received, verified
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id    TEXT NOT NULL,
    input_index   INTEGER NOT NULL,
    public_key    BLOB NOT NULL,
    signature     BLOB NOT NULL,
    valid         INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS partial_signatures_by_request ON partial_signatures (request_id, input_index);
CREATE TABLE IF NOT EXISTS payments (          -- the volume, recorded once the node accepted the transaction
    request_id    TEXT PRIMARY KEY,
    event_hash    BLOB NOT NULL,
    amount        TEXT NOT NULL,
    day           INTEGER NOT NULL,
    txid          BLOB NOT NULL,
    signers       BLOB NOT NULL              -- per input, the keys whose signatures were used
);
"""

ALIVE = ("Pending", "Approved")


class Coordinator(_Core):
    """A member node's coordinator: ``submit_event``, ``handle`` answers, ``tick`` for timeouts."""

    def __init__(self, seed: bytes, group: GroupConfig, node: Node, store: str) -> None:
        super().__init__(seed, group, node, store)
        self.db.executescript(COORDINATOR_SCHEMA)

    def submit_event(self, event: Event, now: int) -> tuple[str, Outgoing]:
        """Open a request for ``event`` and propose it to every member.

        Raises ``EventRefused`` if this coordinator has a live or finalized request for the
        event, and ``TemplateRefused`` if no template can be built."""
        the_hash = event_hash(event)
        busy = self.db.execute(
            "SELECT request_id, state FROM requests WHERE event_hash = ? AND state IN ('Pending', 'Approved', 'Finalized')",
            (the_hash,),
        ).fetchone()
        if busy:
            raise EventRefused(f"event already processed: request {busy[0]} is {busy[1]}")
        g = self.group
        template = build_template(event, self.node.utxos(), fee=g.fee, fee_mode=g.fee_mode, change_address=g.change_address)
        seq = self.db.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM requests").fetchone()[0]
        request_id = f"{self.public_key.hex()[:12]}-{seq}"
        template_bytes = encode_template(template)
        proposal = Proposal(request_id, event, the_hash, template, template_bytes, blake3(template_bytes).digest(),
                            validation_hash(the_hash, template), now + g.session_timeout_ns)
        payload = encode_proposal(proposal)
        with write_transaction(self.db):
            self.db.execute(
                "INSERT INTO requests (request_id, seq, event_hash, proposal, n_inputs, expires_at, state)"
                " VALUES (?,?,?,?,?,?,?)",
                (request_id, seq, the_hash, payload, len(template.inputs), proposal.expires_at, "Pending"),
            )
            out = [self._send(member, request_id, payload, now) for member in g.members]
        return request_id, out

    def _request(self, request_id: str):
        return self.db.execute(
            "SELECT proposal, n_inputs, expires_at, state FROM requests WHERE request_id = ?", (request_id,)
        ).fetchone()

    def handle(self, data: bytes, now: int) -> Outgoing:
        env = self._open(data, now)
        answer = decode_answer(env.payload)
        if answer.request_id != env.session_id:
            raise DecodeError(f"answer: request id {answer.request_id!r} is not the envelope's session {env.session_id!r}")
        self.replay.remember(env.replay_key, now)
        row = self._request(answer.request_id)
        if row is None:
            return []
        proposal = decode_proposal(row[0])
        _, n_inputs, expires_at, state = row
        if state not in ALIVE or now >= expires_at:
            return []
        same_event = hashes_equal(answer.event_hash, proposal.event_hash)
        if not (hashes_equal(answer.template_hash, proposal.template_hash) and same_event):
            return []  # an answer about another event or template: neither its ack nor its signatures count
        hashes = sighashes(proposal.template)
        with write_transaction(self.db):
            if env.sender in self.group.members:
                self.db.execute("INSERT OR IGNORE INTO acks VALUES (?, ?, ?, ?)",
                                (answer.request_id, env.sender, int(answer.accept), answer.reason))
            for index, key, signature in answer.signatures:
                valid = index < n_inputs and verify_signature(key, signature, hashes[index])
                self.db.execute(
                    "INSERT INTO partial_signatures (request_id, input_index, public_key, signature, valid) VALUES (?,?,?,?,?)",
                    (answer.request_id, index, key, signature, int(valid)),
                )
            state = self._after_answers(answer.request_id, state)
        if state in ALIVE:  # signatures decide: submit as soon as every input has m counting keys
            self._try_finalize(answer.request_id, proposal, n_inputs, now)
        return []

    def _after_answers(self, request_id: str, state: str) -> str:
        accepts, refusals = self.db.execute(
            "SELECT COALESCE(SUM(accept), 0), COALESCE(SUM(1 - accept), 0) FROM acks WHERE request_id = ?", (request_id,)
        ).fetchone()
        n, m = len(self.group.members), self.group.m
        if state == "Pending" and accepts >= m:
            state = "Approved"
        elif state == "Pending" and refusals > n - m:
            state = "Rejected"
        self.db.execute("UPDATE requests SET state = ? WHERE request_id = ?", (state, request_id))
        return state

    def counting_keys(self, request_id: str, input_index: int) -> list[bytes]:
        """The distinct member keys with a valid signature on the input, in group key order."""
        rows = self.db.execute(
            "SELECT DISTINCT public_key FROM partial_signatures WHERE request_id = ? AND input_index = ? AND valid = 1",
            (request_id, input_index),
        ).fetchall()
        signed = {r[0] for r in rows}
        return [k for k in self.group.members if k in signed]

    def _try_finalize(self, request_id: str, proposal: Proposal, n_inputs: int, now: int) -> None:
        m = self.group.m
        chosen = [self.counting_keys(request_id, i)[:m] for i in range(n_inputs)]
        if any(len(keys) < m for keys in chosen):
            return
        pairs = []
        for i, keys in enumerate(chosen):
            per_input = []
            for key in keys:
                (signature,) = self.db.execute(
                    "SELECT signature FROM partial_signatures"
                    " WHERE request_id = ? AND input_index = ? AND public_key = ? AND valid = 1",
                    (request_id, i, key),
                ).fetchone()
                per_input.append((key, signature))
            pairs.append(tuple(per_input))
        # m distinct members' valid signatures on every input: the group approved it (even if
        # their accepts have not arrived: someone may relay a member's signatures)
        self.db.execute("UPDATE requests SET state = 'Approved' WHERE request_id = ?", (request_id,))
        try:
            txid = self.node.submit(SignedTransaction(proposal.template, tuple(pairs)))
        except LedgerError as refused:
            self.db.execute("UPDATE requests SET state = 'Aborted', abort_reason = ? WHERE request_id = ?",
                            (str(refused), request_id))
            return
        signers = wire.encode("igra.signers", 1, [list(keys) for keys in chosen])
        with write_transaction(self.db):  # submitted: only now is the volume recorded
            self.db.execute("UPDATE requests SET state = 'Finalized', final_tx_id = ? WHERE request_id = ?", (txid, request_id))
            self.db.execute("INSERT INTO payments VALUES (?, ?, ?, ?, ?, ?)",
                            (request_id, proposal.event_hash, str(proposal.event.amount), now // NS_PER_DAY, txid, signers))

    def tick(self, now: int) -> Outgoing:
        """Every live request that reached ``expires_at`` expires; nothing of it is submitted."""
        self.replay.purge(now)
        self.db.execute("UPDATE requests SET state = 'Expired' WHERE state IN ('Pending', 'Approved') AND expires_at <= ?",
                        (now,))
        return []

    # --- queries -------------------------------------------------------------------------

    def request_state(self, request_id: str) -> str | None:
        row = self.db.execute("SELECT state FROM requests WHERE request_id = ?", (request_id,)).fetchone()
        return row[0] if row else None

    def request_states(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT request_id, state FROM requests").fetchall())

    def final_signers(self, request_id: str) -> list[list[bytes]] | None:
        """Per input, the keys whose signatures the submitted transaction carries."""
        row = self.db.execute("SELECT signers FROM payments WHERE request_id = ?", (request_id,)).fetchone()
        return None if row is None else wire.decode(row[0], "igra.signers", 1)

    def metrics(self) -> dict[str, int]:
        """Counters an operator scrapes: sessions by state, acks, signatures received and used."""
        out = {f"signing_sessions_total{{status={state.lower()}}}": count
               for state, count in self.db.execute("SELECT state, COUNT(*) FROM requests GROUP BY state")}
        out["session_timeouts_total"] = out.get("signing_sessions_total{status=expired}", 0)
        for accept, count in self.db.execute("SELECT accept, COUNT(*) FROM acks GROUP BY accept"):
            out["signer_acks_total{result=" + ("accept" if accept else "reject") + "}"] = count
        out["partial_sigs_total"] = self.db.execute("SELECT COUNT(*) FROM partial_signatures").fetchone()[0]
        out["partial_sigs_valid_total"] = self.db.execute("SELECT COUNT(*) FROM partial_signatures WHERE valid = 1").fetchone()[0]
        return out

    def paid_volume_on(self, day: int) -> int:
        return sum(int(a) for (a,) in self.db.execute("SELECT amount FROM payments WHERE day = ?", (day,)))


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
