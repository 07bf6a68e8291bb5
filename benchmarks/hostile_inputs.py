"""Hostile inputs: what crafted and mutated messages do to live replicas and to decoders.

For each replicated type (the OR-Set delta-state and tombstone, the LWW register, the task
list) a live replica, holding a little state of its own, receives ``--messages`` messages
(10^5 by default), and for each decoder of a type another workstream owns (the RGA's state
and delta, the threshold envelope, proposal and answer) the decoder receives as many. The
messages are, at random (seeded):

* *crafted* lies, a quarter of them: the adapters' crafters (``harness.hostile``) with random
  replicas, counters (near and at 2^64 - 1, past the counter gap), clocks, strangers, floods;
* *mutants*, the rest: a genuine message (a state or delta of another replica, an envelope of
  a real signing round) with one value changed (``harness.hostile.mutants``: an integer at a
  boundary, an array truncated, grown, reversed or flooded, a field of another type), or cut.

Columns: ``messages``; ``refused`` (a ``DecodeError``, as documented); ``other exceptions``
(anything else: must be 0); ``changed after refusal`` (``state()`` bytes differ after a
refused message: must be 0); ``max KiB`` the largest Python heap growth while one message
was handled (``tracemalloc`` peak minus the heap before it); ``max ms`` the largest CPU time
of one message (with ``tracemalloc`` on, so about twice the plain cost); and where the worst
of each came from. A live replica is rebuilt every 500 messages, so accepted messages cannot
pile up into a state no peer would send. Nothing here asserts a time.

    python benchmarks/hostile_inputs.py [--messages N] [--seed S] [--only NAME ...]
    python benchmarks/hostile_inputs.py --quick      # a smoke run: a few hundred messages each

``tests/test_hostile_inputs.py`` runs ``--quick`` and asserts the two zero columns.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tabulate import tabulate

from harness.hostile import mutants
from implementations.limits import (
    MAX_CLOCK_AHEAD_NS,
    MAX_CLOUD_RANGES,
    MAX_CONTEXT_REPLICAS,
    MAX_COUNTER_GAP,
    MAX_HLC_COUNTER,
    U64_MAX,
)
from implementations.wire import DecodeError
from models.clock import ManualClock

START_NS = 1_700_000_000 * 1_000_000_000
REBUILD_EVERY = 500
ELEMENTS = ("a", "b", "c", 0, 7, b"\x00")


class Target:
    """What receives the messages: a live replica (``make``, ``deliver``, ``state``) or a
    decoder (``make`` is None), the genuine messages mutants start from, and a source of lies."""

    def __init__(self, name: str, genuine: list[tuple[str, bytes]], deliver: Callable[[Any, str, bytes], Any],
                 make: Callable[[], Any] | None = None,
                 lies: Callable[[random.Random, Any], tuple[str, str, bytes]] | None = None) -> None:
        self.name, self.genuine, self.deliver, self.make, self.lies = name, genuine, deliver, make, lies


def counter(rng: random.Random, known: int = 0) -> int:
    return rng.choice([1, known + 1, known + MAX_COUNTER_GAP, known + MAX_COUNTER_GAP + 1, 2**32, 2**63,
                       U64_MAX - 1, U64_MAX, rng.randrange(1, 2**64)])


# ----- the OR-Sets ----------------------------------------------------------------------------


def orset_targets() -> list[Target]:
    from implementations.orset import DeltaORSet
    from implementations.orset_tombstone import TombstoneORSet
    from machines.adapters.orset_delta import DeltaStateCrafter
    from machines.adapters.orset_tombstone import TombstoneCrafter

    def genuine(cls) -> list[tuple[str, bytes]]:
        messages = []
        for replica_id in (1, 2):
            peer = cls(replica_id)
            for n in range(12):
                peer.add(ELEMENTS[(n * replica_id) % len(ELEMENTS)])
                if n % 4 == 3:
                    peer.remove(ELEMENTS[n % len(ELEMENTS)])
                messages += [("delta", d) for d in peer.take_deltas()]
            messages.append(("state", peer.state()))
        return messages

    def make(cls) -> Callable[[], Any]:
        def build():
            replica = cls(0)
            for element in ELEMENTS[:4]:
                replica.add(element)
            replica.remove("a")
            return replica
        return build

    def lies(crafter) -> Callable[[random.Random, Any], tuple[str, str, bytes]]:
        def lie(rng: random.Random, replica) -> tuple[str, str, bytes]:
            whole = rng.random() < 0.5
            method = "state" if whole else "delta"
            who = rng.choice([0, 1, 2, 2**40, U64_MAX])
            choice = rng.randrange(100)
            if choice < 30:
                return "claim", method, crafter.claim(whole, [(who, counter(rng))])
            if choice < 60:
                return "add", method, crafter.add(whole, rng.choice(ELEMENTS), (who, counter(rng)))
            if choice < 80:
                dots = [(rng.choice([0, 1, 2, 2**40]), counter(rng)) for _ in range(rng.randrange(1, 64))]
                return "remove", method, crafter.remove(whole, rng.choice(ELEMENTS), dots)
            if choice < 81:
                return "huge_vector", method, crafter.huge_vector(whole, MAX_CONTEXT_REPLICAS + 1)
            if choice < 82 and hasattr(crafter, "dot_cloud"):
                return "dot_cloud", method, crafter.dot_cloud(whole, 2**40, MAX_CLOUD_RANGES + 1)
            seed_method, seed = rng.choice(genuine_messages[crafter])
            return "tamper", seed_method, crafter.tamper(seed, seed_method == "state", (who, counter(rng)))
        return lie

    def deliver(replica, method: str, data: bytes) -> None:
        (replica.merge if method == "state" else replica.apply_delta)(data)

    delta_crafter, tombstone_crafter = DeltaStateCrafter(), TombstoneCrafter()
    genuine_messages = {delta_crafter: genuine(DeltaORSet), tombstone_crafter: genuine(TombstoneORSet)}
    return [
        Target("orset delta-state", genuine_messages[delta_crafter], deliver, make(DeltaORSet), lies(delta_crafter)),
        Target("orset tombstone", genuine_messages[tombstone_crafter], deliver, make(TombstoneORSet), lies(tombstone_crafter)),
    ]


# ----- the LWW register ----------------------------------------------------------------------


def lww_target() -> Target:
    from implementations.lww import LWWRegister
    from machines.adapters.lww_hlc import HLCCrafter

    clock = ManualClock(START_NS)
    messages = []
    for replica_id in (1, 2):
        peer = LWWRegister(replica_id, clock)
        for value in ("x", 7, None, b"\x01" * 32):
            peer.write(value)
            messages += [("delta", d) for d in peer.take_deltas()]
        messages.append(("state", peer.state()))
    crafter = HLCCrafter()

    def make() -> LWWRegister:
        register = LWWRegister(0, clock)
        register.write("mine")
        return register

    def lie(rng: random.Random, replica) -> tuple[str, str, bytes]:
        whole = rng.random() < 0.5
        method = "state" if whole else "delta"
        if rng.random() < 0.7:
            wall = rng.choice([0, START_NS, START_NS + MAX_CLOCK_AHEAD_NS, START_NS + MAX_CLOCK_AHEAD_NS + 1, 2**63, U64_MAX])
            count = rng.choice([0, 1, MAX_HLC_COUNTER, MAX_HLC_COUNTER + 1, U64_MAX - 1, U64_MAX])
            writer = rng.choice([0, 1, 2**40, U64_MAX])
            return "write", method, crafter.write(whole, wall, count, writer, rng.choice(["v", 1, None, b"x"]))
        seed_method, seed = rng.choice(messages)
        field = rng.choice(["wall_ns", "counter"])
        return "tamper", seed_method, crafter.tamper(seed, seed_method == "state", field, counter(rng))

    def deliver(replica, method: str, data: bytes) -> None:
        (replica.merge if method == "state" else replica.apply_delta)(data)

    return Target("lww hlc", messages, deliver, make, lie)


# ----- the task list -------------------------------------------------------------------------


def tasklist_target() -> Target:
    from machines.adapters.tasklist_x0x import X0xCrafter, X0xTaskListReplica

    clock = ManualClock(START_NS)
    messages = []
    for replica_id in (1, 2):
        peer = X0xTaskListReplica(replica_id, clock)
        first = peer.add_task("write spec", "soon")
        second = peer.add_task("ship it", "")
        peer.claim(first)
        messages += [("delta", d) for d in peer.take_deltas()]
        peer.complete(first)
        peer.set_field(second, "priority", 3)
        peer.move(second, 0)
        messages += [("delta", d) for d in peer.take_deltas()]
        messages.append(("state", peer.state()))
    crafter = X0xCrafter()
    tasks = [peer.tasks.order()[0], bytes(32)]

    def make() -> X0xTaskListReplica:
        replica = X0xTaskListReplica(0, clock)
        task = replica.add_task("mine", "")
        replica.claim(task)
        replica.merge(messages[-1][1])
        return replica

    def lie(rng: random.Random, replica) -> tuple[str, str, bytes]:
        whole = rng.random() < 0.5
        method = "state" if whole else "delta"
        choice = rng.randrange(100)
        task = rng.choice(tasks)
        if choice < 25:
            return "claim_dots", method, crafter.claim_dots(whole, rng.choice([0, 1, 2, 2**40]), counter(rng), rng.random() < 0.5)
        if choice < 40:
            return "erase", method, crafter.erase(replica, task, whole)
        if choice < 55:
            ts = rng.choice([0, START_NS // 10**6, U64_MAX])
            return "stranger_state", method, crafter.stranger_state(whole, task, rng.choice(["claimed", "done"]), ts, 1)
        if choice < 75:
            wall = rng.choice([0, START_NS, START_NS + MAX_CLOCK_AHEAD_NS + 1, U64_MAX])
            count = rng.choice([0, MAX_HLC_COUNTER, MAX_HLC_COUNTER + 1, U64_MAX])
            return "field_write", method, crafter.field_write(whole, task, rng.choice(["title", "description"]), wall, count,
                                                              rng.choice([0, 2**40]), "x")
        seed_method, seed = rng.choice(messages)
        how = rng.choice(["list_id", "field_clock", "field_counter", "member_claim"])
        return "tamper", seed_method, crafter.tamper(seed, seed_method == "state", how, rng.choice([0, 1]), counter(rng))

    def deliver(replica, method: str, data: bytes) -> None:
        (replica.merge if method == "state" else replica.apply_delta)(data)

    return Target("tasklist x0x", messages, deliver, make, lie)


# ----- decoders of the other workstreams: decoding only ---------------------------------------


def rga_targets() -> list[Target]:
    from implementations import rga

    messages = []
    for replica_id in (1, 2):
        peer = rga.RGA(replica_id)
        for n in range(20):
            peer.insert(n % 3, chr(97 + n))
            if n % 5 == 4:
                peer.delete(1)
            messages += [("delta", d) for d in peer.take_deltas()]
        messages.append(("state", peer.state()))
    return [
        Target("rga delta (decode)", [m for m in messages if m[0] == "delta"], lambda _, __, data: rga.decode_delta(data)),
        Target("rga state (decode)", [m for m in messages if m[0] == "state"], lambda _, __, data: rga.decode_state(data)),
    ]


def threshold_targets(directory: str) -> list[Target]:
    import nacl.signing
    from blake3 import blake3

    from implementations import pskt
    from implementations.ledger import Ledger, MultisigGroup
    from implementations.policy import Policy
    from implementations.threshold import Coordinator, GroupConfig, LedgerView, Signer, decode_answer, decode_proposal
    from implementations.threshold_envelope import decode_envelope

    keys = [blake3(f"hostile:{i}".encode()).digest() for i in range(3)]
    pubkeys = tuple(bytes(nacl.signing.SigningKey(k).verify_key) for k in keys)
    ledger = Ledger()
    address = ledger.add_group(MultisigGroup(2, pubkeys))
    for i in range(4):
        ledger.fund(address, 1_000 + i)
    config = GroupConfig(pubkeys, 2, address, 10, pskt.SignersPay())
    signer = Signer(keys[1], config, LedgerView(ledger, address, order_seed=1), f"{directory}/s1.db", Policy())
    coordinator = Coordinator(keys[0], config, LedgerView(ledger, address), f"{directory}/c0.db")
    try:
        event = pskt.Event("bench", "ext-0", "kaspatest:recipient", 2_500, (("reason", "bench"),), START_NS)
        _, proposals = coordinator.submit_event(event, START_NS)
        proposal = next(data for to, data in proposals if to == pubkeys[1])
        (_, answer), *_ = signer.handle(proposal, START_NS)
    finally:
        signer.close()
        coordinator.close()
    envelopes = [("envelope", proposal), ("envelope", answer)]
    return [
        Target("threshold envelope (decode)", envelopes, lambda _, __, data: decode_envelope(data)),
        Target("threshold proposal (decode)", [("proposal", decode_envelope(proposal).payload)],
               lambda _, __, data: decode_proposal(data)),
        Target("threshold answer (decode)", [("answer", decode_envelope(answer).payload)],
               lambda _, __, data: decode_answer(data)),
    ]


# ----- the run ---------------------------------------------------------------------------------


def messages_for(target: Target, rng: random.Random, replica_of: Callable[[], Any]) -> Iterator[tuple[str, str, bytes]]:
    """Endless (label, method, bytes): a quarter lies (if the target has a crafter), the rest mutants or cuts."""
    streams = [(method, mutants(data, rng)) for method, data in target.genuine]
    while True:
        if target.lies is not None and rng.random() < 0.25:
            label, method, data = target.lies(rng, replica_of())
            yield f"lie {label}", method, data
            continue
        index = rng.randrange(len(streams))
        method, stream = streams[index]
        if rng.random() < 0.1:
            original = target.genuine[index][1]
            yield f"cut {method}", method, original[: rng.randrange(len(original))]
        else:
            yield f"mutant of {method}", method, next(stream)


def run(target: Target, count: int, seed: int) -> list:
    rng = random.Random(f"{seed}:{target.name}")
    replica = target.make() if target.make else None
    refused = unexpected = changed = 0
    worst_kib = worst_ms = 0.0
    worst_kib_from = worst_ms_from = first_unexpected = ""
    feed = messages_for(target, rng, lambda: replica)
    tracemalloc.start()
    try:
        for n in range(count):
            if target.make and n and n % REBUILD_EVERY == 0:
                replica = target.make()
            label, method, data = next(feed)
            before = replica.state() if replica is not None else None
            heap = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            started = time.process_time()
            outcome = "accepted"
            try:
                target.deliver(replica, method, data)
            except DecodeError:
                outcome = "refused"
            except Exception as error:  # the column that must stay 0
                outcome = "unexpected"
                first_unexpected = first_unexpected or f"{label}: {type(error).__name__}: {error}"[:120]
            elapsed = (time.process_time() - started) * 1000
            growth = (tracemalloc.get_traced_memory()[1] - heap) / 1024
            refused += outcome == "refused"
            unexpected += outcome == "unexpected"
            if outcome == "refused" and replica is not None and replica.state() != before:
                changed += 1
            if elapsed > worst_ms:
                worst_ms, worst_ms_from = elapsed, f"{label} ({len(data):,} B)"
            if growth > worst_kib:
                worst_kib, worst_kib_from = growth, f"{label} ({len(data):,} B)"
    finally:
        tracemalloc.stop()
    return [target.name, count, refused, unexpected, changed, worst_kib, worst_kib_from, worst_ms, worst_ms_from,
            first_unexpected]


HEADERS = ["target", "messages", "refused", "other exceptions", "changed after refusal", "max KiB", "max KiB from",
           "max ms", "max ms from", "first other exception"]


def rows(count: int, seed: int, only: list[str] | None = None) -> list[list]:
    directory = tempfile.mkdtemp(prefix="hostile-inputs-")
    try:
        targets = [*orset_targets(), lww_target(), tasklist_target(), *rga_targets(), *threshold_targets(directory)]
        return [run(t, count, seed) for t in targets if not only or any(word in t.name for word in only)]
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000, help="messages per target (default 10^5)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--only", nargs="+", help="targets whose name contains one of these words")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 300 messages per target")
    args = parser.parse_args(argv)
    table = rows(300 if args.quick else args.messages, args.seed, args.only)
    print(tabulate(table, headers=HEADERS, floatfmt=".2f"))
    return 1 if any(row[3] or row[4] for row in table) else 0


if __name__ == "__main__":
    raise SystemExit(main())
