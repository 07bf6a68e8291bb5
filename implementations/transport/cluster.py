"""A local cluster of mesh node processes on loopback, and ``mbt cluster``.

``Cluster(directory, nodes)`` starts ``nodes`` mesh nodes (``mesh_node``), each one OS
process with its own data directory under ``directory``, and, with ``proxy_seed``, a fault
proxy process (``proxy``) that every node reaches every other through (one link per
direction). Then it makes the signing group's ledger file (``ledger_file``: the group is
every node, ``m`` a majority, funded with ``FUNDS``) and has every node ``join``: the
members, where each of them listens (through the proxy), the task list and the group. On
leaving, every process is asked to stop and then reaped (SIGKILL after a bound), whatever
happened. ``kill(i)`` is a crash (SIGKILL), ``restart(i)`` starts node ``i`` again on its
directory and QUIC port, so the proxy's links and the peers' directories stay right.
``skews_ms`` gives each node's clock its own offset. ``reset(size)`` reuses the processes for
a new mesh of the first ``size`` of them (every node forgets all but its identity; a new
task list, group id and ledger file), which costs milliseconds where starting costs seconds;
``quiet()`` leaves them waiting for that, silent.
``node_program`` runs another node program in place of ``mesh_node`` (the bug catalogue's
nodes with a bug planted: ``tests/bugs/realnet.py``).

``mbt cluster --nodes N --duration S`` runs a workload on such a cluster (no proxy): agents
on every node add, claim and complete tasks, and every few operations a node coordinates a
signing session; a progress line while it runs; then a table per node (operations, tasks
held, sessions by outcome, gossip messages, refused replays, peers online, RSS, from each
node's metrics) and the totals; then it stops everything and checks that no process or
bound port is left.
"""

from __future__ import annotations

import argparse
import random
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import blake3

from implementations.ledger_file import SharedLedger
from implementations.transport.process import ChildProcess, ProcessGroup, leftovers, snapshot

NODE_MODULE, PROXY_MODULE = "implementations.transport.mesh_node", "implementations.transport.proxy"
LIST_ID = blake3.blake3(b"mbt cluster task list").hexdigest()
FUNDS = (400, 250, 600, 150, 800, 300)
SIGNING_DEFAULTS = {"fee": 10, "fee_mode": "signers", "session_timeout_ms": 1_000, "daily_limit": 1_000}
ANTI_ENTROPY_MS = 500
POLL_SECONDS = 0.02


def skews_for(size: int, skews_ms: list[int] | None) -> list[int]:
    """One clock skew per node, ms (none given: every clock agrees); ``ValueError`` naming the counts otherwise."""
    skews = list(skews_ms or [0] * size)
    if len(skews) != size:
        raise ValueError(f"{len(skews)} clock skews for {size} nodes")
    return skews


def majority(n: int) -> int:
    return n // 2 + 1


