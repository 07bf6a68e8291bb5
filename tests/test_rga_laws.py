"""``implementations.rga``: merge laws, the wire under bad bytes, out-of-order delivery, and the
tree of runs against a plain list and the model at sizes the machine never reaches."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import implementations.rga as rga_module
from harness.laws import check_delta_idempotence, check_merge_laws
from implementations.rga import RGA, decode_delta, decode_state
from implementations.wire import DecodeError, encode
from models import rga as model

# An edit: ("insert", raw index, character) or ("delete", raw index, None); raw indices are
# reduced modulo the replica's length when the edit runs.
EDITS = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), st.integers(0, 1000), st.sampled_from("abcdefxyz")),
        st.tuples(st.just("delete"), st.integers(0, 1000), st.none()),
    ),
    max_size=25,
)


def run(replica: RGA, edits: list) -> None:
    for kind, raw, item in edits:
        if kind == "insert":
            replica.insert(raw % (len(replica) + 1), item)
        elif len(replica):
            replica.delete(raw % len(replica))


@pytest.fixture
def small_nodes(monkeypatch):
    """Runs of at most 3 elements, leaves and nodes of at most 4, id pages of at most 4: every
    test splits runs, leaves, inner nodes and id pages, and crosses their boundaries."""
    for name, size in (("RUN_MAX", 3), ("LEAF_MAX", 4), ("NODE_MAX", 4), ("PAGE_MAX", 4)):
        monkeypatch.setattr(rga_module, name, size)


# ----- merge laws -----------------------------------------------------------------------------


@settings(max_examples=60)
@given(base=EDITS, programs=st.lists(EDITS, min_size=3, max_size=3))
def test_merge_is_commutative_associative_idempotent(base, programs):
    shared = RGA(50)
    run(shared, base)
    start = shared.state()

    def program(edits):
        def apply(replica: RGA) -> None:
            replica.merge(start)
            run(replica, edits)

        return apply

    check_merge_laws(RGA, [program(edits) for edits in programs])


@settings(max_examples=40)
@given(edits=EDITS)
def test_applying_a_delta_twice_changes_nothing(edits):
    check_delta_idempotence(RGA, lambda replica: run(replica, edits))


@settings(max_examples=40)
@given(programs=st.lists(EDITS, min_size=2, max_size=4), order=st.randoms(use_true_random=False))
def test_deltas_in_any_order_give_the_full_state_value(programs, order):
    """Every replica's deltas, delivered to a fresh replica in a shuffled order (children
    before parents, deletes before inserts), give what merging the full states gives."""
    replicas = [RGA(i) for i in range(len(programs))]
    deltas = []
    for i, edits in enumerate(programs):
        for j in range(len(programs)):
            if j < i:  # later replicas build on what earlier ones did
                replicas[i].merge(replicas[j].state())
        for edit in edits:
            run(replicas[i], [edit])
            deltas.extend(replicas[i].take_deltas())
    by_state, by_delta = RGA(90), RGA(91)
    for replica in replicas:
        by_state.merge(replica.state())
    order.shuffle(deltas)
    for delta in deltas:
        by_delta.apply_delta(delta)
    assert by_delta.value() == by_state.value()
    assert by_delta.state() == by_state.state()


# ----- out-of-order delivery ------------------------------------------------------------------


def test_a_child_before_its_parent_waits_for_it():
    source = RGA(0)
    source.insert(0, "a")
    (parent,) = source.take_deltas()
    source.insert(1, "b")
    (child,) = source.take_deltas()
    source.insert(2, "c")
    (grandchild,) = source.take_deltas()
    target = RGA(1)
    target.apply_delta(grandchild)
    target.apply_delta(child)
    assert target.value() == []
    target.apply_delta(parent)
    assert target.value() == ["a", "b", "c"] == source.value()


def test_a_delete_before_its_insert_is_remembered():
    source = RGA(0)
    source.insert(0, "a")
    source.insert(1, "b")
    (inserts,) = source.take_deltas()
    source.delete(0)
    (delete,) = source.take_deltas()
    target = RGA(1)
    target.apply_delta(delete)
    target.apply_delta(inserts)
    assert target.value() == ["b"] == source.value()


def test_waiting_inserts_and_early_deletes_travel_in_the_full_state():
    source = RGA(0)
    source.insert(0, "a")
    (parent,) = source.take_deltas()
    source.insert(1, "b")
    source.delete(0)
    (later,) = source.take_deltas()
    holder = RGA(1)
    holder.apply_delta(later)  # a child without its parent, a delete without its insert
    assert holder.value() == []
    carried = RGA(2)
    carried.merge(holder.state())
    carried.apply_delta(parent)
    assert carried.value() == ["b"] == source.value()


def test_next_ids_count_past_waiting_and_deleted_ids():
    source = RGA(0)
    for i in range(5):
        source.insert(i, "x")
    source.take_deltas()
    source.insert(5, "y")
    source.delete(5)
    (late,) = source.take_deltas()
    target = RGA(1)
    target.apply_delta(late)  # counters up to 6 seen, none of them integrated
    assert target.insert(0, "z") == (7, 1)


# ----- the wire ---------------------------------------------------------------------------------


def sample_replica() -> RGA:
    replica = RGA(3)
    run(replica, [("insert", i * 7, c) for i, c in enumerate("hello world")] + [("delete", 4, None), ("delete", 1, None)])
    other = RGA(4)
    other.merge(replica.state())
    other.insert(2, "Z")
    other.delete(0)
    replica.apply_delta(other.take_deltas()[0])
    early = RGA(5)
    early.merge(replica.state())
    early.insert(1, "q")
    early.take_deltas()
    early.insert(2, "r")
    replica.apply_delta(early.take_deltas()[0])  # waits for "q"
    return replica


def messages() -> list[bytes]:
    replica = sample_replica()
    fresh = RGA(6)
    fresh.insert(0, "k")
    fresh.insert(1, b"\x00" * 32)
    fresh.insert(0, 7)
    fresh.delete(1)
    return [replica.state(), fresh.take_deltas()[0], fresh.state()]


def assert_refused_whole(data: bytes) -> None:
    """``data`` raises only DecodeError in every decoder, and changes no replica."""
    for decoder in (decode_state, decode_delta):
        with pytest.raises(DecodeError):
            decoder(data)
    replica = sample_replica()
    before = replica.state()
    for apply in (replica.merge, replica.apply_delta):
        with pytest.raises(DecodeError):
            apply(data)
    assert replica.state() == before


@settings(max_examples=200)
@given(data=st.binary(max_size=200))
def test_random_bytes_are_refused_whole(data):
    replica = RGA(7)
    replica.insert(0, "a")
    before = replica.state()
    for apply in (replica.merge, replica.apply_delta):
        with pytest.raises(DecodeError):
            apply(data)
    assert replica.state() == before


def test_every_truncation_is_refused_whole():
    for message in messages():
        for length in range(0, len(message), max(1, len(message) // 60)):
            assert_refused_whole(message[:length])


@settings(max_examples=300)
@given(which=st.integers(0, 2), bit=st.integers(0, 10**6))
def test_bit_flips_raise_only_decode_errors(which, bit):
    message = bytearray(messages()[which])
    bit %= len(message) * 8
    message[bit // 8] ^= 1 << (bit % 8)
    replica = sample_replica()
    before = replica.state()
    for apply in (replica.merge, replica.apply_delta):
        try:
            apply(bytes(message))
        except DecodeError:
            assert replica.state() == before
        else:  # a flip that still makes a well-formed message: the replica still works
            decode_state(replica.state())
            assert len(replica.value()) == len(replica)
            before = replica.state()


def state_bytes(runs: list, alive: list[int], waiting: list = (), early: list = ()) -> bytes:
    """An ``rga.state`` of runs ``(counter, replica, parent counter (0: head), parent replica, content)``."""
    return encode("rga.state", 2, [rga_module._run_columns(runs), alive, rga_module._run_columns(waiting),
                                   rga_module._range_columns(early)])


def test_a_state_out_of_document_order_is_refused():
    """b (2, 1) and a (1, 1) both hang under the head: b must come first."""
    with pytest.raises(DecodeError, match="smaller sibling"):
        decode_state(state_bytes([(1, 1, 0, 0, "a"), (2, 1, 0, 0, "b")], [2]))
    state = decode_state(state_bytes([(2, 1, 0, 0, "b"), (1, 1, 0, 0, "a")], [2]))
    assert [element for element, _, _ in state.elements] == [(2, 1), (1, 1)]


def test_a_sibling_after_the_next_element_of_its_parents_run_must_be_smaller():
    """In the run "ab", b (2, 1) is a's first child. x (3, 2), also a child of a, is greater,
    so it comes right after a and splits the run; after b it is out of order."""
    with pytest.raises(DecodeError, match=r"smaller sibling \(2, 1\)"):
        decode_state(state_bytes([(1, 1, 0, 0, "ab"), (3, 2, 1, 1, "x")], [3]))
    decode_state(state_bytes([(1, 1, 0, 0, "a"), (3, 2, 1, 1, "x"), (2, 1, 1, 1, "b")], [3]))


def test_a_child_outside_its_parents_subtree_is_refused():
    """c's parent a is not an enclosing element of b, the element before c."""
    runs = [(2, 1, 0, 0, "a"), (3, 1, 2, 1, "x"), (1, 1, 0, 0, "b"), (4, 1, 2, 1, "c")]
    with pytest.raises(DecodeError, match="not an enclosing element"):
        decode_state(state_bytes(runs, [4]))


