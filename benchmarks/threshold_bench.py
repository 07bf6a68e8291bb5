"""Threshold signing: how long from an event to its finalized transaction?

For each group (2-of-3 and 3-of-5 by default) the sans-I/O cores of
``implementations.threshold`` run on SQLite files in a temporary directory (on ``/dev/shm``
when there is one) with an in-memory network: the coordinator proposes, every signer checks
and signs, and the answers reach the coordinator in order until it submits to the ledger.
No sockets, no sleeping: the figures are the CPU cost of the protocol itself (Ed25519,
BLAKE3, the PSKT rebuild, SQLite).

Rows: the group and the number of UTXOs the group holds (the event's template spends
several of them). Columns: ``events``; ``ms/event`` the CPU time from ``submit_event`` to
``Finalized``; ``propose ms``, ``sign ms`` (all signers), ``collect ms`` (the coordinator
verifying answers and submitting); ``sigs/s`` the input signatures verified per second by
the coordinator; ``KiB/event`` the Python heap growth per event (``tracemalloc``, after the
first event). Seed 003 asks for these (items 3.1 "signature collection latency (2-of-3,
3-of-5)", "end-to-end flow latency", 3.2 memory growth). Nothing here asserts a time.

    python benchmarks/threshold_bench.py [--events N] [--utxos N ...] [--groups 2-of-3 3-of-5] [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import nacl.signing
from blake3 import blake3
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from implementations import pskt
from implementations.ledger import Ledger, MultisigGroup
from implementations.policy import Policy
from implementations.threshold import Coordinator, GroupConfig, LedgerView, Signer, decode_proposal

START_NS = 1_700_000_000 * 1_000_000_000


def run(group: str, events: int, utxos: int) -> list:
    m, n = (int(x) for x in group.split("-of-"))
    keys = [blake3(f"bench:{i}".encode()).digest() for i in range(n)]
    pubkeys = tuple(bytes(nacl.signing.SigningKey(k).verify_key) for k in keys)
    ledger = Ledger()
    address = ledger.add_group(MultisigGroup(m, pubkeys))
    for i in range(utxos):
        ledger.fund(address, 1_000 + i)
    config = GroupConfig(pubkeys, m, address, 10, pskt.SignersPay())
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    directory = tempfile.mkdtemp(prefix="threshold-bench-", dir=shm)
    try:
        views = [LedgerView(ledger, address, order_seed=i) for i in range(n)]
        signers = [Signer(keys[i], config, views[i], f"{directory}/s{i}.db", Policy()) for i in range(n)]
        coordinator = Coordinator(keys[0], config, views[0], f"{directory}/c0.db")
        propose = sign = collect = 0.0
        now = START_NS
        heap_after_first = 0
        tracemalloc.start()
        for k in range(events):
            now += 1_000_000_000
            event = pskt.Event("bench", f"ext-{k}", "kaspatest:recipient", 2_500, (("reason", "bench"),), now)
            t0 = time.process_time()
            request_id, proposals = coordinator.submit_event(event, now)
            t1 = time.process_time()
            answers = [signers[pubkeys.index(to)].handle(data, now)[0] for to, data in proposals]
            t2 = time.process_time()
            for _, data in answers:
                coordinator.handle(data, now)
                if coordinator.request_state(request_id) == "Finalized":
                    break
            t3 = time.process_time()
            assert coordinator.request_state(request_id) == "Finalized", coordinator.request_state(request_id)
            propose, sign, collect = propose + t1 - t0, sign + t2 - t1, collect + t3 - t2
            for _ in range(len(coordinator_template(coordinator, request_id).inputs) - 1):
                ledger.fund(address, 1_000)  # keep the number of UTXOs about the same
            if k == 0:
                heap_after_first = tracemalloc.get_traced_memory()[0]
        heap = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        metrics = coordinator.metrics()
        for core in [*signers, coordinator]:
            core.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    total = propose + sign + collect
    verified = metrics["partial_sigs_total"]
    return [group, utxos, events, 1000 * total / events, 1000 * propose / events, 1000 * sign / events,
            1000 * collect / events, verified / collect if collect else 0.0,
            (heap - heap_after_first) / 1024 / max(1, events - 1)]


def coordinator_template(coordinator: Coordinator, request_id: str) -> pskt.Template:
    (payload,) = coordinator.store.execute("SELECT proposal FROM requests WHERE request_id = ?", (request_id,)).fetchone()
    return decode_proposal(payload).template


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--utxos", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--groups", nargs="+", default=["2-of-3", "3-of-5"])
    parser.add_argument("--quick", action="store_true", help="5 events per row")
    args = parser.parse_args(argv)
    if args.quick:
        args.events = 5
    rows = [run(group, args.events, utxos) for group in args.groups for utxos in args.utxos]
    print("Time base: CPU time of this process (time.process_time); KiB/event from tracemalloc.")
    print(tabulate(rows, headers=["group", "UTXOs", "events", "ms/event", "propose ms", "sign ms", "collect ms", "sigs/s",
                                  "KiB/event"], floatfmt=".2f"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
