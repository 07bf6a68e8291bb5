"""Which node is at each end of a connection: an identity proof bound to the TLS session.

TLS tells the dialing side only that the listener holds the key of the certificate it
pinned; aioquic has no client certificates. So once the TLS handshake is done both nodes
prove their *node identity* on the connection's stream, before any other message:

1. client -> server ``hello``: its identity public key, a fresh 32-byte nonce, the
   fingerprint of its own certificate;
2. server -> client ``hello`` (the same for the server) and ``proof``: its signature over
   the transcript;
3. client -> server ``proof``: its signature over the transcript.

The transcript is ``[role, server certificate fingerprint, client certificate fingerprint,
client nonce, server nonce]``. The server fingerprint in the client's transcript is the one
the client *pinned*, not one the server claims, and each side's transcript holds the other
side's fresh nonce: a signature cannot be replayed on another connection, and a node that
relays a handshake between two others (client -> relay -> server) fails, because the client
signs the relay's certificate fingerprint while the server checks for its own. The role in
the transcript keeps a client's signature from passing as a server's.

``Handshake`` is sans-I/O: it takes the messages received and returns those to send, and
raises ``AuthError`` (naming what failed) on anything else; the connection then closes with
that reason and delivers nothing, and the handshake stays refused: whatever still arrives
before the connection is closed is refused too, never taken as a second try.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from implementations import wire
from implementations.limits import MAX_AUTH_MESSAGE_BYTES
from implementations.transport.identity import Identity
from implementations.wire import DecodeError

HELLO, PROOF, TRANSCRIPT = "transport.hello", "transport.proof", "transport.transcript"
VERSION = 1
NONCE_BYTES = 32
FINGERPRINT_BYTES = 32


class AuthError(DecodeError):
    """A peer that did not prove its identity: the reason says why."""


@dataclass(frozen=True)
class Hello:
    public_key: bytes
    nonce: bytes
    fingerprint: bytes


def encode_hello(hello: Hello) -> bytes:
    return wire.encode(HELLO, VERSION, [hello.public_key, hello.nonce, hello.fingerprint])


def decode_hello(data: bytes) -> Hello:
    _check_size(data, HELLO)
    try:
        body = wire.expect_list(wire.decode(data, HELLO, VERSION), f"{HELLO}: body", length=3)
        return Hello(
            wire.expect_bytes(body[0], f"{HELLO}: public key"),
            wire.expect_bytes(body[1], f"{HELLO}: nonce", length=NONCE_BYTES),
            wire.expect_bytes(body[2], f"{HELLO}: certificate fingerprint", length=FINGERPRINT_BYTES),
        )
    except DecodeError as error:  # a peer whose hello does not decode did not prove its identity
        raise AuthError(str(error)) from None


def encode_proof(signature: bytes) -> bytes:
    return wire.encode(PROOF, VERSION, [signature])


def decode_proof(data: bytes) -> bytes:
    _check_size(data, PROOF)
    try:
        body = wire.expect_list(wire.decode(data, PROOF, VERSION), f"{PROOF}: body", length=1)
        return wire.expect_bytes(body[0], f"{PROOF}: signature")
    except DecodeError as error:
        raise AuthError(str(error)) from None


def _check_size(data: bytes, kind: str) -> None:
    if len(data) > MAX_AUTH_MESSAGE_BYTES:
        raise AuthError(f"{kind}: {len(data)} bytes exceeds MAX_AUTH_MESSAGE_BYTES ({MAX_AUTH_MESSAGE_BYTES})")


def transcript(role: str, server: Hello, client: Hello, server_fingerprint: bytes) -> bytes:
    """What ``role`` signs; ``server_fingerprint`` is the one the client pinned."""
    return wire.encode(TRANSCRIPT, VERSION, [role, server_fingerprint, client.fingerprint, client.nonce, server.nonce])


class Handshake:
    """One side of the identity proof of one connection.

    ``server_fingerprint`` is the listener's certificate fingerprint: the pinned one on the
    client, its own on the server. A client that knows whom it dialed passes
    ``expected_public_key`` and refuses anyone else.
    """

    def __init__(
        self,
        identity: Identity,
        own_fingerprint: bytes,
        is_client: bool,
        server_fingerprint: bytes,
        expected_public_key: bytes | None = None,
    ) -> None:
        self.identity, self.is_client = identity, is_client
        self.server_fingerprint, self.expected = server_fingerprint, expected_public_key
        self.own = Hello(identity.public_key, os.urandom(NONCE_BYTES), own_fingerprint)
        self.peer: Hello | None = None
        self.done = False
        self.refused: str | None = None  # the first refusal's reason

    @property
    def peer_public_key(self) -> bytes | None:
        return self.peer.public_key if self.done and self.peer else None

    def start(self) -> list[bytes]:
        """The client's opening message (the server waits for it)."""
        return [encode_hello(self.own)] if self.is_client else []

    def receive(self, message: bytes) -> list[bytes]:
        """Take the next handshake message; return what to send."""
        if self.done:
            raise AuthError("handshake already finished")
        if self.refused is not None:
            raise AuthError(f"handshake already refused: {self.refused}")
        try:
            return self._receive(message)
        except AuthError as error:
            self.refused = str(error)
            raise

    def _receive(self, message: bytes) -> list[bytes]:
        if self.peer is None:
            self.peer = decode_hello(message)
            if self.peer.nonce == self.own.nonce:
                raise AuthError(f"{HELLO}: the peer echoed our nonce")
            if self.is_client:
                self._check_expected()
                return []  # the server's proof follows its hello
            if self.peer.public_key == self.own.public_key:
                raise AuthError(f"{HELLO}: the peer claims our own identity")
            signature = self.identity.sign(self._transcript("server"))
            return [encode_hello(self.own), encode_proof(signature)]
        signature = decode_proof(message)
        role = "server" if self.is_client else "client"
        if not self.identity.verify(self.peer.public_key, self._transcript(role), signature):
            raise AuthError(f"{PROOF}: the {role}'s signature does not verify over this session's transcript")
        self.done = True
        if self.is_client:
            return [encode_proof(self.identity.sign(self._transcript("client")))]
        return []

    def _check_expected(self) -> None:
        assert self.peer is not None
        if self.expected is not None and self.peer.public_key != self.expected:
            raise AuthError(f"{HELLO}: the listener is not the node dialed (another identity key)")
        if self.peer.fingerprint != self.server_fingerprint:
            raise AuthError(f"{HELLO}: the listener names a certificate other than the one pinned")

    def _transcript(self, role: str) -> bytes:
        assert self.peer is not None
        server, client = (self.peer, self.own) if self.is_client else (self.own, self.peer)
        return transcript(role, server, client, self.server_fingerprint)
