"""The threshold machine's steps in the domain's words, for the step-by-step report.

Every step names its actors (``coordinator 0``, ``signer 2``, ``an outsider``) and its
payload: which event (``e1``, in the order the machine made them), which request (``r0``,
in the order coordinators opened them, never the request id's hex), whose proposal or
answer a message carries and what it says, where the clock lands against the deadlines
ahead (a request's expiry and settlement, UTC midnight), which cores tick.
"""

from __future__ import annotations

from typing import Any

from harness.trace import Step
from implementations import pskt
from implementations.threshold import decode_answer, decode_proposal
from implementations.threshold_envelope import decode_envelope
from implementations.wire import DecodeError
from models import threshold as model
from models.clock import NS_PER_DAY, NS_PER_SECOND


def duration(ns: int) -> str:
    """``ns`` as people read it: ``1 day``, ``30 s``, ``30 s + 1 ns``, ``1 ns``."""
    if ns and ns % NS_PER_DAY == 0:
        return f"{ns // NS_PER_DAY} day" + ("s" if ns > NS_PER_DAY else "")
    seconds, rest = divmod(ns, NS_PER_SECOND)
    if not seconds:
        return f"{rest} ns"
    if rest > NS_PER_SECOND // 2:  # just before a whole second: say so
        return f"{seconds + 1} s - {NS_PER_SECOND - rest} ns"
    return f"{seconds} s" + (f" + {rest} ns" if rest else "")


