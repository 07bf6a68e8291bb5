"""The threshold machine's genuinely signed envelopes whose payload has one field spoiled.

``spoil`` takes a proposal or an answer the network carried (in flight or delivered), decodes
its payload to the MessagePack message ``[kind, version, body]``, spoils ONE field of it (see
``SPOILED``), re-encodes it and seals it with its sender's genuine key under a fresh sequence
number: the envelope passes every transport check, and only the payload is wrong. What must
happen, from the table:

* a field of the wrong type, one byte short or long, a number negative or over its bound, a
  body or signature item of the wrong length, too many signatures, a reason or request id
  over its limit, the wrong kind or version: refused as not decodable, the error *starting*
  with the field's name (``proposal.round: ...``, ``answer.signatures[2].key: ...``) and
  saying what is wrong; the receiver's file is left exactly as it was (``_lie_to``);
* a well-formed value that is wrong (another event hash, template hash or validation hash, an
  ``expires_at`` at either end of the signer's window or 1 ns past it): it decodes, and a signer
  that has not answered the request yet refuses it as the model's check order says, or takes it
  (and settles it by that expiry); an answer about another event or template counts nothing;
* a field exactly at its limit (``expires_at`` of 0 or I64_MAX, ``round`` of 2^32 - 1, a
  reason of MAX_REASON_CHARS characters, a signature's input of 2^32 - 1): it decodes, and the
  receiver does with that content what the model says (a signer refuses the expiry or the
  template it cannot rebuild; a coordinator counts the member's answer, never a signature on an
  input the request does not have);
* a request id that is not the envelope's session: refused naming the payload;
* exactly MAX_ANSWER_SIGNATURES signatures: decodes, then the coordinator refuses it for more
  signatures than the request's inputs x members, naming the answer, not the signature list.

The machine builds nothing with the implementation's decoders beyond ``wire``'s plain
MessagePack framing; the fields' order is the SPEC's (``implementations.threshold`` encodes it).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import rule

from harness import guard
from implementations import wire
from implementations.limits import I64_MAX, MAX_ANSWER_SIGNATURES, MAX_REASON_CHARS, MAX_SESSION_ID_CHARS
from implementations.threshold_envelope import decode_envelope, seal
from models.threshold import MAX_LIFETIME_NS, SKEW_NS

PROPOSAL, ANSWER = ("igra.proposal", 1), ("igra.answer", 1)
#: A signature item put in an answer that has none, to spoil (a refusal carries no signature).
_ZERO_SIG = bytes(64)
U32_MAX = 2**32 - 1

#: Where a spoiling applies: ("kind",), ("version",), ("body",), ("body", i), or ("sig", j): item
#: j of an answer's signature list (-1: its last item, added if the list is empty), ("sig", j, k):
#: field k of that item, ("sigs",): the whole list.
#: Each case: (payload, where, spoil of the genuine value and the clock's now, refusal or None if it decodes, what the
#: refusal's text must name, the first being what it starts with; ``{last}`` is the index of the
#: last signature item).
SPOILED: dict[str, tuple[str, tuple, Callable[[Any], Any], str | None, tuple[str, ...]]] = {
    # --- proposals (a coordinator's, to a signer): [request_id, event, event_hash, template,
    # template_hash, validation_hash, expires_at, round]
    "proposal_kind": ("proposal", ("kind",), lambda v, now: "igra.answer", "not decodable",
                      ("igra.proposal", "of kind 'igra.answer'")),  # another kind of message
    "proposal_version": ("proposal", ("version",), lambda v, now: 2, "not decodable", ("igra.proposal", "version 2")),
    "proposal_body_short": ("proposal", ("body",), lambda v, now: v[:-1], "not decodable",
                           ("proposal", "expected 8 items, got 7")),
    "proposal_body_long": ("proposal", ("body",), lambda v, now: [*v, 0], "not decodable",
                          ("proposal", "expected 8 items, got 9")),
    "request_id_not_str": ("proposal", ("body", 0), lambda v, now: v.encode(), "not decodable",
                           ("proposal.request_id", "expected str, got bytes")),
    "request_id_not_session": ("proposal", ("body", 0), lambda v, now: v + "x", "not decodable",
                               ("proposal", "is not the envelope's session")),  # well-formed, another request
    "request_id_over_limit": ("proposal", ("body", 0), lambda v, now: "r" * (MAX_SESSION_ID_CHARS + 1), "not decodable",
                              ("proposal.request_id", "MAX_SESSION_ID_CHARS")),  # one character over
    "event_not_bytes": ("proposal", ("body", 1), lambda v, now: v.hex(), "not decodable",
                        ("proposal.event", "expected bytes, got str")),
    "event_hash_short": ("proposal", ("body", 2), lambda v, now: v[:-1], "not decodable",
                         ("proposal.event_hash", "expected 32 bytes, got 31")),
    "event_hash_long": ("proposal", ("body", 2), lambda v, now: v + b"\0", "not decodable",
                        ("proposal.event_hash", "expected 32 bytes, got 33")),
    "event_hash_other": ("proposal", ("body", 2), lambda v, now: bytes([v[0] ^ 1]) + v[1:], None, ()),  # decodes; not the event's
    "template_not_bytes": ("proposal", ("body", 3), lambda v, now: v.hex(), "not decodable",
                           ("proposal.template", "expected bytes, got str")),
    "template_hash_short": ("proposal", ("body", 4), lambda v, now: v[:-1], "not decodable",
                            ("proposal.template_hash", "expected 32 bytes, got 31")),
    "template_hash_long": ("proposal", ("body", 4), lambda v, now: v + b"\0", "not decodable",
                           ("proposal.template_hash", "expected 32 bytes, got 33")),
    "template_hash_other": ("proposal", ("body", 4), lambda v, now: bytes([v[0] ^ 1]) + v[1:], None, ()),  # decodes
    "validation_hash_other": ("proposal", ("body", 5), lambda v, now: bytes([v[0] ^ 1]) + v[1:], None, ()),  # decodes
    "validation_hash_short": ("proposal", ("body", 5), lambda v, now: v[:-1], "not decodable",
                              ("proposal.validation_hash", "expected 32 bytes, got 31")),
    "validation_hash_long": ("proposal", ("body", 5), lambda v, now: v + b"\0", "not decodable",
                             ("proposal.validation_hash", "expected 32 bytes, got 33")),
    "expires_at_negative": ("proposal", ("body", 6), lambda v, now: -1, "not decodable",
                           ("proposal.expires_at", "-1 is outside")),
    "expires_at_not_int": ("proposal", ("body", 6), lambda v, now: str(v), "not decodable",
                           ("proposal.expires_at", "expected int, got str")),
    "expires_at_zero": ("proposal", ("body", 6), lambda v, now: 0, None, ()),  # decodes; outside the window
    # decode, at the first and the last instant of the signer's window (taken if the rest holds)
    "expires_at_earliest": ("proposal", ("body", 6), lambda v, now: now - SKEW_NS, None, ()),
    "expires_at_latest": ("proposal", ("body", 6), lambda v, now: now + MAX_LIFETIME_NS + SKEW_NS, None, ()),
    "expires_at_past_latest": ("proposal", ("body", 6), lambda v, now: now + MAX_LIFETIME_NS + SKEW_NS + 1, None, ()),
    "expires_at_i64_max": ("proposal", ("body", 6), lambda v, now: I64_MAX, None, ()),  # decodes; outside the window
    "round_negative": ("proposal", ("body", 7), lambda v, now: -1, "not decodable", ("proposal.round", "-1 is outside")),
    "round_over_u32": ("proposal", ("body", 7), lambda v, now: U32_MAX + 1, "not decodable",
                       ("proposal.round", f"{U32_MAX + 1} is outside")),
    "round_at_u32_max": ("proposal", ("body", 7), lambda v, now: U32_MAX, None, ()),  # decodes; another template
    "round_bool": ("proposal", ("body", 7), lambda v, now: True, "not decodable", ("proposal.round", "expected int, got bool")),
    # --- answers (a signer's, to the coordinator): [request_id, event_hash, template_hash, accept,
    # reason, signatures], a signature [input, key, signature]
    "answer_kind": ("answer", ("kind",), lambda v, now: "igra.proposal", "not decodable",
                    ("igra.answer", "of kind 'igra.proposal'")),
    "answer_version": ("answer", ("version",), lambda v, now: 0, "not decodable", ("igra.answer", "version 0")),
    "answer_body_short": ("answer", ("body",), lambda v, now: v[:-1], "not decodable", ("answer", "expected 6 items, got 5")),
    "answer_body_long": ("answer", ("body",), lambda v, now: [*v, []], "not decodable", ("answer", "expected 6 items, got 7")),
    "answer_request_id_not_str": ("answer", ("body", 0), lambda v, now: v.encode(), "not decodable",
                                  ("answer.request_id", "expected str, got bytes")),
    "answer_request_id_not_session": ("answer", ("body", 0), lambda v, now: v + "x", "not decodable",
                                      ("answer", "is not the envelope's session")),
    "answer_request_id_over_limit": ("answer", ("body", 0), lambda v, now: "r" * (MAX_SESSION_ID_CHARS + 1), "not decodable",
                                     ("answer.request_id", "MAX_SESSION_ID_CHARS")),
    "answer_event_hash_short": ("answer", ("body", 1), lambda v, now: v[:-1], "not decodable",
                                ("answer.event_hash", "expected 32 bytes, got 31")),
    "answer_event_hash_not_bytes": ("answer", ("body", 1), lambda v, now: v.hex(), "not decodable",
                                    ("answer.event_hash", "expected bytes, got str")),
    # decode; an answer about another event or template: nothing of it counts, not even the verdict
    "answer_event_hash_other": ("answer", ("body", 1), lambda v, now: bytes([v[0] ^ 1]) + v[1:], None, ()),
    "answer_template_hash_other": ("answer", ("body", 2), lambda v, now: bytes([v[0] ^ 1]) + v[1:], None, ()),
    "answer_template_hash_short": ("answer", ("body", 2), lambda v, now: v[:-1], "not decodable",
                                   ("answer.template_hash", "expected 32 bytes, got 31")),
    "answer_template_hash_long": ("answer", ("body", 2), lambda v, now: v + b"\0", "not decodable",
                                  ("answer.template_hash", "expected 32 bytes, got 33")),
    "accept_not_bool": ("answer", ("body", 3), lambda v, now: int(v), "not decodable",
                       ("answer.accept", "expected bool, got int")),
    "reason_not_str": ("answer", ("body", 4), lambda v, now: v.encode(), "not decodable",
                       ("answer.reason", "expected str, got bytes")),
    "reason_over_limit": ("answer", ("body", 4), lambda v, now: "r" * (MAX_REASON_CHARS + 1), "not decodable",
                          ("answer.reason", f"{MAX_REASON_CHARS + 1} characters exceeds MAX_REASON_CHARS={MAX_REASON_CHARS}")),
    "reason_at_limit": ("answer", ("body", 4), lambda v, now: "r" * MAX_REASON_CHARS, None, ()),  # decodes; counts as given
    "signatures_not_list": ("answer", ("sigs",), lambda v, now: b"", "not decodable", ("answer.signatures", "expected array")),
    "signatures_over_limit": ("answer", ("sigs",), lambda v, now: [v[-1]] * (MAX_ANSWER_SIGNATURES + 1), "not decodable",
                              ("answer.signatures", f"{MAX_ANSWER_SIGNATURES + 1} signatures exceeds "
                                                    f"MAX_ANSWER_SIGNATURES={MAX_ANSWER_SIGNATURES}")),
    # decodes, then more than inputs x members for the request: refused naming the answer
    "signatures_at_limit": ("answer", ("sigs",), lambda v, now: [v[-1]] * MAX_ANSWER_SIGNATURES, "not decodable",
                            ("answer", f"{MAX_ANSWER_SIGNATURES} signatures for")),
    "signature_item_not_list": ("answer", ("sig", -1), lambda v, now: b"", "not decodable",
                                ("answer.signatures[{last}]", "expected array")),
    "signature_item_short": ("answer", ("sig", -1), lambda v, now: v[:-1], "not decodable",
                             ("answer.signatures[{last}]", "expected 3 items, got 2")),
    "signature_item_long": ("answer", ("sig", -1), lambda v, now: [*v, 0], "not decodable",
                            ("answer.signatures[{last}]", "expected 3 items, got 4")),
    "signature_input_negative": ("answer", ("sig", -1, 0), lambda v, now: -1, "not decodable",
                                 ("answer.signatures[{last}].input", "-1 is outside")),
    "signature_input_over_u32": ("answer", ("sig", -1, 0), lambda v, now: U32_MAX + 1, "not decodable",
                                 ("answer.signatures[{last}].input", f"{U32_MAX + 1} is outside")),
    "signature_input_at_u32_max": ("answer", ("sig", -1, 0), lambda v, now: U32_MAX, None, ()),  # decodes; an input it lacks
    "signature_input_not_int": ("answer", ("sig", -1, 0), lambda v, now: str(v), "not decodable",
                                ("answer.signatures[{last}].input", "expected int, got str")),
    "signature_key_short": ("answer", ("sig", -1, 1), lambda v, now: v[:-1], "not decodable",
                            ("answer.signatures[{last}].key", "expected 32 bytes, got 31")),
    "signature_key_not_bytes": ("answer", ("sig", -1, 1), lambda v, now: v.hex(), "not decodable",
                                ("answer.signatures[{last}].key", "expected bytes, got str")),
    "signature_short": ("answer", ("sig", -1, 2), lambda v, now: v[:-1], "not decodable",
                        ("answer.signatures[{last}].signature", "expected 64 bytes, got 63")),
    "signature_long": ("answer", ("sig", -1, 2), lambda v, now: v + b"\0", "not decodable",
                       ("answer.signatures[{last}].signature", "expected 64 bytes, got 65")),
}
#: Spoiled envelopes use sequence numbers far above any genuine, forged or lying one.
SPOILED_SEQ = 1 << 42
_INDEX = st.integers(0, 63)


def spoiled_message(message: list, how: str, sender: bytes, now: int) -> tuple[list, int]:
    """``message`` (``[kind, version, body]``, decoded) with the field of ``how`` spoiled, and
    the index of the answer's last signature item (the one a ``sig`` spoiling changes)."""
    _, where, spoil, _, _ = SPOILED[how]
    out = copy.deepcopy(message)
    kind, version, body = out
    if where == ("kind",):
        out[0] = spoil(kind, now)
    elif where == ("version",):
        out[1] = spoil(version, now)
    elif where == ("body",):
        out[2] = spoil(body, now)
    elif where[0] == "body":
        body[where[1]] = spoil(body[where[1]], now)
    sigs = body[5] if len(body) == 6 and isinstance(body[5], list) else []
    if where[0] in ("sig", "sigs") and not sigs:  # a refusal: one well-formed signature to spoil
        sigs = body[5] = [[0, sender, _ZERO_SIG]]
    last = len(sigs) - 1
    if where == ("sigs",):
        body[5] = spoil(sigs, now)
    elif where[0] == "sig" and len(where) == 2:
        sigs[last] = spoil(sigs[last], now)
    elif where[0] == "sig":
        sigs[last][where[2]] = spoil(sigs[last][where[2]], now)
    return out, last


