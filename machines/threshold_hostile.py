"""The threshold machine's peers that lie well: well-formed envelopes the SPEC lets through
the transport checks, carrying what an attacker or a faulty member would send.

``lie`` crafts one of:

* ``outsider_answer``: a non-member answers a live request with a valid signature of its
  own on every input, ``copies`` times over (up to the most a request can use), and a
  refusal reason of the longest allowed length. Nothing of it may be stored and no
  signature of it checked: non-members never count.
* ``too_many_signatures``: a member's answer carrying more signatures than the request has
  (inputs x members) and, at the largest, more than ``MAX_ANSWER_SIGNATURES``: refused
  as undecodable before any is checked.
* ``accept_not_bool``: a member's answer whose verdict is the integer 1, not a boolean:
  refused as undecodable, the refusal naming the field, the kind it holds and the one it got.
* ``odd_signatures``: a faulty member accepts with a list of invalid signatures under its key
  (as long as the request allows): on the input one past the last, on input 0 twice, then on
  every input. It decodes and its accept counts; no signature counts, the input the request
  lacks is never checked, and each (input, member) not held yet is checked once.
* ``expires_at_i64_overflow`` / ``expires_at_u64_max``: a member proposes with
  ``expires_at`` of 2**63 or 2**64 - 1 (MessagePack carries both; SQLite's INTEGER does
  not): refused as undecodable before anything is written (issue 7, defect 10).
* ``outsider_proposal``: a non-member re-sends a genuine proposal to ``member``, sealed with its
  own key under the group's id: refused as "sender is not a member", naming the sender.
* ``seq_no_u64_max`` / ``timestamp_u64_max``: a member re-sends its genuine proposal in a
  fresh envelope whose ``seq_no`` or ``timestamp`` is 2**64 - 1: an envelope like any other
  (the sequence number is stored as text, the timestamp only informs).

Every refusal must leave the receiver's file exactly as it was (a digest of every table,
``Store.digest``), and the work a message causes is bounded: a coordinator checks at most
(inputs x members) signatures for one answer.
"""

from __future__ import annotations

from typing import ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import rule

from harness import guard
from implementations import pskt
from implementations.limits import MAX_ANSWER_SIGNATURES, MAX_REASON_CHARS, U64_MAX
from implementations.threshold import Answer, encode_answer, encode_proposal
from implementations.threshold_envelope import decode_envelope, seal

LIES = ("outsider_answer", "too_many_signatures", "expires_at_i64_overflow", "expires_at_u64_max", "seq_no_u64_max",
        "timestamp_u64_max", "accept_not_bool", "outsider_proposal", "odd_signatures")
#: Lies a receiver must refuse, and the refusal the machine expects.
REFUSED = {"too_many_signatures": "not decodable", "expires_at_i64_overflow": "not decodable",
           "expires_at_u64_max": "not decodable", "accept_not_bool": "not decodable",
           "outsider_proposal": "sender is not a member"}
#: What the refusal of a lie must name (the first: what its text starts with).
NAMES = {"accept_not_bool": ("answer.accept", "expected bool, got int")}
_INDEX = st.integers(0, 63)


