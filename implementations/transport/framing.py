"""Messages on a QUIC stream: each one a 4-byte big-endian length, then that many bytes.

A stream is a byte stream, so message boundaries are ours to mark. ``frame`` refuses a
message over ``MAX_FRAME_BYTES``; ``FrameReader`` returns the whole messages in what has
arrived and keeps at most one unfinished frame, so what it holds is bounded by its limit
(``MAX_AUTH_MESSAGE_BYTES`` until the peer proved its identity, then ``MAX_FRAME_BYTES``):
a header announcing more is refused (``FramingError``) before any of its body is buffered.

Batching needs nothing more: several frames written to the stream at once travel in as few
QUIC packets as fit them (``Connection.send_nowait`` queues, one flush sends them all).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from implementations.limits import MAX_FRAME_BYTES
from implementations.wire import DecodeError

HEADER = struct.Struct(">I")


class FramingError(DecodeError):
    """A frame over its limit, or bytes that are not frames."""


def frame(message: bytes, limit: int = MAX_FRAME_BYTES) -> bytes:
    """``message`` with its length prefix."""
    if len(message) > limit:
        raise FramingError(f"message of {len(message)} bytes exceeds MAX_FRAME_BYTES ({limit})")
    return HEADER.pack(len(message)) + message


class FrameReader:
    """Cuts a byte stream into messages, holding at most one unfinished frame."""

    def __init__(self, limit: int = MAX_FRAME_BYTES, limit_name: str = "MAX_FRAME_BYTES") -> None:
        self.limit, self.limit_name = limit, limit_name
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Take ``data``; iterate over the messages it completes, in order.

        Each frame's header is checked against ``limit`` as it is reached, so a consumer may
        change the limit between two messages (the identity proof has a tighter one than
        what follows it). ``FramingError`` on an oversized header.
        """
        self._buffer += data
        return self._frames()

    def _frames(self) -> Iterator[bytes]:
        buffer, start = self._buffer, 0
        try:
            while len(buffer) - start >= HEADER.size:
                (length,) = HEADER.unpack_from(buffer, start)
                if length > self.limit:
                    raise FramingError(f"frame of {length} bytes exceeds {self.limit_name} ({self.limit})")
                end = start + HEADER.size + length
                if len(buffer) < end:
                    break
                message = bytes(buffer[start + HEADER.size : end])
                start = end
                yield message
        finally:
            del buffer[:start]
