"""How the cost of replication grows with the size of the state, in three tables.

    python benchmarks/scaling.py [--quick] [--only orset tasklist rga]

1. **OR-Set**: ``implementations.orset.DeltaORSet`` and the tombstone OR-Set of
   ``implementations/orset_tombstone.py``, at 100, 1,000 and 10,000 added elements of which
   a quarter were removed again. For each: the full state's bytes; merging it into an empty
   replica and into one that already has it (anti-entropy); the bytes of the delta of one
   more add and of one remove, and applying that delta to a replica holding the whole set.
   A delta must stay the same size whatever the state; a merge may grow with the state
   (it reads all of it), so it is also shown per element.
2. **Task list** (``implementations.tasklist.TaskList``) against the targets of the seed
   document (add a task < 1 ms, merge < 10 ms, serialize < 100 µs, sign < 5 ms, verify <
   3 ms, agent creation < 100 ms), each measured value beside its target. Upstream signs
   with ML-DSA-65, this project's task list with Ed25519: both are shown.
3. **RGA** (``implementations.rga.RGA``): time of one insert or delete at a random position
   and of applying one remote delta, in documents of 1,000 to 1,000,000 characters (built by
   the synthetic editing trace of ``benchmarks/rga_scaling.py``: typing and deleting bursts at
   random places; garbage collected before timing). It must stay flat or grow like a
   logarithm: the growth columns are against the smallest document, and the last column is
   how a logarithm of the length would grow. ``rga_scaling.py`` goes further (10 M
   characters, the real trace replayed many times, hostile messages).

Every figure is the median of several timed runs in this process, in CPU time of the
process (``time.process_time``: on a shared machine, less disturbed by other processes than
elapsed time; every measured operation runs in this thread); nothing is asserted. The
machine is shared and noisy: read ratios within one run. The whole script takes well under
two minutes; ``--quick`` stops at 1,000 / 10,000 elements.
A part whose implementation is missing prints "not available yet" and the rest still runs.
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tabulate import tabulate  # noqa: E402


def timed(action: Callable[[], Any], repeat: int = 5, setup: Callable[[], Any] | None = None) -> float:
    """Median seconds of ``action()`` (or ``action(setup())``), over ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        arg = setup() if setup is not None else None
        started = time.process_time()
        action() if setup is None else action(arg)
        times.append(time.process_time() - started)
    return statistics.median(times)


def per_call(action: Callable[[], Any], calls: int, repeat: int = 5) -> float:
    """Median seconds per call of ``action``, over ``repeat`` batches of ``calls`` calls."""

    def batch() -> None:
        for _ in range(calls):
            action()

    return timed(batch, repeat) / calls


def fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.3g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} µs"


def not_available(what: str, error: Exception) -> str:
    return f"{what}: not available yet ({type(error).__name__}: {error})"


# ----- 1. OR-Set ---------------------------------------------------------------------------

def orset_rows(sizes: list[int]) -> list[list]:
    makers = []
    try:
        from implementations.orset import DeltaORSet

        makers.append(("DeltaORSet", DeltaORSet))
    except ImportError as error:
        makers.append(("DeltaORSet", error))
    try:
        from implementations.orset_tombstone import TombstoneORSet

        makers.append(("TombstoneORSet", TombstoneORSet))
    except ImportError as error:
        makers.append(("TombstoneORSet", error))

    rows = []
    for name, make in makers:
        if isinstance(make, Exception):
            rows.append([name, not_available("implementation", make)])
            continue
        for size in sizes:
            source = make(1)
            for element in range(size):
                source.add(element if element % 2 else f"element-{element}")
            for element in range(0, size, 4):
                source.remove(element if element % 2 else f"element-{element}")
            source.take_deltas()
            state = source.state()
            repeat = 5 if size <= 1000 else 3

            def fresh(make: Callable = make) -> Any:
                return make(2)

            into_empty = timed(lambda replica, state=state: replica.merge(state), repeat, setup=fresh)
            holder = make(2)
            holder.merge(state)
            again = timed(lambda holder=holder, state=state: holder.merge(state), repeat)
            source.add("one more")
            add_delta = source.take_deltas()[0]
            source.remove("one more")
            remove_delta = source.take_deltas()[0]
            apply_add = timed(lambda holder=holder, delta=add_delta: holder.apply_delta(delta), 21)
            live = len(source.value())
            rows.append([
                name, f"{size:,}", f"{live:,}", f"{len(state):,}", fmt_time(into_empty), fmt_time(again),
                fmt_time(into_empty / size), f"{len(add_delta):,}", f"{len(remove_delta):,}", fmt_time(apply_add),
            ])
    return rows


