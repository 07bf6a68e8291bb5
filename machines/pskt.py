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
"""

from __future__ import annotations

import blake3
import nacl.signing
from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

from harness import TracedMachine, guard, machine_test
from harness.machine import Observation
from implementations import pskt
from implementations.ledger import LedgerError, MultisigGroup
from models import ledger as node_model
from models import pskt as model

GROUPS = ((1, 1), (2, 3), (3, 5))
DESTINATIONS = ("kaspa:alice", "kaspa:bob", "kaspa:carol")
FEE_MODES = ("recipient", "signers", "split:1:2", "split:3:1")
SIGNATURE_KINDS = ("genuine", "other-template", "garbage")
TAMPERINGS = ("none", "amount", "unknown-input", "repeat-input", "outputs-exceed")


def hash32(data: bytes) -> bytes:
    return blake3.blake3(data).digest()


def mode_named(name: str, models: bool = False):
    """The fee mode called ``name``, of the model (``models=True``) or of the implementation."""
    ns = model if models else pskt
    if name == "recipient":
        return ns.RecipientPays()
    if name == "signers":
        return ns.SignersPay()
    _, rp, sp = name.split(":")
    return ns.Split(int(rp), int(sp))


def plain(template) -> tuple:
    return (
        tuple((u.txid.hex(), u.index, u.amount) for u in template.inputs),
        tuple((o.address, o.amount) for o in template.outputs),
    )


class PsktMachine(TracedMachine):
    name = "pskt"

    def __init__(self, implementation, stats=None):
        super().__init__(implementation, stats)
        self.stack = None
        self.paid: list[pskt.SignedTransaction] = []  # accepted, for replays
        self.offers: list[node_model.Offer] = []

    # --- set-up -----------------------------------------------------------------------------

    @initialize(
        group=st.integers(0, len(GROUPS) - 1),
        funds=st.lists(st.integers(1, 5_000), min_size=1, max_size=6),
        min_fee=st.sampled_from([0, 0, 5]),
    )
    def start(self, group, funds, min_fee):
        self.do("start", group=group, funds=funds, min_fee=min_fee)

    def step_start(self, group: int, funds: list[int], min_fee: int) -> None:
        self.require(self.stack is None, "already started")
        self.require(0 <= group < len(GROUPS), f"no group {group}")
        self.require(all(isinstance(a, int) and 1 <= a <= 10**12 for a in funds), f"funds {funds} out of range")
        m, n = GROUPS[group]
        self.keys = [nacl.signing.SigningKey(hash32(b"pskt-machine-key" + bytes([i]))) for i in range(n + 1)]  # last: outsider
        self.pubkeys = [k.verify_key.encode() for k in self.keys]
        group_keys = MultisigGroup(m, tuple(self.pubkeys[:n]))
        self.stack = self.implementation.make_replica(0, None)
        self.ledger = self.stack.ledger(min_fee)
        self.address = self.ledger.add_group(group_keys)
        self.groups = {self.address: node_model.Group(m, tuple(self.pubkeys[:n]))}
        self.min_fee, self.m, self.n, self.events = min_fee, m, n, 0
        self.node = node_model.Node()
        for amount in funds:
            self._fund(amount)

    def _fund(self, amount: int) -> None:
        utxo = self.ledger.fund(self.address, amount)
        self.node = node_model.fund(self.node, utxo.txid, self.address, amount)

    @guard(lambda self: len(node_model.coins_of(self.node, self.address)) < 12)
    @rule(amount=st.integers(1, 5_000))
    def fund(self, amount):
        self.do("fund", amount=amount)

    def step_fund(self, amount: int) -> None:
        self.require(1 <= amount <= 10**12, f"amount {amount} out of range")
        self._fund(amount)

    # --- payments -----------------------------------------------------------------------------

    @rule(data=st.data())
    def pay(self, data):
        coins = sum(c.amount for c in node_model.coins_of(self.node, self.address))
        m, n = self.m, self.n
        anyone = st.lists(
            st.tuples(st.integers(0, n), st.sampled_from(SIGNATURE_KINDS), st.none() | st.integers(0, 3)), max_size=6
        )

        def plans(members: tuple[int, ...]):
            """Mostly an honest quorum; else one member short, made up by a repeated member or by
            the outsider (key ``n``); a quorum plus noise; or anything."""
            short = [(i, "genuine", None) for i in members[: m - 1]]
            return st.one_of(
                st.integers(m, n).map(lambda k: [(i, "genuine", None) for i in members[:k]]),
                st.just(short + short[:1]),
                st.just([*short, (n, "genuine", None)]),
                anyone.map(lambda noise: [(i, "genuine", None) for i in members[:m]] + noise),
                anyone,
            )

        signers = st.permutations(range(n)).map(tuple).flatmap(plans)
        self.do(
            "pay",
            amount=data.draw(st.integers(1, max(1, coins)) | st.integers(1, 6_000), label="amount"),
            fee=data.draw(st.sampled_from([0, 3, 10, 101]), label="fee"),
            fee_mode=data.draw(st.sampled_from(FEE_MODES), label="fee_mode"),
            round=data.draw(st.integers(0, 2), label="round"),
            orders=data.draw(st.lists(st.integers(0, 1_000), min_size=self.n, max_size=self.n), label="orders"),
            signers=[list(s) for s in data.draw(signers, label="signers")],
            tamper=data.draw(st.just("none") | st.sampled_from(TAMPERINGS), label="tamper"),
        )

    def step_pay(self, amount, fee, fee_mode, round, orders, signers, tamper) -> None:
        self.require(fee_mode in FEE_MODES and tamper in TAMPERINGS, f"unknown fee mode {fee_mode} or tampering {tamper}")
        self.require(len(orders) == self.n, f"{len(orders)} node orders for {self.n} signers")
        self.require(
            all(len(s) == 3 and 0 <= s[0] <= self.n and s[1] in SIGNATURE_KINDS and (s[2] is None or s[2] >= 0) for s in signers),
            f"signers {signers} are not [key 0..{self.n}, kind, skipped input or null]",
        )
        self.require(1 <= amount <= 10**12 and fee >= 0 and 0 <= round <= 2**32 - 1, "amount, fee or round out of range")
        self.events += 1
        event = pskt.Event("hyperlane", f"ev-{self.events}", DESTINATIONS[self.events % 3], amount, (("reason", "bridge"),), 0)
        m_event = model.Event(event.source, event.external_id, event.destination, amount, event.metadata, event.timestamp)
        m_utxos = [model.Utxo(c.txid, c.index, c.amount) for c in node_model.coins_of(self.node, self.address)]
        expected = model.build_template(m_event, m_utxos, fee, mode_named(fee_mode, True), self.address, round, hash32)
        built = []
        for order in orders:
            utxos = self.ledger.utxos_for(self.address, order_seed=order)
            try:
                built.append(
                    self.stack.build_template(
                        event, utxos, fee=fee, fee_mode=mode_named(fee_mode), change_address=self.address, round=round
                    )
                )
            except pskt.TemplateRefused as refused:
                built.append(refused)
        if isinstance(expected, model.Refusal):
            kinds = [b.kind if isinstance(b, pskt.TemplateRefused) else "built" for b in built]
            assert kinds == [expected.kind] * self.n, f"signers: {kinds}, the model refuses: {expected.kind}"
            return
        for i, b in enumerate(built):
            assert not isinstance(b, pskt.TemplateRefused), f"signer {i} refused ({b}), the model built {plain(expected)}"
            assert plain(b) == plain(expected), f"signer {i} built {plain(b)}, the model {plain(expected)}"
        assert built[0].fee == fee, f"the template's fee is {built[0].fee}, not {fee}"
        self._submit(self._tamper(built[0], tamper), signers)

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
        return pskt.Template(tuple(inputs), tuple(outputs))

    def _submit(self, template: pskt.Template, signers: list) -> None:
        other = pskt.Template(template.inputs, (*template.outputs, pskt.Output("kaspa:elsewhere", 1)))
        hashes, other_hashes = pskt.sighashes(template), pskt.sighashes(other)
        n_inputs = len(template.inputs)
        pairs: list[list] = [[] for _ in range(n_inputs)]
        genuine: list[set[bytes]] = [set() for _ in range(n_inputs)]
        for key, kind, skip in signers:
            for i in range(n_inputs):
                if skip is not None and skip % n_inputs == i:
                    continue
                if kind == "genuine":
                    signature = self.keys[key].sign(hashes[i]).signature
                    genuine[i].add(self.pubkeys[key])
                elif kind == "other-template":
                    signature = self.keys[key].sign(other_hashes[i]).signature
                else:
                    signature = hash32(bytes([key, i])) * 2
                pairs[i].append((self.pubkeys[key], signature))
        tx = pskt.SignedTransaction(template, tuple(tuple(p) for p in pairs))
        offer = node_model.Offer(
            tuple((u.txid, u.index, u.amount) for u in template.inputs),
            tuple((o.address, o.amount) for o in template.outputs),
            pskt.tx_template_hash(template),
            tuple(frozenset(g) for g in genuine),
            n_inputs,
        )
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
            return
        assert not isinstance(expected, node_model.Refusal), f"the node accepted, the model refuses: {expected.kind}"
        assert txid == offer.txid, "the node's txid is not the template hash"
        self.node = expected
        self.paid.append(tx)
        self.offers.append(offer)

    @guard(lambda self: bool(self.paid))
    @rule(k=st.integers(0, 50))
    def replay(self, k):
        self.do("replay", paid=k % len(self.paid))

    def step_replay(self, paid: int) -> None:
        self.require(0 <= paid < len(self.paid), f"no accepted payment {paid}")
        self._offer(self.paid[paid], self.offers[paid])

    # --- checks -------------------------------------------------------------------------------

    def _holdings(self) -> list[tuple[str, object, object]]:
        rows = []
        for address in (self.address, *DESTINATIONS):
            mine = sorted((u.txid.hex(), u.index, u.amount) for u in self.ledger.utxos_for(address))
            theirs = sorted((c.txid.hex(), c.index, c.amount) for c in node_model.coins_of(self.node, address))
            rows.append((address[:24], theirs, mine))
        return rows

    def observe(self) -> list[Observation]:
        if self.stack is None:
            return []
        return [Observation(f"coins of {a}", m, i) for a, m, i in self._holdings()]

    def check(self) -> None:
        if self.stack is None:
            return
        for address, expected, got in self._holdings():
            assert got == expected, f"{address} holds {got} on the node, the model says {expected}"


test_pskt_machine = machine_test(PsktMachine)
