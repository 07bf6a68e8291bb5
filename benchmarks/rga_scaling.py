"""RGA local edits per second by document size, beside a plain list, and a real trace replayed.

    python benchmarks/rga_scaling.py [--sizes 1000 10000 100000] [--batch 4000]

1. For each size, a document of that many characters is built by inserts at random
   positions (a fifth of them deleted again, so there are tombstones), then a batch of
   inserts and deletes at random positions (from a seeded ``random.Random``, the same for
   both columns) is timed on ``implementations.rga.RGA`` and on a plain Python ``list``.
   The RGA should stay roughly flat as the document grows (its cost is logarithmic in the
   number of chunks plus a chunk's length); the list's ``insert`` is a memmove, linear but
   very fast at these sizes.
2. The automerge-paper editing trace (``benchmarks/data`` or ``/work/shared/data``, see its
   README) replayed as local edits into one RGA, checked against ``endContent``, then its
   full state encoded, decoded and loaded into a fresh replica.

Times are CPU time of this process (``time.process_time``), which a shared machine disturbs
less than elapsed time. These are measurements, never assertions: compare the ratio column
within one run. The whole script takes well under a minute.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import time
from functools import partial
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from implementations.rga import RGA, decode_state  # noqa: E402

TRACE_PLACES = (ROOT / "benchmarks" / "data" / "automerge-paper.json.gz", Path("/work/shared/data/automerge-paper.json.gz"))


def build(size: int, seed: int) -> tuple[RGA, list]:
    rng = random.Random(seed)
    doc, plain = RGA(1), []
    while len(plain) < size:
        if plain and rng.random() < 0.2:
            index = rng.randrange(len(plain))
            doc.delete(index)
            del plain[index]
        else:
            index = rng.randrange(len(plain) + 1)
            doc.insert(index, "x")
            plain.insert(index, "x")
    return doc, plain


def batch(size: int, count: int, seed: int) -> list[tuple[bool, int]]:
    """``count`` edits at random positions that keep the length near ``size``: (insert?, index)."""
    rng = random.Random(seed)
    edits, length = [], size
    for _ in range(count):
        insert = rng.random() < 0.5
        edits.append((insert, rng.randrange(length + 1) if insert else rng.randrange(length)))
        length += 1 if insert else -1
    return edits


def edit_rga(doc: RGA, edits: list[tuple[bool, int]]) -> None:
    insert, delete = doc.insert, doc.delete
    for is_insert, index in edits:
        if is_insert:
            insert(index, "y")
        else:
            delete(index)


def edit_list(plain: list, edits: list[tuple[bool, int]]) -> None:
    for is_insert, index in edits:
        if is_insert:
            plain.insert(index, "y")
        else:
            del plain[index]


def timed(function) -> float:
    start = time.process_time()
    function()
    return time.process_time() - start


def scaling(sizes: list[int], count: int) -> None:
    rows = []
    for size in sizes:
        doc, plain = build(size, seed=size)
        edits = batch(size, count, seed=size + 1)
        rga_seconds, list_seconds = timed(partial(edit_rga, doc, edits)), timed(partial(edit_list, plain, edits))
        assert doc.value() == plain, "the RGA and the list disagree"
        rows.append([f"{size:,}", f"{count / rga_seconds:,.0f}", f"{count / list_seconds:,.0f}",
                     f"{rga_seconds / list_seconds:.1f}x"])
    print(tabulate(rows, headers=["document size", "RGA edits/s", "list edits/s", "RGA time / list time"],
                   colalign=("right", "right", "right", "right")))


def trace() -> None:
    path = next((p for p in TRACE_PLACES if p.exists()), None)
    if path is None:
        print("\nautomerge-paper trace: not found in", ", ".join(map(str, TRACE_PLACES)))
        return
    with gzip.open(path) as file:
        data = json.load(file)
    patches = [patch for txn in data["txns"] for patch in txn["patches"]]
    doc = RGA(1)
    insert, delete = doc.insert, doc.delete

    def replay() -> None:
        for position, deleted, text in patches:
            for _ in range(deleted):
                delete(position)
            for offset, character in enumerate(text):
                insert(position + offset, character)

    replay_seconds = timed(replay)
    same = "".join(doc.value()) == data["endContent"]
    state: list[bytes] = []
    encode_seconds = timed(lambda: state.append(doc.state()))
    decoded = []
    decode_seconds = timed(lambda: decoded.append(decode_state(state[0])))
    fresh = RGA(2)
    load_seconds = timed(lambda: fresh.apply_state(decoded[0]))
    print(f"\nautomerge-paper trace ({path}): {len(patches):,} edits, {len(doc):,} characters at the end")
    print(tabulate([
        ["replay as local edits", f"{replay_seconds:.2f}", "equals endContent" if same else "DIFFERS from endContent"],
        ["encode the full state", f"{encode_seconds:.2f}", f"{len(state[0]):,} bytes"],
        ["decode and check it", f"{decode_seconds:.2f}", ""],
        ["load it into a fresh replica", f"{load_seconds:.2f}", "equal" if fresh.value() == doc.value() else "DIFFERENT"],
    ], headers=["step", "CPU seconds", ""]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--batch", type=int, default=4_000, help="timed edits per size")
    args = parser.parse_args()
    scaling(args.sizes, args.batch)
    trace()


if __name__ == "__main__":
    main()
