"""Scale run of the node core on a simulated network (seed 000, tasks 6 and 7).

100 nodes (``implementations.node.Node``, Ed25519), each issuing 10 operations a second on
one logged topic for 10 simulated minutes, on a simulated network with a fixed one-way
latency per link (20 to 80 ms), and a partition into two halves for 30 s in the middle.
Printed beside the seed's targets: propagation latency of an operation to every other
node (p50/p95/p99), operations and gossip messages per second, bytes per node per second,
memory per node, the time the network needs to converge after the partition heals, and
the CPU seconds each simulated minute costs.

How the simulation is driven (what a real deployment would do too):

* a node batches its operations: every ``--batch-ms`` (default 500 ms) it publishes the
  operations of the interval as one signed message (one signature, one message id);
* a node's transport coalesces what the node sends one peer within ``FLUSH_MS`` into one
  datagram (as a stream writer would): the node adds its messages to the transport's
  ``Outbox`` (``handle``/``tick``/``publish`` with ``out=``), which is encoded at the flush;
* every node ticks every second (haves at most every 5 s, anti-entropy every 30 s,
  beacons every 300 s); each operation travels down its broadcast tree, so each node
  receives it once unless the partition cut its path (``implementations.node.core``);
* signature verification is memoised across the simulated nodes (``MemoVerifier``): it
  is a pure function, so no decision changes; the table shows how many verifications the
  nodes asked for and what they would cost each real node at the measured rate;
* propagation latency runs from the publication of an operation's message: the time an
  operation waits for its batch (up to ``--batch-ms``) is not in it;
* the CPU seconds are the whole simulation's (nodes, network, recording), per simulated
  minute, and the first, slowest and last minute apart (``--progress`` prints each).

Run: ``python -m benchmarks.mesh_scale`` (``--nodes 20 --minutes 2`` for a quick look).
"""

from __future__ import annotations

import argparse
import heapq
import resource
import statistics
import sys
import time
from array import array

import blake3
from tabulate import tabulate

from implementations.node import Ed25519Identity, MemoVerifier, Node, NodeConfig, Outbox
from implementations.storage import Store

S, MS = 1_000_000_000, 1_000_000
START = 1_700_000_000 * S
FLUSH_MS = 20
HISTOGRAM_MS = 600_000
TOPIC = "bench"


class Recorder:
    """When each operation was issued, and a histogram (1 ms buckets) of when it reached
    each other node: the benchmark's memory, not a node's."""

    def __init__(self, heal_at: int) -> None:
        self.now = START
        self.now_ms = 0  # since START
        self.heal_at = heal_at
        self.issued = 0  # operations issued
        self.histogram = array("q", bytes(8 * HISTOGRAM_MS))

    @property
    def arrivals(self) -> int:
        return sum(self.histogram)

    def issue(self) -> int:
        """The next operation's number."""
        self.issued += 1
        return self.issued

    def percentile(self, q: float) -> float:
        rank, seen = q * self.arrivals, 0
        for ms, count in enumerate(self.histogram):
            seen += count
            if seen >= rank and count:
                return float(ms)
        return float("nan")


class BenchApp:
    """The logged topic's application: counts the operations taken, and those issued before the heal."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.histogram, self.heal_at_ms = recorder.histogram, (recorder.heal_at - START) // MS
        self.before_heal = 0

    def apply(self, data: bytes) -> None:
        """``data`` is the issue time of operations issued together (8 bytes, ms since the start), then each
        one's number (8 bytes each)."""
        issued_ms = int.from_bytes(data[:8], "big")
        count = (len(data) >> 3) - 1
        self.histogram[min(self.recorder.now_ms - issued_ms, HISTOGRAM_MS - 1)] += count
        if issued_ms < self.heal_at_ms:
            self.before_heal += count


def link_latency(a: int, b: int) -> int:
    return (20 + blake3.blake3(bytes([a % 256, b % 256])).digest()[0] % 61) * MS


def latencies(nodes: int) -> list[list[int]]:
    return [[link_latency(a, b) for b in range(nodes)] for a in range(nodes)]


