"""Friend-of-a-friend discovery: does a query find its target (SPEC 4: TTL 3, fanout 3)?

Each node knows some *neighbours*. A query for ``target`` with a TTL leaves its origin
for the ``fanout`` neighbours closest to ``target`` (XOR distance of the ids read as
big-endian integers; ties by the smaller id). A node that receives a query it has not
seen before remembers the hop it came from; if it is the target it answers that hop;
otherwise, if the TTL it received is above 1, it forwards the query with the TTL one
lower to its own ``fanout`` closest neighbours except that hop. A query seen before goes
no further. Answers retrace, hop by hop, the path by which each node first received the
query. With TTL 1 only the origin's immediate neighbours are asked; with TTL 3, nodes up
to three hops away.

The network is calm (``deliver`` everything, oldest first) but may be cut: a message over
a cut link, or to a node that is down, is lost. The query *finds* its target when an answer
reaches the origin. Messages are delivered in the order they were sent (first in, first
out across the whole network), which decides which path reaches a node first.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping


def closest(candidates: Iterable[bytes], target: bytes, count: int) -> list[bytes]:
    goal = int.from_bytes(target, "big")
    return sorted(candidates, key=lambda peer: (int.from_bytes(peer, "big") ^ goal, peer))[:count]


def finds(neighbors: Mapping[bytes, frozenset], origin: bytes, target: bytes, ttl: int, fanout: int,
          delivered: Callable[[bytes, bytes], bool]) -> bool:
    """Whether the query is answered; ``delivered(a, b)``: a message from a to b arrives."""
    previous: dict[bytes, bytes | None] = {origin: None}
    sent = deque((origin, peer, ttl) for peer in closest(neighbors[origin], target, fanout))
    while sent:
        sender, receiver, hops = sent.popleft()
        if not delivered(sender, receiver) or receiver in previous:
            continue
        previous[receiver] = sender
        if receiver == target:
            return _answer_returns(previous, target, delivered)
        if hops > 1:
            sent.extend((receiver, peer, hops - 1) for peer in closest(neighbors[receiver] - {sender}, target, fanout))
    return False


def _answer_returns(previous: Mapping[bytes, bytes | None], target: bytes, delivered: Callable[[bytes, bytes], bool]) -> bool:
    hop = target
    while previous[hop] is not None:
        if not delivered(hop, previous[hop]):
            return False
        hop = previous[hop]
    return True