class ThresholdReport:
    """``describe_step`` mixed into ``ThresholdMachine`` (which holds the state it reads)."""

    def request_name(self, request_id: str) -> str:
        names = list(self.requests)
        return f"r{names.index(request_id)}" if request_id in names else f"an unknown request ({request_id[:8]}…)"

    def event_name(self, event_hash: str) -> str:
        """``e1``: the event whose hash (hex) this is, by the order the machine made them."""
        names = [pskt.event_hash(event).hex() for event in self.events]
        return f"e{names.index(event_hash)}" if event_hash in names else f"an unknown event ({event_hash[:8]}…)"

    def member_name(self, key: bytes, role: str) -> str:
        return f"{role} {self.pubkeys.index(key)}" if key in self.pubkeys else "an outsider"

    def signers_named(self, keys_per_input: list[list[bytes]]) -> str:
        """Whose signatures each input carries: ``[signer 0, signer 2] [signer 1, signer 2]``."""
        inputs = [", ".join(self.member_name(key, "signer") for key in keys) for keys in keys_per_input]
        return f"{' '.join(f'[{names}]' for names in inputs)}"

    def message_text(self, message: Any, data: bytes | None = None) -> str:
        """Who sent what to whom, from the envelope's bytes."""
        try:
            env = decode_envelope(message.data if data is None else data)
        except DecodeError:
            return f"undecodable bytes for {message.role} {message.target}"
        try:
            if message.role == "signer":
                p = decode_proposal(env.payload)
                return (f"{self.member_name(env.sender, 'coordinator')}'s proposal of request {self.request_name(p.request_id)} "
                        f"({p.event.amount} sompi, {len(p.template.inputs)} input(s)) to signer {message.target}")
            a = decode_answer(env.payload)
        except DecodeError:
            return f"an envelope for {message.role} {message.target} whose payload does not decode"
        verdict = "accepts" if a.accept else f"refuses ({a.reason[:40]})"
        return (f"{self.member_name(env.sender, 'signer')}'s answer to coordinator {message.target}: {verdict} request "
                f"{self.request_name(a.request_id)}, {len(a.signatures)} signature(s)")

    def clock_text(self, ns: int) -> str:
        """Where the clock lands: against the deadlines ahead, to the nanosecond."""
        then = self.now + ns
        marks = []
        for rid, request in self.requests.items():
            for what, at in (("expiry", request.expires_at), ("settlement", request.expires_at + model.SKEW_NS)):
                if abs(then - at) <= NS_PER_SECOND:
                    off = then - at
                    where = "at" if off == 0 else (f"{duration(-off)} before" if off < 0 else f"{duration(off)} after")
                    marks.append(f"{where} {self.request_name(rid)}'s {what}")
        if then % NS_PER_DAY in (0, NS_PER_DAY - 1):
            marks.append("at UTC midnight" if then % NS_PER_DAY == 0 else "1 ns before UTC midnight")
        return f"the clock moves {duration(ns)}" + (f" ({', '.join(marks)})" if marks else "")

    def describe_step(self, step: Step) -> str:
        a, rule = step.args, step.rule
        try:
            return self._describe(rule, a)
        except (IndexError, KeyError, TypeError, ValueError, AttributeError):
            return step.describe()  # a step that does not fit the state: the raw step says it best

    def _describe(self, rule: str, a: dict) -> str:
        if rule == "start":
            return f"start: a {a['group']} group, fee mode {a['fee_mode']}, node order seed {a['order_seed']}"
        if rule == "new_event":
            return f"coordinator {a['coordinator']} is given a new event e{len(self.events)}: pay {a['amount']} sompi"
        if rule == "resubmit":
            return f"coordinator {a['coordinator']} is given event e{a['event']} again"
        if rule == "fund":
            return f"the faucet gives the group a coin of {a['amount']} sompi"
        if rule == "foreign_ledger_row":
            what = "each row no correct writer makes, one at a time" if a.get("how") is None else (
                f"a row no correct writer makes ({a['how'].replace('_', ' ')})")
            return f"another process writes into the group's ledger file {what}, and takes it out again"
        if rule in ("deliver", "drop", "duplicate"):
            verb = {"deliver": "deliver", "drop": "the network loses", "duplicate": "the network duplicates"}[rule]
            return f"{verb} {self.message_text(self.in_flight[a['message']])}"
        if rule == "deliver_many":
            return "deliver, oldest first: " + "; ".join(self.message_text(m) for m in self.in_flight[: a["count"]])
        if rule == "settle":
            from machines.threshold import SETTLE_AT_MOST

            return (f"the network is calm: the messages in flight to cores that are up arrive, oldest first, and the answers "
                    f"they cause (at most {SETTLE_AT_MOST})")
        if rule == "redeliver":
            return f"deliver again {self.message_text(self.delivered[a['message']])}"
        if rule == "tamper":
            sent = (self.delivered + self.in_flight)[a["message"]]
            return f"the attacker tampers with the {a['how']} of {self.message_text(sent)}"
        if rule == "forge":
            return self._forgery(a["request"], a["kind"], a["member"], a.get("inputs"))
        if rule == "lie":
            return (f"a well-formed lie ({a['lie'].replace('_', ' ')}) about request {self.request_name(a['request'])}, "
                    f"member {a['member']}, {a['copies']} cop{'y' if a['copies'] == 1 else 'ies'}")
        if rule == "spoil":
            sent = (self.delivered + self.in_flight)[a["message"]]
            return f"the attacker re-sends, sealed by its sender, {self.message_text(sent)} with its {a['how'].replace('_', ' ')}"
        if rule == "advance_clock":
            ticks = a.get("ticks")
            who = "every core ticks" if ticks is None else (
                "no core ticks" if not ticks else "then " + ", ".join(f"{r} {i}" for r, i in ticks) + " tick")
            return f"{self.clock_text(a['ns'])}; {who}"
        if rule == "restart":
            return f"{a['role']} {a['node']} restarts"
        if rule == "crash":
            if a["when"] == "now":
                return f"{a['role']} {a['node']} stops now" + (" and stays down until next used" if a.get("later") else
                                                              " and restarts at once")
            where = (f"at the start of its transaction {a['commit']}" if a["when"] == "start"
                     else f"{a['when']} its commit {a['commit']}")
            return (f"{a['role']} {a['node']}'s next {'delivery' if a.get('on') == 'deliver' else 'operation'} "
                    f"{'' if a.get('on') in (None, 'deliver') else '(' + a['on'] + ') '}crashes {where}"
                    + (" and stays down until next used" if a.get("later") else ""))
        if rule == "interleave":
            return (f"two processes of {a['role']} {a['node']}: {self._racing(a['first'])}, and at its transaction boundary "
                    f"{a['boundary']} {self._racing(a['second'])} on the same file")
        raise KeyError(rule)

    def _forgery(self, request: str, kind: str, member: int, inputs: list | None) -> str:
        """Who forges what on which inputs, and what the answer carries on the others."""
        wrong = {"non_member": "an outsider's signatures", "bad_signature": f"invalid bytes under member {member}'s key",
                 "other_template": f"member {member}'s signatures over another template",
                 "copy": "copies of a member's genuine signatures seen on the wire",
                 "faulty_member": "invalid bytes"}[kind]
        who = f"signer {member} (faulty)" if kind == "faulty_member" else "the attacker"
        where = "every input" if inputs is None else f"input{'s' if len(inputs) > 1 else ''} {', '.join(map(str, inputs))}"
        rest = ""
        if inputs is not None and kind != "copy":
            rest = ("; its genuine signatures on the others" if kind == "faulty_member"
                    else f"; member {member}'s genuine signatures seen on the wire (if any) on the others")
        return (f"{who} sends coordinator {self.owner[request]} an answer accepting request {self.request_name(request)}: "
                f"{wrong} on {where}{rest}")

    def _racing(self, op: dict) -> str:
        if op["op"] == "deliver":
            return f"one handles {self.message_text(self.in_flight[op['message']])}"
        if op["op"] == "submit":
            return f"one is given event e{op['event']}"
        return "one ticks"
