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
* ``rga``: ``implementations.rga.RGA``, ours, sending its deltas (``take_deltas``) every
  1,000 edits as a deployed replica would: like for like with Yrs, which keeps no queue.
* ``rga-queue``: the same, never taking its deltas: what the compacted queue costs.
* ``pycrdt-text``: pycrdt (Yrs) ``Text``, one transaction per edit (pycrdt's default for a
  bare ``insert``); its state is ``Doc.get_update()``.
* ``loro-text``: Loro's ``LoroText`` (Rust, through the ``loro`` package), one commit per
  edit as the rga machine drives it; its state is a snapshot (``ExportMode.Snapshot``). Loro
  decodes a snapshot lazily, so ``apply`` reads the text once to include the decoding.
* ``pycrdt-array``, ``loro-list``, ``loro-movable-list``: the same libraries' lists of
  one-character strings, as the rga machine checks them (one insert per character).
* ``yjs-text``, ``yjs-array``, ``automerge-text``, ``automerge-list``: Yjs ``Y.Text`` and
  ``Y.Array`` (one transaction per edit), Automerge text (``A.splice``) and a list of
  one-character strings (one change per edit) in Node.js, the libraries the JS adapters
  check, from their lock file (``npm ci --prefix machines/adapters/js``). The edits run
  inside Node (``benchmarks/js/editing_trace.mjs``): the library's own cost, not the
  adapters' pipe. Their memory is Node's: resident growth, the V8 heap in use plus memory
  held outside it (array buffers, WebAssembly memory) as ``allocated``, and the peak of
  ``maxRSS``; no Python heap. A row whose library is missing says so and the others run.
  ``automerge-list`` runs only when named (``--only automerge-list``): it did not finish in
  30 minutes here.

Every figure comes from fresh Python processes (``--repeat`` of each; the table shows
medians), which get the trace in compact form from the parent, so none measures in a heap
full of someone else's garbage. Seconds are CPU time of the worker process
(``time.process_time``; Yrs runs in the same thread). Memory is measured three ways, so a
native library is not flattered by a measure that cannot see it:

* **resident**: ``VmRSS`` growth after the edits (deltas drained, garbage collected), and the
  peak (``VmHWM``, reset through ``/proc/self/clear_refs``) over the whole row, both over the
  resident size once the trace is loaded. Resident growth alone misses heap pages an
  allocator reuses;
* **allocated**: in a process run with ``PYTHONMALLOC=malloc``, so that Python objects and
  Rust allocations alike go through the C allocator, the growth of its bytes in use
  (glibc ``mallinfo2``: ``uordblks + hblkhd``) after the edits. One allocator counts
  everything;
* **Python heap**: ``tracemalloc``'s current size after the edits and its peak over the row,
  in a third process (it slows the Python rows and cannot see Yrs's heap at all; that
  process's resident peak is not used, as it holds tracemalloc's own records).

``memory`` is the larger of resident and allocated growth after the edits; ``peak`` the
largest peak any of the three processes saw. Ratios are to the rows named in the header, of
the same run: compare those, not seconds or MiB, across machines. This prints measurements,
never asserts a time.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import gzip
import json
import os
import pickle
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
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

    def resident(self) -> int:
        """Resident growth since the start, in bytes."""
        return ((_status_kib("VmRSS") or 0) - self.baseline) * 1024


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def c_heap_bytes() -> int | None:
    """Bytes the C allocator has handed out and not got back (glibc ``mallinfo2``), or None."""
    try:
        libc = ctypes.CDLL(None)
        mallinfo2 = libc.mallinfo2
    except (OSError, AttributeError):
        return None
    mallinfo2.restype = _MallInfo2
    info = mallinfo2()
    return info.uordblks + info.hblkhd


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


def rga_impl(drain_every: int | None = 1000):
    from implementations.rga import RGA

    def replay(edits: Iterable[Edit]) -> RGA:
        doc = RGA(1)
        insert, delete, take = doc.insert, doc.delete, doc.take_deltas
        countdown = drain_every or 0
        for position, deleted, text in edits:
            for _ in range(deleted):
                delete(position)
            for offset, char in enumerate(text):
                insert(position + offset, char)
            if drain_every:
                countdown -= 1
                if not countdown:
                    take()
                    countdown = drain_every
        if drain_every:
            take()
        return doc

    def encode(doc: RGA) -> bytes:
        return doc.state()

    def apply(state: bytes) -> RGA:
        doc = RGA(2)
        doc.merge(state)
        return doc

    return replay, encode, apply, lambda doc: "".join(doc.value())


