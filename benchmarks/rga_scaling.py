"""How the RGA's edits cost as the document grows to a million characters (ten with ``--full``).

    python benchmarks/rga_scaling.py [--full] [--sizes 1000 10000 ...] [--batch 4000]

Three tables, every figure CPU time of this process (``time.process_time``: on a shared
machine, less disturbed by other processes than elapsed time):

1. **Edits by document size.** A document of each size is built by a synthetic editing
   trace (seeded): bursts of typing at random places (1 to 12 characters) and of deletes (a
   sixth of the bursts), as people edit. Then, each after a full garbage collection, batches
   of: single inserts and deletes at uniformly random places (the worst case: every
   edit lands somewhere cold); the same synthetic bursts (the usual case); applying one-insert
   deltas a peer made at random places (remote edits); and single edits on a plain Python
   ``list`` of the same length, beside them; and the same uniformly random edits on a Loro
   text built by the same trace (a native B-tree in Rust: how much of the growth the memory
   hierarchy alone gives a logarithmic structure). Each kind is timed in ``--rounds`` batches (5)
   and the median shown: one batch is a few hundredths of a second, which a busy neighbour
   moves by tens of percent. All the documents are built first and each round times every
   size in turn, so the neighbours weigh on all sizes alike. ``growth`` is against the 10,000-character
   document; ``log n`` is how a logarithm of the length grows. A cost that grows like the
   length (10x, 100x) is a linear operation and a bug.
2. **The real trace replayed into one document many times.** The automerge-paper trace
   (``benchmarks/data``) replayed round after round into the same document, each round at a
   random place in what is there (10 rounds, about 1 M characters; 96 with ``--full``, about
   10 M), then the whole state encoded and loaded into a fresh replica.
3. **Hostile messages.** 40,000 inserts at the head with decreasing ids in one delta, and
   40,000 children of one element with decreasing ids: each must pass every sibling already
   there (quadratic in the previous implementation: 20,000 took 9 s).

These are measurements, never assertions: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import math
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from implementations.rga import RGA, encode_delta  # noqa: E402

TRACE_PLACES = (ROOT / "benchmarks" / "data" / "automerge-paper.json.gz", Path("/work/shared/data/automerge-paper.json.gz"))
REFERENCE = 10_000


def cpu(action: Callable[[], object]) -> float:
    start = time.process_time()
    action()
    return time.process_time() - start


def bursts(doc: RGA, rng: random.Random, edits: int, grow: bool) -> int:
    """Synthetic editing: typing and deleting bursts at random places; returns the edits made.
    With ``grow``, typing wins (a document being written); else the length stays level."""
    done = 0
    while done < edits:
        length = len(doc)
        if length > 12 and rng.random() < (1 / 6 if grow else 1 / 2):
            index = rng.randrange(length - 12)
            for _ in range(rng.randint(1, 12)):
                doc.delete(index)
                done += 1
        else:
            index = rng.randrange(length + 1)
            for offset in range(rng.randint(1, 12)):
                doc.insert(index + offset, "x")
                done += 1
    return done


class LoroText:
    """A Loro text with the editing calls the benchmark makes (``insert``, ``delete``, ``len``,
    ``take_deltas`` as the end of a transaction), so the same trace builds and edits it."""

    def __init__(self) -> None:
        from loro import LoroDoc

        self.doc = LoroDoc()
        self.doc.peer_id = 1
        self.text, self.length = self.doc.get_text("text"), 0

    def insert(self, index: int, character: str) -> None:
        self.text.insert(index, character)
        self.length += 1

    def delete(self, index: int) -> None:
        self.text.delete(index, 1)
        self.length -= 1

    def __len__(self) -> int:
        return self.length

    def take_deltas(self) -> list:
        self.doc.commit()
        return []


def loro_random_costs(sizes: list[int], rng: random.Random, batch: int, rounds: int) -> dict[int, float] | None:
    """Seconds per uniformly random edit on a Loro text built like ``build(size)``, per size (the
    median of ``rounds`` batches, each one transaction; every round times every size in turn),
    or None without Loro."""
    try:
        docs = {size: build(size, LoroText) for size in sizes}
    except ImportError:
        return None
    costs: dict[int, list[float]] = {size: [] for size in sizes}
    for number in range(rounds):
        for size in sizes if number % 2 == 0 else sizes[::-1]:
            doc = docs[size]
            places = [rng.random() for _ in range(batch)]
            gc.collect()
            costs[size].append(cpu(lambda doc=doc, places=places: (random_edits(doc, places), doc.take_deltas())) / batch)
    return {size: statistics.median(kind) for size, kind in costs.items()}


def build(size: int, make: Callable[[], object] = lambda: RGA(1)):
    doc = make()
    rng = random.Random(size)
    while len(doc) < size:
        bursts(doc, rng, min(10_000, size - len(doc)), grow=True)
        doc.take_deltas()
    return doc


def random_edits(doc: RGA, places: list[float]) -> None:
    """Single inserts and deletes in turn, each at a uniformly random place."""
    for k in range(0, len(places) - 1, 2):
        doc.insert(int(places[k] * (len(doc) + 1)), "y")
        doc.delete(int(places[k + 1] * len(doc)))


def edit_costs(doc: RGA, peer: RGA, rng: random.Random, batch: int) -> tuple[float, float, float]:
    """One timed batch of each kind on ``doc``, each after a full garbage collection: seconds
    per random edit, per bursty edit and per remote insert (``peer`` makes the remote inserts)."""
    places = [rng.random() for _ in range(batch)]
    gc.collect()
    random_s = cpu(lambda: random_edits(doc, places)) / batch
    gc.collect()
    started = time.process_time()
    made = bursts(doc, rng, batch, grow=False)
    bursty_s = (time.process_time() - started) / made
    doc.take_deltas()
    deltas = []
    for place in places[: batch // 4]:
        peer.insert(int(place * (len(peer) + 1)), "z")
        deltas.extend(peer.take_deltas())
    gc.collect()
    remote_s = cpu(lambda: [doc.apply_delta(delta) for delta in deltas]) / len(deltas)
    return random_s, bursty_s, remote_s


def per_edit_rows(sizes: list[int], batch: int, rounds: int) -> Iterator[list[str]]:
    # Every document is built first; then each round times every size in turn (the order
    # alternating), so that a busy neighbour weighs on all sizes alike and the growth column
    # compares like with like. Timed one size after the other, the same code's 1 M / 10 k
    # ratio of random edits ranged from 1.36x to 1.86x over five runs on this machine.
    built: dict[int, tuple[RGA, RGA, random.Random]] = {}
    rows = []
    for size in sizes:
        started = time.process_time()
        doc = build(size)
        seconds = time.process_time() - started
        peer = RGA(2)
        peer.merge(doc.state())
        built[size] = doc, peer, random.Random(size + 1)
        rows.append([size, sum(1 for _ in doc._runs()), seconds])
    costs: dict[int, list[tuple[float, float, float]]] = {size: [] for size in sizes}
    for number in range(rounds):
        for size in sizes if number % 2 == 0 else sizes[::-1]:
            costs[size].append(edit_costs(*built[size], batch))
    measured: dict[int, dict[str, float | None]] = {}
    for row in rows:
        size = row[0]
        random_s, bursty_s, remote_s = (statistics.median(kind) for kind in zip(*costs[size], strict=True))
        rng = built[size][2]
        places = [rng.random() for _ in range(batch)]
        plain = ["x"] * size
        list_batch = max(40, min(batch, 40_000_000 // max(size, 1)))  # a big list's insert is a long memmove

        def list_edits(plain: list = plain, places: list[float] = places[:list_batch]) -> None:
            for k in range(0, len(places) - 1, 2):
                plain.insert(int(places[k] * (len(plain) + 1)), "y")
                del plain[int(places[k + 1] * len(plain))]

        list_s = cpu(list_edits) / list_batch
        measured[size] = {"random": random_s, "bursty": bursty_s, "remote": remote_s}
        row += [random_s, bursty_s, remote_s, list_s]
        del plain
    del built
    gc.collect()
    loro = loro_random_costs(sizes, random.Random(1), batch, rounds)
    for size in sizes:
        measured[size]["loro"] = None if loro is None else loro[size]
    print("  timed", file=sys.stderr, flush=True)
    reference = measured.get(REFERENCE) or measured[sizes[0]]
    reference_size = REFERENCE if REFERENCE in measured else sizes[0]
    for size, runs, seconds_built, random_s, bursty_s, remote_s, list_s in rows:
        out = [f"{size:,}", f"{runs:,}", f"{seconds_built:.1f}"]
        for key, seconds in (("random", random_s), ("bursty", bursty_s), ("remote", remote_s), ("loro", measured[size]["loro"])):
            if seconds is None:
                out += ["n/a", "n/a"]  # Loro not installed
                continue
            out += [f"{seconds * 1e6:.2f}", f"{seconds / reference[key]:.2f}x"]
            if key == "remote":
                out += [f"{list_s * 1e6:.2f}"]
        out += [f"{math.log(size) / math.log(reference_size):.2f}x"]
        yield out


EDIT_HEADERS = ["characters", "runs", "build s", "random µs/edit", "growth", "bursty µs/edit", "growth",
                "remote µs/insert", "growth", "list µs/edit (random)", "Loro text µs/edit (random)", "growth",
                "log n"]


def load_patches() -> list[tuple[int, int, str]] | None:
    path = next((p for p in TRACE_PLACES if p.exists()), None)
    if path is None:
        return None
    with gzip.open(path) as file:
        data = json.load(file)
    return [tuple(patch) for txn in data["txns"] for patch in txn["patches"]]


def replayed_rows(rounds: int) -> list[list] | None:
    patches = load_patches()
    if patches is None:
        return None
    doc = RGA(1)
    insert, delete = doc.insert, doc.delete
    rng = random.Random(96)
    rows = []
    report = sorted({1, 2, 5, 10, 20, 50, rounds} & set(range(1, rounds + 1)))
    for number in range(1, rounds + 1):
        base = rng.randrange(len(doc) + 1)

        def replay(base: int = base) -> None:
            for position, deleted, text in patches:
                for _ in range(deleted):
                    delete(base + position)
                for offset, character in enumerate(text):
                    insert(base + position + offset, character)

        seconds = cpu(replay)
        doc.take_deltas()
        if number in report:
            rows.append([number, f"{len(doc):,}", f"{seconds:.2f}", f"{seconds / len(patches) * 1e6:.2f}"])
    state: list[bytes] = []
    encode_s = cpu(lambda: state.append(doc.state()))
    fresh = RGA(2)
    load_s = cpu(lambda: fresh.merge(state[0]))
    same = fresh.value() == doc.value()
    rows.append(["encode the state", f"{len(state[0]):,} bytes", f"{encode_s:.2f}", ""])
    rows.append(["load it into a fresh replica", "equal" if same else "DIFFERENT", f"{load_s:.2f}", ""])
    return rows


def hostile_rows() -> list[list]:
    rows = []
    count = 40_000
    flood = encode_delta([((count - k, 9), None, "x") for k in range(count)], [])
    doc = RGA(1)
    rows.append(["40,000 head inserts, decreasing ids", f"{len(flood):,}", f"{cpu(lambda: doc.apply_delta(flood)):.2f}"])
    doc = RGA(1)
    for index in range(1000):
        doc.insert(index, "d")
    parent = doc.id_at(500)
    siblings = encode_delta([((2000 + count - k, 9), parent, "y") for k in range(count)], [])
    rows.append(["40,000 children of one element, decreasing ids", f"{len(siblings):,}",
                 f"{cpu(lambda: doc.apply_delta(siblings)):.2f}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="go to 10 M characters (minutes, about 2 GB)")
    parser.add_argument("--sizes", type=int, nargs="+", help="document sizes (default 1k, 10k, 100k, 1M; --full adds 10M)")
    parser.add_argument("--batch", type=int, default=4_000, help="timed edits per size, kind and round")
    parser.add_argument("--rounds", type=int, default=5, help="timed batches per size and kind (the median is shown)")
    args = parser.parse_args()
    sizes = args.sizes or [1_000, 10_000, 100_000, 1_000_000] + ([10_000_000] if args.full else [])
    print(f"RGA edits by document size (CPU time per edit, the median of {args.rounds} batches of {args.batch:,}; "
          "growth against the 10,000-character document)\n")
    print(tabulate(list(per_edit_rows(sizes, args.batch, args.rounds)), headers=EDIT_HEADERS, disable_numparse=True,
                   colalign=("right",) * len(EDIT_HEADERS)), end="\n\n")
    rows = replayed_rows(96 if args.full else 10)
    if rows is None:
        print("automerge-paper trace: not found in", ", ".join(map(str, TRACE_PLACES)))
    else:
        print("The automerge-paper trace replayed into one document, round after round (CPU seconds)\n")
        print(tabulate(rows, headers=["round", "characters after it", "CPU s", "µs/edit"], disable_numparse=True),
              end="\n\n")
    print("Hostile messages (CPU seconds to apply)\n")
    print(tabulate(hostile_rows(), headers=["one delta of", "bytes", "CPU s"], disable_numparse=True))


if __name__ == "__main__":
    main()