ORSET_HEADERS = ["OR-Set", "adds", "present", "state bytes", "merge into empty", "merge again", "merge per add",
                 "add delta bytes", "remove delta bytes", "apply add delta"]


# ----- 2. Task list ------------------------------------------------------------------------

def tasklist_rows(tasks: int = 100) -> list[list]:
    try:
        from nacl.signing import SigningKey

        from implementations import tasklist as tl
        from models.clock import NS_PER_MS, ManualClock
    except ImportError as error:
        return [["task list", not_available("implementations.tasklist", error), "", ""]]

    list_id = bytes(range(32))
    clock = ManualClock(1_700_000_000_000_000_000)
    keys = [SigningKey(bytes([i + 1]) * 32) for i in range(3)]
    rows: list[list] = []

    def row(operation: str, seconds: float | None, target: float | None, note: str = "") -> None:
        if seconds is None:
            rows.append([operation, "-", fmt_time(target) if target else "-", "", note])
            return
        verdict = "" if target is None else ("within" if seconds < target else "OVER")
        rows.append([operation, fmt_time(seconds), f"< {fmt_time(target)}" if target else "-", verdict, note])

    creation = timed(lambda: tl.TaskList(list_id, SigningKey.generate(), clock), 9)
    row("agent creation (key pair + replica)", creation, 100e-3)

    # One replica with exactly `tasks` tasks, a third of them claimed, a ninth completed.
    alice = tl.TaskList(list_id, keys[0], clock, peer_id=1)
    ids = []
    for i in range(tasks):
        clock.advance(NS_PER_MS)
        ids.append(alice.add_task(f"task {i}", "x" * 40))
    for i, task in enumerate(ids):
        if i % 3 == 0:
            alice.claim(task)
        if i % 9 == 0:
            alice.complete(task)
    alice.take_deltas()
    state = alice.state()
    row(f"serialize the whole list of {tasks} tasks ({len(state):,} bytes)", timed(alice.state, 7), None,
        "no upstream target")

    fresh = [tl.TaskList(list_id, keys[1], clock, peer_id=2) for _ in range(7)]
    merges = iter(fresh)
    row(f"merge it into an empty replica ({tasks} tasks)", timed(lambda: next(merges).merge(state), 7), 10e-3,
        "decode, verify every attestation, join")
    holder = fresh[0]
    row("merge it again (anti-entropy, already seen)", timed(lambda: holder.merge(state), 7), 10e-3)
    clock.advance(NS_PER_MS)
    alice.claim(ids[1])
    delta = alice.take_deltas()[0]
    row(f"apply the delta of one claim ({len(delta)} bytes)", timed(lambda: holder.apply_delta(delta), 21), 10e-3)

    counter = iter(range(10**9))

    def add_one() -> None:
        clock.advance(1)
        alice.add_task(f"extra {next(counter)}", "")

    row(f"add_task (list of {tasks} tasks and more)", per_call(add_one, 20), 1e-3)
    alice.take_deltas()

    def add_then_serialize() -> float:
        clock.advance(NS_PER_MS)
        alice.add_task(f"serialized {next(counter)}", "a short description")
        started = time.process_time()
        alice.take_deltas()
        return time.process_time() - started

    serialize = statistics.median(add_then_serialize() for _ in range(51))
    row("serialize the delta of one new task", serialize, 100e-6, "take_deltas(): encode one message")

    message = tl.attestation_message(tl.CLAIMED, list_id, ids[0], tl.agent_id(bytes(keys[0].verify_key)), 1)
    record = tl.Record.sign(tl.CLAIMED, list_id, ids[0], keys[0], 1)
    row("sign an attestation (Ed25519, this project)", per_call(lambda: tl.Record.sign(tl.CLAIMED, list_id, ids[0],
                                                                                        keys[0], 1), 200), 5e-3)
    row("verify an attestation (Ed25519 + BLAKE3 agent id)", per_call(lambda: record.verifies(list_id), 200), 3e-3)
    try:
        from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey

        private = MLDSA65PrivateKey.generate()
        signature = private.sign(message)
        public = private.public_key()
        row("sign the same message (ML-DSA-65, upstream)", per_call(lambda: private.sign(message), 50), 5e-3,
            f"{len(signature):,}-byte signature")
        row("verify it (ML-DSA-65, upstream)", per_call(lambda: public.verify(signature, message), 50), 3e-3)
    except (ImportError, AttributeError) as error:
        row("ML-DSA-65 sign/verify", None, None, not_available("cryptography ML-DSA-65", error))
    return rows