class HostileRules:
    """Rules mixed into ``ThresholdMachine`` (which provides the keys, the requests, ``_deliver``)."""

    rule_classes: ClassVar[dict[str, str]] = {"lie": "adversary"}

    @guard(lambda self: bool(self.answerable()))
    @rule(lie=st.sampled_from(LIES), request=_INDEX, member=_INDEX, copies=st.sampled_from([1, 2, 64]))
    def lie(self, lie, request, member, copies):
        alive = self.answerable()
        self.do("lie", lie=lie, request=alive[request % len(alive)], member=self._node(member), copies=copies)

    def step_lie(self, lie: str, request: str, member: int, copies: int) -> None:
        """Send the well-formed lie ``lie`` about ``request`` (see the module)."""
        from machines.threshold import Message

        self.require(lie in LIES and request in self.requests, f"no lie {lie!r} or no request {request!r}")
        self.require(0 <= member < len(self.keys) and isinstance(copies, int) and 1 <= copies <= 64, "bad member or copies")
        self.forged_seq += 1
        seq = self.forged_seq + (1 << 41)
        proposal, owner = self.proposals[request], self.owner[request]
        hashes = pskt.sighashes(proposal.template)
        if lie in ("outsider_answer", "too_many_signatures", "accept_not_bool", "odd_signatures"):
            if lie == "accept_not_bool":
                secret = self.keys[member]
                answer = Answer(request, proposal.event_hash, proposal.template_hash, 1, "", ())
            elif lie == "odd_signatures":
                key, secret = self.pubkeys[member], self.keys[member]
                sigs = [(i, key, bytes(64)) for i in (len(hashes), 0, *range(len(hashes)))]
                answer = Answer(request, proposal.event_hash, proposal.template_hash, True, "",
                                tuple(sigs[: len(hashes) * len(self.keys)]))
            elif lie == "outsider_answer":
                key, secret = bytes(self.outsider.verify_key), self.outsider
                sigs = [(i, key, secret.sign(h).signature) for i, h in enumerate(hashes)] * copies
                answer = Answer(request, proposal.event_hash, proposal.template_hash, False, "x" * MAX_REASON_CHARS,
                                tuple(sigs[: len(hashes) * len(self.keys)]))
            else:
                key, secret = self.pubkeys[member], self.keys[member]
                most = len(hashes) * len(self.keys)
                count = MAX_ANSWER_SIGNATURES + 1 if copies == 64 else most + copies
                sigs = [(i % len(hashes), key, secret.sign(hashes[i % len(hashes)]).signature) for i in range(min(count, most))]
                answer = Answer(request, proposal.event_hash, proposal.template_hash, True, "",
                                tuple(sigs * (count // len(sigs) + 1))[:count])
            data = seal(secret, self.config.group_id, request, seq, self.now, encode_answer(answer))
            self._lie_to("coordinator", owner, Message("coordinator", owner, data), REFUSED.get(lie), len(hashes),
                         NAMES.get(lie, ()))
            return
        # a member (the request's coordinator, or a faulty one) re-sends the proposal to ``member``
        sender = self.outsider if lie == "outsider_proposal" else self.keys[owner]
        timestamp = U64_MAX if lie == "timestamp_u64_max" else self.now
        if lie.startswith("expires_at"):
            expires_at = 2**63 if lie == "expires_at_i64_overflow" else U64_MAX
            payload = encode_proposal(_with_expiry(proposal, expires_at))
        else:  # the genuine proposal, in an envelope at the edge of the integers
            payload = encode_proposal(proposal)
            seq = U64_MAX if lie == "seq_no_u64_max" else seq
        data = seal(sender, self.config.group_id, request, seq, timestamp, payload)
        self._lie_to("signer", member, Message("signer", member, data), REFUSED.get(lie), len(hashes))

    def _lie_to(self, role: str, node: int, sent, refusal: str | None, n_inputs: int, names: tuple[str, ...] = ()) -> None:
        self.wake(role, node)  # a core down since a crash ticks first when it is back: not the lie's doing
        core = self.core(role, node)
        before = core.store.digest()
        checked = getattr(core, "signatures_checked", 0)  # a coordinator's count of signature checks
        expected = 0 if role != "coordinator" or refusal is not None else self.new_member_signatures(node, sent.data)
        self._deliver(sent, sent.data, expect=refusal, names=names)
        if refusal is not None or decode_envelope(sent.data).sender not in self.pubkeys:
            after = self.core(role, node).store.digest()
            assert after == before, f"{role} {node} changed its file for a message it must refuse or ignore"
        if role == "coordinator" and self.core(role, node) is core:
            work = core.signatures_checked - checked
            assert work <= n_inputs * len(self.keys), f"one answer cost {work} signature checks ({n_inputs} inputs)"
            assert work == expected, (f"coordinator {node} made {work} signature checks for one answer carrying {expected} "
                                      f"signatures by members on inputs of the request it does not hold yet")


def _with_expiry(proposal, expires_at: int):
    import dataclasses

    return dataclasses.replace(proposal, expires_at=expires_at)
