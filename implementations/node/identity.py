"""A node's identity: a signing key of one of two schemes behind one interface.

* ``ED25519`` (scheme 1, the default): PyNaCl, 32-byte public keys, 64-byte signatures,
  deterministic signatures.
* ``ML_DSA_65`` (scheme 2, FIPS 204, what upstream signs with): ``cryptography``'s
  ``MLDSA65PrivateKey`` built from a 32-byte seed, 1,952-byte public keys, 3,309-byte
  signatures. OpenSSL signs ML-DSA *hedged* (with fresh randomness), so two signatures of
  one message differ; nothing a node decides depends on signature bytes, so runs still
  replay exactly.

``PeerId = BLAKE3(public key)``, whatever the scheme: a message names its signer's PeerId
and carries the public key, and a receiver checks that one is the hash of the other before
it checks the signature (``implementations.node.message``).

``verify`` is the one place signatures are checked. ``Verifier`` wraps it so a simulation
of many nodes in one process may share results (``MemoVerifier``): verification is a pure
function of (scheme, key, message, signature), and so of the bytes of a whole signed node
message (``recall``/``note``), so remembering it changes no decision.
"""

from __future__ import annotations

from typing import Protocol

import blake3
import nacl.exceptions
import nacl.signing
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import mldsa

ED25519, ML_DSA_65 = 1, 2
SCHEMES = {ED25519: "ed25519", ML_DSA_65: "ml-dsa-65"}
PUBLIC_KEY_BYTES = {ED25519: 32, ML_DSA_65: 1952}
SIGNATURE_BYTES = {ED25519: 64, ML_DSA_65: 3309}
SEED_BYTES = 32


def peer_id(public_key: bytes) -> bytes:
    """``BLAKE3(public key)``: the 32-byte id every message is checked against."""
    return blake3.blake3(public_key).digest()


class Identity(Protocol):
    """What a node signs with."""

    scheme: int
    public_key: bytes
    peer_id: bytes

    def sign(self, message: bytes) -> bytes: ...


class Ed25519Identity:
    scheme = ED25519

    def __init__(self, seed: bytes) -> None:
        if len(seed) != SEED_BYTES:
            raise ValueError(f"an Ed25519 seed is {SEED_BYTES} bytes, got {len(seed)}")
        self._key = nacl.signing.SigningKey(seed)
        self.public_key = bytes(self._key.verify_key)
        self.peer_id = peer_id(self.public_key)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message).signature


class MLDSA65Identity:
    scheme = ML_DSA_65

    def __init__(self, seed: bytes) -> None:
        if len(seed) != SEED_BYTES:
            raise ValueError(f"an ML-DSA-65 seed is {SEED_BYTES} bytes, got {len(seed)}")
        self._key = mldsa.MLDSA65PrivateKey.from_seed_bytes(seed)
        self.public_key = self._key.public_key().public_bytes_raw()
        self.peer_id = peer_id(self.public_key)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)


IDENTITIES: dict[int, type] = {ED25519: Ed25519Identity, ML_DSA_65: MLDSA65Identity}


def identity(scheme: int, seed: bytes) -> Identity:
    """The identity of ``scheme`` made from ``seed``."""
    try:
        return IDENTITIES[scheme](seed)
    except KeyError:
        raise ValueError(f"unknown signature scheme {scheme} (known: {SCHEMES})") from None


def verify(scheme: int, public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is ``public_key``'s signature of ``message`` under ``scheme``."""
    if len(public_key) != PUBLIC_KEY_BYTES.get(scheme, -1) or len(signature) != SIGNATURE_BYTES[scheme]:
        return False
    try:
        if scheme == ED25519:
            nacl.signing.VerifyKey(public_key).verify(message, signature)
        else:
            mldsa.MLDSA65PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (nacl.exceptions.CryptoError, InvalidSignature, ValueError, TypeError):
        return False
    return True


class Verifier:
    """Checks signatures; counts how many it checked (a metric)."""

    def __init__(self) -> None:
        self.checked = 0

    def __call__(self, scheme: int, public_key: bytes, message: bytes, signature: bytes) -> bool:
        self.checked += 1
        return verify(scheme, public_key, message, signature)

    def recall(self, signed_message: bytes) -> bool | None:
        """The answer for the whole signed message ``signed_message`` (its bytes fix what is signed and the
        signature), if this verifier remembers it; a plain verifier remembers nothing."""
        return None

    def note(self, signed_message: bytes, answer: bool) -> None:
        """The answer for ``signed_message``, for ``recall``."""


class MemoVerifier(Verifier):
    """A verifier that remembers its answers, for many simulated nodes in one process.

    The answer is a pure function of its arguments (or of a whole signed message's bytes,
    ``recall``), so sharing it between nodes changes no decision; ``checked`` still counts
    every request and every recalled answer (what real nodes would each pay).
    """

    def __init__(self) -> None:
        super().__init__()
        self.answers: dict[tuple[int, bytes, bytes, bytes], bool] = {}
        self.by_message: dict[bytes, bool] = {}

    def recall(self, signed_message: bytes) -> bool | None:
        answer = self.by_message.get(signed_message)
        if answer is not None:
            self.checked += 1  # a real node would verify it
        return answer

    def note(self, signed_message: bytes, answer: bool) -> None:
        self.by_message[signed_message] = answer

    def __call__(self, scheme: int, public_key: bytes, message: bytes, signature: bytes) -> bool:
        self.checked += 1
        key = (scheme, public_key, message, signature)
        answer = self.answers.get(key)
        if answer is None:
            answer = self.answers[key] = verify(scheme, public_key, message, signature)
        return answer
