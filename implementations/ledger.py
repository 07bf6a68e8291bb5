"""A small in-memory ledger that plays the Kaspa node for the threshold-signing group.

It holds unspent outputs, ``(txid, index) -> (amount, owner address)``, and accepts a
transaction only if it is valid; otherwise it raises ``LedgerError`` and nothing changes.

* ``MultisigGroup(m, pubkeys)`` is a group: a threshold ``m`` and an ordered tuple of
  distinct 32-byte Ed25519 public keys. Its ``address`` is derived from ``m`` and the keys
  (like a P2SH address from its redeem script). ``Ledger.add_group`` makes the ledger know
  which group controls an address.
* ``Ledger.fund(address, amount)`` creates a coin out of nothing (a deterministic txid
  from a counter): the test's faucet.
* ``Ledger.utxos_for(address, order_seed)`` lists an address's UTXOs, in creation order or,
  with an integer ``order_seed``, in a seeded shuffle (``random.Random(order_seed)``): a
  machine gives each signer a different order to check that templates do not depend on it.
* ``Ledger.submit(SignedTransaction)`` checks, in this order, and refuses with
  ``LedgerError(kind, message)``:

  1. ``malformed``: one signature list per input; at least one input and one output;
  2. ``double_spend``: an outpoint spent twice in the transaction, or already spent;
  3. ``unknown_input``: an outpoint the ledger never created;
  4. ``amount_mismatch``: an input whose amount differs from the ledger's (the sighash
     commits to the amount, so signers would have signed a lie);
  5. ``not_multisig``: an input owned by an address that is no known group;
  6. ``fee``: ``sum(outputs) > sum(inputs)``, or a fee ``sum(inputs) - sum(outputs)`` below
     the ledger's ``min_fee``;
  7. ``signatures``: an input without valid Ed25519 signatures over its sighash
     (``implementations.pskt.input_sighash``) by at least ``m`` distinct keys of its
     group. A key that signs twice counts once; a key outside the group counts for nothing.

  On success the inputs are spent and each output ``i`` becomes the UTXO
  ``(tx_template_hash, i)`` owned by its address (so the change is spendable next); the
  transaction id, ``tx_template_hash``, is returned and appended to ``Ledger.accepted``.
* ``Ledger.check(tx)`` runs the same checks without applying; ``Ledger.signers_of`` counts
  one input's distinct valid group signers; ``balance(address)`` and ``is_unspent(txid,
  index)`` answer queries.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass

from blake3 import blake3

from implementations.pskt import U64_MAX, SignedTransaction, Utxo, input_sighash, tx_template_hash, verify_signature

__all__ = ["Ledger", "LedgerError", "MultisigGroup", "check_faucet_amount"]


def check_faucet_amount(amount: int) -> None:
    """A faucet coin holds 0 to 2^64 - 1 sompi, an int (not a bool): ``ValueError`` naming the amount otherwise."""
    if not isinstance(amount, int) or isinstance(amount, bool) or not 0 <= amount <= U64_MAX:
        raise ValueError(f"a faucet coin's amount must be an integer in [0, {U64_MAX}], got {amount!r}")


class LedgerError(ValueError):
    """A transaction the ledger refused; ``kind`` is stable, the message says what was wrong."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True, slots=True)
class MultisigGroup:
    """``m`` of the ordered, distinct Ed25519 ``pubkeys`` must sign every input."""

    m: int
    pubkeys: tuple[bytes, ...]

    def __post_init__(self) -> None:
        keys = tuple(self.pubkeys)
        object.__setattr__(self, "pubkeys", keys)
        if any(not isinstance(k, bytes) or len(k) != 32 for k in keys):
            raise ValueError("every group public key is 32 bytes")
        if len(set(keys)) != len(keys):
            raise ValueError("the group's public keys must be distinct")
        if not isinstance(self.m, int) or not 1 <= self.m <= len(keys):
            raise ValueError(f"threshold m={self.m!r} must be in [1, {len(keys)}] (the number of keys)")

    @property
    def address(self) -> str:
        preimage = b"igra:group:v1:" + struct.pack("<II", self.m, len(self.pubkeys)) + b"".join(self.pubkeys)
        return "kaspatest:" + blake3(preimage).hexdigest()


def _outpoint(txid: bytes, index: int) -> str:
    return f"{txid.hex()[:16]}…:{index}"


