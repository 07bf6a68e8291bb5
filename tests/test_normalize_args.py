"""``harness.trace.normalize_args`` copies plain values directly (it runs on every live step);
what it returns must still be exactly what the JSON round trip returns, and what JSON refuses
it must still refuse, naming the step."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.trace import normalize_args

JSON_LIKE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner) | st.tuples(inner, inner) | st.dictionaries(st.text() | st.integers(), inner),
    max_leaves=12,
)


def typed(value):
    """``value`` with the type of every part spelled out, so ``1`` and ``True`` and ``1.0`` differ."""
    if isinstance(value, dict):
        return ("dict", [(typed(k), typed(v)) for k, v in value.items()])
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [typed(v) for v in value])
    if isinstance(value, float) and value == 0:
        return ("float", math.copysign(1, value))
    return (type(value).__name__, value)


@given(st.dictionaries(st.text(), JSON_LIKE, max_size=4))
def test_normalize_args_is_the_json_round_trip(args):
    assert typed(normalize_args(args)) == typed(json.loads(json.dumps(args, allow_nan=False)))


def test_normalized_lists_are_fresh_copies():
    orders = [1, 2, [3]]
    normalized = normalize_args({"orders": orders})
    orders[2].append(4)
    assert normalized == {"orders": [1, 2, [3]]}


class Level(int):
    """An int subclass: JSON writes its integer value."""


@pytest.mark.parametrize(
    ("args", "expected"),
    [({"level": Level(3)}, {"level": 3}), ({"skews": {1: 2}}, {"skews": {"1": 2}}), ({"pair": (1, "a")}, {"pair": [1, "a"]})],
)
def test_values_json_converts_are_converted_as_json_does(args, expected):
    normalized = normalize_args(args)
    assert normalized == expected
    assert typed(normalized) == typed(expected)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), b"bytes", {1, 2}, object()])
def test_what_json_refuses_is_refused_naming_the_step(bad):
    with pytest.raises(TypeError, match="step add: arguments must be plain JSON values"):
        normalize_args({"element": bad}, "step add")


def test_a_circular_argument_is_refused():
    loop: list = []
    loop.append(loop)
    with pytest.raises(TypeError, match="Circular reference"):
        normalize_args({"loop": loop})
