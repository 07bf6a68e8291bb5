"""``implementations.rga`` against a peer that lies well (issue 7, defects 7 and 8).

* The cost of integrating a message must be bounded by its size times a logarithm of the
  state. Counted in executed lines of ``implementations/rga.py`` (``sys.settrace``), not in
  seconds: four times the inserts cost under 5.5 times the lines (about 4.7: n log n). The
  same count flags a planted linear search, the fix reverted (about 9: n squared, diluted by
  the work every insert does anyway).
* Counters at the top of the 64-bit range never leave a replica unable to encode its state,
  delete or merge; an insert that would need a counter past it is refused, changing nothing.
* Deletes of ids nobody has, children of parents that never come, and redelivered halves of
  waiting chains cost memory in proportion to the message, not to the ids they name.
* The machine itself, adversary included, with runs, leaves, nodes and id pages so small
  that every document is a deep tree.
"""

from __future__ import annotations

import sys
import tracemalloc
from collections.abc import Callable

import pytest
from hypothesis import Phase, settings

import implementations.rga as rga_module
from harness import run_machine
from implementations.limits import U64_MAX
from implementations.rga import RGA, STATE_KIND, VERSION, CounterSpaceExhausted, decode_state, encode_delta
from implementations.wire import DecodeError, encode
from machines.adapters.rga_tree import RGA_TREE, TreeReplica, _base_state
from machines.rga import RGAMachine
from models import rga as model

RGA_FILE = rga_module.__file__


def lines_run(action: Callable[[], None]) -> int:
    """How many lines of ``implementations/rga.py`` ``action`` executes."""
    count = 0

    def local(frame, event, arg):
        nonlocal count
        if event == "line":
            count += 1
        return local

    def calls(frame, event, arg):
        return local if frame.f_code.co_filename == RGA_FILE else None

    previous = sys.gettrace()
    sys.settrace(calls)
    try:
        action()
    finally:
        sys.settrace(previous)
    return count


def head_inserts_decreasing(count: int, replica: int = 9) -> bytes:
    """One delta of ``count`` inserts at the head, each id smaller than the one before: each
    must pass every sibling already there."""
    return encode_delta([((count - k, replica), None, "x") for k in range(count)], [])


def sibling_flood(count: int, parent: tuple[int, int], replica: int = 9) -> bytes:
    """Children of ``parent`` with decreasing ids, one message each would be the same work."""
    base = parent[0] + 1
    return encode_delta([((base + count - k, replica), parent, "y") for k in range(count)], [])


def growth(replica_class: type[RGA], make: Callable[[int], bytes], small: int = 400) -> float:
    """Lines to integrate ``make(4 * small)`` over lines for ``make(small)``, into a replica
    that holds a typed document of 2,000 characters."""

    def integrate(count: int) -> int:
        replica = replica_class(1)
        for index in range(2000):
            replica.insert(index, "d")
        data = make(count)
        return lines_run(lambda: replica.apply_delta(data))

    return integrate(4 * small) / integrate(small)


class LinearSkip(RGA):
    """The fix reverted: a remote insert walks every run after its parent, one by one."""

    def _first_smaller(self, leaf, i, counter, replica):
        while True:
            runs = leaf.runs
            for j in range(i, len(runs)):
                run = runs[j]
                if (run.counter, run.replica) < (counter, replica):
                    return leaf, j
            following = self._following_run(leaf)
            if following is None:
                return leaf, len(runs)
            leaf, i = following.leaf, 0


@pytest.mark.parametrize("make", [head_inserts_decreasing, lambda count: sibling_flood(count, (1, 1))],
                         ids=["head inserts", "siblings of one element"])
def test_integrating_decreasing_ids_costs_n_log_n(make):
    assert growth(RGA, make) < 5.5  # about 4.7: four times the work, and a little for the deeper tree


def test_the_cost_count_catches_a_linear_search():
    assert growth(LinearSkip, head_inserts_decreasing) > 7  # about 9: quadratic


def test_forty_thousand_head_inserts_land_in_order():
    replica = RGA(1)
    replica.apply_delta(head_inserts_decreasing(40_000))
    assert replica.ids()[:3] == [(40_000, 9), (39_999, 9), (39_998, 9)] and len(replica) == 40_000


# ----- counters at the top of the range ------------------------------------------------------


def test_the_greatest_counter_leaves_the_replica_working_but_unable_to_insert():
    replica, peer = RGA(1), RGA(2)
    replica.insert(0, "a")
    replica.apply_delta(encode_delta([((U64_MAX, 7), replica.id_at(0), "z")], []))
    assert replica.value() == ["a", "z"]
    before = replica.state()
    with pytest.raises(CounterSpaceExhausted, match="cannot insert"):
        replica.insert(1, "b")
    with pytest.raises(CounterSpaceExhausted):
        replica.insert_after(None, "b")
    assert replica.state() == before
    replica.delete(0)  # deletes, deltas and merges still work
    peer.merge(replica.state())
    peer.apply_delta(replica.take_deltas()[0])
    assert peer.value() == replica.value() == ["z"]
    decode_state(peer.state())


