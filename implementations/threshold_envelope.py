"""Authenticated transport envelopes of the threshold-signing group.

Every message between a coordinator and the signers travels in an envelope::

    {sender, group_id, session_id, seq_no, timestamp, payload, payload_hash, signature}

``sender`` is the sender's 32-byte Ed25519 public key, ``group_id`` 32 bytes naming the
group, ``session_id`` the request id, ``seq_no`` the sender's sequence number in that
session (u64), ``timestamp`` the sender's clock (ns, u64, informative only),
``payload_hash = BLAKE3(payload)`` and ``signature`` the sender's Ed25519 signature over
the canonical encoding of the *whole header and the payload hash* (``signed_part``).
Upstream signed only the payload hash, so a captured payload could be re-sent under a new
``seq_no``; here changing any header field breaks the signature.

On the wire an envelope is the MessagePack message ``["igra.envelope", 1, [fields...]]``
(see ``implementations.wire``). A receiver decodes the whole envelope and checks, in this
order, each failure raising ``EnvelopeRejected`` (a ``DecodeError``) with its reason:

1. the payload hash ("payload hash mismatch"), compared in constant time;
2. the signature ("bad envelope signature");
3. the group id ("wrong group id");
4. replay ("replayed envelope"): the ``(sender, session_id, seq_no)`` was already accepted
   within the last 24 h of the receiver's *local* clock (never the sender's timestamp).

Checks 1-3 need nothing but the bytes (``authenticate``). Check 4 is made by
``ReplayCache.admit`` *inside* the transaction in which the receiver acts on the payload,
which also remembers the key: two processes sharing the file cannot both accept one
envelope, and a refused envelope changes nothing. The cache keeps at most
``MAX_ENVELOPES_PER_PEER_SESSION`` keys per (peer, session) ("peer over its limit").
A session id is at most ``MAX_SESSION_ID_CHARS`` characters (``implementations.limits``).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

import nacl.exceptions
import nacl.signing
from blake3 import blake3

from implementations import wire
from implementations.limits import MAX_ENVELOPES_PER_PEER_SESSION, MAX_SESSION_ID_CHARS
from implementations.storage import Store
from implementations.wire import DecodeError

ENVELOPE_KIND = "igra.envelope"
HEADER_KIND = "igra.envelope.header"
VERSION = 1
REPLAY_WINDOW_NS = 24 * 3600 * 1_000_000_000
U64_MAX = 2**64 - 1


class EnvelopeRejected(DecodeError):
    """An envelope that failed a transport check; ``reason`` is one of the module's reasons."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Envelope:
    sender: bytes
    group_id: bytes
    session_id: str
    seq_no: int
    timestamp: int
    payload: bytes
    payload_hash: bytes
    signature: bytes

    @property
    def replay_key(self) -> tuple[bytes, str, int]:
        return (self.sender, self.session_id, self.seq_no)


def signed_part(sender: bytes, group_id: bytes, session_id: str, seq_no: int, timestamp: int, payload_hash: bytes) -> bytes:
    """The bytes the sender signs: every header field and the payload hash."""
    return wire.encode(HEADER_KIND, VERSION, [sender, group_id, session_id, seq_no, timestamp, payload_hash])


def seal(key: nacl.signing.SigningKey, group_id: bytes, session_id: str, seq_no: int, timestamp: int, payload: bytes) -> bytes:
    """The wire bytes of an envelope carrying ``payload``, signed by ``key``."""
    sender = bytes(key.verify_key)
    payload_hash = blake3(payload).digest()
    signature = key.sign(signed_part(sender, group_id, session_id, seq_no, timestamp, payload_hash)).signature
    return encode_envelope(Envelope(sender, group_id, session_id, seq_no, timestamp, payload, payload_hash, signature))


def encode_envelope(env: Envelope) -> bytes:
    return wire.encode(
        ENVELOPE_KIND,
        VERSION,
        [env.sender, env.group_id, env.session_id, env.seq_no, env.timestamp, env.payload, env.payload_hash, env.signature],
    )


def decode_envelope(data: bytes) -> Envelope:
    """The envelope in ``data`` (shapes only, nothing verified), or ``DecodeError``."""
    body = wire.expect_list(wire.decode(data, ENVELOPE_KIND, VERSION), "envelope", length=8)
    return Envelope(
        sender=wire.expect_bytes(body[0], "envelope.sender", 32),
        group_id=wire.expect_bytes(body[1], "envelope.group_id", 32),
        session_id=expect_session_id(body[2], "envelope.session_id"),
        seq_no=wire.expect_int(body[3], "envelope.seq_no", 0, U64_MAX),
        timestamp=wire.expect_int(body[4], "envelope.timestamp", 0, U64_MAX),
        payload=wire.expect_bytes(body[5], "envelope.payload"),
        payload_hash=wire.expect_bytes(body[6], "envelope.payload_hash", 32),
        signature=wire.expect_bytes(body[7], "envelope.signature", 64),
    )


