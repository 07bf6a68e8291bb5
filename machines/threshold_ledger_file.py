"""The threshold machine's rows that another process writes into the group's ledger file.

Where the group's node is a ledger file shared by the members' processes
(``implementations.ledger_file``; the adapter offers ``write_foreign_row``), any process with
the file open can write to it: a buggy or foreign writer, or a disk that corrupts a row.
The step ``foreign_ledger_row`` (after a run's first faucet coin, ``ThresholdMachine.step_fund``;
or in a trace) appends, one at a time, each row no correct writer makes (``FOREIGN_ROWS``: a
kind that is none of the log's, a body that is no message, one field of a group, coin or transaction
row of the wrong kind or length). Every handle on the file (the machine's, each member's) must
refuse it at its next look: ``DecodeError`` naming the file, the row's seq and what is wrong,
holding exactly what it held (the rows taken, the coins, the transactions accepted). The row
is then removed, as an operator would, and every handle takes the rows after it as if it had
never been there.
"""

from __future__ import annotations

from typing import Any

from implementations import wire
from implementations.wire import DecodeError

_KEY, _SIGNATURE = bytes(range(32)), bytes(64)


def _tx(*body: Any) -> bytes:
    return wire.encode("ledger.tx", 1, list(body))


#: how -> (the row's kind, its body, what the refusal must name).
FOREIGN_ROWS: dict[str, tuple[str, bytes, str]] = {
    "unknown_kind": ("mint", wire.encode("ledger.fund", 1, [5]), "kind 'mint' is none of 'group', 'fund', 'tx'"),
    "not_a_message": ("tx", b"\xc1", "ledger.tx: not a well-formed message"),
    "group_label": ("group", wire.encode("ledger.grope", 1, [2, []]), "ledger.group: message is of kind 'ledger.grope'"),
    "group_items": ("group", wire.encode("ledger.group", 1, [2, [], 0]), "ledger.group: expected 2 items, got 3"),
    "fund_items": ("fund", wire.encode("ledger.fund", 1, [5, 6]), "ledger.fund: expected 1 items, got 2"),
    "fund_amount": ("fund", wire.encode("ledger.fund", 1, ["5"]), "ledger.fund.amount: expected int, got str"),
    "tx_items": ("tx", _tx(b"t", [], 0), "ledger.tx: expected 2 items, got 3"),
    "tx_signatures": ("tx", _tx(b"t", 7), "ledger.tx.signatures: expected array, got int"),
    "tx_input": ("tx", _tx(b"t", [7]), "ledger.tx: expected array, got int"),
    "tx_pair": ("tx", _tx(b"t", [[[_KEY, _SIGNATURE, 0]]]), "ledger.tx.pair: expected 2 items, got 3"),
    "tx_key": ("tx", _tx(b"t", [[[_KEY[:31], _SIGNATURE]]]), "ledger.tx.key: expected 32 bytes, got 31"),
    "tx_signature": ("tx", _tx(b"t", [[[_KEY, _SIGNATURE + b"s"]]]), "ledger.tx.signature: expected 64 bytes, got 65"),
    "tx_template": ("tx", _tx("t", []), "ledger.tx.template: expected bytes, got str"),
}


class LedgerFileRules:
    """Mixed into ``ThresholdMachine``. Not a rule of its own: a rule in Hypothesis's list moves the
    derandomized draws of every implementation, and against ``sans-io`` (no file) that cost the
    catalogue's threshold bug tests 100 CPU s of the ci run (``recovers-after-expiry`` 7 -> 73 s,
    side by side). ``step_fund`` writes the foreign rows after a run's first faucet coin instead:
    a draw-free step, and by then the group has paid (a faucet coin is drawn only once it has)."""

    def step_foreign_ledger_row(self, how: str | None = None) -> None:
        """The row ``how`` (``FOREIGN_ROWS``; every one in turn if None: a drawn one left some undrawn
        in a whole ci run) written into the ledger file: refused by every handle, which holds what it
        held; removed, it leaves no trace."""
        self.require(how is None or how in FOREIGN_ROWS, f"{how!r} is none of {sorted(FOREIGN_ROWS)}")
        self.require(bool(self.signers), "the machine has not started")
        if not callable(getattr(self.backend, "write_foreign_row", None)):
            return  # (an in-memory ledger: no other process writes to it; a trace of one replays here too)
        self.foreign_rows_written += 1
        handles = self.backend.ledger_handles(self.ledger, self.views)
        held = [self.backend.held(handle, look=True) for handle in handles]  # (each row leaves it so: checked)
        for one in sorted(FOREIGN_ROWS) if how is None else [how]:
            self.foreign_row(one, handles, held)

    def foreign_row(self, how: str, handles: list[Any], before: list[tuple]) -> None:
        """One foreign row: refused by each of ``handles``, which hold ``before``, as they do once it is gone."""
        kind, body, named = FOREIGN_ROWS[how]
        backend = self.backend
        seq = backend.write_foreign_row(self.ledger, kind, body)
        try:
            for n, handle in enumerate(handles):
                who = "the machine's handle" if n == 0 else f"member {n - 1}'s handle"
                try:
                    backend.look(handle)
                except DecodeError as error:
                    text = self.in_words(error)
                    assert f"ledger.db: log row {seq}: {named}" in text, (
                        f"{who} refused a foreign ledger row ({how}) with {text!r}: not naming the file, row {seq} "
                        f"and {named!r}")
                else:
                    raise AssertionError(f"{who} took a foreign ledger row ({how}: kind {kind!r}, {body!r:.60})")
                held = backend.held(handle, look=False)
                assert held == before[n], (
                    f"{who} refused a foreign ledger row ({how}) and now holds {held!r:.300}, not what it held "
                    f"{before[n]!r:.300}")
        finally:
            backend.remove_row(self.ledger, seq)
        for n, handle in enumerate(handles):
            held = backend.held(handle, look=True)
            assert held == before[n], f"handle {n} holds {held!r:.200} after the foreign row went, not {before[n]!r:.200}"