def _insert_items(sequence, position: int, inserted: str) -> None:
    """An insert into a sequence of items: one item per character, as an editor's list holds them."""
    for offset, char in enumerate(inserted):
        sequence.insert(position + offset, char)


def _insert_text(text, position: int, inserted: str) -> None:
    text.insert(position, inserted)


def pycrdt_impl(kind: str = "text"):
    """pycrdt (Yrs): a ``Text``, or (``kind="array"``) an ``Array`` of one-character strings."""
    from pycrdt import Array, Doc, Text

    shared, name, put = (Text, "text", _insert_text) if kind == "text" else (Array, "items", _insert_items)

    def sequence(client_id: int):
        return Doc(client_id=client_id).get(name, type=shared)

    def replay(edits: Iterable[Edit]):
        items = sequence(1)
        for position, deleted, inserted in edits:
            # Every character of this trace is ASCII, so pycrdt's UTF-8 byte offsets are
            # character offsets (the check against endContent would catch it otherwise).
            if deleted:
                del items[position : position + deleted]
            if inserted:
                put(items, position, inserted)
        return items

    def apply(state: bytes):
        items = sequence(2)
        items.doc.apply_update(state)
        return items

    text = str if kind == "text" else lambda items: "".join(items.to_py())
    return replay, lambda items: items.doc.get_update(), apply, text


def loro_impl(kind: str = "text"):
    """Loro: a ``LoroText``, or (``kind="list"`` or ``"movable-list"``) a list of one-character strings."""
    from loro import ExportMode, LoroDoc

    if kind == "text":
        put = _insert_text

        def container(doc):
            return doc.get_text("text")

        def text(doc) -> str:
            return doc.get_text("text").to_string()
    else:
        put = _insert_items

        def container(doc):
            return doc.get_movable_list("items") if kind == "movable-list" else doc.get_list("items")

        def text(doc) -> str:
            return "".join(container(doc).to_vec())

    def replay(edits: Iterable[Edit]):
        doc = LoroDoc()
        doc.peer_id = 1
        items, commit = container(doc), doc.commit
        for position, deleted, inserted in edits:
            if deleted:
                items.delete(position, deleted)
            if inserted:
                put(items, position, inserted)
            commit()
        return doc

    def apply(state: bytes):
        doc = LoroDoc()
        doc.peer_id = 2
        doc.import_(state)
        text(doc)  # Loro decodes a snapshot lazily: this makes it decode here, not in the check
        return doc

    return replay, lambda doc: bytes(doc.export(ExportMode.Snapshot())), apply, text


#: Every sequence implementation with a row in this process, by name: a factory of
#: (replay, encode, apply, text).
IMPLEMENTATIONS: dict[str, Callable] = {
    "list": list_impl,
    "rga": rga_impl,
    "rga-queue": lambda: rga_impl(drain_every=None),
    "pycrdt-text": pycrdt_impl,
    "loro-text": loro_impl,
    "pycrdt-array": lambda: pycrdt_impl("array"),
    "loro-list": lambda: loro_impl("list"),
    "loro-movable-list": lambda: loro_impl("movable-list"),
}
#: Rows replayed in Node.js by ``benchmarks/js/editing_trace.mjs``, with the packages of the JS adapters.
NODE_ROWS = ("yjs-text", "yjs-array", "automerge-text", "automerge-list")
#: Rows that run only when ``--only`` names them: Automerge's list of one-character strings took
#: more than 10 CPU minutes (30 elapsed) on this trace here without finishing.
SLOW_ROWS = ("automerge-list",)
NODE_TIMEOUT_S = 1200
NODE_SCRIPT = ROOT / "benchmarks" / "js" / "editing_trace.mjs"
NODE_PACKAGES = ROOT / "machines" / "adapters" / "js"
#: The measuring processes of a row: plain, every allocation through malloc, tracemalloc.
MODES = ("plain", "malloc", "tracemalloc")


