"""The z3 twins of the SPEC's PSKT arithmetic and protocol clocks agree with the models, and
every committed edge (``machines/spec_edges.json``) still sits on its edge.

Hypothesis draws concrete coins, amounts, fees, fee modes (parts at their edges among them)
and times around each window; each twin is evaluated by substituting the concrete values
into its symbolic expression.
"""

from __future__ import annotations

import blake3
import pytest
import z3
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import load_trace, replay
from machines import spec_edges
from machines.spec_z3 import (
    FEE_MODES,
    KINDS,
    PSKT_EDGES,
    WINDOW_EDGES,
    float_split_differs,
    parts_of,
    search_pskt,
    search_window,
    symbolic_build,
    symbolic_window,
)
from models import pskt as model
from models import threshold
from models.clock import NS_PER_SECOND

U32_MAX = 2**32 - 1
CHANGE = "kaspa:change"


def hash32(data: bytes) -> bytes:
    return blake3.blake3(data).digest()


def mode_of(fee_mode: str):
    parts = parts_of(fee_mode)
    if parts is None:
        return model.RecipientPays() if fee_mode == "recipient" else model.SignersPay()
    return model.Split(*parts)


def build(coins: list[int], amount: int, fee: int, fee_mode: str):
    utxos = [model.Utxo(hash32(bytes([i])), 0, c) for i, c in enumerate(coins)]
    event = model.Event("hyperlane", "ev", "kaspa:dest", amount, (), 0)
    return model.build_template(event, utxos, fee, mode_of(fee_mode), CHANGE, 0, hash32)


def twin_build(amount: int, fee: int, fee_mode: str, total: int) -> tuple[str, int, int]:
    kind, _, to_recipient, change = symbolic_build(z3.IntVal(amount), z3.IntVal(fee), fee_mode, z3.IntVal(total))
    return KINDS[z3.simplify(kind).as_long()], z3.simplify(to_recipient).as_long(), z3.simplify(change).as_long()


sompi = st.one_of(st.integers(0, 10_000), st.integers(0, 2**62), st.sampled_from([0, 1, 2**53 - 1, 2**53, 2**53 + 1, 2**62]))
any_split = st.tuples(st.integers(0, U32_MAX), st.integers(0, U32_MAX)).filter(sum).map(lambda p: f"split:{p[0]}:{p[1]}")
fee_modes = st.one_of(st.sampled_from(FEE_MODES), any_split)


@settings(max_examples=400, deadline=None)
@given(st.lists(sompi.filter(bool), min_size=1, max_size=4), sompi, sompi, fee_modes)
def test_the_pskt_twin_and_the_model_agree(coins, amount, fee, fee_mode):
    built = build(coins, amount, fee, fee_mode)
    if isinstance(built, model.Refusal):
        assert twin_build(amount, fee, fee_mode, sum(coins))[0] == built.kind
        return
    total = sum(u.amount for u in built.inputs)
    kind, to_recipient, change = twin_build(amount, fee, fee_mode, total)
    assert kind == "built"
    assert built.outputs[0].amount == to_recipient
    assert [o.amount for o in built.outputs[1:]] == ([change] if change > 0 else [])


times = st.integers(1_600_000_000 * NS_PER_SECOND, 1_800_000_000 * NS_PER_SECOND)
offsets = st.one_of(st.sampled_from(spec_edges.WINDOW_OFFSETS), st.integers(-4000 * NS_PER_SECOND, 4000 * NS_PER_SECOND))


@settings(max_examples=300, deadline=None)
@given(times, offsets, st.sampled_from([-1, 0, 1]))
def test_the_window_twin_and_the_model_agree(now, offset, nudge):
    expires_at = now - offset + nudge
    got = {name: z3.is_true(z3.simplify(clock)) for name, clock in symbolic_window(z3.IntVal(expires_at), z3.IntVal(now)).items()}
    assert got == {
        "acceptable": threshold.expiry_acceptable(expires_at, now),
        "timed_out": threshold.timed_out(expires_at, now),
        "settles": threshold.settles(expires_at, now),
    }