def test_a_child_whose_counter_does_not_exceed_its_parent_is_refused():
    body = [[[1, 1], [0, 0], [0, 1], [0, 0], ["a", "b"]], [[], [], []]]
    with pytest.raises(DecodeError, match="does not exceed its parent"):
        decode_delta(encode("rga.delta", 2, body))


def test_an_item_of_another_type_is_refused():
    with pytest.raises(DecodeError, match="str, bytes or int"):
        decode_delta(encode("rga.delta", 2, [[[1], [0], [-1], [0], [["a", 1.5]]], [[], [], []]]))
    with pytest.raises(DecodeError, match="a str or a list of items"):
        decode_delta(encode("rga.delta", 2, [[[1], [0], [-1], [0], [7]], [[], [], []]]))
    with pytest.raises(DecodeError, match="at least one element"):
        decode_delta(encode("rga.delta", 2, [[[1], [0], [-1], [0], [""]], [[], [], []]]))


def test_an_id_twice_is_refused():
    with pytest.raises(DecodeError, match=r"\(2, 1\) appears twice"):
        decode_delta(encode("rga.delta", 2, [rga_module._run_columns([(1, 1, 0, 0, "ab"), (2, 1, 0, 0, "c")]),
                                             [[], [], []]]))
    with pytest.raises(DecodeError, match="appears twice"):  # a waiting insert that is also in the document
        decode_state(state_bytes([(1, 1, 0, 0, "ab")], [2], waiting=[(2, 1, 1, 3, "c")]))


