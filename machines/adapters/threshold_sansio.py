"""Adapter: the sans-I/O ``Signer`` and ``Coordinator`` of ``implementations.threshold``
for the ``threshold`` machine.

A threshold "replica" is a backend that builds the group's cores: ``signer(...)`` and
``coordinator(...)``, each a new object on a SQLite file (building one again on the same
file is a restart). A variant (e.g. a deliberately buggy signer in a test) is another
backend with other classes.
"""

from __future__ import annotations

from typing import Any

from harness import Implementation, register
from implementations.policy import Policy
from implementations.threshold import Coordinator, GroupConfig, Node, Signer
from models.clock import Clock


class SansIoBackend:
    """Builds the cores of one group; ``signer_class``/``coordinator_class`` may be variants."""

    def __init__(self, signer_class: type = Signer, coordinator_class: type = Coordinator) -> None:
        self.signer_class = signer_class
        self.coordinator_class = coordinator_class

    def signer(self, seed: bytes, group: GroupConfig, node: Node, store: str, policy: Policy) -> Any:
        return self.signer_class(seed, group, node, store, policy)

    def coordinator(self, seed: bytes, group: GroupConfig, node: Node, store: str) -> Any:
        return self.coordinator_class(seed, group, node, store)


def make_replica(replica_id: int, clock: Clock) -> SansIoBackend:
    return SansIoBackend()


SANS_IO = register(
    Implementation(
        machine="threshold",
        name="sans-io",
        make_replica=make_replica,
        level="exact",
        description="implementations.threshold: sans-I/O signer and coordinator on SQLite, Ed25519 envelopes",
    )
)
