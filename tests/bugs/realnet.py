"""Bugs of the node processes (``implementations.transport``), caught by the ``realnet`` machine
over real QUIC on loopback.

A node is an OS process, so its bug is planted in that process: each bug's implementation is a
``ProcessBackend`` whose nodes run ``tests.bugs.realnet_node BUG`` (the patch, then
``mesh_node``), with a pool of processes of its own. A bug only the in-process backend's checks see
(liveness: a calm signing session must end in time, which only a clock that moves when the machine
lets it promises) is planted in this process, its nodes run by ``mesh_in_process``'s loop. What they share with a stranger on the
network is what the machine's ``impostor`` step sends: a proof, a frame header, a stream. Others
miscount what a node's Prometheus page serves, which the machine reads after ``quiesce``.
"""

from __future__ import annotations

import contextlib

from harness import Implementation
from machines.adapters.mesh_in_process import LoopBackend
from machines.adapters.node_processes import ProcessBackend
from tests.bugs.catalogue import Bug
from tests.bugs.realnet_node import PLANTS

PROGRAM = "tests.bugs.realnet_node"


def _bug(name: str, description: str, kind: str, involves: set[str]) -> Bug:
    assert name in PLANTS, name

    @contextlib.contextmanager
    def plant():
        yield Implementation("realnet", f"bug-{name}", lambda replica_id, clock: ProcessBackend((PROGRAM, [name])),
                             description=f"mesh node processes with {name} planted")

    return Bug(f"realnet-{name}", "realnet", description, kind, plant, correct="processes", involves=frozenset(involves))


def _in_process(name: str, description: str, kind: str, involves: set[str]) -> Bug:
    assert name in PLANTS, name

    @contextlib.contextmanager
    def plant():
        with PLANTS[name]():
            yield Implementation("realnet", f"bug-{name}", lambda replica_id, clock: LoopBackend(),
                                 description=f"the in-process mesh with {name} planted")

    return Bug(f"realnet-{name}", "realnet", description, kind, plant, correct="in-process", involves=frozenset(involves))


BUGS = [
    _bug("any-signature-verifies", "a node takes any identity proof: its signature check never fails, so a stranger "
         "holding only a member's public key is taken for that member", "signature-coverage", {"impostor"}),
    _bug("frame-length-trusted", "a node believes a frame header's length: a stranger that announces a 4 GiB frame "
         "holds the connection open while the node waits to buffer it", "believes-a-lie", {"impostor"}),
    _bug("streams-merged", "a node reads every stream of a connection as its one message stream: a stranger's second "
         "stream is spliced into the frames instead of closing the connection", "believes-a-lie", {"impostor"}),
    _bug("restart-recounts-sessions", "a coordinator restarted on its files takes the sessions it had ended before the "
         "crash for live ones (its recovery query lost its state filter): mbt_sessions_total counts them again",
         "version-counter", {"kill", "quiesce"}),
    _bug("restart-recounts-signatures", "a node restarted on its files counts in mbt_partial_signatures_total every "
         "member signature its coordinator's file holds: the ones its killed process counted, counted again",
         "version-counter", {"kill", "quiesce"}),
    _in_process("restart-forgets-signing", "a node started again on its files is wired to the mesh's task list but "
                "not to its signing (the join operation wires the signer and coordinator): it drops every proposal and "
                "answer, and a session it coordinates expires though every member is up and every link clear",
                "persistence", {"kill|stop", "new_event|resubmit", "quiesce"}),
]