class SpoilRules:
    """The ``spoil`` rule, mixed into ``ThresholdMachine`` (which provides the messages, the
    keys and ``_lie_to``, the delivery that checks a refusal left the file as it was)."""

    rule_classes: ClassVar[dict[str, str]] = {"spoil": "adversary"}

    @guard(lambda self: bool(self.delivered or self.in_flight))
    @rule(message=_INDEX, how=st.sampled_from(sorted(SPOILED)))
    def spoil(self, message, how):
        known = self.delivered + self.in_flight
        role = "signer" if SPOILED[how][0] == "proposal" else "coordinator"
        fitting = [k for k, sent in enumerate(known) if sent.role == role]
        fitting = [fitting[k] for k in self.to_up([known[k] for k in fitting])]  # (to a core that is up, if any)
        if not fitting:  # no payload of that kind on the wire yet: the same spoiling's turn, on the other kind
            payload = "answer" if role == "signer" else "proposal"
            others = sorted(name for name, case in SPOILED.items() if case[0] == payload)
            how = others[sorted(SPOILED).index(how) % len(others)]
            fitting = self.to_up(known)
        self.do("spoil", message=fitting[message % len(fitting)], how=how)

    def step_spoil(self, message: int, how: str) -> None:
        """Re-send the payload of message ``message`` (of the delivered, then those in flight) to
        its receiver with one field spoiled as ``how`` says, sealed by its genuine sender."""
        from machines.threshold import Message

        known = self.delivered + self.in_flight
        self.require(how in SPOILED and 0 <= message < len(known), f"no message {message} or no spoiling {how!r}")
        sent = known[message]
        payload, _, _, refusal, names = SPOILED[how]
        self.require(sent.role == ("signer" if payload == "proposal" else "coordinator"),
                     f"message {message} carries no {payload}")
        env = decode_envelope(sent.data)
        kind, version = PROPOSAL if payload == "proposal" else ANSWER
        spoilt, last = spoiled_message([kind, version, wire.decode(env.payload, kind, version)], how, env.sender, self.now)
        self.forged_seq += 1
        secret = self.keys[self.pubkeys.index(env.sender)]
        data = seal(secret, self.config.group_id, env.session_id, SPOILED_SEQ + self.forged_seq, self.now,
                    wire.encode(*spoilt))
        n_inputs = len(self.proposals[env.session_id].template.inputs)
        self._lie_to(sent.role, sent.target, Message(sent.role, sent.target, data), refusal, n_inputs,
                     tuple(name.format(last=last) for name in names))
