"""What failed, in words: the failing check, the exception and the first line of its message.

A ``Failure`` names the *check* that failed: the method of the machine in which the error
was raised or through which it passed last (``ReplicatedMachine.check`` for an invariant,
``ORSetMachine.step_sync_all`` for an assertion of a step, ``ReplicatedMachine.step_deliver``
when the implementation itself raised while a message was delivered). It is the trace's
``failure`` field, the last line of a report, and what the minimizer keeps fixed: two
failures are *the same check* when their exception types are equal and their first lines
are equal once numbers and hex ids are blotted out (``signature``). Two failures are
*distinct* (each gets its own trace) when they differ in exception type or in the line that
raised it, as Hypothesis tells failures apart (``origin``).
"""

from __future__ import annotations

import re
from typing import Any

import attrs

#: Hex runs (ids, digests) and then decimal numbers, blotted out by ``signature``.
_HEX = re.compile(r"\b[0-9a-f]{8,}\b")
_NUMBER = re.compile(r"\d+")
#: A trace's ``failure`` is at most this long (the first line of a message can be huge).
MAX_FAILURE_CHARS = 300


def first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else ""


@attrs.frozen
class Failure:
    check: str
    error: str
    line: str
    #: ``file:line`` where the error was raised (not part of the text: it moves with edits).
    site: str = attrs.field(default="", eq=False)

    def __str__(self) -> str:
        text = f"{self.check}: {self.error}: {self.line}" if self.check else f"{self.error}: {self.line}"
        return text[:MAX_FAILURE_CHARS]

    def signature(self) -> tuple[str, str]:
        """What "the same check" compares: the exception type and the first line modulo numbers."""
        return self.error, _NUMBER.sub("#", _HEX.sub("#", self.line))

    def origin(self) -> tuple[str, str]:
        """What tells distinct failures apart: the exception type and where it was raised."""
        return self.error, self.site


def failing_check(error: BaseException, machine: Any) -> str:
    """The qualified name of the innermost method of ``machine`` the error passed through."""
    check = ""
    traceback = error.__traceback__
    while traceback is not None:
        frame = traceback.tb_frame
        if frame.f_locals.get("self") is machine:
            check = frame.f_code.co_qualname
        traceback = traceback.tb_next
    return check


def raised_at(error: BaseException) -> str:
    traceback = error.__traceback__
    while traceback is not None and traceback.tb_next is not None:
        traceback = traceback.tb_next
    return f"{traceback.tb_frame.f_code.co_filename}:{traceback.tb_lineno}" if traceback is not None else ""


def failure_of(error: BaseException, machine: Any = None) -> Failure:
    check = failing_check(error, machine) if machine is not None else ""
    return Failure(check, type(error).__name__, first_line(error), raised_at(error))


def leaves(error: BaseException) -> list[BaseException]:
    """The distinct failures of a run: the leaves of an exception group, or the error itself."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in leaves(inner)]
    return [error]
