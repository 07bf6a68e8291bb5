"""Adapter: Loro (Rust, through its Python bindings) in process, for the ``rga``, ``orset`` and ``lww`` machines.

One ``LoroDoc`` per replica, peer id ``replica_id + 1``, holding one root container:
``LoroText`` and ``LoroList`` and ``LoroMovableList`` of one-character strings as sequences,
a ``LoroMap`` as a set (tagged key present = element present) and one key of a ``LoroMap``
as a register (values tagged as in the pycrdt adapters: Loro too would turn types around).

Replication is Loro's own: a delta is the update of one local commit, as
``subscribe_local_update`` reports it; ``state()`` is a snapshot (``ExportMode.Snapshot``);
``merge`` and ``apply_delta`` are both ``import_``. Each incoming update is first imported
into a fork of the replica and its content checked, so bad bytes change nothing.

What the machines and tests found in Loro 1.17 (``tests/test_loro_adapters.py`` pins each):

* ``import_`` raises a bare ``BaseException`` (not an ``Exception``) on bytes it cannot
  decode: ``except Exception`` does not catch it, and before ``harness.process.Contained``
  it escaped an adapter and ended the test run. This adapter turns it into ``DecodeError``.
* A map assignment of the value a key already holds makes no operation (as in Automerge),
  so each add writes a token unique to it (peer and count) rather than ``True``.
* A map key is last-writer-wins by Lamport timestamp, then peer: a remove concurrent with an
  add wins when its Lamport timestamp is higher, so the map is a ``convergent`` set, not an
  ``add-wins`` one; as a register it is ``convergent`` (Lamport order, not timestamps).
* Text and lists order concurrent inserts by Fugue, not RGA, and a change waits for every
  change it depends on: ``convergent``.
* Updates waiting for their dependencies are not part of a snapshot (as in Yrs).

Budget: each Loro implementation runs at most ``LORO_EXAMPLES`` examples per machine run
(``ci``: instead of 250). A third-party library is checked for the level it declares and for
its findings, which the machines find within that many examples; our own implementations
keep the full budget.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from loro import ExportMode, LoroDoc

from harness import Implementation, register
from implementations.wire import DecodeError
from machines.adapters._pycrdt import from_tagged, to_tagged
from models.clock import Clock

#: Examples per machine run of each Loro implementation (see above).
LORO_EXAMPLES = 100


def _decode_failure(error: BaseException) -> bool:
    """Whether ``error`` is Loro's refusal of bytes: it raises a bare ``BaseException``."""
    return type(error) is BaseException or isinstance(error, (ValueError, RuntimeError))


