"""A node's QUIC endpoint: aioquic's sans-I/O ``QuicConnection`` driven by trio over one UDP socket.

One socket on 127.0.0.1 both listens and dials. Every datagram is routed by its destination
connection id (``pull_quic_header``): to a connection this endpoint dialed, to one it
accepted, or, for an unknown id carried by a full-sized Initial packet, to a new accepted
connection built with ``original_destination_connection_id`` from that packet. The ids each
connection issues and retires later are added and removed as aioquic reports them.

Time: every aioquic call gets ``trio.current_time()``, the one clock of the endpoint.

A connection carries one stream (the client's first bidirectional stream, id 0) of
length-prefixed messages (``framing``). The first messages each way are the identity proof
(``auth``); only then does ``connect`` return and are messages delivered, as ``(peer public
key, bytes)`` from ``Endpoint.receive()`` (one) or ``receive_many()`` (all waiting).

Each connection has a task that flushes its datagrams, fires aioquic's timers, pings it
when quiet (``PING_INTERVAL_SECONDS``), closes it when the identity proof takes longer
than ``AUTH_TIMEOUT_SECONDS``, and closes it when the peer stays silent for
``UNANSWERED_SECONDS`` while data waits for its acknowledgement (counted from the later of the
last datagram heard and the moment the data began to wait: a quiet connection's next message
is not unanswered at once): a peer that crashed and
restarted has forgotten the connection (aioquic sends no stateless reset), so the next
message dials it again instead of vanishing until the idle timeout. It resets its wake-up event *before* flushing, so a wake-up
that arrives during the flush is never lost. Messages queued with ``send_nowait`` in one
scheduling step leave in one flush (batching); ``flush()`` sends at once.

Bounds (``implementations.limits``): frames, unacknowledged send bytes, QUIC flow control,
the receive queue (when full the endpoint stops reading its socket: QUIC's loss recovery is
the back-pressure, nothing is dropped), connections, pending messages per peer. Leaving
``open_endpoint`` closes every connection with a reason, cancels every task and closes the
socket.
"""

from __future__ import annotations

import collections
import ipaddress
import math
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio
from aioquic.buffer import Buffer
from aioquic.quic import events
from aioquic.quic.configuration import SMALLEST_MAX_DATAGRAM_SIZE
from aioquic.quic.connection import QuicConnection
from aioquic.quic.packet import QuicErrorCode, QuicPacketType, pull_quic_header

from implementations import limits
from implementations.transport import tls
from implementations.transport.auth import Handshake
from implementations.transport.framing import HEADER, FrameReader, FramingError, frame
from implementations.transport.identity import Identity
from implementations.wire import DecodeError

MESSAGE_STREAM = 0
#: QUIC application error codes in CONNECTION_CLOSE: a clean close, and a peer that broke the rules.
CLOSE_NORMAL, CLOSE_VIOLATION = 0, 1
RECEIVE_BATCH = 64  # datagrams read per wake-up of the receive task before others run
#: A timer aioquic leaves due after handling it is looked at again this much later (RFC 9002's kGranularity):
#: its loss time is ``sent_time + loss_delay`` and its test ``sent_time <= now - loss_delay``, which floating
#: point can make false at exactly that time; a clock that does not move while the loop is busy would then see
#: the drive come round for ever.
TIMER_GRANULARITY_SECONDS = 0.001
SOCKET_BUFFER_BYTES = 4 * 1024 * 1024


def _error_name(code: int) -> str:
    try:
        return QuicErrorCode(code).name
    except ValueError:
        return f"error {code}"


class TransportError(Exception):
    """A connection that could not be made, or is closed (the text says why)."""


class SendBufferFull(TransportError):
    """``send_nowait`` past ``MAX_SEND_BUFFER_BYTES`` unacknowledged bytes."""


