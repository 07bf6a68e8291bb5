"""Rendezvous: find a member by its PeerId through the coordinators of its shard.

``shard(id) = u32_le(BLAKE3("saorsa-rendezvous" || id)[0..4]) & 0xFFFF`` (65,536 shards).
Every member coordinates; the coordinators of a member's shard ``s`` are the
``rendezvous_replicas`` (2) *other* members whose own shard is nearest ``s`` on the ring of
shards (distance ``min(|a - b|, 65536 - |a - b|)``, ties by the smaller PeerId): the
primary, then its backup. (A member never coordinates itself: its own shard is always
nearest, and an advert kept only by the member it names is lost with it.)

**Registering.** At its first tick and every ``advert_refresh_ns`` after, a node signs an
advert ``node.rdv.advert [nonce, expires_at_secs]`` (``advert_ttl_ns``, 24 h, ahead) and
sends it to every coordinator of its own shard. A coordinator keeps the newest advert of
each member whose shard it coordinates ("not a coordinator" otherwise; an advert that has
expired or claims more than the TTL ahead is refused) until it expires by its own clock.

**Lookup.** ``lookup(target, now)`` asks the primary of ``target``'s shard
(``node.rdv.lookup [to, nonce, lookup_id, target]``), which answers ``node.rdv.found [to,
nonce, lookup_id, advert or nil]`` with the advert it holds, if it has not expired. The
first answer settles the lookup: "found" if the advert is a valid message signed by the
target that has not expired by the querier's clock, else "absent". With no answer after
``lookup_timeout_ns`` the next tick asks the next coordinator (failover); when none is
left the lookup is "unreachable". A coordinator asked by itself answers from its own store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import blake3

from implementations import wire
from implementations.node.message import NS_PER_SECOND, Message, decode_payload
from implementations.wire import DecodeError

if TYPE_CHECKING:
    from implementations.node.core import Node, Outbox

ADVERT, LOOKUP, FOUND, TOPIC = "node.rdv.advert", "node.rdv.lookup", "node.rdv.found", "rdv"
SHARDS = 1 << 16
SHARD_DOMAIN = b"saorsa-rendezvous"


def shard(peer: bytes) -> int:
    """``u32_le(BLAKE3("saorsa-rendezvous" || id)[0..4]) & 0xFFFF``."""
    return int.from_bytes(blake3.blake3(SHARD_DOMAIN + peer).digest()[:4], "little") & 0xFFFF


def ring_distance(a: int, b: int) -> int:
    d = abs(a - b)
    return min(d, SHARDS - d)


@dataclass
class Lookup:
    target: bytes
    candidates: list[bytes]
    asked: int  # how many candidates were asked
    deadline: int
    result: str = "pending"


class Rendezvous:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.shards = {member: shard(member) for member in node.members}
        self.adverts: dict[bytes, tuple[int, int, bytes]] = {}  # subject -> (expires ns, epoch secs, advert)
        self.lookups: dict[bytes, Lookup] = {}
        self.next_register = 0

    def handlers(self):
        return {ADVERT: self.on_advert, LOOKUP: self.on_lookup, FOUND: self.on_found}

    def coordinators(self, subject: bytes) -> list[bytes]:
        """The coordinators of ``subject``'s shard, primary first (never ``subject`` itself)."""
        s = shard(subject)
        ranked = sorted(self.node.members - {subject}, key=lambda m: (ring_distance(self.shards[m], s), m))
        return ranked[: self.node.config.rendezvous_replicas]

    # ----- registering ----------------------------------------------------------------

    def _store(self, message: Message, expires_ns: int) -> None:
        held = self.adverts.get(message.signer)
        if held is None or held[1] <= message.epoch_secs:
            self.adverts[message.signer] = (expires_ns, message.epoch_secs, message.raw)

    def on_advert(self, message: Message, body: list, now: int, out: Outbox) -> str:
        _, expires_secs = wire.expect_list(body, ADVERT, length=2)
        wire.expect_bytes(body[0], f"{ADVERT}.nonce", 16)
        expires_ns = wire.expect_int(expires_secs, f"{ADVERT}.expires_at_secs") * NS_PER_SECOND
        config = self.node.config
        if self.node.peer_id not in self.coordinators(message.signer):
            return "not a coordinator"
        if not now < expires_ns <= now + config.advert_ttl_ns + config.replay_ttl_ns:
            return "advert expiry out of range"
        self._store(message, expires_ns)
        return "accepted"

    def register(self, now: int, out: Outbox) -> None:
        node = self.node
        expires_secs = (now + node.config.advert_ttl_ns) // NS_PER_SECOND
        advert = node.seal(ADVERT, [node.nonce(), expires_secs], now, TOPIC)
        for coordinator in self.coordinators(node.peer_id):
            out.add(coordinator, advert)

    # ----- lookups --------------------------------------------------------------------

    def lookup(self, target: bytes, now: int) -> tuple[bytes, Outbox]:
        """Start looking ``target`` up; returns the lookup id and what to send."""
        from implementations.node.core import Outbox

        node = self.node
        lookup_id = node.nonce()
        self.lookups[lookup_id] = Lookup(target, self.coordinators(target), 0, now)
        out = Outbox()
        self._ask_next(lookup_id, now, out)
        return lookup_id, out

    def result(self, lookup_id: bytes) -> str | None:
        lookup = self.lookups.get(lookup_id)
        return None if lookup is None else lookup.result

    def _held(self, subject: bytes, now: int) -> bytes | None:
        held = self.adverts.get(subject)
        return held[2] if held is not None and now < held[0] else None

    def _ask_next(self, lookup_id: bytes, now: int, out: Outbox) -> None:
        lookup = self.lookups[lookup_id]
        if lookup.asked >= len(lookup.candidates):
            lookup.result = "unreachable"
            return
        coordinator = lookup.candidates[lookup.asked]
        lookup.asked += 1
        lookup.deadline = now + self.node.config.lookup_timeout_ns
        if coordinator == self.node.peer_id:
            self._settle(lookup, self._held(lookup.target, now), now)
        else:
            node = self.node
            out.add(coordinator, node.seal(LOOKUP, [coordinator, node.nonce(), lookup_id, lookup.target], now, TOPIC))

    def on_lookup(self, message: Message, body: list, now: int, out: Outbox) -> str:
        node = self.node
        node.directed(body, LOOKUP)
        to, _, lookup_id, target = wire.expect_list(body, LOOKUP, length=4)
        lookup_id = wire.expect_bytes(lookup_id, f"{LOOKUP}.lookup_id", 16)
        target = wire.expect_bytes(target, f"{LOOKUP}.target", 32)
        if to != node.peer_id:
            return "not for me"
        answer = node.seal(FOUND, [message.signer, node.nonce(), lookup_id, self._held(target, now)], now, TOPIC)
        out.add(message.signer, answer)
        return "accepted"

    def on_found(self, message: Message, body: list, now: int, out: Outbox) -> str:
        node = self.node
        node.directed(body, FOUND)
        to, _, lookup_id, advert = wire.expect_list(body, FOUND, length=4)
        lookup_id = wire.expect_bytes(lookup_id, f"{FOUND}.lookup_id", 16)
        if advert is not None:
            wire.expect_bytes(advert, f"{FOUND}.advert")
        if to != node.peer_id:
            return "not for me"
        lookup = self.lookups.get(lookup_id)
        if lookup is None or message.signer not in lookup.candidates[: lookup.asked]:
            return "unknown lookup"
        if lookup.result != "pending":
            return "duplicate"
        self._settle(lookup, advert, now)
        return "accepted"

    def _settle(self, lookup: Lookup, advert: bytes | None, now: int) -> None:
        lookup.result = "found" if advert is not None and self._valid_advert(advert, lookup.target, now) else "absent"

    def _valid_advert(self, raw: bytes, target: bytes, now: int) -> bool:
        advert, reason = self.node.admit(raw)
        if reason is not None or advert.signer != target or advert.topic != TOPIC:
            return False
        try:
            kind, body = decode_payload(advert.payload)
        except DecodeError:
            return False
        return (kind == ADVERT and len(body) == 2 and isinstance(body[1], int) and not isinstance(body[1], bool)
                and now < body[1] * NS_PER_SECOND)

    def tick(self, now: int, out: Outbox) -> None:
        if self.node.config.adverts and now >= self.next_register:
            self.next_register = now + self.node.config.advert_refresh_ns
            self.register(now, out)
        for subject in [s for s, (until, _, _) in self.adverts.items() if until <= now]:
            del self.adverts[subject]
        for lookup_id, lookup in self.lookups.items():
            if lookup.result == "pending" and now >= lookup.deadline:
                self._ask_next(lookup_id, now, out)
