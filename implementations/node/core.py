"""The node core, sans-I/O: gossip, anti-entropy, replay protection, presence; FOAF and
rendezvous (``foaf``, ``rendezvous``) and threshold envelopes (``carrier``) ride on it.

``Node(identity, members, store, now, ...)`` is one member of a mesh of known PeerIds.
``handle(datagram, now)`` and ``tick(now)`` return the datagrams to send, as
``(peer_id, bytes)`` pairs; the node never reads a clock, sleeps or opens a socket. ``now``
is the node's local clock in nanoseconds.

**Receiving.** Every message of a datagram is checked in this order; the first failure is
the refusal's reason, recorded as a ``Verdict`` and nothing else changes:

1. it decodes ("malformed"); 2. its PeerId is the hash of its key ("peer id does not match
key"); 3. its signature covers header and payload hash ("bad signature"); 4. its signer is
a member ("not a member"); 5. its ``epoch_secs`` is within the replay TTL (300 s) of the
local clock, either way ("stale"); 6. ``BLAKE3(payload)`` was not accepted in the last
300 s of the *local* clock ("replayed"): the replay cache is keyed by what the sender
cannot choose freely and ages by the receiver's clock, never the sender's timestamp. Only
then is the key remembered and the payload acted on; a payload that does not decode, a
directed payload addressed to another node, or one of an unknown topic is refused then.

**Logged topics** (task lists, the benchmark's log): an application (``App``) per topic.
``publish(topic, data, now)`` makes the node's next operation ``(origin = self, seq)``
(payload ``node.op [seq, nonce, data]``), signs it, *commits it to the store* and only then
returns it (the acknowledgement) with the datagrams that push it down its broadcast tree.

**Eager push.** Every operation travels down its own broadcast tree (``tree``: computed by
every member from the member list, rooted at the origin, ``fanout`` children per member,
rotated by ``seq``): a node that takes an operation it did not hold ("accepted"; one it
holds is a "duplicate") pushes it to its children in that operation's tree, and nowhere
else. Without loss every member receives each operation once.

**Lazy push and pull** repair what a tree lost (Plumtree's IHAVE and GRAFT, as seq ranges):
at most every ``have_period_ns``, a node that took or made an operation since its last
announcement sends one member (in turn) a *have* (``node.have [to, nonce, digest]``: per
topic and origin, the seq ranges it holds). A pushed operation ``(origin, seq)`` announces
too: its origin holds every seq before it. The receiver of an announcement notes what it
lists and the receiver lacks (the first announcement of a gap per topic and origin); what of
that it still lacks ``gap_pull_ns`` later (so not merely still on its way down a tree) it
pulls from the announcer at its next tick: a repair that carries no operations and wants
those ranges (below), answered with a repair carrying them. A tick pulls fewer than
``repair_batch`` operations from each announcer, so an answer is never a full repair
(which starts a round of digests, below); what is left is pulled at the next tick.

**Anti-entropy** repairs the rest: every ``anti_entropy_period_ns`` a node
sends one member (in turn) a *digest* (per topic and origin, the seq ranges it holds). The
peer answers with a *repair*: the operations the digest lacks (at most ``repair_batch``,
itself at most ``MAX_REPAIR_MESSAGES``; a full repair that brought news makes its receiver
send a new digest at once, so a long partition is repaired in one burst of rounds) and the ranges it lacks itself
(``want``), which the first node then sends. Operations travel in their original signed
form, so a repair is checked message by message (steps 1-4 and the log; not 5-6: they are
old by design); an operation taken from a repair is not pushed on.

**Restart.** Own operations live in the store (table ``own_messages``); a new ``Node`` on
the same store re-applies them and continues their sequence. What it had received is
learned again from its peers by haves, pulls and anti-entropy. Every boot is numbered in
the store, so nonces and PRNG seeds never repeat.

**Signing sessions** ride on the node: ``send_envelope(to, role, envelope, now)`` carries a
threshold-signing envelope (``implementations.threshold_envelope``) to the member node
``to`` for its ``signer`` or ``coordinator`` core, as ``node.igra [to, nonce, role,
envelope]``; the receiving node hands it, once every check above passed, to its
``envelope_sink(role, envelope, now)``, which gives it to the core (whose own envelope
checks then apply) and returns what the core answers as ``(to, role, envelope)`` triples:
they leave with the datagrams ``handle`` returns.

**Presence.** Every ``beacon_period_ns`` a node pushes a beacon to ``fanout`` members drawn
by its PRNG (seeded from its id and boot number), and each member that takes it pushes it
on to ``fanout`` others (infect and die); a member is online for a node while that node
accepted a beacon of it less than ``presence_ttl_ns`` (900 s) ago by its own clock.

**Batching.** ``handle``, ``tick`` and ``publish`` take an optional ``out`` (an ``Outbox``):
a transport that coalesces what a node sends each peer passes its own and encodes
``out.datagrams()`` when it flushes; the call then returns no datagrams of its own.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import blake3

from implementations import wire
from implementations.limits import (
    MAX_DIGEST_ORIGINS,
    MAX_DIGEST_RANGES,
    MAX_MESSAGES_PER_DATAGRAM,
    MAX_REPAIR_MESSAGES,
    U64_MAX,
)
from implementations.node import message as wire_message
from implementations.node.identity import Identity, Verifier
from implementations.node.message import Message, decode_datagram, decode_message, decode_payload, encode_payload
from implementations.node.tree import Trees
from implementations.storage import Store
from implementations.wire import DecodeError

NS_PER_SECOND = 1_000_000_000
NONCE_BYTES = 16
OP, DIGEST, REPAIR, HAVE, BEACON, ENVELOPE = "node.op", "node.digest", "node.repair", "node.have", "node.beacon", "node.igra"
ANTI_ENTROPY, PRESENCE, SIGNING = "ae", "presence", "igra"
ROLES = ("signer", "coordinator")

SCHEMA = """
CREATE TABLE IF NOT EXISTS own_messages (      -- this node's operations, committed before acknowledged
    topic    TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    message  BLOB NOT NULL,                    -- the signed message, as sent
    PRIMARY KEY (topic, seq)
);
CREATE TABLE IF NOT EXISTS boots (boot INTEGER PRIMARY KEY AUTOINCREMENT, at_ns INTEGER NOT NULL);
"""

Outgoing = list[tuple[bytes, bytes]]
Ranges = list[list[int]]


@dataclass(frozen=True)
class NodeConfig:
    fanout: int = 3  # children per member in an operation's broadcast tree; members a beacon is pushed to
    anti_entropy_period_ns: int = 30 * NS_PER_SECOND
    #: Operations one repair this node sends carries (2 to MAX_REPAIR_MESSAGES, the most a node takes):
    #: a repair this full asks for more at once. The machines use a small batch, so that repairs
    #: in several rounds, and two rounds racing at a heal, happen within a few steps.
    repair_batch: int = MAX_REPAIR_MESSAGES
    have_period_ns: int = 5 * NS_PER_SECOND  # at most one have this often, and only with something new to announce
    gap_pull_ns: int = NS_PER_SECOND // 2  # what a have announced and is still missing this long after is pulled
    replay_ttl_ns: int = 300 * NS_PER_SECOND
    presence_ttl_ns: int = 900 * NS_PER_SECOND
    beacon_period_ns: int = 300 * NS_PER_SECOND
    beacons: bool = True
    foaf_fanout: int = 3
    foaf_ttl: int = 3
    query_state_ns: int = 60 * NS_PER_SECOND  # how long a relay remembers a FOAF query's previous hop
    lookup_timeout_ns: int = 5 * NS_PER_SECOND
    advert_ttl_ns: int = 24 * 3600 * NS_PER_SECOND
    advert_refresh_ns: int = 3600 * NS_PER_SECOND
    rendezvous_replicas: int = 2
    adverts: bool = True
    record_verdicts: bool = True


class App(Protocol):
    """The application of a logged topic: applies one operation's data; ``DecodeError``
    (and no change) for data it cannot take."""

    def apply(self, data: bytes) -> None: ...


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a node did with one message: ``outcome`` is "accepted", "duplicate" or a refusal's reason."""

    signer: bytes | None
    topic: str | None
    kind: str | None
    outcome: str
    msg_id: bytes | None
    repaired: bool = False


