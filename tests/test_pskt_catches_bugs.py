"""The PSKT agreement property (tests/test_pskt.py) catches realistic template bugs.

Each test patches one bug into ``implementations.pskt`` and runs the agreement property
with the ``ci`` profile's settings (derandomized, so the result is reproducible); the
property must fail, and the shrunk counterexample must be small and show the difference.

* a float fee split: ``round(fee * rp / (rp + sp))`` instead of ``fee * rp // (rp + sp)``
  (rounds half-way shares up, and loses precision above 2**53);
* the float split truncated with ``int()``: exact while ``fee * recipient_parts`` fits in
  a double's 53 bits, wrong only on supply-sized fees;
* the UTXOs used in the order the node returned them, not the seeded order;
* the recipient's share of the fee sent back to change (an upstream bug: transaction fee
  below ``fee``).

And the pskt machine (machines/pskt.py), run with ``harness.run_machine`` on an implementation
built here (never registered through machines/adapters), catches, each with a short trace:

* a node that counts a key signing an input twice as two signers;
* a node that counts signatures by keys outside the group;
* a node that indexes created outputs by txid alone (the change overwrites the payment);
* signers that take the UTXOs in the order their node listed them.
"""

from __future__ import annotations

import pytest
from hypothesis import Phase, given, settings

from harness import expect_caught
from implementations import pskt
from implementations.ledger import Ledger
from machines.adapters.pskt_ledger import implementation_with
from machines.pskt import PsktMachine
from tests.test_pskt import cases, check_agreement

#: The ci profile, more examples, one bug reported, and no "explain" phase (it re-runs the
#: shrunk example many times and would triple the time).
CI = settings(
    settings.get_profile("ci"),
    max_examples=300,
    database=None,
    report_multiple_bugs=False,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)

MACHINE_CI = settings(
    settings.get_profile("ci"),
    max_examples=60,  # pinned, with the step count: tuning the ci profile must not reshuffle these searches
    # Shrinking is nearly all of these tests' time and costs more the longer the first failing
    # run: 30 steps find every bug below within its first ten examples, cheaper than 40.
    stateful_step_count=30,
    report_multiple_bugs=False,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)


def run_agreement(build=pskt.build_template) -> list[dict]:
    """Run the agreement property; return the failing cases seen (the last is the shrunk one)."""
    failing: list[dict] = []

    @CI
    @given(cases())
    def agreement(case):
        try:
            check_agreement(case, build)
        except AssertionError as disagreement:
            failing.append(case)
            # One raise site, so Hypothesis shrinks every disagreement as one bug.
            raise AssertionError(str(disagreement)) from None

    with pytest.raises(AssertionError) as error:
        agreement()
    assert failing, "the property failed, but not through check_agreement"
    return [failing[-1], error.value]


def float_split(rounding):
    real = pskt.recipient_fee_share

    def recipient_fee_share(fee, fee_mode):
        if isinstance(fee_mode, pskt.Split):
            return rounding(fee * fee_mode.recipient_parts / (fee_mode.recipient_parts + fee_mode.signer_parts))
        return real(fee, fee_mode)

    return recipient_fee_share


def test_catches_a_rounded_float_split(monkeypatch):
    monkeypatch.setattr(pskt, "recipient_fee_share", float_split(round))
    case, error = run_agreement()
    assert isinstance(case["fee_mode"], pskt.Split)
    assert len(case["utxos"]) == 1, f"not shrunk: {case}"
    assert "the model says" in str(error) or "model" in str(error)


def test_catches_a_truncated_float_split_on_supply_sized_fees(monkeypatch):
    monkeypatch.setattr(pskt, "recipient_fee_share", float_split(int))
    case, _ = run_agreement()
    assert isinstance(case["fee_mode"], pskt.Split)
    product = case["fee"] * case["fee_mode"].recipient_parts
    assert product > 2**53, f"below 2**53 a float split truncates exactly; the counterexample was {case}"


def test_catches_utxos_taken_in_node_order(monkeypatch):
    def node_order(utxos, the_event_hash, round=0):
        return list(utxos)  # the seeded sort forgotten

    monkeypatch.setattr(pskt, "selection_order", node_order)
    case, error = run_agreement()
    assert 2 <= len(case["utxos"]) <= 3, f"not shrunk: {case}"
    assert "implementation built" in str(error)


def test_catches_the_recipient_fee_share_returned_to_change():
    def build(event, utxos, **kwargs):
        template = pskt.build_template(event, utxos, **kwargs)
        share = pskt.recipient_fee_share(kwargs["fee"], kwargs["fee_mode"])
        if not share:
            return template
        outputs = list(template.outputs)
        if len(outputs) == 2:
            outputs[1] = pskt.Output(outputs[1].address, outputs[1].amount + share)
        else:
            outputs.append(pskt.Output(kwargs["change_address"], share))
        return pskt.Template(template.inputs, tuple(outputs))

    case, error = run_agreement(build)
    assert not isinstance(case["fee_mode"], pskt.SignersPay)
    assert case["fee"] == 1 or "fee" in str(error), f"not shrunk: {case}"


# --- the pskt machine (templates of every signer and the node's acceptance) -------------------

MAX_TRACE_STEPS = 20


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
            del self._utxos[(utxo.txid, utxo.index)]
            self._spent.add((utxo.txid, utxo.index))
        for output in tx.template.outputs:
            self._utxos.pop((txid, 0), None)
            self._utxos[(txid, 0)] = (output.amount, output.address)
        self.accepted.append(txid)
        return txid


def node_order(utxos, the_event_hash, round=0):
    return list(utxos)


LEDGER_BUGS = {
    "counts-every-pair": CountsEveryPair,
    "trusts-any-key": TrustsAnyKey,
    "outputs-keyed-by-txid": OutputsKeyedByTxid,
}


@pytest.mark.parametrize("bug", [*LEDGER_BUGS, "selection-in-node-order"])
def test_the_pskt_machine_catches(bug, tmp_path, monkeypatch):
    monkeypatch.setenv("MBT_TRACE_DIR", str(tmp_path))
    if bug == "selection-in-node-order":
        monkeypatch.setattr(pskt, "selection_order", node_order)
        buggy = implementation_with(f"buggy-{bug}")
    else:
        buggy = implementation_with(f"buggy-{bug}", ledger_class=LEDGER_BUGS[bug])
    steps = expect_caught(PsktMachine, buggy, hypothesis_settings=MACHINE_CI, trace_dir=tmp_path).trace.steps
    assert len(steps) <= MAX_TRACE_STEPS, [s.describe() for s in steps]
