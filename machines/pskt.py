"""PSKT templates and the node that accepts them: ``models.pskt`` + ``models.ledger`` against
``implementations.pskt`` + ``implementations.ledger``.

A group (1-of-1, 2-of-3 or 3-of-5, keys from fixed seeds, plus one outsider key) holds coins
on one node. Each payment is an event; every signer of the group rebuilds its template from
the node's UTXOs listed in an order of its own (a seeded shuffle per signer), and all of them
must build the model's template exactly (or all refuse it, with the model's reason). The
template is then possibly tampered with (an input's amount changed, an unknown input, an
input repeated, outputs above inputs), signed by a drawn list of keys (members, the
outsider, a key twice; genuine signatures, signatures over another template, garbage;
sometimes skipping one input) and submitted. The node must accept or refuse it exactly as
the model says, with the model's reason, and afterwards hold exactly the model's coins, so a
payment's change is spent by later payments. Accepted transactions are re-submitted
(a double spend) and the faucet adds coins between payments.

Every template built must have the model's canonical bytes, sighashes (also computed
without the template hash passed in), validation hash and a member's signatures over them,
and decode to itself; the event's canonical fields likewise. A signer's refusal names the
amounts it refuses. A caller's mistakes with the values (``bad_value``: an event, UTXO,
output or fee split out of range or of the wrong type, a node listing a coin twice) are
refused naming what is wrong, and the values at the edges beside them taken; a peer's
spoiled bytes of a template or an event (``spoil``: cut short in each field, a byte too many,
another magic or version, more inputs than bytes, an empty or non-UTF-8 text, metadata out of
order) are refused naming the field and its offset.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from typing import ClassVar

import blake3
import nacl.signing
from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

from harness import TracedMachine, guard, machine_test
from harness.machine import Observation
from harness.trace import shorten
from implementations import pskt
from implementations.ledger import LedgerError, MultisigGroup
from implementations.wire import DecodeError
from machines import spec_edges
from machines.ledger_checks import check_bad_faucet_amounts
from models import ledger as node_model
from models import pskt as model

GROUPS = ((1, 1), (2, 3), (3, 5))
DESTINATIONS = ("kaspa:alice", "kaspa:bob", "kaspa:carol")
#: The SPEC's fee modes, and splits whose parts sit on their edges (0, u32 max, odd ratios: ``machines.spec_z3``).
FEE_MODES = tuple(dict.fromkeys(("recipient", "signers", "split:1:2", "split:3:1", *spec_edges.FEE_MODES)))
#: What a group may hold: no sum of sompi reaches 2**63 (Kaspa's whole supply is below it, ``models/pskt.py``).
MAX_HOLDINGS = 2**63 - 1
U32_MAX = 2**32 - 1
#: A coin: mostly a few thousand sompi (payments then need several), else one z3 found on an
#: edge, or anything up to 2**62.
COINS = st.one_of(st.integers(1, 5_000), st.integers(1, 5_000), st.sampled_from(spec_edges.COINS), st.integers(1, 2**62))
#: A fee: small ones (5: exactly the minimum fee ``start`` may give a node), the ones z3 found
#: on an edge (shares past 2**53 among them), any up to 2**62.
FEES = st.one_of(st.sampled_from([0, 3, 5, 10, 101]), st.sampled_from(spec_edges.FEES), st.integers(0, 2**62),
                 st.sampled_from(["node-minimum", "below-node-minimum"]))  # this node's own edge (``decode_fee``)
#: Amounts named by what they are next to (see ``decode_amount``).
AMOUNT_EDGES = ("all", "all-but-fee", "one-short", "fee-share", "below-fee-share", "zero")
#: A signature: genuine, over another template, 64 bytes of garbage, or genuine but one byte short.
SIGNATURE_KINDS = ("genuine", "other-template", "garbage", "truncated")
#: How a caller may build a group wrongly (``bad_group``).
BAD_GROUPS = ("short-key", "bytearray-key", "repeated-key", "threshold-zero", "threshold-above-keys")
#: How a payment's template is spoiled before it is signed: an input's amount, an input the
#: node never made, an input twice, outputs above the inputs, an input of a coin no group
#: owns (a recipient's), no outputs at all, or (after signing) one signature list too few.
TAMPERINGS = ("none", "amount", "unknown-input", "repeat-input", "outputs-exceed", "foreign-input", "no-outputs",
              "signature-list-missing")
#: A caller's mistakes with the template's values (``bad_value``): each must be refused with an
#: error naming what is wrong; the values at the edges beside them (``…-longest``, ``split-even``,
#: ...) must be taken as they are.
BAD_VALUES = (
    "event-source-bytes", "event-external-id-int", "event-destination-empty", "event-destination-too-long",
    "event-destination-longest", "event-destination-one-byte", "event-amount-over", "event-amount-negative",
    "event-amount-bool", "event-timestamp-over", "event-timestamp-longest", "event-metadata-dict",
    "event-metadata-not-strings", "event-metadata-not-pairs", "event-metadata-duplicate",
    "utxo-short-txid", "utxo-index-over", "utxo-index-longest", "utxo-amount-over",
    "output-empty-address", "output-address-one-byte", "output-address-too-long", "output-address-longest",
    "output-address-bytes",
    "output-amount-negative", "split-zero", "split-recipient-over", "split-signer-negative", "split-signer-only",
    "split-even", "split-largest", "fee-over", "round-over", "fee-mode-unknown", "listed-twice",
)
#: How a peer's bytes of the last payment's template or event are spoiled (``spoil``): cut short
#: inside a field, a byte too many, another magic or version, more inputs than the bytes hold, an
#: address emptied or not UTF-8, metadata keys out of order or repeated, an empty destination,
#: text instead of bytes. Each must be refused naming the field and its offset; the same bytes
#: as a bytearray or a memoryview decode as the bytes do.
SPOILS = ("template-cut", "template-trailing", "template-magic", "template-version", "template-inputs",
          "template-empty-address", "template-bad-utf8", "template-text", "template-bytearray",
          "event-cut", "event-trailing", "event-unsorted", "event-repeated-key", "event-bad-utf8",
          "event-empty-destination", "event-text", "event-memoryview")


def hash32(data: bytes) -> bytes:
    return blake3.blake3(data).digest()


#: Key ``i`` of every group (the member ``i``, or the outsider of an ``i``-member group), from fixed seeds.
KEYS = tuple(nacl.signing.SigningKey(hash32(b"pskt-machine-key" + bytes([i]))) for i in range(max(n for _, n in GROUPS) + 1))
PUBKEYS = tuple(key.verify_key.encode() for key in KEYS)


@functools.lru_cache(maxsize=1 << 14)
def signature_of(key: int, message: bytes) -> bytes:
    """Key ``key``'s Ed25519 signature of ``message``, remembered: Ed25519 signatures are
    deterministic, and the examples of a run sign the same templates again and again."""
    return KEYS[key].sign(message).signature


def mode_named(name: str, models: bool = False):
    """The fee mode called ``name``, of the model (``models=True``, remembered: every payment
    names one) or of the implementation (built anew each time: a mode remembered from an earlier
    example would never run ``Split``'s own checks again)."""
    return _model_mode(name) if models else _mode(name, pskt)


@functools.lru_cache(maxsize=64)
def _model_mode(name: str):
    return _mode(name, model)


def _mode(name: str, ns):
    if name == "recipient":
        return ns.RecipientPays()
    if name == "signers":
        return ns.SignersPay()
    _, rp, sp = name.split(":")
    return ns.Split(int(rp), int(sp))


# ----- what ``pay`` draws ------------------------------------------------------------------
#
# Built once, here: strategies built inside a rule are rebuilt and re-validated by Hypothesis
# on every call (that made this machine six times slower per step than the OR-Set machine).
# And few draws: each choice Hypothesis makes costs about as much as a cheap step, so a
# value with several parts is drawn as one integer and decoded (``decode_*`` below); each
# decoding maps 0, where Hypothesis shrinks to, to the simplest case.

#: One noisy signature, ``key + 6 * (kind + 3 * (skip + 1))``: see ``decode_noise``.
NOISE = st.lists(st.integers(0, 6 * len(SIGNATURE_KINDS) * 5 - 1), max_size=6)
#: Who signs, beside the members' order (``decode_order``): mostly an honest quorum of m + k
#: members; else one member short, made up by a repeated member or by the outsider; a quorum
#: plus noise; noise alone; or a quorum one of whom leaves out a later input (a multi-input
#: transaction whose first input alone is fully signed: noise alone made it in about one
#: payment in a thousand).
SIGNER_PLANS = st.one_of(
    st.tuples(st.just("quorum"), st.integers(0, 4)),
    st.just(("repeated", 0)),
    st.just(("outsider", 0)),
    st.tuples(st.just("quorum+noise"), NOISE),
    st.tuples(st.just("anyone"), NOISE),
    st.tuples(st.just("quorum-skips"), st.integers(0, 15)),
)
#: A payment's fee mode, round and tampering, as one choice: each combination as likely as
#: three uniform draws would make it (untampered six times in ten, however many tamperings
#: there are: a search with more of them fell back to long traces of repeated funding, see
#: tests/test_search_catches_bugs.py), and the first, where Hypothesis shrinks to, the
#: simplest (the recipient pays, round 0, untampered).
UNTAMPERED = ("none",) * (len(TAMPERINGS) + 2)
TERMS = st.sampled_from(tuple(itertools.product(FEE_MODES, (0, 1, 2, U32_MAX), UNTAMPERED + TAMPERINGS)))
#: The first signer's node order (``node_orders``) and the members' order (``decode_order``),
#: as one choice: ``members + 5! * node``.
ORDERS = st.integers(0, 1_001 * math.factorial(5) - 1)
#: One payment: (amount, fee, (fee mode, round, tampering), orders, signer plan).
PAYMENTS = st.tuples(
    st.one_of(st.integers(-6_001, 2**20), st.sampled_from(AMOUNT_EDGES), st.integers(0, 2**63)),  # see ``decode_amount``
    FEES,
    TERMS,
    ORDERS,
    SIGNER_PLANS,
)


def decode_amount(raw: int | str, coins: int, fee: int, fee_mode: str) -> int:
    """``raw >= 0``: ``1 + raw % coins``, an amount the group can afford; ``-1``: every coin it
    holds; ``raw <= -2``: ``-raw - 1`` (1..6,000), an amount it may not afford. Or an edge by
    name: every coin (``all``), exactly what leaves the fee (``all-but-fee``), one sompi more
    (``one-short``), the recipient's share of the fee (``fee-share``: the recipient gets 0),
    one sompi less (``below-fee-share``), or nothing at all (``zero``: no template moves 0)."""
    if raw == "zero":
        return 0
    if isinstance(raw, str):
        share = model.recipient_fee(fee, mode_named(fee_mode, models=True))
        value = {"all": coins, "all-but-fee": coins - fee, "one-short": coins - fee + 1, "fee-share": share,
                 "below-fee-share": share - 1}[raw]
        return min(max(1, value), MAX_HOLDINGS)
    if raw >= 0:
        return 1 + raw % max(1, coins)
    return max(1, coins) if raw == -1 else -raw - 1


def decode_fee(raw: int | str, min_fee: int) -> int:
    """A fee drawn as a number, or at the node's minimum fee (``node-minimum``) or one sompi below it."""
    if raw == "node-minimum":
        return min_fee
    if raw == "below-node-minimum":
        return max(0, min_fee - 1)
    return raw


def decode_order(k: int, n: int) -> list[int]:
    """The ``k``-th ordering of ``0..n-1`` (0 is ascending), from one drawn integer."""
    items, order = list(range(n)), []
    for size in range(n, 0, -1):
        index, k = divmod(k % math.factorial(size), math.factorial(size - 1))
        order.append(items.pop(index))
    return order


def decode_noise(raw: int, n: int) -> list:
    """``[key 0..n, kind, skipped input or None]`` from one drawn integer (0: member 0, genuine)."""
    key, rest = raw % 6, raw // 6
    kind, skip = SIGNATURE_KINDS[rest % len(SIGNATURE_KINDS)], rest // len(SIGNATURE_KINDS) - 1
    return [key % (n + 1), kind, None if skip < 0 else skip]


def node_orders(first: int, n: int) -> list[int]:
    """Each signer's node order seed: distinct for the (at most five) signers, from one draw."""
    return [(first + 137 * i) % 1_001 for i in range(n)]


def signer_plan(order: int, plan: tuple, m: int, n: int) -> list[list]:
    """Who signs, as ``[key, kind, skipped input or None]`` rows (key ``n`` is the outsider).

    The members are taken in a drawn order (an ordering of 0..4 restricted to 0..n-1 is a
    uniform ordering of the members).
    """
    members = [i for i in decode_order(order, 5) if i < n]
    name, detail = plan
    short = [[i, "genuine", None] for i in members[: m - 1]]
    if name == "quorum":
        return [[i, "genuine", None] for i in members[: m + detail % (n - m + 1)]]
    if name == "repeated":
        return short + short[:1]
    if name == "outsider":
        return [*short, [n, "genuine", None]]
    if name == "quorum-skips":  # an honest quorum, one of whom leaves out an input after the first
        rows = [[i, "genuine", None] for i in members[:m]]
        rows[detail % m][2] = 1 + detail // m
        return rows
    noise = [decode_noise(raw, n) for raw in detail]
    if name == "quorum+noise":
        return [[i, "genuine", None] for i in members[:m]] + noise
    return noise


# ----- what ``spoil`` does to a template's or an event's bytes ----------------------------------

#: The size of an input in a template's bytes (txid, index, amount) and of its header.
INPUT_BYTES, HEADER_BYTES = 32 + 4 + 8, 4 + 2 + 4


def template_layout(template: model.Template) -> list[tuple[str, int, int]]:
    """``(field, offset, size)`` of every field of the template's bytes, named as the decoder names them."""
    fields, at = [("header", 0, HEADER_BYTES)], HEADER_BYTES
    for i in range(len(template.inputs)):
        fields.append((f"input {i}", at, INPUT_BYTES))
        at += INPUT_BYTES
    fields.append(("output count", at, 4))
    at += 4
    for i, output in enumerate(template.outputs):
        size = len(output.address.encode("utf-8"))
        fields += [(f"output {i}", at, 10), (f"output {i} address", at + 10, size)]
        at += 10 + size
    return fields


def event_layout(event: model.Event) -> list[tuple[str, int, int]]:
    """``(field, offset, size)`` of every field of the event's canonical bytes, named as the decoder names them."""
    fields: list[tuple[str, int, int]] = []
    texts = [("source", event.source), ("external_id", event.external_id), ("destination", event.destination)]
    for i, (key, value) in enumerate(sorted(event.metadata)):
        texts += [(f"metadata[{i}] key", key), (f"metadata[{i}] value", value)]
    at = 0
    for n, (name, text) in enumerate(texts):
        if n == 3:  # after the destination: the amount and the metadata count
            fields += [("amount", at, 8), ("metadata count", at + 8, 4)]
            at += 12
        size = len(text.encode("utf-8"))
        fields += [(f"{name} length", at, 4), (name, at + 4, size)]
        at += 4 + size
    if len(texts) == 3:
        fields += [("amount", at, 8), ("metadata count", at + 8, 4)]
        at += 12
    return [*fields, ("timestamp", at, 8)]


def spoilings(how: str, data: bytes, fields: list[tuple[str, int, int]], at: int) -> list[tuple[object, list[str] | None]]:
    """``data`` spoiled as ``how`` says, in every field it applies to (``at`` picks where inside
    one), each with what the decoder's refusal must name (None: it decodes as ``data`` does)."""
    if how == "cut":  # short in every field: at its start, at a drawn place inside, one byte short of its end
        cases = []
        for name, offset, size in fields:
            for cut in sorted({offset, offset + at % size, offset + size - 1} if size else set()):
                if name.startswith("input "):  # a template's inputs are counted before any is read
                    inputs = sum(f[0].startswith("input ") for f in fields)
                    cases.append((data[:cut], [f"truncated: {inputs} inputs need {inputs * INPUT_BYTES} bytes, "
                                               f"{cut - HEADER_BYTES} left"]))
                else:
                    cases.append((data[:cut], [f"truncated at {name} (offset {offset})",
                                               f"needs {size} bytes, {cut - offset} left"]))
        return cases
    if how == "empty-address":  # every output in turn
        outputs = [name for name, _, _ in fields if name.startswith("output ") and name[7:].isdigit()]
        return [spoiling(how, data, fields, j) for j in range(len(outputs))]
    if how == "bad-utf8":  # every text field in turn
        return [spoiling(how, data, fields, j) for j in range(len(text_fields(fields)))]
    return [spoiling(how, data, fields, at)]


def text_fields(fields: list[tuple[str, int, int]]) -> list[tuple[str, int]]:
    """The fields that hold UTF-8 text (not empty), with their offsets."""
    return [(name, offset) for name, offset, size in fields if size and (name.endswith("address") or name in (
        "source", "external_id", "destination") or name.endswith(("] key", "] value")))]


def spoiling(how: str, data: bytes, fields: list[tuple[str, int, int]], at: int) -> tuple[object, list[str] | None]:
    """``data`` spoiled as ``how`` says (``at`` picks where), and what the decoder's refusal
    must name (None: it decodes as ``data`` does)."""
    offset_of = {name: (offset, size) for name, offset, size in fields}
    if how == "trailing":
        return data + bytes([at % 256]), [f"1 trailing bytes at offset {len(data)}"]
    if how == "magic":
        return b"PSKU" + data[4:], ["bad magic", "PSKU", "expected b'PSKT'"]
    if how == "version":
        version = 2 + at % 65534
        return data[:4] + version.to_bytes(2, "little") + data[6:], [f"version {version} is not supported", "expected 1"]
    if how == "inputs":  # more inputs than the bytes after the header could hold
        inputs = sum(f[0].startswith("input ") for f in fields)
        claimed = inputs + (len(data) - HEADER_BYTES - inputs * INPUT_BYTES) // INPUT_BYTES + 1 + at
        rest = len(data) - HEADER_BYTES
        return (data[:6] + claimed.to_bytes(4, "little") + data[HEADER_BYTES:],
                [f"truncated: {claimed} inputs need {claimed * INPUT_BYTES} bytes, {rest} left"])
    if how == "empty-address":
        outputs = [name for name, _, _ in fields if name.startswith("output ") and name[7:].isdigit()]
        j = at % len(outputs)
        offset, _ = offset_of[f"output {j}"]
        address, size = offset_of[f"output {j} address"]
        return data[: offset + 8] + b"\0\0" + data[address + size :], [f"output {j} has an empty address (offset {offset + 8})"]
    if how == "bad-utf8":  # the first byte of a text field: 0xff starts no UTF-8 character
        texts = text_fields(fields)
        name, offset = texts[at % len(texts)]
        return data[:offset] + b"\xff" + data[offset + 1 :], [f"{name} (offset {offset}) is not valid UTF-8"]
    if how in ("unsorted", "repeated-key"):  # one more metadata pair, its key before or equal to the last key
        count_at, _ = offset_of["metadata count"]
        timestamp_at, _ = offset_of["timestamp"]
        count = int.from_bytes(data[count_at : count_at + 4], "little")
        key_at, key_size = offset_of[f"metadata[{count - 1}] key"]
        last_key = data[key_at : key_at + key_size].decode("utf-8")
        key = "" if how == "unsorted" else last_key
        spoiled = (data[:count_at] + model.u32(count + 1) + data[count_at + 4 : timestamp_at] + model.string(key)
                   + model.string("x") + data[timestamp_at:])
        return spoiled, [f"metadata[{count}] key {key!r} is not after {last_key!r}"]
    if how == "empty-destination":
        offset, _ = offset_of["destination length"]
        text, size = offset_of["destination"]
        return data[:offset] + model.u32(0) + data[text + size :], ["event destination", "non-empty"]
    if how == "text":
        return data.hex(), ["expected bytes, got str"]
    if how == "bytearray":
        return bytearray(data), None
    if how == "memoryview":
        return memoryview(data), None
    raise ValueError(f"no spoiling {how!r}")


def recipient_name(address: str) -> str:
    """A recipient as the report names it: ``alice`` for ``kaspa:alice``."""
    return address.removeprefix("kaspa:")


def plain(template) -> tuple:
    return (
        tuple((u.txid.hex(), u.index, u.amount) for u in template.inputs),
        tuple((o.address, o.amount) for o in template.outputs),
    )


class PsktMachine(TracedMachine):
    name = "pskt"
    rule_classes: ClassVar[dict[str, str]] = {"start": "setup", "fund": "operations", "pay": "operations", "replay": "adversary",
                                              "bad_group": "operations", "bad_value": "operations", "spoil": "adversary"}
    class_floors: ClassVar[dict[str, float]] = {"operations": 0.50, "adversary": 0.08}

    def __init__(self, implementation, stats=None):
        super().__init__(implementation, stats)
        self.stack = None
        self.paid: list[pskt.SignedTransaction] = []  # accepted, for replays
        self.offers: list[node_model.Offer] = []
        self.paid_events: list[int] = []  # the event each accepted payment paid
        #: The report's name of each coin, by outpoint, in the order they were made: ``f1`` the
        #: faucet's first coin, ``e3 payment`` and ``e3 change`` the outputs of event e3's payment.
        self.coin_names: dict[tuple[bytes, int], str] = {}
        self.made_at: dict[tuple[bytes, int], int] = {}  # each named coin's place in coin_names
        self.faucet_count = 0
        self._group_coins: tuple = (None, frozenset())
        self.last_event: model.Event | None = None  # the last payment's event, and its template if one was built
        self.last_template: model.Template | None = None

    # --- set-up -----------------------------------------------------------------------------

    @initialize(
        group=st.integers(0, len(GROUPS) - 1),
        funds=st.lists(COINS, min_size=1, max_size=6),
        min_fee=st.sampled_from([0, 0, 5]),
    )
    def start(self, group, funds, min_fee):
        held = []
        for amount in funds:  # what fits below the bound on holdings
            if sum(held) + amount <= MAX_HOLDINGS:
                held.append(amount)
        self.do("start", group=group, funds=held, min_fee=min_fee)

    def step_start(self, group: int, funds: list[int], min_fee: int) -> None:
        self.require(self.stack is None, "already started")
        self.require(0 <= group < len(GROUPS), f"no group {group}")
        self.require(all(isinstance(a, int) and a >= 1 for a in funds) and sum(funds) <= MAX_HOLDINGS,
                     f"funds {funds} are not coins of at least 1 sompi, together below {MAX_HOLDINGS}")
        m, n = GROUPS[group]
        self.pubkeys = list(PUBKEYS[: n + 1])  # the last: the outsider
        group_keys = MultisigGroup(m, tuple(self.pubkeys[:n]))
        self.stack = self.implementation.make_replica(0, None)
        self.ledger = self.stack.ledger(min_fee)
        self.address = self.ledger.add_group(group_keys)
        self.groups = {self.address: node_model.Group(m, tuple(self.pubkeys[:n]))}
        self.min_fee, self.m, self.n, self.events = min_fee, m, n, 0
        self.node = node_model.Node()
        for amount in funds:
            self._fund(amount)
        self.check_faucet_amounts(group_keys, min_fee)

    def check_faucet_amounts(self, group_keys: MultisigGroup, min_fee: int) -> None:
        """The faucet refuses amounts no coin holds (``BAD_AMOUNTS``: a caller's mistake) with a
        ``ValueError`` naming the amount, and changes nothing; on a ledger of their own it takes both
        ends of a coin's range, 0 and 2^64 - 1 sompi (no draw: every example, from its start)."""
        check_bad_faucet_amounts(self.ledger, self.address)
        edges = self.stack.ledger(min_fee)
        address = edges.add_group(group_keys)
        for amount in (0, pskt.U64_MAX):
            edges.fund(address, amount)
        held = sorted(u.amount for u in edges.utxos_for(address))
        assert held == [0, pskt.U64_MAX], f"faucet coins of 0 and 2^64 - 1 sompi left the coins {held}"

    def group_coins(self) -> frozenset:
        """The group's coins in the model, remembered per model node (a new node per change):
        the ``fund`` precondition asks on every rule draw."""
        if self._group_coins[0] is not self.node:
            self._group_coins = (self.node, node_model.coins_of(self.node, self.address))
        return self._group_coins[1]

    def _fund(self, amount: int) -> None:
        utxo = self.ledger.fund(self.address, amount)
        self.node = node_model.fund(self.node, utxo.txid, self.address, amount)
        self.faucet_count += 1
        self._name((utxo.txid, 0), f"f{self.faucet_count}")

    def _name(self, outpoint: tuple[bytes, int], name: str) -> None:
        self.made_at[outpoint] = len(self.coin_names)
        self.coin_names[outpoint] = name

    def holdings(self) -> int:
        return sum(c.amount for c in self.group_coins())

    @guard(lambda self: len(self.group_coins()) < 12 and self.holdings() < MAX_HOLDINGS)
    @rule(amount=COINS)
    def fund(self, amount):
        self.do("fund", amount=min(amount, MAX_HOLDINGS - self.holdings()))

    def step_fund(self, amount: int) -> None:
        self.require(1 <= amount <= MAX_HOLDINGS - self.holdings(), f"a coin of {amount} sompi would take the group's "
                     f"holdings past {MAX_HOLDINGS}")
        self._fund(amount)

    # --- a caller's mistake -------------------------------------------------------------------

    @rule(how=st.sampled_from(BAD_GROUPS), now=st.integers(0, 4))
    def bad_group(self, how, now):
        if now:  # one draw in five: a caller's mistakes are rarer than payments
            return
        self.do("bad_group", how=how)

    def step_bad_group(self, how: str) -> None:
        """A group built wrongly from this group's keys (a key of 31 bytes, a key that is a
        bytearray, a key twice, a threshold of 0 or above the number of keys): refused with a
        ValueError naming what is wrong."""
        self.require(self.stack is not None, "not started")
        self.require(how in BAD_GROUPS, f"{how!r} is not one of {BAD_GROUPS}")
        keys, m = list(self.pubkeys[: self.n]), self.m
        named = {"short-key": "32 bytes", "bytearray-key": "32 bytes", "repeated-key": "distinct"}.get(how)
        if how == "short-key":
            keys[0] = keys[0][:31]
        elif how == "bytearray-key":
            keys[0] = bytearray(keys[0])
        elif how == "repeated-key":
            keys.append(keys[0])
        else:
            m = 0 if how == "threshold-zero" else len(keys) + 1
            named = f"m={m}"
        try:
            MultisigGroup(m, tuple(keys))
        except ValueError as error:
            got = str(error)
        else:
            got = "accepted"
        assert named in got, f"a group with a {how}: {got!r}, not a refusal naming {named!r}"

    @rule(how=st.sampled_from(BAD_VALUES), now=st.integers(0, 4))
    def bad_value(self, how, now):
        if now:  # one draw in five, as bad_group
            return
        self.do("bad_value", how=how)

    def step_bad_value(self, how: str) -> None:
        """An event, UTXO, output, fee split or build call with one value out of its range or of
        the wrong type: refused naming the value (``ValueError``; ``TypeError`` for a fee mode
        of no known kind); the value at the edge beside it is taken as it is. A UTXO list with a
        coin twice (a node's mistake) is refused as the model refuses it, naming the coin."""
        self.require(self.stack is not None, "not started")
        self.require(how in BAD_VALUES, f"{how!r} is not one of {BAD_VALUES}")
        event = {"source": "hyperlane", "external_id": "ev-bad", "destination": DESTINATIONS[0], "amount": 5,
                 "metadata": (("reason", "bridge"),), "timestamp": 0}
        utxo = {"txid": hash32(b"a coin"), "index": 0, "amount": 5}
        output = {"address": DESTINATIONS[0], "amount": 5}
        build = {"fee": 0, "fee_mode": pskt.RecipientPays(), "round": 0}
        over64, over32 = 2**64, 2**32
        cases = {  # how: (what is built, its field and value, what the refusal names; None: taken as it is)
            "event-source-bytes": ("event", "source", b"hyperlane", ["event source", "must be a string"]),
            "event-external-id-int": ("event", "external_id", 7, ["event external_id", "must be a string", "7"]),
            "event-destination-empty": ("event", "destination", "", ["event destination", "65535"]),
            "event-destination-too-long": ("event", "destination", "d" * 65536, ["event destination", "65535"]),
            "event-destination-longest": ("event", "destination", "d" * 65535, None),
            "event-destination-one-byte": ("event", "destination", "d", None),
            "event-amount-over": ("event", "amount", over64, ["event amount must be", f"[0, {over64 - 1}]", str(over64)]),
            "event-amount-negative": ("event", "amount", -1, ["event amount must be", "got -1"]),
            "event-amount-bool": ("event", "amount", True, ["event amount must be", "got True"]),
            "event-timestamp-over": ("event", "timestamp", over64, ["event timestamp must be", str(over64)]),
            "event-timestamp-longest": ("event", "timestamp", over64 - 1, None),
            "event-metadata-dict": ("event", "metadata", {"reason": "bridge", "a": "b"}, None),
            "event-metadata-not-strings": ("event", "metadata", (("reason", 1),), ["event metadata", "string pairs"]),
            "event-metadata-not-pairs": ("event", "metadata", (("reason",),), ["event metadata", "string pairs"]),
            "event-metadata-duplicate": ("event", "metadata", (("a", "1"), ("k", "1"), ("k", "2")), ["duplicate key: 'k'"]),
            "utxo-short-txid": ("utxo", "txid", bytes(31), ["txid", "32 bytes"]),
            "utxo-index-over": ("utxo", "index", over32, ["output index must be", f"[0, {over32 - 1}]", str(over32)]),
            "utxo-index-longest": ("utxo", "index", over32 - 1, None),
            "utxo-amount-over": ("utxo", "amount", over64, ["UTXO amount must be", str(over64)]),
            "output-empty-address": ("output", "address", "", ["address", "65535"]),
            "output-address-one-byte": ("output", "address", "a", None),
            "output-address-too-long": ("output", "address", "\u00e9" * 32768, ["address", "65535"]),
            "output-address-longest": ("output", "address", "\u00e9" * 32767 + "a", None),
            "output-address-bytes": ("output", "address", b"kaspa:alice", ["address", "string"]),
            "output-amount-negative": ("output", "amount", -1, ["output amount must be", "got -1"]),
            "split-zero": ("split", None, (0, 0), ["Split needs at least one part"]),
            "split-recipient-over": ("split", None, (over32, 1), ["recipient_parts must be", str(over32)]),
            "split-signer-negative": ("split", None, (1, -1), ["signer_parts must be", "got -1"]),
            "split-signer-only": ("split", None, (0, 1), None),
            "split-even": ("split", None, (1, 1), None),
            "split-largest": ("split", None, (over32 - 1, over32 - 1), None),
            "fee-over": ("build", "fee", over64, ["fee must be", str(over64)]),
            "round-over": ("build", "round", over32, ["round must be", str(over32)]),
            "fee-mode-unknown": ("build", "fee_mode", "recipient", ["fee_mode must be", "'recipient'"]),
        }
        if how == "listed-twice":
            self._listed_twice()
            return
        what, field, value, named = cases[how]
        try:
            if what == "event":
                made = pskt.Event(**{**event, field: value})
            elif what == "utxo":
                made = pskt.Utxo(**{**utxo, field: value})
            elif what == "output":
                made = pskt.Output(**{**output, field: value})
            elif what == "split":
                made = pskt.Split(*value)
            else:
                made = pskt.build_template(pskt.Event(**event), self.ledger.utxos_for(self.address),
                                           change_address=self.address, **{**build, field: value})
        except (ValueError, TypeError) as error:
            wanted = TypeError if how == "fee-mode-unknown" else ValueError
            assert named is not None, f"a caller's {how}: refused ({type(error).__name__}: {error}), not taken"
            assert type(error) is wanted, f"a caller's {how}: refused with {type(error).__name__} ({error}), not {wanted}"
            self.check_named(error, named, f"the refusal of a caller's {how}")
            return
        assert named is None, f"a caller's {how}: taken, not refused naming {named}"
        if what == "event" and field == "metadata":
            assert made.metadata == (("a", "b"), ("reason", "bridge")), f"the metadata is kept as {made.metadata}"
        elif what == "split":
            assert (made.recipient_parts, made.signer_parts) == value, f"the split {value} is kept as {made}"
        else:
            assert getattr(made, field) == value, f"the {what}'s {field} {value!r:.20} is kept as {getattr(made, field)!r:.20}"

    def _listed_twice(self) -> None:
        """A node that lists one of the group's coins twice: every signer refuses, as the model."""
        utxos = self.ledger.utxos_for(self.address)
        if not utxos:
            return
        twice = [*utxos, utxos[0]]
        event = pskt.Event("hyperlane", "ev-twice", DESTINATIONS[0], 1, (), 0)
        m_event = model.Event(event.source, event.external_id, event.destination, 1, (), 0)
        expected = model.build_template(m_event, [model.Utxo(u.txid, u.index, u.amount) for u in twice], 0,
                                        model.RecipientPays(), self.address, 0, hash32)
        try:
            got = self.stack.build_template(event, twice, fee=0, fee_mode=pskt.RecipientPays(), change_address=self.address)
        except pskt.TemplateRefused as refused:
            assert isinstance(expected, model.Refusal) and refused.kind == expected.kind, (
                f"a coin listed twice: refused with {refused.kind}, the model: {expected}")
            self.check_named(refused, [f"{utxos[0].txid.hex()}:{utxos[0].index}"], "the refusal of a coin listed twice")
            return
        raise AssertionError(f"a coin listed twice: a template of {len(got.inputs)} inputs was built, the model: {expected}")

    # --- a peer's spoiled bytes ------------------------------------------------------------

    @guard(lambda self: self.last_event is not None)
    @rule(how=st.sampled_from(SPOILS), at=st.integers(0, 2**16), now=st.integers(0, 2))
    def spoil(self, how, at, now):
        if now or (how.startswith("template") and self.last_template is None):  # one draw in three
            return
        self.do("spoil", how=how, at=at)

    def step_spoil(self, how: str, at: int) -> None:
        """The canonical bytes of the last payment's template or event, spoiled as ``how`` says
        (in every field it applies to; ``at`` picks where inside one): the decoder refuses them
        with a ``DecodeError`` that names the field and its offset (the model's layout says
        which), or, given the same bytes as a bytearray or memoryview, decodes them as it
        decodes the bytes."""
        self.require(how in SPOILS, f"{how!r} is not one of {SPOILS}")
        self.require(at >= 0, f"no place {at}")
        if how.startswith("template"):
            self.require(self.last_template is not None, "no template built yet")
            data, fields = model.template_bytes(self.last_template), template_layout(self.last_template)
            decode, prefix = pskt.decode_template, "pskt: "
        else:
            self.require(self.last_event is not None, "no payment yet")
            data, fields = model.event_fields(self.last_event), event_layout(self.last_event)
            decode, prefix = pskt.decode_event, "event: "
        for spoiled, named in spoilings(how.split("-", 1)[1], data, fields, at):
            try:
                decoded = decode(spoiled)
            except DecodeError as error:
                assert named is not None, f"{how}: refused ({error}), not decoded as the bytes"
                assert str(error).startswith(prefix), f"{how}: the refusal {str(error)!r} does not start with {prefix!r}"
                missing = [word for word in named if word not in str(error)]
                assert not missing, f"{how}: the refusal {str(error)!r} does not name {missing}"
                continue
            assert named is None, f"{how}: decoded, not refused naming {named}"
            assert decoded == decode(data), f"{how}: decoded otherwise than the bytes"

    # --- payments -----------------------------------------------------------------------------

    @rule(payment=PAYMENTS)
    def pay(self, payment: tuple) -> None:
        amount, fee, (fee_mode, round, tamper), orders, plan = payment
        fee = decode_fee(fee, self.min_fee)
        order_seed, members_order = divmod(orders, math.factorial(5))
        self.do(
            "pay",
            amount=decode_amount(amount, self.holdings(), fee, fee_mode),
            fee=fee,
            fee_mode=fee_mode,
            round=round,
            orders=node_orders(order_seed, self.n),
            signers=signer_plan(members_order, plan, self.m, self.n),
            tamper=tamper,
        )

    def step_pay(self, amount, fee, fee_mode, round, orders, signers, tamper) -> None:
        self.require(fee_mode in FEE_MODES and tamper in TAMPERINGS, f"unknown fee mode {fee_mode} or tampering {tamper}")
        self.require(len(orders) == self.n, f"{len(orders)} node orders for {self.n} signers")
        self.require(
            all(len(s) == 3 and 0 <= s[0] <= self.n and s[1] in SIGNATURE_KINDS and (s[2] is None or s[2] >= 0) for s in signers),
            f"signers {signers} are not [key 0..{self.n}, kind, skipped input or null]",
        )
        self.require(0 <= amount <= MAX_HOLDINGS and 0 <= fee <= MAX_HOLDINGS and 0 <= round <= U32_MAX,
                     f"amount {amount}, fee {fee} or round {round} out of range")
        self.events += 1
        event = pskt.Event("hyperlane", f"ev-{self.events}", DESTINATIONS[self.events % 3], amount, (("reason", "bridge"),), 0)
        m_event = model.Event(event.source, event.external_id, event.destination, amount, event.metadata, event.timestamp)
        m_utxos = [model.Utxo(c.txid, c.index, c.amount) for c in self.group_coins()]
        m_mode = mode_named(fee_mode, True)
        expected = model.build_template(m_event, m_utxos, fee, m_mode, self.address, round, hash32)
        built = []
        for order in orders:
            utxos = self.ledger.utxos_for(self.address, order_seed=order)
            again = self.ledger.utxos_for(self.address, order_seed=order)
            assert again == utxos, f"the node listed the group's coins in two orders for the one seed {order}"
            try:
                built.append(
                    self.stack.build_template(
                        event, utxos, fee=fee, fee_mode=mode_named(fee_mode), change_address=self.address, round=round
                    )
                )
            except pskt.TemplateRefused as refused:
                built.append(refused)
        self.check_event_bytes(event, m_event)
        if isinstance(expected, model.Refusal):
            kinds = [b.kind if isinstance(b, pskt.TemplateRefused) else "built" for b in built]
            assert kinds == [expected.kind] * self.n, f"signers: {kinds}, the model refuses: {expected.kind}"
            named = {"zero_amount": ["0"], "amount_below_fee": [str(amount), str(model.recipient_fee(fee, m_mode))],
                     "insufficient_funds": [str(self.holdings()), str(amount + fee)]}[expected.kind]
            for b in built:
                self.check_named(b, named, "a signer's refusal")
            return
        wanted = plain(expected)
        for i, b in enumerate(built):
            assert not isinstance(b, pskt.TemplateRefused), f"signer {i} refused ({b}), the model built {wanted}"
            if i and b == built[0]:
                continue  # the template signer 0 built, already compared with the model's
            assert plain(b) == wanted, f"signer {i} built {plain(b)}, the model {wanted}"
        assert built[0].fee == fee, f"the template's fee is {built[0].fee}, not {fee}"
        self.check_template_bytes(built[0], expected, model.event_id(m_event, hash32))
        self._submit(self._tamper(built[0], tamper), signers, lists_missing=int(tamper == "signature-list-missing"))

    @staticmethod
    def check_named(error: Exception, named: list[str], what: str) -> None:
        """``error`` is ``kind: detail`` (for a ``TemplateRefused``) and its text names every one of ``named``."""
        text = str(error)
        if isinstance(error, pskt.TemplateRefused):
            assert error.detail and text == f"{error.kind}: {error.detail}", f"{what} {text!r} is not 'kind: detail'"
        missing = [word for word in named if word not in text]
        assert not missing, f"{what} {text!r} does not name {missing}"

    def check_event_bytes(self, event: pskt.Event, m_event: model.Event) -> None:
        """The event's canonical fields are the model's, and they decode to the event again;
        so do those of the event stamped at the last nanosecond a u64 holds (the machine's
        events are all stamped 0)."""
        data = pskt.encode_event(event)
        assert data == model.event_fields(m_event), "the event's canonical fields are not the model's"
        assert pskt.decode_event(data) == event, "the event's canonical fields do not decode to the event"
        late = pskt.Event(event.source, event.external_id, event.destination, event.amount, event.metadata, 2**64 - 1)
        m_late = model.Event(m_event.source, m_event.external_id, m_event.destination, m_event.amount, m_event.metadata,
                             2**64 - 1)
        data = pskt.encode_event(late)
        assert data == model.event_fields(m_late), "the canonical fields of an event stamped 2^64 - 1 are not the model's"
        assert pskt.decode_event(data) == late, "the canonical fields of an event stamped 2^64 - 1 do not decode to it"
        self.last_event = m_event

    def check_template_bytes(self, template: pskt.Template, expected: model.Template, event_id: bytes) -> None:
        """The template's canonical bytes, its hash, every input's sighash (also computed
        without the template hash passed in), the validation hash and a member's signatures
        are the model's; the bytes decode to the template again."""
        data = pskt.encode_template(template)
        assert data == model.template_bytes(expected), "the template's canonical bytes are not the model's"
        assert pskt.decode_template(data) == template, "the template's canonical bytes do not decode to the template"
        assert pskt.tx_template_hash(template) == hash32(data), "the template hash is not the hash of its bytes"
        hashes = tuple(model.sighash(expected, i, hash32) for i in range(len(expected.inputs)))
        assert pskt.sighashes(template) == hashes, "the inputs' sighashes are not the model's"
        alone = tuple(pskt.input_sighash(template, i) for i in range(len(template.inputs)))
        assert alone == hashes, "an input's sighash, the template hash not given, is not the model's"
        assert pskt.validation_hash(event_id, template) == model.validation_hash(event_id, expected, hash32), (
            "the validation hash is not the model's")
        signatures = pskt.sign_inputs(KEYS[0], template)
        assert signatures == tuple(signature_of(0, h) for h in hashes), "member 0's signatures are not over the sighashes"
        self.last_template = expected

    def _tamper(self, template: pskt.Template, how: str) -> pskt.Template:
        inputs, outputs = list(template.inputs), list(template.outputs)
        first = inputs[0]
        if how == "amount":
            inputs[0] = pskt.Utxo(first.txid, first.index, first.amount + 1)
            outputs[0] = pskt.Output(outputs[0].address, outputs[0].amount + 1)
        elif how == "unknown-input":
            inputs.append(pskt.Utxo(hash32(b"nowhere"), 7, 5))
        elif how == "repeat-input":
            inputs.append(first)
        elif how == "outputs-exceed":
            outputs[0] = pskt.Output(outputs[0].address, outputs[0].amount + template.fee + 1)
        elif how == "foreign-input":  # a recipient's coin, if any was paid yet
            foreign = sorted((c.txid, c.index, c.amount) for c in self.node.coins if c.owner != self.address)
            inputs.extend(pskt.Utxo(*coin) for coin in foreign[:1])
        elif how == "no-outputs":
            outputs = []
        return pskt.Template(tuple(inputs), tuple(outputs))

    def _submit(self, template: pskt.Template, signers: list, lists_missing: int = 0) -> None:
        """Sign ``template`` as ``signers`` say (the last ``lists_missing`` inputs' signature
        lists left off the transaction) and offer it to the node."""
        hashes = pskt.sighashes(template)
        other_hashes = hashes
        if any(kind == "other-template" for _, kind, _ in signers):
            other = pskt.Template(template.inputs, (*template.outputs, pskt.Output("kaspa:elsewhere", 1)))
            other_hashes = pskt.sighashes(other)
        n_inputs = len(template.inputs)
        pairs: list[list] = [[] for _ in range(n_inputs)]
        genuine: list[set[bytes]] = [set() for _ in range(n_inputs)]
        for key, kind, skip in signers:
            for i in range(n_inputs):
                if skip is not None and skip % n_inputs == i:
                    continue
                if kind == "genuine":
                    signature = signature_of(key, hashes[i])
                    genuine[i].add(self.pubkeys[key])
                elif kind == "other-template":
                    signature = signature_of(key, other_hashes[i])
                elif kind == "truncated":
                    signature = signature_of(key, hashes[i])[:-1]
                else:
                    signature = hash32(bytes([key, i])) * 2
                pairs[i].append((self.pubkeys[key], signature))
        pairs = pairs[: n_inputs - lists_missing]
        tx = pskt.SignedTransaction(template, tuple(tuple(p) for p in pairs))
        offer = node_model.Offer(
            tuple((u.txid, u.index, u.amount) for u in template.inputs),
            tuple((o.address, o.amount) for o in template.outputs),
            pskt.tx_template_hash(template),
            tuple(frozenset(g) for g in genuine),
            len(pairs),
        )
        if all(paid.txid != offer.txid for paid in self.offers):  # else a double spend: its coins keep their names
            for i in range(len(template.outputs)):  # named before the node answers: a coin it makes by mistake too
                what = "payment" if i == 0 else "change" if i == 1 else f"output {i}"
                self._name((offer.txid, i), f"e{self.events} {what}")
        self._offer(tx, offer)

    def _offer(self, tx: pskt.SignedTransaction, offer: node_model.Offer) -> None:
        expected = node_model.submit(self.node, self.groups, self.min_fee, offer)
        try:
            txid = self.ledger.submit(tx)
        except LedgerError as refused:
            assert isinstance(expected, node_model.Refusal), f"the node refused ({refused}), the model accepts"
            assert refused.kind == expected.kind, (
                f"the node refused with {refused.kind} ({refused}), the model with {expected.kind}"
            )
            self.check_refusal(refused, expected, offer)
            return
        assert not isinstance(expected, node_model.Refusal), f"the node accepted, the model refuses: {expected.kind}"
        assert txid == offer.txid, "the node's txid is not the template hash"
        assert self.ledger.accepted[len(self.paid):] == [txid], (
            f"the node accepted {shorten(txid)} but its list of accepted transactions gained "
            f"{[shorten(t) if isinstance(t, bytes) else t for t in self.ledger.accepted[len(self.paid):]]}")
        self.node = expected
        self.paid.append(tx)
        self.offers.append(offer)
        self.paid_events.append(self.events)

    def check_refusal(self, refused: LedgerError, expected: node_model.Refusal, offer: node_model.Offer) -> None:
        """The node's refusal names what is wrong: its message is ``kind: detail``, and the
        detail names the input the model blames (and the earlier input it repeats), the
        coin it spends (txid prefix and index), the coin's owner, the amounts, the totals and
        the fee, the counts, the threshold."""
        text = str(refused)
        assert refused.detail and text == f"{refused.kind}: {refused.detail}", f"the refusal {text!r} is not 'kind: detail'"
        named = []
        blamed = re.match(r"input (\d+)", expected.detail)
        if blamed:
            i = int(blamed.group(1))
            named.append(f"input {i}")
            txid, index, amount = offer.inputs[i]
            coin = next((c for c in self.node.coins if (c.txid, c.index) == (txid, index)), None)
            if refused.kind in ("double_spend", "unknown_input"):  # the coin, as the node's messages show one
                named.append(f"{txid.hex()[:16]}…:{index}")
            if "repeats" in expected.detail:
                named.append(f"input {[(t, x) for t, x, _ in offer.inputs].index((txid, index))}")
            elif refused.kind == "amount_mismatch":
                named += [str(amount), str(coin.amount)]
            elif refused.kind == "not_multisig":
                named.append(coin.owner[:30])
            elif refused.kind == "signatures":
                named.append(str(self.groups[coin.owner].m))
        total_in, total_out = sum(a for _, _, a in offer.inputs), sum(a for _, a in offer.outputs)
        if refused.kind == "fee":
            named += [str(total_out), str(total_in)] if total_out > total_in else [str(total_in - total_out), str(self.min_fee)]
        if refused.kind == "malformed":
            named += [str(offer.signed_inputs), str(len(offer.inputs))] if offer.signed_inputs != len(offer.inputs) else [
                str(len(offer.inputs)), str(len(offer.outputs))]
        missing = [what for what in named if not re.search(rf"(?<![\w]){re.escape(what)}(?![\w])", refused.detail)]
        assert not missing, f"the node's refusal {text!r} does not name {missing} (the model: {expected.detail})"

    @guard(lambda self: bool(self.paid))
    @rule(k=st.integers(0, 50))
    def replay(self, k):
        self.do("replay", paid=k % len(self.paid))

    def step_replay(self, paid: int) -> None:
        self.require(0 <= paid < len(self.paid), f"no accepted payment {paid}")
        self._offer(self.paid[paid], self.offers[paid])

    # --- the report ------------------------------------------------------------------------------

    def describe_step(self, step) -> str:
        """The step in the domain's words: who holds what, who pays whom how much, who signs."""
        a = step.args
        try:
            if step.rule == "start":
                m, n = GROUPS[a["group"]]
                coins = ", ".join(f"f{i} of {amount}" for i, amount in enumerate(a["funds"], 1))
                return f"start: a {m}-of-{n} group holding coins {coins} sompi; the node's minimum fee {a['min_fee']}"
            if step.rule == "fund":
                return f"the faucet gives the group coin f{self.faucet_count + 1} of {a['amount']} sompi"
            if step.rule == "bad_group":
                return f"a caller's mistake: a group built with a {a['how']}"
            if step.rule == "bad_value":
                return f"a caller's mistake with a template's values: {a['how']}"
            if step.rule == "spoil":
                thing, how = a["how"].split("-", 1)
                return f"the last payment's {thing} bytes, spoiled ({how}, at {a['at']}), are decoded"
            if step.rule == "replay":
                return f"the payment of event e{self.paid_events[a['paid']]} is offered to the node again (a double spend)"
            if step.rule == "pay":
                k = self.events + 1
                signers = "; ".join(self._signer_text(*row) for row in a["signers"]) or "nobody"
                tamper = "" if a["tamper"] == "none" else f"; tampered: {a['tamper']}"
                return (f"event e{k}: pay {a['amount']} sompi to {recipient_name(DESTINATIONS[k % 3])}, fee {a['fee']} "
                        f"({a['fee_mode']}), round {a['round']}; signed by {signers}{tamper}")
        except (IndexError, KeyError, TypeError, ValueError):
            pass
        return step.describe()

    def _signer_text(self, key: int, kind: str, skip: int | None) -> str:
        who = "the outsider" if key == self.n else f"member {key}"
        what = {"genuine": "", "other-template": " (over another template)", "garbage": " (garbage)",
                "truncated": " (one byte short)"}[kind]
        return who + what + ("" if skip is None else f", input {skip} left out")

    # --- checks -------------------------------------------------------------------------------

    def owner_name(self, address: str) -> str:
        """Whose coins: ``the group`` or a recipient's name."""
        return "the group" if address == self.address else recipient_name(address)

    def coins_text(self, coins) -> list[str]:
        """Coins (anything with a txid, an index and an amount) by name with their amounts, in
        the order they were made: ``["f1: 33", "e2 change: 1200"]``; a coin the machine never saw
        made is shown by its outpoint (``coin 7ede5a0b… output 3``)."""
        order = self.made_at
        rows = sorted(((order.get((c.txid, c.index), len(order)), c.txid, c.index), c.amount) for c in coins)
        return [f"{self.coin_names.get((txid, index)) or f'coin {shorten(txid)} output {index}'}: {amount}"
                for (_, txid, index), amount in rows]

    def _holdings(self) -> list[tuple[str, object, object]]:
        """Per owner (the group, then each recipient): the model's coins and the node's, named."""
        return [(self.owner_name(address), self.coins_text(node_model.coins_of(self.node, address)),
                 self.coins_text(self.ledger.utxos_for(address))) for address in (self.address, *DESTINATIONS)]

    def observe(self) -> list[Observation]:
        if self.stack is None:
            return []
        return [Observation(f"coins of {a}", m, i) for a, m, i in self._holdings()]

    def check(self) -> None:
        if self.stack is None:
            return
        # What ``_holdings`` compares, as sets (outpoints are unique on both sides), without
        # sorting and formatting them after every step: only a difference is formatted.
        expected: dict[str, set] = {address: set() for address in (self.address, *DESTINATIONS)}
        for c in self.node.coins:
            expected.setdefault(c.owner, set()).add((c.txid, c.index, c.amount))
        for txid, index in self.node.spent:
            assert not self.ledger.is_unspent(txid, index), f"the node says the spent coin {shorten(txid)}:{index} is unspent"
        for address, coins in expected.items():
            balance = self.ledger.balance(address)
            assert balance == sum(c[2] for c in coins), f"{self.owner_name(address)}'s balance on the node is {balance}"
            for txid, index, _ in coins:
                assert self.ledger.is_unspent(txid, index), f"the node says the coin {shorten(txid)}:{index} is spent"
            listed = self.ledger.utxos_for(address)
            made_at = [self.made_at.get((u.txid, u.index), -1) for u in listed]  # -1: a coin never named
            if len({(u.txid, u.index) for u in listed}) != len(listed) or made_at != sorted(made_at):
                names = [self.coin_names.get((u.txid, u.index), shorten(u.txid)) for u in listed]
                raise AssertionError(f"the node lists {self.owner_name(address)}'s coins as {names}, not in the order made")
            if {(u.txid, u.index, u.amount) for u in listed} != coins:
                for label, theirs, mine in self._holdings():
                    assert mine == theirs, f"{label} holds {mine} on the node, the model says {theirs}"
                raise AssertionError(f"{self.owner_name(address)} holds other coins on the node than the model says")


test_pskt_machine = machine_test(PsktMachine)
