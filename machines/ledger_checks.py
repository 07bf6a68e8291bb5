"""A check of the Kaspa ledger's faucet that the ``pskt`` and ``threshold`` machines share (a plain
module: importing a machine module runs its ``machine_test``, which loads every machine, so one
machine importing another's module can meet that module half made)."""

from __future__ import annotations

from collections.abc import Callable

from implementations.wire import DecodeError

#: Faucet amounts no coin holds (sompi are 0 to 2^64 - 1, an int): a caller's mistake ``fund`` refuses.
BAD_AMOUNTS = (-1, 2**64, "5", True)


def check_bad_faucet_amounts(ledger, address: str, words: Callable[[BaseException], str] = str) -> None:
    """``ledger.fund(address, amount)`` refuses each of ``BAD_AMOUNTS`` with a ``ValueError`` naming the
    amount, and what the ledger holds for ``address`` (its balance and coins) reads the same after
    each; a ledger left unreadable (a file shared by processes, holding a refused coin's row, stops
    every handle at it) fails the check (``words``: an error in the report's words). The pskt machine
    asks it of a ledger, the threshold machine of every ledger its members share."""

    def coins() -> tuple:
        try:
            return ledger.balance(address), sorted(u.outpoint for u in ledger.utxos_for(address))
        except DecodeError as error:
            raise AssertionError(f"a refused faucet coin left the ledger unreadable: {words(error)}") from None

    before = coins()
    for bad in BAD_AMOUNTS:
        try:
            ledger.fund(address, bad)
        except ValueError as error:
            assert "amount" in str(error) and repr(bad) in str(error), (
                f"a faucet coin of {bad!r} was refused with ValueError: {words(error)}: not naming the amount")
        else:
            raise AssertionError(f"the ledger took a faucet coin of {bad!r}")
        after = coins()
        assert after == before, f"a refused faucet coin of {bad!r} changed the group's coins: {before} -> {after}"
