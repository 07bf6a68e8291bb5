"""Adapter: one key of a pycrdt (Yrs) ``Map`` used as a register, for the ``lww`` machine.

Level ``convergent``: a write that has seen another replaces it, as in the model, but
concurrent writes are arbitrated by Yrs (the entry of the higher client id stays), not by
``(timestamp, writer)``, and the replica's clock is never read. Replicas agree after a full
sync.

pycrdt stores a Python ``int`` that a float holds exactly as a float (``128`` reads back as
``128.0``, ``2**60`` as ``1.152921504606847e+18``), so the type of a value is lost on the way;
a value is therefore stored as a tagged string: ``"n:"`` for None, ``"s:" +
text``, ``"i:" + decimal``, ``"b:" + hex``. ``value()`` is None before any write.
Replication, deltas and checks of incoming bytes: see ``machines/adapters/_pycrdt.py``.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from pycrdt import Map

from harness import Implementation, register
from implementations.wire import DecodeError
from machines.adapters._pycrdt import PycrdtReplica, from_tagged, to_tagged
from machines.contracts import RegisterReplica
from models.clock import Clock

#: The one key of the map that holds the register's value.
KEY = "value"


def encode_value(value: Hashable) -> str:
    """The tagged string a value is stored as (None, a string, an integer or bytes)."""
    return to_tagged(value)


def decode_value(stored: Any) -> Hashable:
    """The value a stored tagged string stands for, or ``DecodeError``."""
    return from_tagged(stored, "pycrdt-map register: stored value")


class PycrdtMapRegisterReplica(PycrdtReplica):
    ROOT = "register"
    ROOT_TYPE = Map
    WHAT = "pycrdt-map register update"

    def write(self, value: Hashable) -> None:
        stored = encode_value(value)
        with self._local():
            self.root[KEY] = stored

    def value(self) -> Hashable | None:
        if KEY not in self.root:
            return None
        return decode_value(self.root[KEY])

    def check_content(self, root: Any) -> None:
        for key, stored in root.items():
            if key != KEY:
                raise DecodeError(f"{self.WHAT}: the map holds key {key!r:.40}, a register has only {KEY!r}")
            decode_value(stored)


def make_replica(replica_id: int, clock: Clock) -> RegisterReplica:
    return PycrdtMapRegisterReplica(replica_id, clock)


PYCRDT_MAP_REGISTER = register(
    Implementation(
        machine="lww",
        name="pycrdt-map",
        make_replica=make_replica,
        level="convergent",
        description="pycrdt (Yrs) Map key as a register: Yrs arbitration of concurrent writes, Yrs v1 updates",
    )
)
