"""Replay a real editing trace into each sequence implementation, sync it, and compare.

    python benchmarks/editing_trace.py [--repeat N] [--only NAME ...]

The trace (``benchmarks/data/automerge-paper.json.gz``, see its README) is 259,778
single-character edits, made while a 105 kB paper was written. Each implementation:

1. replays every edit as a local edit at one replica (``edits``);
2. encodes its full state as bytes (``encode``);
3. a fresh replica applies those bytes (``apply``);

and both replicas' text must equal the trace's ``endContent``, or the run fails. Rows:

* ``list``: a Python ``list`` of characters, insert/delete by index; its state is the text
  as UTF-8. The floor: no replication metadata at all.
* ``rga``: ``implementations.rga.RGA``, ours. Its local edits also queue the deltas a
  ``take_deltas`` would send (never taken here), as a deployed replica's would.
* ``pycrdt-text``: pycrdt (Yrs) ``Text``, one transaction per edit (pycrdt's default for a
  bare ``insert``); its state is ``Doc.get_update()``.

Every implementation runs in a fresh Python process (``--repeat`` times; the table shows
the median of each column), so no run inherits another's heap or warm caches. Memory is
the peak resident set size (Linux ``VmHWM``, reset through ``/proc/self/clear_refs`` once the
trace is loaded) minus the resident size at that moment: resident memory, because Yrs keeps
its document in Rust allocations that ``tracemalloc`` cannot see (it would report pycrdt as
almost free) and because tracemalloc slows the Python implementations it traces.
Where the peak cannot be reset, ``ru_maxrss`` is used instead and the column says so.

Ratios are to the ``list`` row of the same run: compare those, not the seconds, across
machines. This prints measurements, never asserts a time.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import pickle
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRACE = ROOT / "benchmarks" / "data" / "automerge-paper.json.gz"

#: One edit: at ``position``, delete ``deleted`` characters, then insert ``text``.
Edit = tuple[int, int, str]


def load_trace(path: Path = TRACE) -> tuple[list[Edit], str]:
    """The trace's edits, in order, and the text they must end with."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        trace = json.load(f)
    if trace.get("startContent", "") != "":
        raise ValueError(f"{path}: expected an empty startContent")
    edits = [(position, deleted, text) for txn in trace["txns"] for position, deleted, text in txn["patches"]]
    return edits, trace["endContent"]