class Cluster:
    """Mesh node processes (and a fault proxy) that are all stopped and reaped on leaving the ``with`` block."""

    def __init__(self, directory: str | Path, nodes: int, *, proxy_seed: int | None = None, signing: bool = True,
                 funds: tuple[int, ...] = FUNDS, anti_entropy_ms: int = ANTI_ENTROPY_MS, skews_ms: list[int] | None = None,
                 node_settings: dict | None = None, node_program: tuple[str, list[str]] = (NODE_MODULE, []),
                 **group: Any) -> None:
        if not 1 <= nodes <= 64:
            raise ValueError(f"a cluster has 1 to 64 nodes, not {nodes}")
        skews_for(nodes, skews_ms)  # refused before any process starts
        self.directory = Path(directory)
        self.size, self.proxy_seed, self.signing, self.funds = nodes, proxy_seed, signing, funds
        self.anti_entropy_ms = anti_entropy_ms
        self.group_settings = {**SIGNING_DEFAULTS, **group}
        # Nodes and the proxy are forked by one zygote that has imported them (``zygote.py``: 0.29 of a
        # node start's 0.36 CPU s is importing)
        self.processes = ProcessGroup(self.directory, preload=[NODE_MODULE, PROXY_MODULE])
        self.proxy: ChildProcess | None = None
        self.pool: list[ChildProcess] = []  # every node process; the mesh is the first ``size`` of them
        self.incarnation = 0
        self.ledger: SharedLedger | None = None
        self.routes: dict[tuple[int, int], int] = {}
        self.joined: list[dict] = []  # the settings each node of the mesh was given by its last join
        self.held: dict[int, socket.socket] = {}  # pool index -> a socket holding the QUIC port of a node that is down
        self.skews_ms = skews_ms
        self.node_settings = dict(node_settings or {})  # more join settings, e.g. record_arrivals
        #: What each node runs: a module run with ``python -m`` and its first arguments (``--data DIR`` follows).
        self.node_program = (node_program[0], list(node_program[1]))

    @property
    def nodes(self) -> list[ChildProcess]:
        return self.pool[: self.size]

    @property
    def names(self) -> list[str]:
        return [f"n{i}" for i in range(self.size)]

    @property
    def keys(self) -> list[str]:
        return [node.ready["address"]["public_key"] for node in self.nodes]

    # ----- life ----------------------------------------------------------------------------

    def __enter__(self) -> Cluster:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        module, first = self.node_program
        programs = {f"n{i}": (module, [*first, "--data", str(self.directory / f"n{i}")]) for i in range(self.size)}
        if self.proxy_seed is not None:
            programs["proxy"] = (PROXY_MODULE, ["--seed", str(self.proxy_seed)])
        started = self.processes.start_many(programs)
        self.proxy = started.get("proxy")
        self.pool = [started[f"n{i}"] for i in range(self.size)]
        self.join(self.skews_ms)

    def join(self, skews_ms: list[int] | None = None) -> None:
        """Make the first ``size`` nodes one mesh (and one signing group, with a new ledger file); node ``i``'s
        clock runs ``skews_ms[i]`` ahead of the others (none by default)."""
        skews_ms = skews_for(self.size, skews_ms)
        tag = blake3.blake3(LIST_ID.encode() + self.incarnation.to_bytes(4, "big")).hexdigest()
        addresses = [node.ready["address"] for node in self.nodes]
        keys = self.keys
        settings: dict[str, Any] = {"members": keys, "list_id": tag, "anti_entropy_ms": self.anti_entropy_ms,
                                    **self.node_settings}
        if self.signing:
            path = self.directory / f"ledger-{self.incarnation}.db"
            if self.ledger is not None:
                self.ledger.close()
            self.ledger = SharedLedger.create(path, majority(self.size), [bytes.fromhex(k) for k in keys], list(self.funds))
            settings["group"] = {**self.group_settings, "m": majority(self.size), "ledger": str(path), "group_id": tag}
        self.joined = []
        for i, node in enumerate(self.nodes):
            directory = {}
            for j, address in enumerate(addresses):
                if i != j:
                    directory[keys[j]] = {**address, "port": self._route(i, j, addresses)}
            self.joined.append({**settings, "directory": directory, "clock_skew_ms": skews_ms[i]})
            node.call("op", name="join", args=self.joined[i])

    def reset(self, size: int, skews_ms: list[int] | None = None) -> None:
        """A new mesh of the first ``size`` processes, reusing them: every node forgets everything but its
        identity, faults are cleared, and a new task list, group id and ledger file make what is still in
        flight from the last mesh refused rather than taken."""
        if not 1 <= size <= len(self.pool):
            raise ValueError(f"a mesh of {size} nodes from a pool of {len(self.pool)}")
        skews_for(size, skews_ms)  # refused before any node forgets its mesh
        for i, node in enumerate(self.pool):
            if not node.alive:
                self._release_port(i)
                node.restart()
        self.quiet()
        self.incarnation += 1
        self.size = size
        self.join(skews_ms)

    def quiet(self) -> None:
        """Every live node forgets its mesh and waits for a ``join`` (``reset`` does this, then joins
        the new mesh); the proxy's faults are cleared. A pool kept between runs then sends nothing: a mesh
        left joined gossips its digests on (about 1% of a core a node, for as long as the pool lives)."""
        if self.proxy is not None:
            self.proxy.call("clear")
        for node in self.pool:
            if node.alive:
                node.call("op", name="reset")

    def _route(self, i: int, j: int, addresses: list[dict]) -> int:
        """The port node ``i`` dials to reach node ``j``: ``j``'s own, or a proxy link's."""
        if self.proxy is None:
            return addresses[j]["port"]
        if (i, j) not in self.routes:  # links stay: a restarted node listens on its port again
            here, there = ["127.0.0.1", addresses[i]["port"]], ["127.0.0.1", addresses[j]["port"]]
            self.routes[(i, j)] = self.proxy.call("link", a=f"n{i}", a_address=here, b=f"n{j}", b_address=there)
        return self.routes[(i, j)]

    def _hold_port(self, i: int) -> None:
        """Keep the QUIC port of node ``i``, which is down, from any other socket until it restarts: it comes back on
        that port (the peers' directories and the proxy's links name it), and an ephemeral port another process
        binds meanwhile would make its restart fail. A port already taken again is left (its restart will say so)."""
        port = self.pool[i].ready.get("quic")
        if port is None or i in self.held:
            return
        holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            holder.bind(("127.0.0.1", port))
        except OSError:
            holder.close()
            return
        self.held[i] = holder

    def _release_port(self, i: int) -> None:
        holder = self.held.pop(i, None)
        if holder is not None:
            holder.close()

    def close(self) -> None:
        for i in list(self.held):
            self._release_port(i)
        if self.ledger is not None:
            self.ledger.close()
            self.ledger = None
        self._stop_nodes()

    def _stop_nodes(self) -> None:
        """Stop and reap every process (the node processes, the proxy, the zygote)."""
        self.processes.__exit__(None, None, None)

    # ----- using it -------------------------------------------------------------------------

    def op(self, i: int, name: str, **args: Any) -> Any:
        """Node ``i``'s control operation ``name``."""
        return self.nodes[i].call("op", name=name, args=args)

    def up(self) -> list[int]:
        return [i for i, node in enumerate(self.nodes) if node.alive]

    def kill(self, i: int) -> None:
        self.nodes[i].kill()
        self._hold_port(i)

    def stop(self, i: int) -> int:
        """Ask node ``i`` to shut down; its exit status (-9: it did not exit in time and was killed)."""
        code = self.nodes[i].stop()
        self._hold_port(i)
        return code

    def restart(self, i: int) -> None:
        """Start node ``i`` again on its files and its QUIC port (held for it while it was down)."""
        self._release_port(i)
        self.nodes[i].restart()

    def metrics(self, i: int) -> dict[str, float]:
        return self.nodes[i].call("metrics")

    def wait_until(self, condition, timeout: float, what: str) -> float:
        """Poll ``condition()`` until it holds; ``TimeoutError`` naming ``what`` after ``timeout`` s. Returns the time taken."""
        start = time.monotonic()
        while not condition():
            if time.monotonic() - start > timeout:
                raise TimeoutError(f"{what}: not within {timeout} s")
            time.sleep(POLL_SECONDS)
        return time.monotonic() - start


