"""What a replica in a child process costs against one in this process.

    python benchmarks/process_requests.py [--requests N]

For each implementation: the CPU time (this process plus its child) of starting a child
and making a replica, and of one ``value()`` and one local edit, next to the in-process
pycrdt and Loro replicas of the same type. This is why ``harness.process`` keeps one child
per implementation for every run instead of one per run, and why the JavaScript
implementations run fewer examples in ``ci``. Measurements, not targets: compare ratios.
"""

from __future__ import annotations

import argparse
import os
import resource
from pathlib import Path

from tabulate import tabulate

from harness.registry import implementation
from models.clock import ManualClock

SEQUENCES = ["pycrdt-text", "loro-text", "yjs-text", "automerge-text"]


def cpu(host=None) -> float:
    """CPU seconds of this process, plus the live child of ``host`` (Linux: /proc) and reaped children."""
    own, reaped = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    total = own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime
    child = getattr(host, "child", None)
    if child is not None and child.alive:
        fields = Path(f"/proc/{child.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    clock = ManualClock(0)
    rows = []
    for name in SEQUENCES:
        impl = implementation("rga", name)
        if impl.unavailable:
            rows.append([name, "unavailable: " + impl.unavailable, "", ""])
            continue
        host = getattr(impl.make_replica, "host", None)
        started = cpu(host)
        replica = impl.make_replica(0, clock)
        replica.value()
        start_ms = (cpu(host) - started) * 1e3
        for i in range(20):  # warm up: JIT, WebAssembly
            replica.insert(i, "x")
        begun = cpu(host)
        for _ in range(args.requests):
            replica.value()
        value_us = (cpu(host) - begun) / args.requests * 1e6
        begun = cpu(host)
        for i in range(args.requests // 10):
            replica.insert(i, "y")
        insert_us = (cpu(host) - begun) / (args.requests // 10) * 1e6
        if host is not None:
            host.close()
        rows.append([name, f"{start_ms:.0f}" if host is not None else "-", f"{value_us:.0f}", f"{insert_us:.0f}"])
    print(tabulate(rows, headers=["implementation", "child start + make (ms CPU)", "value() (µs CPU)", "insert (µs CPU)"]))
    print(f"\n(CPU of this process and the child together; value() over {args.requests} calls, insert over "
          f"{args.requests // 10}; the first start also loads Node.js from disk)")


if __name__ == "__main__":
    main()
