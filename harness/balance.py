"""Rule balance: every rule of a machine belongs to a class, and each class gets its share.

Hypothesis picks among the rules whose preconditions hold, so a machine spends its steps
on whatever is always possible (advancing the clock, restarting, syncing everything) and
starves what needs a state first (delivering a delta needs one in flight). A bug that only
shows on a starved path is then out of reach, and a table of raw counts does not say so.

So a machine says what each of its steps is (``rule_classes``: step name -> class) and the
least share of its steps each class must get (``class_floors``: class -> fraction). The
classes every machine uses:

* ``operations``: what a user does (add, write, submit an event, pay);
* ``delivery``: a message reaches its receiver (in order, out of order, late, again);
* ``sync``: full-state replication (a whole state merged, anti-entropy to quiescence);
* ``faults``: the network misbehaves (drop, duplicate, delay, partitions, heal);
* ``time``: a clock moves or a node looks at it (a tick);

and a machine may add its own (``adversary``: lies of a peer; ``crash``: processes that
die, restart, or share a file). ``setup`` (the first step of every example) counts in no
share. Declarations are merged along the class's MRO, so a mixin of rules declares its own.

``shares`` computes each class's share of a run's steps; ``check_floors`` fails a run whose
share of some class is below its floor (``run_machine`` calls it under the derandomized
profiles in ``profiles.FLOORS_CHECKED``, next to the check that every rule ran); ``table`` is the
coverage table printed at the end of a pytest session, rules grouped by class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from harness.machine import RuleStats, TracedMachine

#: The classes of rules every machine draws from, with what they are.
CLASSES = {
    "operations": "what a user does",
    "delivery": "a message reaches its receiver: in order, out of order, late, again",
    "sync": "full-state replication or anti-entropy",
    "faults": "the network misbehaves: loss, duplication, delay, partitions",
    "time": "a clock moves, or a node or core looks at it",
    "adversary": "a peer or member that lies, wholly or in part",
    "crash": "a process dies, restarts, or shares its file with another",
    "setup": "the first step of an example (counted in no share)",
}
#: A run with fewer steps than this is too short for its shares to mean anything.
MIN_STEPS = 500
UNCLASSIFIED = "unclassified"


def rule_classes(machine_cls: type) -> dict[str, str]:
    """Step name -> class, from every ``rule_classes`` along the MRO (the most derived wins)."""
    merged: dict[str, str] = {}
    for klass in reversed(machine_cls.__mro__):
        merged.update(vars(klass).get("rule_classes", {}))
    return merged


def class_floors(machine_cls: type) -> dict[str, float]:
    """Class -> least share, from every ``class_floors`` along the MRO (the most derived wins)."""
    merged: dict[str, float] = {}
    for klass in reversed(machine_cls.__mro__):
        merged.update(vars(klass).get("class_floors", {}))
    return merged


def declaration_errors(machine_cls: type[TracedMachine]) -> list[str]:
    """What is wrong with a machine's declarations: a step with no class or an unknown one,
    a floor for a class none of its steps has, a floor outside (0, 1), floors summing past 1."""
    classes, floors = rule_classes(machine_cls), class_floors(machine_cls)
    errors = []
    for step in machine_cls.rule_names():
        kind = classes.get(step)
        if kind is None:
            errors.append(f"step {step!r} has no class (add it to rule_classes)")
        elif kind not in CLASSES:
            errors.append(f"step {step!r} has the unknown class {kind!r} (known: {', '.join(CLASSES)})")
    used = {classes.get(step) for step in machine_cls.rule_names()}
    for kind, floor in floors.items():
        if kind not in used or kind == "setup":
            errors.append(f"a floor for class {kind!r}, which none of its steps has")
        if not 0 < floor < 1:
            errors.append(f"the floor of class {kind!r} is {floor}, not a fraction between 0 and 1")
    if sum(floors.values()) > 1:
        errors.append(f"floors sum to {sum(floors.values()):.2f}, more than every step")
    return errors


@attrs.frozen
class Share:
    kind: str
    ran: int
    share: float
    floor: float | None

    @property
    def starved(self) -> bool:
        return self.floor is not None and self.share < self.floor


def shares(machine_cls: type, stats: RuleStats) -> list[Share]:
    """Each class's steps and share of the run's steps (``setup`` apart), in ``CLASSES`` order."""
    classes, floors = rule_classes(machine_cls), class_floors(machine_cls)
    ran: dict[str, int] = {}
    for step in stats.rules:
        kind = classes.get(step, UNCLASSIFIED)
        ran[kind] = ran.get(kind, 0) + stats.ran[step]
    total = sum(count for kind, count in ran.items() if kind != "setup")
    order = [*CLASSES, UNCLASSIFIED]
    return [Share(kind, ran[kind], ran[kind] / total if total and kind != "setup" else 0.0, floors.get(kind))
            for kind in sorted(ran, key=order.index)]


def floors_held(measured: list[Share]) -> bool:
    """Whether a run is long enough (``MIN_STEPS`` steps, ``setup`` apart) for its floors to be held."""
    return sum(s.ran for s in measured if s.kind != "setup") >= MIN_STEPS


def check_floors(machine_cls: type, stats: RuleStats) -> None:
    """Fail a run (of at least ``MIN_STEPS`` steps) whose share of some class is below its floor."""
    measured = shares(machine_cls, stats)
    if not floors_held(measured):
        return
    starved = [s for s in measured if s.starved]
    if starved:
        listing = ", ".join(f"{s.kind} {s.share:.1%} (floor {s.floor:.0%})" for s in starved)
        raise AssertionError(
            f"machine {stats.machine} against {stats.implementation}: classes of rules below their floor in "
            f"{stats.examples} examples: {listing}. A starved class checks little: loosen its preconditions, "
            "give it more rules or fold the rules that crowd it out into fewer.")


def _machine_of(stats: RuleStats) -> type:
    from harness.registry import machine_class

    try:
        return machine_class(stats.machine)
    except KeyError:
        return object  # a machine not registered (a test's own): its rules are unclassified


def table(runs: list[RuleStats]) -> tuple[list[list], list[str]]:
    """The coverage table's rows and headers: per run, each class with its share and floor,
    then the class's rules with how often each ran and how often its precondition refused it."""
    rows: list[list] = []
    for stats in runs:
        machine_cls = _machine_of(stats)
        classes = rule_classes(machine_cls)
        run = f"{stats.machine}/{stats.implementation}"
        measured = shares(machine_cls, stats)
        held = floors_held(measured)
        for share in measured:
            floor = "" if share.floor is None else f"{share.floor:.0%}"
            mark = ("BELOW FLOOR" if held else "below floor (not held: fewer steps than MIN_STEPS)") if share.starved else ""
            rows.append([run, share.kind, "" if share.kind == "setup" else f"{share.share:.1%}", floor, "", share.ran, "", mark])
            for step in stats.rules:
                if classes.get(step, UNCLASSIFIED) == share.kind:
                    rows.append(["", "", "", "", step, stats.ran[step], stats.refused[step],
                                 "NEVER RAN" if not stats.ran[step] else ""])
            run = ""
    return rows, ["machine/implementation", "class", "share", "floor", "rule", "ran", "refused by precondition", ""]
