"""``implementations.pskt`` and ``implementations.ledger`` as the pskt machine sees them.

``make_replica(replica_id, clock)`` returns a stack: ``stack.ledger(min_fee)`` is a fresh
node (``implementations.ledger.Ledger``) and ``stack.build_template`` is the template
builder (``implementations.pskt.build_template``). Tests of buggy variants build their own
stack (a ledger subclass, a patched builder) with ``implementation_with``.
"""

from __future__ import annotations

from collections.abc import Callable

from harness import Implementation, register
from implementations import pskt
from implementations.ledger import Ledger


class PsktStack:
    def __init__(self, ledger_class: type[Ledger] = Ledger, build_template: Callable = pskt.build_template) -> None:
        self.ledger_class = ledger_class
        self.build_template = build_template

    def ledger(self, min_fee: int) -> Ledger:
        return self.ledger_class(min_fee=min_fee)


def implementation_with(
    name: str, ledger_class: type[Ledger] = Ledger, build_template: Callable = pskt.build_template
) -> Implementation:
    """A pskt-machine implementation around ``ledger_class`` and ``build_template`` (for tests of buggy variants)."""
    return Implementation(
        machine="pskt",
        name=name,
        make_replica=lambda replica_id, clock: PsktStack(ledger_class, build_template),
        level="exact",
        description=f"{ledger_class.__name__} with {getattr(build_template, '__name__', build_template)!s}",
    )


LEDGER = register(
    Implementation(
        machine="pskt",
        name="ledger",
        make_replica=lambda replica_id, clock: PsktStack(),
        level="exact",
        description="implementations.pskt.build_template and implementations.ledger.Ledger",
    )
)
