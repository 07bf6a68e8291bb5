"""The sans-I/O node: identity, signed messages, gossip, anti-entropy, presence, FOAF,
rendezvous, and the threshold envelopes it carries. See ``core`` for the node itself."""

from implementations.node.core import App, Node, NodeConfig, Outbox, Published, Verdict
from implementations.node.identity import ED25519, ML_DSA_65, Ed25519Identity, MemoVerifier, MLDSA65Identity, Verifier, identity

__all__ = [
    "ED25519",
    "ML_DSA_65",
    "App",
    "Ed25519Identity",
    "MLDSA65Identity",
    "MemoVerifier",
    "Node",
    "NodeConfig",
    "Outbox",
    "Published",
    "Verdict",
    "Verifier",
    "identity",
]
