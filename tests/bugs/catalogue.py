"""The bug catalogue: realistic bugs, each a small patch applied at run time.

A ``Bug`` names one defect that systems of this kind really shipped (a tie broken the wrong
way, a delta that resurrects, a clock read from the wrong place, a fee split in floats, a
replay cache keyed by what the sender controls...), the class it belongs to (``CLASSES``),
the machine that must catch it, and how it is planted: ``plant()`` is a context manager that
applies the patch (a subclass built as an implementation of its own, and sometimes a
module attribute patched for the length of the block) and yields the buggy
``harness.Implementation``. Nothing in ``implementations/`` changes.

Each bug has

* its **shortest known trace**, ``tests/bugs/traces/<name>.json``: it names the correct
  implementation, so ``python -m harness replay`` passes on a clean build; replayed with
  the bug planted it fails (``tests/test_bug_catalogue.py`` proves both);
* its **search budget** (``budgets.json``): the examples and steps with which a
  derandomized ``ci`` search finds it under every one of the seeds ``python -m
  tests.bugs.sweep`` tried. A bug test's budget is that measured fact, not a lucky seed:
  Hypothesis mixes the literal constants of every loaded project module into what it
  draws, so a new module anywhere reshuffles every derandomized search, and only a budget
  that is enough under many seeds survives that.

Why under ``tests/``: Hypothesis mines constants from every *local* module it sees loaded,
except test code, which it recognises by its path (a ``tests`` directory; Hypothesis 6.170
release notes). The catalogue is test code by that rule, so importing it (as the bug tests
do at collection) never changes the constants, hence the examples, of any other run.
"""

from __future__ import annotations

import contextlib
import importlib
import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any
from unittest import mock

import attrs

from harness import Implementation, TracedMachine, machine_class

HERE = Path(__file__).resolve().parent
TRACES = HERE / "traces"
BUDGETS = HERE / "budgets.json"
#: The modules holding the catalogue's bugs, one per area.
AREAS = ("orset", "lww", "rga", "tasklist", "policy", "pskt", "threshold", "mesh", "realnet", "handshake", "endpoint", "proxy",
         "driver", "node_host")

#: Every class of bug the catalogue draws from, with what it means.
CLASSES = {
    "tie-break": "concurrent updates ordered by the wrong key, or by a key that is not total",
    "resurrection": "a removed element or replaced value comes back through a re-delivered or stale message",
    "version-counter": "a counter or clock that skips, repeats or forgets updates it has seen",
    "wall-clock-tag": "a wall-clock time used where a unique or causal tag is needed",
    "timestamp-source": "a time taken from the wrong clock (the sender's, a per-field one, none)",
    "arithmetic": "integer or float arithmetic in fees, sums and limits",
    "unsorted-input": "inputs used in the order they arrived instead of a canonical one",
    "off-by-one": "a limit, window or index one too far or one too short",
    "day-window": "a daily limit counted over the wrong window or the wrong day",
    "persistence": "state that must survive a restart or a crash kept in memory or written late",
    "replay-cache": "a replay cache keyed, aged or consulted wrongly",
    "signature-coverage": "a signature or check that does not cover what it vouches for",
    "threshold-counting": "signers counted wrongly: twice, outsiders, or below the threshold",
    "expiry": "an expiry or time-to-live checked wrongly or not at all",
    "multi-input": "a transaction with several inputs or outputs handled as if it had one",
    "session-race": "two sessions or processes that interleave around a check and the write it guards",
    "causal-order": "causally dependent updates applied, dropped or reordered as if independent",
    "lost-update": "an update that never reaches the others (left out of a delta, a digest, a merge)",
    "amplification": "a message that makes its receiver send more than it brought (rounds that restart themselves)",
    "believes-a-lie": "a peer's message believed unchecked (a counter at its maximum, a claim about the receiver's own state)",
    "refusal-escapes": "the refusal of one message or request (a limit, a malformed value) escapes and stops the whole process",
}


@attrs.frozen
class Search:
    """A derandomized search: examples and steps per example."""

    examples: int
    steps: int


