"""Adapter: mesh node processes (``implementations.transport.mesh_node``) for the ``realnet`` machine.

A realnet "replica" is a backend that gives a run its cluster: ``cluster(directory, nodes,
proxy_seed, skews_ms)`` returns node processes joined into one mesh and one signing group behind a
fault proxy (``implementations.transport.cluster``), and ``release(cluster)`` gives it back.
Starting processes is the dearest part of a run (a Python interpreter importing aioquic per
node), so inside ``pooled(directory)`` every run reuses one pool of processes: each run
resets them (fresh files, a new task list and group id, faults cleared) instead of starting
new ones; outside it a run starts and stops its own. A pytest session is inside one
(``conftest.py``), so the machine and the replays of its committed traces share a pool. A
backend of another node program (``ProcessBackend(program)``: the bug catalogue's nodes with a
bug planted, ``tests/bugs/realnet.py``) gets a pool of its own behind the same machine, one
such pool at a time: starting one closes the last bug's. A pool given back is quieted (its
nodes leave their mesh): an idle pool sends nothing, where a mesh left joined went on gossiping
for the rest of the session (more than a quarter of the test suite's CPU went to idle pools).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

import trio

from harness import Implementation, register
from implementations.transport.cluster import NODE_MODULE, Cluster
from implementations.transport.process import ProcessError

#: Processes in the pool: the most nodes a realnet run asks for.
POOL_NODES = 5
#: The node program of ``realnet`` itself; every other is a bug's (``tests/bugs/realnet.py``).
DEFAULT_PROGRAM = (NODE_MODULE, ())


class ProcessBackend:
    """Clusters of ``program``'s node processes (``mesh_node`` by default; the bug catalogue's
    nodes run a node with a bug planted): inside ``pooled``, one pool of processes per program."""

    #: The pool of each node program, inside ``pooled``.
    pools: ClassVar[dict[tuple[str, tuple[str, ...]], Cluster]] = {}
    #: Inside ``pooled``: where the pools are started, at the first run that asks for a cluster.
    pool_directory: ClassVar[Path | None] = None
    #: The pools a run holds now (handed out by ``cluster``, not given back by ``release`` yet).
    lent: ClassVar[list[Cluster]] = []
    #: Pools started inside ``pooled`` so far (each one's directory is numbered by it).
    started: ClassVar[int] = 0
    #: Not promised: on the real clock a loaded machine may stall a node process past a signing session's second.
    timely = False

    def __init__(self, program: tuple[str, list[str]] = (NODE_MODULE, [])) -> None:
        self.program = (program[0], tuple(program[1]))

    def cluster(self, directory: str | Path, nodes: int, proxy_seed: int, skews_ms: list[int]) -> Cluster:
        module, first = self.program
        pools, where = ProcessBackend.pools, ProcessBackend.pool_directory
        if self.program not in pools and where is not None:
            if self.program != DEFAULT_PROGRAM:  # one bug's pool at a time: the one before is done with
                for program in [p for p in pools if p != DEFAULT_PROGRAM and pools[p] not in ProcessBackend.lent]:
                    pools.pop(program).close()
            ProcessBackend.started += 1
            home = where / f"pool-{ProcessBackend.started}"  # each pool in a directory of its own
            pools[self.program] = Cluster(home, POOL_NODES, proxy_seed=0, node_program=(module, list(first))).__enter__()
        pool = pools.get(self.program)
        if pool is not None:
            pool.reset(nodes, skews_ms)
            ProcessBackend.lent.append(pool)
            return pool
        return Cluster(directory, nodes, proxy_seed=proxy_seed, skews_ms=skews_ms,
                       node_program=(module, list(first))).__enter__()

    @staticmethod
    def run(function, *args):
        """``function(*args)`` awaited where the nodes live: in a trio loop of its own, on the real clock."""
        return trio.run(function, *args)

    def release(self, cluster: Cluster) -> None:
        if cluster in ProcessBackend.lent:
            ProcessBackend.lent.remove(cluster)
            cluster.quiet()  # silent until the next run resets it
        else:
            cluster.close()

    @staticmethod
    @contextmanager
    def pooled(directory: str | Path) -> Iterator[None]:
        """Runs inside share pools of processes (one per node program), each started when first
        needed, all stopped and reaped on leaving. Inside another ``pooled`` (the pytest session's:
        ``conftest.py``), the outer pools serve."""
        if ProcessBackend.pool_directory is not None:
            yield
            return
        ProcessBackend.pool_directory = Path(directory)
        try:
            yield
        finally:
            pools, ProcessBackend.pools, ProcessBackend.pool_directory = list(ProcessBackend.pools.values()), {}, None
            ProcessBackend.lent, ProcessBackend.started = [], 0
            errors = []
            for pool in pools:  # every pool closed, then the first one's complaint (a process that did not end cleanly)
                try:
                    pool.close()
                except ProcessError as error:
                    errors.append(error)
            if errors:
                raise errors[0]


register(Implementation(
    machine="realnet",
    name="processes",
    make_replica=lambda replica_id, clock: ProcessBackend(),
    level="exact",
    description="implementations.transport.mesh_node: one OS process per node, QUIC on loopback, a UDP fault proxy",
))
