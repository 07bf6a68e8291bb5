"""Node-layer bugs: gossip, anti-entropy, the replay cache, persistence, presence, FOAF,
rendezvous and the message envelope, caught by the mesh machines on the simulated network."""

from __future__ import annotations

import contextlib
from unittest import mock

from harness import Implementation
from implementations.node import Node, message
from implementations.node.core import ReplayCache
from implementations.node.foaf import QUERY, Foaf
from implementations.node.rendezvous import Rendezvous
from machines.adapters.node_mesh import backend
from tests.bugs.catalogue import Bug


class SkipsMissedUpdates(Node):
    """Anti-entropy digests say "everything up to my highest seq" per origin: an operation
    gossip lost below a later one that arrived is never asked for again."""

    def digest_ranges(self, log):
        return [[1, log.max_seq]] if log.max_seq else []


class ReplayKeyedBySenderTime(Node):
    """The replay cache is keyed by what the sender controls (its signer id and timestamp):
    a second, different message the sender signs in the same second is refused as a replay."""

    def replay_key(self, message):
        return message.signer + message.epoch_secs.to_bytes(8, "little")


class AcknowledgesBeforePersisting(Node):
    """A write-behind log: ``publish`` returns (the acknowledgement) before the operation is
    committed; the commit happens at the next tick. A crash in between loses it."""

    def __init__(self, *args, **kwargs):
        self.unwritten = []
        super().__init__(*args, **kwargs)

    def _persist(self, topic, seq, raw):
        self.unwritten.append((topic, seq, raw))

    def tick(self, now):
        for topic, seq, raw in self.unwritten:
            Node._persist(self, topic, seq, raw)
        self.unwritten = []
        return super().tick(now)


class AsksAgainAfterEveryFullRepair(Node):
    """A full repair always starts the next round, news or not: at a heal, parallel rounds
    re-send each other's operations and multiply (the heal storm the 100-node benchmark met)."""

    def asks_again(self, carried, fresh):
        return carried >= self.config.repair_batch  # BUG: and fresh > 0


class PresenceNeverExpires(Node):
    """Every member a beacon was ever taken of stays online."""

    def online_peers(self, now):
        return frozenset(self.last_beacon)


class PresenceTtlInclusive(Node):
    """A member is online while its last beacon is at most (not less than) the TTL old."""

    def online_peers(self, now):
        ttl = self.config.presence_ttl_ns
        return frozenset(peer for peer, at in self.last_beacon.items() if now - at <= ttl)  # BUG: <


class ReplayTtlInMilliseconds(Node):
    """The replay cache is built with the TTL in milliseconds where nanoseconds are meant:
    it forgets a message 0.3 ms after taking it, so a replay inside the TTL is taken again."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.replay = ReplayCache(self.config.replay_ttl_ns // 1_000_000)


def signs_only_the_payload_hash(scheme, public_key, signer, topic, epoch_secs, payload_hash):
    """The upstream envelope bug: the signature covers the payload's hash and nothing of the
    header, so a captured message can be re-dated."""
    return payload_hash


def any_key_will_do(message):
    """Nobody checks that the signer is the key's PeerId."""
    return True


def forwards_without_decrementing(self, message, body, now, out):
    """A FOAF query is forwarded with the TTL it arrived with: it reaches members further
    away than its TTL allows."""
    to, _, query_id, target, ttl = body
    if ttl > 1 and to == self.node.peer_id and query_id not in self.seen and target != self.node.peer_id:
        original = self._send

        def send_same_ttl(peer, kind, onward_body, when, outbox):
            if kind == QUERY:
                onward_body = [onward_body[0], onward_body[1], ttl]  # BUG: should be ttl - 1
            original(peer, kind, onward_body, when, outbox)

        self._send = send_same_ttl
        try:
            return _REAL_ON_QUERY(self, message, body, now, out)
        finally:
            del self._send
    return _REAL_ON_QUERY(self, message, body, now, out)


_REAL_ON_QUERY = Foaf.on_query


def serves_expired_adverts(self, subject, now):
    """A coordinator answers lookups with adverts past their validity."""
    held = self.adverts.get(subject)
    return held[2] if held is not None else None  # BUG: and now < held[0]


def gives_up_without_failover(self, lookup_id, now, out):
    """A lookup whose coordinator did not answer in time fails at once instead of asking the
    next coordinator of the shard."""
    lookup = self.lookups[lookup_id]
    if lookup.asked:
        lookup.result = "unreachable"  # BUG: should ask lookup.candidates[lookup.asked]
        return
    _REAL_ASK_NEXT(self, lookup_id, now, out)