def run(nodes: int, minutes: float, ops_per_second: int, batch_ms: int, partition_at: float, partition_s: int,
        progress: bool = False) -> dict:
    cut_from, cut_until = START + int(partition_at * 60 * S), START + int(partition_at * 60 * S) + partition_s * S
    recorder = Recorder(cut_until)
    verifier = MemoVerifier()
    identities = [Ed25519Identity(blake3.blake3(b"bench" + i.to_bytes(4, "big")).digest()) for i in range(nodes)]
    members = [ident.peer_id for ident in identities]
    index = {peer: i for i, peer in enumerate(members)}
    config = NodeConfig(record_verdicts=False, adverts=False)
    apps = [BenchApp(recorder) for _ in range(nodes)]
    mesh = [Node(identities[i], members, Store(":memory:"), START, config=config, apps={TOPIC: apps[i]}, verifier=verifier)
            for i in range(nodes)]
    end = START + int(minutes * 60 * S)
    half = nodes // 2
    times: list[int] = []  # a heap of the times at which something is due
    due: dict[int, list[tuple[int, object]]] = {}  # time -> (kind, payload) of the events due then, in the order scheduled

    def schedule(at: int, kind: int, payload: object) -> None:
        bucket = due.get(at)
        if bucket is None:
            due[at] = [(kind, payload)]
            heapq.heappush(times, at)
        else:
            bucket.append((kind, payload))

    outboxes = [Outbox() for _ in range(nodes)]  # each node's transport: what it sends each peer until the flush
    flush_pending = [False] * nodes
    sent_bytes = [0] * nodes
    counts = {"datagrams": 0, "messages": 0, "lost": 0}
    latency = latencies(nodes)

    def flush_soon(source: int, now: int) -> None:
        if outboxes[source].messages and not flush_pending[source]:
            flush_pending[source] = True
            schedule(now + FLUSH_MS * MS, 2, source)

    for i in range(nodes):
        schedule(START + (i * S) // nodes, 0, i)  # ticks, staggered
        schedule(START + (i * batch_ms * MS) // nodes, 1, i)  # publications, staggered
    issued_total = issued_before_heal = 0
    cpu = time.process_time()
    heal_converged = None
    minute_cpu: list[float] = []  # CPU seconds of each simulated minute
    next_minute = START + 60 * S
    while times:
        now = heapq.heappop(times)
        if now >= end:
            break
        if now >= next_minute:
            next_minute += 60 * S
            minute_cpu.append(time.process_time() - cpu - sum(minute_cpu))
            if progress:
                print(f"  minute {len(minute_cpu)}: {minute_cpu[-1]:.1f} CPU s", file=sys.stderr, flush=True)
        recorder.now, recorder.now_ms = now, (now - START) // MS
        for kind, payload in due.pop(now):
            if kind == 3:  # a datagram arrives
                peer, data = payload
                mesh[peer].handle(data, now, outboxes[peer])
                if not flush_pending[peer]:
                    flush_soon(peer, now)
            elif kind == 0:  # a node's timer
                i = payload
                mesh[i].tick(now, out=outboxes[i])
                flush_soon(i, now)
                schedule(now + S, 0, i)
                if heal_converged is None and now >= cut_until and all(app.before_heal == issued_before_heal for app in apps):
                    heal_converged = now - cut_until
            elif kind == 1:  # a node publishes the operations of its last interval
                i = payload
                ops = [recorder.issue().to_bytes(8, "big") for _ in range(ops_per_second * batch_ms // 1000)]
                issued_total += len(ops)
                if now < cut_until:
                    issued_before_heal += len(ops)
                    apps[i].before_heal += len(ops)
                mesh[i].publish(TOPIC, recorder.now_ms.to_bytes(8, "big") + b"".join(ops), now, out=outboxes[i])
                flush_soon(i, now)
                schedule(now + batch_ms * MS, 1, i)
            elif kind == 2:  # a node's transport flushes one datagram per peer
                i = payload
                flush_pending[i] = False
                outbox, outboxes[i] = outboxes[i], Outbox()
                counts["messages"] += sum(map(len, outbox.messages.values()))
                flushed = outbox.datagrams()
                counts["datagrams"] += len(flushed)
                cutting, side, to_peer = cut_from <= now < cut_until, i < half, latency[i]
                for peer_id, data in flushed:
                    peer = index[peer_id]
                    sent_bytes[i] += len(data)
                    if cutting and side != (peer < half):
                        counts["lost"] += 1
                    else:
                        schedule(now + to_peer[peer], 3, (peer, data))
    cpu = time.process_time() - cpu
    minute_cpu.append(cpu - sum(minute_cpu))
    seconds = minutes * 60
    return {
        "nodes": nodes, "seconds": seconds, "issued": issued_total,
        "p50": recorder.percentile(0.50), "p95": recorder.percentile(0.95), "p99": recorder.percentile(0.99),
        "ops_per_s": issued_total / seconds,
        "messages_per_s": counts["messages"] / seconds, "datagrams_per_s": counts["datagrams"] / seconds,
        "kb_per_node_s": statistics.mean(sent_bytes) / seconds / 1024,
        "rss_mb_per_node": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / nodes,
        "converged_s": None if heal_converged is None else heal_converged / S,
        "delivered_fraction": recorder.arrivals / max(1, issued_total * (nodes - 1)),
        "verifications_per_node_s": verifier.checked / nodes / seconds,
        "cpu_s": cpu, "cpu_per_sim_minute": cpu / (seconds / 60), "lost": counts["lost"], "minute_cpu": minute_cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--ops", type=int, default=10, help="operations a second per node")
    parser.add_argument("--batch-ms", type=int, default=500)
    parser.add_argument("--partition-at", type=float, default=5.0, help="minute at which the halves are cut apart")
    parser.add_argument("--partition-s", type=int, default=30)
    parser.add_argument("--progress", action="store_true", help="print each simulated minute's CPU seconds as it ends")
    args = parser.parse_args()
    r = run(args.nodes, args.minutes, args.ops, args.batch_ms, args.partition_at, args.partition_s, args.progress)
    print(f"{r['nodes']} simulated nodes, {r['seconds'] / 60:g} simulated minutes, {args.ops} operations/s per node, "
          f"published every {args.batch_ms} ms, halves cut apart for {args.partition_s} s at minute {args.partition_at:g}")
    rows = [
        ["propagation latency p50 / p95 / p99 (ms)", f"{r['p50']:.0f} / {r['p95']:.0f} / {r['p99']:.0f}", "p95 < 500 ms"],
        ["operations per second (network)", f"{r['ops_per_s']:.0f}", "1000 offered"],
        ["gossip messages per second (network, incl. forwards)", f"{r['messages_per_s']:.0f}", "> 500 msg/s"],
        ["datagrams per second (network)", f"{r['datagrams_per_s']:.0f}", ""],
        ["bytes sent per node (KB/s)", f"{r['kb_per_node_s']:.1f}", "< 100 KB/s"],
        ["memory per node (peak RSS of the run / nodes, MB)", f"{r['rss_mb_per_node']:.1f}", "< 50 MB"],
        ["convergence after the partition heals (s)", "not within the run" if r["converged_s"] is None
         else f"{r['converged_s']:.1f}", "< 30 s"],
        ["operations delivered to every other node", f"{r['delivered_fraction']:.4f}", "1.0"],
        ["signature verifications per node per second", f"{r['verifications_per_node_s']:.0f}",
         "(~57 us each with PyNaCl)"],
        ["CPU seconds per simulated minute", f"{r['cpu_per_sim_minute']:.1f}", f"total {r['cpu_s']:.0f} s (< 300 s)"],
        ["CPU seconds of the first / slowest / last simulated minute",
         " / ".join(f"{x:.1f}" for x in (r["minute_cpu"][0], max(r["minute_cpu"]), r["minute_cpu"][-1])), ""],
    ]
    print(tabulate(rows, headers=["measure", "simulated", "seed target"]))


if __name__ == "__main__":
    main()
