"""Adapter: a pycrdt (Yrs) ``Text`` as a replicated sequence, for the ``rga`` machine.

Level ``convergent``: Yrs orders concurrent inserts by YATA, not RGA, so replicas agree
with each other and keep every insert and delete, but may order concurrent inserts
differently from the model.

pycrdt indexes a ``Text`` by UTF-8 *byte* offset (``len(Text("é")) == 2``); the machine
counts characters, so an index is turned into the byte length of the characters before it.
Replication, deltas and checks of incoming bytes: see ``machines/adapters/_pycrdt.py``.
"""

from __future__ import annotations

from pycrdt import Text

from harness import Implementation, register
from machines.adapters._pycrdt import PycrdtReplica
from machines.contracts import SequenceReplica
from models.clock import Clock


class PycrdtTextReplica(PycrdtReplica):
    ROOT = "text"
    ROOT_TYPE = Text
    WHAT = "pycrdt-text update"

    def _offset(self, index: int) -> int:
        text = str(self.root)
        if not 0 <= index <= len(text):
            raise IndexError(f"index {index} is outside 0..{len(text)}")
        return len(text[:index].encode("utf-8"))

    def insert(self, index: int, item: str) -> None:
        if not isinstance(item, str) or len(item) != 1:
            raise ValueError(f"an item is a one-character string, got {item!r}")
        offset = self._offset(index)
        with self._local():
            self.root.insert(offset, item)

    def delete(self, index: int) -> None:
        text = str(self.root)
        if not 0 <= index < len(text):
            raise IndexError(f"index {index} is outside 0..{len(text) - 1}")
        offset = self._offset(index)
        with self._local():
            del self.root[offset : offset + len(text[index].encode("utf-8"))]

    def value(self) -> list[str]:
        return list(str(self.root))


def make_replica(replica_id: int, clock: Clock) -> SequenceReplica:
    return PycrdtTextReplica(replica_id, clock)


PYCRDT_TEXT = register(
    Implementation(
        machine="rga",
        name="pycrdt-text",
        make_replica=make_replica,
        level="convergent",
        description="pycrdt (Yrs) Text, one transaction per edit, Yrs v1 updates on the wire",
    )
)
