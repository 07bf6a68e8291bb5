"""Peers that lie well: the vocabulary of hostile messages, shared by every machine and benchmark.

A hostile message *decodes*: it is well-formed, of the right kind and version, and lies in
what it says. The ``LIES`` below name what a lying peer may claim; each machine draws them,
asks the implementation's *crafter* to render one in that implementation's wire format,
delivers it to a live replica, and checks the outcome the lie calls for:

* ``refused``: the replica raises ``implementations.wire.DecodeError`` (``OverLimit`` for a
  limit, naming it in its text and its ``limit``) and its ``state()`` bytes are unchanged
  (``deliver_hostile``);
* ``harmless``: refused as above, or accepted without any change the model does not make;
* ``accepted``: a legal message from an unusual peer (a stranger replica or agent, a write
  at the edge of a limit): the model learns its operations like any other.

Then, and at every later step, the machine's ordinary checks hold: values equal the model's,
and the replica's own later operations still work (the lie did not poison it).

A crafter is an object an adapter registers for its implementation with
``register_crafter(machine, implementation, crafter)``; machines find it with
``crafter_for``. What a crafter must offer depends on the machine (its docstring says); an
implementation without one is checked without the adversary (see
``machines.replicated.HostilePeers``).

``mutants`` is the other half, for benchmarks and fuzzing: structural mutations of a genuine
MessagePack message (one integer pushed to a boundary, one array truncated, grown or
swapped, one field of another type), each still well-formed MessagePack.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any, NamedTuple

import msgpack

from implementations.limits import MAX_COUNTER_GAP, MAX_MESSAGE_BYTES, U64_MAX
from implementations.wire import DecodeError


class Lie(NamedTuple):
    """One thing a lying peer may say, and what a replica must do about it."""

    name: str
    outcome: str  # "refused", "harmless" or "accepted"
    says: str


LIES: dict[str, Lie] = {lie.name: lie for lie in (
    Lie("own_dots_ahead", "accepted",
        "an add in the receiver's own name, or a context claiming its own dots, beyond the last it made but "
        "within the counter gap: legal-looking, and its next operations must skip past them"),
    Lie("dots_far_ahead", "refused",
        "dots of another replica (or agent) more than MAX_COUNTER_GAP beyond what the receiver has seen"),
    Lie("counter_at_max", "refused",
        "a counter at or one below 2^64 - 1 (a dot, a version vector entry, a timestamp counter)"),
    Lie("huge_vector", "refused",
        "a version vector naming more replicas than MAX_CONTEXT_REPLICAS"),
    Lie("dot_cloud", "refused",
        "a context of more out-of-order runs of dots than MAX_CLOUD_RANGES"),
    Lie("stranger_ops", "accepted",
        "operations of a replica (or agent, or writer) no honest peer is, within every limit"),
    Lie("clock_ahead", "refused",
        "a timestamp more than MAX_CLOCK_AHEAD_NS ahead of the receiver's clock (up to 2^64 - 1)"),
    Lie("counter_at_limit", "accepted",
        "a timestamp whose counter is MAX_HLC_COUNTER or one below: the receiver's next writes must still work"),
    Lie("forged_copy", "harmless",
        "a write the receiver holds, with its timestamp and writer but another value (writes are not "
        "authenticated): the copy that arrived first stays"),
    Lie("context_erases_state", "harmless",
        "a message without a signed state, whose context covers that state's dots (an erasure without a key)"),
    Lie("relayed_record", "accepted",
        "a genuine signed record of another agent, replayed by someone else"),
    Lie("one_field_wrong", "refused",
        "a genuine message in flight with exactly one field changed to a lie"),
    Lie("dots_at_gap", "accepted",
        "an add of a stranger exactly MAX_COUNTER_GAP beyond the greatest of its dots some replica has seen: "
        "the last every replica may accept"),
    Lie("vector_at_limit", "accepted",
        "one dot of each of as many strangers as make the receiver hold dots of exactly MAX_CONTEXT_REPLICAS replicas"),
    Lie("not_canonical", "refused",
        "a message that decodes as MessagePack of its kind but breaks the canonical form (items out of order or "
        "repeated, of the wrong length or type, an empty list where one is forbidden): the refusal names where"),
    Lie("bad_envelope", "refused",
        "a genuine message whose envelope [kind, version, body] is spoiled (ENVELOPE_SPOILINGS): cut short or "
        "followed by a byte, not bytes, not an array of three, of the other kind or a later version, a version "
        "that equals the right one in Python but is a boolean or a float on the wire, of exactly "
        "MAX_MESSAGE_BYTES or one byte more: the refusal names the kind it expected and what is wrong"),
)}


def far_counters(known: int) -> list[int]:
    """Counters a lying peer may name for a replica whose greatest dot the receiver knows is
    ``known``: just past the counter gap, half-way to overflow, and at overflow."""
    return [c for c in (known + MAX_COUNTER_GAP + 1, 2**63, U64_MAX - 1, U64_MAX) if c > known + MAX_COUNTER_GAP]


#: Spoilings of the envelope ``[kind, version, body]`` every message of ``implementations.wire`` is
#: (the ``bad_envelope`` lie), by name: what its refusal must name besides the kind (given the
#: kind, the other kind of the same crafter and the version) and the limit it passes (or None).
#: ``at_size``: exactly MAX_MESSAGE_BYTES, a genuine message followed by zeros: malformed, not over.
_MALFORMED = "not a well-formed message"
ENVELOPE_SPOILINGS: dict[str, tuple[Any, str | None]] = {
    "cut_short": (lambda kind, other, version: (_MALFORMED,), None),
    "extra_byte": (lambda kind, other, version: (_MALFORMED,), None),
    "not_bytes": (lambda kind, other, version: ("expected bytes, got str",), None),
    "not_an_array": (lambda kind, other, version: ("message: expected array, got str",), None),
    "four_items": (lambda kind, other, version: ("message: expected 3 items, got 4",), None),
    "other_kind": (lambda kind, other, version: (f"of kind {other!r}, expected {kind!r}",), None),
    "other_version": (lambda kind, other, version: (f"version {version + 1} ", f"expected {version}"), None),
    "version_as_bool": (lambda kind, other, version: (f"version {bool(version)!r} ", f"expected {version}"), None),
    "version_as_float": (lambda kind, other, version: (f"version {float(version)!r} ", f"expected {version}"), None),
    "over_size": (lambda kind, other, version: (f"{MAX_MESSAGE_BYTES + 1:,} bytes",), "MAX_MESSAGE_BYTES"),
    "at_size": (lambda kind, other, version: (_MALFORMED,), None),
}


def spoil_envelope(genuine: bytes, how: str, other: str) -> Any:
    """The genuine message ``genuine`` with its envelope spoiled as ``how`` says
    (``ENVELOPE_SPOILINGS``; ``other``: the other kind of message its crafter renders)."""
    kind, version, body = msgpack.unpackb(genuine, raw=False)
    pack = msgpack.packb
    spoiled = {
        "cut_short": lambda: genuine[:-1],
        "extra_byte": lambda: genuine + b"\xc0",
        "not_bytes": lambda: genuine.hex(),  # a caller's mistake: the message as text
        "not_an_array": lambda: pack(kind),
        "four_items": lambda: pack([kind, version, body, None], use_bin_type=True),
        "other_kind": lambda: pack([other, version, body], use_bin_type=True),
        "other_version": lambda: pack([kind, version + 1, body], use_bin_type=True),
        "version_as_bool": lambda: pack([kind, bool(version), body], use_bin_type=True),  # True == 1 in Python
        "version_as_float": lambda: pack([kind, float(version), body], use_bin_type=True),  # 1.0 == 1 too
        "over_size": lambda: bytes(MAX_MESSAGE_BYTES + 1),
        "at_size": lambda: genuine + bytes(MAX_MESSAGE_BYTES - len(genuine)),
    }
    return spoiled[how]()


def envelope_refusal(how: str, kind: str, other: str, version: int) -> tuple[tuple[str, ...], str | None]:
    """What a refusal of ``spoil_envelope(..., how, other)`` of a ``kind`` message of ``version``
    must name besides the kind, and the limit it names (None: it passes none)."""
    names, limit = ENVELOPE_SPOILINGS[how]
    return names(kind, other, version), limit


# ----- crafters ---------------------------------------------------------------------------

_crafters: dict[tuple[str, str], Any] = {}
_crafters_by_type: list[tuple[str, type, Any]] = []


def register_crafter(machine: str, implementation: str, crafter: Any, replica_type: type | None = None) -> Any:
    """Let ``machine``'s adversary speak ``implementation``'s wire format through ``crafter``;
    with ``replica_type``, also to any implementation whose replicas are of that type (the
    deliberately buggy subclasses of tests speak the same format)."""
    _crafters[(machine, implementation)] = crafter
    if replica_type is not None:
        _crafters_by_type.append((machine, replica_type, crafter))
    return crafter


def crafter_for(machine: str, implementation: str, replica: Any = None) -> Any | None:
    """The crafter registered for ``implementation`` of ``machine`` (or for the type of
    ``replica``, an unwrapped replica of it), or None."""
    found = _crafters.get((machine, implementation))
    if found is None and replica is not None:
        found = next((c for m, t, c in _crafters_by_type if m == machine and isinstance(replica, t)), None)
    return found


# ----- delivering a lie -------------------------------------------------------------------


def deliver_hostile(replica: Any, message: bytes, whole_state: bool, outcome: str, lie: str = "") -> DecodeError | None:
    """Deliver ``message`` to ``replica`` (``merge`` if ``whole_state``, else ``apply_delta``)
    and check what ``outcome`` demands; return the refusal, or None if it was accepted.

    A refusal must be a ``DecodeError`` and leave ``state()`` byte for byte as it was; an
    ``accepted`` message must not be refused; a ``refused`` one must be. Any other exception
    propagates: a lie must never make a replica raise anything but a decode error.
    """
    before = replica.state()
    try:
        (replica.merge if whole_state else replica.apply_delta)(message)
    except DecodeError as refusal:
        after = replica.state()
        assert after == before, f"{lie}: a refused message changed the replica's state ({refusal})"
        assert outcome != "accepted", f"{lie}: a legal message was refused: {refusal}"
        return refusal
    assert outcome != "refused", f"{lie}: the replica accepted a message it must refuse ({len(message)} bytes)"
    return None


# ----- mutations of genuine messages, for benchmarks and fuzzing --------------------------

#: Integers a mutation puts where an integer was: the edges of every integer type on the wire.
EDGE_INTEGERS = (0, 1, 2**31 - 1, 2**32, 2**32 + 1, 2**53, 2**63 - 1, 2**63, 2**64 - 2, 2**64 - 1, -1, -(2**63))


def _paths(node: Any, path: tuple[int, ...] = ()) -> Iterator[tuple[tuple[int, ...], Any]]:
    yield path, node
    if isinstance(node, list):
        for index, child in enumerate(node):
            yield from _paths(child, (*path, index))


def _replace(node: Any, path: tuple[int, ...], new: Any) -> Any:
    if not path:
        return new
    copy = list(node)
    copy[path[0]] = _replace(node[path[0]], path[1:], new)
    return copy


def _mutation(node: Any, rng: random.Random, size_hint: int) -> Any:
    """One structural change of ``node`` (a value of a decoded message)."""
    if isinstance(node, bool):
        return rng.choice([not node, 0, None])
    if isinstance(node, int):
        return rng.choice([*EDGE_INTEGERS, node + 1, node - 1, node * 2 + 1, -node])
    if isinstance(node, bytes):
        if node and rng.random() < 0.5:
            flipped = bytearray(node)
            flipped[rng.randrange(len(node))] ^= 1 << rng.randrange(8)
            return bytes(flipped)
        return rng.choice([b"", node + node[:1], node[:-1], b"\x00" * len(node), "text"])
    if isinstance(node, str):
        return rng.choice(["", node + "x", node.encode(), 0, "\u0000" * 3])
    if isinstance(node, list):
        choice = rng.randrange(6)
        if choice == 0 or not node:
            return [*node, node[-1] if node else 0]
        if choice == 1:
            return node[:-1]
        if choice == 2:
            return node[::-1]
        if choice == 3:  # a flood: the last item many times over
            return node + [node[-1]] * min(size_hint, 4096)
        if choice == 4:
            return [*node[:1], *node]
        return {}  # an array where a map is never allowed
    return rng.choice([0, [], b"", "x"])


def mutants(message: bytes, rng: random.Random) -> Iterator[bytes]:
    """Endless well-formed mutations of a genuine MessagePack ``message``: each changes one
    value somewhere in it (chosen uniformly over every node), so most are *almost* genuine."""
    tree = msgpack.unpackb(message, raw=False, strict_map_key=False)
    nodes = list(_paths(tree))
    while True:
        path, node = nodes[rng.randrange(len(nodes))]
        new = _mutation(node, rng, len(nodes))
        try:
            yield msgpack.packb(_replace(tree, path, new), use_bin_type=True)
        except (OverflowError, TypeError, ValueError):  # an integer MessagePack cannot carry
            continue

