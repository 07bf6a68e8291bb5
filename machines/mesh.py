"""What every mesh machine shares: a run's nodes, their stores, and the acceptance check.

A ``MeshMachine`` is a ``harness.network.NetworkMachine`` whose nodes are built by the
registered mesh backend (``machines/adapters/node_mesh.py``): fixed identities per node
index, one in-memory SQLite store per node that outlives the node (a crash loses what
the node held in memory, a restart opens a new node on the same store), and every member
knowing every other's PeerId.

After every datagram a node handles, ``check_verdicts`` compares what the node did with
each message against ``models.gossip``: the machine knows each message's facts (genuine
traffic is well formed, bound, signed and from a member; an attacker's crafted message
says what is wrong with it), keeps the model's replay cache per node (reset when the node
restarts: it lives in memory), and demands the model's refusal exactly, or no refusal when
the model takes the message. Messages inside a member's repairs are genuine operations:
they are taken or known already, and repairs that brought nothing new start no exchange (no
digest goes out in answer: parallel rounds asking again multiply at a heal). A repair is
answered as ``check_repair_answer`` says: a digest back only for a full one with news, and
what it wants, up to a repair's worth, of what the node holds.

Each verdict names the message it judged (signer, topic, SPEC's msg_id, and the kind of one it
took), and a node's outcome counts (its metrics) are its verdicts' since it started. A node
numbers the operations it publishes 1, 2, 3, ... across restarts and acknowledges each with its
message's msg_id; a tick sends at most one have, only with news, and one once the have period has
passed with news (``check_have``).

Every operation a node publishes, or takes that it did not hold, it pushes to exactly its
children in the operation's broadcast tree (``models.gossip.push_tree``, the members'
order hashed by the machine), each once (``pushed``); and ``Trees`` over the member list
(fanout 1, 2 and the nodes') give every member the model's children and parent in that
tree, and a non-member none (``check_trees``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, ClassVar

import blake3

from harness.network import NetworkMachine
from implementations.limits import MAX_DIGEST_RANGES
from implementations.node import NodeConfig
from implementations.node.core import BEACON, DIGEST, HAVE, OP, REPAIR
from implementations.node.message import decode_datagram, decode_message, decode_payload
from implementations.node.tree import Trees
from implementations.storage import Store
from implementations.wire import DecodeError
from models import gossip

#: Verdicts no message a member node sent can get (``check_verdicts_of_genuine``).
NEVER_GENUINE = ("malformed payload", "not for me", "unknown topic", "no signing core", "not repairable")
#: What a node may answer a message the model takes: taken, held already, or a refusal of the node's own
#: layer (a payload's shape, its addressee, its topic or core; a rendezvous record's or query's content).
TAKEN_OUTCOMES = ("accepted", "duplicate", *NEVER_GENUINE, "advert expiry out of range", "bad proof", "not a coordinator",
                  "unknown lookup", "unknown query")
#: The model's refusals member traffic the network carried may get: it came late or twice.
GENUINE_REFUSALS = ("stale", "replayed")
#: A PeerId no member has.
OUTSIDER = blake3.blake3(b"not a member").digest()


def minus(ours: list, theirs: list) -> list:
    """The seqs of the sorted, disjoint ranges ``ours`` that ``theirs`` (sorted, disjoint) lacks, as ranges."""
    out = []
    for lo, hi in ours:
        start = lo
        for t_lo, t_hi in theirs:
            if t_hi >= start and t_lo <= hi:
                if t_lo > start:
                    out.append([start, t_lo - 1])
                start = max(start, t_hi + 1)
        if start <= hi:
            out.append([start, hi])
    return out


class MeshMachine(NetworkMachine):
    node_config: ClassVar[NodeConfig] = NodeConfig()

    def __init__(self, implementation, stats=None) -> None:
        super().__init__(implementation, stats)
        self.mesh_backend: Any = None
        self.identities: list[Any] = []
        self.members: list[bytes] = []
        self.stores: list[Store] = []
        self.caches: list[dict[bytes, int]] = []  # the model's replay cache, per node
        self.crafted: dict[bytes, gossip.Facts] = {}  # facts of messages an attacker made, by their bytes
        self.trees_checked: set[tuple[int, int]] = set()  # operations whose trees check_trees compared with the model
        self.repaired: list[Any] = []  # the verdicts of the messages the last datagram's repairs carried
        self.push_orders: dict[int, list[int]] = {}  # origin -> the other members in its BLAKE3 order (push_tree)
        self.due_pulls: set[bytes] = set()  # the members a node ticking now must pull from (pulls_due)
        # Per node, the gaps it was announced and has not pulled yet (the pull ledger): (topic, origin) ->
        # [announcer, seq ranges not pulled yet, the local time of the announcement]. Taken from the node's
        # note of an announcement when it first appears; from then on the machine's own, less what pulls took.
        self.gaps: list[dict[tuple[str, bytes], list]] = []
        self.pull_quota: dict[bytes, tuple[int, list]] = {}  # announcer -> (seqs a tick must pull, its gaps due now)
        self.delivering: Any = None  # the datagram the network is delivering (None: one handed by a rule)
        self.noted_before: dict = {}  # the gaps (topic, origin) the node being handed a datagram had noted before it
        self.own_seqs: dict[int, int] = {}  # node -> the seq of the last operation it published (its store outlives it)
        self.have_due: dict[int, int] = {}  # node -> its local time from which news must be announced
        self.beacon_due: dict[int, int] = {}  # node -> its local time from which its next beacon is due
        self.digest_due: dict[int, int] = {}  # node -> its local time from which its next anti-entropy digest is due
        self.had: dict[int, dict] = {}  # node -> what it held at its last have (or when it started): news is more
        self.outcomes: dict[int, Counter] = {}  # node -> its verdicts' outcomes since it started (node.counts)

    def start_mesh(self, count: int, skews_ns: list[int]) -> None:
        self.require(not self.nodes, "the machine has already started")
        self.mesh_backend = self.implementation.make_replica(0, self.clock)
        self.identities = [self.mesh_backend.identity(i) for i in range(count)]
        self.members = [ident.peer_id for ident in self.identities]
        self.peer_index = {peer: i for i, peer in enumerate(self.members)}
        self.stores = [Store(":memory:") for _ in range(count)]
        self.caches = [{} for _ in range(count)]
        self.start_network(count, skews_ns)

    def node_options(self, index: int) -> dict[str, Any]:
        return {"config": self.node_config}

    def make_node(self, index: int) -> Any:
        self.caches[index] = {}
        while len(self.gaps) <= index:
            self.gaps.append({})
        self.gaps[index] = {}  # a node that starts again was announced nothing yet
        node = self.mesh_backend.node(self.identities[index], self.members, self.stores[index], self.local_now(index),
                                      **self.node_options(index))
        self.had[index] = self.holdings(node)  # what it restored from its store is no news
        self.have_due[index] = self.local_now(index)  # a node may announce news at its first tick
        # (its first beacon at its first tick; its first digest one anti-entropy period after it starts)
        self.beacon_due[index] = self.local_now(index)
        self.digest_due[index] = self.local_now(index) + self.node_config.anti_entropy_period_ns
        self.outcomes[index] = Counter()
        return node

    @staticmethod
    def holdings(node: Any) -> dict:
        """Per topic a node carries, per origin, the seq ranges it holds."""
        return {topic: node.holds(topic) for topic in sorted(node.log)}

    def teardown(self) -> None:
        for store in self.stores:
            store.close()

    # ----- the acceptance check ---------------------------------------------------------

    def facts(self, raw: bytes) -> gossip.Facts:
        crafted = self.crafted.get(raw)
        if crafted is not None:
            return crafted
        try:
            message = decode_message(raw)
        except DecodeError:
            return gossip.Facts(well_formed=False)
        return gossip.Facts(
            bound=blake3.blake3(message.public_key).digest() == message.signer,
            member=message.signer in self.peer_index,
            epoch_secs=message.epoch_secs,
            replay_key=blake3.blake3(message.payload).digest(),
        )

    def check_verdicts(self, index: int, data: bytes) -> list[tuple[bytes, gossip.Facts, Any]]:
        """Each message's verdict at node ``index`` against the model; returns (message, facts, verdict)."""
        verdicts = self.nodes[index].take_verdicts()
        self.outcomes[index].update(verdict.outcome for verdict in verdicts)
        assert self.nodes[index].counts == dict(self.outcomes[index]), (
            f"node {index} counts the outcomes {self.nodes[index].counts}; its verdicts since it started were "
            f"{dict(self.outcomes[index])}")
        top = [v for v in verdicts if not v.repaired]
        try:
            raws = decode_datagram(data)
        except DecodeError:
            assert [v.outcome for v in top] == ["malformed"], f"node {index}: an undecodable datagram gave {top}"
            assert self.delivering is None, (
                f"node {index} got a datagram a member node sent that does not decode ({data[:40]!r}...)")
            return []
        assert len(top) == len(raws), f"node {index}: {len(top)} verdicts for {len(raws)} messages"
        now = self.local_now(index)
        pairs = []
        for raw, verdict in zip(raws, top, strict=True):
            self.check_verdict_names(index, raw, verdict)
            facts = self.facts(raw)
            expected = gossip.verdict(facts, self.caches[index], now)
            if expected == gossip.TAKEN:
                assert verdict.outcome in TAKEN_OUTCOMES, (
                    f"node {index} answered a message the model takes ({facts}) with {verdict.outcome!r}, none of "
                    f"{TAKEN_OUTCOMES}")
                self.caches[index] = gossip.remember(self.caches[index], facts, now)
            else:
                assert verdict.outcome == expected, (
                    f"node {index}: a message was {verdict.outcome!r}, the model says {expected!r} ({facts})")
            pairs.append((raw, facts, verdict))
        for raw, _, verdict in pairs:
            if verdict.kind == OP and verdict.outcome == "accepted":
                message = decode_message(raw)
                seq = decode_payload(message.payload)[1][0]
                targets = [peer for peer, sent in self.answer for one in decode_datagram(sent) if one == raw]
                self.pushed(index, self.peer_index[message.signer], seq, targets)
        self.check_verdicts_of_genuine(index, self.delivering, pairs)
        self.check_digest_answer(index, pairs)
        repaired = [verdict for verdict in verdicts if verdict.repaired]
        for verdict in repaired if self.delivering is not None else ():  # (a liar's repair may carry anything)
            assert verdict.outcome in ("accepted", "duplicate"), f"node {index} refused a repaired operation: {verdict}"
        if repaired and all(verdict.outcome == "duplicate" for verdict in repaired):
            asked = [self.peer_index.get(peer, "?") for peer, kind in self.answered_kinds() if kind == DIGEST]
            assert not asked, (f"node {index} took repairs of {len(repaired)} operations it held already and asked node(s) "
                               f"{asked} for more: a repair that brings nothing new starts no exchange (the heal storm)")
        self.check_repair_answer(index, pairs, repaired)
        self.repaired = repaired
        return pairs

    @staticmethod
    def msg_id(message: Any) -> bytes:
        """SPEC's message id: BLAKE3(topic || epoch_secs u64 LE || signer || BLAKE3(payload))."""
        return blake3.blake3(message.topic.encode() + message.epoch_secs.to_bytes(8, "little") + message.signer
                             + blake3.blake3(message.payload).digest()).digest()

    def check_verdict_names(self, index: int, raw: bytes, verdict: Any) -> None:
        """A verdict names the message it judged: its signer, topic and msg_id (none of them for
        bytes that are no message), and the kind of a message it took."""
        try:
            message = decode_message(raw)
        except DecodeError:
            named = (None, None, None)
        else:
            named = (message.signer, message.topic, self.msg_id(message))
        assert (verdict.signer, verdict.topic, verdict.msg_id) == named, (
            f"node {index}'s verdict {verdict.outcome!r} names signer, topic and msg_id "
            f"{(verdict.signer, verdict.topic, verdict.msg_id)!r:.200}, the message's are {named!r:.200}")
        if verdict.outcome in ("accepted", "duplicate"):
            kind = decode_payload(message.payload)[0]
            assert verdict.kind == kind, f"node {index} took a {kind} message and its verdict names the kind {verdict.kind!r}"

    # ----- the eager push ------------------------------------------------------------------

    def published(self, index: int, published: Any) -> None:
        """Node ``index`` published an operation (``Published``: its msg_id, seq and the datagrams
        it sent, its pushes). A node's operations count 1, 2, 3, ... in the order it publishes
        them, across restarts (a peer that holds the first n has them all: a first seq of 2 would
        leave every peer lacking 1 forever); the msg_id it acknowledges is the pushed message's,
        as SPEC defines it: BLAKE3(topic || epoch_secs u64 LE || signer || BLAKE3(payload))."""
        seq, outgoing = published.seq, published.outgoing
        expected = self.own_seqs.get(index, 0) + 1
        assert seq == expected, f"node {index} published its operation number {expected} as seq {seq}"
        self.own_seqs[index] = seq
        for raw in {raw for _, sent in outgoing for raw in decode_datagram(sent)}:
            msg_id = self.msg_id(decode_message(raw))
            assert published.msg_id == msg_id, (
                f"node {index} acknowledged operation {seq} as msg_id {published.msg_id!r:.20}, its message's is {msg_id!r:.20}")
        self.pushed(index, index, seq, [peer for peer, sent in outgoing for _ in decode_datagram(sent)])

    def pushed(self, index: int, origin: int, seq: int, targets: list[bytes]) -> None:
        """Node ``index`` made or took operation ``(origin, seq)`` and pushed it to ``targets``:
        exactly to its children in the model's tree, each once."""
        pushed = sorted(self.peer_index[peer] for peer in targets)
        tree = self.push_tree(origin, seq)
        children = sorted(tree[index])
        assert pushed == children, (
            f"node {index} pushed operation ({origin}, {seq}) to nodes {pushed}; its children in the tree are {children} "
            f"(the tree: {tree})")
        if (origin, seq) not in self.trees_checked:
            self.trees_checked.add((origin, seq))
            for fanout in sorted({1, 2, self.node_config.fanout}):
                self.check_trees(origin, seq, fanout)

    def check_trees(self, origin: int, seq: int, fanout: int) -> None:
        """``Trees`` over the member list, as any member or an outsider computes them, against the
        model: every member's children and parent in ``(origin, seq)``'s tree; an outsider has
        none, and pushes to no one."""
        tree = self.push_tree(origin, seq, fanout)
        parents = {child: self.members[parent] for parent, below in tree.items() for child in below}
        trees, root = Trees(self.members, fanout), self.members[origin]
        for member, peer in enumerate(self.members):
            children = [self.peer_index[p] for p in trees.children(root, seq, peer)]
            parent = trees.parent(root, seq, peer)
            assert sorted(children) == sorted(tree[member]) and parent == parents.get(member), (
                f"Trees with fanout {fanout}: node {member} in operation ({origin}, {seq})'s tree has children {children} "
                f"and parent {self.peer_index.get(parent)}; the model's tree is {tree}")
        assert trees.children(root, seq, OUTSIDER) == [] and trees.parent(root, seq, OUTSIDER) is None, (
            f"Trees with fanout {fanout}: a non-member has a place in operation ({origin}, {seq})'s tree")
        assert trees.push_targets(root, seq) == [], f"Trees with fanout {fanout} and no own member push to someone"

    def push_tree(self, origin: int, seq: int, fanout: int | None = None) -> dict[int, list[int]]:
        """``models.gossip.push_tree`` over node indices, the order hashed here, not by the node."""
        order = self.push_orders.get(origin)
        if order is None:  # the members are fixed for a run: each origin's order is hashed once
            root = self.members[origin]
            order = self.push_orders[origin] = sorted((i for i in range(len(self.members)) if i != origin),
                                                      key=lambda i: blake3.blake3(root + self.members[i]).digest())
        return gossip.push_tree(origin, order, seq, fanout or self.node_config.fanout)

    def answered_payloads(self) -> list[tuple[bytes, str, Any]]:
        """(peer, payload kind, body) of every message the node just sent in answer to a datagram."""
        return [(peer, *decode_payload(decode_message(raw).payload))
                for peer, data in self.answer for raw in decode_datagram(data)]

    def answered_kinds(self) -> list[tuple[bytes, str]]:
        """(peer, payload kind) of every message the node just sent in answer to a datagram."""
        return [(peer, kind) for peer, kind, _ in self.answered_payloads()]

    def hand(self, target: int, data: bytes, datagram=None) -> None:
        self.delivering = datagram
        self.noted_before = dict(self.nodes[target]._announced)
        try:
            super().hand(target, data, datagram)
        finally:
            self.delivering = None

    def after_delivery(self, index: int, datagram, data: bytes) -> None:
        pairs = self.check_verdicts(index, data)
        self.check_push_announcements(index, pairs)
        self.check_have_announcements(index, pairs)

    def check_push_announcements(self, index: int, pairs: list) -> None:
        """An operation taken while an earlier one of its origin is missing announces that gap, by
        its origin, now: the seqs below it the node lacks (at most ``MAX_DIGEST_RANGES`` ranges),
        unless a gap of that origin and topic is noted already (the first announcement is the one
        acted on). Checked for datagrams of operations alone, walked in order: what the node held
        when it took one is what it holds now less the operations the datagram gave it after that
        one; a have or a repair in the datagram changes what is noted or held between them."""
        if not pairs or any(verdict.kind in (HAVE, REPAIR) for _, _, verdict in pairs):
            return
        taken = []  # (topic, origin, seq) of each operation taken, in order
        for raw, _, verdict in pairs:
            if verdict.kind == OP and verdict.outcome == "accepted":
                message = decode_message(raw)
                taken.append((message.topic, message.signer, decode_payload(message.payload)[1][0]))
        node, now, noted, expected = self.nodes[index], self.local_now(index), set(self.noted_before), {}
        for i, (topic, origin, seq) in enumerate(taken):
            later = [[s, s] for s in sorted({s for t, o, s in taken[i + 1:] if (t, o) == (topic, origin)})]
            gap = minus([[1, seq - 1]], minus(node.holds(topic).get(origin, []), later)) if seq > 1 else []
            if gap and (topic, origin) not in noted:
                noted.add((topic, origin))
                expected[topic, origin] = (origin, gap[:MAX_DIGEST_RANGES], now)
        for key, (by, gap, since) in expected.items():
            got = node._announced.get(key)
            noted_gap = None if got is None else (got[0], [list(r) for r in got[1]], got[2])
            assert noted_gap == (by, gap, since), (
                f"node {index} took operation(s) of node {self.peer_index.get(key[1])} on {key[0]!r} while lacking seqs "
                f"{gap}: it noted the gap {noted_gap and (self.peer_index.get(noted_gap[0]), noted_gap[1], noted_gap[2])}, "
                f"not ({self.peer_index.get(by)}, {gap}, {since}) (announced by its origin, now)")

    def check_have_announcements(self, index: int, pairs: list) -> None:
        """A have (``[to, nonce, digest]``) a node took, alone in its datagram, announces what its sender
        holds: for each topic the node carries and each member the have lists with seqs, the node notes
        the gap it lacks of them (at most ``MAX_DIGEST_RANGES`` ranges), by the sender, now, unless a
        gap of that member and topic is noted already (the first announcement is the one acted on). It
        notes nothing else: not a stranger origin, not an origin listed without seqs, not what it holds."""
        if len(pairs) != 1 or (pairs[0][2].kind, pairs[0][2].outcome) != (HAVE, "accepted"):
            return
        raw, _, verdict = pairs[0]
        node, now, expected = self.nodes[index], self.local_now(index), dict(self.noted_before)
        for topic, origins in decode_payload(decode_message(raw).payload)[1][2]:
            held = node.holds(topic) if topic in node.log else None
            for origin, ranges in origins if held is not None else ():
                gap = minus(ranges, held.get(origin, []))
                if origin in self.peer_index and gap and (topic, origin) not in expected:
                    expected[topic, origin] = (verdict.signer, gap[:MAX_DIGEST_RANGES], now)
        noted = {key: (by, [list(r) for r in gap], since) for key, (by, gap, since) in node._announced.items()}
        expected = {key: (by, [list(r) for r in gap], since) for key, (by, gap, since) in expected.items()}
        assert noted == expected, (
            f"node {index} took a have of node {self.peer_index.get(verdict.signer)} and notes the gaps "
            f"{self.named_gaps(noted)}, not {self.named_gaps(expected)}")

    def named_gaps(self, gaps: dict) -> list:
        return sorted((topic, self.peer_index.get(origin, origin.hex()[:8]), self.peer_index.get(by), gap, since)
                      for (topic, origin), (by, gap, since) in gaps.items())

    def check_verdicts_of_genuine(self, index: int, datagram, pairs: list) -> None:
        """A datagram the network carried holds only what member nodes sent: it decodes, and no
        verdict of it may say a message is malformed, unbound, badly signed or a stranger's, or that
        its payload is malformed, addressed to another node, of a topic the receiver lacks or for a
        core it lacks (every node carries every topic and core of the run): only late or twice."""
        if datagram is None:  # (handed by an attacker or a liar: those verdicts are the rule's to check)
            return
        never = (*NEVER_GENUINE, *(refusal for refusal in gossip.REFUSALS if refusal not in GENUINE_REFUSALS))
        wrong = [verdict.outcome for _, _, verdict in pairs if verdict.outcome in never]
        assert not wrong, f"node {index} gave member traffic the network carried the verdicts {wrong}"

    # ----- anti-entropy: what a digest is answered with -------------------------------------

    def check_digest_answer(self, index: int, pairs: list) -> None:
        """A digest (``[[topic, [[origin, ranges]...]]...]``) a node took, alone of its datagram's messages
        to ask for an answer, is answered with one repair to its sender exactly when either side lacks
        something: it carries as many of the operations the node holds and the digest lacks as a repair
        holds (``repair_batch``; which ones is the node's choice) and wants, per topic the node carries,
        every member's seqs the digest lists and the node lacks."""
        digests = [(raw, verdict) for raw, _, verdict in pairs if verdict.kind == DIGEST and verdict.outcome == "accepted"]
        if len(digests) != 1 or any(verdict.kind == REPAIR for _, _, verdict in pairs):
            return
        raw, verdict = digests[0]
        body = decode_payload(decode_message(raw).payload)[1]
        node, sender = self.nodes[index], verdict.signer
        theirs: dict[str, dict[bytes, list]] = {}
        for topic, origins in body[2]:
            theirs.setdefault(topic, {}).update((origin, ranges) for origin, ranges in origins)
        lacked, want = set(), []
        for topic in sorted(node.log):
            held = node.holds(topic)
            for origin, ranges in held.items():
                lacked |= {(topic, origin, seq) for lo, hi in minus(ranges, theirs.get(topic, {}).get(origin, []))
                           for seq in range(lo, hi + 1)}
            lacking = [[origin, gap[:MAX_DIGEST_RANGES]] for origin, ranges in sorted(theirs.get(topic, {}).items())
                       if origin in self.peer_index and (gap := minus(ranges, held.get(origin, [])))]
            if lacking:
                want.append([topic, lacking])
        answers = [answer for peer, kind, answer in self.answered_payloads() if kind == REPAIR and peer == sender]
        if not lacked and not want:
            assert not answers, f"node {index} answered a digest of node {self.peer_index[sender]} that lacks nothing, nor has"
            return
        assert len(answers) == 1, f"node {index} answered a digest of node {self.peer_index[sender]} with {len(answers)} repairs"
        to, nonce, raws, wanted = answers[0]
        carried = [decode_message(raw) for raw in raws]
        carried = [(m.topic, m.signer, decode_payload(m.payload)[1][0]) for m in carried]
        assert to == sender and type(nonce) is bytes and len(nonce) == 16 and wanted == (want or None), (
            f"node {index} answered a digest of node {self.peer_index[sender]} wanting {wanted}; it lacks {want}")
        assert len(set(carried)) == len(carried) == min(len(lacked), self.node_config.repair_batch) and set(carried) <= lacked, (
            f"node {index} answered a digest of node {self.peer_index[sender]} with operations {carried}; of {len(lacked)} "
            f"it lacks, a repair carries {self.node_config.repair_batch}")

    def check_repair_answer(self, index: int, pairs: list, repaired: list) -> None:
        """A repair (``[to, nonce, messages, want]``) a node took, alone of its datagram's messages to
        ask for an answer: each message it carries has a verdict of its own, in order, naming it; the
        node asks the repair's sender again, with a digest of all it holds, exactly when the repair
        was full (``repair_batch`` messages or more) and brought something new; and it answers a want
        with one repair to the sender carrying as many of the wanted operations it holds as a repair
        holds (which ones is the node's choice) and wanting nothing, or with none when it holds none."""
        repairs = [(raw, verdict) for raw, _, verdict in pairs if verdict.kind == REPAIR and verdict.outcome == "accepted"]
        if len(repairs) != 1 or any(verdict.kind == DIGEST and verdict.outcome == "accepted" for _, _, verdict in pairs):
            return
        raw, verdict = repairs[0]
        _, _, raws, want = decode_payload(decode_message(raw).payload)[1]
        node, sender, batch = self.nodes[index], verdict.signer, self.node_config.repair_batch
        assert len(repaired) == len(raws), f"node {index} gave {len(repaired)} verdicts to a repair of {len(raws)} messages"
        for inner, judged in zip(raws, repaired, strict=True):
            self.check_verdict_names(index, inner, judged)
        fresh = sum(judged.outcome == "accepted" for judged in repaired)
        answered = self.answered_payloads()
        digests = [body for _, kind, body in answered if kind == DIGEST]
        if len(raws) >= batch and fresh:
            digest = [[topic, [[origin, [list(r) for r in ranges[:MAX_DIGEST_RANGES]]]
                               for origin, ranges in sorted(held.items())]] for topic, held in self.holdings(node).items()]
            assert len(digests) == 1 and digests[0][0] == sender and digests[0][2] == digest, (
                f"node {index} took a full repair ({len(raws)} messages, {fresh} new) from node "
                f"{self.peer_index.get(sender)} and sent the digests {digests!r:.300}: it asks again, with one "
                f"digest to the sender of all it holds ({digest!r:.300})")
        else:
            assert not digests, (f"node {index} took a repair of {len(raws)} messages ({fresh} new; a full one has "
                                 f"{batch}) and sent {len(digests)} digest(s): only a full repair with news asks again")
        holds: dict[tuple[str, bytes], list] = {}  # what the node holds of what the repair wants
        for topic, origins in want or ():
            held = node.holds(topic)
            for origin, ranges in origins:
                if got := minus(ranges, minus(ranges, held.get(origin, []))):
                    holds[topic, origin] = got
        answers = [body for _, kind, body in answered if kind == REPAIR]
        expected = min(batch, sum(hi - lo + 1 for ranges in holds.values() for lo, hi in ranges))
        if not expected:
            assert not answers, f"node {index} answered a repair wanting {want!r:.300}, of which it holds nothing"
            return
        assert len(answers) == 1 and answers[0][0] == sender and answers[0][3] is None, (
            f"node {index} answered a repair of node {self.peer_index.get(sender)} wanting {want!r:.200} with "
            f"{[(a[0] == sender, len(a[2]), a[3]) for a in answers]} (to the sender?, messages, want): one repair "
            f"to the sender, wanting nothing")
        carried = [decode_message(raw) for raw in answers[0][2]]
        carried = [(m.topic, m.signer, decode_payload(m.payload)[1][0]) for m in carried]
        assert len(set(carried)) == len(carried) == expected and all(
            any(lo <= seq <= hi for lo, hi in holds.get((topic, origin), [])) for topic, origin, seq in carried), (
            f"node {index} answered a repair wanting {want!r:.200} with the operations {carried!r:.300}; it holds "
            f"{holds!r:.300} of them, and a repair carries {batch}")

    # ----- what a node's log answers ---------------------------------------------------------

    def check_logs(self, index: int, messages: bool = False) -> None:
        """Each origin's log a node holds answers as its ranges say: which seqs it holds (one past
        each end too) and its greatest; it keeps the run of seqs from 1 in order (its watermark that
        run's end, as ``OriginLog`` says: a list slot a message, the extras only past the run), not
        as extras; with ``messages``, the message it keeps for each seq is that origin's signed
        operation of that seq."""
        node = self.nodes[index]
        for topic, logs in node.log.items():
            for origin, ranges in node.holds(topic).items():
                log = logs[origin]
                edges = {seq for lo, hi in ranges for seq in (lo - 1, lo, hi, hi + 1) if seq}  # (seqs start at 1)
                wrong = sorted(seq for seq in edges if (seq in log) != any(lo <= seq <= hi for lo, hi in ranges))
                assert not wrong and log.max_seq == max((hi for _, hi in ranges), default=0), (
                    f"node {index}'s log of node {self.peer_index.get(origin)} on {topic!r} holds {ranges}, "
                    f"says it holds seqs {[seq for seq in sorted(edges) if seq in log]}, the greatest {log.max_seq}")
                prefix = ranges[0][1] if ranges and ranges[0][0] == 1 else 0  # (every seq from 1 to here is held)
                assert log.watermark == len(log.held) == prefix and min(log.extras, default=prefix + 2) > prefix + 1, (
                    f"node {index}'s log of node {self.peer_index.get(origin)} on {topic!r} holds {ranges} with the "
                    f"watermark {log.watermark}, {len(log.held)} messages in order and the seqs {sorted(log.extras)[:8]} "
                    f"above: the watermark is the end of the run of seqs from 1 and the extras lie past it, not at it")
                for lo, hi in ranges if messages else ():
                    for seq in range(lo, hi + 1):
                        message = decode_message(log.message(seq))
                        kind, body = decode_payload(message.payload)
                        assert (message.signer, message.topic, kind, body[0]) == (origin, topic, OP, seq), (
                            f"node {index} keeps for seq {seq} of node {self.peer_index.get(origin)} on {topic!r} "
                            f"a {kind} of node {self.peer_index.get(message.signer)} on {message.topic!r} ({body[0]!r:.20})")

    # ----- the replay cache after a tick ----------------------------------------------------

    def step_tick(self, node: int) -> None:
        self.require_node(node, up=True)
        self.due_pulls = self.pulls_due(node)
        super().step_tick(node)

    def note_announcements(self, index: int) -> None:
        """Take into the pull ledger each gap the node noted since its last tick (an announcement is
        noted when it is received: in a have, or by a later operation of its origin pushed)."""
        gaps = self.gaps[index]
        for key, (by, gap, since) in self.nodes[index]._announced.items():
            if key not in gaps:
                gaps[key] = [by, [list(r) for r in gap], since]

    def pulls_due(self, index: int) -> set[bytes]:
        """The members node ``index`` must pull from at a tick now: each that announced (in a have, or
        by pushing a later operation) a gap ``gap_pull_ns`` ago or more that the node still lacks
        part of (the gaps as the node noted them, the first announcement of each, less what the node
        pulled of them since, by the machine's own count). Also ``pull_quota``: how many seqs the
        pull from each must want (as many as a repair carries less one, or all it lacks if fewer)."""
        self.note_announcements(index)
        node, now, due, lacking = self.nodes[index], self.local_now(index), set(), {}
        for (topic, origin), (by, gap, since) in self.gaps[index].items():
            missing = minus(gap, node.holds(topic).get(origin, []))
            if now - since >= self.node_config.gap_pull_ns and missing:
                due.add(by)
                lacking.setdefault(by, []).append((topic, origin, missing))
        self.pull_quota = {by: (min(self.node_config.repair_batch - 1, sum(hi - lo + 1 for g in gaps for lo, hi in g[2])), gaps)
                           for by, gaps in lacking.items()}
        return due

    def check_pull_quota(self, index: int, pulls: dict[bytes, list]) -> None:
        """Each pull of a tick wants only seqs of gaps its receiver announced that are due and still
        missing, no seq twice across ticks, and exactly as many as ``pull_quota`` says (so what a
        pull leaves is pulled at the next tick, not forgotten nor asked again); the ledger then
        forgets what was pulled, and every gap due that the node no longer lacks; the node keeps
        exactly the gaps the ledger keeps (so a gap it notes at the next tick is a new announcement)."""
        gaps = self.gaps[index]
        for by, (quota, due) in self.pull_quota.items():
            wanted = 0
            for topic, origins in pulls.get(by, []):
                for origin, ranges in origins:
                    missing = next((g[2] for g in due if g[:2] == (topic, origin)), [])
                    outside = minus(ranges, missing)
                    assert not outside, (
                        f"node {index} pulled seqs {outside} of node {self.peer_index.get(origin)} on {topic!r} from node "
                        f"{self.peer_index[by]}: the gaps it announced that are due and still missing are {missing} "
                        f"(a seq pulled before is not asked again)")
                    wanted += sum(hi - lo + 1 for lo, hi in ranges)
                    gaps[topic, origin][1] = minus(gaps[topic, origin][1], ranges)
            assert wanted == quota, (
                f"node {index} pulled {wanted} seqs from node {self.peer_index[by]} at a tick, which announced "
                f"{[(self.peer_index.get(o), g) for _, o, g in due]} still missing: a pull takes {quota} (a repair holds "
                f"{self.node_config.repair_batch}), the rest at the next tick")
        node, now = self.nodes[index], self.local_now(index)
        for (topic, origin), (_, gap, since) in list(gaps.items()):
            if now - since >= self.node_config.gap_pull_ns and not minus(gap, node.holds(topic).get(origin, [])):
                del gaps[topic, origin]
        kept, ledger = set(node._announced), set(gaps)
        wrong = []
        if kept - ledger:
            wrong.append(f"keeps gaps to pull of {self.gap_names(kept - ledger)}, which it pulled all of or holds")
        if ledger - kept:
            wrong.append(f"keeps no gap of {self.gap_names(ledger - kept)}, which it still lacks and did not pull")
        assert not wrong, f"after a tick node {index} " + "; ".join(wrong)

    def gap_names(self, keys) -> list[str]:
        return sorted(f"node {self.peer_index.get(origin)} on {topic!r}" for topic, origin in keys)

    def ticked(self, index: int, outgoing) -> None:
        self.check_replay_cache(index)
        sent = [(peer, *decode_payload(decode_message(raw).payload)) for peer, data in outgoing for raw in decode_datagram(data)]
        self.check_pulls(index, sent)
        self.check_have(index, sent)
        self.check_cadence(index, sent)

    def check_cadence(self, index: int, sent: list[tuple[bytes, str, list]]) -> None:
        """A tick sends an anti-entropy digest (to one member) exactly when ``anti_entropy_period_ns`` has
        passed since the node's last (or since it started), and its own beacon (the one message, to up to
        ``fanout`` members) exactly when ``beacon_period_ns`` has (at once after a start), and none with
        beacons off: the periods bound what a quiet mesh sends. ``sent``: each message the tick sent."""
        now, config = self.local_now(index), self.node_config
        others = len(self.members) > 1
        digests = [peer for peer, kind, _ in sent if kind == DIGEST]
        due = now >= self.digest_due[index] and others
        assert len(digests) == int(due), (
            f"node {index} sent {len(digests)} anti-entropy digests at a tick "
            f"{now - self.digest_due[index]:+} ns from when its next was due (one every {config.anti_entropy_period_ns} ns)")
        if digests:
            self.digest_due[index] = now + config.anti_entropy_period_ns
        beacons = [peer for peer, kind, _ in sent if kind == BEACON]
        due = config.beacons and now >= self.beacon_due[index]
        assert bool(beacons) == bool(due and others), (
            f"node {index} sent its beacon to {len(beacons)} members at a tick {now - self.beacon_due[index]:+} ns from "
            f"when its next was due (beacons {'on' if config.beacons else 'off'}, one every {config.beacon_period_ns} ns)")
        if due:
            self.beacon_due[index] = now + config.beacon_period_ns

    def check_have(self, index: int, sent: list[tuple[bytes, str, list]]) -> None:
        """A tick sends at most one have (an announcement of what the node holds), and only with
        news: an operation the node took or made since its last have, or since it started; and a
        tick with news sends one once ``have_period_ns`` has passed since the last (or at once after
        a start). ``sent``: each message the tick sent, as (peer, kind, body)."""
        haves = [peer for peer, kind, _ in sent if kind == HAVE]
        held, now = self.holdings(self.nodes[index]), self.local_now(index)
        if not haves:
            assert held == self.had[index] or now < self.have_due[index], (
                f"node {index} has news (an operation it took or made since its last have) and sent no have, "
                f"{now - self.have_due[index]} ns after have_period_ns had passed")
            return
        assert len(haves) == 1, f"node {index} sent {len(haves)} haves at one tick"
        assert now >= self.have_due[index], (
            f"node {index} sent a have {self.have_due[index] - now} ns before have_period_ns had passed since its last")
        assert held != self.had[index], (
            f"node {index} sent a have with no news: it holds what it held at its last have (or its start)")
        self.had[index], self.have_due[index] = held, now + self.node_config.have_period_ns

    def check_pulls(self, index: int, sent: list[tuple[bytes, str, list]]) -> None:
        """A pull a tick sends (a repair that carries no operations and wants some) goes to one
        member, addressed to it; it wants, per topic, members' seqs as sorted, disjoint, not
        adjacent ranges, only seqs the node lacks, and fewer than ``repair_batch`` of them (its
        answer is never a full repair, which would start a round of digests). ``sent``: each
        message the tick sent, as (peer, kind, body)."""
        node, pulls, pulled = self.nodes[index], {}, []
        for peer, kind, body in sent:
            if kind != REPAIR or body[2]:
                continue
            to, _, _, want = body
            assert to == peer and peer in self.peer_index and want, (
                f"node {index} sent a pull of {want} addressed to {to.hex()[:8]} to {peer.hex()[:8]}")
            pulls.setdefault(peer, []).extend(want)
            pulled.append(self.peer_index[peer])
            wanted = 0
            for topic, origins in want:
                held = node.holds(topic)
                for origin, ranges in origins:
                    assert origin in self.peer_index, f"node {index} pulled operations of a non-member"
                    after = 0
                    for lo, hi in ranges:
                        assert after < lo <= hi, f"node {index} pulled the seq ranges {ranges}: not sorted, disjoint, apart"
                        after = hi + 1
                        wanted += hi - lo + 1
                        for h_lo, h_hi in held.get(origin, []):
                            assert hi < h_lo or h_hi < lo, (
                                f"node {index} pulled seqs {lo}..{hi} of node {self.peer_index[origin]}, "
                                f"holding {h_lo}..{h_hi}")
            assert wanted < self.node_config.repair_batch, (
                f"node {index} pulled {wanted} operations from node {self.peer_index[peer]} at one tick: a repair holds "
                f"{self.node_config.repair_batch}, and a full one would start a round of digests")
        pulled.sort()
        due = sorted(self.peer_index[peer] for peer in self.due_pulls)
        assert pulled == due, (f"node {index} pulled from nodes {pulled} at a tick; gaps they announced at least gap_pull_ns "
                               f"ago that it still lacks are due from nodes {due}")
        self.check_pull_quota(index, pulls)

    def check_replay_cache(self, index: int) -> None:
        """A tick forgets every key taken a replay TTL ago or more by the node's clock (the cache
        stays bounded) and keeps exactly the model's younger ones, each at the local time it was
        last taken; the node says each of those is seen up to the nanosecond before its TTL runs
        out and not at it."""
        now, ttl, cache = self.local_now(index), self.node_config.replay_ttl_ns, self.nodes[index].replay
        live = self.caches[index] = {key: at for key, at in self.caches[index].items() if now - at < ttl}
        assert cache.entries == live, (
            f"node {index} keeps {len(cache.entries)} replay keys after a tick, the model {len(live)}: "
            f"{len(set(cache.entries) - set(live))} it should have forgotten, {len(set(live) - set(cache.entries))} it lacks, "
            f"{sum(cache.entries.get(k) not in (None, at) for k, at in live.items())} remembered at another time")
        for key, at in live.items():
            assert cache.seen(key, at + ttl - 1) and not cache.seen(key, at + ttl), (
                f"node {index}: a replay key taken at {at} is not seen until exactly {at + ttl} (the replay TTL)")
