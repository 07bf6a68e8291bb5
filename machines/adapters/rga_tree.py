"""Adapter: ``implementations.rga.RGA``, the RGA of runs in a counted B-tree, for the ``rga`` machine.

Level ``exact``: it is an RGA, so every replica's value (and its ids) must equal the model's.
The replica already offers the ``SequenceReplica`` protocol (its ``insert`` and ``delete``
return the element's id, which the protocol ignores) and ``ids()``; this adapter adds what
the machine's adversary needs, ``craft_delta`` (``implementations.rga.encode_delta``), and
turns a refused insert (``CounterSpaceExhausted``) into ``Refused("counter_exhausted")``.
``rga.state``/``rga.delta`` are its wire kinds.
"""

from __future__ import annotations

from collections.abc import Hashable

from harness import Implementation, register
from implementations.limits import U64_MAX
from implementations.rga import DELTA_KIND, RGA, VERSION, CounterSpaceExhausted, Id, encode_delta
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

    @property
    def spoilings(self) -> tuple[str, ...]:
        """How this replica's lying peer may spoil a delta (``machines.rga``'s ``spoil``)."""
        return tuple(SPOILINGS)

    def spoil_delta(self, how: str) -> tuple[bytes, tuple[str, ...]]:
        """A stranger's delta with one field spoiled (``SPOILINGS``), and what its refusal must name."""
        return spoiled_delta(how)


#: The stranger whose delta the spoilings start from: one insert at the head, one delete of an
#: id nobody has (every column of each part holds one entry).
_STRANGER = 2**40
_RUNS, _DELETES = f"{DELTA_KIND}: inserts", f"{DELTA_KIND}: deletes"
_RUN_COLUMNS = ("counter steps", "replicas", "parent gaps", "parent replicas", "contents")
_RANGE_COLUMNS = ("counters", "replicas", "lengths")


def _column(part: str, k: int) -> str:
    return f"{part}[{k}] ({(_RUN_COLUMNS if part == _RUNS else _RANGE_COLUMNS)[k]})"


#: How a lying peer spoils one field of that delta's columns (``[part, column, item]``: part 0
#: the inserts, 1 the deletes; item None: the whole column), to what, and what the refusal
#: (``DecodeError``) must name.
SPOILINGS: dict[str, tuple[tuple, object, tuple[str, ...]]] = {
    "body-of-three": ((), "three", (f"{DELTA_KIND}: body",)),
    "inserts-of-four-columns": ((0,), "four", (_RUNS,)),
    "deletes-of-two-columns": ((1,), "two", (_DELETES,)),
    **{f"inserts-column-{k}-not-a-list": ((0, k, None), 7, (_column(_RUNS, k),)) for k in range(5)},
    **{f"inserts-column-{k}-one-short": ((0, k, None), [], (_column(_RUNS, k),)) for k in range(1, 5)},
    **{f"inserts-column-{k}-not-an-int": ((0, k, 0), "1", (_column(_RUNS, k), "expected int")) for k in range(4)},
    "inserts-replica-negative": ((0, 1, 0), -1, (_column(_RUNS, 1), "outside")),
    "inserts-gap-below-head": ((0, 2, 0), -2, (_column(_RUNS, 2), "outside")),
    "inserts-parent-replica-negative": ((0, 3, 0), -1, (_column(_RUNS, 3), "outside")),
    "inserts-content-a-float": ((0, 4, 0), 1.5, (_RUNS, "run 0", "content must be a str or a list")),
    "inserts-content-item-a-float": ((0, 4, 0), ["a", 1.5], (_RUNS, "run 0", "an item must be str, bytes or int", "float")),
    "inserts-content-empty": ((0, 4, 0), "", (_RUNS, "run 0", "at least one element")),
    "inserts-counter-zero": ((0, 0, 0), 0, (_RUNS, "run 0", "outside [1,")),
    "inserts-counters-past-u64": ((0, 0, 0), U64_MAX, (_RUNS, "run 0", "outside [1,")),
    "inserts-parent-not-below": ((0, 2, 0), 1, (_RUNS, "run 0", "does not exceed its parent")),
    "inserts-head-of-replica-3": ((0, 3, 0), 3, (_RUNS, "run 0", "the head is parent replica 0")),
    **{f"deletes-column-{k}-not-a-list": ((1, k, None), 7, (_column(_DELETES, k),)) for k in range(3)},
    **{f"deletes-column-{k}-one-short": ((1, k, None), [], (_column(_DELETES, k),)) for k in range(1, 3)},
    **{f"deletes-column-{k}-not-an-int": ((1, k, 0), "1", (_column(_DELETES, k), "expected int")) for k in range(3)},
    "deletes-counter-zero": ((1, 0, 0), 0, (_column(_DELETES, 0), "outside")),
    "deletes-replica-negative": ((1, 1, 0), -1, (_column(_DELETES, 1), "outside")),
    "deletes-length-zero": ((1, 2, 0), 0, (_column(_DELETES, 2), "outside")),
    "deletes-past-u64": ((1, 0, 0), U64_MAX, (_DELETES, "range 0", f"go past {U64_MAX}")),
}


def spoiled_delta(how: str) -> tuple[bytes, tuple[str, ...]]:
    """A stranger's delta (one insert at the head, a delete of an id nobody has) with one field
    spoiled as ``SPOILINGS[how]`` says, and what its refusal must name."""
    path, to, named = SPOILINGS[how]
    body = decode(encode_delta([((1, _STRANGER), None, "ab")], [(5, _STRANGER)]), DELTA_KIND, VERSION)
    if path == ():
        body = [*body, []]
    elif len(path) == 1:
        body[path[0]] = body[path[0]][:-1]  # a part one column short
    elif path[2] is None:
        body[path[0]][path[1]] = to
    else:
        body[path[0]][path[1]][path[2]] = to
        if how == "inserts-counters-past-u64":  # a run of two from 2^64 - 1 runs past the last counter
            body[0][4][0] = "ab"
        if how == "deletes-past-u64":  # so does a range of two
            body[1][2][0] = 2
    return encode(DELTA_KIND, VERSION, body), named


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
