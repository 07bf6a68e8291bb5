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

And the pskt machine (machines/pskt.py) catches the catalogue's PSKT and ledger bugs
(``tests/bugs/pskt.py``), each searched for with the budget measured for it under ten seeds.
"""

from __future__ import annotations

import pytest
from hypothesis import Phase, given, settings

from implementations import pskt
from tests.bugs.hunt import assert_caught, robust
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

MACHINE_BUGS = robust("pskt")


@pytest.mark.parametrize("bug", MACHINE_BUGS, ids=[b.name for b in MACHINE_BUGS])
def test_the_pskt_machine_catches(bug):
    assert_caught(bug)
