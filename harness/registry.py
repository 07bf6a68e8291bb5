"""Which implementations each machine checks.

An adapter module in ``machines/adapters/`` wraps an implementation in the small protocol
of its type (``machines/contracts.py``) and calls ``register``. Every machine then runs
against every implementation registered under its name: adding an implementation is
adding one adapter file, never editing a machine.

Each implementation declares a *level*, what the machine may demand of it:

* ``exact``: every replica's value equals the reference model's value for the history
  that replica has seen;
* ``convergent``: replicas agree after a full sync, hold exactly the elements the history
  says, and keep every local edit where it was made, but may order or arbitrate
  concurrent edits their own way (e.g. YATA instead of RGA);
* a type may add its own semantic levels (``add-wins`` for sets).

A registration that cannot be checked is an error naming it, never silently skipped: an
implementation under a machine name that does not exist, or with a level its machine does
not check (``RegistrationError``, raised when the adapters are loaded, when a machine class
is registered after its implementations, and when a test is made from a machine).

Each implementation remembers the module that registered it (``adapter``); traces record
it, and replaying a trace imports that module when its implementation is not registered,
so replay never depends on ``MBT_ADAPTERS``.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pkgutil
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from models.clock import Clock

if TYPE_CHECKING:
    from harness.machine import TracedMachine

LEVELS = ("exact", "convergent", "add-wins")


@attrs.frozen
class Implementation:
    """An implementation as a machine sees it: a way to make replicas, and a level."""

    machine: str
    name: str
    #: ``make_replica(replica_id, clock)``: a fresh replica of this implementation.
    make_replica: Callable[[int, Clock], Any]
    level: str = "exact"
    description: str = ""
    #: The operations of its machine it supports (``machines.contracts.OPERATIONS``), or
    #: None for all: the machine draws only these, and does not ask for the others' methods.
    operations: frozenset[str] | None = attrs.field(default=None, converter=attrs.converters.optional(frozenset))
    #: Why it cannot run here (its program or packages are missing), or "": its tests are
    #: then skipped with this reason (``harness.process.Unavailable``), never silently absent.
    unavailable: str = ""
    #: At most this many examples per machine run, for implementations whose steps are slow
    #: (a child process per replica request): the profile's own number when smaller.
    max_examples: int | None = None
    #: The module that registered it (filled in by ``register``).
    adapter: str = ""

    def __attrs_post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"implementation {self.name!r}: unknown level {self.level!r}, expected one of {LEVELS}")
        if self.operations is not None and not self.operations:
            raise ValueError(f"implementation {self.name!r}: operations is empty; leave it None for all of them")
        if self.max_examples is not None and self.max_examples < 1:
            raise ValueError(f"implementation {self.name!r}: max_examples must be at least 1, got {self.max_examples}")

    def origin(self) -> str:
        return f"implementation {self.name!r} of machine {self.machine!r}" + (
            f" (registered by {self.adapter})" if self.adapter else ""
        )


class RegistrationError(LookupError):
    """An implementation no machine can check: unknown machine, or a level it does not check."""


_implementations: dict[str, dict[str, Implementation]] = {}
_machines: dict[str, type[TracedMachine]] = {}
_adapters_loaded = False


def register(implementation: Implementation) -> Implementation:
    """Add ``implementation`` to the ones its machine checks (names are unique per machine).

    Returns it with ``adapter`` set to the calling module. If its machine class is already
    registered, a level that machine does not check is refused here.
    """
    if not implementation.adapter:
        caller = sys._getframe(1).f_globals.get("__name__", "")
        implementation = attrs.evolve(implementation, adapter=caller)
    machine = _machines.get(implementation.machine)
    if machine is not None:
        check_level(machine, implementation)
    known = _implementations.setdefault(implementation.machine, {})
    existing = known.get(implementation.name)
    if existing is not None and existing != implementation:
        raise ValueError(f"machine {implementation.machine!r} already has an implementation named {implementation.name!r}")
    known[implementation.name] = implementation
    return implementation


def load_adapters(package: str = "machines.adapters") -> None:
    """Import every adapter module once, so each registers itself.

    That is every module of ``machines/adapters/``, and every module named in the
    environment variable ``MBT_ADAPTERS`` (comma-separated dotted names): a user checks their
    own implementation by writing one adapter module, in this tree or in their own package.
    """
    global _adapters_loaded
    if _adapters_loaded:
        return
    _adapters_loaded = True
    root = importlib.import_module(package)
    for info in pkgutil.iter_modules(root.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")
    for name in filter(None, (part.strip() for part in os.environ.get("MBT_ADAPTERS", "").split(","))):
        try:
            importlib.import_module(name)
        except ImportError as error:
            raise ImportError(f"MBT_ADAPTERS names {name!r}, which cannot be imported: {error}") from error
    check_registrations()


def check_level(machine: type[TracedMachine], implementation: Implementation) -> None:
    if implementation.level not in machine.levels:
        raise RegistrationError(
            f"{implementation.origin()} declares level {implementation.level!r}, which machine "
            f"{machine.name!r} does not check (it checks {', '.join(machine.levels)})"
        )


def check_registrations() -> None:
    """Every registered implementation has a machine that checks its level, or an error says which."""
    for machine_name, known in list(_implementations.items()):
        try:
            machine = machine_class(machine_name)
        except KeyError:
            module = sys.modules.get(f"machines.{machine_name}")
            if module is not None and getattr(module.__spec__, "_initializing", True):
                # Its module is being imported further up the stack (it imports another machine
                # module first): ``register_machine`` checks the levels once the class exists.
                # (importlib marks a module's spec ``_initializing`` while it runs; a module that
                # finished without registering that machine falls through to the error.)
                continue
            first = next(iter(known.values()))
            raise RegistrationError(
                f"{first.origin()}: there is no machine {machine_name!r} (machines: {', '.join(sorted(_machines))})"
            ) from None
        for implementation in known.values():
            check_level(machine, implementation)


def implementations(machine: str) -> list[Implementation]:
    """Every implementation registered for ``machine``, in registration order."""
    load_adapters()
    return list(_implementations.get(machine, {}).values())


def implementation(machine: str, name: str, adapter: str = "") -> Implementation:
    """The implementation ``name`` of ``machine``; if it is not registered and ``adapter``
    names the module that registers it (as a trace does), that module is imported first."""
    load_adapters()
    if name not in _implementations.get(machine, {}) and adapter:
        try:
            importlib.import_module(adapter)
        except ImportError as error:
            raise KeyError(f"implementation {name!r} of machine {machine!r}: its adapter module {adapter!r} "
                           f"cannot be imported: {error}") from None
    try:
        return _implementations[machine][name]
    except KeyError:
        known = sorted(_implementations.get(machine, {}))
        raise KeyError(f"no implementation {name!r} registered for machine {machine!r} (known: {known})") from None


def register_machine(cls: type[TracedMachine]) -> type[TracedMachine]:
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    _machines[cls.name] = cls
    for implementation in _implementations.get(cls.name, {}).values():
        check_level(cls, implementation)
    return cls


def machine_class(name: str) -> type[TracedMachine]:
    """The machine class registered as ``name``; imports ``machines.<name>`` if needed."""
    if name not in _machines:
        with contextlib.suppress(ModuleNotFoundError):
            importlib.import_module(f"machines.{name}")
    try:
        return _machines[name]
    except KeyError:
        raise KeyError(f"no machine named {name!r} (known: {sorted(_machines)})") from None
