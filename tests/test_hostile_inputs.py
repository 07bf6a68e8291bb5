"""The hostile-input benchmark's smoke run: a few hundred crafted and mutated messages per
replicated type and decoder raise nothing but documented decode errors, and a refused
message never changes a replica's state (the benchmark itself, 10^5 each, is a table)."""

from __future__ import annotations

from benchmarks.hostile_inputs import HEADERS, rows


def test_hostile_inputs_raise_only_documented_errors_and_refusals_change_nothing():
    table = rows(300, seed=7)
    assert len(table) >= 9
    other, changed = HEADERS.index("other exceptions"), HEADERS.index("changed after refusal")
    for row in table:
        assert row[other] == 0, f"{row[0]}: {row[-1]}"
        assert row[changed] == 0, f"{row[0]}: a refused message changed the state"
        assert 0 < row[HEADERS.index("refused")] < row[HEADERS.index("messages")], f"{row[0]}: every message refused or none"
