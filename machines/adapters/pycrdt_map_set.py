"""Adapter: a pycrdt (Yrs) ``Map`` used as a set, for the ``orset`` machine.

An element is present iff its key is in the map (the value is always ``True``). Elements
become keys by a stable, reversible string encoding: ``"s:" + text`` for a string,
``"i:" + decimal`` for an integer, ``"b:" + hex`` for bytes.

What a Yrs map gives, measured with pycrdt 0.14 (see ``tests/test_pycrdt_adapters.py``):

* ``map[k] = v`` makes a new entry; ``del map[k]`` deletes the entries of ``k`` the replica
  sees. So a delete concurrent with a set loses (the set wins), a set after a delete brings
  the element back, and deleting a key the replica has never seen sends nothing.
* Concurrent sets of one key are arbitrated: the entry of the higher client id stays, the
  other is deleted on integration. So this is **not exactly** an add-wins OR-Set: if
  replicas A and B add ``x`` concurrently and A, before it hears of B's add, removes ``x``,
  then ``x`` ends up present when B has the higher client id (as in an OR-Set) but absent
  when A has it: B's unobserved add was already overwritten by A's entry, and A's remove
  deletes that. The OR-Set keeps ``x`` in both cases. So the adapter declares level
  ``convergent``, not ``add-wins``: the ``orset`` machine at ``add-wins`` finds this in four
  steps (add at 0, add at 2, remove at 2, sync_all; a random run finds it, the ``ci``
  budget does not), and ``tests/test_pycrdt_adapters.py`` replays that trace.
* Out-of-order updates are buffered until their dependencies arrive (a delete before its
  set, a second set before the first); duplicates are ignored. But pycrdt 0.14.13 loses a
  key for good when four updates of one client, each setting a key (``a``, ``a``, ``a``,
  ``b``), arrive in the order 1, 3, 4, 2: the receiver ends with ``{b}``. That is a Yrs bug,
  pinned by a strict xfail in ``tests/test_pycrdt_adapters.py``.

Replication, deltas and checks of incoming bytes: see ``machines/adapters/_pycrdt.py``.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from pycrdt import Map

from harness import Implementation, register
from implementations.wire import DecodeError
from machines.adapters._pycrdt import PycrdtReplica, from_tagged, to_tagged
from machines.contracts import SetReplica
from models.clock import Clock


def key_of(element: Hashable) -> str:
    """The map key of ``element`` (a string, an integer or bytes)."""
    if element is None:
        raise TypeError("pycrdt-map stores strings, integers and bytes as keys, got None")
    return to_tagged(element)


def element_of(key: str) -> Hashable:
    """The element a map key stands for, or ``DecodeError``."""
    refusal = DecodeError(f"pycrdt-map: key {key!r:.60} does not encode an element ('s:text', 'i:decimal' or 'b:hex')")
    try:
        element = from_tagged(key, "pycrdt-map key")
    except DecodeError:
        raise refusal from None
    if element is None:
        raise refusal
    return element


class PycrdtMapSetReplica(PycrdtReplica):
    ROOT = "set"
    ROOT_TYPE = Map
    WHAT = "pycrdt-map set update"

    def add(self, element: Hashable) -> None:
        key = key_of(element)
        with self._local():
            self.root[key] = True

    def remove(self, element: Hashable) -> None:
        key = key_of(element)
        if key in self.root:
            with self._local():
                del self.root[key]

    def value(self) -> frozenset:
        return frozenset(element_of(key) for key in self.root)

    def check_content(self, root: Any) -> None:
        for key, present in root.items():
            element_of(key)
            if present is not True:
                raise DecodeError(f"{self.WHAT}: key {key!r:.40} holds {present!r:.40}, expected True")


def make_replica(replica_id: int, clock: Clock) -> SetReplica:
    return PycrdtMapSetReplica(replica_id, clock)


PYCRDT_MAP_SET = register(
    Implementation(
        machine="orset",
        name="pycrdt-map",
        make_replica=make_replica,
        level="convergent",
        description="pycrdt (Yrs) Map as a set: key present = element present; Yrs v1 updates",
    )
)
