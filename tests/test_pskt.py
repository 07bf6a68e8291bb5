"""The PSKT template: model (models/pskt.py) vs builder (implementations/pskt.py), the
canonical encoding, and the ledger that plays the Kaspa node.

The agreement property (``check_agreement``) is reused by tests/test_pskt_catches_bugs.py
to show it catches realistic bugs, so it takes the builder as a parameter.
"""

from __future__ import annotations

import struct

import blake3
import nacl.signing
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

import models.pskt as model
from implementations import pskt
from implementations.ledger import Ledger, LedgerError, MultisigGroup
from implementations.wire import DecodeError


def hash32(data: bytes) -> bytes:
    return blake3.blake3(data).digest()


CHANGE = "kaspatest:group-change"

# --- strategies -------------------------------------------------------------------------

names = st.text(max_size=6)


def events(amounts):
    return st.builds(
        pskt.Event,
        source=st.sampled_from(["hyperlane", "layerzero", "api"]) | names,
        external_id=names,
        destination=st.text(min_size=1, max_size=8),
        amount=amounts,
        metadata=st.dictionaries(names, names, max_size=3).map(lambda d: tuple(d.items())),
        timestamp=st.integers(0, 2**64 - 1),
    )


# A small pool of txids so that one txid often has several indexes.
txids = st.sampled_from([bytes([i]) * 32 for i in range(4)]) | st.binary(min_size=32, max_size=32)


def utxo_sets(amounts):
    return st.lists(
        st.builds(pskt.Utxo, txid=txids, index=st.integers(0, 3), amount=amounts),
        min_size=1,
        max_size=12,
        unique_by=lambda u: (u.txid, u.index),
    )


fee_modes = st.one_of(
    st.just(pskt.RecipientPays()),
    st.just(pskt.SignersPay()),
    st.tuples(st.integers(0, 7), st.integers(0, 7)).map(lambda p: pskt.Split(p[0], p[1] if any(p) else 1)),
    st.builds(pskt.Split, st.integers(0, 2**32 - 1), st.integers(1, 2**32 - 1)),
)

#: Small values (fees and change that round, exact fits) or large ones up to Kaspa's whole
#: supply (< 2**63 sompi in all, so no sum of 12 UTXOs overflows a u64). Large fees reach
#: above 2**53, where floats round. Per scale: (max amount, UTXO sets, fees).
SCALES = {
    "small": (3_000, utxo_sets(st.integers(0, 1_500)), st.integers(0, 500)),
    "large": (2**60, utxo_sets(st.integers(0, 2**59)), st.integers(0, 2**60) | st.integers(2**53, 2**56)),
}
scales = st.sampled_from(sorted(SCALES))
rounds = st.integers(0, 3) | st.just(2**32 - 1)

#: Events of the agreement property: plain fields (cheap to generate and to shrink; arbitrary
#: text is covered by test_event_hash_agrees_with_model_and_round_trips).
event_fields = st.fixed_dictionaries(
    {
        "source": st.sampled_from(["hyperlane", "layerzero"]),
        "external_id": st.integers(0, 99).map(str),
        "destination": st.sampled_from(["kaspa:alice", "kaspa:bob"]),
        "metadata": st.sampled_from([(), (("reason", "bridge"),)]),
        "timestamp": st.integers(0, 2**64 - 1),
    }
)


@st.composite
def cases(draw):
    """An event, the UTXO set, the order the node returned it in, fee, fee mode, round."""
    max_amount, utxo_strategy, fees = SCALES[draw(scales)]
    utxos = draw(utxo_strategy)
    fee, fee_mode, round_ = draw(fees), draw(fee_modes), draw(rounds)
    affordable = max(1, sum(u.amount for u in utxos) - fee)
    # Mostly an amount the group can pay, often nearly all it holds: selection takes several inputs.
    amount = draw(st.integers(1, affordable) | st.integers(max(1, affordable - 500), affordable) | st.integers(1, max_amount))
    return {
        "event": pskt.Event(amount=amount, **draw(event_fields)),  # amount 0: test_refusals_agree_with_the_model
        "utxos": utxos,
        "fee": fee,
        "fee_mode": fee_mode,
        "round": round_,
        # Drawn last, so that deleting a UTXO while shrinking leaves every other choice in place.
        "node_order": draw(st.permutations(utxos)),
    }


# --- model <-> implementation -----------------------------------------------------------


