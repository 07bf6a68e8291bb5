"""Rendezvous: which coordinators hold whose advert, and what a lookup answers (SPEC 4).

Every id belongs to one of 65,536 shards (``shard = u32_le(BLAKE3("saorsa-rendezvous" ||
id)[0..4]) & 0xFFFF``; the caller computes it: this model does no hashing). Every member
coordinates; the coordinators of a member are the ``replicas`` (2) *other* members whose own
shard is nearest the member's on the ring of shards (distance ``min(|a - b|, 65536 -
|a - b|)``), ties by the smaller id: the first is the primary, the next the backup. A member
never coordinates itself (its own shard is always nearest).

A member registers by sending a signed advert, valid until ``expires``, to the
coordinators of its shard. A coordinator that takes it (``models.gossip``) keeps the
newest advert of each member it coordinates for, until it expires by the coordinator's
clock; adverts live in memory, so a coordinator that restarts holds none.

A lookup asks the coordinators in order. A coordinator that cannot be reached (down, or a
link of the round trip cut) does not answer, and the querier, after its timeout, asks the
next one. The first answer settles the lookup: "found" if the coordinator holds an
unexpired advert of the target that has not expired by the querier's clock either, else
"absent"; "unreachable" if no coordinator answered.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

SHARDS = 1 << 16


def ring_distance(a: int, b: int) -> int:
    d = abs(a - b)
    return min(d, SHARDS - d)


def coordinators(shards: Mapping[bytes, int], subject: bytes, replicas: int = 2) -> list[bytes]:
    """The coordinators of ``subject`` among the other members (``shards``: member -> its shard)."""
    others = [member for member in shards if member != subject]
    return sorted(others, key=lambda member: (ring_distance(shards[member], shards[subject]), member))[:replicas]


def takes_advert(coordinator: bytes, order: list[bytes], expires_ns: int, now_ns: int, ttl_ns: int, slack_ns: int) -> bool:
    """Whether a coordinator keeps an advert it took: it coordinates the advertiser's shard,
    and the advert expires in the future but no further than ``ttl_ns + slack_ns`` ahead."""
    return coordinator in order and now_ns < expires_ns <= now_ns + ttl_ns + slack_ns


def lookup(order: list[bytes], answers: Callable[[bytes], bool], holds: Callable[[bytes], bool]) -> str:
    """"found", "absent" or "unreachable": the first coordinator that ``answers`` settles it."""
    for coordinator in order:
        if answers(coordinator):
            return "found" if holds(coordinator) else "absent"
    return "unreachable"