#: What each PSKT edge means, on the concrete values of its answer (one coin).
ON_THE_PSKT_EDGE = {
    "recipient-gets-nothing": lambda a, t: not isinstance(t, model.Refusal) and t.outputs[0].amount == 0,
    "amount-one-below-fee-share": lambda a, t: isinstance(t, model.Refusal) and t.kind == "amount_below_fee"
    and a["amount"] + 1 == model.recipient_fee(a["fee"], mode_of(a["fee_mode"])),
    "exact-funds-no-change": lambda a, t: not isinstance(t, model.Refusal) and len(t.outputs) == 1 and t.fee == a["fee"],
    "one-sompi-short": lambda a, t: isinstance(t, model.Refusal) and t.kind == "insufficient_funds"
    and a["coin"] + 1 == a["amount"] + a["fee"],
    "change-of-one": lambda a, t: not isinstance(t, model.Refusal) and t.outputs[-1] == model.Output(CHANGE, 1),
    "split-all-to-recipient": lambda a, t: not isinstance(t, model.Refusal) and parts_of(a["fee_mode"])[1] == 0,
    "split-all-to-signers": lambda a, t: not isinstance(t, model.Refusal) and parts_of(a["fee_mode"])[0] == 0,
    "split-parts-at-u32-max": lambda a, t: not isinstance(t, model.Refusal) and U32_MAX in parts_of(a["fee_mode"]),
    "split-share-past-2^53": lambda a, t: not isinstance(t, model.Refusal)
    and float_split_differs(a["fee"], *parts_of(a["fee_mode"])),
    "sums-near-the-bound": lambda a, t: not isinstance(t, model.Refusal) and a["amount"] + a["fee"] >= 2**62,
}
ON_THE_WINDOW_EDGE = {
    "window-late-last-in": lambda e, n: threshold.expiry_acceptable(e, n) and not threshold.expiry_acceptable(e, n + 1),
    "window-late-first-out": lambda e, n: not threshold.expiry_acceptable(e, n) and threshold.expiry_acceptable(e, n - 1),
    "window-early-last-in": lambda e, n: threshold.expiry_acceptable(e, n) and not threshold.expiry_acceptable(e + 1, n),
    "window-early-first-out": lambda e, n: not threshold.expiry_acceptable(e, n) and threshold.expiry_acceptable(e - 1, n),
    "session-deadline-last-out": lambda e, n: not threshold.timed_out(e, n) and threshold.timed_out(e, n + 1),
    "session-deadline-first-in": lambda e, n: threshold.timed_out(e, n) and not threshold.timed_out(e, n - 1),
    "settlement-last-out": lambda e, n: not threshold.settles(e, n) and threshold.settles(e, n + 1),
    "settlement-first-in": lambda e, n: threshold.settles(e, n) and not threshold.settles(e, n - 1),
}


def test_every_edge_has_a_committed_answer_on_it():
    assert set(ON_THE_PSKT_EDGE) == set(PSKT_EDGES) and set(ON_THE_WINDOW_EDGE) == set(WINDOW_EDGES)
    assert {a["edge"] for a in spec_edges.PSKT} == set(PSKT_EDGES), "regenerate: python -m machines.spec_z3 --write ..."
    assert {a["edge"] for a in spec_edges.WINDOWS} == set(WINDOW_EDGES)
    for answer in spec_edges.PSKT:
        template = build([answer["coin"]], answer["amount"], answer["fee"], answer["fee_mode"])
        assert ON_THE_PSKT_EDGE[answer["edge"]](answer, template), answer
    for answer in spec_edges.WINDOWS:
        assert ON_THE_WINDOW_EDGE[answer["edge"]](answer["expires_at"], answer["now"]), answer


@pytest.mark.parametrize("edge", PSKT_EDGES)
def test_the_search_still_finds_each_pskt_edge(edge):
    found = search_pskt(edge, count=1)
    assert found and ON_THE_PSKT_EDGE[edge](found[0], build([found[0]["coin"]], found[0]["amount"], found[0]["fee"],
                                                             found[0]["fee_mode"]))


@pytest.mark.parametrize("edge", WINDOW_EDGES)
def test_the_search_still_finds_each_window_edge(edge):
    found = search_window(edge, count=1)
    assert found and ON_THE_WINDOW_EDGE[edge](found[0]["expires_at"], found[0]["now"])


def test_the_committed_pskt_edge_traces_replay():
    from machines.spec_z3 import TRACES

    paths = sorted(TRACES.glob("pskt-z3-*.json"))
    assert len(paths) == len(spec_edges.PSKT), "regenerate: python -m machines.spec_z3 --traces regressions/traces"
    for path in paths:
        assert str(replay(load_trace(path))) == "passed", path
