"""Messages on a QUIC stream: each one a 4-byte big-endian length, then that many bytes.

A stream is a byte stream, so message boundaries are ours to mark. ``frame`` refuses a
message over ``MAX_FRAME_BYTES``; ``FrameReader`` returns the whole messages in what has
arrived and keeps at most one unfinished frame, so what it holds is bounded by the limit: a
header announcing more is refused (``FramingError``) before any of its body is buffered.

Batching needs nothing more: several frames written to the stream at once travel in as few
QUIC packets as fit them (``Connection.send_nowait`` queues, one flush sends them all).
"""

from __future__ import annotations

import struct

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

    def __init__(self, limit: int = MAX_FRAME_BYTES) -> None:
        self.limit = limit
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """The messages completed by ``data``, in order; ``FramingError`` on an oversized header."""
        self._buffer += data
        messages, start = [], 0
        buffer = self._buffer
        while len(buffer) - start >= HEADER.size:
            (length,) = HEADER.unpack_from(buffer, start)
            if length > self.limit:
                raise FramingError(f"frame of {length} bytes exceeds MAX_FRAME_BYTES ({self.limit})")
            end = start + HEADER.size + length
            if len(buffer) < end:
                break
            messages.append(bytes(buffer[start + HEADER.size : end]))
            start = end
        del buffer[:start]
        return messages