def test_counters_past_64_bits_are_refused():
    top = 2**64 - 1
    with pytest.raises(DecodeError, match="outside"):  # a run of two from the greatest counter
        decode_delta(encode("rga.delta", 2, [[[top], [0], [-1], [0], ["ab"]], [[], [], []]]))
    decode_delta(encode("rga.delta", 2, [[[top], [0], [-1], [0], ["a"]], [[], [], []]]))
    with pytest.raises(DecodeError, match="go past"):
        decode_delta(encode("rga.delta", 2, [[[], [], [], [], []], [[top], [0], [2]]]))


def test_alive_lengths_must_cover_the_document_exactly():
    runs = [(1, 1, 0, 0, "abc")]
    for alive in ([2], [1, 1, 2], [0], [1, 0, 2]):
        with pytest.raises(DecodeError, match="alive lengths"):
            decode_state(state_bytes(runs, alive))
    assert decode_state(state_bytes(runs, [0, 1, 2])).alive == [0, 1, 2]
    replica = RGA(5)
    replica.merge(state_bytes(runs, [1, 1, 1]))
    assert replica.value() == ["a", "c"]


# ----- the tree of runs at size --------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_local_edits_match_a_plain_list(small_nodes, seed):
    rng = random.Random(seed)
    replica, plain = RGA(0), []
    for step in range(3000):
        if plain and rng.random() < 0.4:
            index = rng.randrange(len(plain)) if rng.random() < 0.5 else max(0, len(plain) - 1 - rng.randrange(3))
            replica.delete(index)
            del plain[index]
        else:
            index = rng.randrange(len(plain) + 1) if rng.random() < 0.5 else len(plain) - rng.randrange(min(3, len(plain) + 1))
            replica.insert(index, step)
            plain.insert(index, step)
        if step % 500 == 0:
            assert replica.value() == plain
    assert replica.value() == plain
    assert len(replica) == len(plain)
    assert [replica.index_of(replica.id_at(i)) for i in range(0, len(plain), 7)] == list(range(0, len(plain), 7))
    copy = RGA(1)
    copy.merge(replica.state())
    assert copy.value() == plain
    by_delta = RGA(2)
    by_delta.apply_delta(replica.take_deltas()[0])
    assert by_delta.value() == plain