def measure(name: str, trace: CompactTrace, mode: str) -> dict:
    """Run one implementation over the trace, in this process; the figures as a dict."""
    end_content = trace.end_content
    try:
        replay, encode, apply, text_of = IMPLEMENTATIONS[name]()
    except ImportError as error:
        return {"name": name, "error": f"not available yet ({error})"}
    memory = PeakMemory()
    heap_before = c_heap_bytes()
    if mode == "tracemalloc":
        tracemalloc.start()
    wall = time.perf_counter()
    t0 = time.process_time()
    replica = replay(trace.edits())
    t1 = time.process_time()
    gc.collect()
    after_edits = {"resident": memory.resident(), "heap": (c_heap_bytes() or 0) - (heap_before or 0)}
    if mode == "tracemalloc":
        after_edits["python"] = tracemalloc.get_traced_memory()[0]
    t1b = time.process_time()
    state = encode(replica)
    t2 = time.process_time()
    received = apply(bytes(state))
    t3 = time.process_time()
    wall = time.perf_counter() - wall
    result = {"name": name, "mode": mode, "edits": len(trace), "edit_s": t1 - t0, "encode_s": t2 - t1b,
              "apply_s": t3 - t2, "total_s": (t1 - t0) + (t3 - t1b), "wall_s": wall, "state_bytes": len(state),
              "peak_bytes": memory.peak(), "memory_method": memory.method}
    if mode == "tracemalloc":
        # Not VmHWM here: it counts tracemalloc's own records of every allocation.
        result["peak_bytes"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        result["python_bytes"] = after_edits["python"]
    elif mode == "malloc":
        result["allocated_bytes"] = after_edits["heap"] if heap_before is not None else None
    else:
        result["resident_bytes"] = after_edits["resident"]
    for who, doc in (("the editing replica", replica), ("the receiving replica", received)):
        got = text_of(doc)
        if got != end_content:
            same = next((i for i, (a, b) in enumerate(zip(got, end_content, strict=False)) if a != b), None)
            where = min(len(got), len(end_content)) if same is None else same
            return {"name": name, "error": f"WRONG TEXT at {who}: {len(got)} characters, "
                    f"expected {len(end_content)}; first difference at {where}"}
    return result


def write_binary_trace(trace: CompactTrace, path: Path) -> None:
    """The trace as the Node half reads it: little-endian int32 count, inserted length, final text
    length; then the positions, deleted counts and inserted lengths (int32 each); then the inserted
    characters and the final text, UTF-8."""
    inserted = "".join(trace.inserted).encode("utf-8")
    end = trace.end_content.encode("utf-8")
    columns = array("i", trace.positions) + array("i", trace.deleted) + array("i", (len(t) for t in trace.inserted))
    if sys.byteorder != "little":
        columns.byteswap()
    header = array("i", [len(trace), len(inserted), len(end)])
    if sys.byteorder != "little":
        header.byteswap()
    path.write_bytes(header.tobytes() + columns.tobytes() + inserted + end)


def run_in_node(name: str, binary: Path) -> dict:
    if not (NODE_PACKAGES / "node_modules").is_dir():
        return {"name": name, "error": "not available (npm ci --prefix machines/adapters/js)"}
    try:
        done = subprocess.run(["node", "--expose-gc", str(NODE_SCRIPT), str(NODE_PACKAGES), name, str(binary)],
                              cwd=binary.parent, capture_output=True, text=True, check=False, timeout=NODE_TIMEOUT_S)
    except FileNotFoundError:
        return {"name": name, "error": "not available (no node on PATH)"}
    except subprocess.TimeoutExpired:
        return {"name": name, "error": f"did not finish within {NODE_TIMEOUT_S} s"}
    lines = done.stdout.strip().splitlines()
    if not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"name": name, "error": f"the worker failed: {tail}"}
    return json.loads(lines[-1])


