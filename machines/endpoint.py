"""Real QUIC endpoints (``implementations.transport.endpoint``, ``tls``, ``framing``, ``auth``) in
one process on 127.0.0.1: dials, pins, messages at and past every limit, closes, restarts and
impostors, each checked against what the transport promises.

**How a step runs.** An endpoint's socket and tasks must outlive the step that opened it, and a
machine's steps are synchronous, so each example runs one trio loop in a thread of its own
(``machines.adapters.endpoint_quic.Loopback``; started with the example, ended at its teardown).
A step hands the loop one coroutine and waits for it: the coroutine does what the step does and
then waits, under ``trio.fail_after``, until what it started has *finished* (every message sent is
received and acknowledged, every connection closed is closed at both ends, every refused dial is
closed at the listener too). A wait that runs out fails the step, naming what did not happen. So
each step begins with nothing in flight, and what the endpoints hold after it is a function of the
steps alone: a run replays alike. (One ``trio.run`` per step cannot keep endpoints open between
steps; trio's guest mode needs a host loop the machine would have to write: a thread is simpler.)
Everything the machine reads of an endpoint it reads inside the loop (``snapshot``), never from
this thread while the loop runs. Sockets are on 127.0.0.1 only; the loop, its endpoints and its
certificates' temporary directory are gone when the example ends.

**Rules.** ``start``: 2-4 nodes, identities from fixed seeds, each certificate made (``tls.
load_or_create``) in the example's temporary directory, one per node (in a data directory that
exists and holds other files, or in a path whose directories do not exist yet); a directory a crash
left holding the key alone gets a fresh pair, one holding another node's key is refused. ``dial``: a node dials
another (or itself) with the right pin or another node's certificate, expecting the right
identity key, none, or another node's. ``send``: a burst of 1-5 messages on one end of a link,
sizes drawn from 0, 1, small, 1,200, 64 KiB, a quarter of ``MAX_SEND_BUFFER_BYTES`` less the
header, exactly ``MAX_FRAME_BYTES`` and one byte past it, by ``send_nowait`` (refused past the
send buffer), ``send`` (waits for room) or ``send_to`` (the node's latest connection to the peer,
or a new dial when it has none; a ``send_to`` may open with ``MAX_PENDING_PER_PEER`` small
messages, so the drawn ones go past what waits for a dial; a burst that opens by filling the send
buffer goes on an open link); then, or in the same step, a close.
``close``: one end of a link closes with a reason (empty, short, longer than the 200 characters
that travel), perhaps twice.
``shutdown``, ``restart``: an endpoint closes (with a reason, or by leaving ``open_endpoint``) and
opens again on the same directory and port: the same certificate, so every pin stays valid.
``impostor``: a stranger (a key and certificate of its own) dials a node and forges its proof
claiming a member's key, then sends a message behind it; or, proven as itself, announces a frame
past ``MAX_FRAME_BYTES``, writes on a second stream or ends the message stream; or listens,
claiming a member's key, and a member dials it (``machines.realnet.IMPOSTURES`` and their mirror,
in process). ``stray``: datagrams no QUIC peer sends (``STRAYS``: headers that do not parse, packets
for no connection, Initials too short or of a version not spoken) reach a node's port from a plain
UDP socket.

**The model** (bookkeeping of this module; it imports nothing of the transport but names):

* a dial with the right pin and the right or no expected key is *proven*: ``connect`` returns a
  connection whose peer key is the listener's, the listener publishes one whose peer key is the
  dialer's, and each side's ``peers()`` holds the other; a dial with another pin is refused by
  TLS (``closed: self-signed certificate`` at both ends), with another expected key by the
  identity proof (``refused: transport.hello: the listener is not the node dialed``), to itself
  by the listener (``the peer claims our own identity``): ``TransportError`` naming the address
  and the reason, ``dials_failed`` counts it, the listener publishes nothing and both ends close;
* on a proven link every message sent arrives exactly once, in order, unaltered, at the other
  end, as ``(the sender's key, bytes)``: the bursts of a step, each received before the step
  ends; a message over ``MAX_FRAME_BYTES`` is refused at the call (``FramingError`` naming the
  limit and its size) and never sent; ``send_nowait`` refuses (``SendBufferFull`` naming
  ``MAX_SEND_BUFFER_BYTES`` and the bytes unacknowledged) a message whose frame would take the
  unacknowledged bytes past the limit, exactly at it is fine; ``send`` waits instead;
* ``send_to`` sends on the connection to that peer published last and still open, or dials it
  (the messages wait and follow the proof: the newest ``MAX_PENDING_PER_PEER`` of them, the
  older dropped and counted in ``messages_dropped_pending``);
* a close delivers what was sent before it, then nothing more; the closing end's reason is the
  one given, the peer's ``closed: `` and the first 200 characters of it (``NO_ERROR`` for an
  empty one); a second close changes nothing; sending on a closed end raises ``TransportError``
  naming its reason; an endpoint that closes closes each of its connections so;
* an impostor's forged proof is refused (``the client's signature does not verify``), the
  message behind it never delivered; a frame past the limit, a second stream, an ended stream
  close the connection naming it; a member never takes a forged listener (``the server's
  signature does not verify``);
* a stray datagram is counted once as malformed or unrouted (``STRAYS`` says which), opens no
  connection, gets no answer and changes no link;
* after every step each node's ``peers()`` is the set of keys it has a proven open link with, each
  connection's ``is_open`` and ``reason`` are the model's, no message waits that the model does
  not expect, and ``stats`` count exactly the messages sent, received, dropped while a dial was
  pending or because it failed (``send_to`` an address pinning another certificate: committed
  traces), the dials failed and the connections accepted; the datagrams and bytes sent and the
  datagrams received, which QUIC's acknowledgements and retransmissions keep the model from
  counting, are bounded (``check_traffic``); no endpoint's task crashed.
"""

from __future__ import annotations

import re
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import attrs
import blake3
import trio
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

from harness import TracedMachine, faults, guard
from harness.machine import Observation
from harness.network import network_machine_test
from implementations import limits
from implementations.transport.endpoint import MESSAGE_STREAM, PeerAddress, TransportError, open_endpoint
from implementations.transport.framing import HEADER
from implementations.transport.tls import CERT_FILE, KEY_FILE

#: Node seeds (identity keys) and the impostor's.
SEEDS = tuple(blake3.blake3(b"endpoint-machine node %d" % i).digest() for i in range(4))
IMPOSTOR_SEED = blake3.blake3(b"endpoint-machine impostor").digest()
HOST = "127.0.0.1"
#: The sizes a message is drawn from (small ones more often: big ones cost time).
QUARTER = limits.MAX_SEND_BUFFER_BYTES // 4 - HEADER.size
SIZES = (0, 1, 2, 100, 1200, 0, 1, 100, 65_536, QUARTER, limits.MAX_FRAME_BYTES, limits.MAX_FRAME_BYTES + 1)
#: Messages whose frames add up to exactly MAX_SEND_BUFFER_BYTES.
FILL = (limits.MAX_FRAME_BYTES,) * 3 + (limits.MAX_SEND_BUFFER_BYTES - 3 * (limits.MAX_FRAME_BYTES + HEADER.size)
                                        - HEADER.size,)
