"""The OR-Set machine: ``models.orset`` against every registered ``orset`` implementation.

Two or three replicas add and remove elements from a small pool (strings and integers)
and replicate through the faulty network of ``ReplicatedMachine``: deltas delivered late,
twice, out of order or never, full-state syncs in any direction, clocks that barely move
(so adds on different replicas often fall in the same millisecond). What makes OR-Sets go
wrong is one element added and removed concurrently at several replicas, so:

* an add picks, every other time, an element some *other* replica holds;
* a remove picks, three times in four, an element the replica holds;
* ``send_delta`` broadcasts a replica's pending deltas and delivers one copy at once, so
  deltas arrive often, and ``redeliver`` has old deltas to play again.

The model side: an add at replica ``i`` is ``Add(element, next_tag(history_i, i))``; a
remove is ``Remove(element, observed_tags(history_i, element))``. After every step each
replica's value must equal ``models.orset.value`` of the history it has seen (level
``exact``; see ``levels`` for ``add-wins``), a replica shows its own add and hides its own
remove at once, and all replicas agree after ``sync_all``.

Elements in a trace are JSON: strings, integers, and ``{"bytes": "<hex>"}`` for bytes.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import rule

from harness import machine_test
from harness.hostile import far_counters
from harness.replay import show
from implementations.limits import MAX_CLOUD_RANGES, MAX_CONTEXT_REPLICAS, MAX_COUNTER_GAP, U64_MAX
from machines.replicated import ADVANCES, HostilePeers, ReplicatedMachine, SendsDeltas
from models.orset import Add, Remove, next_tag, observed_tags, value

#: The elements replicas add and remove, as they appear in traces.
#: Only strings and integers: third-party sets (``examples/my_orset.py``) key elements by JSON.
#: Traces may still name a bytes element as ``{"bytes": "<hex>"}``.
POOL = ("a", "b", "c", "x", 0, 7)
#: The elements strangers add (only to implementations with a crafter): the pool, and a bytes
#: element and the least and greatest integers the wire carries (``implementations.wire.element_key``).
STRANGER_ELEMENTS = (*POOL, b"\x00", -(2**63), 2**64 - 1)
#: Replica ids of strangers: peers no honest replica is, whose operations are legal.
STRANGERS = (2**40, 2**40 + 1, 2**48)
#: The limit a refusal of each lie that passes one names (``OverLimit.limit``).
LIMIT_PASSED = {"dots_far_ahead": "MAX_COUNTER_GAP", "counter_at_max": "MAX_COUNTER_GAP", "one_field_wrong": "MAX_COUNTER_GAP",
                "huge_vector": "MAX_CONTEXT_REPLICAS", "dot_cloud": "MAX_CLOUD_RANGES"}


def element_from_trace(raw: Any) -> Any:
    """An element from its JSON form (``{"bytes": hex}`` for bytes), or ValueError."""
    if isinstance(raw, dict):
        if set(raw) != {"bytes"} or not isinstance(raw["bytes"], str):
            raise ValueError(f"a bytes element is written {{'bytes': '<hex>'}}, got {raw!r}")
        return bytes.fromhex(raw["bytes"])
    if isinstance(raw, (str, int)) and not isinstance(raw, bool):
        return raw
    raise ValueError(f"an element is a string, an integer or {{'bytes': '<hex>'}}, got {raw!r}")


def element_to_trace(element: Any) -> Any:
    return {"bytes": element.hex()} if isinstance(element, bytes) else element


def canonical(element: Any) -> tuple[int, Any]:
    """A total order on elements of mixed types, so choices are reproducible."""
    return (0 if isinstance(element, int) else 1 if isinstance(element, str) else 2, element)


@functools.lru_cache(maxsize=4096)
def model_value_of(history: frozenset) -> frozenset:
    """``models.orset.value``, remembered: every step asks it again for every replica."""
    return value(history)


class ORSetMachine(SendsDeltas, HostilePeers, ReplicatedMachine):
    name = "orset"
    rule_classes: ClassVar[dict[str, str]] = {"add": "operations", "remove": "operations"}
    #: Each class's least share of the steps under ci: about half the least share measured against
    #: any implementation (harness.balance; the coverage table prints them): shares move when a
    #: merge reshuffles the derandomized search, or a test runs the machine with fewer examples.
    class_floors: ClassVar[dict[str, float]] = {
        "operations": 0.12, "delivery": 0.12, "sync": 0.10, "faults": 0.015, "time": 0.04, "adversary": 0.04}
    #: Every OR-Set anomaly needs at most three replicas (an adder, a remover, a third party
    #: relaying old state); fewer replicas make each one busier and every step cheaper.
    max_replicas = 3
    #: ``exact``: every replica's value equals the model's after every step.
    #: ``convergent``, for sets that buffer updates or arbitrate concurrent adds of one
    #: element their own way (a Yrs map): a replica shows only elements it has seen added,
    #: may miss one the model says is present, and shows its own add and hides its own
    #: remove at once; after a full sync all agree and show nothing the model says is removed.
    #: ``add-wins``: as ``convergent``, and after a full sync every replica shows exactly the
    #: model's value: each add that no remove observed survives.
    levels = ("exact", "add-wins", "convergent")

    @property
    def exact(self) -> bool:
        return self.implementation.level == "exact"

    def model_value(self, history: frozenset) -> frozenset:
        return model_value_of(history)

    def acceptable(self, history: frozenset, model_value: Any, replica_value: Any) -> bool:
        if self.exact:
            return model_value == replica_value
        return replica_value <= {op.element for op in history if isinstance(op, Add)}

    def step_sync_all(self) -> None:
        super().step_sync_all()
        if not self.exact:
            for index, (history, replica) in enumerate(zip(self.history, self.replicas, strict=True)):
                shown, model = self.replica_value(replica), self.model_value(frozenset(history))
                assert shown <= model, (
                    f"after a full sync replica {index} shows {set(shown - model)!r}, which the model says were removed"
                )
                if self.implementation.level == "add-wins":
                    assert shown == model, (
                        f"after a full sync replica {index} lacks {set(model - shown)!r}: adds no remove observed, "
                        "which add-wins keeps"
                    )

    def replica_value(self, replica: Any) -> frozenset:
        return frozenset(replica.value())

    quiet_when_idle = frozenset({"delta-state"})  # ``implementations.orset``'s take_deltas sends nothing when nothing is pending

    # ----- how often each rule runs ------------------------------------------------------
    #
    # Hypothesis orders rules by how many values they draw and picks (and shrinks towards)
    # the first one far more often than the others. The base's argument-less ``sync_all``
    # would be a third of all steps and the operations, drawing the most, would be rare.
    # So here each operation draws one value (replica and element in one), and ``sync_all``
    # and ``advance_clock`` draw one more than they use: ``add`` comes first, then the
    # one-value network rules and ``remove``, then the rest.

    @rule(_unused=st.just(0))
    def sync_all(self, _unused: int) -> None:
        self.do("sync_all")

    @rule(ns=ADVANCES, _unused=st.just(0))
    def advance_clock(self, ns: int, _unused: int) -> None:
        self.do("advance_clock", ns=ns)

    # ----- operations ------------------------------------------------------------------

    @rule(draw=st.integers(0, 255))
    def add(self, draw: int) -> None:
        """At a replica (``draw`` picks it), every other time an element another replica
        holds (when there is one: concurrent adds and removes of one element are where
        OR-Sets go wrong), else one from the pool."""
        replica = self.pick(draw, self.replicas)
        which = draw // len(self.replicas)
        elsewhere = set()
        for other, history in enumerate(self.history):
            if other != replica:
                elsewhere |= model_value_of(frozenset(history))
        if which % 2 == 1 and elsewhere:
            held = sorted(elsewhere, key=canonical)
            element = element_to_trace(held[self.pick(which // 2, held)])
        else:
            element = POOL[self.pick(which // 2, POOL)]
        self.do("add", replica=replica, element=element)

    def step_add(self, replica: int, element: Any) -> None:
        self.require_replica(replica)
        try:
            added = element_from_trace(element)
        except ValueError as error:
            self.require(False, str(error))
        tag = next_tag(self.history[replica], replica)
        self.replicas[replica].add(added)
        self.record_local(replica, Add(added, tag))
        assert added in self.replica_value(self.replicas[replica]), f"replica {replica} added {added!r} but does not show it"

    @rule(draw=st.integers(0, 255))
    def remove(self, draw: int) -> None:
        """At a replica (``draw`` picks it), three times in four an element it holds (when
        it holds any), else one from the pool."""
        replica = self.pick(draw, self.replicas)
        which = draw // len(self.replicas)
        holding = sorted(model_value_of(frozenset(self.history[replica])), key=canonical)
        if which % 4 != 3 and holding:
            element = element_to_trace(holding[self.pick(which // 4, holding)])
        else:
            element = POOL[self.pick(which // 4, POOL)]
        self.do("remove", replica=replica, element=element)

    def step_remove(self, replica: int, element: Any) -> None:
        self.require_replica(replica)
        try:
            removed = element_from_trace(element)
        except ValueError as error:
            self.require(False, str(error))
        observed = observed_tags(self.history[replica], removed)
        self.replicas[replica].remove(removed)
        if observed:
            self.record_local(replica, Remove(removed, observed))
        assert removed not in self.replica_value(self.replicas[replica]), (
            f"replica {replica} removed {removed!r} but still shows it"
        )

    # ----- the report: adds by their tags, removes by the tags they observed ---------------

    outsiders = STRANGERS

    def tags_named(self, tags: Any) -> str:
        """Tags by name (``A3``: replica 0's third add; ``X1``: the first stranger's first), in order."""
        return ", ".join(self.id_name(*tag) for tag in sorted(tags))

    def describe_op(self, op: Any) -> str:
        if isinstance(op, Add):
            return f"add {show(op.element)} as {self.id_name(*op.tag)}"
        return f"remove {show(op.element)}, observed {self.tags_named(op.observed)}"

    def describe_step(self, step) -> str:
        a = step.args
        try:
            if step.rule == "add":
                replica, element = a["replica"], element_from_trace(a["element"])
                tag = next_tag(self.history[replica], replica)
                return f"replica {replica} adds {show(element)} as {self.id_name(*tag)}"
            if step.rule == "remove":
                return self.describe_remove(a["replica"], element_from_trace(a["element"]))
            if step.rule == "hostile":
                return f"{super().describe_step(step)}, {self.describe_lie(a)}"
        except (IndexError, KeyError, TypeError, ValueError, AttributeError):
            pass
        return super().describe_step(step)

    def describe_remove(self, replica: int, element: Any) -> str:
        """A remove by the tags it observes, and the adds of the element it has not seen (which survive it)."""
        named, history = show(element), self.history[replica]
        observed = observed_tags(history, element)
        unseen = {op.tag for seen in self.history for op in seen if isinstance(op, Add) and op.element == element} - {
            op.tag for op in history if isinstance(op, Add)}
        spared = f" (adds it has not seen: {self.tags_named(unseen)})" if unseen else ""
        if not observed:
            return f"replica {replica} removes {named}, which it does not hold: nothing observed{spared}"
        return f"replica {replica} removes {named}, observed {self.tags_named(observed)}{spared}"

    def describe_lie(self, a: dict[str, Any]) -> str:
        """What a hostile step's message says: the add or claim it makes, the genuine message it spoils."""
        if "stranger" in a:
            stranger = a["stranger"]
            if "remove" in a:
                removed = element_from_trace(a["remove"])
                op = Remove(removed, observed_tags(self.history[a["target"]], removed))
            else:
                op = Add(element_from_trace(a["add"]), (stranger, a["counter"]))
            return f"stranger {self.peer_name(stranger)}: {self.describe_op(op)}"
        if "spoiling" in a:
            return f"a message that is not canonical: {a['spoiling'].replace('_', ' ')}"
        if "runs" in a:
            return f"{a['runs']:,} separate runs of {self.peer_name(a['replica'])}'s dots"
        if "replicas" in a and "dot" not in a:
            return f"one dot of each of {a['replicas']:,} strangers"
        dot = self.id_name(*a["dot"])
        if "element" in a:
            if a["element"] is None:
                return f"a claim of {dot}"
            return self.describe_op(Add(element_from_trace(a["element"]), tuple(a["dot"])))
        if a.get("message") is not None:
            m = self.in_flight[a["message"]]
            return f"{self.sender_name(m.source)}'s delta to replica {m.target}, also claiming {dot}"
        return f"replica {a['source']}'s whole state, also claiming {dot}"

    # ----- the adversary (machines.replicated.HostilePeers) ------------------------------
    #
    # A crafter for the ``orset`` machine offers, each rendering a ``orset.state`` (if
    # ``whole_state``) or ``orset.delta`` message of its implementation, and ``lies``, the
    # names of the lies it can tell:
    #
    # * ``claim(whole_state, dots)``: a message saying the sender saw (and removed) the adds
    #   ``dots`` (``[[replica, counter], ...]``), carrying no element;
    # * ``add(whole_state, element, dot)``: an add of ``element`` under ``dot``;
    # * ``remove(whole_state, element, dots)``: a remove of ``element`` observing ``dots``;
    # * ``observed(holder, element)``: the dots of ``element`` replica ``holder`` (its adapter)
    #   holds, as a peer that received its state sees them;
    # * ``huge_vector(whole_state, replicas)``: one dot of each of ``replicas`` strangers;
    # * ``dot_cloud(whole_state, replica, runs)``: ``runs`` separate runs of dots of ``replica``;
    # * ``tamper(genuine, whole_state, dot)``: the genuine message, also claiming ``dot``.
    #
    # and may offer:
    #
    # * ``kind(whole_state)``: the kind of message it renders, which a refusal must name, with
    #   the counter a dot passed the gap by;
    # * ``spoilings``, ``spoil(whole_state, spoiling)`` and ``spoiling(spoiling)``: messages that
    #   decode but are not canonical (``not_canonical``), and the part of one (after the kind) and
    #   the limit (or None) its refusal names;
    # * ``gap_refusal(replica, counter, own, known)``: what a refusal of the dot ``(replica, counter)``
    #   past the counter gap says of it: the dot, whether it is the receiver's own, and the greatest
    #   counter of that replica the receiver has seen (``known``);
    # * ``bookkeeping(holder)``: what the replica keeps to check its limits and is wrong (checked
    #   after every step: most limits are too big for a run to reach, their counts are not).
    #
    # ``dots_at_gap`` (an add of a stranger at the last counter every replica accepts) and
    # ``vector_at_limit`` (told by committed traces only: the receiver then holds dots of exactly
    # MAX_CONTEXT_REPLICAS replicas, so its next sync to a peer is rightly refused) check a
    # limit's edge from below.

    #: Lies that pass a limit by size cost a tenth of a second each: told rarely.
    lie_weights: ClassVar[dict[str, int]] = {"own_dots_ahead": 8, "dots_far_ahead": 6, "counter_at_max": 6,
                                             "stranger_ops": 12, "one_field_wrong": 9, "huge_vector": 1, "dot_cloud": 1,
                                             "dots_at_gap": 4, "not_canonical": 6}

    def __init__(self, implementation, stats=None) -> None:
        super().__init__(implementation, stats)
        self.stranger_made: dict[int, int] = {}  # stranger -> the counter of its last add
        self.spoiled = 0  # not_canonical lies told

    def known_counter(self, target: int, replica: int) -> int:
        counters = [0]
        for op in self.history[target]:
            tags = [op.tag] if isinstance(op, Add) else op.observed
            counters.extend(seq for origin, seq in tags if origin == replica)
        return max(counters)

    def replicas_seen(self, target: int) -> set[int]:
        """The replicas whose tags replica ``target`` has seen, in the model."""
        return {origin for op in self.history[target] for origin, _ in ([op.tag] if isinstance(op, Add) else op.observed)}

    def gap_edge(self, stranger: int) -> int:
        """The greatest counter of ``stranger`` every replica accepts: MAX_COUNTER_GAP beyond the least
        greatest of its counters a replica has seen (so a relay of an add there is never refused)."""
        return min(self.known_counter(replica, stranger) for replica in range(len(self.replicas))) + MAX_COUNTER_GAP

    def check(self) -> None:
        super().check()
        bookkeeping = getattr(self.crafter, "bookkeeping", None)
        for index in range(len(self.replicas) if bookkeeping else 0):
            wrong = bookkeeping(self.raw(index))
            assert not wrong, f"replica {index} keeps what it checks its limits by wrong: {'; '.join(wrong)}"

    def check_refusal(self, target: int, lie: str, whole_state: bool, refusal: Exception, **args: Any) -> None:
        """A refusal names what is wrong: the limit the lie passed (``OverLimit.limit``) and, if the
        crafter says the kind of message it renders, that kind and the counter past the gap; of a
        message that is not canonical, the part that is wrong (and no limit, unless it passes one)."""
        text, limit, kind = str(refusal), getattr(refusal, "limit", None), getattr(self.crafter, "kind", None)
        if lie == "not_canonical":
            where, passed = self.crafter.spoiling(args["spoiling"])
            assert limit == passed, f"{lie}: the refusal names the limit {limit}, not {passed}: {text}"
            named = f"{kind(whole_state)}{'' if where.startswith('[') else ': '}{where}"  # orset.delta[2][0] or orset.delta: body
            assert named in text, f"{lie}: the refusal does not name {named}, what is wrong: {text}"
            return
        assert limit == LIMIT_PASSED[lie], f"{lie}: the refusal names the limit {limit}, not {LIMIT_PASSED[lie]}: {text}"
        if kind is not None:  # step_hostile checked that the refusal names the kind
            counter = args["dot"][1] if "dot" in args else None
            assert counter is None or str(counter) in text or f"{counter:,}" in text, (
                f"{lie}: the refusal does not name the counter {counter} past the gap: {text}")
        if lie == "huge_vector":  # the count of the message's replicas, or of the target's after the join
            counts = (args["replicas"], args["replicas"] + len(self.replicas_seen(target)))
            assert any(f" {count:,} replicas" in text for count in counts), (
                f"{lie}: the refusal names neither {counts[0]:,} nor {counts[1]:,} replicas: {text}")
        gap_refusal = getattr(self.crafter, "gap_refusal", None)
        if gap_refusal is not None and LIMIT_PASSED[lie] == "MAX_COUNTER_GAP":
            replica, counter = args["dot"]
            named = gap_refusal(replica, counter, replica == target, self.known_counter(target, replica))
            assert named in text, f"{lie}: the refusal does not say {named!r}: {text}"

    def hostile_args(self, lie: str, target: int, draw: int) -> dict[str, Any]:
        others = [i for i in range(len(self.replicas)) if i != target] + list(STRANGERS)
        anyone = others[draw % len(others)]
        element = POOL[draw % len(POOL)]
        if lie == "own_dots_ahead":  # an add in the target's own name, ahead of its last: its next add skips past it
            made = self.known_counter(target, target)
            # Small steps: a dot 2^32 ahead would be accepted here and refused by a peer this one
            # relays it to (past the gap there): an honest relay must never be refused.
            return {"dot": [target, (made + 1, made + 2, made + 1000)[draw % 3]], "element": element_to_trace(element)}
        if lie == "dots_far_ahead":
            far = far_counters(self.known_counter(target, anyone))
            return {"dot": [anyone, far[draw % len(far)]], "element": element if draw & 4 else None}
        if lie == "counter_at_max":
            everyone = [target, *others]
            return {"dot": [everyone[draw % len(everyone)], U64_MAX - (draw & 1)], "element": element if draw & 2 else None}
        if lie == "stranger_ops":
            stranger = STRANGERS[draw % len(STRANGERS)]
            held = sorted(model_value_of(frozenset(self.history[target])), key=canonical)
            if held and draw & 8:
                return {"stranger": stranger, "remove": element_to_trace(held[draw % len(held)])}
            added = STRANGER_ELEMENTS[(draw >> 4) % len(STRANGER_ELEMENTS)]
            return {"stranger": stranger, "add": element_to_trace(added), "counter": self.stranger_made.get(stranger, 0) + 1}
        if lie == "one_field_wrong":
            liar, counter = [target, anyone][draw % 2], U64_MAX - (draw >> 1) % 2
            messages = [i for i, m in enumerate(self.in_flight) if m.target == target and m.deltas]
            if messages and draw & 8:
                return {"message": messages[draw % len(messages)], "dot": [liar, counter], "whole_state": False}
            return {"source": draw % len(self.replicas), "dot": [liar, counter], "whole_state": True}
        if lie == "huge_vector":
            return {"replicas": MAX_CONTEXT_REPLICAS + 1}
        if lie == "dots_at_gap":
            stranger = STRANGERS[draw % len(STRANGERS)]
            return {"dot": [stranger, self.gap_edge(stranger)], "element": element_to_trace(element)}
        if lie == "not_canonical":
            # The search's draws cluster (small numbers, edges): alone, some remainders never came up.
            spoilings, self.spoiled = self.crafter.spoilings, self.spoiled + 1
            return {"spoiling": spoilings[(draw + self.spoiled * 7) % len(spoilings)]}
        if lie == "vector_at_limit":
            return {"replicas": MAX_CONTEXT_REPLICAS - len(self.replicas_seen(target))}
        return {"replica": STRANGERS[draw % len(STRANGERS)], "runs": MAX_CLOUD_RANGES + 1}

    def tell(self, target: int, lie: str, whole_state: bool, **args: Any) -> tuple[bytes, str, frozenset]:
        crafter = self.crafter
        if lie == "own_dots_ahead":
            dot = tuple(args["dot"])
            self.require(dot[0] == target and dot[1] > self.known_counter(target, target), f"{dot} is not ahead of {target}")
            if args["element"] is None:
                # A claim alone (committed scenarios only: the rule does not tell it, as the model
                # has no operation for it and the target's next dot would differ from the model's
                # next tag). It changes no value; the target's next add must still show.
                return crafter.claim(whole_state, [dot]), "accepted", frozenset()
            added = element_from_trace(args["element"])
            self.require(all(dot not in {op.tag for op in h if isinstance(op, Add)} for h in self.history), f"{dot} is taken")
            return crafter.add(whole_state, added, dot), "accepted", frozenset({Add(added, dot)})
        if lie in ("dots_far_ahead", "counter_at_max"):
            dot = tuple(args["dot"])
            # A lie told as refused must be one (a trace edited by hand or by the minimizer may
            # have made it an honest dot, which a correct replica rightly accepts).
            if lie == "dots_far_ahead":
                self.require(dot[1] > self.known_counter(target, dot[0]) + MAX_COUNTER_GAP, f"{dot} is not far ahead")
            else:
                self.require(dot[1] >= U64_MAX - 1, f"{dot} is not at the maximum")
            if args["element"] is None:
                return crafter.claim(whole_state, [dot]), "refused", frozenset()
            return crafter.add(whole_state, element_from_trace(args["element"]), dot), "refused", frozenset()
        if lie == "stranger_ops":
            stranger = args["stranger"]
            self.require(stranger in STRANGERS, f"{stranger} is not a stranger")
            if "remove" in args:
                removed = element_from_trace(args["remove"])
                observed = observed_tags(self.history[target], removed)
                self.require(bool(observed), f"replica {target} does not hold {removed!r}")
                dots = sorted(crafter.observed(self.raw(target), removed))  # what a peer that got its state saw
                return crafter.remove(whole_state, removed, dots), "accepted", frozenset({Remove(removed, observed)})
            added, counter = element_from_trace(args["add"]), args["counter"]
            self.require(counter > self.stranger_made.get(stranger, 0), f"stranger {stranger} already made add {counter}")
            self.stranger_made[stranger] = counter
            return crafter.add(whole_state, added, (stranger, counter)), "accepted", frozenset({Add(added, (stranger, counter))})
        if lie == "one_field_wrong":
            genuine = self.genuine(whole_state, args.get("message"), args.get("source"))
            self.require(args["dot"][1] >= U64_MAX - 1, f"{args['dot']} is not at the maximum")
            return crafter.tamper(genuine, whole_state, tuple(args["dot"])), "refused", frozenset()
        if lie == "dots_at_gap":
            dot = tuple(args["dot"])
            self.require(dot[0] in STRANGERS and dot[1] == self.gap_edge(dot[0]), f"{dot} is not a stranger's at the gap's edge")
            added = element_from_trace(args["element"])
            return crafter.add(whole_state, added, dot), "accepted", frozenset({Add(added, dot)})
        if lie == "not_canonical":
            return crafter.spoil(whole_state, args["spoiling"]), "refused", frozenset()
        if lie == "vector_at_limit":
            seen = len(self.replicas_seen(target))
            self.require(args["replicas"] + seen == MAX_CONTEXT_REPLICAS, f"{args['replicas']} + {seen} is not the limit")
            return crafter.huge_vector(whole_state, args["replicas"]), "accepted", frozenset()
        if lie == "huge_vector":  # past the limit alone, or with the replicas the target has seen (committed traces)
            self.require(args["replicas"] + len(self.replicas_seen(target)) > MAX_CONTEXT_REPLICAS,
                         f"{args['replicas']} replicas are within the limit")
            return crafter.huge_vector(whole_state, args["replicas"]), "refused", frozenset()
        # Past MAX_CLOUD_RANGES alone, or with the runs the target holds (committed traces: a cloud of
        # exactly MAX_CLOUD_RANGES runs of a stranger the target has not seen, refused while the target
        # holds a run of its own and accepted once it holds none).
        held = self.cloud_runs(target)
        self.require(args["runs"] > MAX_CLOUD_RANGES or (args["runs"] == MAX_CLOUD_RANGES and args["replica"] in STRANGERS
                                                         and args["replica"] not in self.replicas_seen(target)),
                     f"{args['runs']} runs are within the limit")
        outcome = "refused" if args["runs"] + held > MAX_CLOUD_RANGES else "accepted"
        return crafter.dot_cloud(whole_state, args["replica"], args["runs"]), outcome, frozenset()

    def cloud_runs(self, target: int) -> int:
        """The runs of dots seen out of order replica ``target`` holds, in the model: of each replica
        whose tags it has seen, the separate runs of their counters but one starting at 1."""
        counters: dict[int, set[int]] = {}
        for op in self.history[target]:
            for origin, seq in [op.tag] if isinstance(op, Add) else op.observed:
                counters.setdefault(origin, set()).add(seq)
        return sum(sum(1 for seq in seqs if seq - 1 not in seqs and seq != 1) for seqs in counters.values())

    def step_hostile(self, target: int, lie: str, whole_state: bool, **args: Any) -> None:
        if lie == "dot_cloud" and self.crafter is not None and not hasattr(self.crafter, "dot_cloud"):
            return  # a format without a dot cloud (the tombstone set's): a committed trace's lie it cannot tell
        spoilings = getattr(self.crafter, "spoilings", ())
        if lie == "not_canonical" and self.crafter is not None and args.get("spoiling") not in spoilings:
            # A committed trace's spoiling of another format (the delta-state body's, replayed against the
            # tombstone set): the rule draws only the crafter's own.
            return
        super().step_hostile(target, lie, whole_state, **args)


test_orset_machine = machine_test(ORSetMachine)
