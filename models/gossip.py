"""What a node does with a message it receives, before any application sees it (SPEC 4).

A message names its signer (a PeerId), carries the signer's public key, a topic, the
signer's clock in whole seconds (``epoch_secs``), a payload and a signature over all of
that. The model is told the facts a machine knows of each message (it does no
cryptography): whether it is well formed, whether its PeerId is the hash of its key
(``bound``), whether the signature verifies over the header and the payload's hash,
whether the signer is a member, its ``epoch_secs``, and its replay key ``BLAKE3(payload)``.

A node refuses a message with the first of these reasons that applies, in this order:

1. "malformed": it does not decode;
2. "peer id does not match key": the signer is not the hash of the key it carries;
3. "bad signature";
4. "not a member": the signer is not one of the mesh's members;
5. "stale": ``epoch_secs`` (in ns) is more than the replay TTL (300 s) away from the
   receiver's clock, before or after;
6. "replayed": the receiver took a message with the same replay key less than the TTL
   ago by *its own* clock.

Otherwise the message is *taken* (``TAKEN``): its replay key is remembered with the
receiver's time, and the application decides what it means. Nothing else changes when a
message is refused. How a message travels (pushed down an operation's broadcast tree,
``push_tree``, or as a have, a pull or a repair, each a signed message judged the same
way) changes none of this. Operations that arrive inside a repair are old by design: only
checks 1-4 apply to them, and they are never remembered.

The replay cache is keyed by what the sender cannot choose freely (the payload's hash, not
its timestamp) and ages by the receiver's clock (never the sender's), so a replay inside
the TTL meets the cache and a replay after it is stale.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import attrs

NS_PER_SECOND = 1_000_000_000
REPLAY_TTL_NS = 300 * NS_PER_SECOND
TAKEN = "taken"
REFUSALS = ("malformed", "peer id does not match key", "bad signature", "not a member", "stale", "replayed")


@attrs.frozen
class Facts:
    """What a machine knows of one message."""

    well_formed: bool = True
    bound: bool = True
    signature_ok: bool = True
    member: bool = True
    epoch_secs: int = 0
    replay_key: bytes = b""


def verdict(facts: Facts, cache: Mapping[bytes, int], now_ns: int, repaired: bool = False,
            ttl_ns: int = REPLAY_TTL_NS) -> str:
    """The first refusal that applies to ``facts`` at a receiver whose cache is ``cache``, or ``TAKEN``."""
    if not facts.well_formed:
        return "malformed"
    if not facts.bound:
        return "peer id does not match key"
    if not facts.signature_ok:
        return "bad signature"
    if not facts.member:
        return "not a member"
    if repaired:
        return TAKEN
    if abs(facts.epoch_secs * NS_PER_SECOND - now_ns) > ttl_ns:
        return "stale"
    at = cache.get(facts.replay_key)
    if at is not None and now_ns - at < ttl_ns:
        return "replayed"
    return TAKEN


def remember(cache: Mapping[bytes, int], facts: Facts, now_ns: int) -> dict[bytes, int]:
    """The receiver's cache after it took a message (not one from a repair)."""
    return {**cache, facts.replay_key: now_ns}


def push_tree(origin: Hashable, order: Sequence[Hashable], seq: int, fanout: int) -> dict[Hashable, list[Hashable]]:
    """Who pushes operation ``(origin, seq)`` to whom: its broadcast tree, which every member
    computes alike from the member list (SPEC 4 leaves the tree to the implementation; this is
    ours). ``order``: the other members sorted by ``BLAKE3(origin || member)`` (the caller
    hashes). The origin is at position 0 and the member at rank ``r`` of ``order`` at position
    ``(r + seq) mod len(order) + 1``; the members at positions ``fanout * p + 1`` to
    ``fanout * p + fanout`` are the children of the one at position ``p``. So the tree is a
    complete ``fanout``-ary heap: without loss every member receives the operation once."""
    at = {0: origin} | {(rank + seq) % len(order) + 1: member for rank, member in enumerate(order)}
    return {member: [at[child] for child in range(fanout * p + 1, fanout * p + fanout + 1) if child in at]
            for p, member in at.items()}