def test_a_document_from_the_greatest_counter_back_to_small_ones_encodes():
    """Counter steps go back by almost 2**64 here: they travel modulo 2**64."""
    replica = RGA(1)
    replica.insert(0, "a")
    replica.insert(1, "b")
    replica.apply_delta(encode_delta([((U64_MAX, 7), (1, 1), "z"), ((U64_MAX - 1, 8), None, "y")], []))
    copy = RGA(2)
    copy.merge(replica.state())
    assert copy.value() == replica.value() == ["y", "a", "z", "b"]
    assert copy.state() == replica.state()


# ----- what a message costs in memory -------------------------------------------------------


def test_a_delete_of_every_id_of_a_replica_is_one_range():
    replica = RGA(1)
    replica.insert(0, "a")
    tracemalloc.start()
    try:
        replica.apply_delta(_range_delete(1, 7, U64_MAX))
        grown, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert grown < 10_000
    replica.apply_delta(encode_delta([((5, 7), None, "q"), ((6, 7), (5, 7), "r")], []))
    assert replica.value() == ["a"]  # born deleted
    copy = RGA(2)
    copy.merge(replica.state())
    copy.apply_delta(encode_delta([((9, 7), None, "s")], []))
    assert copy.value() == ["a"]


def _range_delete(counter: int, replica: int, length: int) -> bytes:
    return rga_module.encode(rga_module.DELTA_KIND, rga_module.VERSION,
                             [rga_module._run_columns([]), [[counter], [replica], [length]]])


def test_orphans_wait_once_whatever_way_they_come():
    """A chain waits for its parent; halves of it redelivered, or the whole of it in a state,
    add nothing; when the parent comes, the chain follows it."""
    chain = [((10 + k, 7), (9 + k, 7) if k else (3, 7), "c") for k in range(6)]
    whole, first, second = encode_delta(chain, []), encode_delta(chain[:3], []), encode_delta(chain[2:], [])
    replica = RGA(1)
    for data in (second, whole, first, second):
        replica.apply_delta(data)
    alone = RGA(2)
    alone.apply_delta(whole)
    assert replica.state() == alone.state() and replica.value() == []
    holder = RGA(3)
    holder.merge(alone.state())
    holder.apply_delta(encode_delta([((3, 7), None, "p")], []))
    assert holder.value() == ["p"] + ["c"] * 6
    assert holder.ids() == [(3, 7)] + [(10 + k, 7) for k in range(6)]


def test_a_hostile_message_matches_the_model(monkeypatch):
    """Out-of-order chains, floods and deletes of unknown ids in one message, then their
    parents: the replica and the model agree at every stage, in a deep tree."""
    for name, size in (("RUN_MAX", 3), ("LEAF_MAX", 3), ("NODE_MAX", 3), ("PAGE_MAX", 3)):
        monkeypatch.setattr(rga_module, name, size)
    history: set = set()
    replica = RGA(1)
    for index in range(60):
        op = model.insert_at(history, 1, index // 2, "d")
        history.add(op)
        assert replica.insert(index // 2, "d") == op.id
    ops = [model.Insert((500 - k, 9), (7, 1), "f") for k in range(50)]
    ops += [model.Insert((2100 + k, 9), (2099 + k, 9) if k else (2000, 8), "o") for k in range(20)][::-1]
    ops += [model.Delete((2050 + k, 9)) for k in range(5)] + [model.Delete((3, 1))]
    later = [model.Insert((2000, 8), (12, 1), "p"), model.Insert((2050, 9), (2000, 8), "q")]
    for batch in (ops, later):
        replica.apply_delta(encode_delta([(op.id, op.parent, op.item) for op in batch if isinstance(op, model.Insert)],
                                         [op.target for op in batch if isinstance(op, model.Delete)]))
        history |= set(batch)
        assert replica.ids() == model.visible_ids(history)


# ----- the machine, adversary included, in deep trees ----------------------------------------


def test_the_machine_with_tiny_runs_leaves_nodes_and_pages(monkeypatch, tmp_path):
    for name, size in (("RUN_MAX", 2), ("LEAF_MAX", 2), ("NODE_MAX", 3), ("PAGE_MAX", 2)):
        monkeypatch.setattr(rga_module, name, size)
    tiny = settings(settings.get_profile("ci"), max_examples=80, stateful_step_count=40, phases=[Phase.generate])
    run_machine(RGAMachine, RGA_TREE, hypothesis_settings=tiny, trace_dir=tmp_path)


def test_the_stranger_state_is_a_good_one_and_each_spoiling_is_refused_naming_what_is_wrong():
    """The spoilings of ``machines.rga``'s ``spoil`` are each one lie: the full state they start
    from merges (``a b x y``, c deleted, one insert waiting, two ids deleted early), and each
    spoiled message is refused by the implementation with every word the machine asks for."""
    replica = TreeReplica(1)
    replica.merge(encode(STATE_KIND, VERSION, _base_state()))
    assert list(replica.value()) == ["a", "b", "x", "y"]
    assert len(decode_state(replica.state()).waiting) == 1
    for how in TreeReplica(1).spoilings:
        kind, data, named = TreeReplica(1).spoil(how)
        fresh = TreeReplica(1)
        with pytest.raises(DecodeError) as refused:
            fresh.apply_delta(data) if kind == "delta" else fresh.merge(data)
        assert [word for word in named if word not in str(refused.value)] == [], (how, str(refused.value))
        assert (kind == "state") == how.startswith("state-")
