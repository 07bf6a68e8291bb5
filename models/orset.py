"""The OR-Set (observed-remove set, add-wins), as a history of operations.

Why a history. A replica's knowledge is the set of operations it has seen; merging two
replicas is the union of their sets, and the value is a pure function of the set. Union is
commutative, associative and idempotent, so this model cannot get merging wrong, however
late, twice or out of order an operation arrives. An implementation that disagrees with it
after the same operations is the one that is wrong.

Operations.

* ``Add(element, tag)``: the replica adds ``element`` under a fresh tag. A tag is
  ``(replica, seq)``: the replica that made the add and a per-replica counter that starts
  at 1 and goes up by one with every add of that replica. Tags are therefore unique, and two
  adds of the same element, even in the same millisecond on two replicas, stay two adds.
* ``Remove(element, observed)``: the replica removes ``element`` by naming the tags of it
  that it observes: the tags of the adds of ``element`` it has seen that no remove it has
  seen already covers (what it sees in the set). A remove never affects an add it has not
  observed.

Value. ``element`` is present iff some ``Add`` of ``element`` is observed by no ``Remove`` of
``element``. Hence a remove concurrent with an add (one that did not observe its tag) loses:
the add wins.

Why ``observed`` leaves out the tags the replica has already seen removed: naming them
again matters only when operations arrive out of causal order, which the machines make
happen on purpose (a replica may get a second remove of an element without the first, and
an add the first removed from a third replica). An OR-Set without
per-element tombstones (the delta-state OR-Set of Almeida et al.) remembers that it has seen
a removed tag but not which element it was, so it can only name the tags it still sees; that
is also the remove of the original OR-Set of Shapiro et al. (it removes the pairs in its
payload). Either way, once replicas have seen the same operations they agree.

Two upstream bugs (x0x) this model rules out, as classes worth testing for:

* a re-delivered old delta resurrected tags that had been removed since: here a history
  that already holds an ``Add`` and the ``Remove`` that observed it does not change when the
  ``Add`` arrives again (set union);
* timestamps used as tags made two adds in the same millisecond share a tag, so a remove of
  one removed both, or a later add was taken for an old one and lost: here tags carry the
  replica and its own counter, never the time.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

import attrs

#: ``(replica, seq)``: who made an add, and how many adds that replica had made including it.
Tag = tuple[int, int]


@attrs.frozen
class Add:
    """``element`` was added under ``tag``."""

    element: Hashable
    tag: Tag


@attrs.frozen
class Remove:
    """``element`` was removed by a replica that observed exactly the adds tagged ``observed``."""

    element: Hashable
    observed: frozenset[Tag]


def adds_of(history: Iterable[object], element: Hashable) -> list[Add]:
    """Every ``Add`` of ``element`` in ``history``."""
    return [op for op in history if isinstance(op, Add) and op.element == element]


def removed_tags(history: Iterable[object], element: Hashable) -> frozenset[Tag]:
    """Every tag of ``element`` that some ``Remove`` of ``element`` in ``history`` observed."""
    tags: set[Tag] = set()
    for op in history:
        if isinstance(op, Remove) and op.element == element:
            tags |= op.observed
    return frozenset(tags)


def observed_tags(history: Iterable[object], element: Hashable) -> frozenset[Tag]:
    """The tags a remove of ``element`` at a replica that has seen ``history`` observes:
    those of the adds of ``element`` it has seen that no remove it has seen covers."""
    history = list(history)
    removed = removed_tags(history, element)
    return frozenset(add.tag for add in adds_of(history, element) if add.tag not in removed)


def next_tag(history: Iterable[object], replica: int) -> Tag:
    """The tag of the next add at ``replica``: one more than the adds it has made so far.

    ``history`` must be the replica's own history (it has seen every add it made)."""
    made = [op.tag[1] for op in history if isinstance(op, Add) and op.tag[0] == replica]
    return (replica, max(made, default=0) + 1)


def value(history: Iterable[object]) -> frozenset:
    """The elements with an ``Add`` that no ``Remove`` of the same element observed.

    (One pass over the history for all elements, not one per element: the machines ask this
    after every step, of histories of thousands of operations.)"""
    history = list(history)
    removed: dict[Hashable, set[Tag]] = {}
    for op in history:
        if isinstance(op, Remove):
            removed.setdefault(op.element, set()).update(op.observed)
    return frozenset(op.element for op in history if isinstance(op, Add) and op.tag not in removed.get(op.element, ()))
