"""Broadcast trees: to whom a member pushes an operation (the eager half of the gossip).

Every member computes the same tree for an operation ``(origin, seq)`` from the member list
alone, so no member keeps, learns or exchanges tree state, and no message is needed to
build or mend one. The origin is the root (position 0). The other members, in the origin's
own order (sorted by ``BLAKE3(origin || member)``) rotated by ``seq``, take positions 1 to
``n - 1`` of a ``fanout``-ary heap: the children of position ``p`` are positions
``fanout * p + 1`` to ``fanout * p + fanout``. A member at rank ``r`` of the origin's order
is at position ``(r + seq) mod (n - 1) + 1``.

When nothing is lost every member receives every operation exactly once, after at most
``log_fanout(n)`` hops (4 for 100 members and fanout 3). The rotation spreads the
forwarding (a member is an inner node of about one tree in ``fanout``, consecutive ones) and
makes a lost link or a crashed member cost a different subtree for each operation. What a
tree loses, the lazy half repairs: announcements of what a member holds and pulls of what
is still missing (``implementations.node.core``). This is Plumtree's split of eager push
and lazy push; with full membership known, the trees need no GRAFT or PRUNE messages.
"""

from __future__ import annotations

from collections.abc import Iterable

import blake3


class Trees:
    """The broadcast trees of a mesh's members, as member ``own`` sees them; each origin's order is
    computed once, when first needed."""

    def __init__(self, members: Iterable[bytes], fanout: int, own: bytes | None = None) -> None:
        if fanout < 1:
            raise ValueError(f"a broadcast tree needs a fanout of at least 1, got {fanout}")
        self.members = sorted(set(members))
        self.fanout = fanout
        self.own = own
        self._orders: dict[bytes, tuple[list[bytes], dict[bytes, int]]] = {}
        self._own_spots: dict[bytes, tuple[list[bytes], int, int]] = {}  # origin -> (order, n, own rank or -1)

    def order(self, origin: bytes) -> tuple[list[bytes], dict[bytes, int]]:
        """The members other than ``origin`` in ``origin``'s order, and each one's rank in it."""
        known = self._orders.get(origin)
        if known is None:
            keyed = sorted((blake3.blake3(origin + m).digest(), m) for m in self.members if m != origin)
            others = [m for _, m in keyed]
            known = self._orders[origin] = (others, {m: rank for rank, m in enumerate(others)})
        return known

    def children(self, origin: bytes, seq: int, member: bytes) -> list[bytes]:
        """The members ``member`` pushes operation ``(origin, seq)`` to (none if it is not in the tree)."""
        others, rank = self._orders.get(origin) or self.order(origin)
        n = len(others)
        if member == origin:
            position = 0
        else:
            at = rank.get(member)
            if at is None:
                return []
            position = (at + seq) % n + 1
        first = self.fanout * position + 1
        if first > n:  # a leaf (most members are)
            return []
        return [others[(q - 1 - seq) % n] for q in range(first, min(first + self.fanout, n + 1))]

    def push_targets(self, origin: bytes, seq: int) -> list[bytes]:
        """``children(origin, seq, own)``, with ``own``'s rank in each origin's order remembered."""
        spot = self._own_spots.get(origin)
        if spot is None:
            others, rank = self.order(origin)
            spot = self._own_spots[origin] = (others, len(others), -1 if origin == self.own else rank.get(self.own, -2))
        others, n, at = spot
        if at == -2:  # not a member
            return []
        first = 1 if at == -1 else self.fanout * ((at + seq) % n + 1) + 1
        if first > n:  # a leaf (most members are)
            return []
        return [others[(q - 1 - seq) % n] for q in range(first, min(first + self.fanout, n + 1))]

    def parent(self, origin: bytes, seq: int, member: bytes) -> bytes | None:
        """The member that pushes ``(origin, seq)`` to ``member`` (None for the origin or a non-member)."""
        others, rank = self.order(origin)
        at = rank.get(member)
        if member == origin or at is None:
            return None
        n = len(others)
        position = (at + seq) % n + 1
        above = (position - 1) // self.fanout
        return origin if above == 0 else others[(above - 1 - seq) % n]
