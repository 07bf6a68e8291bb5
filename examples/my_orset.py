"""A user's own OR-Set, checked by the project's OR-Set machine through one adapter file.

This is the worked example of the README's adapter guide. ``MyORSet`` stands for code the
framework has never seen: its own data layout (JSON on the wire, string tags) and its own
exception for bad bytes. The adapter below is all it takes for the OR-Set machine to check
it; the machine is not edited.

Run it:  ``MBT_ADAPTERS=examples.my_orset pytest machines/orset.py -k my-orset``
"""

from __future__ import annotations

import json

from harness import Implementation, register
from implementations.wire import DecodeError

# ----- the user's implementation (any code at all) ------------------------------------


class MyORSet:
    """Add-wins set: each add gets a fresh tag; a remove tombstones the tags it has seen."""

    def __init__(self, node: str) -> None:
        self.node, self.counter = node, 0
        self.tags: dict[str, set[str]] = {}  # element -> tags added
        self.dead: set[str] = set()  # tags removed
        self.outbox: list[dict] = []

    def add(self, element: str) -> None:
        self.counter += 1
        tag = f"{self.node}:{self.counter}"
        self.tags.setdefault(element, set()).add(tag)
        self.outbox.append({"adds": {element: [tag]}, "dead": []})

    def remove(self, element: str) -> None:
        seen = sorted(self.tags.get(element, set()) - self.dead)
        self.dead.update(seen)
        self.outbox.append({"adds": {}, "dead": seen})

    def elements(self) -> set[str]:
        return {e for e, tags in self.tags.items() if tags - self.dead}

    def snapshot(self) -> dict:
        return {"adds": {e: sorted(t) for e, t in self.tags.items()}, "dead": sorted(self.dead)}

    def absorb(self, snapshot: dict) -> None:
        for element, tags in snapshot["adds"].items():
            self.tags.setdefault(element, set()).update(tags)
        self.dead.update(snapshot["dead"])


# ----- the adapter: the whole contract (machines/contracts.py, SetReplica) -------------


def _key(element) -> str:  # the machine's elements are str, int or bytes; the user's set takes strings
    return "b" + element.hex() if isinstance(element, bytes) else "j" + json.dumps(element)


def _element(key: str):
    return bytes.fromhex(key[1:]) if key[0] == "b" else json.loads(key[1:])


def _parse(data: bytes) -> dict:
    try:
        snapshot = json.loads(data)
        assert isinstance(snapshot["adds"], dict) and isinstance(snapshot["dead"], list)
        assert all(isinstance(t, str) for tags in snapshot["adds"].values() for t in tags)
        assert all(isinstance(t, str) for t in snapshot["dead"])
    except (ValueError, KeyError, TypeError, AssertionError) as error:
        raise DecodeError(f"my-orset: not a snapshot: {error!r}") from None
    return snapshot


class MyORSetReplica:
    def __init__(self, replica_id: int, clock) -> None:
        self.set = MyORSet(node=f"n{replica_id}")

    def add(self, element) -> None:
        self.set.add(_key(element))

    def remove(self, element) -> None:
        self.set.remove(_key(element))

    def value(self) -> frozenset:
        return frozenset(_element(e) for e in self.set.elements())

    def state(self) -> bytes:
        return json.dumps(self.set.snapshot(), sort_keys=True).encode()

    def merge(self, state: bytes) -> None:
        self.set.absorb(_parse(state))

    def take_deltas(self) -> list[bytes]:
        out, self.set.outbox = self.set.outbox, []
        return [json.dumps(d, sort_keys=True).encode() for d in out]

    def apply_delta(self, delta: bytes) -> None:
        self.set.absorb(_parse(delta))


register(Implementation(machine="orset", name="my-orset", make_replica=MyORSetReplica, level="exact",
                        description="the README's worked adapter example"))
