"""Identity-proof bugs (``implementations.transport.auth``): what the transcript covers and which
of a peer's claims a side checks, caught by the in-process ``handshake`` machine."""

from __future__ import annotations

import contextlib

from implementations import wire
from implementations.transport import auth
from implementations.transport.auth import (
    HELLO,
    PROOF,
    AuthError,
    Handshake,
    decode_hello,
    decode_proof,
    encode_hello,
    encode_proof,
)
from machines.adapters.handshake_sansio import implementation_with
from tests.bugs.catalogue import Bug, patching


class TrustsTheNamedCertificate(Handshake):
    """The client takes the certificate fingerprint the listener's hello names, unchecked, and
    signs and checks the transcript over it instead of over the one it pinned: a node that
    relays a handshake (the client dialed her, she dialed the server) passes for the server."""

    def _check_expected(self):
        if self.expected is not None and self.peer.public_key != self.expected:
            raise AuthError(f"{HELLO}: the listener is not the node dialed (another identity key)")

    def _transcript(self, role):
        server, client = (self.peer, self.own) if self.is_client else (self.own, self.peer)
        return auth.transcript(role, server, client, server.fingerprint)


class IgnoresTheDialedKey(Handshake):
    """The client never compares the listener's key with the one it dialed: whoever holds the
    pinned certificate passes for the node the client meant to reach."""

    def _check_expected(self):
        if self.peer.fingerprint != self.server_fingerprint:
            raise AuthError(f"{HELLO}: the listener names a certificate other than the one pinned")


class Receive(Handshake):
    """``Handshake._receive`` (what ``receive`` does with a message once it has checked that the
    side has neither finished nor refused) written out, so a bug can leave one of its checks out
    or move one."""

    checks_echo = True
    finishes_first = False

    def _receive(self, message):
        if self.peer is None:
            self.peer = decode_hello(message)
            if self.checks_echo and self.peer.nonce == self.own.nonce:
                raise AuthError(f"{HELLO}: the peer echoed our nonce")
            if self.is_client:
                self._check_expected()
                return []
            if self.peer.public_key == self.own.public_key:
                raise AuthError(f"{HELLO}: the peer claims our own identity")
            signature = self.identity.sign(self._transcript("server"))
            return [encode_hello(self.own), encode_proof(signature)]
        signature = decode_proof(message)
        role = "server" if self.is_client else "client"
        if self.finishes_first:
            self.done = True  # BUG: finished before the signature is checked
        if not self.identity.verify(self.peer.public_key, self._transcript(role), signature):
            raise AuthError(f"{PROOF}: the {role}'s signature does not verify over this session's transcript")
        self.done = True
        if self.is_client:
            return [encode_proof(self.identity.sign(self._transcript("client")))]
        return []


class TakesAnEchoedNonce(Receive):
    """A hello carrying the receiver's own nonce is taken: the transcript then holds one nonce
    twice, and the session's freshness rests on the peer alone."""

    checks_echo = False


class FinishesBeforeTheProofVerifies(Receive):
    """``done`` is set before the peer's signature is checked: a side that refuses a bad proof
    still reports the key the peer claimed as its peer's."""

    finishes_first = True


def transcript_without_role(role, server, client, server_fingerprint):
    """The transcript leaves the role out: the server's and the client's proofs sign the same
    bytes, and neither signs the transcript the protocol states."""
    return wire.encode(auth.TRANSCRIPT, auth.VERSION, [server_fingerprint, client.fingerprint, client.nonce,
                                                       server.nonce])


def _variant(name, cls, description, kind, involves=()):
    def plant():
        return contextlib.nullcontext(implementation_with(f"bug-{name}", cls))

    return Bug(f"handshake-{name}", "handshake", description, kind, plant, correct="sans-io",
               involves=frozenset(involves))


def _patched(name, attribute, value, description, kind, involves=()):
    return Bug(f"handshake-{name}", "handshake", description, kind,
               patching(auth, attribute, value, implementation_with(f"bug-{name}")), correct="sans-io",
               involves=frozenset(involves))


BUGS = [
    _variant("trusts-the-named-certificate", TrustsTheNamedCertificate,
             "the client signs and checks the fingerprint the listener names, not the one it pinned: a relay passes",
             "believes-a-lie", involves=("hello|replay",)),
    _variant("ignores-the-dialed-key", IgnoresTheDialedKey,
             "the client never compares the listener's key with the one it dialed", "believes-a-lie",
             involves=("hello|replay",)),
    _variant("takes-an-echoed-nonce", TakesAnEchoedNonce,
             "a hello that echoes the receiver's own nonce is taken", "believes-a-lie", involves=("hello",)),
    _variant("finishes-before-the-proof-verifies", FinishesBeforeTheProofVerifies,
             "done is set before the peer's signature is checked: a refused side still names a peer",
             "signature-coverage", involves=("proof|replay",)),
    _patched("role-left-out-of-the-transcript", "transcript", transcript_without_role,
             "the transcript leaves the signer's role out: both ends sign the same bytes", "signature-coverage"),
]
