"""The z3 twin of the policy check and the Python model agree, so the two specs cannot drift.

Hypothesis draws concrete policies, requests and current volumes (amounts on and around
every bound, sums past 2**64); the twin is evaluated by substituting the concrete values
into its one symbolic expression.
"""

from __future__ import annotations

import z3
from hypothesis import given, settings
from hypothesis import strategies as st

from machines.policy_z3 import KINDS, SymbolicPolicy, day, kind_of, symbolic_check, u64
from models import policy as model
from models.clock import NS_PER_DAY, utc_day

U64_MAX = model.U64_MAX
POLICY = SymbolicPolicy(u64("min"), u64("max"), u64("limit"), z3.Bool("require_reason"), z3.Bool("has_allowlist"))
LISTED, HAS_REASON, AMOUNT, CURRENT = z3.Bool("listed"), z3.Bool("has_reason"), u64("amount"), u64("current")
TWIN = symbolic_check(POLICY, LISTED, AMOUNT, HAS_REASON, CURRENT)

def twin(policy: model.GroupPolicy, listed: bool, amount: int, has_reason: bool, current: int) -> str:
    bv = lambda value: z3.BitVecVal(value, 64)  # noqa: E731
    concrete = z3.substitute(
        TWIN,
        (POLICY.min_amount, bv(policy.min_amount)),
        (POLICY.max_amount, bv(policy.max_amount)),
        (POLICY.max_daily_volume, bv(policy.max_daily_volume)),
        (POLICY.require_reason, z3.BoolVal(policy.require_reason)),
        (POLICY.has_allowlist, z3.BoolVal(bool(policy.allowed_destinations))),
        (LISTED, z3.BoolVal(listed)),
        (AMOUNT, bv(amount)),
        (HAS_REASON, z3.BoolVal(has_reason)),
        (CURRENT, bv(current)),
    )
    return KINDS[z3.simplify(concrete).as_long()]


u64s = st.one_of(st.integers(0, U64_MAX), st.integers(0, 10**12), st.sampled_from([0, 1, 2**63, U64_MAX - 1, U64_MAX]))


@st.composite
def cases(draw):
    low, high = sorted((draw(u64s), draw(u64s)))
    limit = draw(st.one_of(u64s, st.just(high)))
    allowed = draw(st.sampled_from([frozenset(), frozenset({"kaspa:qa"}), frozenset({"kaspa:qa", "kaspa:qb"})]))
    policy = model.GroupPolicy(allowed, low, high, limit, draw(st.booleans()))
    current = draw(st.one_of(u64s, st.just(limit), st.integers(0, limit)))
    near = [low - 1, low, low + 1, high - 1, high, high + 1, limit - current, limit - current + 1, U64_MAX]
    amount = draw(st.one_of(u64s, st.sampled_from([a for a in near if 0 <= a <= U64_MAX])))
    destination = draw(st.sampled_from(["kaspa:qa", "kaspa:qb", "kaspa:qz"]))
    reason = draw(st.sampled_from([None, "", "payout"]))
    return policy, model.SpendRequest("r", destination, amount, reason), current


@settings(max_examples=1000, deadline=None)
@given(cases())
def test_twin_and_model_agree(case):
    policy, request, current = case
    expected = kind_of(model.check(policy, request, current))
    listed = request.destination in policy.allowed_destinations
    assert twin(policy, listed, request.amount, bool(request.reason), current) == expected, case


def test_twin_sees_a_wrapping_sum_as_exceeding():
    policy = model.GroupPolicy(min_amount=0, max_amount=U64_MAX, max_daily_volume=U64_MAX)
    assert twin(policy, True, 2, True, U64_MAX - 1) == "volume"
    assert kind_of(model.check(policy, model.SpendRequest("r", "d", 2, None), U64_MAX - 1)) == "volume"
    assert twin(policy, True, 1, True, U64_MAX - 1) == "approved"


T = u64("t")
TWIN_DAY = day(T)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.integers(0, U64_MAX),
        st.builds(lambda d, e: d * NS_PER_DAY - e, st.integers(1, U64_MAX // NS_PER_DAY), st.sampled_from([0, 1])),  # midnights
    )
)
def test_twin_day_is_the_utc_day(t):
    assert z3.simplify(z3.substitute(TWIN_DAY, (T, z3.BitVecVal(t, 64)))).as_long() == utc_day(t)