# ----- mbt cluster ---------------------------------------------------------------------------

TITLES = ("write the spec", "review the model", "run the machines", "fix the bug", "ship it", "audit the node")


def _metric(values: dict[str, float], prefix: str) -> float:
    return sum(value for name, value in values.items() if name.startswith(prefix))


def _workload_step(cluster: Cluster, rng: random.Random, tasks: list[str], counts: dict[str, int], events: int) -> int:
    i = rng.choice(cluster.up())
    roll = rng.random()
    if cluster.signing and roll < 0.1:
        answer = cluster.op(i, "submit_event", external_id=f"ext-{events}", destination=f"kaspatest:dest{events % 3}",
                            amount=rng.choice((50, 100, 200)), reason="bridge")
        counts["sessions"] += 1
        counts["sessions refused at the coordinator"] += "refused" in answer
        return events + 1
    if not tasks or roll < 0.4:
        answer = cluster.op(i, "add_task", title=rng.choice(TITLES), description="")
        tasks.append(answer["task"])
    else:
        action = "claim" if roll < 0.75 else "complete"
        answer = cluster.op(i, action, task=rng.choice(tasks))
    counts["operations"] += 1
    counts["refused operations"] += answer["outcome"] != "ok"
    return events


def run_workload(cluster: Cluster, duration: float, rate: float, seed: int, out=sys.stdout) -> dict[str, Any]:
    """Operations at about ``rate`` a second for ``duration`` seconds, a progress line a second; then wait for convergence."""
    rng = random.Random(seed)
    tasks: list[str] = []
    counts = {"operations": 0, "refused operations": 0, "sessions": 0, "sessions refused at the coordinator": 0}
    events = 0
    start = time.monotonic()
    next_progress = start + 1
    while (now := time.monotonic()) - start < duration:
        events = _workload_step(cluster, rng, tasks, counts, events)
        if now >= next_progress:
            next_progress += 1
            print(f"\r{now - start:5.1f} s  {counts['operations']} operations  {counts['sessions']} sessions", end="",
                  file=out, flush=True)
        time.sleep(max(0.0, start + (counts["operations"] + counts["sessions"]) / rate - time.monotonic()))
    print(file=out)
    acknowledged = counts["operations"] - counts["refused operations"]
    counts["convergence seconds"] = round(cluster.wait_until(
        lambda: all(_held(cluster, i) == acknowledged for i in cluster.up()), 30, "every node holding every operation"), 2)
    cluster.wait_until(lambda: all(cluster.op(i, "info")["live_sessions"] == 0 for i in cluster.up()), 10,
                       "every signing session ending")
    return counts


