"""The threshold machine's faults at the storage seam: crashes inside an operation, and a
second process on a core's file (``harness.faults``).

* ``crash``: the next operation of signer or coordinator ``node`` (an envelope it handles,
  its tick, an event it opens) that makes k commits dies just before or just after its k-th
  (an operation that makes fewer leaves the crash armed: the crashes that matter most, between
  a coordinator's decision and its record, are in the one delivery in thirty that decides,
  which a crash aimed at the next operation alone almost never hit). The core is
  thrown away, a new one opens the same file and ticks at once, as a restarted process
  would. What the model says survives: an operation decides at its first commit, so a crash
  before it loses the operation whole (the envelope may arrive again), and a crash after it
  loses only the operation's answer; whatever the operation still had to do (a coordinator's
  submission whose decision was recorded, the payment of a transaction the node already
  holds) is finished by the restarted core.
  A crash may also come at the start of the k-th transaction (``start``: with k = 2 or 3, only
  in a coordinator's delivery that decided, just before it records that it hands the
  transaction over, or just before it submits), and the core may stay down
  (``later``) until it is next used, with the clock moved on: then it comes back after the
  request expired, or on another day, and ``models.threshold_requests.recover`` says what it must do.
  Half the crashes are aimed there (``_AIM``): a coordinator with a live request, its next
  delivery (``on``) that decides (it makes three commits), staying down: after the submission
  (before the third commit: half of them), after the record of the hand-over, or before it;
  while any core is down, events go to coordinators that are up, messages to cores that are up
  (``ThresholdMachine.to_up``: one to a down core waits while there are others), forged answers
  and lies to requests of coordinators that are up and still counting answers; and while a
  coordinator is down since its decision, ``come_back_late`` (and ``advance_clock``'s deadlines)
  move the clock to its request's expiry or the midnight ending the day of its decision
  (``ThresholdMachine.late_instants``).
  ``when="now"`` stops a core between operations (a process stopped and started again).
* ``interleave``: two instances of one core share its file. Operation Y runs on the second
  instance at the k-th transaction boundary of operation X on the first: ordered before X
  if X had not committed yet, after X otherwise. Two proposals of one event racing on one
  signer file, two coordinator processes opening the same event, a tick between a
  coordinator's decision and its submission are all interleavings of this rule.

  A check made outside the transaction it guards goes stale only when the other process
  writes what it checks: the same key. Every such check of the threshold cores is keyed by
  an event ("event already processed", "already processing this event", the replay record
  of an envelope, which carries one event). So most interleavings draw *contending*
  operations (``contend``): two envelopes in flight to one core that concern one event
  (proposals of two requests for it, or two copies of one envelope), or one event submitted
  to both processes of a coordinator. Drawn freely, two operations on one core almost never
  concern one event (measured: no such pair in 470 interleavings of 30 nightly examples,
  while one stood in flight at a quarter of the steps).

The invariants checked after every step are the machine's own (``ThresholdMachine.check``):
no event signed with two templates, every transaction on the ledger paid exactly once, no
reservation alive past its request's expiry, ``tick`` never raising.
"""

from __future__ import annotations

from typing import Any, ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import rule

from harness import faults
from models.threshold import ALIVE

ROLES = ("signer", "coordinator")
OPERATION_KINDS = ("deliver", "submit", "tick")
_INDEX = st.integers(0, 63)
#: Mostly two messages racing on one core; a boundary before the first commit most often
#: (where a check made outside the transaction goes stale).
_RACING = st.sampled_from(["deliver", "deliver", "deliver", "submit", "tick"])
_BOUNDARY = st.sampled_from([1, 1, 2, 3])
#: Whether the two operations contend for one event (see the module's docstring): mostly.
_CONTEND = st.sampled_from([True, True, False])
#: How far back from the newest (event, pair of messages): half the time the newest itself.
#: What just happened is where the next step most often matters: a relayer retries the event
#: it just sent, two copies of what was just sent race, before the clock makes them stale.
BACK = st.one_of(st.just(0), _INDEX)
#: Whether a crash is aimed between a coordinator's decision and the record of its outcome
#: (in its next delivery that makes three commits: the one that decides; ``on``), the core
#: staying down (``later``): half of them, at a coordinator with a live request.
#: Drawn freely (one crash of a coordinator in 8, at 1 of n nodes, and fired by the first
#: operation of two commits: opening an event makes several), a run had such a crash in 1
#: example of 230 (ci, 50 steps), and the recovery after it was never reached.
_AIM = st.sampled_from([False, True])


