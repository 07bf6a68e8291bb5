"""Adapter: the identity proof of ``implementations.transport.auth`` for the ``handshake`` machine.

``make_replica(replica_id, clock)`` returns a ``Sides``: ``sides.side(identity, own_fingerprint,
is_client, server_fingerprint, expected_public_key)`` is one side of one connection, a fresh
``Handshake`` (or a variant's subclass: the bug catalogue plants its bugs with
``implementation_with``). Identities are ``implementations.transport.identity.Ed25519Identity``.
"""

from __future__ import annotations

from harness import Implementation, register
from implementations.transport.auth import Handshake
from implementations.transport.identity import Ed25519Identity


class Sides:
    def __init__(self, handshake_class: type[Handshake] = Handshake) -> None:
        self.handshake_class = handshake_class

    def identity(self, seed: bytes) -> Ed25519Identity:
        return Ed25519Identity(seed)

    def side(self, identity, own_fingerprint: bytes, is_client: bool, server_fingerprint: bytes,
             expected_public_key: bytes | None) -> Handshake:
        return self.handshake_class(identity, own_fingerprint, is_client, server_fingerprint, expected_public_key)


def implementation_with(name: str, handshake_class: type[Handshake] = Handshake) -> Implementation:
    """A handshake-machine implementation around ``handshake_class`` (for tests of buggy variants)."""
    return Implementation(machine="handshake", name=name, make_replica=lambda replica_id, clock: Sides(handshake_class),
                          level="exact", description=f"{handshake_class.__name__} of implementations.transport.auth")


SANS_IO = register(
    Implementation(
        machine="handshake",
        name="sans-io",
        make_replica=lambda replica_id, clock: Sides(),
        level="exact",
        description="implementations.transport.auth.Handshake with Ed25519 identities",
    )
)
