"""Adapter: ``implementations.rga.RGA``, the RGA of runs in a counted B-tree, for the ``rga`` machine.

Level ``exact``: it is an RGA, so every replica's value (and its ids) must equal the model's.
The replica already offers the ``SequenceReplica`` protocol (its ``insert`` and ``delete``
return the element's id, which the protocol ignores) and ``ids()``; this adapter adds what
the machine's adversary needs, ``craft_delta`` (``implementations.rga.encode_delta``),
``spoil`` (a stranger's delta or full state with one field spoiled) and ``state_contents`` (a
full state read back with ``implementations.rga.decode_state``), and turns a refused insert
(``CounterSpaceExhausted``) into ``Refused("counter_exhausted")``.
``rga.state``/``rga.delta`` are its wire kinds.
"""

from __future__ import annotations

from collections.abc import Hashable

from harness import Implementation, register
from implementations.limits import U64_MAX
from implementations.rga import DELTA_KIND, RGA, STATE_KIND, VERSION, CounterSpaceExhausted, Id, decode_state, encode_delta
from implementations.wire import decode, encode
from machines.contracts import Refused, SequenceReplica
from models.clock import Clock


class TreeReplica(RGA):
    """``RGA`` as the machine drives it."""

    def insert(self, index: int, item: Hashable) -> Id:
        try:
            return super().insert(index, item)
        except CounterSpaceExhausted as error:
            raise Refused("counter_exhausted", str(error)) from None

    def craft_delta(self, inserts: list[tuple[Id, Id | None, Hashable]], deletes: list[Id]) -> bytes:
        return encode_delta(inserts, deletes)

    def state_contents(self, state: bytes) -> tuple[list, list[bool], list, set[Id]]:
        """What a full state says, read with the implementation's own decoder: its document's
        elements ``(id, parent, item)`` in order (the head's children have parent None),
        whether each is visible, the inserts waiting for their parent, and the ids deleted
        before they came."""
        decoded = decode_state(state)
        visible: list[bool] = []
        for n, length in enumerate(decoded.alive):
            visible += [n % 2 == 0] * length  # stretches alternate, visible first
        early = {(counter + k, replica) for counter, replica, length in decoded.deletes for k in range(length)}
        return decoded.elements, visible, decoded.waiting, early

    @property
    def spoilings(self) -> tuple[str, ...]:
        """How this replica's lying peer may spoil a delta or a full state (``machines.rga``'s ``spoil``)."""
        return (*SPOILINGS, *STATE_SPOILINGS)

    def spoil(self, how: str) -> tuple[str, bytes, tuple[str, ...]]:
        """A stranger's message with one field spoiled (``SPOILINGS``, ``STATE_SPOILINGS``): whether it
        is a ``"delta"`` or a full ``"state"``, its bytes, and what its refusal must name."""
        if how in STATE_SPOILINGS:
            return ("state", *spoiled_state(how))
        return ("delta", *spoiled_delta(how))


#: The stranger whose delta the spoilings start from: one insert at the head, one delete of an
#: id nobody has (every column of each part holds one entry).
_STRANGER = 2**40
_RUNS, _DELETES = f"{DELTA_KIND}: inserts", f"{DELTA_KIND}: deletes"
_RUN_COLUMNS = ("counter steps", "replicas", "parent gaps", "parent replicas", "contents")
_RANGE_COLUMNS = ("counters", "replicas", "lengths")


def _column(part: str, k: int) -> str:
    return f"{part}[{k}] ({(_RUN_COLUMNS if part == _RUNS else _RANGE_COLUMNS)[k]})"


def _set(*edits: tuple[tuple[int, ...], object]):
    """A spoiling that sets each field ``path`` (indices into the body) to its value."""

    def spoil(body: list) -> list:
        for path, to in edits:
            *outer, last = path
            target = body
            for k in outer:
                target = target[k]
            target[last] = to
        return body

    return spoil