def to_model_event(e: pskt.Event) -> model.Event:
    return model.Event(e.source, e.external_id, e.destination, e.amount, e.metadata, e.timestamp)


def to_model_mode(mode: pskt.FeeMode) -> model.FeeMode:
    if isinstance(mode, pskt.Split):
        return model.Split(mode.recipient_parts, mode.signer_parts)
    return model.RecipientPays() if isinstance(mode, pskt.RecipientPays) else model.SignersPay()


def plain(template) -> tuple:
    """Model and implementation templates as comparable plain tuples."""
    return (
        tuple((u.txid, u.index, u.amount) for u in template.inputs),
        tuple((o.address, o.amount) for o in template.outputs),
    )


def outcome(label: str) -> None:
    """Count the outcome in Hypothesis's statistics (outside a Hypothesis test: nothing)."""
    if currently_in_test_context():
        event(label)


def check_agreement(case: dict, build=pskt.build_template) -> None:
    """``build`` (given the node's order) and the model (given the set) agree exactly."""
    expected = model.build_template(
        to_model_event(case["event"]),
        [model.Utxo(u.txid, u.index, u.amount) for u in case["utxos"]],
        case["fee"],
        to_model_mode(case["fee_mode"]),
        CHANGE,
        case["round"],
        hash32,
    )
    try:
        got = build(
            case["event"],
            case["node_order"],
            fee=case["fee"],
            fee_mode=case["fee_mode"],
            change_address=CHANGE,
            round=case["round"],
        )
    except pskt.TemplateRefused as refused:
        outcome(f"refused: {refused.kind}")
        assert isinstance(expected, model.Refusal), f"implementation refused ({refused}), the model built {expected}"
        assert refused.kind == expected.kind, f"implementation refused with {refused.kind}, the model with {expected.kind}"
        return
    outcome(f"built: {len(got.inputs)} inputs" if len(got.inputs) < 3 else "built: 3+ inputs")
    assert not isinstance(expected, model.Refusal), f"implementation built {got}, the model refused: {expected}"
    assert plain(got) == plain(expected), f"implementation built\n  {plain(got)}\nthe model says\n  {plain(expected)}"
    assert got.fee == expected.fee == case["fee"], f"fee {got.fee}, model {expected.fee}, asked {case['fee']}"


#: The agreement property is cheap (about 10 ms an example): give it more examples than the profile's default.
AGREEMENT_EXAMPLES = max(settings.default.max_examples, 300)


@settings(max_examples=AGREEMENT_EXAMPLES)
@given(cases())
def test_model_and_implementation_agree(case):
    check_agreement(case)


@given(cases(), st.randoms(use_true_random=False))
def test_template_does_not_depend_on_utxo_order(case, rnd):
    build = dict(fee=case["fee"], fee_mode=case["fee_mode"], change_address=CHANGE, round=case["round"])
    try:
        first = pskt.build_template(case["event"], case["utxos"], **build)
    except pskt.TemplateRefused as refused:
        with pytest.raises(pskt.TemplateRefused) as again:
            pskt.build_template(case["event"], case["node_order"], **build)
        assert again.value.kind == refused.kind
        return
    shuffled = list(case["utxos"])
    rnd.shuffle(shuffled)
    for order in (case["node_order"], shuffled, list(reversed(case["utxos"]))):
        other = pskt.build_template(case["event"], order, **build)
        assert pskt.encode_template(other) == pskt.encode_template(first)
        assert pskt.validation_hash(pskt.event_hash(case["event"]), other) == pskt.validation_hash(
            pskt.event_hash(case["event"]), first
        )


@given(events(st.integers(0, 2**64 - 1)))
def test_event_hash_agrees_with_model_and_round_trips(event):
    assert pskt.event_hash(event) == model.event_id(to_model_event(event), hash32)
    assert pskt.decode_event(pskt.encode_event(event)) == event


def test_metadata_order_does_not_change_the_event():
    a = pskt.Event("api", "1", "kaspa:x", 5, (("b", "2"), ("a", "1")), 9)
    b = pskt.Event("api", "1", "kaspa:x", 5, (("a", "1"), ("b", "2")), 9)
    assert a == b and pskt.event_hash(a) == pskt.event_hash(b)
    with pytest.raises(ValueError, match="duplicate key"):
        pskt.Event("api", "1", "kaspa:x", 5, (("a", "1"), ("a", "2")), 9)


