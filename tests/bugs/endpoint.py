"""QUIC endpoint bugs (``implementations.transport.endpoint``, ``framing``, ``tls``): how frames are
cut, what the client pins, what a close sends and what waits for a dial, caught by the in-process
``endpoint`` machine (real endpoints on 127.0.0.1)."""

from __future__ import annotations

import collections
import ssl

from implementations import limits
from implementations.transport import endpoint, framing, tls
from implementations.transport.framing import HEADER, FramingError
from machines.adapters.endpoint_quic import implementation_with
from tests.bugs.catalogue import Bug, patching


def frames_one_byte_short(self):
    """``FrameReader._frames`` taking a frame's body to end one byte before its length says."""
    buffer, start = self._buffer, 0
    try:
        while len(buffer) - start >= HEADER.size:
            (length,) = HEADER.unpack_from(buffer, start)
            if length > self.limit:
                raise FramingError(f"frame of {length} bytes exceeds {self.limit_name} ({self.limit})")
            end = start + HEADER.size + max(length - 1, 0)  # BUG: the length read as one byte too short
            if len(buffer) < end:
                break
            message = bytes(buffer[start + HEADER.size : end])
            start = end
            yield message
    finally:
        del buffer[:start]


def trusts_the_system_store(peer_certificate_pem):
    """The client verifies the listener's certificate against the system's roots, not the pin,
    and then, as every self-signed node certificate fails that, turns verification off."""
    tls._load(peer_certificate_pem)
    configuration = tls._configuration(is_client=True)
    configuration.server_name = tls.SERVER_NAME
    configuration.verify_mode = ssl.CERT_NONE  # BUG: any certificate passes TLS
    return configuration


def close_without_flush(self, reason, error_code=endpoint.CLOSE_NORMAL):
    """``Connection.close`` closing before what was queued has left: aioquic then sends only the
    close, and the messages queued in the same step are lost though counted sent."""
    if self.reason is not None:
        return
    self.reason = reason
    self.quic.close(error_code=error_code, reason_phrase=reason[:200])  # BUG: no transmit before the close
    self._transmit()
    self._mark_closed()


def send_nowait_bounding_the_message(self, message):
    """``Connection.send_nowait`` bounding the send buffer by the message's length, not its frame's:
    a message whose header takes the buffer past ``MAX_SEND_BUFFER_BYTES`` is taken."""
    if not self.is_open:
        why = "identity not proven yet" if self.reason is None else self.reason or "closed with an empty reason"
        raise endpoint.TransportError(f"connection is not open: {why}")
    data = framing.frame(message)
    if self.unacknowledged() + len(message) > limits.MAX_SEND_BUFFER_BYTES:  # BUG: the header left out
        raise endpoint.SendBufferFull(f"{self.unacknowledged()} bytes unacknowledged: MAX_SEND_BUFFER_BYTES reached")
    self.quic.send_stream_data(endpoint.MESSAGE_STREAM, data)
    self.endpoint.stats["messages_sent"] += 1
    self.wake.set()


def send_to_keeping(drop_newest: bool, room: int):
    """``Endpoint.send_to`` whose queue of messages waiting for a dial holds ``room`` messages and,
    full, drops the newest instead of the oldest when ``drop_newest``; every other path (an open
    connection, a refused message) is the real one."""
    real = endpoint.Endpoint.send_to

    def send_to(self, peer, message):
        if peer.public_key is None or len(message) > limits.MAX_FRAME_BYTES or self.connection_to(peer.public_key) is not None:
            return real(self, peer, message)
        queue = self._pending.get(peer.public_key)
        if queue is None:
            queue = self._pending[peer.public_key] = collections.deque()
            self._nursery.start_soon(self._dial_and_flush, peer)
        if len(queue) >= room:  # BUG (one of): room past the limit, or the newest dropped
            self.stats["messages_dropped_pending"] += 1
            if drop_newest:
                return None
            queue.popleft()
        queue.append(message)
        return None
    return send_to


def _patched(name, target, attribute, value, description, kind, involves=()):
    return Bug(f"endpoint-{name}", "endpoint", description, kind,
               patching(target, attribute, value, implementation_with(f"bug-{name}")), correct="quic-loopback",
               involves=frozenset(involves))


BUGS = [
    _patched("frame-one-byte-short", framing.FrameReader, "_frames", frames_one_byte_short,
             "a frame's length is read as one byte too short: every message loses its last byte and the stream "
             "falls out of step", "off-by-one"),
    _patched("pin-not-checked", tls, "client_configuration", trusts_the_system_store,
             "the client does not verify the listener's certificate against its pin (verification off)",
             "signature-coverage", involves=("dial|impostor",)),
    _patched("close-without-flush", endpoint.Connection, "close", close_without_flush,
             "a close leaves before what was queued in the same step: those messages are lost, counted as sent",
             "lost-update", involves=("send",)),
    _patched("send-buffer-bounds-the-message", endpoint.Connection, "send_nowait", send_nowait_bounding_the_message,
             "the send buffer's bound is checked against the message's length, not its frame's: a full buffer takes "
             "one more small message, past MAX_SEND_BUFFER_BYTES", "off-by-one", involves=("send",)),
    _patched("pending-one-past-the-limit", endpoint.Endpoint, "send_to",
             send_to_keeping(drop_newest=False, room=limits.MAX_PENDING_PER_PEER + 1),
             "the queue of messages waiting for a dial holds MAX_PENDING_PER_PEER + 1 (> for >=)", "off-by-one",
             involves=("send",)),
    _patched("pending-drops-the-newest", endpoint.Endpoint, "send_to",
             send_to_keeping(drop_newest=True, room=limits.MAX_PENDING_PER_PEER),
             "a full queue of messages waiting for a dial drops the message just sent, not the oldest: the latest "
             "state a peer is told never reaches it", "lost-update", involves=("send",)),
]