#: How a lying peer spoils that delta (a body ``[inserts, deletes]``, each a list of columns), and
#: what the refusal (``DecodeError``) must name.
SPOILINGS: dict[str, tuple[object, tuple[str, ...]]] = {
    "body-of-three": (lambda body: [*body, []], (f"{DELTA_KIND}: body",)),
    "inserts-of-four-columns": (lambda body: [body[0][:-1], body[1]], (_RUNS,)),
    "deletes-of-two-columns": (lambda body: [body[0], body[1][:-1]], (_DELETES,)),
    **{f"inserts-column-{k}-not-a-list": (_set(((0, k), 7)), (_column(_RUNS, k),)) for k in range(5)},
    **{f"inserts-column-{k}-one-short": (_set(((0, k), [])), (_column(_RUNS, k),)) for k in range(1, 5)},
    **{f"inserts-column-{k}-not-an-int": (_set(((0, k, 0), "1")), (_column(_RUNS, k), "expected int")) for k in range(4)},
    "inserts-replica-negative": (_set(((0, 1, 0), -1)), (_column(_RUNS, 1), "outside")),
    "inserts-gap-below-head": (_set(((0, 2, 0), -2)), (_column(_RUNS, 2), "outside")),
    "inserts-parent-replica-negative": (_set(((0, 3, 0), -1)), (_column(_RUNS, 3), "outside")),
    "inserts-content-a-float": (_set(((0, 4, 0), 1.5)), (_RUNS, "run 0", "content must be a str or a list")),
    "inserts-content-item-a-float": (
        _set(((0, 4, 0), ["a", 1.5])), (_RUNS, "run 0", "an item must be str, bytes or int", "float")),
    "inserts-content-empty": (_set(((0, 4, 0), "")), (_RUNS, "run 0", "at least one element")),
    "inserts-counter-zero": (_set(((0, 0, 0), 0)), (_RUNS, "run 0", "outside [1,")),
    # a run of two from 2^64 - 1 runs past the last counter
    "inserts-counters-past-u64": (_set(((0, 0, 0), U64_MAX), ((0, 4, 0), "ab")), (_RUNS, "run 0", "outside [1,")),
    "inserts-parent-not-below": (
        _set(((0, 2, 0), 1)), (_RUNS, "run 0", f"id (1, {_STRANGER}) does not exceed its parent (0, 0)")),
    "inserts-head-of-replica-3": (_set(((0, 3, 0), 3)), (_RUNS, "run 0", "the head is parent replica 0")),
    "inserts-id-twice": (_set(((0,), [[1, 1], [_STRANGER] * 2, [-1, -1], [0, 0], ["ab", "c"]])),
                         (f"{_RUNS}: the id (2, {_STRANGER}) appears twice",)),
    **{f"deletes-column-{k}-not-a-list": (_set(((1, k), 7)), (_column(_DELETES, k),)) for k in range(3)},
    **{f"deletes-column-{k}-one-short": (_set(((1, k), [])), (_column(_DELETES, k),)) for k in range(1, 3)},
    **{f"deletes-column-{k}-not-an-int": (_set(((1, k, 0), "1")), (_column(_DELETES, k), "expected int")) for k in range(3)},
    "deletes-counter-zero": (_set(((1, 0, 0), 0)), (_column(_DELETES, 0), "outside")),
    "deletes-replica-negative": (_set(((1, 1, 0), -1)), (_column(_DELETES, 1), "outside")),
    "deletes-length-zero": (_set(((1, 2, 0), 0)), (_column(_DELETES, 2), "outside")),
    # a range of two from 2^64 - 1 runs past it too
    "deletes-past-u64": (_set(((1, 0, 0), U64_MAX), ((1, 2, 0), 2)), (_DELETES, "range 0", f"go past {U64_MAX}")),
}


def spoiled_delta(how: str) -> tuple[bytes, tuple[str, ...]]:
    """A stranger's delta (one insert at the head, a delete of an id nobody has) spoiled as
    ``SPOILINGS[how]`` says, and what its refusal must name."""
    spoil, named = SPOILINGS[how]
    body = decode(encode_delta([((1, _STRANGER), None, "ab")], [(5, _STRANGER)]), DELTA_KIND, VERSION)
    return encode(DELTA_KIND, VERSION, spoil(body)), named


#: The stranger's full state the state spoilings start from, as ``[runs, alive lengths, waiting
#: runs, early deletes]`` in the wire's columns (the module docstring of ``implementations.rga``).
#: Its document is ``a b c x y``: the run ``abc`` (1..3, R) under the head; x (2, Q), a child of
#: a smaller than a's first child b, so after b's subtree; y (1, Q), the head's second child. c is
#: deleted. One insert (10, R) waits for its parent (9, R); the ids (20, R) and (21, R) are deleted
#: before they come. R is ``_STRANGER``, Q the replica below it.
_Q = _STRANGER - 1


def _base_state() -> list:
    runs = [[1, 1, -1], [_STRANGER, _Q, _Q], [-1, 1, -1], [0, _STRANGER, 0], ["abc", "x", "y"]]
    return [runs, [2, 1, 2], [[10], [_STRANGER], [1], [_STRANGER], ["w"]], [[20], [_STRANGER], [2]]]


_RUNS_OF_STATE, _ALIVE = f"{STATE_KIND}: runs", f"{STATE_KIND}: alive lengths"
_WAITING, _EARLY = f"{STATE_KIND}: waiting runs", f"{STATE_KIND}: early deletes"