def expect_session_id(value, where: str) -> str:
    """A session (request) id: a string of at most ``MAX_SESSION_ID_CHARS`` characters."""
    text = wire.expect_str(value, where)
    if len(text) > MAX_SESSION_ID_CHARS:
        raise DecodeError(f"{where}: {len(text)} characters exceeds MAX_SESSION_ID_CHARS={MAX_SESSION_ID_CHARS}")
    return text


def authenticate(env: Envelope, group_id: bytes) -> None:
    """Raise ``EnvelopeRejected`` for the first transport check ``env`` fails (see the module)."""
    if not hmac.compare_digest(blake3(env.payload).digest(), env.payload_hash):
        raise EnvelopeRejected("payload hash mismatch", f"session {env.session_id!r} seq {env.seq_no}")
    try:
        nacl.signing.VerifyKey(env.sender).verify(
            signed_part(env.sender, env.group_id, env.session_id, env.seq_no, env.timestamp, env.payload_hash), env.signature
        )
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise EnvelopeRejected("bad envelope signature", f"from {env.sender.hex()[:16]}") from None
    if not hmac.compare_digest(env.group_id, group_id):
        raise EnvelopeRejected("wrong group id", f"{env.group_id.hex()[:16]} is not this group's {group_id.hex()[:16]}")


REPLAY_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen_envelopes (
    sender      BLOB NOT NULL,
    session_id  TEXT NOT NULL,
    seq_no      TEXT NOT NULL,     -- decimal u64
    received_at INTEGER NOT NULL,  -- local clock, ns
    PRIMARY KEY (sender, session_id, seq_no)
);
CREATE TABLE IF NOT EXISTS outbox (
    session_id  TEXT PRIMARY KEY,
    next_seq    INTEGER NOT NULL   -- this node's next seq_no in the session
);
"""


class ReplayCache:
    """The ``(sender, session, seq_no)`` keys accepted in the last 24 h, in the node's SQLite file."""

    def __init__(self, store: Store) -> None:
        self.store = store
        store.declare(REPLAY_SCHEMA)

    def seen(self, key: tuple[bytes, str, int], now: int) -> bool:
        row = self.store.execute(
            "SELECT received_at FROM seen_envelopes WHERE sender = ? AND session_id = ? AND seq_no = ?",
            (key[0], key[1], str(key[2])),
        ).fetchone()
        return row is not None and now - row[0] < REPLAY_WINDOW_NS

    def admit(self, key: tuple[bytes, str, int], now: int) -> None:
        """Check 4 and remember the key, inside the caller's transaction (the one that acts
        on the envelope): raises ``EnvelopeRejected`` and changes nothing for a replay, or
        for a peer that already has ``MAX_ENVELOPES_PER_PEER_SESSION`` keys in the session."""
        sender, session_id, seq_no = key
        with self.store.transaction(join=True):
            if self.seen(key, now):
                raise EnvelopeRejected("replayed envelope", f"{sender.hex()[:16]} session {session_id!r} seq {seq_no}")
            (held,) = self.store.execute(
                "SELECT COUNT(*) FROM seen_envelopes WHERE sender = ? AND session_id = ? AND received_at > ?",
                (sender, session_id, now - REPLAY_WINDOW_NS),
            ).fetchone()
            if held >= MAX_ENVELOPES_PER_PEER_SESSION:
                raise EnvelopeRejected("peer over its limit", f"{sender.hex()[:16]} has {held} envelopes in session "
                                       f"{session_id!r} (MAX_ENVELOPES_PER_PEER_SESSION={MAX_ENVELOPES_PER_PEER_SESSION})")
            self.store.execute("INSERT OR REPLACE INTO seen_envelopes VALUES (?, ?, ?, ?)",
                               (sender, session_id, str(seq_no), now))

    def purge(self, now: int) -> None:
        with self.store.transaction(join=True):
            self.store.execute("DELETE FROM seen_envelopes WHERE received_at <= ?", (now - REPLAY_WINDOW_NS,))

    def next_seq(self, session_id: str) -> int:
        """This node's next sequence number in ``session_id`` (durable, so a restart never reuses one)."""
        with self.store.transaction(join=True):
            row = self.store.execute("SELECT next_seq FROM outbox WHERE session_id = ?", (session_id,)).fetchone()
            seq = row[0] if row else 0
            self.store.execute("INSERT OR REPLACE INTO outbox VALUES (?, ?)", (session_id, seq + 1))
        return seq
