"""Adapter: the sans-I/O cores of ``implementations.threshold`` on the shared ledger file of
``implementations.ledger_file``, for the ``threshold`` machine.

The node processes of ``transport/`` share one ledger as a SQLite file: each process keeps
its own handle (a ``SharedLedger``: an in-memory ``Ledger`` it brings up to date by replaying
the file's log) and submits under the file's write lock. Here every member gets its own
handle on one file, as its own process would, and the machine a handle of its own (to fund
the group and to read what the ledger accepted): a payment one member's coordinator submits
must be seen by every other member's signer and coordinator, and a coin spent through one
handle must be refused through every other. The cores are the ``sans-io`` ones: what this
implementation adds under test is the sharing (``implementations/ledger_file.py``), in
process, without the transport.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

from harness import Implementation, register
from implementations.ledger_file import SharedLedger
from machines.adapters.threshold_sansio import SansIoBackend
from models.clock import Clock


class SharedLedgerHandle:
    """The machine's own handle on the shared file, answering the questions the threshold
    machine asks of an ``implementations.ledger.Ledger`` (the group has one address)."""

    def __init__(self, shared: SharedLedger) -> None:
        self.shared = shared
        self.address = shared.address

    def fund(self, address: str, amount: int) -> None:
        assert address == self.address, f"the shared ledger's group is {self.address}, not {address}"
        self.shared.fund(amount)

    def balance(self, address: str) -> int:
        assert address == self.address, f"the shared ledger's group is {self.address}, not {address}"
        return self.shared.balance()

    def utxos_for(self, address: str, order_seed: int | None = None) -> list[Any]:
        self.shared.catch_up()
        return self.shared.ledger.utxos_for(address, order_seed)

    @property
    def accepted(self) -> list[bytes]:
        return self.shared.accepted

    def close(self) -> None:
        self.shared.close()


class SharedLedgerBackend(SansIoBackend):
    """``SansIoBackend`` whose group's node is a ledger file with a handle per member."""

    def shared_ledger(self, directory: str, m: int, keys: list[bytes], funds: list[int]) -> SharedLedgerHandle:
        """A new ledger file in ``directory`` (the group, funded with one coin per amount), and the machine's handle."""
        return SharedLedgerHandle(SharedLedger.create(Path(directory) / "ledger.db", m, keys, funds))

    def member_view(self, handle: SharedLedgerHandle, order_seed: int) -> Any:
        """A member's node: its own handle on the file, listing coins in its own order."""
        return SharedLedger(handle.shared.path).view(order_seed)

    def close_view(self, view: Any) -> None:
        view.shared.close()

    # --- another process's rows (machines.threshold_ledger_file) --------------------------------

    def ledger_handles(self, handle: SharedLedgerHandle, views: list[Any]) -> list[SharedLedger]:
        """Every handle on the file: the machine's, then each member's."""
        return [handle.shared] + [view.shared for view in views]

    def write_foreign_row(self, handle: SharedLedgerHandle, kind: str, body: bytes) -> int:
        """Append a row to the file's log as another process would, on a connection of its own; its seq."""
        with contextlib.closing(sqlite3.connect(handle.shared.path, timeout=5.0)) as db, db:
            return db.execute("INSERT INTO log (kind, body) VALUES (?, ?)", (kind, body)).lastrowid

    def remove_row(self, handle: SharedLedgerHandle, seq: int) -> None:
        with contextlib.closing(sqlite3.connect(handle.shared.path, timeout=5.0)) as db, db:
            db.execute("DELETE FROM log WHERE seq = ?", (seq,))

    @staticmethod
    def look(shared: SharedLedger) -> None:
        shared.catch_up()

    @staticmethod
    def held(shared: SharedLedger, look: bool) -> tuple:
        """What a handle holds (after a look at the file, if ``look``): the rows taken, the group's balance,
        the transactions accepted and the coins."""
        if look:
            shared.catch_up()
        ledger = shared.ledger
        coins = sorted((u.txid, u.index, u.amount) for u in ledger.utxos_for(shared.address))
        return shared.last_seq, ledger.balance(shared.address), list(ledger.accepted), coins


def make_replica(replica_id: int, clock: Clock) -> SharedLedgerBackend:
    return SharedLedgerBackend()


SHARED_LEDGER = register(
    Implementation(
        machine="threshold",
        name="shared-ledger",
        make_replica=make_replica,
        level="exact",
        description="the sans-I/O cores on implementations.ledger_file: one ledger file, a handle per member",
    )
)