@dataclass(frozen=True, slots=True)
class Published:
    """An acknowledged operation: committed to the store before this was returned."""

    msg_id: bytes
    seq: int
    outgoing: Outgoing


class ReplayCache:
    """Keys accepted in the last ``ttl_ns`` of the local clock (``entries``: key -> when).

    ``times`` and ``keys`` hold the same in the order remembered, so ``purge`` drops the
    oldest in constant time each (deleting from the front of a dict and asking it for its
    first key again scans the holes the deletions left: quadratic in a 60,000-key cache)."""

    def __init__(self, ttl_ns: int) -> None:
        self.ttl_ns = ttl_ns
        self.entries: dict[bytes, int] = {}
        self.times: deque[int] = deque()
        self.keys: deque[bytes] = deque()

    def seen(self, key: bytes, now: int) -> bool:
        at = self.entries.get(key)
        return at is not None and now - at < self.ttl_ns

    def take(self, key: bytes, now: int) -> bool:
        """Remember the key at ``now`` unless it was ``seen``: whether it was new."""
        entries = self.entries
        at = entries.get(key)
        if at is not None and now - at < self.ttl_ns:
            return False
        entries[key] = now
        self.times.append(now)
        self.keys.append(key)
        return True

    def purge(self, now: int) -> None:
        entries, times, keys, ttl = self.entries, self.times, self.keys, self.ttl_ns
        while times and now - times[0] >= ttl:
            at, key = times.popleft(), keys.popleft()
            if entries.get(key) == at:  # (not remembered again since)
                del entries[key]


