"""A worked example for the adapter guide: adapting an *operation-based* library.

``OpORSet`` stands for a third-party library that replicates by operations: each edit
returns an operation, and ``apply(op)`` assumes what op-based CRDTs assume, that every
operation arrives exactly once and after every operation it depends on (causal delivery).
It has no merge and no state to ship. The machines deliver late, twice, out of order or
never, and sync full states; the adapter gives the library what it assumes:

* a delta is one local operation (JSON);
* ``apply_delta`` drops an operation already applied, holds back one whose dependencies
  have not all been applied, and applies whatever has become deliverable;
* ``state()`` is the library's history (every operation it applied, in the order it applied
  them), and ``merge`` unpacks the other replica's history and replays it through the same
  path: operations already seen are skipped, the others applied in causal order.

Holding operations back means a replica can show less than the model until their
predecessors arrive, so this adapter declares ``add-wins``, not ``exact``: after a full
sync every replica equals the model, and an add no remove observed survives.
"""

from __future__ import annotations

import json
from collections.abc import Hashable
from typing import Any

from harness import Implementation, register
from implementations.wire import DecodeError
from models.clock import Clock

# ----- the "library" (in real life: someone else's package) -----------------------------


class OpORSet:
    """An op-based OR-Set. ``apply`` requires causal, exactly-once delivery."""

    def __init__(self, replica: int) -> None:
        self.replica = replica
        self.applied: dict[int, int] = {}  # origin replica -> last sequence number applied
        self.tags: dict[Any, set[tuple[int, int]]] = {}  # element -> its live tags
        self.log: list[dict] = []  # every operation applied, in order

    def add(self, element: Any) -> dict:
        seq = self.applied.get(self.replica, 0) + 1
        return self.apply({"kind": "add", "origin": self.replica, "seq": seq, "deps": dict(self.applied),
                           "element": element, "tags": [[self.replica, seq]]})

    def remove(self, element: Any) -> dict | None:
        observed = sorted(self.tags.get(element, ()))
        if not observed:
            return None
        seq = self.applied.get(self.replica, 0) + 1
        return self.apply({"kind": "remove", "origin": self.replica, "seq": seq, "deps": dict(self.applied),
                           "element": element, "tags": [list(tag) for tag in observed]})

    def deliverable(self, op: dict) -> bool:
        origin = op["origin"]
        return self.applied.get(origin, 0) == op["seq"] - 1 and all(
            self.applied.get(replica, 0) >= seq for replica, seq in op["deps"].items() if replica != origin
        )

    def apply(self, op: dict) -> dict:
        assert self.deliverable(op), f"causal delivery violated: {op}"
        live = self.tags.setdefault(op["element"], set())
        tags = {tuple(tag) for tag in op["tags"]}
        live.update(tags) if op["kind"] == "add" else live.difference_update(tags)
        self.applied[op["origin"]] = op["seq"]
        self.log.append(op)
        return op

    def value(self) -> set:
        return {element for element, tags in self.tags.items() if tags}


# ----- the adapter -------------------------------------------------------------------------


def decode_op(raw: Any) -> dict:
    """An operation from its JSON form (keys of ``deps`` back to integers), or DecodeError."""
    try:
        op = {"kind": raw["kind"], "origin": raw["origin"], "seq": raw["seq"], "element": raw["element"],
              "deps": {int(replica): seq for replica, seq in raw["deps"].items()}, "tags": raw["tags"]}
        valid = (op["kind"] in ("add", "remove") and all(isinstance(op[k], int) for k in ("origin", "seq"))
                 and isinstance(op["element"], (str, int)) and all(isinstance(s, int) for s in op["deps"].values())
                 and all(isinstance(t, list) and len(t) == 2 and all(isinstance(i, int) for i in t) for t in op["tags"]))
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise DecodeError(f"op-orset: not an operation: {error!r}") from None
    if not valid:
        raise DecodeError(f"op-orset: not an operation: {raw!r:.80}")
    return op


def decode_json(data: Any, what: str) -> Any:
    if not isinstance(data, (bytes, bytearray)):
        raise DecodeError(f"op-orset {what}: expected bytes, got {type(data).__name__}")
    try:
        return json.loads(data)
    except (UnicodeDecodeError, ValueError) as error:
        raise DecodeError(f"op-orset {what}: not JSON: {error}") from None


class OpORSetReplica:
    def __init__(self, replica_id: int, clock: Clock) -> None:
        self.library = OpORSet(replica_id)
        self.outbox: list[dict] = []
        self.waiting: list[dict] = []  # received, not yet deliverable

    def add(self, element: Hashable) -> None:
        self.outbox.append(self.library.add(element))

    def remove(self, element: Hashable) -> None:
        op = self.library.remove(element)
        if op is not None:
            self.outbox.append(op)

    def value(self) -> frozenset:
        return frozenset(self.library.value())

    def take_deltas(self) -> list[bytes]:
        deltas = [json.dumps(op).encode() for op in self.outbox]
        self.outbox = []
        return deltas

    def apply_delta(self, delta: bytes) -> None:
        self.receive([decode_op(decode_json(delta, "delta"))])

    def state(self) -> bytes:
        return json.dumps(self.library.log).encode()

    def merge(self, state: bytes) -> None:
        history = decode_json(state, "state")
        if not isinstance(history, list):
            raise DecodeError("op-orset state: not a list of operations")
        self.receive([decode_op(raw) for raw in history])  # every op decoded before any is applied

    def receive(self, ops: list[dict]) -> None:
        """Hold back what is not deliverable yet, drop what was applied, apply the rest in causal order."""
        for op in ops:
            seen = op["seq"] <= self.library.applied.get(op["origin"], 0)
            if not seen and op not in self.waiting:
                self.waiting.append(op)
        progress = True
        while progress:
            progress = False
            for op in list(self.waiting):
                if op["seq"] <= self.library.applied.get(op["origin"], 0):
                    self.waiting.remove(op)
                elif self.library.deliverable(op):
                    self.waiting.remove(op)
                    self.library.apply(op)
                    progress = True


OP_ORSET = register(Implementation("orset", "op-orset", OpORSetReplica, level="add-wins",
                                   description="an operation-based OR-Set: causal delivery and history replay in the adapter"))