class Ledger:
    """The node: UTXOs, groups, and validated submission (see the module docstring)."""

    def __init__(self, min_fee: int = 0) -> None:
        self.min_fee = min_fee
        self._utxos: dict[tuple[bytes, int], tuple[int, str]] = {}  # outpoint -> (amount, owner)
        #: Each owner's coins, outpoint -> ``Utxo`` in creation order: what ``utxos_for`` lists
        #: without scanning every owner's coins or building (and validating) a ``Utxo`` again.
        self._owned: dict[str, dict[tuple[bytes, int], Utxo]] = {}
        self._spent: set[tuple[bytes, int]] = set()
        self._groups: dict[str, MultisigGroup] = {}
        self._minted = 0
        self.accepted: list[bytes] = []  # txids of accepted transactions, in order

    # --- set-up -------------------------------------------------------------------------

    def add_group(self, group: MultisigGroup) -> str:
        """Let the ledger know ``group`` controls ``group.address``; returns the address."""
        self._groups[group.address] = group
        return group.address

    def fund(self, address: str, amount: int) -> Utxo:
        """A new coin of ``amount`` sompi for ``address``, out of nothing (``ValueError`` for an amount no
        coin holds, and nothing changes)."""
        check_faucet_amount(amount)
        self._minted += 1
        txid = blake3(b"igra:faucet:" + struct.pack("<Q", self._minted)).digest()
        return self._create(txid, 0, amount, address)

    def _create(self, txid: bytes, index: int, amount: int, owner: str) -> Utxo:
        """The coin ``(txid, index)`` of ``amount`` for ``owner`` becomes unspent."""
        utxo = Utxo(txid, index, amount)
        self._utxos[(txid, index)] = (amount, owner)
        self._owned.setdefault(owner, {})[(txid, index)] = utxo
        return utxo

    def _spend(self, outpoint: tuple[bytes, int]) -> None:
        """The unspent coin at ``outpoint`` becomes spent."""
        _, owner = self._utxos.pop(outpoint)
        del self._owned[owner][outpoint]
        self._spent.add(outpoint)

    # --- queries ------------------------------------------------------------------------

    def utxos_for(self, address: str, order_seed: int | None = None) -> list[Utxo]:
        """``address``'s UTXOs, in creation order or shuffled by ``random.Random(order_seed)``."""
        utxos = list(self._owned.get(address, {}).values())
        if order_seed is not None:
            random.Random(order_seed).shuffle(utxos)
        return utxos

    def balance(self, address: str) -> int:
        return sum(u.amount for u in self._owned.get(address, {}).values())

    def is_unspent(self, txid: bytes, index: int) -> bool:
        return (txid, index) in self._utxos

    # --- submission ---------------------------------------------------------------------

    def check(self, tx: SignedTransaction) -> None:
        """Raise ``LedgerError`` if ``tx`` would be refused; changes nothing."""
        template = tx.template
        inputs, outputs = template.inputs, template.outputs
        if len(tx.signatures) != len(inputs):
            raise LedgerError("malformed", f"{len(tx.signatures)} signature lists for {len(inputs)} inputs")
        for i, pairs in enumerate(tx.signatures):
            if not all(isinstance(p, tuple) and len(p) == 2 for p in pairs):
                raise LedgerError("malformed", f"signatures of input {i} must be (public_key, signature) pairs")
        if not inputs or not outputs:
            raise LedgerError("malformed", f"a transaction needs inputs and outputs, got {len(inputs)} and {len(outputs)}")
        first_use: dict[tuple[bytes, int], int] = {}
        owners = []
        for i, utxo in enumerate(inputs):
            outpoint = (utxo.txid, utxo.index)
            if outpoint in first_use:
                spent_by = first_use[outpoint]
                raise LedgerError("double_spend", f"input {i} spends {_outpoint(*outpoint)}, already spent by input {spent_by}")
            first_use[outpoint] = i
            if outpoint in self._spent:
                raise LedgerError("double_spend", f"input {i} spends {_outpoint(*outpoint)}, which is already spent")
            if outpoint not in self._utxos:
                raise LedgerError("unknown_input", f"input {i} spends {_outpoint(*outpoint)}, which the ledger never created")
            amount, owner = self._utxos[outpoint]
            if amount != utxo.amount:
                raise LedgerError("amount_mismatch", f"input {i} claims {utxo.amount} sompi, the output holds {amount}")
            if owner not in self._groups:
                raise LedgerError("not_multisig", f"input {i} is owned by {owner!r:.40}, which is no known multisig group")
            owners.append(self._groups[owner])
        total_in = sum(u.amount for u in inputs)
        total_out = sum(o.amount for o in outputs)
        if total_out > total_in:
            raise LedgerError("fee", f"outputs ({total_out} sompi) exceed inputs ({total_in} sompi)")
        if total_in - total_out < self.min_fee:
            raise LedgerError("fee", f"fee {total_in - total_out} is below the minimum fee {self.min_fee}")
        template_hash = tx_template_hash(template)
        for i, (group, pairs) in enumerate(zip(owners, tx.signatures, strict=True)):
            valid = self.signers_of(group, pairs, input_sighash(template, i, template_hash))
            if valid < group.m:
                raise LedgerError(
                    "signatures", f"input {i} has valid signatures from {valid} distinct group keys, needs {group.m}"
                )

    @staticmethod
    def signers_of(group: MultisigGroup, pairs: tuple[tuple[bytes, bytes], ...], sighash: bytes) -> int:
        """How many distinct keys of ``group`` signed ``sighash`` validly among ``pairs`` (stops at ``m``)."""
        members = set(group.pubkeys)
        valid: set[bytes] = set()
        for public_key, signature in pairs:
            if public_key in members and public_key not in valid and verify_signature(public_key, signature, sighash):
                valid.add(public_key)
                if len(valid) >= group.m:
                    break
        return len(valid)

    def submit(self, tx: SignedTransaction) -> bytes:
        """Apply ``tx`` if valid (else ``LedgerError``, nothing changed); returns its txid."""
        self.check(tx)
        txid = tx_template_hash(tx.template)
        for utxo in tx.template.inputs:
            self._spend((utxo.txid, utxo.index))
        for i, output in enumerate(tx.template.outputs):
            self._create(txid, i, output.amount, output.address)
        self.accepted.append(txid)
        return txid