class OriginLog:
    """The operations of one origin on one topic a node holds: every seq up to
    ``watermark`` (their messages in ``held``, seq ``n`` at index ``n - 1``: a list slot a
    message, not a dict entry), and ``extras`` above it (seq -> message)."""

    __slots__ = ("extras", "held", "watermark")

    def __init__(self) -> None:
        self.watermark = 0
        self.held: list[bytes] = []
        self.extras: dict[int, bytes] = {}

    def __contains__(self, seq: int) -> bool:
        return seq <= self.watermark or seq in self.extras

    def add(self, seq: int, raw: bytes) -> None:
        """Hold operation ``seq`` (one not held yet)."""
        if seq == self.watermark + 1:
            held, extras = self.held, self.extras
            held.append(raw)
            while extras and len(held) + 1 in extras:
                held.append(extras.pop(len(held) + 1))
            self.watermark = len(held)
        else:
            self.extras[seq] = raw

    def message(self, seq: int) -> bytes:
        """The message of operation ``seq`` (one held)."""
        return self.held[seq - 1] if seq <= self.watermark else self.extras[seq]

    def ranges(self) -> Ranges:
        out = [[1, self.watermark]] if self.watermark else []
        for seq in sorted(self.extras):
            if out and out[-1][1] + 1 == seq:
                out[-1][1] = seq
            else:
                out.append([seq, seq])
        return out

    @property
    def max_seq(self) -> int:
        return max(self.extras, default=self.watermark)


def subtract(ours: Ranges, theirs: Ranges) -> Ranges:
    """The seqs of ``ours`` that ``theirs`` lacks, as ranges (both sorted and disjoint)."""
    out: Ranges = []
    j = 0
    for lo, hi in ours:
        while j < len(theirs) and theirs[j][1] < lo:
            j += 1
        k, start = j, lo
        while k < len(theirs) and theirs[k][0] <= hi and start <= hi:
            if theirs[k][0] > start:
                out.append([start, theirs[k][0] - 1])
            start = max(start, theirs[k][1] + 1)
            k += 1
        if start <= hi:
            out.append([start, hi])
    return out


def split_ranges(ranges: Ranges, count: int) -> tuple[Ranges, Ranges]:
    """The first ``count`` seqs of ``ranges``, and the rest."""
    first: Ranges = []
    for n, (lo, hi) in enumerate(ranges):
        if count <= 0:
            return first, ranges[n:]
        if hi - lo + 1 > count:
            first.append([lo, lo + count - 1])
            return first, [[lo + count, hi], *ranges[n + 1:]]
        first.append([lo, hi])
        count -= hi - lo + 1
    return first, []


def decode_ranges(value: Any, where: str) -> Ranges:
    """Sorted, disjoint, not adjacent ``[lo, hi]`` ranges of seqs; the common well-formed case is checked in one loop."""
    if type(value) is list and len(value) <= MAX_DIGEST_RANGES:
        after = 0  # every lo must exceed the previous hi + 1 (and be at least 1)
        for item in value:
            if not (type(item) is list and len(item) == 2):
                break
            lo, hi = item
            if not (type(lo) is int and type(hi) is int and after < lo <= hi <= U64_MAX):
                break
            after = hi + 1
        else:
            return value
    items = wire.expect_list(value, where)
    if len(items) > MAX_DIGEST_RANGES:
        raise DecodeError(f"{where}: {len(items)} ranges exceed {MAX_DIGEST_RANGES}")
    out: Ranges = []
    for n, item in enumerate(items):
        lo, hi = wire.expect_list(item, f"{where}[{n}]", length=2)
        lo, hi = wire.expect_int(lo, f"{where}[{n}][0]", 1, U64_MAX), wire.expect_int(hi, f"{where}[{n}][1]", 1, U64_MAX)
        if hi < lo or (out and lo <= out[-1][1] + 1):
            raise DecodeError(f"{where}[{n}]: ranges must be sorted, disjoint and not adjacent")
        out.append([lo, hi])
    return out


