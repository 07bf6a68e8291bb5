"""Adapter: a pycrdt (Yrs) ``Array`` of one-character strings, for the ``rga`` machine.

Level ``convergent``: Yrs orders concurrent inserts by YATA, not RGA. An incoming update
that would put anything but one-character strings in the array is refused.
Replication, deltas and checks of incoming bytes: see ``machines/adapters/_pycrdt.py``.
"""

from __future__ import annotations

from typing import Any

from pycrdt import Array

from harness import Implementation, register
from implementations.wire import DecodeError
from machines.adapters._pycrdt import PycrdtReplica
from machines.contracts import SequenceReplica
from models.clock import Clock


class PycrdtArrayReplica(PycrdtReplica):
    ROOT = "array"
    ROOT_TYPE = Array
    WHAT = "pycrdt-array update"

    def insert(self, index: int, item: str) -> None:
        if not isinstance(item, str) or len(item) != 1:
            raise ValueError(f"an item is a one-character string, got {item!r}")
        length = len(self.root)
        if not 0 <= index <= length:
            raise IndexError(f"index {index} is outside 0..{length}")
        with self._local():
            self.root.insert(index, item)

    def delete(self, index: int) -> None:
        length = len(self.root)
        if not 0 <= index < length:
            raise IndexError(f"index {index} is outside 0..{length - 1}")
        with self._local():
            del self.root[index]

    def value(self) -> list[str]:
        return list(self.root)

    def check_content(self, root: Any) -> None:
        for position, item in enumerate(root):
            if not isinstance(item, str) or len(item) != 1:
                raise DecodeError(f"{self.WHAT}: item {position} would be {item!r:.40}, not a one-character string")


def make_replica(replica_id: int, clock: Clock) -> SequenceReplica:
    return PycrdtArrayReplica(replica_id, clock)


PYCRDT_ARRAY = register(
    Implementation(
        machine="rga",
        name="pycrdt-array",
        make_replica=make_replica,
        level="convergent",
        description="pycrdt (Yrs) Array of one-character strings, one transaction per edit, Yrs v1 updates",
    )
)