MODES = ("send_nowait", "send_nowait", "send", "send_to")
REASONS = ("done", "", "r" * 250, "bye ü")
IMPOSTURES = {
    "forged_proof": "refused: transport.proof: the client's signature does not verify over this session's transcript",
    "oversized_frame": (f"refused: frame of {limits.MAX_FRAME_BYTES + 1} bytes exceeds MAX_FRAME_BYTES "
                        f"({limits.MAX_FRAME_BYTES})"),
    "second_stream": "data on stream 4: a connection carries one stream",
    "ended_stream": "the peer ended the message stream",
    "forged_listener": "refused: transport.proof: the server's signature does not verify over this session's transcript",
}
TLS_REFUSAL = "closed: self-signed certificate"
NOT_DIALED = "refused: transport.hello: the listener is not the node dialed (another identity key)"
OWN_IDENTITY = "refused: transport.hello: the peer claims our own identity"
#: A pin that is no certificate (``dial``'s pin ``not_a_certificate``: a committed trace, no rule
#: draws it): a corrupt address, refused at the call, before a packet leaves.
#: Ports no peer listens on: each makes no ``PeerAddress`` (the ``no_port`` pin of ``dial``).
NO_PORTS = (0, -1, 65536, 70000, "4433", True, None, 4433.5)
NOT_A_CERTIFICATE = b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"
NOT_PEM = "not a PEM certificate: "
SEND_TO_NEEDS_A_KEY = "send_to needs the public key of the node at the address"
CLOSED_ENDPOINT = "endpoint is closed"
#: Seconds a step may wait for what it started (a few MiB over loopback on a loaded machine).
WAIT_SECONDS = 10.0
#: Framed bytes that always leave with a close (one datagram's worth): more, and only a prefix may.
ONE_FLIGHT = 1000
#: What a ``send_to`` burst may take on the stream: a new connection's send buffer also holds the
#: identity proof, so the exact edge of the buffer is probed by ``send_nowait`` alone.
SEND_TO_BYTES = limits.MAX_SEND_BUFFER_BYTES - 4096
#: Live links at most, so an example's steps are spent on more than dialing.
MAX_LINKS = 6
#: Bytes of each message of a ``pile`` (distinct messages, so which ones were dropped shows).
PILE_SIZE = 8


async def gather(inbox, count: int, failed) -> list:
    """Messages from ``inbox`` until ``count`` have come; fails at once, naming why, when ``failed()``
    says they never will (their connection closed, their dial failed) and they have not."""
    received: list = []
    while len(received) < count:
        why = failed()
        with trio.move_on_after(0.005):
            if count - len(received) == 1:  # the last one by receive(), the others by receive_many()
                received.append(await inbox.receive())
            else:
                received += await inbox.receive_many()
        if why and len(received) < count:
            raise AssertionError(f"{why}: {len(received)} of {count} messages arrived")
    return received


def portless(text) -> str:
    """``text`` with the loopback address's port left out: a failure reads alike in every replay."""
    return re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:<port>", str(text))


def framed(sizes) -> int:
    """The bytes the messages of ``sizes`` take on the stream (those a frame can carry)."""
    return sum(size + HEADER.size for size in sizes if size <= limits.MAX_FRAME_BYTES)


def payload(size: int, number: int) -> bytes:
    """Message ``number`` of ``size`` bytes: every message of a run differs from every other."""
    return blake3.blake3(b"endpoint-machine message %d" % number).digest(length=size) if size else b""


def peer_reason(reason: str) -> str:
    """What the other end of a connection closed with ``reason`` says."""
    return "closed: " + (reason[:200] or "NO_ERROR")


class ClaimsAnotherKey:
    """An identity that names ``claimed`` as its key and signs with its own: a forged proof."""

    def __init__(self, own, claimed: bytes) -> None:
        self.own, self.claimed = own, claimed

    @property
    def public_key(self) -> bytes:
        return self.claimed

    def sign(self, message: bytes) -> bytes:
        return self.own.sign(message)

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        return self.own.verify(public_key, message, signature)


@attrs.define
class Node:
    index: int
    directory: Path
    identity: Any
    certificate: Any
    key: bytes
    address: PeerAddress | None = None  # how the others reach it (certificate pinned at the first start)
    up: bool = True
    #: Per incarnation: the connections of it the machine knows (dialed, accepted, failed).
    known: set = attrs.field(factory=set)
    #: What its ``stats`` must count, per incarnation.
    counts: dict = attrs.field(factory=dict)
    #: Framed bytes of the messages it sent that arrived, and of those it received, per incarnation:
    #: its datagrams carried at least these (``check_traffic``).
    framed_sent: int = 0
    framed_received: int = 0


@attrs.define
class Link:
    """A proven connection: its two ends (``Connection`` objects), and the model's view of each."""

    client: int
    server: int
    ends: dict[str, Any]
    #: role -> the reason its end closed with (None while open).
    reasons: dict[str, str | None] = attrs.field(factory=lambda: {"client": None, "server": None})

    @property
    def open(self) -> bool:
        return all(reason is None for reason in self.reasons.values())

    def node(self, role: str) -> int:
        return self.client if role == "client" else self.server

    def other(self, role: str) -> str:
        return "server" if role == "client" else "client"


#: What ``stats`` count of the datagrams: bounded, not counted (``check_traffic``).
TRAFFIC = ("datagrams_sent", "bytes_sent", "datagrams_received")
#: The bytes a QUIC datagram holds at least (a short header's flags, connection id and packet number,
#: the 16-byte tag: RFC 9001's header protection samples 16 bytes past 4 of packet number) and at most
#: (aioquic's ``max_datagram_size``, which ``tls`` sets to ``QUIC_DATAGRAM_BYTES``).
SMALLEST_DATAGRAM, MAX_DATAGRAM = 21, limits.QUIC_DATAGRAM_BYTES
COUNTED = ("messages_sent", "messages_received", "dials_failed", "connections_accepted", "messages_dropped_pending",
           "messages_dropped_dial", "messages_dropped_full")
#: Datagrams that reach a node's port from no QUIC peer of it (``stray``), and the counter of ``stats``
#: each lands in: a QUIC header that does not parse is malformed (RFC 9000 17: an empty datagram, the
#: fixed bit zero, a connection id past 20 bytes, a length past the datagram's end); one that parses
#: but is for no connection and may open none is unrouted (a short header of an unknown connection
#: id, a Handshake packet, an Initial one byte short of 1,200 bytes, an Initial of a version not spoken).
STRAYS = {"empty": "datagrams_malformed", "fixed_bit_zero": "datagrams_malformed",
          "long_connection_id": "datagrams_malformed", "truncated": "datagrams_malformed",
          "unknown_connection": "datagrams_unrouted", "handshake": "datagrams_unrouted",
          "short_initial": "datagrams_unrouted", "unknown_version": "datagrams_unrouted"}
STRAY_COUNTERS = ("datagrams_received", "datagrams_malformed", "datagrams_unrouted", "connections_accepted")
VERSION_1 = (1).to_bytes(4, "big")