def decode_digest(value: Any, where: str) -> dict[str, dict[bytes, Ranges]]:
    """``{topic: {origin: ranges}}`` from a digest body (shapes and bounds checked)."""
    out: dict[str, dict[bytes, Ranges]] = {}
    topics = wire.expect_list(value, where)
    origins_seen = 0
    for n, item in enumerate(topics):
        topic, origins = wire.expect_list(item, f"{where}[{n}]", length=2)
        topic = wire.expect_str(topic, f"{where}[{n}].topic")
        per_origin = out.setdefault(topic, {})
        origins = wire.expect_list(origins, f"{where}[{n}].origins")
        origins_seen += len(origins)
        if origins_seen > MAX_DIGEST_ORIGINS:
            raise DecodeError(f"{where}: more than {MAX_DIGEST_ORIGINS} origins")
        for m, entry in enumerate(origins):
            if type(entry) is list and len(entry) == 2 and type(entry[0]) is bytes and len(entry[0]) == 32:
                origin, ranges = entry
            else:
                origin, ranges = wire.expect_list(entry, f"{where}[{n}][{m}]", length=2)
                wire.expect_bytes(origin, f"{where}[{n}][{m}].origin", 32)
            per_origin[origin] = decode_ranges(ranges, f"{where}[{n}][{m}]")
    return out


class Outbox:
    """Messages to send, per peer, turned into datagrams at the end of a call."""

    def __init__(self) -> None:
        self.messages: dict[bytes, list[bytes]] = {}

    def add(self, peer: bytes, raw: bytes) -> None:
        raws = self.messages.get(peer)
        if raws is None:
            self.messages[peer] = [raw]
        else:
            raws.append(raw)

    def datagrams(self) -> Outgoing:
        out = []
        encode = wire_message.encode_datagram
        for peer, raws in self.messages.items():
            if len(raws) <= MAX_MESSAGES_PER_DATAGRAM:
                out.append((peer, encode(raws)))
            else:
                for start in range(0, len(raws), MAX_MESSAGES_PER_DATAGRAM):
                    out.append((peer, encode(raws[start:start + MAX_MESSAGES_PER_DATAGRAM])))
        return out


Handler = Callable[[Message, list, int, Outbox], str]