def test_three_signers_build_identical_templates_in_every_fee_mode():
    """The seed's cross-signer test: same event, same UTXO set, three node orders."""
    ledger = Ledger()
    for i in range(20):
        ledger.fund(CHANGE, 5_000_000_000 + i)
    event = pskt.Event("hyperlane", "0xabc", "kaspa:recipient", 10_000_000_000, (("reason", "bridge"),), 1_700_000_000 * 10**9)
    for mode in (pskt.RecipientPays(), pskt.SignersPay(), pskt.Split(1, 1)):
        built = [
            pskt.build_template(
                event, ledger.utxos_for(CHANGE, order_seed=signer), fee=2_000, fee_mode=mode, change_address=CHANGE
            )
            for signer in range(3)
        ]
        blobs = {pskt.encode_template(t) for t in built}
        assert len(blobs) == 1
        assert len({pskt.validation_hash(pskt.event_hash(event), t) for t in built}) == 1
        assert built[0].fee == 2_000


# --- fee modes ------------------------------------------------------------------------------

UTXOS = [pskt.Utxo(bytes([i]) * 32, 0, 1_000) for i in range(5)]


@pytest.mark.parametrize(
    ("fee", "rp", "sp", "recipient_fee"),
    [
        (10, 1, 2, 3),
        (10, 2, 1, 6),
        (1, 1, 1, 0),
        (3, 1, 1, 1),
        (7, 0, 5, 0),
        (7, 5, 0, 7),
        (2**62 + 1, 1, 2, (2**62 + 1) // 3),
        (2**53 + 1, 1, 1, 2**52),
        (999, 2**32 - 1, 1, 998),
    ],
)
def test_split_uses_integer_arithmetic(fee, rp, sp, recipient_fee):
    assert pskt.recipient_fee_share(fee, pskt.Split(rp, sp)) == recipient_fee
    assert model.recipient_fee(fee, model.Split(rp, sp)) == recipient_fee
    if fee < 2_000:
        event = pskt.Event("api", "1", "kaspa:r", 1_000, (), 0)
        t = pskt.build_template(event, UTXOS, fee=fee, fee_mode=pskt.Split(rp, sp), change_address=CHANGE)
        assert t.outputs[0].amount == 1_000 - recipient_fee
        assert t.fee == fee


def test_recipient_pays_refuses_amount_below_fee():
    event = pskt.Event("api", "1", "kaspa:r", 99, (), 0)
    with pytest.raises(pskt.TemplateRefused, match="amount_below_fee") as refused:
        pskt.build_template(event, UTXOS, fee=100, fee_mode=pskt.RecipientPays(), change_address=CHANGE)
    assert refused.value.kind == "amount_below_fee"
    exact = pskt.build_template(
        pskt.Event("api", "1", "kaspa:r", 100, (), 0), UTXOS, fee=100, fee_mode=pskt.RecipientPays(), change_address=CHANGE
    )
    assert exact.outputs[0].amount == 0 and exact.fee == 100


def test_insufficient_funds_and_zero_amount_are_refused():
    with pytest.raises(pskt.TemplateRefused, match="insufficient_funds: the group's UTXOs hold 5000 sompi, 5001 needed"):
        pskt.build_template(
            pskt.Event("api", "1", "kaspa:r", 5_000, (), 0), UTXOS, fee=1, fee_mode=pskt.SignersPay(), change_address=CHANGE
        )
    with pytest.raises(pskt.TemplateRefused, match="zero_amount"):
        pskt.build_template(
            pskt.Event("api", "1", "kaspa:r", 0, (), 0), UTXOS, fee=0, fee_mode=pskt.SignersPay(), change_address=CHANGE
        )
    with pytest.raises(pskt.TemplateRefused, match="duplicate_outpoint"):
        pskt.build_template(
            pskt.Event("api", "1", "kaspa:r", 5, (), 0),
            [*UTXOS, UTXOS[0]],
            fee=0,
            fee_mode=pskt.SignersPay(),
            change_address=CHANGE,
        )


@pytest.mark.parametrize(
    ("amount", "utxos", "fee", "mode", "kind"),
    [
        (0, UTXOS, 0, pskt.SignersPay(), "zero_amount"),
        (0, [*UTXOS, UTXOS[1]], 0, pskt.SignersPay(), "duplicate_outpoint"),
        (5, [*UTXOS, UTXOS[1]], 0, pskt.SignersPay(), "duplicate_outpoint"),
        (2, UTXOS, 9, pskt.Split(1, 2), "amount_below_fee"),
        (3, UTXOS, 9, pskt.Split(1, 2), None),
        (10**6, UTXOS, 9, pskt.Split(1, 2), "insufficient_funds"),
        (1, [], 0, pskt.SignersPay(), "insufficient_funds"),
        (4_990, UTXOS, 10, pskt.RecipientPays(), None),
        (4_991, UTXOS, 10, pskt.RecipientPays(), "insufficient_funds"),
    ],
)
def test_refusals_agree_with_the_model(amount, utxos, fee, mode, kind):
    case = {
        "event": pskt.Event("api", "1", "kaspa:r", amount, (), 0),
        "utxos": utxos,
        "node_order": list(reversed(utxos)),
        "fee": fee,
        "fee_mode": mode,
        "round": 0,
    }
    check_agreement(case)
    expected = model.build_template(
        to_model_event(case["event"]),
        [model.Utxo(u.txid, u.index, u.amount) for u in utxos],
        fee,
        to_model_mode(mode),
        CHANGE,
        0,
        hash32,
    )
    assert (expected.kind if isinstance(expected, model.Refusal) else None) == kind


def test_no_change_output_when_inputs_match_exactly():
    t = pskt.build_template(
        pskt.Event("api", "1", "kaspa:r", 4_990, (), 0), UTXOS, fee=10, fee_mode=pskt.SignersPay(), change_address=CHANGE
    )
    assert [o.address for o in t.outputs] == ["kaspa:r"] and t.fee == 10


def test_round_changes_the_selection_order():
    event = pskt.Event("api", "1", "kaspa:r", 500, (), 0)
    picks = {
        pskt.build_template(event, UTXOS, fee=0, fee_mode=pskt.SignersPay(), change_address=CHANGE, round=r).inputs[0].txid
        for r in range(12)
    }
    assert len(picks) > 1


# --- encoding ---------------------------------------------------------------------------------

templates = st.builds(
    pskt.Template,
    inputs=st.lists(
        st.builds(
            pskt.Utxo, txid=st.binary(min_size=32, max_size=32), index=st.integers(0, 2**32 - 1), amount=st.integers(0, 2**64 - 1)
        ),
        max_size=5,
    ).map(tuple),
    outputs=st.lists(
        st.builds(pskt.Output, address=st.text(min_size=1, max_size=10), amount=st.integers(0, 2**64 - 1)), max_size=3
    ).map(tuple),
)


@given(templates)
def test_template_encoding_round_trips(template):
    data = pskt.encode_template(template)
    assert pskt.decode_template(data) == template
    assert pskt.tx_template_hash(template) == hash32(data)
    for cut in range(len(data)):
        with pytest.raises(DecodeError, match="truncated"):
            pskt.decode_template(data[:cut])
    with pytest.raises(DecodeError, match="1 trailing bytes"):
        pskt.decode_template(data + b"\x00")


@given(st.binary(max_size=120) | templates.map(pskt.encode_template).flatmap(lambda d: st.just(d) | st.binary(max_size=len(d))))
def test_decoding_arbitrary_bytes_is_total_and_canonical(data):
    try:
        template = pskt.decode_template(data)
    except DecodeError:
        return
    assert pskt.encode_template(template) == data


@given(st.binary(max_size=80))
def test_decoding_arbitrary_event_bytes_is_total_and_canonical(data):
    try:
        event = pskt.decode_event(data)
    except DecodeError:
        return
    assert pskt.encode_event(event) == data


def test_malformed_templates_name_what_is_wrong():
    good = pskt.encode_template(pskt.Template((UTXOS[0],), (pskt.Output("kaspa:r", 5),)))
    cases = {
        b"XSKT" + good[4:]: "bad magic",
        good[:4] + struct.pack("<H", 2) + good[6:]: "version 2 is not supported",
        good[:6] + struct.pack("<I", 2**32 - 1) + good[10:]: "4294967295 inputs need",
        good[:-17] + struct.pack("<QH", 5, 0): "empty address",
        good[:-7] + b"\xff" + good[-6:]: "not valid UTF-8",
        good[:-2]: "truncated at output 0 address",
        "not bytes": "expected bytes",
    }
    for data, message in cases.items():
        with pytest.raises(DecodeError, match=message):
            pskt.decode_template(data)


def test_event_decoding_refuses_unsorted_metadata():
    data = pskt.encode_event(pskt.Event("a", "b", "c", 1, (("k1", "v"), ("k2", "v")), 2))
    swapped = data.replace(b"k1", b"k3")
    with pytest.raises(DecodeError, match="keys must be sorted"):
        pskt.decode_event(swapped)


def test_hashes_equal():
    h = hash32(b"x")
    assert pskt.hashes_equal(h, bytes(h))
    assert not pskt.hashes_equal(h, h[:-1] + bytes([h[-1] ^ 1]))
    assert not pskt.hashes_equal(h, h[:31])


# --- ledger -------------------------------------------------------------------------------------

KEYS = [nacl.signing.SigningKey(hash32(b"igra-test-key" + bytes([i]))) for i in range(4)]
PUB = [k.verify_key.encode() for k in KEYS]
GROUP = MultisigGroup(2, tuple(PUB[:3]))  # KEYS[3] is an outsider


@pytest.fixture
def ledger():
    ledger = Ledger()
    ledger.add_group(GROUP)
    for amount in (400, 300, 200, 100):
        ledger.fund(GROUP.address, amount)
    return ledger


def build(ledger, amount=350, fee=10):
    event = pskt.Event("api", f"ev-{amount}", "kaspa:recipient", amount, (), 0)
    return pskt.build_template(
        event, ledger.utxos_for(GROUP.address), fee=fee, fee_mode=pskt.SignersPay(), change_address=GROUP.address
    )


def signed(template, signers, sign_template=None):
    per_key = {i: pskt.sign_inputs(KEYS[i], sign_template or template) for i in set(signers)}
    return pskt.SignedTransaction(
        template, tuple(tuple((PUB[i], per_key[i][n]) for i in signers) for n in range(len(template.inputs)))
    )


def snapshot(ledger):
    return ledger.utxos_for(GROUP.address), ledger.utxos_for("kaspa:recipient"), list(ledger.accepted)


def refused(ledger, tx, kind, match):
    before = snapshot(ledger)
    with pytest.raises(LedgerError, match=match) as error:
        ledger.submit(tx)
    assert error.value.kind == kind
    assert snapshot(ledger) == before, "a refused transaction changed the ledger"


def test_ledger_accepts_m_signatures_and_the_change_becomes_spendable(ledger):
    t = build(ledger)
    txid = ledger.submit(signed(t, [2, 0]))
    assert txid == pskt.tx_template_hash(t)
    assert ledger.balance("kaspa:recipient") == 350
    assert ledger.balance(GROUP.address) == 1_000 - 350 - 10
    change = [u for u in ledger.utxos_for(GROUP.address) if u.txid == txid]
    assert change == [pskt.Utxo(txid, 1, t.outputs[1].amount)]
    # spend everything, change included
    t2 = build(ledger, amount=ledger.balance(GROUP.address) - 10)
    assert any(u.txid == txid for u in t2.inputs)
    ledger.submit(signed(t2, [0, 1, 2]))
    assert ledger.balance(GROUP.address) == 0


def test_ledger_refuses_double_spend(ledger):
    t = build(ledger)
    tx = signed(t, [0, 1])
    ledger.submit(tx)
    refused(ledger, tx, "double_spend", "already spent")
    fresh = build(ledger, amount=100)
    twice = pskt.Template((fresh.inputs[0], fresh.inputs[0]), (pskt.Output("kaspa:recipient", fresh.inputs[0].amount),))
    refused(ledger, signed(twice, [0, 1]), "double_spend", "already spent by input 0")


def test_ledger_refuses_too_few_duplicate_and_foreign_signatures(ledger):
    t = build(ledger)
    refused(ledger, signed(t, [0]), "signatures", "from 1 distinct group keys, needs 2")
    refused(ledger, signed(t, [1, 1]), "signatures", "from 1 distinct group keys, needs 2")
    refused(ledger, signed(t, [1, 3]), "signatures", "from 1 distinct group keys, needs 2")
    refused(ledger, signed(t, []), "signatures", "from 0 distinct")
    ledger.submit(signed(t, [3, 1, 1, 2]))


def test_ledger_refuses_signatures_made_for_another_template(ledger):
    t = build(ledger)
    other = pskt.Template(t.inputs, (pskt.Output("kaspa:recipient", t.outputs[0].amount - 1), t.outputs[1]))
    refused(ledger, signed(t, [0, 1], sign_template=other), "signatures", "input 0 has valid signatures from 0")
    tampered = pskt.Template(t.inputs, (pskt.Output("kaspa:attacker", t.outputs[0].amount), *t.outputs[1:]))
    good = signed(t, [0, 1])
    refused(ledger, pskt.SignedTransaction(tampered, good.signatures), "signatures", "needs 2")


def test_ledger_refuses_bad_amounts_unknown_inputs_and_malformed(ledger):
    t = build(ledger)
    lying = pskt.Template((pskt.Utxo(t.inputs[0].txid, 0, t.inputs[0].amount + 1), *t.inputs[1:]), t.outputs)
    refused(ledger, signed(lying, [0, 1]), "amount_mismatch", "claims")
    unknown = pskt.Template((pskt.Utxo(b"\x09" * 32, 0, 5),), (pskt.Output("kaspa:r", 5),))
    refused(ledger, signed(unknown, [0, 1]), "unknown_input", "never created")
    greedy = pskt.Template(t.inputs, (pskt.Output("kaspa:recipient", sum(u.amount for u in t.inputs) + 1),))
    refused(ledger, signed(greedy, [0, 1]), "fee", "exceed inputs")
    refused(ledger, pskt.SignedTransaction(t, ()), "malformed", "signature lists")
    stranger = ledger.fund("kaspa:someone", 50)
    not_ours = pskt.Template((stranger,), (pskt.Output("kaspa:r", 40),))
    refused(ledger, signed(not_ours, [0, 1]), "not_multisig", "no known multisig group")
    strict = Ledger(min_fee=20)
    strict.add_group(GROUP)
    strict.fund(GROUP.address, 400)
    refused(strict, signed(build(strict, amount=300, fee=10), [0, 1]), "fee", "below the minimum fee 20")


def test_group_validation_and_seeded_node_order():
    with pytest.raises(ValueError, match="m=3"):
        MultisigGroup(3, tuple(PUB[:2]))
    with pytest.raises(ValueError, match="distinct"):
        MultisigGroup(1, (PUB[0], PUB[0]))
    ledger = Ledger()
    for i in range(10):
        ledger.fund(CHANGE, i + 1)
    orders = [tuple(ledger.utxos_for(CHANGE, seed)) for seed in range(5)]
    assert len(set(orders)) > 1 and all(sorted(o, key=lambda u: u.amount) == ledger.utxos_for(CHANGE) for o in orders)
    assert orders[0] == tuple(ledger.utxos_for(CHANGE, 0))


signature_kinds = st.sampled_from(["genuine", "genuine", "genuine", "for another template", "garbage"])


@settings(max_examples=max(settings.default.max_examples, 100))
@given(st.integers(1, 990), st.data())
def test_ledger_accepts_exactly_when_every_input_has_m_distinct_member_signatures(amount, data):
    ledger = Ledger()
    ledger.add_group(GROUP)
    for value in (400, 300, 200, 100):
        ledger.fund(GROUP.address, value)
    t = build(ledger, amount=amount)
    other = pskt.Template(t.inputs, (pskt.Output("kaspa:recipient", t.outputs[0].amount - 1), *t.outputs[1:]))
    hashes, other_hashes = pskt.sighashes(t), pskt.sighashes(other)
    # Per input: who signs (key 3 is not in the group) and what (a genuine signature, one over
    # another template's sighash, 64 bytes of garbage); repeats allowed.
    plans = data.draw(
        st.lists(
            st.lists(st.tuples(st.integers(0, 3), signature_kinds), max_size=5), min_size=len(t.inputs), max_size=len(t.inputs)
        )
    )
    signatures = []
    for i, plan in enumerate(plans):
        pairs = []
        for k, kind in plan:
            if kind == "genuine":
                signature = KEYS[k].sign(hashes[i]).signature
            elif kind == "for another template":
                signature = KEYS[k].sign(other_hashes[i]).signature
            else:
                signature = hash32(bytes([k, i])) * 2
            pairs.append((PUB[k], signature))
        signatures.append(tuple(pairs))
    tx = pskt.SignedTransaction(t, tuple(signatures))
    counts = [len({k for k, kind in plan if kind == "genuine" and PUB[k] in GROUP.pubkeys}) for plan in plans]
    outcome("accepted" if all(c >= GROUP.m for c in counts) else "refused")
    if all(c >= GROUP.m for c in counts):
        assert ledger.submit(tx) == pskt.tx_template_hash(t)
        assert ledger.balance("kaspa:recipient") == amount
        assert ledger.balance(GROUP.address) == 1_000 - amount - 10
    else:
        short = min(i for i, c in enumerate(counts) if c < GROUP.m)
        refused(ledger, tx, "signatures", f"input {short} has valid signatures from {counts[short]} distinct group keys")