class LoroReplica:
    """One Loro document holding one root container named ``ROOT``."""

    ROOT: ClassVar[str]
    #: What the bytes hold, for error messages.
    WHAT: ClassVar[str]

    def __init__(self, replica_id: int, clock: Clock) -> None:
        # The clock is not used: Loro orders by Lamport timestamps and peer ids.
        self.replica_id = replica_id
        self.doc = LoroDoc()
        self.doc.peer_id = replica_id + 1
        self.root = self.container(self.doc)
        self._deltas: list[bytes] = []
        self._recording = False
        self._adds = 0
        self._subscription = self.doc.subscribe_local_update(self._on_local_update)

    def container(self, doc: LoroDoc) -> Any:
        raise NotImplementedError

    def _on_local_update(self, update: bytes) -> bool:
        if self._recording:
            self._deltas.append(bytes(update))
        return True  # keep the subscription

    @contextmanager
    def _local(self) -> Iterator[None]:
        """``with self._local(): ...``: one commit whose update becomes one delta."""
        self._recording = True
        try:
            yield
            self.doc.commit()
        finally:
            self._recording = False

    # ----- replication ----------------------------------------------------------------

    def state(self) -> bytes:
        return bytes(self.doc.export(ExportMode.Snapshot()))

    def take_deltas(self) -> list[bytes]:
        deltas, self._deltas = self._deltas, []
        return deltas

    def _import(self, data: Any) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise DecodeError(f"{self.WHAT}: expected bytes, got {type(data).__name__}")
        data = bytes(data)
        scratch = self.doc.fork()
        try:
            scratch.import_(data)
        except KeyboardInterrupt:
            raise
        except BaseException as error:
            if not _decode_failure(error):
                raise
            raise DecodeError(f"{self.WHAT}: {error} ({len(data)} bytes, starting {data[:16].hex()})") from None
        others = sorted(set(scratch.get_value()) - {self.ROOT})
        if others:
            raise DecodeError(f"{self.WHAT}: the update writes root containers {others}, this document has only {self.ROOT!r}")
        self.check_content(self.container(scratch))
        self.doc.import_(data)

    def merge(self, state: bytes) -> None:
        self._import(state)

    def apply_delta(self, delta: bytes) -> None:
        self._import(delta)

    def check_content(self, root: Any) -> None:
        """Raise ``DecodeError`` if ``root`` (after a checked update) holds what no replica writes."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(peer={self.doc.peer_id}, value={self.value()!r})"

    def value(self) -> Any:
        raise NotImplementedError


def _check_item(item: Any) -> None:
    if not isinstance(item, str) or len(item) != 1:
        raise ValueError(f"an item is a one-character string, got {item!r}")


class LoroTextReplica(LoroReplica):
    ROOT = "text"
    WHAT = "loro text update"

    def container(self, doc: LoroDoc) -> Any:
        return doc.get_text(self.ROOT)

    def insert(self, index: int, item: str) -> None:
        _check_item(item)
        if not 0 <= index <= self.root.len_unicode:
            raise IndexError(f"index {index} is outside 0..{self.root.len_unicode}")
        with self._local():
            self.root.insert(index, item)  # Loro's text index counts Unicode code points

    def delete(self, index: int) -> None:
        if not 0 <= index < self.root.len_unicode:
            raise IndexError(f"index {index} is outside 0..{self.root.len_unicode - 1}")
        with self._local():
            self.root.delete(index, 1)

    def value(self) -> list[str]:
        return list(self.root.to_string())


class LoroListReplica(LoroReplica):
    ROOT = "list"
    WHAT = "loro list update"

    def container(self, doc: LoroDoc) -> Any:
        return doc.get_list(self.ROOT)

    def insert(self, index: int, item: str) -> None:
        _check_item(item)
        if not 0 <= index <= len(self.root):
            raise IndexError(f"index {index} is outside 0..{len(self.root)}")
        with self._local():
            self.root.insert(index, item)

    def delete(self, index: int) -> None:
        if not 0 <= index < len(self.root):
            raise IndexError(f"index {index} is outside 0..{len(self.root) - 1}")
        with self._local():
            self.root.delete(index, 1)

    def value(self) -> list[str]:
        return list(self.root.get_value())

    def check_content(self, root: Any) -> None:
        for item in root.get_value():
            if not isinstance(item, str) or len(item) != 1:
                raise DecodeError(f"{self.WHAT}: item {item!r:.40} is not a one-character string")


class LoroMovableListReplica(LoroListReplica):
    ROOT = "movable"
    WHAT = "loro movable list update"

    def container(self, doc: LoroDoc) -> Any:
        return doc.get_movable_list(self.ROOT)


class LoroMapSetReplica(LoroReplica):
    ROOT = "set"
    WHAT = "loro map set update"

    def container(self, doc: LoroDoc) -> Any:
        return doc.get_map(self.ROOT)

    def add(self, element: Hashable) -> None:
        if element is None:
            raise TypeError("loro-map stores strings, integers and bytes as elements, got None")
        key = to_tagged(element)
        self._adds += 1
        with self._local():  # a token unique to this add: an equal value would make no operation
            self.root.insert(key, f"{self.doc.peer_id}.{self._adds}")

    def remove(self, element: Hashable) -> None:
        if element is None:
            return
        key = to_tagged(element)
        if key in self.root.get_value():
            with self._local():
                self.root.delete(key)

    def value(self) -> frozenset:
        return frozenset(from_tagged(key, "loro-map key") for key in self.root.get_value())

    def check_content(self, root: Any) -> None:
        for key, token in root.get_value().items():
            if from_tagged(key, f"{self.WHAT}: key") is None:
                raise DecodeError(f"{self.WHAT}: null is not an element")
            if not isinstance(token, str):
                raise DecodeError(f"{self.WHAT}: key {key!r:.40} holds {token!r:.40}, expected an add's token")


class LoroMapRegisterReplica(LoroReplica):
    ROOT = "register"
    WHAT = "loro map register update"
    KEY = "value"

    def container(self, doc: LoroDoc) -> Any:
        return doc.get_map(self.ROOT)

    def write(self, value: Hashable) -> None:
        stored = to_tagged(value)
        with self._local():
            self.root.insert(self.KEY, stored)

    def value(self) -> Hashable | None:
        held = self.root.get_value()
        return from_tagged(held[self.KEY], f"{self.WHAT}: value") if self.KEY in held else None

    def check_content(self, root: Any) -> None:
        for key, stored in root.get_value().items():
            if key != self.KEY:
                raise DecodeError(f"{self.WHAT}: the map holds key {key!r:.40}, a register has only {self.KEY!r}")
            from_tagged(stored, f"{self.WHAT}: value")


def make_text(replica_id: int, clock: Clock) -> LoroTextReplica:
    return LoroTextReplica(replica_id, clock)


def make_list(replica_id: int, clock: Clock) -> LoroListReplica:
    return LoroListReplica(replica_id, clock)


def make_movable_list(replica_id: int, clock: Clock) -> LoroMovableListReplica:
    return LoroMovableListReplica(replica_id, clock)


def make_map_set(replica_id: int, clock: Clock) -> LoroMapSetReplica:
    return LoroMapSetReplica(replica_id, clock)


def make_map_register(replica_id: int, clock: Clock) -> LoroMapRegisterReplica:
    return LoroMapRegisterReplica(replica_id, clock)



def loro(machine: str, name: str, make_replica, description: str) -> Implementation:
    return register(Implementation(machine, name, make_replica, level="convergent", description=description,
                                   max_examples=LORO_EXAMPLES))


LORO_TEXT = loro("rga", "loro-text", make_text, "Loro 1.17 LoroText, one commit per edit, Loro updates")
LORO_LIST = loro("rga", "loro-list", make_list, "Loro 1.17 LoroList of one-character strings")
LORO_MOVABLE_LIST = loro("rga", "loro-movable-list", make_movable_list, "Loro 1.17 LoroMovableList of one-character strings")
LORO_MAP_SET = loro("orset", "loro-map", make_map_set, "Loro 1.17 LoroMap as a set: key present = element present")
LORO_MAP_REGISTER = loro("lww", "loro-map", make_map_register, "Loro 1.17 LoroMap key as a register: Lamport order")