class Node:
    """One member of a mesh. See the module docstring."""

    def __init__(self, identity: Identity, members: Iterable[bytes], store: Store, now: int, *,
                 config: NodeConfig | None = None, apps: dict[str, App] | None = None,
                 neighbors: Iterable[bytes] = (), verifier: Verifier | None = None,
                 envelope_sink: Callable[[str, bytes, int], list[tuple[bytes, str, bytes]]] | None = None) -> None:
        from implementations.node.foaf import Foaf
        from implementations.node.rendezvous import Rendezvous

        self.identity = identity
        self.peer_id = identity.peer_id
        self.members = frozenset(members) | {self.peer_id}
        self.peers = sorted(self.members - {self.peer_id})
        self.config = config or NodeConfig()
        if not 2 <= self.config.repair_batch <= MAX_REPAIR_MESSAGES:
            raise ValueError(f"NodeConfig.repair_batch is {self.config.repair_batch}: it must be 2 to "
                             f"MAX_REPAIR_MESSAGES ({MAX_REPAIR_MESSAGES}), a pull asks for one less")
        self.store = store
        self.apps: dict[str, App] = dict(apps or {})
        self.verifier = verifier or Verifier()
        self.member_keys: dict[bytes, bytes] = {}  # member -> the key its messages carried, found bound to it
        self.replay = ReplayCache(self.config.replay_ttl_ns)
        self.log: dict[str, dict[bytes, OriginLog]] = {topic: {} for topic in self.apps}
        self.next_seq: dict[str, int] = {topic: 1 for topic in self.apps}
        self.last_beacon: dict[bytes, int] = {}
        self.envelope_sink = envelope_sink
        self.verdicts: list[Verdict] = []
        self.counts: dict[str, int] = {}
        store.db.executescript(SCHEMA)
        with store.transaction():
            self.boot = store.execute("INSERT INTO boots (at_ns) VALUES (?)", (now,)).lastrowid
        self._nonce = self.boot << 32
        self.rng = random.Random(int.from_bytes(blake3.blake3(self.peer_id + self.boot.to_bytes(8, "big")).digest()[:8], "big"))
        self.next_anti_entropy = now + self.config.anti_entropy_period_ns
        self.next_beacon = now
        self.next_have = now
        self.news = False  # an operation taken or made since the last have
        self.trees = Trees(self.members, self.config.fanout, self.peer_id)
        self._ae_turn: list[bytes] = []
        self._have_turn: list[bytes] = []
        self._announced: dict[tuple[str, bytes], tuple[bytes, Ranges, int]] = {}  # (topic, origin) -> (by, lacking, since)
        self.foaf = Foaf(self, neighbors)
        self.rendezvous = Rendezvous(self)
        self.handlers: dict[str, Handler] = {
            OP: self._on_op, DIGEST: self._on_digest, REPAIR: self._on_repair, HAVE: self._on_have, BEACON: self._on_beacon,
            ENVELOPE: self._on_envelope,
            **self.foaf.handlers(), **self.rendezvous.handlers(),
        }
        self._restore()

    # ----- restart -------------------------------------------------------------------

    def _restore(self) -> None:
        rows = self.store.execute("SELECT topic, seq, message FROM own_messages ORDER BY topic, seq").fetchall()
        for topic, seq, raw in rows:
            message = decode_message(raw)
            _, body = decode_payload(message.payload)
            if topic in self.apps:
                self.apps[topic].apply(body[2])
            self.log.setdefault(topic, {}).setdefault(self.peer_id, OriginLog()).add(seq, raw)
            self.next_seq[topic] = max(self.next_seq.get(topic, 1), seq + 1)

    # ----- sending -------------------------------------------------------------------

    def nonce(self) -> bytes:
        """16 bytes no other payload of any node repeats: ``BLAKE3(peer id || boot || counter)``."""
        self._nonce += 1
        return blake3.blake3(self.peer_id + self._nonce.to_bytes(16, "big")).digest()[:NONCE_BYTES]

    def seal(self, kind: str, body: list, now: int, topic: str) -> bytes:
        return wire_message.seal(self.identity, topic, now, encode_payload(kind, body))

    def gossip(self, raw: bytes, exclude: Iterable[bytes], out: Outbox) -> None:
        """Push ``raw`` to ``fanout`` members drawn from those not excluded."""
        skip = set(exclude)
        pool = [p for p in self.peers if p not in skip]
        for peer in self.rng.sample(pool, min(self.config.fanout, len(pool))):
            out.add(peer, raw)

    def push(self, raw: bytes, origin: bytes, seq: int, out: Outbox) -> None:
        """Push operation ``(origin, seq)`` to this node's children in its broadcast tree."""
        for child in self.trees.push_targets(origin, seq):
            out.add(child, raw)

    def publish(self, topic: str, data: bytes, now: int, out: Outbox | None = None) -> Published:
        """Make, persist and push this node's next operation on ``topic``; returns once committed."""
        if topic not in self.apps:
            raise ValueError(f"no application for topic {topic!r} on this node")
        seq = self.next_seq[topic]
        raw = self.seal(OP, [seq, self.nonce(), data], now, topic)
        self._persist(topic, seq, raw)
        self.next_seq[topic] = seq + 1
        self.log[topic].setdefault(self.peer_id, OriginLog()).add(seq, raw)
        self.news = True
        mine = out is None
        out = Outbox() if mine else out
        self.push(raw, self.peer_id, seq, out)
        return Published(decode_message(raw).msg_id, seq, out.datagrams() if mine else [])

    def _persist(self, topic: str, seq: int, raw: bytes) -> None:
        with self.store.transaction():
            self.store.execute("INSERT INTO own_messages (topic, seq, message) VALUES (?, ?, ?)", (topic, seq, raw))

    # ----- receiving -----------------------------------------------------------------

    def _verdict(self, message: Message | None, kind: str | None, outcome: str, repaired: bool = False) -> str:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        if self.config.record_verdicts:
            self.verdicts.append(Verdict(message.signer if message else None, message.topic if message else None, kind,
                                         outcome, message.msg_id if message else None, repaired))
        return outcome

    def take_verdicts(self) -> list[Verdict]:
        verdicts, self.verdicts = self.verdicts, []
        return verdicts

    def handle(self, datagram: bytes, now: int, out: Outbox | None = None) -> Outgoing:
        """Act on a datagram from the network; returns the datagrams to send (into ``out`` if given)."""
        mine = out is None
        out = Outbox() if mine else out
        try:
            raws = decode_datagram(datagram)
        except DecodeError:
            self._verdict(None, None, "malformed")
            return []
        for raw in raws:
            self._receive(raw, now, out)
        return out.datagrams() if mine else []

    def admit(self, raw: bytes) -> tuple[Message | None, str | None]:
        """Steps 1-4 of the module docstring: the message, or the reason it is refused."""
        try:
            message = decode_message(raw)
        except DecodeError:
            return None, "malformed"
        reason = wire_message.authenticate(message, self.verifier, self.member_keys)
        if reason is None:
            if message.signer in self.members:
                self.member_keys[message.signer] = message.public_key
            else:
                reason = "not a member"
        return message, reason

    def replay_key(self, message: Message) -> bytes:
        return message.payload_hash

    def _receive(self, raw: bytes, now: int, out: Outbox) -> None:
        message, reason = self.admit(raw)
        if reason is not None:
            self._verdict(message, None, reason)
            return
        if abs(message.epoch_secs * NS_PER_SECOND - now) > self.config.replay_ttl_ns:
            self._verdict(message, None, "stale")
            return
        if not self.replay.take(self.replay_key(message), now):
            self._verdict(message, None, "replayed")
            return
        try:
            kind, body = decode_payload(message.payload)
            handler = self.handlers.get(kind)
            if handler is None:
                raise DecodeError(f"unknown payload kind {kind!r}")
        except DecodeError:
            self._verdict(message, None, "malformed payload")
            return
        try:
            outcome = handler(message, body, now, out)
        except DecodeError:
            outcome = "malformed payload"
        self._verdict(message, kind, outcome)

    def directed(self, body: list, kind: str) -> None:
        """A directed payload starts ``[to, nonce, ...]``; ``DecodeError`` unless it is for this node."""
        if len(body) < 2:
            raise DecodeError(f"{kind}: a directed payload starts [to, nonce]")
        wire.expect_bytes(body[0], f"{kind}.to", 32)
        wire.expect_bytes(body[1], f"{kind}.nonce", NONCE_BYTES)

    # ----- logged topics -------------------------------------------------------------

    def _take_op(self, message: Message, body: list) -> tuple[str, int]:
        """Apply an operation this node does not hold ("accepted"; "duplicate" if it holds it), and its seq."""
        if not (len(body) == 3 and type(body[0]) is int and 1 <= body[0] <= U64_MAX and type(body[1]) is bytes
                and len(body[1]) == NONCE_BYTES and type(body[2]) is bytes):  # the common case in one test; else say why
            wire.expect_list(body, OP, length=3)
            wire.expect_int(body[0], f"{OP}.seq", 1, U64_MAX)
            wire.expect_bytes(body[1], f"{OP}.nonce", NONCE_BYTES)
            wire.expect_bytes(body[2], f"{OP}.data")
        seq, _, data = body
        app = self.apps.get(message.topic)
        if app is None:
            return "unknown topic", seq
        origins = self.log[message.topic]
        log = origins.get(message.signer)
        if log is not None and (seq <= log.watermark or seq in log.extras):  # seq in log, without the call
            return "duplicate", seq
        app.apply(data)  # DecodeError: refused whole, nothing changed
        if log is None:
            log = origins[message.signer] = OriginLog()
        log.add(seq, message.raw)
        self.news = True
        return "accepted", seq

    def _on_op(self, message: Message, body: list, now: int, out: Outbox) -> str:
        outcome, seq = self._take_op(message, body)
        if outcome == "accepted":
            for child in self.trees.push_targets(message.signer, seq):
                out.add(child, message.raw)
            if seq > self.log[message.topic][message.signer].watermark:  # an earlier one is missing
                self.announced(message.topic, message.signer, message.signer, [[1, seq - 1]], now)
        return outcome

    def holds(self, topic: str) -> dict[bytes, Ranges]:
        """Per origin, the seq ranges of ``topic`` this node holds."""
        return {origin: log.ranges() for origin, log in self.log.get(topic, {}).items()}

    def digest_ranges(self, log: OriginLog) -> Ranges:
        """What this node holds of one origin, as its digests say it and as it compares with a peer's."""
        return log.ranges()

    def _digest(self) -> list:
        return [[topic, [[origin, self.digest_ranges(log)[:MAX_DIGEST_RANGES]] for origin, log in sorted(origins.items())]]
                for topic, origins in sorted(self.log.items())]

    def _messages_in(self, topic: str, origin: bytes, ranges: Ranges, into: list[bytes], held: Ranges | None = None) -> None:
        """Add to ``into`` (up to ``repair_batch``) the messages of ``ranges`` this node holds (``held``:
        its ranges of that origin, if the caller has them)."""
        log = self.log.get(topic, {}).get(origin)
        if log is None or len(into) >= self.config.repair_batch:
            return
        held = log.ranges() if held is None else held
        for lo, hi in subtract(held, subtract(held, ranges)):
            for seq in range(lo, hi + 1):
                if len(into) >= self.config.repair_batch:
                    return
                into.append(log.message(seq))

    def _on_digest(self, message: Message, body: list, now: int, out: Outbox) -> str:
        self.directed(body, DIGEST)
        if body[0] != self.peer_id:
            return "not for me"
        theirs = decode_digest(wire.expect_list(body, DIGEST, length=3)[2], f"{DIGEST}.digest")
        missing: list[bytes] = []
        want = []
        for topic in sorted(self.log):
            their_topic = theirs.get(topic, {})
            for origin, log in sorted(self.log[topic].items()):
                if len(missing) < self.config.repair_batch:
                    held = log.ranges()
                    self._messages_in(topic, origin, subtract(held, their_topic.get(origin, [])), missing, held)
            lacking = []
            for origin, ranges in sorted(their_topic.items()):
                if origin not in self.members:
                    continue
                mine = self.log[topic].get(origin)
                gap = subtract(ranges, self.digest_ranges(mine) if mine else [])
                if gap:
                    lacking.append([origin, gap[:MAX_DIGEST_RANGES]])
            if lacking:
                want.append([topic, lacking])
        if missing or want:
            out.add(message.signer, self.seal(REPAIR, [message.signer, self.nonce(), missing, want or None], now, ANTI_ENTROPY))
        return "accepted"

    def _on_repair(self, message: Message, body: list, now: int, out: Outbox) -> str:
        self.directed(body, REPAIR)
        if body[0] != self.peer_id:
            return "not for me"
        _, _, raws, want = wire.expect_list(body, REPAIR, length=4)
        raws = wire.expect_list(raws, f"{REPAIR}.messages")
        if len(raws) > MAX_REPAIR_MESSAGES:
            raise DecodeError(f"{REPAIR}: {len(raws)} messages exceed {MAX_REPAIR_MESSAGES}")
        for n, raw in enumerate(raws):
            wire.expect_bytes(raw, f"{REPAIR}.messages[{n}]")
        wanted = None if want is None else decode_digest(want, f"{REPAIR}.want")
        fresh = 0
        for raw in raws:
            inner, reason = self.admit(raw)
            if reason is None:
                try:
                    kind, inner_body = decode_payload(inner.payload)
                    reason = self._take_op(inner, inner_body)[0] if kind == OP else "not repairable"
                except DecodeError:
                    reason = "malformed payload"
            self._verdict(inner, OP, reason, repaired=True)
            fresh += reason == "accepted"
        if self.asks_again(len(raws), fresh):
            out.add(message.signer, self.seal(DIGEST, [message.signer, self.nonce(), self._digest()], now, ANTI_ENTROPY))
        if wanted:
            sent: list[bytes] = []
            for topic, origins in sorted(wanted.items()):
                for origin, ranges in sorted(origins.items()):
                    self._messages_in(topic, origin, ranges, sent)
            if sent:
                out.add(message.signer, self.seal(REPAIR, [message.signer, self.nonce(), sent, None], now, ANTI_ENTROPY))
        return "accepted"

    def asks_again(self, carried: int, fresh: int) -> bool:
        """Whether a repair of ``carried`` operations, ``fresh`` of them new here, starts the next
        round at once: only a full one (the peer had more than one repair holds) that brought
        news. A full repair of operations another round already brought asks for nothing: at a
        heal every member repairs at once, and parallel rounds that each asked again would
        re-send each other's operations and multiply (the heal storm)."""
        return carried >= self.config.repair_batch and fresh > 0

    def lacking(self, topic: str, origin: bytes, ranges: Ranges) -> Ranges:
        """The seqs of ``ranges`` this node lacks of ``origin`` on ``topic`` (by what its digests say it holds)."""
        log = self.log[topic].get(origin)
        if log is None:
            return ranges
        if not log.extras and ranges[-1][1] <= log.watermark:  # the common case: nothing new
            return []
        return subtract(ranges, self.digest_ranges(log))

    def _on_have(self, message: Message, body: list, now: int, out: Outbox) -> str:
        self.directed(body, HAVE)
        theirs = decode_digest(wire.expect_list(body, HAVE, length=3)[2], f"{HAVE}.digest")
        if body[0] != self.peer_id:
            return "not for me"
        for topic, origins in theirs.items():
            if topic in self.log:
                for origin, ranges in origins.items():
                    if ranges and origin in self.members:
                        self.announced(topic, message.signer, origin, ranges, now)
        return "accepted"

    def announced(self, topic: str, by: bytes, origin: bytes, ranges: Ranges, now: int) -> None:
        """Member ``by`` holds ``ranges`` of ``origin``'s operations on ``topic`` (it said so in a have, or it is
        the origin and pushed a later one): what of that this node lacks is pulled from it if still missing
        ``gap_pull_ns`` from now (the first announcement of a gap is the one acted on)."""
        key = (topic, origin)
        if key not in self._announced:
            gap = self.lacking(topic, origin, ranges)
            if gap:
                self._announced[key] = (by, gap[:MAX_DIGEST_RANGES], now)

    def _pull(self, now: int, out: Outbox) -> None:
        """Pull from their announcers what was announced at least ``gap_pull_ns`` ago and this node still lacks:
        fewer than ``repair_batch`` operations from each announcer a tick (so no answer is a full repair,
        which would start a round of digests); what is left is pulled at the next tick."""
        wants: dict[bytes, dict[str, list]] = {}
        budgets: dict[bytes, int] = {}
        for key, (announcer, gap, since) in list(self._announced.items()):
            if now - since < self.config.gap_pull_ns:
                continue
            del self._announced[key]
            topic, origin = key
            budget = budgets.get(announcer, self.config.repair_batch - 1)
            now_wanted, left = split_ranges(self.lacking(topic, origin, gap), budget)
            if now_wanted:
                wants.setdefault(announcer, {}).setdefault(topic, []).append([origin, now_wanted])
                budgets[announcer] = budget - sum(hi - lo + 1 for lo, hi in now_wanted)
            if left:
                self._announced[key] = (announcer, left, since)
        for announcer, topics in sorted(wants.items()):
            want = [[topic, sorted(origins)] for topic, origins in sorted(topics.items())]
            out.add(announcer, self.seal(REPAIR, [announcer, self.nonce(), [], want], now, ANTI_ENTROPY))

    # ----- signing sessions ----------------------------------------------------------

    def send_envelope(self, to: bytes, role: str, envelope: bytes, now: int) -> Outgoing:
        """Carry a threshold-signing envelope to member ``to``'s ``role`` core."""
        if role not in ROLES or to not in self.members:
            raise ValueError(f"an envelope goes to a member's signer or coordinator, not {role!r} of {to.hex()[:16]}")
        out = Outbox()
        self._carry(to, role, envelope, now, out)
        return out.datagrams()

    def _carry(self, to: bytes, role: str, envelope: bytes, now: int, out: Outbox) -> None:
        out.add(to, self.seal(ENVELOPE, [to, self.nonce(), role, envelope], now, SIGNING))

    def _on_envelope(self, message: Message, body: list, now: int, out: Outbox) -> str:
        self.directed(body, ENVELOPE)
        to, _, role, envelope = wire.expect_list(body, ENVELOPE, length=4)
        if role not in ROLES:
            raise DecodeError(f"{ENVELOPE}: unknown role {role!r}")
        envelope = wire.expect_bytes(envelope, f"{ENVELOPE}.envelope")
        if to != self.peer_id:
            return "not for me"
        if self.envelope_sink is None:
            return "no signing core"
        for answer_to, answer_role, answer in self.envelope_sink(role, envelope, now):
            self._carry(answer_to, answer_role, answer, now, out)
        return "accepted"

    # ----- presence ------------------------------------------------------------------

    def _on_beacon(self, message: Message, body: list, now: int, out: Outbox) -> str:
        wire.expect_bytes(wire.expect_list(body, BEACON, length=1)[0], f"{BEACON}.nonce", NONCE_BYTES)
        if message.signer != self.peer_id:
            self.last_beacon[message.signer] = now
        self.gossip(message.raw, (message.signer,), out)
        return "accepted"

    def online_peers(self, now: int) -> frozenset[bytes]:
        """The members this node accepted a beacon of less than the presence TTL ago."""
        ttl = self.config.presence_ttl_ns
        return frozenset(peer for peer, at in self.last_beacon.items() if now - at < ttl)

    # ----- time ----------------------------------------------------------------------

    def tick(self, now: int, out: Outbox | None = None) -> Outgoing:
        """Whatever is due at ``now``: a beacon, a have, pulls, an anti-entropy digest, lookups to fail over
        (the datagrams to send; into ``out`` if given)."""
        mine = out is None
        out = Outbox() if mine else out
        self.replay.purge(now)
        if self.config.beacons and now >= self.next_beacon:
            self.next_beacon = now + self.config.beacon_period_ns
            self.gossip(self.seal(BEACON, [self.nonce()], now, PRESENCE), (), out)
        if now >= self.next_anti_entropy and self.peers:
            self.next_anti_entropy = now + self.config.anti_entropy_period_ns
            if not self._ae_turn:
                self._ae_turn = self.rng.sample(self.peers, len(self.peers))
            peer = self._ae_turn.pop()
            out.add(peer, self.seal(DIGEST, [peer, self.nonce(), self._digest()], now, ANTI_ENTROPY))
        if self.news and now >= self.next_have and self.peers:
            self.news = False
            self.next_have = now + self.config.have_period_ns
            if not self._have_turn:
                self._have_turn = self.rng.sample(self.peers, len(self.peers))
            peer = self._have_turn.pop()
            out.add(peer, self.seal(HAVE, [peer, self.nonce(), self._digest()], now, ANTI_ENTROPY))
        self._pull(now, out)
        self.foaf.tick(now)
        self.rendezvous.tick(now, out)
        return out.datagrams() if mine else []

    def __repr__(self) -> str:
        return f"Node({self.peer_id.hex()[:8]}, boot {self.boot})"
