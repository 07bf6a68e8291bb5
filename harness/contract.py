"""Checking that an adapter keeps its contract, before and while a machine uses it.

``check_methods`` runs once, before a machine starts: a replica that lacks a method of its
protocol is refused with the list of what is missing. ``Checked`` wraps every replica while
the machine runs and refuses a wrong return type where it happens (``state()`` must return
bytes, ``take_deltas()`` a list of bytes, ``value()`` the type the protocol documents), so a
wrong adapter reads as a wrong adapter, not as a mysterious disagreement with the model.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


class ContractError(TypeError):
    """An adapter that does not keep the protocol of its machine."""


@functools.cache
def protocol_methods(protocol: type) -> tuple[str, ...]:
    """The public methods a protocol requires, inherited ones included, in a stable order.

    Remembered: every replica a machine makes is checked against its protocol.
    """
    names: list[str] = []
    for klass in reversed(protocol.__mro__):
        if klass is object or not getattr(klass, "_is_protocol", False):
            continue
        for name, member in vars(klass).items():
            if not name.startswith("_") and callable(member) and name not in names:
                names.append(name)
    return tuple(names)


def check_methods(replica: Any, protocol: type, who: str, exempt: frozenset[str] = frozenset()) -> None:
    """Refuse ``replica`` if it lacks a method of ``protocol`` (other than ``exempt`` ones:
    those of operations its implementation does not support)."""
    missing = [name for name in protocol_methods(protocol)
               if name not in exempt and not callable(getattr(replica, name, None))]
    if missing:
        raise ContractError(
            f"{who}: the replica ({type(replica).__name__}) lacks {', '.join(missing)} of {protocol.__name__} "
            f"(machines/contracts.py); it must offer {', '.join(protocol_methods(protocol))}."
        )


def _is_bytes(value: Any) -> bool:
    return isinstance(value, bytes)


def _is_delta_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(d, bytes) for d in value)


#: Return-type checks every protocol shares, by method name: (check, what is expected).
COMMON_RESULTS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "state": (_is_bytes, "bytes"),
    "take_deltas": (_is_delta_list, "a list of bytes"),
}


class Checked:
    """A replica seen through its contract: calls pass through, results are checked."""

    def __init__(self, replica: Any, protocol: type, who: str, results: dict[str, tuple[Callable[[Any], bool], str]],
                 exempt: frozenset[str] = frozenset()):
        check_methods(replica, protocol, who, exempt)
        self._replica, self._protocol, self._who = replica, protocol, who
        self._results = {**COMMON_RESULTS, **results}

    @property
    def unwrapped(self) -> Any:
        return self._replica

    def __getattr__(self, name: str) -> Any:
        # Called only for names not yet in this object's __dict__: a method, once looked up
        # (checked or not), is kept there, so later calls cost no more than on the replica.
        attribute = getattr(self._replica, name)
        if not callable(attribute):
            return attribute
        expectation = self._results.get(name)
        if expectation is None:
            self.__dict__[name] = attribute
            return attribute
        is_right, expected = expectation

        def checked_call(*args: Any, **kwargs: Any) -> Any:
            result = attribute(*args, **kwargs)
            if not is_right(result):
                raise ContractError(
                    f"{self._who}: {name}() returned {type(result).__name__} {result!r:.80}, "
                    f"but {self._protocol.__name__}.{name} must return {expected}"
                )
            return result

        self.__dict__[name] = checked_call
        return checked_call

    def __repr__(self) -> str:
        return f"Checked({self._replica!r})"