def is_port(value) -> bool:
    """Whether ``value`` is a port a peer can listen on: an int (not a bool) from 1 to 65535."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


def check_loopback(host: str) -> str:
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"{host}: the transport binds and dials loopback addresses only")
    return host


@dataclass(frozen=True)
class PeerAddress:
    """Where a node listens and the certificate it presents there; ``public_key``: the node expected."""

    host: str
    port: int
    certificate: bytes  # PEM; its fingerprint is the pin
    public_key: bytes | None = None

    def __post_init__(self) -> None:
        # A port no peer listens on is refused here: dialed, it would make sendto raise (OverflowError
        # past 65535), which ends the endpoint and every connection of the node.
        if not is_port(self.port):
            raise ValueError(f"a peer address's port is an integer from 1 to 65535, got {self.port!r}")

    @property
    def fingerprint(self) -> bytes:
        return tls.fingerprint(self.certificate)

    def to_json(self) -> dict:
        return {
            "host": self.host,
            "port": self.port,
            "certificate": self.certificate.decode("ascii"),
            "public_key": self.public_key.hex() if self.public_key is not None else None,
        }

    @classmethod
    def from_json(cls, value: dict) -> PeerAddress:
        try:
            key, host, certificate = value.get("public_key"), value["host"], value["certificate"]
            if type(host) is not str or type(certificate) is not str:
                raise TypeError(f"host and certificate are strings, got {host!r:.40} and {certificate!r:.40}")
            return cls(  # the port as JSON holds it: "4433", 4433.5 or true is no port (PeerAddress says so)
                check_loopback(host),
                value["port"],
                certificate.encode("ascii"),
                bytes.fromhex(key) if key is not None else None,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ValueError(f"not a peer address: {error!r}") from None


class Connection:
    """One QUIC connection of an endpoint, dialed or accepted."""

    def __init__(self, endpoint: Endpoint, quic: QuicConnection, address: tuple, handshake: Handshake) -> None:
        self.endpoint, self.quic, self.address, self.handshake = endpoint, quic, address, handshake
        self.is_client = handshake.is_client
        self.reader = FrameReader(limits.MAX_AUTH_MESSAGE_BYTES, "MAX_AUTH_MESSAGE_BYTES")  # until proven
        self.wake = trio.Event()
        self.authenticated = trio.Event()
        self.settled = trio.Event()  # authenticated or closed
        self.closed = trio.Event()  # closed by either side: no longer used (``reason`` says why)
        self.terminated = trio.Event()  # aioquic is done with it (after the draining period)
        self.acked = trio.Event()  # set whenever the peer sent something (acknowledgements among it)
        self.reason: str | None = None  # why it closed, once it did
        self.opened_at = self.last_heard = self._last_ping = trio.current_time()
        self._waiting_since = self.opened_at  # when the data now unacknowledged began to wait

    @property
    def peer_public_key(self) -> bytes | None:
        return self.handshake.peer_public_key

    @property
    def is_open(self) -> bool:
        return self.authenticated.is_set() and self.reason is None

    def unacknowledged(self) -> int:
        """Bytes written to the message stream that the peer has not acknowledged yet."""
        stream = self.quic._streams.get(MESSAGE_STREAM)  # aioquic keeps no public count of these
        return 0 if stream is None else stream.sender._buffer_stop - stream.sender._buffer_start

    def send_nowait(self, message: bytes) -> None:
        """Queue ``message``; it leaves with the next flush. ``SendBufferFull`` past the bound."""
        if not self.is_open:
            why = "identity not proven yet" if self.reason is None else self.reason or "closed with an empty reason"
            raise TransportError(f"connection is not open: {why}")
        data = frame(message)
        if self.unacknowledged() + len(data) > limits.MAX_SEND_BUFFER_BYTES:
            raise SendBufferFull(f"{self.unacknowledged()} bytes unacknowledged: MAX_SEND_BUFFER_BYTES reached")
        if not self.unacknowledged():
            self._waiting_since = trio.current_time()
        self.quic.send_stream_data(MESSAGE_STREAM, data)
        self.endpoint.stats["messages_sent"] += 1
        self.wake.set()

    async def send(self, message: bytes) -> None:
        """Queue ``message``; if the send buffer is full, first wait until it is half empty (bound the wait yourself).

        Waiting for half and not just for room keeps the writes in batches: a sender that
        resumed for every acknowledgement would put one message in each packet.
        """
        size = len(message) + HEADER.size
        if self.unacknowledged() + size > limits.MAX_SEND_BUFFER_BYTES:
            while self.is_open and self.unacknowledged() + size > limits.MAX_SEND_BUFFER_BYTES // 2:
                self.acked = trio.Event()
                await self.acked.wait()
        self.send_nowait(message)

    def flush(self) -> None:
        """Send what is queued now instead of at the connection task's next turn."""
        self._transmit()

    def close(self, reason: str, error_code: int = CLOSE_NORMAL) -> None:
        """Close with ``reason`` (the peer receives it); idempotent."""
        if self.reason is not None:
            return
        self.reason = reason
        self._transmit()  # what was queued leaves first: aioquic sends nothing but the close after it
        self.quic.close(error_code=error_code, reason_phrase=reason[:200])
        self._transmit()
        self._mark_closed()

    def _mark_closed(self) -> None:
        self.endpoint._unpublish(self)
        for event in (self.closed, self.settled, self.acked):
            event.set()

    # --- driven by the endpoint -------------------------------------------------------

    def _transmit(self) -> None:
        sock, stats = self.endpoint._sock, self.endpoint.stats
        for data, address in self.quic.datagrams_to_send(now=trio.current_time()):
            try:
                sock.sendto(data, address)
                stats["datagrams_sent"] += 1
                stats["bytes_sent"] += len(data)
            except OSError:  # a full socket buffer is a lost datagram: QUIC retransmits
                stats["datagrams_unsent"] += 1

    def _write(self, messages: list[bytes]) -> None:
        for message in messages:
            self.quic.send_stream_data(MESSAGE_STREAM, frame(message, limits.MAX_AUTH_MESSAGE_BYTES))
        self.wake.set()

    def _process_events(self) -> list[tuple[bytes, bytes]]:
        """Apply aioquic's events; return the messages to deliver."""
        delivered: list[tuple[bytes, bytes]] = []
        while (event := self.quic.next_event()) is not None:
            if isinstance(event, events.ConnectionIdIssued):
                self.endpoint._by_cid[event.connection_id] = self
            elif isinstance(event, events.ConnectionIdRetired):
                self.endpoint._by_cid.pop(event.connection_id, None)
            elif isinstance(event, events.HandshakeCompleted):
                self._write(self.handshake.start())
            elif isinstance(event, events.StreamDataReceived) and self.reason is None:
                self._receive(event, delivered)
            elif isinstance(event, events.ConnectionTerminated):
                self._closed_by_peer(event)
                self._terminate()
        closing = self.quic._close_event  # aioquic reports a peer's close only after the draining period
        if closing is not None and self.reason is None:
            self._closed_by_peer(closing)
        return delivered

    def _closed_by_peer(self, event: events.ConnectionTerminated) -> None:
        """The peer closed, or aioquic gave up (idle timeout, TLS failure): stop using the connection now, while it drains."""
        if self.reason is None:
            self.reason = f"closed: {event.reason_phrase or _error_name(event.error_code)}"
            self._mark_closed()

    def _receive(self, event: events.StreamDataReceived, delivered: list[tuple[bytes, bytes]]) -> None:
        if event.stream_id != MESSAGE_STREAM:
            self.close(f"data on stream {event.stream_id}: a connection carries one stream", CLOSE_VIOLATION)
            return
        try:
            messages = self.reader.feed(event.data)
            for message in messages:
                if self.authenticated.is_set():
                    delivered.append((self.peer_public_key, message))
                    continue
                self._write(self.handshake.receive(message))
                if self.handshake.done:
                    self.reader.limit, self.reader.limit_name = limits.MAX_FRAME_BYTES, "MAX_FRAME_BYTES"
                    self.authenticated.set()
                    self.settled.set()
                    self.endpoint._publish(self)
        except DecodeError as error:  # FramingError and AuthError among them
            self.close(f"refused: {error}", CLOSE_VIOLATION)
            return
        if event.end_stream and self.reason is None:
            self.close("the peer ended the message stream", CLOSE_VIOLATION)

    def _terminate(self) -> None:
        self.endpoint._forget(self)
        if self.reason is None:
            self.reason = "closed"
        for event in (self.closed, self.settled, self.terminated, self.acked, self.wake):
            event.set()

    def _deadline(self) -> float:
        """When ``_drive`` must look again: aioquic's timer, and while the connection is open (``_check_peer``
        acts on nothing else once it closed, so a deadline of it then would come round again at once, the
        drive spinning until aioquic's draining ends) the next ping, the proof's and the answer's bounds."""
        deadlines = [math.inf]
        timer = self.quic.get_timer()
        if timer is not None:
            deadlines.append(timer)
        if self.reason is None:
            deadlines.append(max(self.last_heard, self._last_ping) + limits.PING_INTERVAL_SECONDS)
            if not self.authenticated.is_set():
                deadlines.append(self.opened_at + limits.AUTH_TIMEOUT_SECONDS)
            elif self.unacknowledged():
                deadlines.append(self._silent_since() + limits.UNANSWERED_SECONDS)
        return min(deadlines)

    def _silent_since(self) -> float:
        """Since when the peer has been silent while data waits for it: a connection quiet for a while
        has not been unanswered before its data was sent."""
        return max(self.last_heard, self._waiting_since)

    def _check_peer(self, now: float) -> None:
        """Close a connection whose peer stays silent when it must answer; ping a quiet one."""
        if self.reason is not None:
            return
        if not self.authenticated.is_set() and now >= self.opened_at + limits.AUTH_TIMEOUT_SECONDS:
            self.close(f"identity not proven within AUTH_TIMEOUT_SECONDS ({limits.AUTH_TIMEOUT_SECONDS} s)", CLOSE_VIOLATION)
        elif self.authenticated.is_set() and self.unacknowledged() and now >= self._silent_since() + limits.UNANSWERED_SECONDS:
            self.close(f"peer silent for UNANSWERED_SECONDS ({limits.UNANSWERED_SECONDS} s) with data unacknowledged")
        elif now >= max(self.last_heard, self._last_ping) + limits.PING_INTERVAL_SECONDS:
            self._last_ping = now
            self.quic.send_ping(int(now * 1000))
            self.endpoint.stats["pings_sent"] += 1

    async def _drive(self) -> None:
        handled_at = -math.inf  # when aioquic's timer was last handled
        while not self.terminated.is_set():
            self.wake = trio.Event()  # reset before flushing: a wake-up during the flush is kept
            self._transmit()
            with trio.move_on_at(max(self._deadline(), handled_at + TIMER_GRANULARITY_SECONDS)):
                await self.wake.wait()
            now = trio.current_time()
            timer = self.quic.get_timer()
            if timer is not None and now >= timer:
                self.quic.handle_timer(now=now)
                handled_at = now
                for message in self._process_events():  # cannot happen: data comes with datagrams
                    raise AssertionError(f"message delivered by a timer: {message!r:.40}")
            self._check_peer(now)


