"""The identity proof of a connection against a man in the middle: ``models.handshake``
against ``implementations.transport.auth.Handshake``, in process.

Two or three honest nodes (Ed25519 identities and certificate fingerprints from fixed seeds)
and Mallory, a node of her own (her key, her certificate) who records every handshake message
any honest side sends, on every connection (more than she could: TLS hides the connections she
is not an end of; a stronger adversary only makes the claims harder to keep). Rules:

* ``open``: a connection from a client to a listener, each an honest node or Mallory (not
  both); the client pins the listener's certificate fingerprint (TLS made sure the listener
  holds it: Mallory's when she listens) and knows the identity key it dialed or not
  (``expected``: none, the listener's, or another's, as a forged address record would say).
  Both honest ends are made and started (the client sends its hello).
* ``deliver``: an honest end takes the next message its honest peer sent, or a later one
  (reordered);
* on a connection she is an end of, Mallory sends the honest end: ``replay``, any message she
  recorded (relayed from another connection, replayed from another session, a role swapped, a
  hello's fingerprint rewritten to the one the receiver pinned or to hers); ``hello``, a hello
  of her making (her key, an honest node's, the receiver's own, an empty key, a key that takes
  the hello to exactly ``MAX_AUTH_MESSAGE_BYTES`` or one byte past; a fresh nonce, the
  receiver's own echoed, or one she saw; the fingerprint the receiver pinned, hers or a node's);
  ``proof``, a signature of hers over this session's transcript, over it for the other role,
  for another listener's fingerprint or another session's nonce, or garbage, a byte short, a
  signature that takes the proof to exactly the limit or one byte past it; ``spoil``, the
  message due spoiled on the wire (cut, a byte too many, a field too many or too few, another
  version, a field of the wrong type or length, not an array).

The model (``models/handshake.py``) says, for each message, what the side sends back or the
refusal it gives. After each message taken the machine checks the side's answer byte for byte
against the model's (a hello ``["transport.hello", 1, [key, nonce, fingerprint]]``, a proof
``["transport.proof", 1, [signature]]``, the signature Ed25519 over the transcript's canonical
bytes ``["transport.transcript", 1, [role, server fingerprint, client fingerprint, client nonce,
server nonce]]``, encoded here with msgpack, not by the module under test); each refusal must be
an ``AuthError`` naming what failed (``REFUSAL_TEXT``), after which the connection closes (as
the endpoint closes it) and the side knows no peer. After every step, every honest side's
``done`` and ``peer_public_key`` are the model's, and a side that finished knows exactly the key
of the other end of its connection: an honest pair learns each other's keys, and a client that
dialed Mallory or a listener Mallory dialed can finish only with Mallory's own key. So a relay
fails, a proof from another session or role fails, and no claim of Mallory's is believed.

Nonces: ``Handshake`` draws its nonce with ``os.urandom`` when it is made. The machine checks the
hello it made (its key, its fingerprint, 32 bytes of nonce no earlier side drew), then replaces
it with one whose nonce comes from a counter (``own``, read by every later call and never
written again). That is faithful: all the protocol asks of a nonce is that it is fresh (no
earlier side has it) and that Mallory cannot know it before she sees it; the counter's nonces
are distinct, and Mallory's rules use only nonces she has seen, except ``echo``, which hands a
side its own nonce as if she had guessed it (that is how the echo check is tested on a server).
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import blake3
import msgpack
import nacl.signing
from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

from harness import TracedMachine, guard, machine_test
from harness.machine import Observation
from harness.trace import shorten
from implementations.limits import MAX_AUTH_MESSAGE_BYTES
from implementations.transport.auth import AuthError, Hello
from models import handshake as model

#: Honest nodes 0..2 and Mallory (index ``MALLORY``): seeds, keys and certificate fingerprints.
MALLORY = 3
SEEDS = tuple(blake3.blake3(b"handshake-machine node %d" % i).digest() for i in range(MALLORY + 1))
SIGNERS = tuple(nacl.signing.SigningKey(seed) for seed in SEEDS)
KEYS = tuple(bytes(signer.verify_key) for signer in SIGNERS)
FINGERPRINTS = tuple(blake3.blake3(b"handshake-machine certificate %d" % i).digest() for i in range(MALLORY + 1))
SIGNER_OF = dict(zip(KEYS, SIGNERS, strict=True))
#: Connections open and unfinished at once, at most.
MAX_LIVE = 3
HELLO, PROOF, TRANSCRIPT = "transport.hello", "transport.proof", "transport.transcript"

#: The keys a hello of Mallory's may name: a party's (0..3), the receiver's own, an empty one, or
#: one that takes the hello to exactly MAX_AUTH_MESSAGE_BYTES (``at-limit``) or one byte past it.
HELLO_KEYS = (MALLORY, 0, 1, 2, "receiver", "empty", "at-limit", "past-limit")
HELLO_NONCES = ("fresh", "seen", "echo")
HELLO_FINGERPRINTS = ("pinned", MALLORY, 0, 1, 2)
#: What a proof of Mallory's signs, or what it carries instead of a signature.
PROOFS = ("right", "wrong-role", "other-fingerprint", "other-nonce", "garbage", "short", "at-limit", "past-limit")
REWRITES = (None, "pinned", "mallory")
#: How ``spoil`` spoils the message due (a hello or a proof); the words its refusal must hold.
SPOILS = ("cut", "trailing", "empty", "extra-field", "missing-field", "version", "bool-version", "not-array",
          "body-not-array", "field-type", "field-length", "second-field-length")

#: The refusal ``models.handshake`` names, as the side's ``AuthError`` must say it (``{due}``:
#: the message due, ``{peer}``: the peer's role, ``{size}``: the message's length).
REFUSAL_TEXT = {
    "already finished": "handshake already finished",
    "already refused": "handshake already refused: {first}",
    "limit": "transport.{due}: {size} bytes exceeds MAX_AUTH_MESSAGE_BYTES (" + str(MAX_AUTH_MESSAGE_BYTES) + ")",
    "echoed nonce": "transport.hello: the peer echoed our nonce",
    "not the node dialed": "transport.hello: the listener is not the node dialed (another identity key)",
    "other certificate": "transport.hello: the listener names a certificate other than the one pinned",
    "own identity": "transport.hello: the peer claims our own identity",
    "bad proof": "transport.proof: the {peer}'s signature does not verify over this session's transcript",
}


def pack(value) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def hello_bytes(hello: model.Hello) -> bytes:
    return pack([HELLO, 1, [hello.key, hello.nonce, hello.fingerprint]])


def transcript_bytes(t: model.Transcript) -> bytes:
    return pack([TRANSCRIPT, 1, [t.role, t.server_fingerprint, t.client_fingerprint, t.client_nonce, t.server_nonce]])


def signature(key: bytes, t: model.Transcript) -> bytes:
    return SIGNER_OF[key].sign(transcript_bytes(t)).signature


def proof_bytes(signature_: bytes) -> bytes:
    return pack([PROOF, 1, [signature_]])


def encoded(message: model.Message) -> bytes:
    """The bytes an honest side sends for ``message`` (a hello, or a proof an honest key made)."""
    if isinstance(message, model.Hello):
        return hello_bytes(message)
    assert isinstance(message, model.Proof) and message.signer is not None and message.transcript is not None
    return proof_bytes(signature(message.signer, message.transcript))


def padded(build, size: int) -> bytes:
    """``build(n)`` (bytes growing with ``n``) at exactly ``size`` bytes."""
    n = size
    for _ in range(3):
        n += size - len(build(n))
    data = build(n)
    assert len(data) == size, (len(data), size)
    return data


@attrs.frozen
class Wire:
    """A handshake message on the wire: its bytes, what the model makes of it, and a label."""

    data: bytes
    meaning: model.Message
    label: str
    #: For bytes that are neither a hello nor a proof: the words the refusal must hold.
    words: str = ""


@attrs.define
class End:
    """An honest end of a connection: the side under test, the model's side, what it has not taken."""

    node: int
    handshake: object
    side: model.Side
    inbox: list[Wire] = attrs.field(factory=list)
    #: The text of the side's first refusal ("" until it refuses).
    refusal: str = ""