def stray_datagram(kind: str, n: int) -> bytes:
    """A datagram of ``STRAYS``' ``kind``, its connection id made from ``n``."""
    cid = blake3.blake3(b"stray %d" % n).digest()[:8]

    def long_header(first: int, version: bytes, size: int, token: bool = True) -> bytes:
        head = bytes([first]) + version + bytes([len(cid)]) + cid + b"\x00" + (b"\x00" if token else b"")
        rest = size - len(head) - 2
        return head + (0x4000 | rest).to_bytes(2, "big") + bytes(rest)  # (its length: a 2-byte varint)

    made = {
        "empty": lambda: b"",
        "fixed_bit_zero": lambda: b"\x00" + cid + bytes(40),
        "long_connection_id": lambda: b"\xc0" + VERSION_1 + bytes([21]) + bytes(24),
        "truncated": lambda: long_header(0xC0, VERSION_1, 1201)[:-1],
        "unknown_connection": lambda: b"\x40" + cid + bytes(40),
        "handshake": lambda: long_header(0xE0, VERSION_1, 1200, token=False),
        "short_initial": lambda: long_header(0xC0, VERSION_1, 1199),
        "unknown_version": lambda: long_header(0xC0, b"\x1a\x2a\x3a\x4a", 1200),
    }
    if kind not in made:
        raise ValueError(f"no stray datagram {kind!r}: one of {sorted(made)}")
    return made[kind]()