_REAL_ASK_NEXT = Rendezvous._ask_next


class SeqNotRestored(Node):
    """A restarted node restores its own operations from its store but numbers its next one
    from 1 again: every peer holding the old seq 1 takes the new one for a duplicate."""

    def _restore(self) -> None:
        super()._restore()
        self.next_seq = {topic: 1 for topic in self.apps}  # BUG: the count is not taken from the store


class HaveEveryTick(Node):
    """A node announces what it holds (a have) at every tick due, news or not: idle members
    keep each other busy for ever."""

    news = property(lambda self: True, lambda self, value: None)  # BUG: always news


def _bug(name, machine, description, kind, node_class=Node, patch=None, involves=()):
    @contextlib.contextmanager
    def plant():
        with contextlib.ExitStack() as stack:
            if patch is not None:
                stack.enter_context(mock.patch.object(*patch))
            yield Implementation(machine, f"bug-{name}", backend(node_class=node_class))

    return Bug(f"mesh-{name}", machine, description, kind, plant, correct="node", involves=frozenset(involves))


BUGS = [
    _bug("anti-entropy-skips-missed-updates", "mesh_tasklist", "anti-entropy digests claim every seq up to the highest, "
         "so a lost operation below a later one is never pulled", "lost-update", SkipsMissedUpdates),
    _bug("replay-cache-keyed-by-sender-timestamp", "mesh_tasklist", "the replay cache is keyed by signer and timestamp: "
         "a second message in the same second is refused", "replay-cache", ReplayKeyedBySenderTime),
    _bug("acknowledged-before-persisted", "mesh_tasklist", "an operation is acknowledged before its commit: a crash "
         "loses it", "persistence", AcknowledgesBeforePersisting, involves={"crash"}),
    _bug("full-repair-always-asks-again", "mesh_tasklist", "a full repair asks for more even when it brought "
         "nothing new: parallel repair rounds multiply at a heal", "amplification", AsksAgainAfterEveryFullRepair),
    _bug("seq-not-restored", "mesh_tasklist", "a restarted node numbers its operations from 1 again: its new "
         "operations reuse the seqs of its old ones", "persistence", SeqNotRestored, involves={"crash"}),
    _bug("have-every-tick", "mesh_tasklist", "a node announces what it holds at every tick due, with or without news",
         "amplification", HaveEveryTick),
    _bug("presence-never-expires", "mesh_presence", "a member stays online forever after one beacon", "expiry",
         PresenceNeverExpires),
    _bug("presence-ttl-inclusive", "mesh_presence", "a member is online while its beacon is at most the TTL old (<= "
         "for <)", "off-by-one", PresenceTtlInclusive),
    _bug("signature-does-not-cover-the-header", "mesh_adversary", "the signature covers the payload hash only, so a "
         "captured message can be re-dated", "signature-coverage",
         patch=(message, "signed_part", signs_only_the_payload_hash)),
    _bug("peer-id-not-bound-to-the-key", "mesh_adversary", "nobody checks that the signer is the PeerId of the key",
         "signature-coverage", patch=(message, "bound_to_key", any_key_will_do)),
    _bug("foaf-ttl-not-decremented", "mesh_presence", "a FOAF query is forwarded with the TTL it arrived with",
         "off-by-one", patch=(Foaf, "on_query", forwards_without_decrementing), involves={"foaf"}),
    _bug("rendezvous-no-failover", "mesh_presence", "a lookup gives up when its first coordinator does not answer "
         "instead of asking the next", "expiry", patch=(Rendezvous, "_ask_next", gives_up_without_failover),
         involves={"lookup"}),
]

#: Plants that change no behaviour a peer can see (equivalent mutants), kept out of the
#: catalogue: the sweeps "found" them only through a false alarm of the presence machine (a
#: querier that is its own coordinator was judged after in-flight adverts arrived; fixed),
#: and no search of 2 x 2,000 examples nor a trace written for them fails with them planted.
MASKED = {
    "replay-ttl-in-milliseconds": (ReplayTtlInMilliseconds, "a replayed beacon or operation the cache forgot is "
                                   "still refused: the node holds the operation and the beacon is not newer"),
    "rendezvous-serves-expired-adverts": (serves_expired_adverts, "an expired advert a coordinator serves is not "
                                          "believed: the querier checks the advert's expiry itself"),
}