#: How a lying peer spoils that full state, and what the refusal (``DecodeError``) must name:
#: each part's name, the checks of the alive lengths, and each way a document can leave its
#: tree's order (``implementations.rga``'s ``_check_document_order``).
STATE_SPOILINGS: dict[str, tuple[object, tuple[str, ...]]] = {
    "state-body-of-five": (lambda body: [*body, []], (f"{STATE_KIND}: body",)),
    "state-runs-column-0-not-a-list": (_set(((0, 0), 7)), (f"{_RUNS_OF_STATE}[0] (counter steps)",)),
    "state-runs-content-empty": (_set(((0, 4, 1), "")), (_RUNS_OF_STATE, "run 1", "at least one element")),
    # the bad value after good ones at both ends of the column's range: the refusal names the bad one
    "state-alive-not-an-int": (_set(((1, 1), "2")), (_ALIVE, "expected int, got str '2'")),
    "state-alive-negative": (_set(((1,), [0, U64_MAX, -2])), (_ALIVE, "-2 is outside")),
    "state-alive-one-too-many": (_set(((1, 2), 3)), (_ALIVE, "they add up to 6, the runs hold 5 elements")),
    "state-alive-an-empty-second-stretch": (_set(((1,), [2, 0, 3])), (_ALIVE, "only the first (visible) stretch")),
    "state-alive-an-empty-stretch-of-nothing": (
        _set(((0,), [[], [], [], [], []]), ((1,), [0])), (_ALIVE, "only the first (visible) stretch")),
    "state-waiting-replica-not-an-int": (_set(((2, 1, 0), "R")), (f"{_WAITING}[1] (replicas)", "expected int")),
    "state-waiting-id-in-the-document": (
        _set(((2, 0, 0), 2), ((2, 2, 0), 1), ((2, 3, 0), 5)), (f"{STATE_KIND}: the id (2, {_STRANGER}) appears twice",)),
    "state-early-deletes-of-two-columns": (lambda body: [*body[:3], body[3][:2]], (_EARLY,)),
    "state-early-deletes-column-1-one-short": (_set(((3, 1), [])), (f"{_EARLY}[1] (replicas)",)),
    "state-early-deletes-column-2-one-short": (_set(((3, 2), [])), (f"{_EARLY}[2] (lengths)",)),
    "state-early-deletes-counter-zero": (_set(((3, 0, 0), 0)), (f"{_EARLY}[0] (counters)", "outside")),
    "state-early-deletes-past-u64": (_set(((3, 0, 0), U64_MAX)), (_EARLY, "range 0", f"go past {U64_MAX}")),
    # y (1, R + 1) is greater than a (1, R): it belongs before a, not after
    "state-head-children-ascending": (
        _set(((0, 1, 2), _STRANGER + 1)), (_RUNS_OF_STATE, f"run 2 (1, {_STRANGER + 1})", f"smaller sibling (1, {_STRANGER})")),
    # x (2, R + 1) is greater than a's first child b (2, R): it belongs between a and b
    "state-child-after-its-parents-next-element": (
        _set(((0, 1, 1), _STRANGER + 1)), (_RUNS_OF_STATE, f"run 1 (2, {_STRANGER + 1})", f"smaller sibling (2, {_STRANGER})")),
    # x (3, R + 1) under b (2, R) is greater than b's first child c (3, R)
    "state-child-of-the-runs-second-to-last": (
        _set(((0, 0, 1), 2), ((0, 1, 1), _STRANGER + 1), ((0, 0, 2), -2)),
        (_RUNS_OF_STATE, f"run 1 (3, {_STRANGER + 1})", f"smaller sibling (3, {_STRANGER})")),
    # x becomes (4, Q) and y (5, Q), both under c (3, R), the run's last element: y, the greater, comes second
    "state-children-of-a-runs-last-ascending": (
        _set(((0, 0, 1), 3), ((0, 0, 2), 1), ((0, 2, 2), 2), ((0, 3, 2), _STRANGER)),
        (_RUNS_OF_STATE, f"run 2 (5, {_Q})", f"smaller sibling (4, {_Q})")),
    # y becomes (3, Q) under b (2, R): after x (a's child, after b's subtree) that subtree is closed
    "state-child-of-a-closed-element": (
        _set(((0, 0, 2), 1), ((0, 2, 2), 1), ((0, 3, 2), _STRANGER)),
        (_RUNS_OF_STATE, f"run 2 (3, {_Q})", f"its parent (2, {_STRANGER}) is not an enclosing element before it")),
    # y becomes (3, Q) under (2, S), an element of a replica nobody has sent, with x's counter
    "state-child-of-an-absent-replica": (
        _set(((0, 0, 2), 1), ((0, 2, 2), 1), ((0, 3, 2), _STRANGER + 5)),
        (_RUNS_OF_STATE, f"run 2 (3, {_Q})", f"its parent (2, {_STRANGER + 5}) is not an enclosing element")),
}


def spoiled_state(how: str) -> tuple[bytes, tuple[str, ...]]:
    """The stranger's full state (``_base_state``) spoiled as ``STATE_SPOILINGS[how]`` says, and what
    its refusal must name."""
    spoil, named = STATE_SPOILINGS[how]
    return encode(STATE_KIND, VERSION, spoil(_base_state())), named


def make_replica(replica_id: int, clock: Clock) -> SequenceReplica:
    """An RGA replica; it needs no clock (ids come from counters, not time)."""
    return TreeReplica(replica_id)


RGA_TREE = register(
    Implementation(
        machine="rga",
        name="rga",
        make_replica=make_replica,
        level="exact",
        description="implementations.rga: runs in a counted B-tree, ids in B+ trees, buffered out-of-order ops",
    )
)