class EndpointMachine(TracedMachine):
    name = "endpoint"
    rule_classes: ClassVar[dict[str, str]] = {"start": "setup", "dial": "operations", "send": "delivery",
                                              "close": "operations", "shutdown": "crash", "restart": "crash",
                                              "impostor": "adversary", "stray": "adversary"}
    class_floors: ClassVar[dict[str, float]] = {"delivery": 0.12, "adversary": 0.05, "crash": 0.04}

    def __init__(self, implementation, stats=None) -> None:
        super().__init__(implementation, stats)
        self.loop = None
        self.directory = Path(tempfile.mkdtemp(prefix="mbt-endpoint-", dir=faults.store_directory()))
        self.nodes: list[Node] = []
        self.links: list[Link] = []
        self.number = 0  # messages made so far
        self.impostor = None

    def teardown(self) -> None:
        try:
            if self.loop is not None:
                self.loop.stop()
        finally:
            self.loop = None
            shutil.rmtree(self.directory, ignore_errors=True)

    # --- set-up -------------------------------------------------------------------------------

    @initialize(nodes=st.integers(2, 4))
    def start(self, nodes):
        self.do("start", nodes=nodes)
        self.do("dial", client=0, server=1, pin="right", key="right")  # every example has a link to use

    def step_start(self, nodes: int) -> None:
        self.require(self.loop is None, "already started")
        self.require(2 <= nodes <= 4, f"{nodes} nodes: 2 to 4")
        self.loop = self.implementation.make_replica(0, None)
        for i in range(nodes):
            # Where a node keeps its certificate: its data directory, made before by the node (it
            # holds the node's store) for even nodes; for odd ones two levels below a directory
            # no one has made yet (load_or_create makes the path).
            directory = self.directory / f"node-{i}"
            if i % 2:
                directory = directory / "data" / "transport"
            else:
                directory.mkdir()
                (directory / "store.sqlite").write_bytes(b"")
            identity = self.loop.identity(SEEDS[i])
            certificate = self.loop.certificate(directory)
            self.check_key_file(i, directory)
            self.nodes.append(Node(i, directory, identity, certificate, identity.public_key))
            self.open_node(i, 0)
        self.impostor = (self.loop.identity(IMPOSTOR_SEED), self.loop.certificate(self.directory / "impostor"))
        self.check_certificate_files()

    def check_certificate_files(self) -> None:
        """A certificate directory a crash left between writing the key and the certificate (the key
        alone) gets a fresh pair: the certificate of the key now stored. One holding a certificate and
        another node's key (an operator's copy) is refused, ``CertificateError`` naming both files,
        which stay as they were."""
        crashed = self.directory / "crashed"
        crashed.mkdir()
        (crashed / KEY_FILE).write_bytes(self.nodes[0].certificate.private_key_pem)
        made = self.loop.certificate(crashed)
        stored = x509.load_pem_x509_certificate((crashed / CERT_FILE).read_bytes()).public_key()
        key = serialization.load_pem_private_key((crashed / KEY_FILE).read_bytes(), password=None).public_key()
        assert (crashed / CERT_FILE).read_bytes() == made.certificate_pem and stored == key, (
            "a certificate directory holding a key alone (a crash before the certificate was written) did not get "
            "a certificate of the key stored")
        copied = self.directory / "copied"
        copied.mkdir()
        files = {CERT_FILE: self.nodes[0].certificate.certificate_pem, KEY_FILE: self.nodes[1].certificate.private_key_pem}
        for name, data in files.items():
            (copied / name).write_bytes(data)
        try:
            self.loop.certificate(copied)
        except ValueError as error:
            want = f"{copied / CERT_FILE}: certificate does not match {copied / KEY_FILE}"
            assert type(error).__name__ == "CertificateError" and str(error) == want, (
                f"a certificate and another node's key were refused with {type(error).__name__}: {error}, not {want!r}")
        else:
            raise AssertionError("a certificate and another node's key were taken as a pair")
        assert all((copied / name).read_bytes() == data for name, data in files.items()), (
            "a refused certificate directory was changed")

    @staticmethod
    def check_key_file(i: int, directory: Path) -> None:
        """A node's private key is readable and writable by its owner only (mode 0600)."""
        keys = [p for p in directory.iterdir() if p.name.endswith("-key.pem")]
        assert len(keys) == 1, f"node {i}'s directory holds {sorted(p.name for p in directory.iterdir())}: one key file expected"
        mode = keys[0].stat().st_mode & 0o777
        assert mode == 0o600, f"node {i}'s private key {keys[0].name} has mode {mode:o}, not 600: others may read it"

    def open_node(self, i: int, port: int) -> None:
        node = self.nodes[i]
        endpoint = self.loop.open(i, node.identity, node.certificate, port)
        address = self.loop.call(self.async_value(endpoint.peer_address), 5.0, f"node {i}'s address")
        assert address.host == HOST and address.certificate == node.certificate.certificate_pem, (
            f"node {i} listens at {address.host} with another certificate than the one it made")
        assert address.public_key == node.key, f"node {i}'s endpoint names another identity key"
        assert PeerAddress.from_json(address.to_json()) == address, f"node {i}'s address does not survive JSON"
        try:
            PeerAddress.from_json({**address.to_json(), "host": "10.0.0.1"})
        except ValueError as error:
            assert "loopback" in str(error), f"an address off loopback refused as {error}, not naming loopback"
        else:
            raise AssertionError("an address off loopback was taken")
        self.check_send_to_without_a_key(i, address)
        if node.address is None:
            node.address = address
        assert address.port == node.address.port, f"node {i} reopened on port {address.port}, not {node.address.port}"
        node.up, node.known, node.counts = True, set(), dict.fromkeys(COUNTED, 0)
        node.framed_sent = node.framed_received = 0

    def check_send_to_without_a_key(self, i: int, address: PeerAddress) -> None:
        """``send_to`` an address that names no node's key is a caller's mistake: ``ValueError``
        saying so, nothing queued, nothing dialed (and such an address survives JSON)."""
        endpoint = self.endpoint(i)
        unnamed = PeerAddress(address.host, address.port, address.certificate, None)

        async def call():
            try:
                endpoint.send_to(unnamed, b"")
            except Exception as error:
                return type(error).__name__, str(error), len(endpoint.connections)
            return None, "", len(endpoint.connections)

        assert PeerAddress.from_json(unnamed.to_json()) == unnamed, f"node {i}'s address naming no key does not survive JSON"
        got = self.loop.call(call, 5.0, f"node {i} sending to an address with no key")
        assert got == ("ValueError", SEND_TO_NEEDS_A_KEY, 0), (
            f"node {i}'s send_to an address naming no key: {got[0] or 'taken'}: {got[1]!r} with {got[2]} connections, "
            f"not ValueError: {SEND_TO_NEEDS_A_KEY!r} and none")

    @staticmethod
    def async_value(function, *args):
        async def call():
            return function(*args)

        return call

    def endpoint(self, i: int):
        return self.loop.endpoints[i]

    def up(self) -> list[int]:
        return [node.index for node in self.nodes if node.up]

    def open_links(self) -> list[int]:
        return [n for n, link in enumerate(self.links) if link.open]

    # --- dialing ------------------------------------------------------------------------------

    @guard(lambda self: len(self.up()) >= 2 and len(self.open_links()) < MAX_LINKS)
    @rule(client=st.integers(0, 3), server=st.integers(0, 3),
          pin=st.sampled_from(["right", "right", "right", "other"]),
          key=st.sampled_from(["right", "right", "none", "other"]), pin_of=st.integers(0, 3))
    def dial(self, client, server, pin, key, pin_of):
        up = self.up()
        client, server = up[client % len(up)], up[server % len(up)]
        others = [n.index for n in self.nodes if n.index != server]
        self.do("dial", client=client, server=server, pin=pin if pin == "right" else others[pin_of % len(others)],
                key=key if key != "other" else others[pin_of % len(others)])

    def step_dial(self, client: int, server: int, pin: str | int, key: str | int) -> None:
        """Node ``client`` dials ``server``'s address pinning ``pin`` (``right``: the server's
        certificate, or node ``pin``'s, or ``not_a_certificate``: bytes that are none, refused at
        the call with a ``CertificateError`` naming them, nothing sent, no dial counted) and
        expecting ``key`` (``right``, ``none``, or node ``key``'s)."""
        self.require(client in self.up() and server in self.up(), f"node {client} or {server} is down")
        self.require(pin in ("right", "not_a_certificate", "no_port") or pin in range(len(self.nodes)),
                     f"no pin {pin!r}")
        self.require(key in ("right", "none") or key in range(len(self.nodes)), f"no key {key!r}")
        target = self.nodes[server].address
        if pin == "not_a_certificate":
            self.dial_without_a_certificate(client, target)
            return
        if pin == "no_port":
            self.address_of_no_port(target)
            return
        certificate = target.certificate if pin == "right" else self.nodes[pin].address.certificate
        expected = {"right": target.public_key, "none": None}.get(key) if isinstance(key, str) else self.nodes[key].key
        address = PeerAddress(HOST, target.port, certificate, expected)
        if certificate != target.certificate:
            refusal = TLS_REFUSAL
        elif client == server:  # the listener refuses the hello before it sends its own
            refusal = "closed: " + OWN_IDENTITY
        elif expected is not None and expected != target.public_key:
            refusal = NOT_DIALED
        else:
            refusal = None
        dialer, listener = self.endpoint(client), self.endpoint(server)
        known_client, known_server = set(self.nodes[client].known), set(self.nodes[server].known)
        client_key = self.nodes[client].key

        async def go():
            try:
                conn = await dialer.connect(address)
            except Exception as error:
                await self.settle(listener, known_server | known_client)
                return error, None, None
            while True:
                accepted = listener.connection_to(client_key)
                if accepted is not None and accepted not in known_server and accepted.is_open:
                    return None, conn, accepted
                await trio.sleep(0.002)

        error, conn, accepted = self.loop.call(go, WAIT_SECONDS, f"node {client} dialing node {server}")
        self.nodes[server].counts["connections_accepted"] += 1
        if refusal is not None:
            self.nodes[client].counts["dials_failed"] += 1
            assert error is not None, f"node {client} dialed node {server} and was taken; the model refuses: {refusal}"
            want = f"{HOST}:{target.port}: {refusal}"
            assert type(error).__name__ == "TransportError" and str(error) == want, (
                f"node {client}'s dial of node {server} failed with {type(error).__name__}: {portless(error)}, "
                f"not {portless(want)!r}")
            return
        if error is not None:
            raise AssertionError(f"node {client}'s dial of node {server} failed: {type(error).__name__}: {portless(error)}")
        self.add_link(client, server, conn, accepted)

    def dial_without_a_certificate(self, client: int, target: PeerAddress) -> None:
        address = PeerAddress(HOST, target.port, NOT_A_CERTIFICATE, target.public_key)
        dialer = self.endpoint(client)

        async def go():
            try:
                await dialer.connect(address)
            except Exception as error:
                return error
            return None

        error = self.loop.call(go, WAIT_SECONDS, f"node {client} dialing with a pin that is no certificate")
        assert error is not None, f"node {client} dialed pinning bytes that are no certificate, and was taken"
        assert type(error).__name__ == "CertificateError" and str(error).startswith(NOT_PEM), (
            f"node {client}'s dial pinning bytes that are no certificate failed with {type(error).__name__}: {error}, "
            f"not CertificateError: {NOT_PEM}...")

    @staticmethod
    def address_of_no_port(target: PeerAddress) -> None:
        """A peer address whose port is none (``NO_PORTS``: 0, negative, past 65535, not an int: a
        string of digits, a boolean, a fraction) is refused where it is made, by ``PeerAddress`` and
        by ``PeerAddress.from_json`` (what a node's ``join`` and ``peers`` requests are read with: a
        port of "4433" or 4433.5 is no port, not port 4433; nor is a host or certificate that is no
        string an address), with a ``ValueError`` naming it, while ports 1 and 65535 are taken: no dial
        can take it (a dial to port 70000 made the endpoint's sendto raise OverflowError, which ended
        the endpoint and every connection of the node)."""
        for port in NO_PORTS:
            try:
                PeerAddress(HOST, port, target.certificate, target.public_key)
            except ValueError as error:
                assert "port" in str(error) and repr(port) in str(error), (
                    f"a peer address of port {port!r} was refused with ValueError: {error}: not naming the port")
            else:
                raise AssertionError(f"a peer address of port {port!r} was made")
            as_json = {**target.to_json(), "port": port}  # JSON holds ints, floats, strings, booleans, null alike
            try:
                PeerAddress.from_json(as_json)
            except ValueError as error:
                assert "port" in str(error) and repr(port) in str(error), (
                    f"a peer address of port {port!r} read from JSON was refused with ValueError: {error}: "
                    "not naming the port")
            else:
                raise AssertionError(f"a peer address of port {port!r} was read from JSON")
        for port in (1, 65535):  # both ends of the range are ports
            address = PeerAddress(HOST, port, target.certificate, target.public_key)
            assert PeerAddress.from_json(address.to_json()) == address, f"a peer address of port {port} was refused"
        for field, value in (("host", 2130706433), ("host", ["127.0.0.1"]), ("certificate", 7)):
            # 2130706433 is 127.0.0.1 as an int, which ipaddress would take: a host is a string
            try:
                PeerAddress.from_json({**target.to_json(), field: value})
            except ValueError as error:
                assert "host and certificate are strings" in str(error), (
                    f"a peer address whose {field} is {value!r} was refused with ValueError: {error}: not naming it")
            else:
                raise AssertionError(f"a peer address whose {field} is {value!r} was read from JSON")

    def add_link(self, client: int, server: int, conn, accepted) -> None:
        keys = self.loop.call(self.async_value(lambda: (conn.peer_public_key, accepted.peer_public_key)), 5.0,
                              "reading the peer keys")
        assert keys == (self.nodes[server].key, self.nodes[client].key), (
            f"the link from node {client} to node {server} names peers {keys}")
        self.nodes[client].known.add(conn)
        self.nodes[server].known.add(accepted)
        self.links.append(Link(client, server, {"client": conn, "server": accepted}))

    async def settle(self, endpoint, known: set) -> None:
        """Wait until every connection of ``endpoint`` the machine does not know has closed."""
        while any(c not in known and not c.closed.is_set() for c in endpoint.connections):
            await trio.sleep(0.002)

    # --- messages -----------------------------------------------------------------------------

    def sendable(self) -> list[tuple[int, str]]:
        return [(n, role) for n, link in enumerate(self.links)
                if all(self.nodes[link.node(r)].up for r in ("client", "server"))
                for role in ("client", "server")]

    @guard(lambda self: bool(self.sendable()))
    @rule(end=st.integers(0, 15), sizes=st.lists(st.sampled_from(SIZES), min_size=1, max_size=5),
          mode=st.sampled_from(MODES), then=st.sampled_from([None, None, None, None, "close"]),
          reason=st.sampled_from(REASONS), fill=st.sampled_from([None, None, "buffer", "pending"]))
    def send(self, end, sizes, mode, then, reason, fill):
        """``fill``: ``buffer``, the burst opens with messages that take the send buffer exactly
        to ``MAX_SEND_BUFFER_BYTES`` (the drawn ones then go past it); ``pending``, it is a
        ``send_to`` that opens with ``MAX_PENDING_PER_PEER`` small messages (the drawn ones then
        go past what waits for a dial)."""
        if fill == "pending":
            self.burst(end, sizes, "send_to", then, reason, pile=limits.MAX_PENDING_PER_PEER)
        else:  # a buffer filled on a closed end would only be refused as closed: always an open one
            self.burst(end, [*FILL, *sizes] if fill else sizes, mode, then, reason, open_only=bool(fill))

    @guard(lambda self: bool(self.sendable()))
    @rule(end=st.integers(0, 15), sizes=st.lists(st.sampled_from(SIZES[:6]), min_size=1, max_size=5),
          mode=st.sampled_from(MODES), then=st.sampled_from([None, None, None, None, "close"]),
          reason=st.sampled_from(REASONS))
    def send_small(self, end, sizes, mode, then, reason):
        """The same as ``send`` (drawn as often again), of small messages only."""
        self.burst(end, sizes, mode, then, reason)

    def burst(self, end, sizes, mode, then, reason, pile=0, open_only=False):
        if mode == "send_to" and framed([PILE_SIZE] * pile + sizes) > SEND_TO_BYTES:
            mode, pile = "send_nowait", 0  # send_to drops what does not fit, counting it: see SEND_TO_BYTES
        ends = self.sendable()
        open_ends = [e for e in ends if self.links[e[0]].open]
        if open_ends and (end % 8 or open_only):  # mostly on open links
            ends = open_ends
        link, role = ends[end % len(ends)]
        self.do("send", link=link, role=role, sizes=sizes, mode=mode, close=reason if then else None,
                **({"pile": pile} if pile else {}))

    def step_send(self, link: int, role: str, sizes: list[int], mode: str, close: str | None, pile: int = 0,
                  pin: str = "right") -> None:
        """The ``role`` end of link ``link`` sends messages of ``sizes`` bytes by ``mode``
        (``send_to``: to the peer's address, on whichever connection the node picks; first ``pile``
        messages of ``PILE_SIZE`` bytes; ``pin="other"``: the address pins another node's
        certificate, so a dial it needs is refused and the messages waiting for it are dropped;
        committed traces, no rule draws it), then closes with reason ``close`` unless it is None;
        every message sent is then awaited at the other end."""
        self.require(0 <= link < len(self.links) and role in ("client", "server"), f"no link {link} {role}")
        self.require(mode in MODES, f"no mode {mode!r}")
        self.require(1 <= len(sizes) <= 5 + len(FILL) and all(0 <= s <= limits.MAX_FRAME_BYTES + 1 for s in sizes), "sizes")
        the = self.links[link]
        sender, receiver = the.node(role), the.node(the.other(role))
        self.require(self.nodes[sender].up and self.nodes[receiver].up, "both nodes are up")
        self.require(0 <= pile <= limits.MAX_PENDING_PER_PEER and (mode == "send_to" or not pile), f"pile {pile}")
        self.require(pin == "right" or (pin == "other" and mode == "send_to"), f"pin {pin!r}: right, or other by send_to")
        if mode == "send_to":
            sizes = [PILE_SIZE] * pile + sizes
            self.send_to(sender, receiver, sizes, pin)
            return
        messages = []
        for size in sizes:
            self.number += 1
            messages.append(payload(size, self.number))
        conn = the.ends[role]
        closed = the.reasons[role]
        # The model: what each call does (None: taken), and what arrives.
        outcomes, arriving, buffered = [], [], 0
        for message in messages:
            if closed is not None:
                outcomes.append(("TransportError", "connection is not open: " + (closed or "closed with an empty reason")))
            elif len(message) > limits.MAX_FRAME_BYTES:
                outcomes.append(("FramingError", f"message of {len(message)} bytes exceeds MAX_FRAME_BYTES "
                                                 f"({limits.MAX_FRAME_BYTES})"))
            elif mode == "send_nowait" and buffered + len(message) + HEADER.size > limits.MAX_SEND_BUFFER_BYTES:
                outcomes.append(("SendBufferFull", f"{buffered} bytes unacknowledged: MAX_SEND_BUFFER_BYTES reached"))
            else:
                outcomes.append(None)
                arriving.append(message)
                buffered += len(message) + HEADER.size
        other = the.ends[the.other(role)]
        inbox = self.endpoint(receiver)

        async def go():
            start = conn.unacknowledged() if closed is None else 0
            got, peak = [], 0
            for message in messages:
                try:
                    if mode == "send":
                        await conn.send(message)
                    else:
                        conn.send_nowait(message)
                    got.append(None)
                except Exception as error:
                    got.append((type(error).__name__, str(error)))
                peak = max(peak, conn.unacknowledged())
            if got != outcomes:  # what arrives is the model's no more: the outcomes are the news
                return start, got, peak, []
            if close is not None:
                conn.close(close)
            def failed():
                if other.closed.is_set():
                    return f"the other end closed ({other.reason})"
                return f"the sending end closed ({conn.reason})" if close is None and conn.closed.is_set() else ""

            if close is not None and closed is None:
                await other.closed.wait()  # after what arrived before the close (loopback keeps the order)
                received = []
                with trio.move_on_after(0.005):
                    received = await inbox.receive_many()
                return start, got, peak, received
            received = await gather(inbox, len(arriving), failed)
            if closed is None:
                while conn.unacknowledged():
                    await trio.sleep(0.002)
            return start, got, peak, received

        what = (f"{len(arriving)} of node {sender}'s messages ({sum(map(len, arriving))} bytes) arriving at node "
                f"{receiver}" + (" and the close reaching it" if close is not None else ", acknowledged"))
        start, got, peak, received = self.loop.call(go, WAIT_SECONDS, what)
        assert start == 0, f"node {sender}'s end of link {link} had {start} bytes unacknowledged before the step"
        for n, (want, have) in enumerate(zip(outcomes, got, strict=True)):
            label = f"message {n} ({len(messages[n])} bytes) by {mode} on link {link}"
            if want is None:
                assert have is None, f"{label} was refused: {have[0]}: {have[1]}; the model takes it"
            else:
                assert have == want, f"{label}: {have or 'taken'}; the model says {want[0]}: {want[1]}"
        assert peak <= limits.MAX_SEND_BUFFER_BYTES, f"{peak} bytes unacknowledged: past MAX_SEND_BUFFER_BYTES"
        expected = [(self.nodes[sender].key, m) for m in arriving]
        if close is not None and closed is None and sum(len(m) + HEADER.size for m in arriving) > ONE_FLIGHT:
            # A close sends what congestion control lets go at once; the rest is lost with the
            # connection: a prefix arrives, each message whole, once, in order.
            expected = expected[: len(received)]
        self.check_received(received, expected, sender, receiver)
        self.nodes[sender].counts["messages_sent"] += len(arriving)
        self.nodes[receiver].counts["messages_received"] += len(received)
        self.carried(sender, receiver, [m for _, m in received])
        if close is not None and closed is None:
            the.reasons[role] = close
            the.reasons[the.other(role)] = peer_reason(close)

    def carried(self, sender: int, receiver: int, messages: list[bytes]) -> None:
        size = framed(len(m) for m in messages)
        self.nodes[sender].framed_sent += size
        self.nodes[receiver].framed_received += size

    def check_received(self, received: list, expected: list, sender: int, receiver: int) -> None:
        if received == expected:
            return
        def show(items):
            return [(self.key_name(k), len(m), m[:8].hex()) for k, m in items]
        if max(len(received), len(expected)) > 8:  # a pile: where they part, not a thousand messages
            first = next((n for n, (a, b) in enumerate(zip(received, expected, strict=False)) if a != b),
                         min(len(received), len(expected)))
            raise AssertionError(f"node {receiver} received {len(received)} messages from node {sender}, the model says "
                                 f"{len(expected)} (exactly once, in order, unaltered); from message {first} on it received "
                                 f"{show(received[first:first + 3])}, the model says {show(expected[first:first + 3])}")
        raise AssertionError(f"node {receiver} received {show(received)} from node {sender}; "
                             f"the model says {show(expected)} (exactly once, in order, unaltered)")

    def send_to(self, sender: int, receiver: int, sizes: list[int], pin: str = "right") -> None:
        published = [(n, role) for n, link in enumerate(self.links) for role in ("client", "server")
                     if link.open and link.node(role) == sender and link.node(link.other(role)) == receiver]
        self.require(published or framed(sizes) <= SEND_TO_BYTES,
                     f"send_to of {framed(sizes)} framed bytes with no connection: at most {SEND_TO_BYTES}")
        messages = []
        for size in sizes:
            self.number += 1
            messages.append(payload(size, self.number))
        taken = [m for m in messages if len(m) <= limits.MAX_FRAME_BYTES]
        # With another pin, a connection published to the peer is used all the same (send_to looks
        # a peer up by its key); a dial, started by the first message taken, is refused by TLS, and
        # what waited for it is dropped.
        refused = pin != "right" and not published and bool(taken)
        # On a connection, what its send buffer takes (at most MAX_SEND_BUFFER_BYTES: each step
        # starts with it empty; a burst past it, committed traces only, drops the rest); with
        # none, they wait for the dial: the newest MAX_PENDING_PER_PEER.
        if published:
            arriving, buffered = [], 0
            for message in taken:
                if buffered + len(message) + HEADER.size <= limits.MAX_SEND_BUFFER_BYTES:
                    arriving.append(message)
                    buffered += len(message) + HEADER.size
        else:
            arriving = [] if refused else taken[-limits.MAX_PENDING_PER_PEER:]
        endpoint, inbox = self.endpoint(sender), self.endpoint(receiver)
        address = self.nodes[receiver].address
        if pin != "right":
            other = next(n for n in self.nodes if n.index != receiver)
            address = PeerAddress(HOST, address.port, other.address.certificate, address.public_key)
        receiver_key, sender_key = self.nodes[receiver].key, self.nodes[sender].key
        known_sender, known_receiver = set(self.nodes[sender].known), set(self.nodes[receiver].known)

        async def go():
            got = []
            for message in messages:
                try:
                    endpoint.send_to(address, message)
                    got.append(None)
                except Exception as error:
                    got.append((type(error).__name__, str(error)))
            dials_failed = self.nodes[sender].counts["dials_failed"]

            def failed():
                return "the dial failed" if endpoint.stats["dials_failed"] > dials_failed else ""

            if refused:  # the refusal, at both ends, then no message anywhere
                while not failed():
                    await trio.sleep(0.002)
                await self.settle(inbox, known_receiver)
            received = await gather(inbox, len(arriving), failed)
            if not arriving:
                return got, received, None, None
            conn = endpoint.connection_to(receiver_key)
            while conn.unacknowledged():
                await trio.sleep(0.002)
            accepted = inbox.connection_to(sender_key)
            while accepted is None or not accepted.is_open:
                await trio.sleep(0.002)
                accepted = inbox.connection_to(sender_key)
            return got, received, conn, accepted

        what = f"node {sender}'s {len(arriving)} messages sent to node {receiver}'s address arriving"
        got, received, conn, accepted = self.loop.call(go, WAIT_SECONDS, what)
        for n, message in enumerate(messages):
            want = None if len(message) <= limits.MAX_FRAME_BYTES else (
                "FramingError", f"message of {len(message)} bytes exceeds MAX_FRAME_BYTES ({limits.MAX_FRAME_BYTES})")
            assert got[n] == want, f"message {n} ({len(message)} bytes) by send_to: {got[n] or 'taken'}, not {want}"
        self.check_received(received, [(sender_key, m) for m in arriving], sender, receiver)
        self.nodes[sender].counts["messages_sent"] += len(arriving)
        self.nodes[receiver].counts["messages_received"] += len(arriving)
        self.carried(sender, receiver, arriving)
        if refused:
            self.nodes[sender].counts["dials_failed"] += 1
            self.nodes[sender].counts["messages_dropped_pending"] += max(0, len(taken) - limits.MAX_PENDING_PER_PEER)
            self.nodes[sender].counts["messages_dropped_dial"] += min(len(taken), limits.MAX_PENDING_PER_PEER)
            self.nodes[receiver].counts["connections_accepted"] += 1
            return
        self.nodes[sender].counts["messages_dropped_full" if published else "messages_dropped_pending"] += (
            len(taken) - len(arriving))
        if not arriving:
            return
        if published:
            n, role = published[-1]
            assert conn is self.links[n].ends[role], (
                f"node {sender} sent to node {receiver} on another connection than the one published last (link {n})")
            return
        assert conn not in known_sender and accepted not in known_receiver, (
            f"node {sender} had no connection to node {receiver}, yet send_to used a known one")
        self.nodes[receiver].counts["connections_accepted"] += 1
        self.add_link(sender, receiver, conn, accepted)

    # --- closing ------------------------------------------------------------------------------

    @guard(lambda self: bool(self.sendable()))
    @rule(end=st.integers(0, 15), reason=st.sampled_from(REASONS), twice=st.booleans())
    def close(self, end, reason, twice):
        ends = self.sendable()
        link, role = ends[end % len(ends)]
        self.do("close", link=link, role=role, reason=reason, twice=twice)

    def step_close(self, link: int, role: str, reason: str, twice: bool) -> None:
        """The ``role`` end of link ``link`` closes with ``reason`` (``twice``: then again, with another)."""
        self.require(0 <= link < len(self.links) and role in ("client", "server"), f"no link {link} {role}")
        the = self.links[link]
        self.require(all(self.nodes[the.node(r)].up for r in ("client", "server")), "both nodes are up")
        conn, other = the.ends[role], the.ends[the.other(role)]

        async def go():
            conn.close(reason)
            if twice:
                conn.close("again: " + reason)
            await other.closed.wait()

        self.loop.call(go, WAIT_SECONDS, f"the close of link {link} by its {role} reaching the other end")
        if the.open:
            the.reasons[role] = reason
            the.reasons[the.other(role)] = peer_reason(reason)

    @rule(node=st.integers(0, 3), reason=st.sampled_from([None, None, "going away"]))
    def shutdown_or_restart(self, node, reason):
        """One rule for both, so together they take no more steps than another rule: an endpoint
        closes when every node is up (one is down at a time), and the one down opens again."""
        down = [n.index for n in self.nodes if not n.up]
        if down:
            self.do("restart", node=down[0])
            return
        up = self.up()
        self.do("shutdown", node=up[node % len(up)], reason=reason)

    def step_shutdown(self, node: int, reason: str | None) -> None:
        """Node ``node``'s endpoint closes (``Endpoint.close(reason)``, or leaving ``open_endpoint``
        when ``reason`` is None): each of its links closes, and the other end learns why."""
        self.require(node in self.up(), f"node {node} is down")
        given = reason if reason is not None else "endpoint closed"
        closing = [(link, role) for link in self.links if link.open for role in ("client", "server")
                   if link.node(role) == node]
        endpoint = self.endpoint(node)
        self.loop.close(node, reason)
        others = [link.ends[link.other(role)] for link, role in closing]
        target = self.nodes[node].address  # refused before any address is looked at

        async def go():
            for other in others:
                await other.closed.wait()
            try:
                await endpoint.connect(target)
            except Exception as error:
                return type(error).__name__, str(error)
            return None, ""

        refusal = self.loop.call(go, WAIT_SECONDS, f"node {node}'s close reaching its {len(others)} peers")
        assert refusal == ("TransportError", CLOSED_ENDPOINT), (
            f"node {node}'s closed endpoint dialing: {refusal[0] or 'taken'}: {refusal[1]!r}, "
            f"not TransportError: {CLOSED_ENDPOINT!r}")
        for link, role in closing:
            link.reasons[role] = given
            link.reasons[link.other(role)] = peer_reason(given)
        self.nodes[node].up = False

    def step_restart(self, node: int) -> None:
        """Node ``node`` opens again on its directory and port: the certificate it made first."""
        self.require(0 <= node < len(self.nodes) and not self.nodes[node].up, f"node {node} is not down")
        the = self.nodes[node]
        certificate = self.loop.certificate(the.directory)
        assert certificate == the.certificate, f"node {node}'s certificate changed across a restart on its directory"
        self.check_key_file(node, the.directory)
        self.open_node(node, the.address.port)

    # --- impostors ----------------------------------------------------------------------------

    @guard(lambda self: len(self.up()) >= 2)
    @rule(node=st.integers(0, 3), how=st.sampled_from(sorted(IMPOSTURES)), claimed=st.integers(0, 3))
    def impostor(self, node, how, claimed):
        up = self.up()
        node = up[node % len(up)]
        others = [n.index for n in self.nodes if n.index != node]
        self.do("impostor", node=node, how=how, claimed=others[claimed % len(others)])

    def step_impostor(self, node: int, how: str, claimed: int) -> None:
        """A stranger breaks the transport's rules against node ``node`` as ``how`` says
        (``IMPOSTURES``; a forged proof or listener claims node ``claimed``'s key)."""
        self.require(node in self.up(), f"node {node} is down")
        self.require(how in IMPOSTURES, f"no imposture {how!r}")
        self.require(0 <= claimed < len(self.nodes) and claimed != node, f"claimed={claimed}: another node")
        own, certificate = self.impostor
        forged = how.startswith("forged")
        identity = ClaimsAnotherKey(own, self.nodes[claimed].key) if forged else own
        endpoint = self.endpoint(node)
        known = set(self.nodes[node].known)
        target = self.nodes[node].address
        self.number += 1
        smuggled = payload(16, self.number)

        async def dial_node():
            async with open_endpoint(identity, certificate, host=HOST) as stranger:
                try:
                    conn = await stranger.connect(target)
                except TransportError as refused:  # a forged proof's refusal may reach the dialer before its dial returns
                    await self.settle(endpoint, known)
                    return str(refused).removeprefix(f"{target.host}:{target.port}: ")
                if how == "forged_proof":
                    conn.send_nowait(smuggled)  # behind its proof: must never be delivered
                elif how == "oversized_frame":
                    conn.quic.send_stream_data(MESSAGE_STREAM, HEADER.pack(limits.MAX_FRAME_BYTES + 1))
                elif how == "second_stream":
                    conn.quic.send_stream_data(4, b"x")
                else:
                    conn.quic.send_stream_data(MESSAGE_STREAM, b"", end_stream=True)
                conn.flush()
                await conn.closed.wait()
                await self.settle(endpoint, known)
                return conn.reason

        async def dialed_by_node():
            async with open_endpoint(identity, certificate, host=HOST) as stranger:
                host, port = stranger.address
                address = PeerAddress(host, port, certificate.certificate_pem, self.nodes[claimed].key)
                try:
                    await endpoint.connect(address)
                except Exception as error:
                    await self.settle(endpoint, known)
                    return error
                return None

        if how == "forged_listener":
            error = self.loop.call(dialed_by_node, WAIT_SECONDS, f"node {node} dialing a forged listener")
            want = IMPOSTURES[how]
            assert error is not None, f"node {node} took a listener claiming node {claimed}'s key with a forged proof"
            assert type(error).__name__ == "TransportError" and str(error).endswith(f": {want}"), (
                f"node {node} refused a forged listener with {type(error).__name__}: {portless(error)}, not naming {want!r}")
            self.nodes[node].counts["dials_failed"] += 1
            return
        reason = self.loop.call(dial_node, WAIT_SECONDS, f"node {node} closing a stranger's connection ({how})")
        self.nodes[node].counts["connections_accepted"] += 1
        assert reason == "closed: " + IMPOSTURES[how], (
            f"node {node} closed a stranger's {how} with {reason!r}, not {'closed: ' + IMPOSTURES[how]!r}")

    # --- datagrams from no peer ---------------------------------------------------------------

    @guard(lambda self: bool(self.up()))
    @rule(node=st.integers(0, 3), kinds=st.lists(st.sampled_from(sorted(STRAYS)), min_size=1, max_size=3))
    def stray(self, node, kinds):
        up = self.up()
        self.do("stray", node=up[node % len(up)], kinds=kinds)

    def step_stray(self, node: int, kinds: list[str]) -> None:
        """Datagrams no QUIC peer sends (``STRAYS``) reach node ``node``'s port from a plain UDP
        socket: each is counted in ``datagrams_received`` and once in the counter ``STRAYS`` names,
        opens no connection and gets no answer; every link stays as it was (``check``)."""
        self.require(node in self.up(), f"node {node} is down")
        self.require(bool(kinds) and all(kind in STRAYS for kind in kinds),
                     f"kinds={kinds}: one or more of {sorted(STRAYS)}")
        endpoint, target = self.endpoint(node), self.nodes[node].address
        data = []
        for kind in kinds:
            self.number += 1
            data.append(stray_datagram(kind, self.number))

        async def send():
            before = {name: endpoint.stats[name] for name in STRAY_COUNTERS}
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.setblocking(False)
                sock.bind((HOST, 0))
                for datagram in data:
                    sock.sendto(datagram, (target.host, target.port))
                while endpoint.stats["datagrams_received"] - before["datagrams_received"] < len(data):
                    await trio.sleep(0.001)  # (bounded by the call's WAIT_SECONDS)
                await trio.sleep(0.005)  # (an answer would be on its way by now: loopback)
                try:
                    answer = sock.recv(65536)
                except BlockingIOError:
                    answer = None
            return {name: endpoint.stats[name] - before[name] for name in STRAY_COUNTERS}, answer

        counted, answer = self.loop.call(send, WAIT_SECONDS, f"node {node} receiving {len(data)} stray datagrams")
        want = dict.fromkeys(STRAY_COUNTERS, 0)
        for kind in kinds:
            want[STRAYS[kind]] += 1
        # (an open link's keep-alive may arrive meanwhile: datagrams_received counts at least the strays)
        want["datagrams_received"] = max(len(data), counted["datagrams_received"])
        assert counted == want, f"node {node} counted the stray datagrams {kinds} as {counted}, not {want}"
        assert answer is None, f"node {node} answered a stray datagram with {len(answer)} bytes ({answer[:8].hex()}...)"

    # --- what must hold -----------------------------------------------------------------------

    def snapshot(self) -> dict:
        """What every open endpoint and every connection says, read inside the loop; every message
        waiting in an inbox is taken (the model expects none between steps)."""
        endpoints = dict(self.loop.endpoints)
        links = [(link.ends["client"], link.ends["server"]) for link in self.links]

        async def read():
            waiting = {}
            for i, endpoint in endpoints.items():
                with trio.move_on_after(0.001):
                    waiting[i] = await endpoint.receive_many()
            return {
                "peers": {i: endpoint.peers() for i, endpoint in endpoints.items()},
                "stats": {i: {name: endpoint.stats[name] for name in COUNTED} for i, endpoint in endpoints.items()},
                "traffic": {i: {name: endpoint.stats[name] for name in TRAFFIC} for i, endpoint in endpoints.items()},
                "waiting": waiting,
                "ends": [tuple((c.is_open, c.reason) for c in ends) for ends in links],
            }

        return self.loop.call(read, 5.0, "reading the endpoints")

    def check(self) -> None:
        if self.loop is None:
            return
        assert not self.loop.crashed, f"an endpoint crashed: {self.loop.crashed}"
        seen = self.snapshot()
        for i, messages in seen["waiting"].items():
            assert not messages, (f"node {i} received {[(self.key_name(k), len(m)) for k, m in messages]} "
                                  "that no step sent it")
        for n, (link, ends) in enumerate(zip(self.links, seen["ends"], strict=True)):
            for role, (is_open, reason) in zip(("client", "server"), ends, strict=True):
                if not self.nodes[link.node(role)].up and link.reasons[role] is None:
                    continue
                want = (link.open, link.reasons[role])
                assert (is_open, reason) == want, (
                    f"link {n} (node {link.client} dialed node {link.server}): the {role}'s end is "
                    f"{'open' if is_open else 'closed'} ({reason!r}); the model says "
                    f"{'open' if want[0] else 'closed'} ({want[1]!r})")
        for i, peers in seen["peers"].items():
            want = {self.nodes[link.node(link.other(role))].key for link in self.links if link.open
                    for role in ("client", "server") if link.node(role) == i}
            assert peers == want, (f"node {i}'s peers() is {sorted(map(self.key_name, peers))}; the model says "
                                   f"{sorted(map(self.key_name, want))}")
        for i, counted in seen["stats"].items():
            assert counted == self.nodes[i].counts, f"node {i}'s stats count {counted}; the model says {self.nodes[i].counts}"
        for i, traffic in seen["traffic"].items():
            self.check_traffic(i, **traffic)

    def check_traffic(self, i: int, datagrams_sent: int, bytes_sent: int, datagrams_received: int) -> None:
        """What the model cannot count exactly (QUIC's packets, acknowledgements, retransmissions)
        it bounds: every datagram holds between ``SMALLEST_DATAGRAM`` and ``MAX_DATAGRAM`` bytes, and
        the datagrams a node sent (received) carried at least the frames of the messages it sent
        that arrived (it received)."""
        node = self.nodes[i]
        said = f"node {i}'s stats: {datagrams_sent} datagrams sent of {bytes_sent} bytes, {datagrams_received} received"
        assert datagrams_sent * SMALLEST_DATAGRAM <= bytes_sent <= datagrams_sent * MAX_DATAGRAM, (
            f"{said}: a datagram holds {SMALLEST_DATAGRAM} to {MAX_DATAGRAM} bytes")
        assert bytes_sent >= node.framed_sent, (
            f"{said}: fewer bytes than the {node.framed_sent} framed bytes it sent that arrived")
        assert datagrams_received * MAX_DATAGRAM >= node.framed_received, (
            f"{said}: too few datagrams to carry the {node.framed_received} framed bytes it received")

    def key_name(self, key: bytes) -> str:
        for node in self.nodes:
            if node.key == key:
                return f"node {node.index}"
        return "the impostor" if self.impostor and key == self.impostor[0].public_key else f"key {key[:4].hex()}"

    def observe(self) -> list[Observation]:
        rows = []
        for n, link in enumerate(self.links):
            rows.append(Observation(f"link {n} (node {link.client} -> node {link.server})", dict(link.reasons),
                                    dict(link.reasons)))
        return rows


test_endpoint_machine = network_machine_test(EndpointMachine, examples=30, steps=50)