@attrs.define
class Connection:
    client: int
    server: int
    ends: dict[str, End]
    closed: str = ""

    def party(self, role: str) -> int:
        return self.client if role == model.CLIENT else self.server


class HandshakeMachine(TracedMachine):
    name = "handshake"
    rule_classes: ClassVar[dict[str, str]] = {"start": "setup", "open": "operations", "deliver": "delivery",
                                              "replay": "adversary", "hello": "adversary", "proof": "adversary",
                                              "spoil": "adversary"}
    class_floors: ClassVar[dict[str, float]] = {"delivery": 0.08, "adversary": 0.35}

    def __init__(self, implementation, stats=None) -> None:
        super().__init__(implementation, stats)
        self.sides = None
        self.nodes = 0
        self.connections: list[Connection] = []
        self.seen: list[Wire] = []  # every message an honest side sent, in order: Mallory's record
        self.drawn: set[bytes] = set()  # every nonce a Handshake drew
        self.counter = 0

    # --- set-up -------------------------------------------------------------------------------

    @initialize(nodes=st.sampled_from([2, 3]))
    def start(self, nodes):
        self.do("start", nodes=nodes)

    def step_start(self, nodes: int) -> None:
        self.require(self.sides is None, "already started")
        self.require(nodes in (2, 3), f"{nodes} honest nodes: 2 or 3")
        self.sides = self.implementation.make_replica(0, None)
        self.identities = [self.sides.identity(SEEDS[i]) for i in range(nodes)]
        for i, identity in enumerate(self.identities):
            assert identity.public_key == KEYS[i], f"node {i}'s identity has another key"
        self.nodes = nodes

    def fresh_nonce(self, who: str) -> bytes:
        self.counter += 1
        return blake3.blake3(b"%s nonce %d" % (who.encode(), self.counter)).digest()

    def party_name(self, party: int) -> str:
        return "Mallory" if party == MALLORY else f"node {party}"

    # --- connections --------------------------------------------------------------------------

    def live(self) -> int:
        return sum(1 for c in self.connections if not c.closed and not all(e.side.done for e in c.ends.values())
                   and not any(e.refusal for e in c.ends.values()))

    @guard(lambda self: self.live() < MAX_LIVE)
    @rule(mallory=st.sampled_from(["listens", "dials", "listens", "dials", "no"]), a=st.integers(0, 2),
          b=st.integers(0, 3), expected=st.sampled_from(["none", "listener", "listener", "other"]),
          other=st.integers(0, 3))
    def open(self, mallory, a, b, expected, other):
        parties = [*range(self.nodes), MALLORY]
        a = a % self.nodes
        others = [node for node in range(self.nodes) if node != a]
        b = a if b == 3 else others[b % len(others)]  # a node that dials itself: one time in four
        client, server = {"listens": (a, MALLORY), "dials": (MALLORY, a), "no": (a, b)}[mallory]
        key = {"none": None, "listener": server, "other": parties[other % len(parties)]}[expected]
        self.do("open", client=client, server=server, expected=key if client != MALLORY else None)

    def step_open(self, client: int, server: int, expected: int | None) -> None:
        parties = (*range(self.nodes), MALLORY)
        self.require(client in parties and server in parties and (client, server) != (MALLORY, MALLORY),
                     f"no connection from {client} to {server}")
        self.require(expected is None or expected in parties, f"no key {expected}")
        self.require(client != MALLORY or expected is None, "Mallory dials whom she likes")
        pinned = FINGERPRINTS[server]
        ends = {}
        for role, party in ((model.CLIENT, client), (model.SERVER, server)):
            if party == MALLORY:
                continue
            is_client = role == model.CLIENT
            expected_key = KEYS[expected] if is_client and expected is not None else None
            handshake = self.sides.side(self.identities[party], FINGERPRINTS[party], is_client, pinned, expected_key)
            built = handshake.own
            assert (built.public_key, built.fingerprint) == (KEYS[party], FINGERPRINTS[party]), (
                f"{self.party_name(party)}'s {role} hello names key {shorten(built.public_key)} and fingerprint "
                f"{shorten(built.fingerprint)}, not its own")
            assert isinstance(built.nonce, bytes) and len(built.nonce) == 32, f"a nonce of {len(built.nonce)} bytes"
            assert built.nonce not in self.drawn, "a Handshake drew a nonce an earlier one drew"
            self.drawn.add(built.nonce)
            own = model.Hello(KEYS[party], self.fresh_nonce(self.party_name(party)), FINGERPRINTS[party])
            handshake.own = Hello(own.key, own.nonce, own.fingerprint)
            side = model.Side(role, own, pinned, expected_key)
            assert not handshake.done and handshake.peer_public_key is None, "a new side has finished"
            ends[role] = End(party, handshake, side)
        connection = Connection(client, server, ends)
        self.connections.append(connection)
        for role, end in ends.items():
            sent = end.handshake.start()
            expected_out = model.start(end.side)
            self.check_sent(connection, role, sent, expected_out, "start")

    def check_sent(self, connection: Connection, role: str, sent: list, expected: tuple, after: str) -> None:
        """``sent`` must be the model's ``expected``, byte for byte; it goes to the peer (and to Mallory's record)."""
        end = connection.ends[role]
        want = [encoded(m) for m in expected]
        if sent != want:
            theirs = [msgpack.unpackb(b) if isinstance(b, bytes) else b for b in sent]
            mine = [msgpack.unpackb(b) for b in want]
            raise AssertionError(f"connection {self.connections.index(connection)}: the {role} "
                                 f"({self.party_name(end.node)}) sent {theirs} after {after}, the model says {mine}")
        peer = connection.ends.get(model.other(role))
        for data, meaning in zip(sent, expected, strict=True):
            kind = "hello" if isinstance(meaning, model.Hello) else "proof"
            wire = Wire(data, meaning, f"{self.party_name(end.node)}'s {role} {kind} on connection "
                                       f"{self.connections.index(connection)}")
            self.seen.append(wire)
            if peer is not None:
                peer.inbox.append(wire)

    # --- taking a message ---------------------------------------------------------------------

    def target(self, connection: int, role: str) -> tuple[Connection, End]:
        self.require(0 <= connection < len(self.connections), f"no connection {connection}")
        conn = self.connections[connection]
        self.require(role in conn.ends, f"connection {connection} has no honest {role}")
        self.require(not conn.closed, f"connection {connection} is closed ({conn.closed})")
        return conn, conn.ends[role]

    def take(self, conn: Connection, role: str, wire: Wire) -> None:
        """The honest ``role`` end of ``conn`` takes ``wire``: it answers or refuses as the model says."""
        end = conn.ends[role]
        due = "hello" if end.side.peer is None else "proof"
        side, out, refusal = model.receive(end.side, wire.meaning)
        try:
            sent = end.handshake.receive(wire.data)
        except Exception as error:
            if refusal is None:
                raise AssertionError(f"the {role} refused {wire.label}: {type(error).__name__}: {error}; "
                                     "the model takes it") from None
            self.check_refusal(error, refusal, end, wire, due)
            # A connection closes on a refusal; before it is closed Mallory gets one more message
            # through to a side that refused her (a transport closes asynchronously): refused too.
            if end.refusal or MALLORY not in (conn.client, conn.server):
                conn.closed = f"the {role} refused {wire.label}: {refusal}"
            else:
                end.side, end.refusal = side, str(error)
            return
        if refusal is not None:
            raise AssertionError(f"the {role} took {wire.label}; the model refuses it: {refusal}")
        end.side = side
        self.check_sent(conn, role, sent, out, f"taking {wire.label}")

    def check_refusal(self, error: Exception, refusal: str, end: End, wire: Wire, due: str) -> None:
        text = str(error)
        assert isinstance(error, AuthError), (f"{wire.label} refused with {type(error).__name__}: {text}, "
                                              f"not an AuthError ({refusal})")
        if refusal in ("hello", "proof"):
            kind = "hello" if isinstance(wire.meaning, model.Hello) else "proof"
            words = wire.words or f"message is of kind 'transport.{kind}', expected 'transport.{due}'"
            assert text.startswith(f"transport.{due}: ") and words in text, (
                f"{wire.label} refused as {text!r}, not as a {due} that is not one ({words!r})")
            return
        want = REFUSAL_TEXT[refusal].format(due=due, size=len(wire.data), peer=model.other(end.side.role),
                                            first=end.refusal)
        assert text == want, f"{wire.label} refused as {text!r}; the model refuses it as {refusal!r}: {want!r}"

    def waiting(self) -> list[tuple[int, str]]:
        return [(i, role) for i, c in enumerate(self.connections) if not c.closed
                for role, end in c.ends.items() if end.inbox]

    @guard(lambda self: bool(self.waiting()))
    @rule(end=st.integers(0, 7), which=st.sampled_from([0, 0, 0, 1]))
    def deliver(self, end, which):
        waiting = self.waiting()
        i, role = waiting[end % len(waiting)]
        self.do("deliver", connection=i, role=role, which=which % len(self.connections[i].ends[role].inbox))

    def step_deliver(self, connection: int, role: str, which: int) -> None:
        """The ``role`` end takes the ``which``-th message waiting for it (0: the next one)."""
        conn, end = self.target(connection, role)
        self.require(0 <= which < len(end.inbox), f"no message {which} waits for the {role} of connection {connection}")
        self.take(conn, role, end.inbox.pop(which))

    # --- Mallory ------------------------------------------------------------------------------

    def mallory_ends(self) -> list[tuple[int, str]]:
        """The honest ends Mallory talks to: on every open connection she is the other end of."""
        return [(i, role) for i, c in enumerate(self.connections) if not c.closed and MALLORY in (c.client, c.server)
                for role in c.ends]

    def pick(self, index: int, hello_taken: bool = False) -> tuple[int, str]:
        ends = self.mallory_ends()
        if hello_taken:  # a proof goes where one is due, or after the end (a hello is due: see replay and spoil)
            ends = [(i, role) for i, role in ends if self.connections[i].ends[role].side.peer is not None]
        return ends[index % len(ends)]

    @guard(lambda self: bool(self.mallory_ends()) and bool(self.seen))
    @rule(to=st.integers(0, 7), message=st.integers(0, 15), rewrite=st.sampled_from(REWRITES))
    def replay(self, to, message, rewrite):
        connection, role = self.pick(to)
        index = len(self.seen) - 1 - message % len(self.seen)  # 0: the last message she saw
        self.do("replay", connection=connection, role=role, message=index,
                rewrite=rewrite if isinstance(self.seen[index].meaning, model.Hello) else None)

    def step_replay(self, connection: int, role: str, message: int, rewrite: str | None) -> None:
        """Mallory sends the ``role`` end a message she recorded; a hello's fingerprint rewritten
        to the one the receiver pinned (``pinned``) or to hers (``mallory``) if asked."""
        conn, end = self.target(connection, role)
        self.require(MALLORY in (conn.client, conn.server), f"Mallory is no end of connection {connection}")
        self.require(0 <= message < len(self.seen), f"Mallory saw no message {message}")
        self.require(rewrite in REWRITES, f"no rewrite {rewrite!r}")
        wire = self.seen[message]
        if rewrite is not None:
            self.require(isinstance(wire.meaning, model.Hello), "only a hello's fingerprint is rewritten")
            fingerprint = end.side.pinned if rewrite == "pinned" else FINGERPRINTS[MALLORY]
            hello = attrs.evolve(wire.meaning, fingerprint=fingerprint)
            wire = Wire(hello_bytes(hello), hello, f"{wire.label}, its fingerprint rewritten ({rewrite})")
        self.take(conn, role, wire)

    @guard(lambda self: bool(self.mallory_ends()))
    @rule(to=st.integers(0, 7), key=st.sampled_from((MALLORY, MALLORY, *HELLO_KEYS)), nonce=st.sampled_from(HELLO_NONCES),
          fingerprint=st.sampled_from(("pinned", *HELLO_FINGERPRINTS)), seen=st.integers(0, 15))
    def hello(self, to, key, nonce, fingerprint, seen):
        connection, role = self.pick(to)
        hellos = [w.meaning.nonce for w in self.seen if isinstance(w.meaning, model.Hello)]
        if nonce == "seen" and not hellos:
            nonce = "fresh"
        parties = (*range(self.nodes), MALLORY)
        key = key if key not in range(3) or key in parties else MALLORY
        fingerprint = fingerprint if fingerprint not in range(3) or fingerprint in parties else MALLORY
        self.do("hello", connection=connection, role=role, key=key, nonce=nonce, fingerprint=fingerprint,
                seen=len(hellos) - 1 - seen % len(hellos) if nonce == "seen" else 0)

    def step_hello(self, connection: int, role: str, key: int | str, nonce: str, fingerprint: int | str,
                   seen: int) -> None:
        """Mallory sends the ``role`` end a hello of her making (see the module)."""
        conn, end = self.target(connection, role)
        self.require(MALLORY in (conn.client, conn.server), f"Mallory is no end of connection {connection}")
        self.require(key in HELLO_KEYS and nonce in HELLO_NONCES and fingerprint in HELLO_FINGERPRINTS,
                     f"no hello {key!r}, {nonce!r}, {fingerprint!r}")
        self.require(not isinstance(key, int) or key < self.nodes or key == MALLORY, f"no node {key}")
        self.require(not isinstance(fingerprint, int) or fingerprint < self.nodes or fingerprint == MALLORY,
                     f"no node {fingerprint}")
        hellos = [w.meaning.nonce for w in self.seen if isinstance(w.meaning, model.Hello)]
        if nonce == "seen":
            self.require(0 <= seen < len(hellos), f"Mallory saw no hello {seen}")
            chosen = hellos[seen]
        else:
            chosen = end.side.own.nonce if nonce == "echo" else self.fresh_nonce("Mallory")
        fp = end.side.pinned if fingerprint == "pinned" else FINGERPRINTS[fingerprint]
        label = f"Mallory's hello (key {key}, nonce {nonce}, fingerprint {fingerprint})"
        if key in ("at-limit", "past-limit"):
            size = MAX_AUTH_MESSAGE_BYTES + (key == "past-limit")
            data = padded(lambda n: hello_bytes(model.Hello(b"\x07" * n, chosen, fp)), size)
            meaning = (model.Unreadable(oversize=True) if key == "past-limit"
                       else model.Hello(msgpack.unpackb(data)[2][0], chosen, fp))
            self.take(conn, role, Wire(data, meaning, label))
            return
        named = {"receiver": end.side.own.key, "empty": b""}.get(key) if isinstance(key, str) else KEYS[key]
        hello = model.Hello(named, chosen, fp)
        self.take(conn, role, Wire(hello_bytes(hello), hello, label))

    @guard(lambda self: any(self.connections[i].ends[role].side.peer is not None for i, role in self.mallory_ends()))
    @rule(to=st.integers(0, 7), how=st.sampled_from(("right", "right", *PROOFS)))
    def proof(self, to, how):
        connection, role = self.pick(to, hello_taken=True)
        self.do("proof", connection=connection, role=role, how=how)

    def step_proof(self, connection: int, role: str, how: str) -> None:
        """Mallory sends the ``role`` end a proof of her making (see the module)."""
        conn, end = self.target(connection, role)
        self.require(MALLORY in (conn.client, conn.server), f"Mallory is no end of connection {connection}")
        self.require(how in PROOFS, f"no proof {how!r}")
        side = end.side
        self.require(side.peer is not None, f"the {role} of connection {connection} has taken no hello")
        right = model.transcript(side, model.other(side.role))
        transcript = {
            "wrong-role": attrs.evolve(right, role=side.role),
            "other-fingerprint": attrs.evolve(right, server_fingerprint=FINGERPRINTS[
                MALLORY if right.server_fingerprint != FINGERPRINTS[MALLORY] else 0]),
            "other-nonce": attrs.evolve(right, **{f"{model.other(side.role)}_nonce": self.fresh_nonce("Mallory")}),
        }.get(how, right)
        signed = signature(KEYS[MALLORY], transcript)
        label = f"Mallory's proof ({how})"
        if how in ("at-limit", "past-limit"):
            size = MAX_AUTH_MESSAGE_BYTES + (how == "past-limit")
            data = padded(lambda n: proof_bytes(b"\x07" * n), size)
            meaning = model.Unreadable(oversize=True) if how == "past-limit" else model.Proof(None, None)
        elif how in ("garbage", "short"):
            data = proof_bytes(bytes(64) if how == "garbage" else signed[:-1])
            meaning = model.Proof(None, None)
        else:
            data, meaning = proof_bytes(signed), model.Proof(KEYS[MALLORY], transcript)
        self.take(conn, role, Wire(data, meaning, label))

    @guard(lambda self: bool(self.mallory_ends()))
    @rule(to=st.integers(0, 7), how=st.sampled_from(SPOILS))
    def spoil(self, to, how):
        connection, role = self.pick(to)
        self.do("spoil", connection=connection, role=role, how=how)

    def step_spoil(self, connection: int, role: str, how: str) -> None:
        """Mallory sends the ``role`` end the message it waits for, spoiled on the wire as ``how``
        says: it must be refused naming the message due and what is wrong."""
        conn, end = self.target(connection, role)
        self.require(MALLORY in (conn.client, conn.server), f"Mallory is no end of connection {connection}")
        self.require(how in SPOILS, f"no spoiling {how!r}")
        due = "hello" if end.side.peer is None else "proof"
        kind = f"transport.{due}"
        fields = ([KEYS[MALLORY], self.fresh_nonce("Mallory"), end.side.pinned] if due == "hello"
                  else [bytes(64)])
        names = ["public key", "nonce", "certificate fingerprint"] if due == "hello" else ["signature"]
        whole = pack([kind, 1, fields])
        if how == "cut":
            data, words = whole[: len(whole) // 2], "not a well-formed message"
        elif how == "trailing":
            data, words = whole + b"\x00", "not a well-formed message"
        elif how == "empty":
            data, words = b"", "not a well-formed message"
        elif how == "extra-field":
            data, words = pack([kind, 1, [*fields, b""]]), f"body: expected {len(fields)} items, got {len(fields) + 1}"
        elif how == "missing-field":
            data, words = pack([kind, 1, fields[:-1]]), f"body: expected {len(fields)} items, got {len(fields) - 1}"
        elif how == "version":
            data, words = pack([kind, 2, fields]), "version 2 is not supported (expected 1)"
        elif how == "bool-version":
            data, words = pack([kind, True, fields]), "version True is not supported (expected 1)"
        elif how == "not-array":
            data, words = pack(kind), "message: expected array, got str"
        elif how == "body-not-array":
            data, words = pack([kind, 1, b"x"]), "body: expected array, got bytes"
        elif how == "field-type":
            data, words = pack([kind, 1, ["x", *fields[1:]]]), f"{names[0]}: expected bytes, got str"
        elif how == "field-length" and due == "hello":
            data, words = pack([kind, 1, [fields[0], fields[1][:31], fields[2]]]), "nonce: expected 32 bytes, got 31"
        elif how == "second-field-length" and due == "hello":
            data, words = (pack([kind, 1, [fields[0], fields[1], fields[2] + b"\x00"]]),
                           "certificate fingerprint: expected 32 bytes, got 33")
        else:  # a proof's one field: its signature, of the wrong type
            data, words = pack([kind, 1, [7]]), "signature: expected bytes, got int"
        self.take(conn, role, Wire(data, model.Unreadable(), f"a {due} spoiled ({how})", words))

    # --- what must hold -----------------------------------------------------------------------

    def check(self) -> None:
        for i, conn in enumerate(self.connections):
            for role, end in conn.ends.items():
                handshake, side = end.handshake, end.side
                assert handshake.done == side.done, (f"connection {i}: the {role} ({self.party_name(end.node)}) "
                                                     f"{'has' if handshake.done else 'has not'} finished; the model "
                                                     f"says {'it has' if side.done else 'not yet'}")
                known = handshake.peer_public_key
                assert known == side.peer_key, (f"connection {i}: the {role} knows its peer as "
                                                f"{self.key_name(known)}, the model says {self.key_name(side.peer_key)}")
                if known is not None:
                    other = conn.party(model.other(role))
                    assert known == KEYS[other], (f"connection {i}: the {role} ({self.party_name(end.node)}) finished "
                                                  f"believing {self.key_name(known)} is the other end, which is "
                                                  f"{self.party_name(other)}")

    def key_name(self, key: bytes | None) -> str:
        if key is None:
            return "nobody"
        return self.party_name(KEYS.index(key)) if key in KEYS else f"key {shorten(key)}"

    def observe(self) -> list[Observation]:
        rows = []
        for i, conn in enumerate(self.connections):
            for role, end in conn.ends.items():
                label = f"connection {i} {role} ({self.party_name(end.node)})"
                rows.append(Observation(label, (end.side.done, self.key_name(end.side.peer_key)),
                                        (end.handshake.done, self.key_name(end.handshake.peer_public_key))))
        return rows


test_handshake_machine = machine_test(HandshakeMachine)
