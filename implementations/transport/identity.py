"""The node identity the transport needs: sign, a public key, verify. Nothing more.

The node core's identity (Ed25519 by default, ML-DSA-65 too) plugs in by having these three
members; ``Ed25519Identity`` here is the one the transport's own programs and tests use, its
32-byte seed kept in a file beside the node's data.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import nacl.exceptions
import nacl.signing


class Identity(Protocol):
    """A node's signing key and the scheme that checks its peers' signatures."""

    @property
    def public_key(self) -> bytes: ...

    def sign(self, message: bytes) -> bytes: ...

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool: ...


class Ed25519Identity:
    """An Ed25519 identity (PyNaCl)."""

    SEED_FILE = "identity.seed"

    def __init__(self, seed: bytes) -> None:
        self._key = nacl.signing.SigningKey(seed)

    @classmethod
    def load_or_create(cls, directory: str | os.PathLike) -> Ed25519Identity:
        """The identity whose seed is stored in ``directory``, made and stored first if there is none."""
        path = Path(directory) / cls.SEED_FILE
        if not path.exists():
            Path(directory).mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as file:
                file.write(os.urandom(32))
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, path)
        seed = path.read_bytes()
        if len(seed) != 32:
            raise ValueError(f"{path}: an Ed25519 seed is 32 bytes, found {len(seed)}")
        return cls(seed)

    @property
    def public_key(self) -> bytes:
        return bytes(self._key.verify_key)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message).signature

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        try:
            nacl.signing.VerifyKey(public_key).verify(message, signature)
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, nacl.exceptions.TypeError):
            return False
        return True
