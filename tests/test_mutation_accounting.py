"""The accounting of equivalent mutants (``tests/mutation_equivalent.toml``) cannot rot.

Cheap: no mutmut run. Every entry parses, names a function of a module of
``implementations/`` and a line that function still holds, and a mutant that differs from
that line; ``tests.mutation`` keys survivors the same way, so an entry matches exactly the
mutant it accounts for.
"""

from __future__ import annotations

import pytest

from tests.mutation import EQUIVALENTS, Equivalent, changed_lines, function_of, load_equivalents, report, stale_entries


def test_every_equivalent_mutant_names_a_line_of_the_current_source():
    entries = load_equivalents()
    assert entries, f"{EQUIVALENTS.name} accounts for no mutant"
    assert stale_entries(entries) == []


def test_every_reason_says_why():
    """An unreached survivor names the input that would reach it; an equivalent one says why none can."""
    for entry in load_equivalents():
        assert len(entry.reason.split()) >= 4, f"{entry.function}: `{entry.line}` -> `{entry.mutant}`: reason {entry.reason!r}"


def test_a_stale_entry_is_named(tmp_path):
    module = tmp_path / "implementations" / "counter.py"
    module.parent.mkdir()
    module.write_text("class Counter:\n    def bump(self, by):\n        self.n = self.n + by\n", encoding="utf-8")
    counter = "implementations/counter.py"
    good = Equivalent(counter, "Counter.bump", "self.n = self.n + by", "self.n = self.n - by", "equivalent", "why")
    gone = Equivalent(counter, "Counter.bump", "self.n += by", "self.n -= by", "equivalent", "why")
    elsewhere = Equivalent(counter, "Counter.drop", "self.n = self.n + by", "self.n = 0", "equivalent", "why")
    same = Equivalent(counter, "Counter.bump", "self.n = self.n + by", "self.n = self.n + by", "equivalent", "why")
    problems = stale_entries([good, gone, elsewhere, same], root=tmp_path)
    assert len(problems) == 3
    assert "no line 'self.n += by'" in problems[0] and "no function Counter.drop" in problems[1] and "line itself" in problems[2]


def test_a_malformed_file_is_refused_naming_the_entry(tmp_path):
    path = tmp_path / "equivalent.toml"
    no_reason = '[[equivalent]]\nmodule = "implementations/lww.py"\nfunction = "f"\nline = "x"\nmutant = "y"\n'
    path.write_text(no_reason, encoding="utf-8")
    with pytest.raises(ValueError, match="equivalent #1 needs"):
        load_equivalents(path)
    path.write_text(no_reason + 'kind = "harmless"\nreason = "r"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="kind 'harmless' is not one of"):
        load_equivalents(path)


def test_survivors_are_keyed_and_counted_as_the_accounting_says():
    diff = ("--- implementations/lww.py\n+++ implementations/lww.py\n@@ -1,3 +1,3 @@\n"
            " def observe(self, timestamp):\n-    if a > b:\n+    if a >= b:\n         pass")
    assert changed_lines(diff) == ("if a > b:", "if a >= b:")
    assert function_of("implementations.lww.x\u01c1HybridLogicalClock\u01c1observe__mutmut_3") == "HybridLogicalClock.observe"
    assert function_of("implementations.lww.x_check_value__mutmut_12") == "check_value"
    results = {"module": "implementations/lww.py", "machine": "lww", "selection": "hlc", "mutants": {
        "implementations.lww.x\u01c1HybridLogicalClock\u01c1observe__mutmut_3": {"status": "survived", "diff": diff},
        "implementations.lww.x_check_value__mutmut_1": {"status": "survived", "diff": diff},
        "implementations.lww.x_check_value__mutmut_2": {"status": "killed"},
        "implementations.lww.x_check_value__mutmut_3": {"status": "timeout"},
    }}
    lww = "implementations/lww.py"
    accounted = Equivalent(lww, "HybridLogicalClock.observe", "if a > b:", "if a >= b:", "equivalent", "equal")
    killed_now = Equivalent(lww, "check_value", "return value", "return None", "unreached", "wrong")
    text, unaccounted = report(results, [accounted, killed_now])
    assert unaccounted == 1
    row = "| implementations/lww.py | 4 | 4 | 2 | 1 | 0 | 1 | 50.0% | 66.7% |"
    assert row in text, text
    assert "x_check_value__mutmut_1" in text and "no longer surviving (1)" in text and "`return value`" in text
