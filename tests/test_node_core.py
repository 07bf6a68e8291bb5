"""The node core's parts on their own: identities, messages, ranges, the replay cache, restart."""

from __future__ import annotations

import math

import blake3
import pytest

from implementations.node import ED25519, ML_DSA_65, Node, NodeConfig, identity
from implementations.node.core import OriginLog, ReplayCache, split_ranges, subtract
from implementations.node.identity import SIGNATURE_BYTES, MemoVerifier, Verifier, peer_id, verify
from implementations.node.message import (
    authenticate,
    decode_datagram,
    decode_message,
    encode_datagram,
    msg_id,
    seal,
    signed_part,
)
from implementations.node.tree import Trees
from implementations.storage import Store
from implementations.wire import DecodeError

S = 1_000_000_000
NOW = 1_700_000_000 * S


def seed(n: int) -> bytes:
    return blake3.blake3(bytes([n])).digest()


@pytest.mark.parametrize("scheme", [ED25519, ML_DSA_65])
def test_both_schemes_sign_and_bind_the_peer_id_to_the_key(scheme):
    me = identity(scheme, seed(1))
    assert me.peer_id == blake3.blake3(me.public_key).digest() == peer_id(me.public_key)
    raw = seal(me, "t", NOW, b"payload")
    message = decode_message(raw)
    assert len(message.signature) == SIGNATURE_BYTES[scheme]
    assert authenticate(message, Verifier()) is None
    assert message.msg_id == blake3.blake3(b"t" + (NOW // S).to_bytes(8, "little") + me.peer_id
                                          + blake3.blake3(b"payload").digest()).digest()
    assert msg_id("t", NOW // S, me.peer_id, blake3.blake3(b"payload").digest()) == message.msg_id


@pytest.mark.parametrize("scheme", [ED25519, ML_DSA_65])
def test_the_signature_covers_every_header_field(scheme):
    me = identity(scheme, seed(2))
    message = decode_message(seal(me, "t", NOW, b"payload"))
    fields = [message.scheme, message.public_key, message.signer, message.topic, message.epoch_secs, message.payload_hash]
    assert verify(scheme, message.public_key, signed_part(*fields), message.signature)
    other = identity(scheme, seed(3))
    # (the scheme fixes the key and signature sizes: a message of another scheme does not decode)
    for n, changed in [(1, other.public_key), (2, other.peer_id), (3, "u"), (4, message.epoch_secs + 1),
                       (5, blake3.blake3(b"other").digest())]:
        altered = [*fields[:n], changed, *fields[n + 1:]]
        assert not verify(scheme, message.public_key, signed_part(*altered), message.signature), f"field {n}"


def test_a_key_that_is_not_the_signers_is_refused_before_the_signature():
    me, other = identity(ED25519, seed(3)), identity(ED25519, seed(4))
    forged = decode_message(seal(other, "t", NOW, b"x"))
    substituted = forged.__class__(**{**{f: getattr(forged, f) for f in forged.__slots__}, "signer": me.peer_id})
    assert authenticate(substituted, Verifier()) == "peer id does not match key"


def test_memo_verifier_answers_like_the_verifier_and_keys_on_the_public_key():
    a, b = identity(ED25519, seed(5)), identity(ED25519, seed(6))
    message = b"m"
    signature = a.sign(message)
    memo = MemoVerifier()
    assert memo(ED25519, a.public_key, message, signature)
    assert not memo(ED25519, b.public_key, message, signature)
    assert memo.checked == 2


@pytest.mark.parametrize("data", [b"", b"\x91", encode_datagram([]), encode_datagram([b"x"] * 257), b"\xc1" * 10])
def test_bad_datagrams_are_decode_errors(data):
    with pytest.raises(DecodeError):
        decode_datagram(data)


def test_subtract_ranges():
    assert subtract([[1, 10]], [[2, 3], [5, 5], [9, 20]]) == [[1, 1], [4, 4], [6, 8]]
    assert subtract([[1, 3], [7, 9]], []) == [[1, 3], [7, 9]]
    assert subtract([[1, 3]], [[1, 3]]) == []
    assert subtract([[5, 6]], [[1, 2**64 - 1]]) == []


def test_an_origin_log_keeps_a_watermark_and_the_seqs_above_it():
    log = OriginLog()
    for seq in (1, 2, 4, 7, 3):
        log.add(seq, b"%d" % seq)
    assert log.watermark == 4 and set(log.extras) == {7}
    assert log.ranges() == [[1, 4], [7, 7]] and log.max_seq == 7
    assert [log.message(seq) for seq in (1, 2, 3, 4, 7)] == [b"1", b"2", b"3", b"4", b"7"]


def test_the_replay_cache_ages_by_the_local_clock():
    cache = ReplayCache(300 * S)
    assert cache.take(b"k", NOW)
    assert cache.seen(b"k", NOW + 300 * S - 1)
    assert not cache.seen(b"k", NOW + 300 * S)
    cache.purge(NOW + 300 * S)
    assert cache.entries == {}


class Log:
    def __init__(self):
        self.items = []

    def apply(self, data):
        if data == b"bad":
            raise DecodeError("bad data")
        self.items.append(data)


def test_own_operations_survive_a_restart_and_their_sequence_continues():
    me = identity(ED25519, seed(7))
    store = Store(":memory:")
    node = Node(me, [me.peer_id], store, NOW, apps={"t": Log()})
    assert [node.publish("t", d, NOW).seq for d in (b"a", b"b")] == [1, 2]
    app = Log()
    again = Node(me, [me.peer_id], store, NOW, apps={"t": app})
    assert app.items == [b"a", b"b"]
    assert again.publish("t", b"c", NOW).seq == 3
    assert again.boot == node.boot + 1 and again.nonce() != node.nonce()


def test_an_operation_the_application_refuses_is_not_logged():
    a, b = identity(ED25519, seed(8)), identity(ED25519, seed(9))
    members = [a.peer_id, b.peer_id]
    sender = Node(a, members, Store(":memory:"), NOW, apps={"t": Log()}, config=NodeConfig(fanout=1))
    receiver = Node(b, members, Store(":memory:"), NOW, apps={"t": Log()})
    published = sender.publish("t", b"bad", NOW)
    (to, data), = published.outgoing
    assert to == b.peer_id
    receiver.handle(data, NOW)
    assert [v.outcome for v in receiver.take_verdicts()] == ["malformed payload"]
    assert receiver.holds("t") == {}


@pytest.mark.parametrize("size, fanout", [(1, 3), (2, 1), (3, 3), (10, 3), (100, 3), (37, 5)])
def test_every_member_is_in_each_operations_tree_once(size, fanout):
    members = [seed(n) for n in range(size)]
    trees = Trees(members, fanout)
    origin = members[size // 2]
    for seq in (1, 2, 3, 99, 2**40):
        reached, frontier, depth = [origin], [origin], 0
        while frontier:
            depth += 1
            frontier = [child for member in frontier for child in trees.children(origin, seq, member)]
            for child in frontier:
                assert trees.parent(origin, seq, child) in reached
            reached += frontier
        assert sorted(reached) == sorted(members), f"seq {seq}: a member was reached twice or never"
        assert depth - 1 <= max(1, math.ceil(math.log(max(size, 2), fanout))) if fanout > 1 else True
        assert trees.parent(origin, seq, origin) is None
    assert trees.children(origin, 1, seed(200)) == [] and trees.parent(origin, 1, seed(200)) is None


def test_the_trees_spread_forwarding_over_the_members():
    members = [seed(n) for n in range(30)]
    trees = Trees(members, 3)
    inner = {m: 0 for m in members}
    for seq in range(1, 291):
        for m in members[1:]:
            inner[m] += bool(trees.children(members[0], seq, m))
    # 29 others take turns at the 9 inner positions (1-9 have children): each is inner in 9 of 29 trees
    assert {count for m, count in inner.items() if m != members[0]} == {90}


def test_a_pushed_operation_goes_down_its_tree_and_a_gap_is_pulled_from_its_origin():
    idents = [identity(ED25519, seed(20 + n)) for n in range(6)]
    members = [i.peer_id for i in idents]
    logs = [Log() for _ in idents]
    nodes = [Node(i, members, Store(":memory:"), NOW, apps={"t": log}, config=NodeConfig(fanout=2, beacons=False,
                                                                                           adverts=False))
             for i, log in zip(idents, logs, strict=True)]
    by_id = {n.peer_id: n for n in nodes}
    origin = nodes[0]
    first = origin.publish("t", b"lost", NOW)  # never delivered
    second = origin.publish("t", b"kept", NOW)
    assert sorted(to for to, _ in second.outgoing) == sorted(origin.trees.children(origin.peer_id, 2, origin.peer_id))
    pending, delivered = list(second.outgoing), 0
    while pending:
        to, data = pending.pop(0)
        pending += by_id[to].handle(data, NOW)
        delivered += 1
    assert delivered == 5 and all(log.items == [b"kept"] for log in logs[1:])  # once each, down the tree
    assert first.outgoing
    later = NOW + NodeConfig().gap_pull_ns
    pulls = [pair for n in nodes[1:] for pair in n.tick(later)]
    assert {to for to, _ in pulls} >= {origin.peer_id}  # every gap is pulled from the origin
    answers = [pair for to, data in pulls if to == origin.peer_id for pair in origin.handle(data, later)]
    for to, data in answers:
        by_id[to].handle(data, later)
    assert all(sorted(log.items) == [b"kept", b"lost"] for log in logs[1:])


def test_a_members_push_targets_are_its_children():
    members = [seed(n) for n in range(20)]
    for own in (members[0], members[7], seed(99)):
        trees = Trees(members, 3, own)
        for origin in (members[0], members[7], members[19]):
            for seq in (1, 5, 18, 19, 20, 2**33):
                assert trees.push_targets(origin, seq) == trees.children(origin, seq, own)


def test_memo_verifier_recalls_a_whole_message_and_counts_it_as_checked():
    a = identity(ED25519, seed(5))
    memo = MemoVerifier()
    message = decode_message(seal(a, "t", NOW, b"x"))
    assert authenticate(message, memo) is None and memo.checked == 1
    assert authenticate(message, memo) is None and memo.checked == 2 and len(memo.answers) == 1
    forged = decode_message(seal(a, "t", NOW, b"x")[:-1] + b"\x00")
    assert authenticate(forged, memo) == "bad signature" and memo.recall(forged.raw) is False
    assert Verifier().recall(message.raw) is None


def test_the_replay_cache_forgets_in_order_and_keeps_a_key_remembered_again():
    cache = ReplayCache(300 * S)
    assert cache.take(b"a", NOW) and cache.take(b"b", NOW + 10 * S)
    assert cache.take(b"a", NOW + 301 * S)  # expired: new again, remembered at the new time
    assert not cache.take(b"b", NOW + 301 * S)
    cache.purge(NOW + 310 * S)
    assert cache.entries == {b"a": NOW + 301 * S}
    cache.purge(NOW + 601 * S)
    assert cache.entries == {} and not cache.times and not cache.keys


def test_split_ranges():
    assert split_ranges([[1, 3], [7, 9]], 4) == ([[1, 3], [7, 7]], [[8, 9]])
    assert split_ranges([[1, 3], [7, 9]], 3) == ([[1, 3]], [[7, 9]])
    assert split_ranges([[1, 3]], 10) == ([[1, 3]], [])
    assert split_ranges([[1, 3]], 0) == ([], [[1, 3]])


def _kinds(outgoing) -> list[str]:
    """The payload kinds of the messages in ``outgoing`` (``(to, datagram)`` pairs)."""
    from implementations.node.message import decode_payload

    return [decode_payload(decode_message(raw).payload)[0] for _, data in outgoing for raw in decode_datagram(data)]


def test_a_full_repair_that_brings_nothing_new_asks_for_no_more():
    """At a heal every member repairs at once; a full repair (MAX_REPAIR_MESSAGES operations)
    whose operations another repair already brought must not start another exchange, or the
    parallel chains re-send each other's operations and multiply (the heal storm the
    100-node benchmark found: 157,179 duplicate operations in one second)."""
    from implementations.limits import MAX_REPAIR_MESSAGES

    a, b = identity(ED25519, seed(40)), identity(ED25519, seed(41))
    members = [a.peer_id, b.peer_id]
    quiet = NodeConfig(beacons=False, adverts=False)
    holder = Node(a, members, Store(":memory:"), NOW, apps={"t": Log()}, config=quiet)
    behind = Node(b, members, Store(":memory:"), NOW, apps={"t": Log()}, config=quiet)
    for k in range(MAX_REPAIR_MESSAGES + 6):
        holder.publish("t", b"op %d" % k, NOW)  # never pushed to ``behind``
    period = quiet.anti_entropy_period_ns
    digests = [behind.tick(NOW + k * period) for k in (1, 2)]  # two digests of the same state: two chains
    assert [_kinds(d) for d in digests] == [["node.digest"], ["node.digest"]]
    repairs = [holder.handle(data, NOW + 2 * period) for digest in digests for _, data in digest]
    assert all("node.repair" in _kinds(r) for r in repairs)
    first = behind.handle(repairs[0][0][1], NOW + 2 * period)
    assert "node.digest" in _kinds(first)  # it brought news: ask for the rest at once
    again = behind.handle(repairs[1][0][1], NOW + 2 * period)
    assert "node.digest" not in _kinds(again), "a repair of operations already held started another exchange"


@pytest.mark.parametrize("batch", [0, 1, "over"])
def test_a_repair_batch_outside_its_bounds_is_refused_by_name(batch):
    from implementations.limits import MAX_REPAIR_MESSAGES

    batch = MAX_REPAIR_MESSAGES + 1 if batch == "over" else batch
    store = Store(":memory:")
    with pytest.raises(ValueError, match=f"NodeConfig.repair_batch is {batch}"):
        Node(identity(ED25519, seed(42)), [], store, NOW, config=NodeConfig(repair_batch=batch))
    assert store.db.execute("SELECT name FROM sqlite_master").fetchall() == [], "a refused config changed the store"
