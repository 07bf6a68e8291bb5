"""PSKT builder and ledger bugs: fee arithmetic, UTXO order, signature counting, outputs."""

from __future__ import annotations

import contextlib

from implementations import pskt
from implementations.ledger import Ledger, LedgerError
from machines.adapters.pskt_ledger import implementation_with
from tests.bugs.catalogue import Bug, patching


class CountsEveryPair(Ledger):
    """A key that signs an input twice is counted twice."""

    @staticmethod
    def signers_of(group, pairs, sighash):
        return sum(1 for key, signature in pairs if key in group.pubkeys and pskt.verify_signature(key, signature, sighash))


class TrustsAnyKey(Ledger):
    """Any valid signature counts, whether or not its key belongs to the group."""

    @staticmethod
    def signers_of(group, pairs, sighash):
        return len({key for key, signature in pairs if pskt.verify_signature(key, signature, sighash)})


class OutputsKeyedByTxid(Ledger):
    """Created outputs are indexed by txid alone: the change overwrites the payment."""

    def submit(self, tx):
        self.check(tx)
        txid = pskt.tx_template_hash(tx.template)
        for utxo in tx.template.inputs:
            self._spend((utxo.txid, utxo.index))
        for output in tx.template.outputs:
            if (txid, 0) in self._utxos:
                self._spend((txid, 0))
                self._spent.discard((txid, 0))  # overwritten, not spent
            self._create(txid, 0, output.amount, output.address)
        self.accepted.append(txid)
        return txid


class ChecksFirstInputOnly(Ledger):
    """Signatures are checked on the first input only: a multi-input transaction passes with
    any signatures on the others."""

    def check(self, tx):
        self.inputs_checked = 0
        super().check(tx)

    def signers_of(self, group, pairs, sighash):
        self.inputs_checked += 1
        if self.inputs_checked > 1:
            return group.m  # BUG: every input must have m valid member signatures
        return Ledger.signers_of(group, pairs, sighash)


class MinimumFeeExclusive(Ledger):
    """A fee equal to the node's minimum is refused (``<=`` for ``<``)."""

    def check(self, tx):
        super().check(tx)
        fee = sum(u.amount for u in tx.template.inputs) - sum(o.amount for o in tx.template.outputs)
        if self.min_fee and fee <= self.min_fee:
            raise LedgerError("fee", f"fee {fee} is not above the minimum fee {self.min_fee}")


def node_order(utxos, the_event_hash, round=0):
    """The UTXOs in the order the node listed them: the seeded sort forgotten."""
    return list(utxos)


def float_fee_split(fee, fee_mode):
    """The recipient's share of a split fee computed in floats and rounded."""
    if isinstance(fee_mode, pskt.Split):
        return round(fee * fee_mode.recipient_parts / (fee_mode.recipient_parts + fee_mode.signer_parts))
    return _REAL_FEE_SHARE(fee, fee_mode)


_REAL_FEE_SHARE = pskt.recipient_fee_share


def takes_one_utxo_too_many(event, utxos, *, fee, fee_mode, change_address, round=0):
    """Greedy selection stops only once the total *exceeds* the target: when the first UTXOs
    cover it exactly, one more is taken."""
    recipient_fee = pskt.recipient_fee_share(fee, fee_mode)
    ordered = pskt.selection_order(utxos, pskt.event_hash(event), round)
    target = event.amount + fee
    total = sum(u.amount for u in ordered)
    if event.amount == 0 or event.amount < recipient_fee or total < target:
        return pskt.build_template(event, utxos, fee=fee, fee_mode=fee_mode, change_address=change_address, round=round)
    selected, total = [], 0
    for utxo in ordered:
        if total > target:  # BUG: >= target
            break
        selected.append(utxo)
        total += utxo.amount
    outputs = [pskt.Output(event.destination, event.amount - recipient_fee)]
    change = total - event.amount - (fee - recipient_fee)
    if change > 0:
        outputs.append(pskt.Output(change_address, change))
    return pskt.Template(tuple(selected), tuple(outputs))


def _ledger_bug(name, cls, description, kind, involves=()):
    def plant():
        return contextlib.nullcontext(implementation_with(f"bug-{name}", ledger_class=cls))

    return Bug(f"pskt-{name}", "pskt", description, kind, plant, correct="ledger", involves=frozenset(involves))


def _patched_bug(name, attribute, value, description, kind, involves=()):
    plant = patching(pskt, attribute, value, implementation_with(f"bug-{name}"))
    return Bug(f"pskt-{name}", "pskt", description, kind, plant, correct="ledger", involves=frozenset(involves))


def _builder_bug(name, build, description, kind):
    def plant():
        return contextlib.nullcontext(implementation_with(f"bug-{name}", build_template=build))

    return Bug(f"pskt-{name}", "pskt", description, kind, plant, correct="ledger")


BUGS = [
    _ledger_bug("counts-every-pair", CountsEveryPair, "a key that signs an input twice counts as two signers",
                "threshold-counting"),
    _ledger_bug("trusts-any-key", TrustsAnyKey, "valid signatures by keys outside the group count", "threshold-counting"),
    _ledger_bug("outputs-keyed-by-txid", OutputsKeyedByTxid, "created outputs are keyed by txid alone: the change "
                "overwrites the payment", "multi-input"),
    _ledger_bug("checks-first-input-only", ChecksFirstInputOnly, "signatures are checked on the first input only",
                "multi-input"),
    _ledger_bug("minimum-fee-exclusive", MinimumFeeExclusive, "a fee equal to the node's minimum is refused",
                "off-by-one"),
    _patched_bug("selection-in-node-order", "selection_order", node_order, "signers take the UTXOs in the order their "
                 "node listed them, so their templates differ", "unsorted-input"),
    _patched_bug("float-fee-split", "recipient_fee_share", float_fee_split, "the recipient's share of a split fee is "
                 "computed in floats and rounded", "arithmetic"),
    _builder_bug("takes-one-utxo-too-many", takes_one_utxo_too_many, "greedy selection takes one more UTXO when the "
                 "first ones cover the target exactly", "off-by-one"),
]