class CompactTrace:
    """The edits as three flat columns, cheap to load in a worker.

    Parsing the JSON trace allocates and frees about 150 MB; a worker that did it would
    measure the implementations in a heap full of freed memory they reuse without growing the
    resident size. So the parent parses once and hands each worker this form.
    """

    def __init__(self, edits: list[Edit], end_content: str) -> None:
        self.positions = array("l", (e[0] for e in edits))
        self.deleted = array("l", (e[1] for e in edits))
        self.inserted = [e[2] for e in edits]
        self.end_content = end_content

    def __len__(self) -> int:
        return len(self.inserted)

    def edits(self) -> Iterator[Edit]:
        return zip(self.positions, self.deleted, self.inserted, strict=True)

    def save(self, path: Path) -> None:
        with open(path, "wb") as f:
            pickle.dump(self, f, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def load(path: Path) -> CompactTrace:
        with open(path, "rb") as f:
            return pickle.load(f)


# ----- memory ----------------------------------------------------------------------------

def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class PeakMemory:
    """Peak resident memory from now on, in bytes, over the resident memory of now."""

    def __init__(self) -> None:
        gc.collect()
        self.method = "VmHWM"
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM to the current VmRSS (Linux >= 4.0)
        except OSError:
            self.method = "ru_maxrss (peak since start: includes loading the trace)"
        self.baseline = _status_kib("VmRSS")
        if self.baseline is None:
            self.method = "ru_maxrss (peak since start: includes loading the trace)"
            self.baseline = 0

    def peak(self) -> int:
        if self.method == "VmHWM":
            return (_status_kib("VmHWM") - self.baseline) * 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - self.baseline * 1024


# ----- the implementations -----------------------------------------------------------------
# Each returns four callables: replay(edits) -> replica, encode(replica) -> bytes,
# apply(bytes) -> a fresh replica holding them, and text(replica) -> str for the check.


def list_impl():
    def replay(edits: Iterable[Edit]) -> list[str]:
        doc: list[str] = []
        for position, deleted, text in edits:
            # Slices, not list.insert/pop: CPython 3.11 moves a slice with memmove but
            # list.insert pointer by pointer, about 2.5 times slower on this trace.
            if deleted:
                del doc[position : position + deleted]
            if text:
                doc[position:position] = text
        return doc

    def encode(doc: list[str]) -> bytes:
        return "".join(doc).encode("utf-8")

    def apply(state: bytes) -> list[str]:
        return list(state.decode("utf-8"))

    return replay, encode, apply, "".join


def rga_impl():
    from implementations.rga import RGA

    def replay(edits: Iterable[Edit]) -> RGA:
        doc = RGA(1)
        insert, delete = doc.insert, doc.delete
        for position, deleted, text in edits:
            for _ in range(deleted):
                delete(position)
            for offset, char in enumerate(text):
                insert(position + offset, char)
        return doc

    def encode(doc: RGA) -> bytes:
        return doc.state()

    def apply(state: bytes) -> RGA:
        doc = RGA(2)
        doc.merge(state)
        return doc

    return replay, encode, apply, lambda doc: "".join(doc.value())


def pycrdt_impl():
    from pycrdt import Doc, Text

    def replay(edits: Iterable[Edit]) -> Text:
        doc = Doc(client_id=1)
        text = doc.get("text", type=Text)
        insert = text.insert
        for position, deleted, inserted in edits:
            # Every character of this trace is ASCII, so pycrdt's UTF-8 byte offsets are
            # character offsets (the check against endContent would catch it otherwise).
            if deleted:
                del text[position : position + deleted]
            if inserted:
                insert(position, inserted)
        return text

    def encode(text: Text) -> bytes:
        return text.doc.get_update()

    def apply(state: bytes) -> Text:
        doc = Doc(client_id=2)
        text = doc.get("text", type=Text)
        doc.apply_update(state)
        return text

    return replay, encode, apply, str


IMPLEMENTATIONS: dict[str, Callable] = {"list": list_impl, "rga": rga_impl, "pycrdt-text": pycrdt_impl}


def measure(name: str, trace: CompactTrace) -> dict:
    """Run one implementation over the trace, in this process; the figures as a dict."""
    end_content = trace.end_content
    try:
        replay, encode, apply, text_of = IMPLEMENTATIONS[name]()
    except ImportError as error:
        return {"name": name, "error": f"not available yet ({error})"}
    memory = PeakMemory()
    wall = time.perf_counter()
    t0 = time.process_time()
    replica = replay(trace.edits())
    t1 = time.process_time()
    peak_after_edits = memory.peak()
    state = encode(replica)
    t2 = time.process_time()
    received = apply(bytes(state))
    t3 = time.process_time()
    wall = time.perf_counter() - wall
    peak = memory.peak()
    for who, doc in (("the editing replica", replica), ("the receiving replica", received)):
        got = text_of(doc)
        if got != end_content:
            same = next((i for i, (a, b) in enumerate(zip(got, end_content, strict=False)) if a != b), None)
            where = min(len(got), len(end_content)) if same is None else same
            return {"name": name, "error": f"WRONG TEXT at {who}: {len(got)} characters, "
                    f"expected {len(end_content)}; first difference at {where}"}
    return {
        "name": name, "edits": len(trace), "edit_s": t1 - t0, "encode_s": t2 - t1, "apply_s": t3 - t2,
        "total_s": t3 - t0, "wall_s": wall, "state_bytes": len(state),
        "edits_peak_bytes": peak_after_edits, "peak_bytes": peak, "memory_method": memory.method,
    }


def run_in_subprocess(name: str, compact: Path) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--worker", name, "--compact", str(compact)],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"name": name, "error": f"the worker failed: {tail}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def median_of(runs: list[dict]) -> dict:
    good = [r for r in runs if "error" not in r]
    if len(good) < len(runs):
        return next(r for r in runs if "error" in r)
    keys = ("edit_s", "encode_s", "apply_s", "total_s", "wall_s", "state_bytes", "edits_peak_bytes", "peak_bytes")
    result = dict(good[0])
    result.update({k: statistics.median(r[k] for r in good) for k in keys})
    return result


def table(results: list[dict], repeat: int) -> str:
    from tabulate import tabulate

    floor = next((r for r in results if r["name"] == "list" and "error" not in r), None)
    rows = []
    for r in results:
        if "error" in r:
            rows.append([r["name"], r["error"], *[""] * 11])
            continue

        def ratio(key: str, r: dict = r) -> str:
            return f"{r[key] / floor[key]:.1f}x" if floor and floor[key] else "-"

        rows.append([
            r["name"], f"{r['edit_s']:.3f}", f"{r['encode_s']:.3f}", f"{r['apply_s']:.3f}", f"{r['total_s']:.3f}",
            f"{r['wall_s']:.2f}",
            f"{r['edit_s'] / r['edits'] * 1e6:.2f}", f"{r['state_bytes']:,}",
            f"{r['edits_peak_bytes'] / 2**20:.1f}", f"{r['peak_bytes'] / 2**20:.1f}",
            ratio("total_s"), ratio("state_bytes"), ratio("peak_bytes"),
        ])
    headers = ["implementation", "edits s", "encode s", "apply s", "total s", "wall s", "µs/edit", "state bytes",
               "MiB edits", "MiB peak", "total vs list", "bytes vs list", "memory vs list"]
    methods = sorted({r["memory_method"] for r in results if "memory_method" in r})
    edits = next((r["edits"] for r in results if "edits" in r), "?")
    notes = (f"\n{edits:,} edits; median of {repeat} fresh process(es) per row. Seconds are CPU time of the "
             "worker process (wall s: elapsed, for the whole row).\nPeak memory: "
             f"{', '.join(methods)} over the resident size after loading the trace, after the edits (MiB edits) "
             "and over the\nwhole row (MiB peak: both replicas and the bytes between them). Ratios are to the list "
             "row of this run; seconds vary\nfrom machine to machine and run to run: compare ratios.")
    return tabulate(rows, headers=headers, disable_numparse=True, colalign=("left",) + ("right",) * 12) + notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="fresh processes per implementation (median shown)")
    parser.add_argument("--only", nargs="*", choices=sorted(IMPLEMENTATIONS), help="run only these implementations")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--compact", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        sys.path.insert(0, str(ROOT))
        print(json.dumps(measure(args.worker, CompactTrace.load(args.compact))))
        return
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    names = args.only or list(IMPLEMENTATIONS)
    results = []
    with tempfile.TemporaryDirectory(prefix="editing-trace-") as scratch:
        compact = Path(scratch) / "trace.pickle"
        CompactTrace(*load_trace()).save(compact)
        for name in names:
            runs = []
            for _ in range(args.repeat):
                runs.append(run_in_subprocess(name, compact))
                if "error" in runs[-1]:
                    break
            results.append(median_of(runs))
            print(f"  {name}: done", file=sys.stderr, flush=True)
    print(table(results, args.repeat))


if __name__ == "__main__":
    main()
