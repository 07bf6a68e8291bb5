"""The wire encoding of every replicated state and delta.

A message is a MessagePack array ``[kind, version, body]``: ``kind`` names what the bytes
hold (``"orset.state"``, ``"rga.delta"``, ...), ``version`` is the integer version of that
kind's body layout, and ``body`` is built only of nil, booleans, integers, strings, bytes
and arrays. Maps are never used, so the bytes of a value are fixed by the order the encoder
writes, and every encoder here writes in a sorted, canonical order: equal states encode to
equal bytes.

Why MessagePack (the ``msgpack`` package) and not a format of our own: it is a small,
stable, documented binary format with a C decoder that has limits on every length, and it
tells truncated input from trailing garbage. Our code only checks shapes.

Decoding is total: any bytes either decode to a checked value or raise ``DecodeError``,
never another exception. A replica decodes and checks a whole message before it changes any
of its state, so a bad message is refused whole and nothing is half-applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgpack

from implementations.limits import LIMITS, MAX_MESSAGE_BYTES

__all__ = [
    "DecodeError",
    "OverLimit",
    "decode",
    "encode",
    "expect_bool",
    "expect_bytes",
    "expect_int",
    "expect_list",
    "expect_str",
]

class DecodeError(ValueError):
    """Bytes that are not a well-formed message of the expected kind and version.

    The message says what was wrong and where (``"orset.state: body[2][0]: expected int,
    got str"``). It is the only exception a decoder raises for bad input.
    """


class OverLimit(DecodeError):
    """A well-formed message refused because it passes a limit of ``implementations.limits``.

    ``limit`` is the limit's name (``"MAX_COUNTER_GAP"``); the text names it, its value and
    what in the message passed it. Like every ``DecodeError``, the message changed nothing.
    """

    def __init__(self, limit: str, detail: str) -> None:
        declared = LIMITS[limit]
        super().__init__(f"over limit {limit} ({declared.value:,} {declared.unit}): {detail}")
        self.limit = limit


def encode(kind: str, version: int, body: Sequence[Any]) -> bytes:
    """The canonical bytes of ``body`` as a message of ``kind``/``version``."""
    return msgpack.packb([kind, version, body], use_bin_type=True)


def decode(data: bytes, kind: str, version: int) -> list[Any]:
    """The body of a ``kind``/``version`` message, or ``DecodeError``."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"{kind}: expected bytes, got {type(data).__name__}")
    if len(data) > MAX_MESSAGE_BYTES:
        raise OverLimit("MAX_MESSAGE_BYTES", f"{kind}: message of {len(data):,} bytes")
    try:
        message = msgpack.unpackb(
            bytes(data),
            raw=False,
            use_list=True,
            strict_map_key=True,
        )  # unpackb bounds every length by len(data) itself (max_buffer_size is Unpacker-only)
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError) as error:
        raise DecodeError(f"{kind}: not a well-formed message: {error}") from None
    header = expect_list(message, f"{kind}: message", length=3)
    if header[0] != kind:
        raise DecodeError(f"{kind}: message is of kind {header[0]!r}, expected {kind!r}")
    if type(header[1]) is not int or header[1] != version:  # True and 1.0 equal 1 in Python, not on the wire
        raise DecodeError(f"{kind}: version {header[1]!r} is not supported (expected {version})")
    return expect_list(header[2], f"{kind}: body")


def _fail(where: str, expected: str, value: Any) -> DecodeError:
    return DecodeError(f"{where}: expected {expected}, got {type(value).__name__} {value!r:.60}")


def expect_list(value: Any, where: str, length: int | None = None) -> list[Any]:
    """``value`` as a list (of exactly ``length`` items if given)."""
    if not isinstance(value, list):
        raise _fail(where, "array", value)
    if length is not None and len(value) != length:
        raise DecodeError(f"{where}: expected {length} items, got {len(value)}")
    return value


def expect_int(value: Any, where: str, lo: int = 0, hi: int = 2**64 - 1) -> int:
    """``value`` as an int in ``[lo, hi]`` (booleans are not integers here)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise _fail(where, "int", value)
    if not lo <= value <= hi:
        raise DecodeError(f"{where}: {value} is outside [{lo}, {hi}]")
    return value


def expect_str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _fail(where, "str", value)
    return value


def expect_bytes(value: Any, where: str, length: int | None = None) -> bytes:
    if not isinstance(value, bytes):
        raise _fail(where, "bytes", value)
    if length is not None and len(value) != length:
        raise DecodeError(f"{where}: expected {length} bytes, got {len(value)}")
    return value


def expect_bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(where, "bool", value)
    return value


#: Integers a set element may be: what MessagePack carries (signed and unsigned 64-bit).
MIN_INT_ELEMENT, MAX_INT_ELEMENT = -(2**63), 2**64 - 1


def element_key(element: Any) -> tuple[int, Any]:
    """The canonical order of set elements on the wire: integers, then strings, then bytes.

    Elements of mixed types have no order of their own in Python; encoders sort by this key
    so that equal sets encode to equal bytes. Anything else is refused (``TypeError``), and
    so is an integer MessagePack cannot carry (``ValueError``).
    """
    if isinstance(element, bool):
        raise TypeError("set elements are str, int or bytes, got bool")
    if isinstance(element, int):
        if not MIN_INT_ELEMENT <= element <= MAX_INT_ELEMENT:
            raise ValueError(f"integer set elements must fit in 64 bits, got {element}")
        return (0, element)
    if isinstance(element, str):
        return (1, element)
    if isinstance(element, bytes):
        return (2, element)
    raise TypeError(f"set elements are str, int or bytes, got {type(element).__name__}")
