"""Node-host bugs (``implementations.transport.node_host`` and what it loads from a data directory): a
node that does not come back as itself after a restart; caught by the in-process ``node_host``
machine."""

from __future__ import annotations

import dataclasses
import itertools

from implementations.transport import tls, toy
from implementations.transport.identity import Ed25519Identity
from machines.adapters.node_host_loop import Hosts
from tests.bugs.catalogue import Bug, patched, variant

_seeds = itertools.count(1)


def _identity_never_kept(directory):
    """An identity made at every start and stored nowhere (BUG): each start is another node."""
    return Ed25519Identity(next(_seeds).to_bytes(32, "big"))


def _program_forgetting_its_identity():
    return dataclasses.replace(toy._counter_program(), load_identity=_identity_never_kept)


def _certificate_never_kept(directory):
    """A certificate made at every start and stored nowhere (BUG): every pin a peer holds breaks."""
    return tls.make_certificate()


BUGS = [
    Bug(name="node-host-identity-not-kept", machine="node_host",
        description="a node program's identity is made at every start and kept nowhere: restarted, the node has "
                    "another key, and its peers' directories name a node that is gone",
        kind="persistence", correct="toy-counter",
        plant=variant("node_host", "node-host-identity-not-kept", lambda replica_id, clock: Hosts(
            _program_forgetting_its_identity)),
        involves=frozenset({"restart"})),
    Bug(name="node-host-certificate-not-kept", machine="node_host",
        description="the node's TLS certificate is made at every start and kept nowhere: restarted, every pin its "
                    "peers hold fails",
        kind="persistence", correct="toy-counter",
        plant=patched(tls, "load_or_create", _certificate_never_kept, "node_host", "node-host-certificate-not-kept",
                      lambda replica_id, clock: Hosts()),
        involves=frozenset({"restart"})),
]
