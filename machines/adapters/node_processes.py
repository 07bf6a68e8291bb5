"""Adapter: mesh node processes (``implementations.transport.mesh_node``) for the ``realnet`` machine.

A realnet "replica" is a backend that gives a run its cluster: ``cluster(directory, nodes,
proxy_seed, skews_ms)`` returns node processes joined into one mesh and one signing group behind a
fault proxy (``implementations.transport.cluster``), and ``release(cluster)`` gives it back.
Starting processes is the dearest part of a run (a Python interpreter importing aioquic per
node), so inside ``pooled(directory)`` every run reuses one pool of processes: each run
resets them (fresh files, a new task list and group id, faults cleared) instead of starting
new ones; outside it a run starts and stops its own. A pytest session is inside one
(``conftest.py``), so the machine and the replays of its committed traces share a pool. Another backend (a
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
    #: Inside ``pooled``: where the pool is started, at the first run that asks for a cluster.
    pool_directory: Path | None = None

    def cluster(self, directory: str | Path, nodes: int, proxy_seed: int, skews_ms: list[int]) -> Cluster:
        if ProcessBackend.pool is None and ProcessBackend.pool_directory is not None:
            ProcessBackend.pool = Cluster(ProcessBackend.pool_directory, POOL_NODES, proxy_seed=0).__enter__()
        if ProcessBackend.pool is not None:
            ProcessBackend.pool.reset(nodes, skews_ms)
            return ProcessBackend.pool
        return Cluster(directory, nodes, proxy_seed=proxy_seed, skews_ms=skews_ms).__enter__()

    def release(self, cluster: Cluster) -> None:
        if cluster is not ProcessBackend.pool:
            cluster.close()

    @staticmethod
    @contextmanager
    def pooled(directory: str | Path) -> Iterator[None]:
        """Runs inside share one pool of processes, started when first needed, stopped and reaped on leaving.
        Inside another ``pooled`` (the pytest session's: ``conftest.py``), the outer pool serves."""
        if ProcessBackend.pool_directory is not None:
            yield
            return
        ProcessBackend.pool_directory = Path(directory)
        try:
            yield
        finally:
            pool, ProcessBackend.pool, ProcessBackend.pool_directory = ProcessBackend.pool, None, None
            if pool is not None:
                pool.close()


register(Implementation(
    machine="realnet",
    name="processes",
    make_replica=lambda replica_id, clock: ProcessBackend(),
    level="exact",
    description="implementations.transport.mesh_node: one OS process per node, QUIC on loopback, a UDP fault proxy",
))
