"""Rule balance (``harness.balance``): every rule of every machine has a class, floors are
checked like a rule that never ran, and the coverage table groups rules by class."""

from __future__ import annotations

from collections import Counter
from typing import ClassVar

import pytest

from harness import balance
from harness.machine import RuleStats
from harness.registry import _machines
from harness.runner import import_project

import_project()


@pytest.mark.parametrize("name", sorted(_machines))
def test_every_rule_of_every_machine_has_a_known_class(name):
    assert balance.declaration_errors(_machines[name]) == []


class Declared:
    rule_classes: ClassVar[dict[str, str]] = {"start": "setup", "add": "operations", "deliver": "delivery", "tick": "time"}
    class_floors: ClassVar[dict[str, float]] = {"delivery": 0.2}

    @classmethod
    def rule_names(cls):
        return tuple(cls.rule_classes)


class Derived(Declared):
    rule_classes: ClassVar[dict[str, str]] = {"tick": "faults"}
    class_floors: ClassVar[dict[str, float]] = {"operations": 0.3}


def stats(**ran) -> RuleStats:
    return RuleStats("toy", "impl", tuple(Declared.rule_classes), ran=Counter(ran), examples=10)


def test_declarations_merge_along_the_mro():
    assert balance.rule_classes(Derived)["tick"] == "faults"
    assert balance.rule_classes(Derived)["add"] == "operations"
    assert balance.class_floors(Derived) == {"delivery": 0.2, "operations": 0.3}


def test_shares_leave_setup_out():
    shares = {s.kind: s for s in balance.shares(Declared, stats(start=100, add=300, deliver=100, tick=100))}
    assert shares["operations"].share == 0.6 and shares["delivery"].share == 0.2 and shares["setup"].share == 0
    assert not shares["delivery"].starved


def test_a_class_below_its_floor_fails_the_run():
    with pytest.raises(AssertionError, match=r"delivery 10\.0% \(floor 20%\)"):
        balance.check_floors(Declared, stats(start=10, add=800, deliver=100, tick=100))


def test_a_short_run_is_not_judged():
    balance.check_floors(Declared, stats(add=80, deliver=1, tick=10))


def test_bad_declarations_are_named():
    class Bad(Declared):
        rule_classes: ClassVar[dict[str, str]] = {"tick": "weather"}
        class_floors: ClassVar[dict[str, float]] = {"crash": 0.5, "delivery": 1.5}

    errors = balance.declaration_errors(Bad)
    assert any("'weather'" in e for e in errors)
    assert any("class 'crash', which none of its steps has" in e for e in errors)
    assert any("not a fraction" in e for e in errors)


def test_the_table_groups_rules_under_their_class():
    rows, headers = balance.table([stats(start=10, add=800, deliver=100, tick=100)])
    assert headers[:5] == ["machine/implementation", "class", "share", "floor", "rule"]
    classes = [row[1] for row in rows if row[1]]
    assert classes == ["unclassified"]  # "toy" is no registered machine: nothing to classify by
    from machines.pskt import PsktMachine

    run = RuleStats("pskt", "ledger", PsktMachine.rule_names(), ran=Counter(start=10, fund=10, pay=900, replay=5))
    rows, _ = balance.table([run])
    by_class = {row[1]: row for row in rows if row[1]}
    assert by_class["adversary"][2] == "0.5%" and by_class["adversary"][-1] == "BELOW FLOOR"
    short = RuleStats("pskt", "ledger", PsktMachine.rule_names(), ran=Counter(start=1, fund=10, pay=90, replay=1))
    rows, _ = balance.table([short])  # 101 steps: floors are not held below MIN_STEPS, and the mark says so
    by_class = {row[1]: row for row in rows if row[1]}
    assert by_class["adversary"][-1] == "below floor (not held: fewer steps than MIN_STEPS)"
    assert [row[4] for row in rows if row[4]] == ["fund", "bad_group", "bad_value", "pay", "spoil", "replay", "start"]