def run_in_subprocess(name: str, compact: Path, mode: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if mode == "malloc":
        env["PYTHONMALLOC"] = "malloc"
    done = subprocess.run(
        [sys.executable, __file__, "--worker", name, "--mode", mode, "--compact", str(compact)],
        cwd=ROOT, capture_output=True, text=True, check=False, env=env,
    )
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"name": name, "error": f"the worker failed: {tail}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def median_of(runs: list[dict]) -> dict:
    """One row from every mode's runs: times from the plain runs, each memory figure from its
    own mode, peaks the largest any mode saw (medians over repeats)."""
    bad = next((r for r in runs if "error" in r), None)
    if bad is not None:
        return bad
    # A Node row measures everything in its one kind of process.
    node = runs[0]["mode"] == "node"
    timed = "node" if node else "plain"
    result = dict(next(r for r in runs if r["mode"] == timed))

    def median(key: str, mode: str) -> float | None:
        values = [r[key] for r in runs if r["mode"] == mode and r.get(key) is not None]
        return statistics.median(values) if values else None

    for key in ("edit_s", "encode_s", "apply_s", "total_s", "wall_s", "state_bytes", "resident_bytes"):
        result[key] = median(key, timed)
    result["allocated_bytes"] = median("allocated_bytes", "node" if node else "malloc")
    result["python_bytes"] = None if node else median("python_bytes", "tracemalloc")
    result["peak_bytes"] = max(median("peak_bytes", mode) or 0 for mode in (("node",) if node else MODES))
    result["memory_bytes"] = max(result["resident_bytes"], result["allocated_bytes"] or 0)
    return result


def table(results: list[dict], repeat: int) -> str:
    from tabulate import tabulate

    def find(name: str) -> dict | None:
        return next((r for r in results if r["name"] == name and "error" not in r), None)

    floor, yrs = find("list"), find("pycrdt-text")

    def mib(value: float | None) -> str:
        return "-" if value is None else f"{value / 2**20:.1f}"

    def ratio(r: dict, key: str, reference: dict | None) -> str:
        return f"{r[key] / reference[key]:.2f}x" if reference and reference.get(key) else "-"

    rows = []
    for r in results:
        if "error" in r:
            rows.append([r["name"], r["error"], *[""] * 13])
            continue
        rows.append([
            r["name"], f"{r['edit_s']:.3f}", f"{r['encode_s']:.3f}", f"{r['apply_s']:.3f}", f"{r['total_s']:.3f}",
            f"{r['edit_s'] / r['edits'] * 1e6:.2f}", f"{r['state_bytes']:,}",
            mib(r["resident_bytes"]), mib(r["allocated_bytes"]), mib(r["python_bytes"]), mib(r["memory_bytes"]),
            mib(r["peak_bytes"]), ratio(r, "total_s", floor), ratio(r, "memory_bytes", yrs), ratio(r, "peak_bytes", yrs),
        ])
    headers = ["implementation", "edits s", "encode s", "apply s", "total s", "µs/edit", "state bytes",
               "resident MiB", "allocated MiB", "Python heap MiB", "memory MiB", "peak MiB",
               "total vs list", "memory vs Yrs", "peak vs Yrs"]
    methods = sorted({r["memory_method"] for r in results if "memory_method" in r})
    edits = next((f"{r['edits']:,}" for r in results if "edits" in r), "?")
    notes = "\n".join([
        "",
        f"{edits} edits; median of {repeat} fresh process(es) per row and measuring mode. Seconds: CPU time of the "
        "worker process (total = edits + encode + apply).",
        "After the edits (deltas taken, garbage collected): resident = VmRSS growth; allocated = C allocator bytes "
        "in use (mallinfo2)",
        "under PYTHONMALLOC=malloc, which counts Python objects and Yrs alike; Python heap = tracemalloc (blind to "
        "Yrs). memory = max(resident, allocated).",
        f"peak = the largest peak over edits, encode and apply: {', '.join(methods)} of the plain and malloc "
        "processes, tracemalloc's peak. Yrs = the pycrdt-text row.",
        "Node rows (yjs-*, automerge-*): CPU time of the node process, allocated = V8 heap in use + memory outside it "
        "(array buffers, WebAssembly), peak = maxRSS growth.",
        "Compare ratios, not seconds, across machines.",
    ])
    return tabulate(rows, headers=headers, disable_numparse=True, colalign=("left",) + ("right",) * 14) + notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="fresh processes per implementation and mode (median shown)")
    parser.add_argument("--only", nargs="*", choices=sorted([*IMPLEMENTATIONS, *NODE_ROWS]),
                        help="run only these implementations")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=MODES, default="plain", help=argparse.SUPPRESS)
    parser.add_argument("--compact", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.worker, CompactTrace.load(args.compact), args.mode)))
        return
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    names = args.only or [n for n in (*IMPLEMENTATIONS, *NODE_ROWS) if n not in SLOW_ROWS]
    results = []
    with tempfile.TemporaryDirectory(prefix="editing-trace-") as scratch:
        compact, binary = Path(scratch) / "trace.pickle", Path(scratch) / "trace.bin"
        trace = CompactTrace(*load_trace())
        trace.save(compact)
        write_binary_trace(trace, binary)
        for name in names:
            runs: list[dict] = []
            for mode in ("node",) if name in NODE_ROWS else MODES:
                for _ in range(args.repeat):
                    runs.append(run_in_node(name, binary) if mode == "node" else run_in_subprocess(name, compact, mode))
                    if "error" in runs[-1]:
                        break
            results.append(median_of(runs))
            print(f"  {name}: done", file=sys.stderr, flush=True)
    print(table(results, args.repeat))


if __name__ == "__main__":
    main()
