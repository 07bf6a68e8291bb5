"""The group's Kaspa node for node processes: one ledger in a SQLite file that every process shares.

Signers and coordinators in separate OS processes must see one ledger, as the members of a
real group see one Kaspa network: a coordinator's submission spends coins for everyone, and
a signer settles its reservation by asking whether the transaction is on the ledger. The
file holds the ledger's *log*, in order: the group (``m`` and its keys), each faucet coin,
each accepted transaction. A process keeps an ``implementations.ledger.Ledger`` in memory
and brings it up to date by replaying the rows it has not seen yet; every check of a
submission is ``Ledger``'s own, so this module adds only the sharing:

* ``submit`` runs inside ``Store.transaction()`` (``BEGIN IMMEDIATE``: the write lock is
  taken before the catch-up read), so two processes submitting transactions that spend the
  same coin are serialized and the second one gets ``LedgerError("double_spend", ...)``;
* a refused transaction writes nothing and leaves the in-memory ledger as it was;
* the waits on another process's lock are bounded by ``storage.BUSY_TIMEOUT_MS``.

``SharedLedger.create(path, m, keys, funds)`` makes the file (the test's genesis);
``SharedLedger(path)`` opens it; ``view(order_seed)`` is the ``implementations.threshold.Node``
a signer or coordinator core needs.
"""

from __future__ import annotations

from pathlib import Path

from implementations import wire
from implementations.ledger import Ledger, LedgerError, MultisigGroup, check_faucet_amount
from implementations.pskt import SignedTransaction, decode_template, encode_template, tx_template_hash
from implementations.storage import Store
from implementations.threshold import LedgerView
from implementations.wire import DecodeError

SCHEMA = """
CREATE TABLE IF NOT EXISTS log (            -- the ledger's history, replayed in order by every process
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    kind  TEXT NOT NULL,                     -- 'group' | 'fund' | 'tx'
    body  BLOB NOT NULL
);
"""
TX_KIND = "ledger.tx"


def encode_transaction(tx: SignedTransaction) -> bytes:
    return wire.encode(TX_KIND, 1, [encode_template(tx.template), [[[k, s] for k, s in pairs] for pairs in tx.signatures]])


def decode_transaction(data: bytes) -> SignedTransaction:
    template, signatures = wire.expect_list(wire.decode(data, TX_KIND, 1), TX_KIND, length=2)
    pairs = tuple(
        tuple((wire.expect_bytes(k, f"{TX_KIND}.key", 32), wire.expect_bytes(s, f"{TX_KIND}.signature", 64))
              for k, s in (wire.expect_list(pair, f"{TX_KIND}.pair", length=2) for pair in wire.expect_list(per_input, TX_KIND)))
        for per_input in wire.expect_list(signatures, f"{TX_KIND}.signatures")
    )
    return SignedTransaction(decode_template(wire.expect_bytes(template, f"{TX_KIND}.template")), pairs)


class SharedLedger:
    """A process's view of the shared ledger file (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if not Path(self.path).exists():
            raise FileNotFoundError(f"{self.path}: no ledger file (make one with SharedLedger.create)")
        self.store = Store(self.path, SCHEMA)
        self.ledger = Ledger()
        self.address = ""
        self.last_seq = 0
        self.catch_up()
        if not self.address:
            raise ValueError(f"{self.path}: the ledger has no group")

    @classmethod
    def create(cls, path: str | Path, m: int, keys: list[bytes], funds: list[int]) -> SharedLedger:
        """A new ledger file whose group is ``m`` of ``keys``, funded with one coin per amount of ``funds``."""
        if Path(path).exists():
            raise FileExistsError(f"{path}: a ledger file exists already")
        MultisigGroup(m, tuple(keys))  # refuses a bad group before anything is written
        store = Store(str(path), SCHEMA)
        with store.transaction():
            store.execute("INSERT INTO log (kind, body) VALUES ('group', ?)", (wire.encode("ledger.group", 1, [m, list(keys)]),))
            for amount in funds:
                store.execute("INSERT INTO log (kind, body) VALUES ('fund', ?)", (wire.encode("ledger.fund", 1, [amount]),))
        store.close()
        return cls(path)

    def close(self) -> None:
        self.store.close()

    def catch_up(self) -> None:
        """Replay the rows written since the last look (by any process). A row that does not decode (a
        foreign writer's, a corrupt one) raises ``DecodeError`` naming the file, the row's seq and what
        is wrong, and is not taken: this handle stays after the row before it."""
        rows = self.store.execute("SELECT seq, kind, body FROM log WHERE seq > ? ORDER BY seq", (self.last_seq,)).fetchall()
        for seq, kind, body in rows:
            try:
                if kind == "group":
                    m, keys = wire.expect_list(wire.decode(body, "ledger.group", 1), "ledger.group", length=2)
                    self.address = self.ledger.add_group(MultisigGroup(m, tuple(keys)))
                elif kind == "fund":
                    (amount,) = wire.expect_list(wire.decode(body, "ledger.fund", 1), "ledger.fund", length=1)
                    self.ledger.fund(self.address, wire.expect_int(amount, "ledger.fund.amount"))
                elif kind == "tx":
                    self.ledger.submit(decode_transaction(body))
                else:
                    raise DecodeError(f"kind {kind!r} is none of 'group', 'fund', 'tx'")
            except DecodeError as error:
                raise DecodeError(f"{self.path}: log row {seq}: {error}") from None
            self.last_seq = seq

    def fund(self, amount: int) -> None:
        """A new faucet coin for the group (``ValueError`` for an amount no coin holds: nothing is written)."""
        check_faucet_amount(amount)
        with self.store.transaction():
            self.catch_up()
            self.store.execute("INSERT INTO log (kind, body) VALUES ('fund', ?)", (wire.encode("ledger.fund", 1, [amount]),))
        self.catch_up()

    def submit(self, tx: SignedTransaction) -> bytes:
        """Accept ``tx`` for every process, or raise ``LedgerError`` and change nothing."""
        with self.store.transaction():
            self.catch_up()
            self.ledger.check(tx)
            self.store.execute("INSERT INTO log (kind, body) VALUES ('tx', ?)", (encode_transaction(tx),))
        self.catch_up()
        return tx_template_hash(tx.template)

    @property
    def accepted(self) -> list[bytes]:
        self.catch_up()
        return list(self.ledger.accepted)

    def balance(self) -> int:
        self.catch_up()
        return self.ledger.balance(self.address)

    def view(self, order_seed: int | None = None) -> SharedLedgerView:
        return SharedLedgerView(self, order_seed)


class SharedLedgerView(LedgerView):
    """``implementations.threshold.Node`` over the shared file: each question sees every process's writes."""

    def __init__(self, shared: SharedLedger, order_seed: int | None = None) -> None:
        super().__init__(shared.ledger, shared.address, order_seed)
        self.shared = shared

    def utxos(self):
        self.shared.catch_up()
        return super().utxos()

    def has_transaction(self, txid: bytes) -> bool:
        self.shared.catch_up()
        return super().has_transaction(txid)

    def submit(self, tx: SignedTransaction) -> bytes:
        return self.shared.submit(tx)


__all__ = ["LedgerError", "SharedLedger", "SharedLedgerView"]
