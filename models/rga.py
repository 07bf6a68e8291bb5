"""RGA, the replicated growable array: a sequence that replicas edit concurrently.

A replica's knowledge is the set of operations it has seen (its history); merging two
replicas is the union of their histories, and the sequence is a function of the history
alone. There are two kinds of operation:

* ``Insert(id, parent, item)`` creates an element holding ``item``. Its ``id`` is a pair
  ``(counter, replica)``: the replica that made it, and a counter one greater than the
  greatest counter of any id that replica had seen (``next_id``). So the id is unique, and
  it is greater than the id of every element the replica knew, its parent's included.
  ``parent`` is the id of the element the new one was inserted after, or ``None`` for the
  head of the sequence.
* ``Delete(target)`` deletes the element whose id is ``target``. A deleted element stays
  in the tree as a parent (a tombstone); it is only no longer visible. A delete may be
  seen before the insert it deletes: it takes effect as soon as the insert is seen.

The elements form a tree: each element hangs under its parent, the head is the root.
Children of one parent are ordered by id, greatest first, so a concurrent insert after the
same element by a replica that had seen more comes first, and ties between equal counters
go to the greater replica. The sequence is the depth-first walk of that tree (an element,
then its children's subtrees in order), without the deleted elements. An insert whose
parent the replica has not seen (yet) hangs nowhere: it is neither visible nor a parent
until its parent arrives.

Editing by position, as a user does: inserting ``item`` at visible index ``i`` makes an
insert whose parent is the visible element at ``i - 1`` (the head when ``i == 0``); its
fresh id is greater than every sibling's, so it lands right after its parent, at ``i``.
Deleting at visible index ``i`` deletes the visible element there.

Items may be any hashable value (one-character strings for text, task ids for a task
list's order).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator

import attrs

#: An element's id: ``(counter, replica)``. Ids compare as tuples: counter first.
Id = tuple[int, int]


@attrs.frozen
class Insert:
    """Element ``id`` holding ``item``, inserted right after element ``parent`` (None: the head)."""

    id: Id
    parent: Id | None
    item: Hashable


@attrs.frozen
class Delete:
    """Element ``target`` is deleted (it stays as a parent)."""

    target: Id


Op = Insert | Delete


def ids_seen(history: Iterable[Op]) -> Iterator[Id]:
    """Every id the history mentions: the inserts' ids and parents, the deletes' targets."""
    for op in history:
        if isinstance(op, Insert):
            yield op.id
            if op.parent is not None:
                yield op.parent
        else:
            yield op.target


def next_id(history: Iterable[Op], replica: int) -> Id:
    """The id of the next insert made at ``replica``: its counter is one more than any seen."""
    return (1 + max((counter for counter, _ in ids_seen(history)), default=0), replica)


def children(history: Iterable[Op]) -> dict[Id | None, list[Insert]]:
    """The inserts hanging under each parent, greatest id first."""
    tree: dict[Id | None, list[Insert]] = {}
    for op in history:
        if isinstance(op, Insert):
            tree.setdefault(op.parent, []).append(op)
    for siblings in tree.values():
        siblings.sort(key=lambda insert: insert.id, reverse=True)
    return tree


def deleted(history: Iterable[Op]) -> set[Id]:
    """The ids of the deleted elements (whether or not their inserts were seen)."""
    return {op.target for op in history if isinstance(op, Delete)}


def walk(history: Iterable[Op]) -> list[Insert]:
    """The depth-first walk of the tree from the head: every reachable element, deleted ones too.

    Inserts whose parent is not reachable never appear: nothing leads to them.
    """
    tree = children(history)
    order: list[Insert] = []
    pending = list(reversed(tree.get(None, [])))  # a stack: the next element is on top
    while pending:
        element = pending.pop()
        order.append(element)
        pending.extend(reversed(tree.get(element.id, [])))
    return order


def visible_ids(history: Iterable[Op]) -> list[Id]:
    """The ids of the visible elements, in sequence order."""
    history = list(history)
    gone = deleted(history)
    return [element.id for element in walk(history) if element.id not in gone]


def value(history: Iterable[Op]) -> list[Hashable]:
    """The sequence: the items of the visible elements, in order."""
    history = list(history)
    gone = deleted(history)
    return [element.item for element in walk(history) if element.id not in gone]


def insert_at(history: Iterable[Op], replica: int, index: int, item: Hashable) -> Insert:
    """The insert ``replica`` makes to put ``item`` at visible position ``index``."""
    history = list(history)
    visible = visible_ids(history)
    if not 0 <= index <= len(visible):
        raise IndexError(f"insert at {index} in a sequence of {len(visible)} items")
    parent = visible[index - 1] if index > 0 else None
    return Insert(next_id(history, replica), parent, item)


def delete_at(history: Iterable[Op], index: int) -> Delete:
    """The delete of the element at visible position ``index``."""
    visible = visible_ids(history)
    if not 0 <= index < len(visible):
        raise IndexError(f"delete at {index} in a sequence of {len(visible)} items")
    return Delete(visible[index])
