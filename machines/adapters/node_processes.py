"""Adapter: mesh node processes (``implementations.transport.mesh_node``) for the ``realnet`` machine.

A realnet "replica" is a backend that gives a run its cluster: ``cluster(directory, nodes,
proxy_seed, skews_ms)`` returns node processes joined into one mesh and one signing group behind a
fault proxy (``implementations.transport.cluster``), and ``release(cluster)`` gives it back.
Starting processes is the dearest part of a run (a Python interpreter importing aioquic per
node), so inside ``pooled(directory)`` every run reuses one pool of processes: each run
resets them (fresh files, a new task list and group id, faults cleared) instead of starting
new ones; outside it (replaying a trace) a run starts and stops its own. Another backend (a
node program with a planted bug) would start other processes behind the same machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness import Implementation, register
from implementations.transport.cluster import Cluster

#: Processes in the pool: the most nodes a realnet run asks for.
POOL_NODES = 5


class ProcessBackend:
    pool: Cluster | None = None

    def cluster(self, directory: str | Path, nodes: int, proxy_seed: int, skews_ms: list[int]) -> Cluster:
        if ProcessBackend.pool is not None:
            ProcessBackend.pool.reset(nodes, skews_ms)
            return ProcessBackend.pool
        return Cluster(directory, nodes, proxy_seed=proxy_seed, skews_ms=skews_ms).__enter__()

    def release(self, cluster: Cluster) -> None:
        if cluster is not ProcessBackend.pool:
            cluster.close()

    @staticmethod
    @contextmanager
    def pooled(directory: str | Path, proxy_seed: int = 0) -> Iterator[None]:
        """Runs inside share one pool of processes, stopped and reaped on leaving."""
        if ProcessBackend.pool is not None:
            raise RuntimeError("a pool of node processes is open already")
        with Cluster(directory, POOL_NODES, proxy_seed=proxy_seed) as pool:
            ProcessBackend.pool = pool
            try:
                yield
            finally:
                ProcessBackend.pool = None


register(Implementation(
    machine="realnet",
    name="processes",
    make_replica=lambda replica_id, clock: ProcessBackend(),
    level="exact",
    description="implementations.transport.mesh_node: one OS process per node, QUIC on loopback, a UDP fault proxy",
))