@attrs.frozen
class Bug:
    name: str
    machine: str
    description: str
    kind: str
    #: A context manager applying the patch and yielding the buggy implementation.
    plant: Callable[[], AbstractContextManager[Implementation]] = attrs.field(repr=False)
    #: The registered implementation the bug is planted into (its trace passes against it).
    correct: str = "exact"
    #: What a failing run may raise (some bugs make a correct peer refuse bytes).
    errors: tuple[type[BaseException], ...] = (AssertionError,)
    #: Rules a shrunk trace of this bug must contain (what the bug tests assert); "a|b": either.
    #: An operation a compound step ran counts (``tests.bugs.hunt.assert_caught``).
    involves: frozenset[str] = frozenset()

    def __attrs_post_init__(self) -> None:
        if self.kind not in CLASSES:
            raise ValueError(f"bug {self.name}: unknown class {self.kind!r} (known: {sorted(CLASSES)})")

    @property
    def trace_path(self) -> Path:
        return TRACES / f"{self.name}.json"

    def machine_class(self) -> type[TracedMachine]:
        return machine_class(self.machine)

    def correct_implementation(self) -> Implementation:
        from harness.registry import implementation

        return implementation(self.machine, self.correct)

    def search(self) -> Search | None:
        """The measured robust budget (``budgets.json``): None when no sweep found one."""
        entry = budgets().get(self.name)
        if entry is None or entry.get("examples") is None:
            return None
        return Search(entry["examples"], entry["steps"])


def variant(machine: str, name: str, make_replica: Callable[[int, Any], Any], level: str = "exact"):
    """A plant that needs no patch: the bug is an implementation of its own (a subclass)."""

    @contextlib.contextmanager
    def plant() -> Iterator[Implementation]:
        yield Implementation(machine, f"bug-{name}", make_replica, level=level)

    return plant


def patching(target: Any, attribute: str, value: Any, implementation: Implementation):
    """A plant that replaces ``target.attribute`` by ``value`` while the block runs, in which
    ``implementation`` (an adapter's own, under the bug's name) runs the machine."""

    @contextlib.contextmanager
    def plant() -> Iterator[Implementation]:
        with mock.patch.object(target, attribute, value):
            yield implementation

    return plant


def patched(target: Any, attribute: str, value: Any, machine: str, name: str, make_replica: Callable[[int, Any], Any]):
    """A plant that replaces ``target.attribute`` by ``value`` while the block runs."""
    return patching(target, attribute, value, Implementation(machine, f"bug-{name}", make_replica))


def budgets() -> dict[str, dict]:
    try:
        return json.loads(BUDGETS.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def write_budget(name: str, entry: dict) -> None:
    """Record a sweep's measured budget of ``name`` (``budgets.json`` stays sorted)."""
    known = budgets()
    known[name] = entry
    BUDGETS.write_text(json.dumps(dict(sorted(known.items())), indent=1) + "\n", encoding="utf-8")


_catalogue: dict[str, Bug] | None = None


def catalogue() -> dict[str, Bug]:
    """Every bug, by name (each area module's ``BUGS``)."""
    global _catalogue
    if _catalogue is None:
        found: dict[str, Bug] = {}
        for area in AREAS:
            for bug in importlib.import_module(f"tests.bugs.{area}").BUGS:
                if bug.name in found:
                    raise ValueError(f"two bugs are named {bug.name!r}")
                found[bug.name] = bug
        _catalogue = found
    return _catalogue


def bug(name: str) -> Bug:
    try:
        return catalogue()[name]
    except KeyError:
        raise KeyError(f"no bug named {name!r} in the catalogue (see python -m tests.bugs.sweep --list)") from None


def bugs_of(machine: str) -> list[Bug]:
    return [b for b in catalogue().values() if b.machine == machine]


_planted: list = []


def plant_for_session(name: str) -> Implementation:
    """Plant bug ``name`` for the rest of this process, under the name of the implementation
    it is planted into: every machine run, replay and trace of that implementation now sees
    the bug (``MBT_PLANT_BUG``, read by the root conftest and by ``python -m harness nightly``)."""
    from harness.registry import _implementations, load_adapters

    load_adapters()
    the_bug = bug(name)
    stack = contextlib.ExitStack()
    buggy = stack.enter_context(the_bug.plant())
    planted = attrs.evolve(buggy, name=the_bug.correct, description=f"with catalogued bug {name} planted")
    _implementations[the_bug.machine][the_bug.correct] = planted
    _planted.append(stack)  # never closed: the bug stays for the process
    return planted