@pytest.mark.parametrize("seed", range(3))
def test_concurrent_editing_matches_the_model(small_nodes, seed):
    """Three replicas edit concurrently and exchange deltas in random order; the model,
    given the same operations, says the same."""
    rng = random.Random(seed)
    replicas = [RGA(i) for i in range(3)]
    histories: list[set] = [set(), set(), set()]
    inbox: list[tuple[int, bytes, frozenset]] = []
    for _ in range(150):
        i = rng.randrange(3)
        replica, history = replicas[i], histories[i]
        before = set(history)
        for _ in range(rng.randrange(1, 4)):
            if len(replica) and rng.random() < 0.3:
                index = rng.randrange(len(replica))
                history.add(model.delete_at(history, index))
                replica.delete(index)
            else:
                index = rng.randrange(len(replica) + 1)
                op = model.insert_at(history, i, index, "x")
                assert replica.insert(index, "x") == op.id
                history.add(op)
        for delta in replica.take_deltas():
            for j in range(3):
                if j != i:
                    inbox.append((j, delta, frozenset(history - before)))
        while inbox and rng.random() < 0.5:
            j, delta, ops = inbox.pop(rng.randrange(len(inbox)))
            replicas[j].apply_delta(delta)
            histories[j] |= ops
        for j in range(3):
            assert replicas[j].ids() == model.visible_ids(histories[j])
    for j, delta, ops in inbox:
        replicas[j].apply_delta(delta)
        histories[j] |= ops
    assert replicas[0].value() == replicas[1].value() == replicas[2].value() == model.value(histories[0])


# ----- what the task list uses ------------------------------------------------------------------


def test_ids_items_and_positions_for_a_task_order():
    order = RGA(1)
    first = order.insert_after(None, b"\x01" * 32)
    second = order.insert_after(first, b"\x02" * 32)
    third = order.insert_after(first, b"\x03" * 32)  # right after first, before second
    assert order.value() == [b"\x01" * 32, b"\x03" * 32, b"\x02" * 32]
    assert [order.index_of(x) for x in (first, second, third)] == [0, 2, 1]
    assert order.id_at(2) == second and order.item_of(third) == b"\x03" * 32
    assert order.delete_id(third) is True and order.delete_id(third) is False
    assert order.index_of(third) is None and order.knows(third)
    moved = order.insert_after(None, order.item_of(second))
    order.delete_id(second)
    assert order.value() == [b"\x02" * 32, b"\x01" * 32]
    copy = RGA(2)
    for delta in order.take_deltas():
        copy.apply_delta(delta)
    assert copy.ids() == order.ids() == [moved, first]
    with pytest.raises(KeyError):
        order.insert_after((99, 9), b"x")
    with pytest.raises(TypeError):
        order.insert(0, 1.5)
    with pytest.raises(IndexError):
        order.delete(5)
