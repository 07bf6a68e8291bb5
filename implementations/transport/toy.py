"""Two small sans-I/O cores that stand in for the node core while the transport is built.

``CounterCore`` is a grow-only counter replicated by gossip: each node counts its own
increments, sends its counts to every peer when they change and again on every tick
(anti-entropy), and merges what it receives by taking the larger count per node; its counts
are kept in a SQLite file (``Store``), own increments written before they are sent, so a
restart on the same file resumes where it stopped. After any
loss, duplication, reordering or healed partition every node's ``value()`` reaches the total
of all increments: what the transport tests check. ``EchoCore`` answers every request with
the same payload, to measure round trips through a whole node.

Both follow the node core's shape: ``handle(data, now)``, ``tick(now)`` and operations
return ``[(peer, bytes)]``, a peer is a public key, and time is only the ``now`` argument.
"""

from __future__ import annotations

from implementations import wire
from implementations.limits import TOY_COUNTER_MAX_NODES as MAX_NODES
from implementations.storage import Store

COUNTS, ECHO, REPLY = "toy.counts", "toy.echo", "toy.reply"
MAX_COUNT = 2**63 - 1  # what SQLite's INTEGER holds
SCHEMA = "CREATE TABLE IF NOT EXISTS counts (node BLOB PRIMARY KEY, count INTEGER NOT NULL)"


class CounterCore:
    def __init__(self, own: bytes, peers: list[bytes] = (), store: Store | None = None) -> None:
        self.own, self.peers = own, [peer for peer in peers if peer != own]
        self.store = store if store is not None else Store(":memory:", SCHEMA)
        self.counts: dict[bytes, int] = dict(self.store.execute("SELECT node, count FROM counts").fetchall())
        self.counts.setdefault(own, 0)
        self.ticks = 0
        self.metrics = None

    def _save(self, counts: dict[bytes, int]) -> None:
        with self.store.transaction():
            for key, count in counts.items():
                self.store.execute(
                    "INSERT INTO counts VALUES (?, ?) ON CONFLICT(node) DO UPDATE SET count = excluded.count", (key, count)
                )

    def attach_metrics(self, sink) -> None:
        self.metrics = sink

    def value(self) -> int:
        return sum(self.counts.values())

    def set_peers(self, peers: list[bytes]) -> list:
        self.peers = [peer for peer in peers if peer != self.own]
        return self._broadcast()

    def increment(self, by: int = 1) -> list:
        if type(by) is not int or not 0 < by <= MAX_COUNT - self.counts[self.own]:  # (a bool is no amount)
            raise ValueError(f"increment by {by!r}: must be a positive int keeping the count at most {MAX_COUNT}")
        self._save({self.own: self.counts[self.own] + by})  # persisted before it is acknowledged or sent
        self.counts[self.own] += by
        return self._broadcast()

    def _broadcast(self) -> list:
        message = wire.encode(COUNTS, 1, [[key, count] for key, count in sorted(self.counts.items())])
        return [(peer, message) for peer in self.peers]

    def handle(self, data: bytes, now: int) -> list:
        body = wire.decode(data, COUNTS, 1)
        if len(body) > MAX_NODES:
            raise wire.DecodeError(f"{COUNTS}: {len(body)} nodes exceeds {MAX_NODES}")
        received = {}
        for i, item in enumerate(wire.expect_list(body, f"{COUNTS}: body")):
            key, count = wire.expect_list(item, f"{COUNTS}: body[{i}]", length=2)
            count = wire.expect_int(count, f"{COUNTS}: body[{i}][1]", hi=MAX_COUNT)
            received[wire.expect_bytes(key, f"{COUNTS}: body[{i}][0]")] = count
        grown = {key: count for key, count in received.items() if count > self.counts.get(key, 0)}
        if grown:  # checked whole before anything changes
            self._save(grown)
            self.counts.update(grown)
        if self.metrics is not None:
            self.metrics.gossip("counts")
        return []

    def tick(self, now: int) -> list:
        self.ticks += 1
        return self._broadcast()


class EchoCore:
    """Answers an echo request ``[sender, payload]`` with a reply ``[payload]`` to the sender; keeps replies it gets."""

    def __init__(self, own: bytes) -> None:
        self.own = own
        self.replies: list[bytes] = []

    @staticmethod
    def request(sender: bytes, payload: bytes) -> bytes:
        return wire.encode(ECHO, 1, [sender, payload])

    def handle(self, data: bytes, now: int) -> list:
        try:
            sender, payload = wire.expect_list(wire.decode(data, ECHO, 1), f"{ECHO}: body", length=2)
        except wire.DecodeError:
            (payload,) = wire.expect_list(wire.decode(data, REPLY, 1), f"{REPLY}: body", length=1)
            self.replies.append(wire.expect_bytes(payload, f"{REPLY}: payload"))
            return []
        sender = wire.expect_bytes(sender, f"{ECHO}: sender")
        return [(sender, wire.encode(REPLY, 1, [wire.expect_bytes(payload, f"{ECHO}: payload")]))]

    def tick(self, now: int) -> list:
        return []


# --- a node program running CounterCore: ``python -m implementations.transport.toy --data DIR`` ---


def _counter_program():
    from implementations.transport.node_host import NodeProgram

    def set_peers(core: CounterCore, now: int, keys: list[str]):
        return len(keys), core.set_peers([bytes.fromhex(key) for key in keys])

    def increment(core: CounterCore, now: int, by: int = 1):
        outgoing = core.increment(by)  # checks the amount before anything reads it
        return core.value(), outgoing

    def value(core: CounterCore, now: int):
        return core.value(), []

    return NodeProgram(
        make_core=lambda identity, data_dir: CounterCore(identity.public_key, store=Store(str(data_dir / "counter.db"), SCHEMA)),
        operations={"set_peers": set_peers, "increment": increment, "value": value},
        tick_period_ns=200_000_000,
    )


if __name__ == "__main__":
    from implementations.transport.node_host import main

    raise SystemExit(main(_counter_program(), prog="python -m implementations.transport.toy"))
