"""Signed node messages, their ids, and the datagrams that carry them (SPEC section 4).

A *message* is the MessagePack message ``["node.msg", 1, [scheme, public_key, signer,
topic, epoch_secs, payload, signature]]``:

* ``signer`` is the signer's PeerId, ``BLAKE3(public_key)``; ``scheme`` names the key's
  algorithm (``implementations.node.identity``);
* ``topic`` (UTF-8, at most ``MAX_TOPIC_BYTES``) says what the payload is about;
  ``epoch_secs`` is the signer's clock in whole seconds when it signed;
* ``payload`` is itself a wire message ``["node.<kind>", 1, body]`` (``encode_payload``);
* ``signature`` covers the whole header and the payload's hash: the canonical bytes
  ``["node.msg.header", 1, [scheme, public_key, signer, topic, epoch_secs, BLAKE3(payload)]]``
  (``signed_part``). Change any field and the signature no longer verifies.

``msg_id = BLAKE3(topic || epoch_secs as u64 little-endian || signer || BLAKE3(payload))``.

A receiver checks, in this order (``authenticate``): the PeerId is the hash of the key
("peer id does not match key"), then the signature ("bad signature"). Membership, freshness
and replay are the node's business (``implementations.node.core``).

A *datagram* is ``["node.dgram", 1, [message bytes, ...]]``: what one node sends another
in one go (a gossip batch, a repair). It is not signed; each message in it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import blake3
import msgpack

from implementations import wire
from implementations.limits import (
    MAX_DATAGRAM_BYTES,
    MAX_MESSAGE_BYTES,
    MAX_MESSAGES_PER_DATAGRAM,
    MAX_PAYLOAD_BYTES,
    MAX_TOPIC_BYTES,
)
from implementations.node.identity import PUBLIC_KEY_BYTES, SIGNATURE_BYTES, Identity, peer_id
from implementations.wire import DecodeError

MESSAGE_KIND, HEADER_KIND, DATAGRAM_KIND, VERSION = "node.msg", "node.msg.header", "node.dgram", 1
NS_PER_SECOND = 1_000_000_000
U64_MAX = 2**64 - 1
_KEY_AND_SIGNATURE_BYTES = {scheme: (PUBLIC_KEY_BYTES[scheme], SIGNATURE_BYTES[scheme]) for scheme in PUBLIC_KEY_BYTES}


@dataclass(slots=True)
class Message:
    """A decoded message; nothing changes one after ``decode_message`` made it (not frozen: a frozen
    dataclass costs three times as much to build, and a node builds one per message it receives)."""

    scheme: int
    public_key: bytes
    signer: bytes
    topic: str
    epoch_secs: int
    payload: bytes
    signature: bytes
    payload_hash: bytes  # BLAKE3(payload), computed on decoding, never sent
    raw: bytes  # the message's bytes, forwarded unchanged

    @property
    def msg_id(self) -> bytes:
        return msg_id(self.topic, self.epoch_secs, self.signer, self.payload_hash)


def msg_id(topic: str, epoch_secs: int, signer: bytes, payload_hash: bytes) -> bytes:
    """``BLAKE3(topic || epoch_secs u64 LE || signer || BLAKE3(payload))``."""
    return blake3.blake3(topic.encode() + epoch_secs.to_bytes(8, "little") + signer + payload_hash).digest()


def signed_part(scheme: int, public_key: bytes, signer: bytes, topic: str, epoch_secs: int, payload_hash: bytes) -> bytes:
    """The bytes a signer signs: every header field and the payload's hash."""
    return wire.encode(HEADER_KIND, VERSION, [scheme, public_key, signer, topic, epoch_secs, payload_hash])


def seal(identity: Identity, topic: str, now_ns: int, payload: bytes) -> bytes:
    """A message carrying ``payload`` on ``topic``, signed by ``identity`` at ``now_ns``."""
    epoch_secs = now_ns // NS_PER_SECOND
    payload_hash = blake3.blake3(payload).digest()
    signature = identity.sign(signed_part(identity.scheme, identity.public_key, identity.peer_id, topic, epoch_secs,
                                          payload_hash))
    return wire.encode(MESSAGE_KIND, VERSION, [identity.scheme, identity.public_key, identity.peer_id, topic, epoch_secs,
                                               payload, signature])


