"""Friend-of-a-friend discovery: find a member by asking neighbours, hop by hop.

Each node has a set of *neighbours* (members it knows directly). ``query(target, now)``
sends ``[to, nonce, query_id, target, ttl]`` (``node.foaf.q``, TTL ``foaf_ttl``, 3 by
default) to the ``foaf_fanout`` (3) neighbours whose PeerIds are closest to ``target``
(XOR distance, ties by id). A node receiving a query it has not seen remembers the hop
it came from (for ``query_state_ns``) and:

* if it *is* the target, answers that hop with a proof: a message signed by itself
  (``node.foaf.proof [query_id]``);
* else, if ``ttl > 1``, forwards the query with ``ttl - 1`` to its own closest
  neighbours, except the hop it came from.

Answers (``node.foaf.a [to, nonce, query_id, proof]``) retrace the queries' hops, each
relay knowing only the hop before it and after it: no node sees the whole path. The
querier accepts an answer only if the proof is a valid message of the target about this
query; ``result(query_id)`` is then ``True`` (found), else ``None`` while nothing came.
A query seen again (by another path) is a "duplicate" and goes no further.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from implementations import wire
from implementations.limits import MAX_FOAF_TTL
from implementations.node.message import Message, decode_payload
from implementations.wire import DecodeError

if TYPE_CHECKING:
    from implementations.node.core import Node, Outbox

QUERY, ANSWER, PROOF, TOPIC = "node.foaf.q", "node.foaf.a", "node.foaf.proof", "foaf"


def closest(candidates: Iterable[bytes], target: bytes, count: int) -> list[bytes]:
    """The ``count`` candidates nearest ``target`` by XOR distance (ties: smaller id)."""
    goal = int.from_bytes(target, "big")
    return sorted(candidates, key=lambda peer: (int.from_bytes(peer, "big") ^ goal, peer))[:count]


class Foaf:
    def __init__(self, node: Node, neighbors: Iterable[bytes]) -> None:
        self.node = node
        self.neighbors = frozenset(neighbors) - {node.peer_id}
        self.seen: dict[bytes, tuple[bytes | None, bytes, int]] = {}  # query id -> (previous hop, target, forget at)
        self.results: dict[bytes, bool] = {}  # queries of this node that were answered
        self.answered: set[bytes] = set()  # queries this node answered or relayed an answer of

    def handlers(self):
        return {QUERY: self.on_query, ANSWER: self.on_answer}

    def _send(self, to: bytes, kind: str, body: list, now: int, out: Outbox) -> None:
        node = self.node
        out.add(to, node.seal(kind, [to, node.nonce(), *body], now, TOPIC))

    def query(self, target: bytes, now: int, ttl: int | None = None) -> tuple[bytes, Outbox]:
        """Start looking for ``target``; returns the query id and what to send."""
        from implementations.node.core import Outbox

        ttl = self.node.config.foaf_ttl if ttl is None else ttl
        if not 1 <= ttl <= MAX_FOAF_TTL:
            raise ValueError(f"a FOAF TTL is 1 to {MAX_FOAF_TTL}, got {ttl}")
        node = self.node
        query_id = node.nonce()
        self.seen[query_id] = (None, target, now + node.config.query_state_ns)
        out = Outbox()
        for peer in closest(self.neighbors, target, node.config.foaf_fanout):
            self._send(peer, QUERY, [query_id, target, ttl], now, out)
        return query_id, out

    def result(self, query_id: bytes) -> bool | None:
        return self.results.get(query_id)

    def on_query(self, message: Message, body: list, now: int, out: Outbox) -> str:
        node = self.node
        node.directed(body, QUERY)
        to, _, query_id, target, ttl = wire.expect_list(body, QUERY, length=5)
        query_id = wire.expect_bytes(query_id, f"{QUERY}.query_id", 16)
        target = wire.expect_bytes(target, f"{QUERY}.target", 32)
        ttl = wire.expect_int(ttl, f"{QUERY}.ttl", 1, MAX_FOAF_TTL)
        if to != node.peer_id:
            return "not for me"
        if query_id in self.seen:
            return "duplicate"
        self.seen[query_id] = (message.signer, target, now + node.config.query_state_ns)
        if target == node.peer_id:
            proof = node.seal(PROOF, [query_id], now, TOPIC)
            self._send(message.signer, ANSWER, [query_id, proof], now, out)
        elif ttl > 1:
            onward = closest(self.neighbors - {message.signer}, target, node.config.foaf_fanout)
            for peer in onward:
                self._send(peer, QUERY, [query_id, target, ttl - 1], now, out)
        return "accepted"

    def on_answer(self, message: Message, body: list, now: int, out: Outbox) -> str:
        node = self.node
        node.directed(body, ANSWER)
        to, _, query_id, proof = wire.expect_list(body, ANSWER, length=4)
        query_id = wire.expect_bytes(query_id, f"{ANSWER}.query_id", 16)
        proof = wire.expect_bytes(proof, f"{ANSWER}.proof")
        if to != node.peer_id:
            return "not for me"
        state = self.seen.get(query_id)
        if state is None:
            return "unknown query"
        if query_id in self.answered:
            return "duplicate"
        previous, target, _ = state
        if not self._proves(proof, query_id, target):
            return "bad proof"
        self.answered.add(query_id)  # relayed once: later answers of this query stop here
        if previous is None:
            self.results[query_id] = True
        else:
            self._send(previous, ANSWER, [query_id, proof], now, out)
        return "accepted"

    def _proves(self, raw: bytes, query_id: bytes, target: bytes) -> bool:
        proof, reason = self.node.admit(raw)
        if reason is not None or proof.signer != target or proof.topic != TOPIC:
            return False
        try:
            kind, body = decode_payload(proof.payload)
        except DecodeError:
            return False
        return kind == PROOF and body == [query_id]

    def tick(self, now: int) -> None:
        for query_id in [q for q, (_, _, until) in self.seen.items() if until <= now]:
            del self.seen[query_id]
            self.answered.discard(query_id)
