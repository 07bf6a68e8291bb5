"""Scale run of node processes on loopback: the simulated scale table (``mesh_scale``), measured for real.

``--nodes`` (10 to 20) mesh node processes (``implementations.transport.mesh_node``), QUIC on
127.0.0.1 through the fault proxy (one more process, which relays every datagram), each
issuing ``--ops`` task-list operations a second for ``--seconds`` seconds through its
control endpoint; in the middle the proxy cuts the nodes into two halves for
``--partition-s`` seconds. The rows are ``mesh_scale``'s, beside the seed's targets:
propagation latency of an operation to every other node (from each node's record of when
it took each operation: ``record_arrivals``; operations issued while the halves were apart
are left out, they wait for the heal by design), operations and gossip messages a second,
datagrams a second, bytes sent per node a second, memory per node (RSS), convergence after
the heal, signature verifications per node a second, CPU seconds per minute (all node
processes). Then two rows of their own:

* messages a second on one QUIC connection, unbatched and batched (``quic_loopback``'s
  measurement, both ends in this process);
* memory growth of a signing node over ``--events`` (1,000) signing sessions of a 3-node
  group (the seed asks for under 100 MB): RSS of the coordinating node before and after.

Wall-clock rows depend on what else the machine runs; the script prints the load.

Run: ``python -m benchmarks.loopback_scale`` (``--nodes 10 --seconds 20``; ``--nodes 20`` for the big one).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import trio
from tabulate import tabulate

from benchmarks.quic_loopback import measure as quic_measure
from implementations.transport.cluster import TITLES, Cluster
from implementations.transport.process import leftovers, snapshot

MiB = 2**20


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def totals(cluster: Cluster) -> dict[str, float]:
    """Sums over the nodes: gossip messages, datagrams and bytes sent, CPU seconds, signatures verified; RSS per node."""
    out = {"gossip": 0.0, "datagrams": 0.0, "bytes": 0.0, "cpu": 0.0, "verified": 0.0, "rss": []}
    for i in range(cluster.size):
        metrics = cluster.metrics(i)
        transport = cluster.nodes[i].call("transport")
        out["gossip"] += sum(v for k, v in metrics.items() if k.startswith("mbt_gossip_messages_total"))
        out["datagrams"] += transport.get("datagrams_sent", 0)
        out["bytes"] += transport.get("bytes_sent", 0)
        out["cpu"] += metrics.get("process_cpu_seconds_total", 0)
        out["verified"] += cluster.op(i, "info")["signatures_verified"]
        out["rss"].append(metrics["mbt_resident_memory_bytes"])
    return out


def held(cluster: Cluster, i: int) -> int:
    return sum(hi - lo + 1 for spans in cluster.op(i, "snapshot")["holds"].values() for lo, hi in spans)


def scale_run(directory: Path, nodes: int, seconds: float, ops: float, partition_at: float, partition_s: float) -> dict:
    with Cluster(directory, nodes, proxy_seed=0, signing=False, node_settings={"record_arrivals": True}) as cluster:
        before = totals(cluster)
        issued: dict[str, tuple[int, int, bool]] = {}  # op id -> (node, issue time, issued while apart)
        arrivals: dict[str, dict[int, int]] = {}
        halves = [cluster.names[: nodes // 2], cluster.names[nodes // 2:]]
        apart = healed_at = None
        start = time.monotonic()
        interval = 1 / (ops * nodes)
        count = 0
        while (elapsed := time.monotonic() - start) < seconds:
            if apart is None and elapsed >= partition_at:
                cluster.proxy.call("partition", groups=halves)
                apart = elapsed
            if apart is not None and healed_at is None and elapsed >= apart + partition_s:
                cluster.proxy.call("heal")
                healed_at = time.monotonic()
            i = count % nodes
            answer = cluster.op(i, "add_task", title=TITLES[count % len(TITLES)], description=f"op {count}")
            issued[answer["op"]] = (i, answer["now"], apart is not None and healed_at is None)
            count += 1
            if count % (nodes * 10) == 0:
                for j in range(nodes):
                    for op, at in cluster.op(j, "arrivals").items():
                        arrivals.setdefault(op, {})[j] = at
            time.sleep(max(0.0, start + count * interval - time.monotonic()))
        duration = time.monotonic() - start
        if healed_at is None:
            cluster.proxy.call("heal")
            healed_at = time.monotonic()
        cluster.wait_until(lambda: all(held(cluster, j) == count for j in range(nodes)), 120, "every node holding everything")
        converged_s = time.monotonic() - healed_at
        for j in range(nodes):
            for op, at in cluster.op(j, "arrivals").items():
                arrivals.setdefault(op, {})[j] = at
        after = totals(cluster)
    latencies = [(at - issued_at) / 1e6 for op, (origin, issued_at, during) in issued.items() if not during
                 for j, at in arrivals.get(op, {}).items() if j != origin]
    delivered = sum(len(arrivals.get(op, {})) for op in issued) / (len(issued) * (nodes - 1))
    return {
        "nodes": nodes, "seconds": duration, "ops": count, "latencies": latencies, "delivered": delivered,
        "gossip_per_s": (after["gossip"] - before["gossip"]) / duration,
        "datagrams_per_s": (after["datagrams"] - before["datagrams"]) / duration,
        "kb_per_node_s": (after["bytes"] - before["bytes"]) / 1024 / nodes / duration,
        "rss_mb": statistics.mean(after["rss"]) / MiB, "rss_max_mb": max(after["rss"]) / MiB,
        "converged_s": converged_s, "cpu_per_min": (after["cpu"] - before["cpu"]) / (duration / 60),
        "verified_per_node_s": (after["verified"] - before["verified"]) / nodes / duration,
    }


def signing_memory(directory: Path, events: int) -> dict:
    """RSS of a coordinating node (and of a signer) before and after ``events`` signing sessions of a 3-node group."""
    funds = (1_000,) * (events + 10)  # one coin per session and spares: templates rarely pick the same coin
    with Cluster(directory, 3, funds=funds, daily_limit=10**15, session_timeout_ms=5_000) as cluster:
        warm = cluster.op(0, "submit_event", external_id="warm-up", destination="kaspatest:dest", amount=100, reason="bridge")
        assert "request_id" in warm, warm
        cluster.wait_until(lambda: cluster.op(0, "info")["live_sessions"] == 0, 30, "the warm-up session")
        rss = [cluster.metrics(i)["mbt_resident_memory_bytes"] for i in range(3)]
        start = time.monotonic()
        for k in range(events):
            cluster.op(0, "submit_event", external_id=f"e-{k}", destination=f"kaspatest:dest{k % 7}", amount=100, reason="bridge")
            if k % 20 == 19:  # at most 20 sessions open at once
                cluster.wait_until(lambda: cluster.op(0, "info")["live_sessions"] == 0, 60, "sessions ending")
        cluster.wait_until(lambda: cluster.op(0, "info")["live_sessions"] == 0, 60, "sessions ending")
        duration = time.monotonic() - start
        metrics = cluster.metrics(0)
        grown = [cluster.metrics(i)["mbt_resident_memory_bytes"] for i in range(3)]
    return {
        "events": events, "seconds": duration, "finalized": metrics.get("mbt_sessions_total{outcome=finalized}", 0),
        "aborted": metrics.get("mbt_sessions_total{outcome=aborted}", 0),
        "coordinator_mb": (rss[0] / MiB, grown[0] / MiB), "signer_mb": (rss[1] / MiB, grown[1] / MiB),
    }


def quic_rows(directory: Path) -> list[list]:
    args = argparse.Namespace(messages=20_000, size=64, round_trips=200, handshakes=5, batches=[1, 100])
    return [row for row in trio.run(quic_measure, args, directory) if row[0] in ("unbatched", "batched x100")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=10, help="node processes (10 to 20 in the issue)")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--ops", type=float, default=2.0, help="operations a second per node")
    parser.add_argument("--partition-at", type=float, default=8.0, help="second at which the halves are cut apart")
    parser.add_argument("--partition-s", type=float, default=5.0)
    parser.add_argument("--events", type=int, default=1_000, help="signing sessions of the memory row")
    args = parser.parse_args()
    before = snapshot()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="mbt-loopback-") as tmp:
        r = scale_run(Path(tmp) / "scale", args.nodes, args.seconds, args.ops, args.partition_at, args.partition_s)
        quic = quic_rows(Path(tmp) / "quic")
        memory = signing_memory(Path(tmp) / "signing", args.events)
    print(f"{r['nodes']} node processes (+ the fault proxy), {r['seconds']:.0f} s, {args.ops:g} operations/s per node "
          f"through the control endpoints, halves cut apart for {args.partition_s:g} s at second {args.partition_at:g}; "
          f"load average {load:.1f} on {os.cpu_count()} cores at the start")
    lat = r["latencies"]
    cpu_s = r["cpu_per_min"] * r["seconds"] / 60
    rows = [
        ["propagation latency p50 / p95 / p99 (ms)", f"{percentile(lat, .5):.0f} / {percentile(lat, .95):.0f} / "
         f"{percentile(lat, .99):.0f}", "p95 < 500 ms"],
        ["operations per second (network)", f"{r['ops'] / r['seconds']:.0f}", f"{args.ops * r['nodes']:g} offered"],
        ["gossip messages per second (network, incl. forwards)", f"{r['gossip_per_s']:.0f}", "> 500 msg/s"],
        ["datagrams per second (network)", f"{r['datagrams_per_s']:.0f}", ""],
        ["bytes sent per node (KB/s)", f"{r['kb_per_node_s']:.1f}", "< 100 KB/s"],
        ["memory per node (RSS, MB: mean / max)", f"{r['rss_mb']:.1f} / {r['rss_max_mb']:.1f}", "< 50 MB"],
        ["convergence after the partition heals (s)", f"{r['converged_s']:.1f}", "< 30 s"],
        ["operations delivered to every other node", f"{r['delivered']:.4f}", "1.0"],
        ["signature verifications per node per second", f"{r['verified_per_node_s']:.0f}", ""],
        ["CPU seconds per minute (all node processes)", f"{r['cpu_per_min']:.1f}", f"total {cpu_s:.0f} s"],
    ]
    for name, _count, _wall, _cpu, _each, per_s, per_cpu, *_ in quic:
        rows.append([f"messages a second on one QUIC connection, {name} (per CPU s)", f"{per_s} ({per_cpu})",
                     "> 50,000 batched"])
    before_mb, after_mb = memory["coordinator_mb"]
    rows.append([f"signing node RSS over {memory['events']:,} sessions (MB: before -> after, growth)",
                 f"{before_mb:.1f} -> {after_mb:.1f} (+{after_mb - before_mb:.1f})", "growth < 100 MB"])
    before_mb, after_mb = memory["signer_mb"]
    rows.append(["  the same, a node that only signs", f"{before_mb:.1f} -> {after_mb:.1f} (+{after_mb - before_mb:.1f})", ""])
    rows.append(["  sessions finalized / aborted (double spends) / seconds",
                 f"{memory['finalized']:.0f} / {memory['aborted']:.0f} / {memory['seconds']:.0f}", ""])
    print(tabulate(rows, headers=["measure", "loopback", "seed target"]))
    left = leftovers(before)
    if left:
        raise SystemExit(f"left behind: {left}")


if __name__ == "__main__":
    main()