class FaultRules:
    """Rules mixed into ``ThresholdMachine`` (which provides ``perform``, ``twin``, the network)."""

    rule_classes: ClassVar[dict[str, str]] = {"crash": "crash", "interleave": "crash"}

    # ----- crashes -----------------------------------------------------------------------

    @rule(role=st.sampled_from(ROLES), node=_INDEX, when=st.sampled_from((*faults.WHEN, faults.START, "now")),
          commit=st.integers(1, 3), later=st.booleans(), aim=_AIM)
    def crash(self, role, node, when, commit, later, aim):
        if aim:  # between a coordinator's decision and its record, and it stays down (see _AIM)
            pending = sorted({self.owner[rid] for rid, r in self.requests.items()
                              if r.state in ALIVE and rid not in self.unrecorded})
            node = self._node(pending[node % len(pending)] if pending else node)
            # after the submission (before the outcome's commit: half of them), after the record of the
            # hand-over, or before it
            point = {"after": ("after", 2), faults.START: (faults.START, 2)}.get(when, ("before", 3))
            self.do("crash", role="coordinator", node=node, when=point[0], commit=point[1], later=True, on="deliver")
            return
        node = self._node(node)
        if when == "now":  # a process stopped between operations (the commit is of no use)
            self.do("crash", role=role, node=node, when=when, later=later)
        else:
            self.do("crash", role=role, node=node, when=when, commit=commit, later=later)

    def step_crash(self, role: str, node: int, when: str, commit: int | None = None, later: bool = False,
                   on: str | None = None) -> None:
        """Arm a crash just before/after the ``commit``-th commit of the core's next operation
        (of kind ``on``, if given: ``deliver``, ``submit`` or ``tick``) (or at the start of its
        ``commit``-th transaction), or (``now``) stop the core between operations; it restarts at
        once (and ticks), or (``later``) stays down until it is next used."""
        self.require(role in ROLES and 0 <= node < len(self.signers), f"no {role} {node}")
        self.require(isinstance(later, bool), f"later={later!r} is not a boolean")
        self.require(on is None or on in OPERATION_KINDS, f"no operation kind {on!r}")
        if when == "now":
            self.require(commit is None, f"a core stopped now has no commit to crash at (commit={commit!r})")
            if self._exists(role, node) and (role, node) not in self.down:
                self.core(role, node)  # (opened if a graceful restart closed it)
                self.crash_restart(role, node, later)
                if not later:
                    self.tick_model(role, node)
            return
        self.require(when in (*faults.WHEN, faults.START) and isinstance(commit, int) and commit >= 1,
                     f"no crash point {when} {commit}")
        self.armed[role, node] = faults.CrashPoint(when, commit)
        self.stays_down[role, node] = later
        self.armed_for[role, node] = on

    # ----- a second process on the same file ---------------------------------------------

    @rule(role=st.sampled_from(ROLES), node=_INDEX, first=_RACING, first_pick=_INDEX, second=_RACING, second_pick=_INDEX,
          boundary=_BOUNDARY, contend=_CONTEND, back=BACK)
    def interleave(self, role, node, first, first_pick, second, second_pick, boundary, contend, back):
        node = self._node(node)
        # contending operations of ``first``'s kind if there are any, else of the other kind
        kinds = (first, *(kind for kind in ("deliver", "submit") if kind != first)) if contend else ()
        race = next((race for kind in kinds if (race := self._contending(kind, back, second_pick))), None)
        if race is not None:
            role, node, x, y = race
            self.do("interleave", role=role, node=node, first=x, second=y, boundary=boundary)
            return
        if first == "deliver" and self.in_flight:  # the message decides which core races
            sent = self.in_flight[first_pick % len(self.in_flight)]
            role, node = sent.role, sent.target
        x = self._racing_operation(role, node, first, first_pick, taken=None)
        y = self._racing_operation(role, node, second, second_pick, taken=x.get("message"))
        self.do("interleave", role=role, node=node, first=x, second=y, boundary=boundary)

    def _contending(self, kind: str, back: int, pick: int) -> tuple[str, int, dict, dict] | None:
        """Two operations on one core that concern one event, ``back`` from the newest, or None
        when there are none of ``kind``: two envelopes in flight to the core about one event
        (``deliver``; the newest such pair is the one whose checks have not gone stale with the
        clock), or one event submitted to a coordinator twice (``submit``; to a coordinator not
        processing it, if there is one: there the checks pass and the race decides)."""
        if kind == "deliver":
            groups: dict[tuple, list[int]] = {}
            for j, sent in enumerate(self.in_flight):
                groups.setdefault((sent.role, sent.target, self.concerned_event(sent)), []).append(j)
            contended = sorted((indices for indices in groups.values() if len(indices) > 1), key=max, reverse=True)
            if not contended:
                return None
            indices = contended[back % len(contended)]
            at = pick % len(indices)
            x, y = indices[at], indices[(at + 1 + pick // len(indices) % (len(indices) - 1)) % len(indices)]
            sent = self.in_flight[x]
            return sent.role, sent.target, {"op": "deliver", "message": x}, {"op": "deliver", "message": y}
        if kind == "submit" and self.events:
            event = len(self.events) - 1 - back % len(self.events)
            nodes = range(len(self.coordinators))
            idle = [i for i in nodes if not self.processing(i, self.events[event])] or list(nodes)
            node = idle[pick % len(idle)]
            return "coordinator", node, {"op": "submit", "event": event}, {"op": "submit", "event": event}
        return None

    def _racing_operation(self, role: str, node: int, kind: str, pick: int, taken: int | None) -> dict[str, Any]:
        if kind == "deliver":
            mine = [j for j, m in enumerate(self.in_flight) if (m.role, m.target) == (role, node) and j != taken]
            if mine:
                return {"op": "deliver", "message": mine[pick % len(mine)]}
        if kind == "submit" and role == "coordinator" and self.events:
            return {"op": "submit", "event": pick % len(self.events)}
        return {"op": "tick"}

    def step_interleave(self, role: str, node: int, first: dict, second: dict, boundary: int) -> None:
        """``first`` on the core, and ``second`` on a second instance of it on the same file,
        at the ``boundary``-th transaction boundary of ``first`` (or after it)."""
        from machines.threshold import Operation

        self.require(role in ROLES and 0 <= node < len(self.signers), f"no {role} {node}")
        self.require(isinstance(boundary, int) and boundary >= 1, f"boundary {boundary!r} is not k >= 1")
        messages = []
        operations = []
        for op in (first, second):
            self.require(isinstance(op, dict) and op.get("op") in OPERATION_KINDS, f"no operation {op!r}")
            if op["op"] == "deliver":
                index = op.get("message")
                self.require(isinstance(index, int) and 0 <= index < len(self.in_flight) and index not in messages,
                             f"no message {index!r} in flight")
                sent = self.in_flight[index]
                self.require((sent.role, sent.target) == (role, node), f"message {index} is not for {role} {node}")
                messages.append(index)
                operations.append(Operation(role, node, "deliver", sent=sent, data=sent.data))
            elif op["op"] == "submit":
                event = op.get("event")
                self.require(role == "coordinator" and isinstance(event, int) and 0 <= event < len(self.events),
                             f"no event {event!r} for {role} {node}")
                operations.append(Operation(role, node, "submit", event=self.events[event]))
            else:
                operations.append(Operation(role, node, "tick"))
        for index in sorted(messages, reverse=True):
            self.delivered.append(self.in_flight.pop(index))
        self.perform(operations[0], operations[1], boundary)