def _held(cluster: Cluster, i: int) -> int:
    return sum(hi - lo + 1 for spans in cluster.op(i, "snapshot")["holds"].values() for lo, hi in spans)


def results_table(cluster: Cluster) -> tuple[list[str], list[list]]:
    headers = ["node", "ops held", "tasks", "sessions finalized", "expired", "rejected", "partial sigs", "gossip msgs",
               "replays refused", "peers online", "RSS MiB"]
    rows = []
    for i in cluster.up():
        m = cluster.metrics(i)
        snap = cluster.op(i, "snapshot")
        rows.append([
            cluster.names[i], _held(cluster, i), len(snap["tasks"]),
            int(m.get("mbt_sessions_total{outcome=finalized}", 0)), int(m.get("mbt_sessions_total{outcome=expired}", 0)),
            int(m.get("mbt_sessions_total{outcome=rejected}", 0)), int(m.get("mbt_partial_signatures_total", 0)),
            int(_metric(m, "mbt_gossip_messages_total")), int(m.get("mbt_replays_refused_total", 0)),
            int(m.get("mbt_peers_online", 0)), round(m.get("mbt_resident_memory_bytes", 0) / 2**20, 1),
        ])
    return headers, rows


def main(argv: list[str] | None = None) -> int:
    from tabulate import tabulate

    parser = argparse.ArgumentParser(prog="mbt cluster", description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=3, help="node processes (1 to 64)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of workload")
    parser.add_argument("--rate", type=float, default=20.0, help="operations a second, about")
    parser.add_argument("--seed", type=int, default=0, help="seed of the workload's choices")
    parser.add_argument("--directory", type=Path, default=None,
                        help="where the nodes' files go (default: a temporary directory, removed at the end)")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.rate <= 0:
        parser.error("--duration and --rate must be positive")
    before = snapshot()
    directory = args.directory or Path(tempfile.mkdtemp(prefix="mbt-cluster-"))
    try:
        print(f"starting {args.nodes} nodes in {directory} ...", flush=True)
        with Cluster(directory, args.nodes) as cluster:
            counts = run_workload(cluster, args.duration, args.rate, args.seed)
            headers, rows = results_table(cluster)
        print(tabulate(rows, headers=headers))
        print(tabulate(sorted(counts.items()), headers=["workload", ""]))
    finally:
        if args.directory is None:
            shutil.rmtree(directory, ignore_errors=True)
    left = leftovers(before)
    if left:
        print(f"left behind: {left}", file=sys.stderr)
        return 1
    print("stopped: no process or bound port left behind")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
