"""Adapter: the sans-I/O ``implementations.node.Node`` for the mesh machines.

A mesh "replica" is a backend that builds a run's nodes: ``identity(index)`` (a fixed seed
per node, so runs replay), ``node(...)`` (a new ``Node`` on a store: building one again on
the same store is a restart) and ``tasklist(index, clock)`` (the task-list application a
node carries). A variant (a deliberately buggy node in a test, ML-DSA-65 keys) is another
backend. With ``memo``, the run's nodes share one ``MemoVerifier`` (what a simulation of many
nodes in one process uses: a signature is checked once for all of them); the ML-DSA-65 variant
does, the Ed25519 one keeps each node's own ``Verifier``.
"""

from __future__ import annotations

from typing import Any

import blake3

from harness import Implementation, register
from implementations.node import ED25519, ML_DSA_65, Node, identity
from implementations.node.identity import Identity, MemoVerifier
from machines.adapters.tasklist_x0x import X0xTaskListReplica
from models.clock import Clock


def node_seed(index: int) -> bytes:
    return blake3.blake3(b"mesh node" + index.to_bytes(4, "big")).digest()


class TaskListApp:
    """A task-list replica as a node's application: an operation's data is a delta."""

    def __init__(self, replica: X0xTaskListReplica) -> None:
        self.replica = replica

    def apply(self, data: bytes) -> None:
        self.replica.apply_delta(data)


class MeshBackend:
    def __init__(self, node_class: type = Node, scheme: int = ED25519, memo: bool = False) -> None:
        self.node_class = node_class
        self.scheme = scheme
        self.verifier = MemoVerifier() if memo else None

    def identity(self, index: int) -> Identity:
        return identity(self.scheme, node_seed(index))

    def node(self, ident: Identity, members: list[bytes], store: Any, now: int, **options: Any) -> Node:
        if self.verifier is not None:
            options.setdefault("verifier", self.verifier)
        return self.node_class(ident, members, store, now, **options)

    def tasklist(self, index: int, clock: Clock) -> X0xTaskListReplica:
        return X0xTaskListReplica(index, clock)


def backend(scheme: int = ED25519, node_class: type = Node, memo: bool = False):
    def make(replica_id: int, clock: Clock) -> MeshBackend:
        return MeshBackend(node_class, scheme, memo)

    return make


DESCRIPTION = "implementations.node: sans-I/O gossip, anti-entropy, presence, FOAF, rendezvous"
for machine in ("mesh_tasklist", "mesh_presence", "mesh_threshold", "mesh_adversary"):
    register(Implementation(machine=machine, name="node", make_replica=backend(ED25519), level="exact",
                            description=f"{DESCRIPTION}; Ed25519 identities"))
for machine in ("mesh_adversary",):
    register(Implementation(machine=machine, name="node-mldsa65", make_replica=backend(ML_DSA_65, memo=True), level="exact",
                            description=f"{DESCRIPTION}; ML-DSA-65 identities, one MemoVerifier shared by a run's nodes"))
