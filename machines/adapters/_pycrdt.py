"""What the pycrdt (Yrs) adapters share: a document, its local updates as deltas, checked merges.

Not an adapter itself (the leading underscore keeps ``load_adapters`` from importing it as one).

Replication is Yrs's own wire format, unchanged:

* ``state()`` is ``Doc.get_update()``, the whole document as one v1 update;
* a delta is the update of one *local* transaction, as ``Doc.observe`` reports it at commit
  (remote updates applied here are not re-sent: ``take_deltas`` returns local work only);
* ``merge`` and ``apply_delta`` are both ``Doc.apply_update``.

Client ids are ``replica_id + 1`` (Yrs reserves none, but 0 reads like "unset"), so runs are
reproducible: Yrs breaks ties between concurrent edits by client id.

Why every incoming update is first applied to a scratch copy. Yrs decodes an update whole
before integrating it, so undecodable bytes change nothing, but an update that decodes and
then fails to integrate (a block whose parent is not a shared type, e.g. after one flipped
byte) raises ``RuntimeError`` *after* integrating the blocks before it: the document is left
half-updated. The contract says bad bytes change nothing, so ``check_update`` (pure: it
touches only a throwaway document built from this replica's state) integrates the update
into a copy, runs the adapter's own content check on the copy, and only then is the update
applied for real, where it cannot fail. This costs a copy of the state per message, which is
nothing at the sizes machines use; a deployment would not do it.

What Yrs does not let an adapter refuse, and so still gets through:

* bytes after a complete update are ignored (``update + b"junk"`` applies like ``update``);
* an update whose dependencies have not arrived is buffered (Yrs's "pending" structs and
  delete sets) and integrated when they arrive; a garbage update that decodes and refers to
  unknown blocks waits there forever, invisibly;
* pending updates are not part of ``get_update()``: a replica forwards only what it has
  integrated, not what it holds back.

What an insert waits for (measured, pycrdt 0.14): the blocks it was inserted *between*, its
left and its right neighbour when it was made (YATA's two origins), not the earlier updates
of its client (a gap in a client's clocks is filled with a skip). RGA waits only for the
left one (its parent). So inserting ``b`` in front of ``a`` and delivering only ``b`` shows
``b`` in the RGA model but nothing in Yrs until ``a`` arrives; the ``rga`` machine finds
this in three steps when a level demands per-step equality of contents.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from pycrdt import Doc

from implementations.wire import DecodeError
from models.clock import Clock

#: Yrs's encoding of an update that holds nothing (no structs, empty delete set).
EMPTY_UPDATE = b"\x00\x00"


def _is_rust_panic(error: BaseException) -> bool:
    # pyo3 turns a Rust panic into pyo3_runtime.PanicException, a BaseException subclass
    # that cannot be imported by name.
    return type(error).__name__ == "PanicException"


class PycrdtReplica:
    """One pycrdt document holding one root shared type named ``ROOT``."""

    #: The name of the root type in the document, and its pycrdt class.
    ROOT: ClassVar[str]
    ROOT_TYPE: ClassVar[type]
    #: What the bytes hold, for error messages (``"pycrdt-text update"``).
    WHAT: ClassVar[str]

    def __init__(self, replica_id: int, clock: Clock) -> None:
        # The clock is not used: Yrs orders nothing by time.
        self.replica_id = replica_id
        self.client_id = replica_id + 1
        self.doc: Doc = Doc(client_id=self.client_id)
        self.root: Any = self.doc.get(self.ROOT, type=self.ROOT_TYPE)
        self._deltas: list[bytes] = []
        self._recording = False
        self._subscription = self.doc.observe(self._on_commit)

    # ----- local edits ----------------------------------------------------------------

    def _on_commit(self, event: Any) -> None:
        if self._recording and event.update != EMPTY_UPDATE:
            self._deltas.append(event.update)

    @contextmanager
    def _local(self) -> Iterator[None]:
        """``with self._local(): ...``: one transaction whose update becomes one delta."""
        self._recording = True
        try:
            with self.doc.transaction():
                yield
        finally:
            self._recording = False

    # ----- replication ----------------------------------------------------------------

    def state(self) -> bytes:
        return self.doc.get_update()

    def take_deltas(self) -> list[bytes]:
        deltas, self._deltas = self._deltas, []
        return deltas

    def check_update(self, data: Any) -> bytes:
        """``data`` as an update that applies here without error, or ``DecodeError``. Pure."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise DecodeError(f"{self.WHAT}: expected bytes, got {type(data).__name__}")
        data = bytes(data)
        scratch = Doc(client_id=self.client_id)
        scratch_root = scratch.get(self.ROOT, type=self.ROOT_TYPE)
        scratch.apply_update(self.state())
        try:
            scratch.apply_update(data)
        except (ValueError, RuntimeError) as error:
            raise DecodeError(f"{self.WHAT}: {error} ({len(data)} bytes, starting {data[:16].hex()})") from None
        except BaseException as error:
            if _is_rust_panic(error):
                raise DecodeError(f"{self.WHAT}: Yrs panicked: {error} ({len(data)} bytes)") from None
            raise
        others = sorted(set(scratch.keys()) - {self.ROOT})
        if others:
            raise DecodeError(f"{self.WHAT}: the update writes root types {others}, this document has only {self.ROOT!r}")
        self.check_content(scratch_root)
        return data

    def check_content(self, root: Any) -> None:
        """Raise ``DecodeError`` if ``root`` (after a checked update) holds what no replica writes."""

    def apply_checked(self, data: bytes) -> None:
        """Integrate an update ``check_update`` accepted; cannot fail."""
        self.doc.apply_update(data)

    def merge(self, state: bytes) -> None:
        self.apply_checked(self.check_update(state))

    def apply_delta(self, delta: bytes) -> None:
        self.apply_checked(self.check_update(delta))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(client_id={self.client_id}, value={self.value()!r})"

    def value(self) -> Any:
        raise NotImplementedError


# ----- values as tagged strings ---------------------------------------------------------
#
# Yrs maps keep strings faithfully but turn integers into floats (``128`` reads back as
# ``128.0``, ``2**60`` loses digits), so the Map adapters store elements and values as tagged
# strings: ``"n:"`` for None, ``"s:" + text``, ``"i:" + decimal``, ``"b:" + lower-case hex``.


def to_tagged(value: Hashable) -> str:
    """The tagged string of None, a string, an integer or bytes."""
    if value is None:
        return "n:"
    if isinstance(value, str):
        return "s:" + value
    if isinstance(value, int) and not isinstance(value, bool):
        return "i:" + str(value)
    if isinstance(value, bytes):
        return "b:" + value.hex()
    raise TypeError(f"pycrdt maps here store None, strings, integers and bytes, got {type(value).__name__} {value!r:.40}")


def from_tagged(stored: Any, what: str) -> Hashable:
    """The value a tagged string stands for, or ``DecodeError`` naming ``what`` held it."""
    if isinstance(stored, str):
        tag, _, body = stored.partition(":")
        try:
            if tag == "n" and body == "":
                return None
            if tag == "s":
                return body
            if tag == "i" and body == str(int(body)):
                return int(body)
            if tag == "b" and body == body.lower():
                return bytes.fromhex(body)
        except ValueError:
            pass
    raise DecodeError(f"{what}: {stored!r:.60} is not 'n:', 's:text', 'i:decimal' or 'b:hex'")
