"""The Kaspa node as a threshold-signing group sees it: unspent outputs and when it accepts.

State. A node holds coins: an unspent output ``(txid, index)`` with its ``amount`` and the
``owner`` address; and the set of outpoints already spent. The faucet (``fund``) creates a
coin out of nothing under a fresh txid.

Groups. Some addresses belong to an m-of-n group: ``Group(m, keys)``, keys in the group's
order. A coin owned by any other address cannot be spent through this node.

A transaction offered to the node (``Offer``) lists its inputs ``(txid, index, amount)``, its
outputs ``(address, amount)``, its txid, and, for each input, the set of keys that gave a
*genuine* signature over that input's sighash. Which signatures are genuine is a fact of
cryptography, not modelled here: the machine knows it, because it made the signatures.
``signed_inputs`` is how many per-input signature lists came with the transaction.

Acceptance. The node checks, in this order, and refuses with the first kind that applies:

1. ``malformed``: the signature lists do not match the inputs one for one, or there are no
   inputs or no outputs;
2. ``double_spend``: an input spends an outpoint an earlier input of the same transaction
   spends, or one already spent;
3. ``unknown_input``: an input spends an outpoint the node never created;
4. ``amount_mismatch``: an input's amount is not the coin's amount;
5. ``not_multisig``: an input's coin is owned by an address that is no group;
6. ``fee``: the outputs add up to more than the inputs, or the fee (inputs minus outputs)
   is below the node's minimum fee;
7. ``signatures``: for some input, fewer than ``m`` keys *of the owning group* signed it
   genuinely (a key counts once however often it signs; other keys count for nothing).

These are checked input by input in the order of the inputs, the first failing input
deciding, except the fee (6), which needs every input and comes after 2-5 for all of them.
On acceptance the inputs become spent and output ``i`` becomes the coin ``(txid, i)``.
A refusal leaves the node as it was.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs


@attrs.frozen
class Coin:
    txid: bytes
    index: int
    amount: int
    owner: str


@attrs.frozen
class Group:
    m: int
    keys: tuple[bytes, ...]


@attrs.frozen
class Node:
    coins: frozenset[Coin] = frozenset()
    spent: frozenset[tuple[bytes, int]] = frozenset()


@attrs.frozen
class Offer:
    inputs: tuple[tuple[bytes, int, int], ...]  # (txid, index, amount)
    outputs: tuple[tuple[str, int], ...]  # (address, amount)
    txid: bytes
    genuine_signers: tuple[frozenset[bytes], ...]  # per input: keys that signed it genuinely
    signed_inputs: int  # how many per-input signature lists came with it


@attrs.frozen
class Refusal:
    kind: str
    detail: str


def fund(node: Node, txid: bytes, owner: str, amount: int) -> Node:
    """The node with a new coin ``(txid, 0)`` of ``amount`` for ``owner``."""
    return Node(node.coins | {Coin(txid, 0, amount, owner)}, node.spent)


def coins_of(node: Node, owner: str) -> frozenset[Coin]:
    return frozenset(c for c in node.coins if c.owner == owner)


def submit(node: Node, groups: Mapping[str, Group], min_fee: int, offer: Offer) -> Node | Refusal:
    """The node after accepting ``offer``, or why it refuses it."""
    if offer.signed_inputs != len(offer.inputs) or not offer.inputs or not offer.outputs:
        return Refusal("malformed", "signature lists must match inputs; inputs and outputs must not be empty")
    by_outpoint = {(c.txid, c.index): c for c in node.coins}
    for i, (txid, index, amount) in enumerate(offer.inputs):
        if (txid, index) in [(t, x) for t, x, _ in offer.inputs[:i]]:
            return Refusal("double_spend", f"input {i} repeats an earlier input")
        if (txid, index) in node.spent:
            return Refusal("double_spend", f"input {i} is already spent")
        if (txid, index) not in by_outpoint:
            return Refusal("unknown_input", f"input {i} was never created")
        if by_outpoint[(txid, index)].amount != amount:
            return Refusal("amount_mismatch", f"input {i} claims {amount}")
        if by_outpoint[(txid, index)].owner not in groups:
            return Refusal("not_multisig", f"input {i} is owned by no group")
    total_in = sum(amount for _, _, amount in offer.inputs)
    total_out = sum(amount for _, amount in offer.outputs)
    if total_out > total_in or total_in - total_out < min_fee:
        return Refusal("fee", f"inputs {total_in}, outputs {total_out}, minimum fee {min_fee}")
    for i, (txid, index, _) in enumerate(offer.inputs):
        group = groups[by_outpoint[(txid, index)].owner]
        if len(offer.genuine_signers[i] & set(group.keys)) < group.m:
            return Refusal("signatures", f"input {i} has fewer than {group.m} genuine group signatures")
    spent_coins = {by_outpoint[(txid, index)] for txid, index, _ in offer.inputs}
    created = {Coin(offer.txid, i, amount, address) for i, (address, amount) in enumerate(offer.outputs)}
    return Node((node.coins - spent_coins) | created, node.spent | {(t, x) for t, x, _ in offer.inputs})