@dataclass
class Endpoint:
    """One UDP socket, its connections, and the queue of messages received from proven peers."""

    identity: Identity
    certificate: tls.NodeCertificate
    _sock: socket.socket
    _nursery: trio.Nursery
    stats: collections.Counter = field(default_factory=collections.Counter)

    def __post_init__(self) -> None:
        self._server_configuration = tls.server_configuration(self.certificate)
        self._fingerprint = self.certificate.fingerprint
        self._by_cid: dict[bytes, Connection] = {}
        self.connections: set[Connection] = set()
        self._peers: dict[bytes, list[Connection]] = {}
        self._inbox: collections.deque[tuple[bytes, bytes]] = collections.deque()
        self._arrived = trio.Event()  # set when the inbox gets messages
        self._room = trio.Event()  # set when the inbox drops below MAX_RECEIVE_QUEUE
        self._pending: dict[bytes, collections.deque] = {}
        self.closed = False

    @property
    def address(self) -> tuple[str, int]:
        return self._sock.getsockname()

    def peer_address(self) -> PeerAddress:
        """How others reach this endpoint."""
        host, port = self.address
        return PeerAddress(host, port, self.certificate.certificate_pem, self.identity.public_key)

    def peers(self) -> set[bytes]:
        """Public keys of the nodes with an open, proven connection."""
        return {key for key, conns in self._peers.items() if conns}

    def connection_to(self, public_key: bytes) -> Connection | None:
        conns = self._peers.get(public_key)
        return conns[-1] if conns else None

    async def receive(self) -> tuple[bytes, bytes]:
        """The next ``(peer public key, message)`` from a proven peer."""
        await trio.lowlevel.checkpoint_if_cancelled()
        while not self._inbox:
            self._arrived = trio.Event()
            await self._arrived.wait()
        message = self._inbox.popleft()
        self._room.set()
        return message

    async def receive_many(self) -> list[tuple[bytes, bytes]]:
        """Every message waiting (at least one): one scheduling step for a whole batch."""
        await trio.lowlevel.checkpoint_if_cancelled()
        while not self._inbox:
            self._arrived = trio.Event()
            await self._arrived.wait()
        messages = list(self._inbox)
        self._inbox.clear()
        self._room.set()
        return messages

    async def connect(self, peer: PeerAddress) -> Connection:
        """Dial ``peer``; return once both identities are proven (``TransportError`` if not)."""
        if self.closed:
            raise TransportError("endpoint is closed")
        if len(self.connections) >= limits.MAX_CONNECTIONS:
            raise TransportError(f"MAX_CONNECTIONS ({limits.MAX_CONNECTIONS}) reached")
        address = (check_loopback(peer.host), peer.port)
        configuration = tls.client_configuration(peer.certificate)
        quic = QuicConnection(configuration=configuration)
        handshake = Handshake(self.identity, self._fingerprint, True, peer.fingerprint, peer.public_key)
        conn = Connection(self, quic, address, handshake)
        self._by_cid[quic.host_cid] = conn
        quic.connect(address, now=trio.current_time())
        self._start(conn)
        with trio.move_on_after(limits.AUTH_TIMEOUT_SECONDS + 1):
            await conn.settled.wait()
        if not conn.is_open:
            conn.close(f"identity not proven within AUTH_TIMEOUT_SECONDS ({limits.AUTH_TIMEOUT_SECONDS} s)")
            self.stats["dials_failed"] += 1
            raise TransportError(f"{address[0]}:{address[1]}: {conn.reason}")
        return conn

    def send_to(self, peer: PeerAddress, message: bytes) -> None:
        """Send over an open connection to ``peer``, dialing it first if there is none.

        Messages wait for the dial (at most ``MAX_PENDING_PER_PEER``, older ones dropped); a
        failed dial drops them. Never blocks; losses are counted in ``stats``.
        """
        if peer.public_key is None:
            raise ValueError("send_to needs the public key of the node at the address")
        if len(message) > limits.MAX_FRAME_BYTES:  # refused now, as on a connection: queued, it would fail the dial
            raise FramingError(f"message of {len(message)} bytes exceeds MAX_FRAME_BYTES ({limits.MAX_FRAME_BYTES})")
        conn = self.connection_to(peer.public_key)
        if conn is not None:
            try:
                conn.send_nowait(message)
            except SendBufferFull:
                self.stats["messages_dropped_full"] += 1
            return
        queue = self._pending.get(peer.public_key)
        if queue is None:
            queue = self._pending[peer.public_key] = collections.deque()
            self._nursery.start_soon(self._dial_and_flush, peer)
        if len(queue) >= limits.MAX_PENDING_PER_PEER:
            queue.popleft()
            self.stats["messages_dropped_pending"] += 1
        queue.append(message)

    async def _dial_and_flush(self, peer: PeerAddress) -> None:
        try:
            conn = await self.connect(peer)
        except TransportError:
            conn = None
        queue = self._pending.pop(peer.public_key, collections.deque())
        if conn is None:
            self.stats["messages_dropped_dial"] += len(queue)
            return
        for message in queue:
            try:
                conn.send_nowait(message)
            except TransportError:
                self.stats["messages_dropped_full"] += 1

    # --- bookkeeping --------------------------------------------------------------------

    def _start(self, conn: Connection) -> None:
        self.connections.add(conn)
        self._nursery.start_soon(conn._drive)

    def _publish(self, conn: Connection) -> None:
        self._peers.setdefault(conn.peer_public_key, []).append(conn)
        queue = self._pending.get(conn.peer_public_key)
        while queue:  # the peer dialed us while our dial to it was under way: no need to wait for ours
            message = queue.popleft()
            try:
                conn.send_nowait(message)
            except TransportError:
                self.stats["messages_dropped_full"] += 1

    def _unpublish(self, conn: Connection) -> None:
        key = conn.peer_public_key
        if key is not None and conn in self._peers.get(key, ()):
            self._peers[key].remove(conn)
            if not self._peers[key]:
                del self._peers[key]

    def _forget(self, conn: Connection) -> None:
        self._unpublish(conn)
        self.connections.discard(conn)
        for cid in [cid for cid, owner in self._by_cid.items() if owner is conn]:
            del self._by_cid[cid]

    def _route(self, data: bytes, address: tuple) -> Connection | None:
        try:
            header = pull_quic_header(Buffer(data=data), host_cid_length=self._server_configuration.connection_id_length)
        except ValueError:
            self.stats["datagrams_malformed"] += 1
            return None
        conn = self._by_cid.get(header.destination_cid)
        if conn is not None:
            return conn
        if (
            header.packet_type != QuicPacketType.INITIAL
            or len(data) < SMALLEST_MAX_DATAGRAM_SIZE
            or header.version not in self._server_configuration.supported_versions
            or self.closed
        ):
            self.stats["datagrams_unrouted"] += 1
            return None
        if len(self.connections) >= limits.MAX_CONNECTIONS:
            self.stats["connections_refused"] += 1
            return None
        quic = QuicConnection(configuration=self._server_configuration, original_destination_connection_id=header.destination_cid)
        conn = Connection(self, quic, address, Handshake(self.identity, self._fingerprint, False, self._fingerprint))
        self._by_cid[header.destination_cid] = conn
        self._by_cid[quic.host_cid] = conn
        self._start(conn)
        self.stats["connections_accepted"] += 1
        return conn

    async def _receive_loop(self) -> None:
        sock = self._sock
        while True:
            await trio.lowlevel.wait_readable(sock)
            delivered: list[tuple[bytes, bytes]] = []
            for _ in range(RECEIVE_BATCH):
                try:
                    data, address = sock.recvfrom(65536)
                except BlockingIOError:
                    break
                except OSError:  # an ICMP error reported on the socket: the datagram is lost
                    continue
                self.stats["datagrams_received"] += 1
                conn = self._route(data, address)
                if conn is None:
                    continue
                now = trio.current_time()
                conn.quic.receive_datagram(data, address, now=now)
                conn.last_heard = now
                delivered.extend(conn._process_events())
                conn.wake.set()
                conn.acked.set()
            if delivered:
                self.stats["messages_received"] += len(delivered)
                self._inbox.extend(delivered)
                self._arrived.set()
            while len(self._inbox) >= limits.MAX_RECEIVE_QUEUE:  # stop reading the socket: back-pressure
                self._room = trio.Event()
                await self._room.wait()

    def close(self, reason: str = "endpoint closed") -> None:
        """Close every connection with ``reason``, then stop every task."""
        self.closed = True
        for conn in list(self.connections):
            conn.close(reason)
        self._nursery.cancel_scope.cancel()


@asynccontextmanager
async def open_endpoint(
    identity: Identity, certificate: tls.NodeCertificate, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[Endpoint]:
    """An endpoint listening on ``host:port`` (loopback only; port 0: any free port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER_BYTES)  # the kernel caps it at its maximum
        sock.bind((check_loopback(host), port))
        async with trio.open_nursery() as nursery:
            endpoint = Endpoint(identity, certificate, sock, nursery)
            nursery.start_soon(endpoint._receive_loop)
            try:
                yield endpoint
            finally:
                endpoint.close()
    finally:
        sock.close()