def decode_message(data: bytes) -> Message:
    """The message in ``data`` (shapes and sizes checked, nothing verified), or ``DecodeError``.

    A well-formed message is checked in one expression; anything else goes through the checks
    one by one (``_decode_message_checked``), which name what is wrong."""
    if type(data) is bytes and len(data) <= MAX_MESSAGE_BYTES:
        try:
            head = msgpack.unpackb(data)  # msgpack >= 1.0's defaults: raw=False, use_list=True, strict_map_key=True
        except (ValueError, TypeError, msgpack.UnpackException, RecursionError):
            head = None
        if type(head) is list and len(head) == 3 and head[0] == MESSAGE_KIND and type(head[1]) is int and head[1] == VERSION \
                and type(head[2]) is list and len(head[2]) == 7:
            scheme, public_key, signer, topic, epoch_secs, payload, signature = head[2]
            sizes = _KEY_AND_SIGNATURE_BYTES.get(scheme) if type(scheme) is int else None
            if (sizes is not None and type(public_key) is bytes and len(public_key) == sizes[0]
                    and type(signer) is bytes and len(signer) == 32
                    and type(topic) is str and (len(topic) <= MAX_TOPIC_BYTES // 4 or len(topic.encode()) <= MAX_TOPIC_BYTES)
                    and type(epoch_secs) is int and 0 <= epoch_secs <= U64_MAX
                    and type(payload) is bytes and len(payload) <= MAX_PAYLOAD_BYTES
                    and type(signature) is bytes and len(signature) == sizes[1]):
                return Message(scheme, public_key, signer, topic, epoch_secs, payload, signature,
                               blake3.blake3(payload).digest(), data)
    return _decode_message_checked(data)


def _decode_message_checked(data: bytes) -> Message:
    body = wire.expect_list(wire.decode(data, MESSAGE_KIND, VERSION), "message", length=7)
    scheme = body[0]
    if type(scheme) is not int or scheme not in PUBLIC_KEY_BYTES:  # (not a bool, nor a float equal to one)
        raise DecodeError(f"message: unknown signature scheme {scheme!r}")
    topic = wire.expect_str(body[3], "message.topic")
    if len(topic.encode()) > MAX_TOPIC_BYTES:
        raise DecodeError(f"message.topic: longer than {MAX_TOPIC_BYTES} bytes")
    payload = wire.expect_bytes(body[5], "message.payload")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise DecodeError(f"message.payload: {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    return Message(
        scheme=scheme,
        public_key=wire.expect_bytes(body[1], "message.public_key", PUBLIC_KEY_BYTES[scheme]),
        signer=wire.expect_bytes(body[2], "message.signer", 32),
        topic=topic,
        epoch_secs=wire.expect_int(body[4], "message.epoch_secs", 0, U64_MAX),
        payload=payload,
        signature=wire.expect_bytes(body[6], "message.signature", SIGNATURE_BYTES[scheme]),
        payload_hash=blake3.blake3(payload).digest(),
        raw=bytes(data),
    )


def bound_to_key(message: Message) -> bool:
    """Whether the message's signer is the PeerId of the key it carries."""
    return peer_id(message.public_key) == message.signer


def authenticate(message: Message, verifier, bound: dict[bytes, bytes] | None = None) -> str | None:
    """The first check ``message`` fails ("peer id does not match key", "bad signature"), or None.

    ``bound`` (signer -> a key ``bound_to_key`` already found to be its) spares hashing a key again:
    the binding is a pure function of the two."""
    if (bound is None or bound.get(message.signer) != message.public_key) and not bound_to_key(message):
        return "peer id does not match key"
    signed_ok = verifier.recall(message.raw)
    if signed_ok is None:
        signed = signed_part(message.scheme, message.public_key, message.signer, message.topic, message.epoch_secs,
                             message.payload_hash)
        signed_ok = verifier(message.scheme, message.public_key, signed, message.signature)
        verifier.note(message.raw, signed_ok)
    return None if signed_ok else "bad signature"


# ----- payloads ----------------------------------------------------------------------------


def encode_payload(kind: str, body: list[Any]) -> bytes:
    return wire.encode(kind, VERSION, body)


def decode_payload(payload: bytes) -> tuple[str, list[Any]]:
    """``(kind, body)`` of a payload, or ``DecodeError``."""
    try:
        head = msgpack.unpackb(payload)  # msgpack >= 1.0's defaults: raw=False, use_list=True, strict_map_key=True
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError) as error:
        raise DecodeError(f"payload: not a well-formed message: {error}") from None
    if type(head) is list and len(head) == 3 and type(head[0]) is str and head[0].startswith("node.") \
            and type(head[1]) is int and head[1] == VERSION and type(head[2]) is list:
        return head[0], head[2]
    if not (isinstance(head, list) and len(head) == 3 and isinstance(head[0], str) and head[0].startswith("node.")):
        raise DecodeError("payload: expected [kind, version, body] with a node.* kind")
    kind = head[0]
    if type(head[1]) is not int or head[1] != VERSION:  # True and 1.0 equal 1 in Python, not on the wire
        raise DecodeError(f"{kind}: version {head[1]!r} is not supported (expected {VERSION})")
    return kind, wire.expect_list(head[2], f"{kind}: body")


# ----- datagrams ---------------------------------------------------------------------------


def encode_datagram(messages: list[bytes]) -> bytes:
    return wire.encode(DATAGRAM_KIND, VERSION, messages)


def decode_datagram(data: bytes) -> list[bytes]:
    """The message bytes a datagram carries, or ``DecodeError`` (a well-formed one is checked in one go, as in
    ``decode_message``)."""
    if type(data) is bytes and len(data) <= MAX_DATAGRAM_BYTES:
        try:
            head = msgpack.unpackb(data)  # msgpack >= 1.0's defaults: raw=False, use_list=True, strict_map_key=True
        except (ValueError, TypeError, msgpack.UnpackException, RecursionError):
            head = None
        if type(head) is list and len(head) == 3 and head[0] == DATAGRAM_KIND and type(head[1]) is int and head[1] == VERSION \
                and type(head[2]) is list and 1 <= len(head[2]) <= MAX_MESSAGES_PER_DATAGRAM:
            raws = head[2]
            if (len(raws) == 1 and type(raws[0]) is bytes) or all(type(raw) is bytes for raw in raws):
                return raws
    if not isinstance(data, (bytes, bytearray)):
        raise DecodeError(f"datagram: expected bytes, got {type(data).__name__}")
    if len(data) > MAX_DATAGRAM_BYTES:
        raise DecodeError(f"datagram: {len(data)} bytes exceeds {MAX_DATAGRAM_BYTES}")
    body = wire.decode(data, DATAGRAM_KIND, VERSION)
    if not 1 <= len(body) <= MAX_MESSAGES_PER_DATAGRAM:
        raise DecodeError(f"datagram: carries {len(body)} messages, expected 1 to {MAX_MESSAGES_PER_DATAGRAM}")
    for n, item in enumerate(body):
        wire.expect_bytes(item, f"datagram[{n}]")
    return body