TASKLIST_HEADERS = ["task-list operation", "measured", "target (seed)", "", "note"]


# ----- 3. RGA ------------------------------------------------------------------------------

def rga_rows(lengths: list[int]) -> list[list]:
    try:
        from benchmarks.rga_scaling import build
        from implementations.rga import RGA
    except ImportError as error:
        return [["RGA", not_available("implementations.rga", error)]]

    rows = []
    base: dict[str, float] = {}
    for length in lengths:
        rng = random.Random(length)
        doc = build(length)
        gc.collect()
        state_bytes = len(doc.state())
        peer = RGA(2)
        peer.merge(doc.state())
        ops = 2000

        def edits(doc=doc, rng=rng, ops=ops) -> None:
            for _ in range(ops // 2):
                doc.insert(rng.randint(0, len(doc)), "x")
                doc.delete(rng.randrange(len(doc)))

        per_edit = timed(edits, 5) / ops
        doc.take_deltas()

        # Remote: the peer makes one random insert; the delta is applied here.
        deltas = []
        for _ in range(200):
            peer.insert(rng.randint(0, len(peer)), "y")
            deltas.append(peer.take_deltas()[0])
        batches = iter([deltas[i : i + 40] for i in range(0, 200, 40)])

        def apply_batch(doc=doc, batches=batches) -> None:
            for delta in next(batches):
                doc.apply_delta(delta)

        per_remote = timed(apply_batch, 5) / 40
        base.setdefault("edit", per_edit)
        base.setdefault("remote", per_remote)
        rows.append([f"{length:,}", f"{state_bytes:,}", fmt_time(per_edit), f"{per_edit / base['edit']:.2f}x",
                     fmt_time(per_remote), f"{per_remote / base['remote']:.2f}x",
                     f"{math.log(length) / math.log(lengths[0]):.2f}x"])
    return rows


RGA_HEADERS = ["RGA characters", "state bytes", "local insert/delete", "growth", "apply remote insert", "growth",
               "log n would grow"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes only")
    parser.add_argument("--only", nargs="*", choices=["orset", "tasklist", "rga"], default=["orset", "tasklist", "rga"])
    args = parser.parse_args()
    started = time.perf_counter()
    if "orset" in args.only:
        sizes = [100, 1000] if args.quick else [100, 1000, 10_000]
        print("OR-Set: cost against state size (a quarter of the adds removed again)\n")
        print(tabulate(orset_rows(sizes), headers=ORSET_HEADERS, disable_numparse=True), end="\n\n")
    if "tasklist" in args.only:
        print("Task list against the seed document's targets (Ed25519 here; upstream ML-DSA-65 shown too)\n")
        print(tabulate(tasklist_rows(), headers=TASKLIST_HEADERS, disable_numparse=True), end="\n\n")
    if "rga" in args.only:
        lengths = [1000, 10_000] if args.quick else [1000, 10_000, 100_000, 1_000_000]
        print("RGA: one operation against document length (CPU time; growth: against the smallest document)\n")
        print(tabulate(rga_rows(lengths), headers=RGA_HEADERS, disable_numparse=True), end="\n\n")
    print(f"{time.perf_counter() - started:.1f} s elapsed in all. Medians of repeated runs in one process; "
          "the machine is noisy, compare within a run.")


if __name__ == "__main__":
    main()
