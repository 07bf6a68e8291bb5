"""Every limit is declared in ``implementations.limits``, and the README's table is its output."""

from __future__ import annotations

import re
from pathlib import Path

from harness.__main__ import limits_table
from implementations import limits
from implementations.wire import OverLimit

README = Path(__file__).resolve().parent.parent / "README.md"


def test_every_integer_constant_of_the_limits_module_is_declared():
    constants = {name for name, value in vars(limits).items() if re.fullmatch(r"[A-Z][A-Z0-9_]+", name)
                 and isinstance(value, (int, float))}
    undeclared = constants - set(limits.LIMITS) - {"U64_MAX", "I64_MAX"}  # the bounds of types, not limits
    assert not undeclared, f"declare these with limits.declare(...), so they are documented: {sorted(undeclared)}"
    for name, limit in limits.LIMITS.items():
        assert getattr(limits, name) == limit.value and limit.bounds


def test_the_readme_table_of_limits_is_what_harness_limits_prints():
    assert limits_table() in README.read_text(), "README.md's Limits table is stale: paste `python -m harness limits`"


def test_an_over_limit_error_names_its_limit():
    error = OverLimit("MAX_COUNTER_GAP", "a message claims dot (1, 2^64 - 1)")
    assert error.limit == "MAX_COUNTER_GAP"
    assert "MAX_COUNTER_GAP" in str(error) and "4,294,967,296" in str(error)
