"""The unsigned transaction (PSKT template) every signer of a group rebuilds for an event.

A bridge event asks the group to pay ``amount`` sompi to ``destination``. Each signer asks
its own Kaspa node for the group's unspent outputs (UTXOs) and builds the unsigned
transaction itself; the signers only agree if they all build *the same* transaction, so the
build is a pure function of the event, the set of UTXOs (never the order the node listed
them in), the fee, the fee mode, the group's change address and the proposal round.

Hashing. The specification hashes with BLAKE3, which is not in the standard library, and
models use the standard library only. So every function that hashes takes
``hash32: Callable[[bytes], bytes]``, a 32-byte hash function, as a parameter; tests and
machines pass ``lambda b: blake3.blake3(b).digest()``. The model fixes *what* is hashed,
byte by byte; the caller supplies *the* hash. (Passing ids in ready-made would hide the
preimage layout, which is exactly what signers must agree on.)

Event id. ``event_id = hash32(b"igra:event:v1:" || fields)`` where the fields are, in
order: source, external id, destination (each a string: u32 little-endian length of its
UTF-8 bytes, then the bytes), amount (u64 LE), metadata (u32 LE count, then each
``(key, value)`` pair as two strings, in sorted key order; keys are unique), timestamp
(u64 LE, nanoseconds).

Selection order. ``seed = hash32(event_id || round as u32 LE)``. Every UTXO gets the key
``(hash32(seed || txid || index as u32 LE), txid, index)`` and the UTXOs are taken in
increasing key order. The order is pseudo-random, so no signer can steer which coins are
spent, yet identical for every signer with the same set. The same outpoint listed twice
is a contradiction in the node's answer and is refused (``duplicate_outpoint``).

Selection. An event moves at least 1 sompi (``amount == 0`` is refused, ``zero_amount``:
a transaction needs an input). Walk the ordered UTXOs and add each to the inputs until
``sum(inputs) >= amount + fee`` (the target is the same in every fee mode). If even all the
UTXOs do not reach it, refuse (``insufficient_funds``).

Fee modes. The transaction fee, ``sum(inputs) - sum(outputs)``, is always exactly ``fee``;
the mode only decides who carries it.

* ``RecipientPays``: the recipient gets ``amount - fee``; refused when ``amount < fee``
  (``amount_below_fee``). The change is ``sum(inputs) - amount``.
* ``SignersPay``: the recipient gets ``amount``; the change is
  ``sum(inputs) - amount - fee``.
* ``Split(recipient_parts, signer_parts)``: ``recipient_fee = fee * rp // (rp + sp)``,
  in integers (a float split rounds half-way shares and loses precision above 2**53: a
  known non-determinism bug), ``signer_fee = fee - recipient_fee``. The recipient gets
  ``amount - recipient_fee`` (refused when ``amount < recipient_fee``, ``amount_below_fee``);
  the change is ``sum(inputs) - amount - signer_fee``. Parts are non-negative and not both
  zero.

Outputs. The recipient output comes first; a change output to the group's change address
follows only when the change is positive. Inputs are listed in selection order.

The template is plain data: inputs ``(txid, index, amount)`` and outputs
``(address, amount)``. A refusal is a value, ``Refusal(kind, detail)``, not an exception;
when several apply, the first of ``duplicate_outpoint``, ``zero_amount``,
``amount_below_fee``, ``insufficient_funds`` is given. Amounts are sompi: Kaspa's whole
supply is below 2**63, so no sum here leaves the unsigned 64-bit range the encoding uses.

Encoding and hashes (what the signers sign). The template's canonical bytes (version 1):
``b"PSKT"``, version (u16 LE), the input count (u32 LE), each input as txid (32 bytes),
index (u32 LE), amount (u64 LE); the output count (u32 LE), each output as amount (u64 LE),
the address's UTF-8 length (u16 LE) and the address. ``tx_template_hash = hash32(bytes)``.
Input ``i`` is signed over ``hash32(b"igra:sighash:v1:" || tx_template_hash || i (u32 LE) ||
txid || index (u32 LE) || amount (u64 LE))``; ``validation_hash = hash32(event_id ||
tx_template_hash || sighash_0 || sighash_1 || ...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import attrs

Hash32 = Callable[[bytes], bytes]

EVENT_TAG = b"igra:event:v1:"
SIGHASH_TAG = b"igra:sighash:v1:"


@attrs.frozen
class Event:
    """A bridge event: pay ``amount`` sompi to ``destination``."""

    source: str
    external_id: str
    destination: str
    amount: int
    metadata: tuple[tuple[str, str], ...]  # (key, value) pairs, keys unique
    timestamp: int  # nanoseconds since the epoch


@attrs.frozen
class Utxo:
    """An unspent output of the group: the outpoint ``(txid, index)`` and its amount."""

    txid: bytes
    index: int
    amount: int


@attrs.frozen
class Output:
    address: str
    amount: int


@attrs.frozen
class Template:
    """The unsigned transaction: inputs in selection order, recipient output first."""

    inputs: tuple[Utxo, ...]
    outputs: tuple[Output, ...]

    @property
    def fee(self) -> int:
        return sum(u.amount for u in self.inputs) - sum(o.amount for o in self.outputs)


@attrs.frozen
class RecipientPays:
    pass


@attrs.frozen
class SignersPay:
    pass


@attrs.frozen
class Split:
    recipient_parts: int
    signer_parts: int


FeeMode = RecipientPays | SignersPay | Split


@attrs.frozen
class Refusal:
    """Why no template could be built: ``kind`` is stable, ``detail`` is for people."""

    kind: str  # "duplicate_outpoint" | "zero_amount" | "amount_below_fee" | "insufficient_funds"
    detail: str


def u32(n: int) -> bytes:
    return n.to_bytes(4, "little")


def u64(n: int) -> bytes:
    return n.to_bytes(8, "little")


def string(s: str) -> bytes:
    data = s.encode("utf-8")
    return u32(len(data)) + data


def event_fields(event: Event) -> bytes:
    """``source || external_id || destination || amount || metadata || timestamp``."""
    fields = string(event.source) + string(event.external_id) + string(event.destination) + u64(event.amount)
    fields += u32(len(event.metadata))
    for key, value in sorted(event.metadata):
        fields += string(key) + string(value)
    return fields + u64(event.timestamp)


def event_id(event: Event, hash32: Hash32) -> bytes:
    """``hash32("igra:event:v1:" || event_fields(event))``."""
    return hash32(EVENT_TAG + event_fields(event))


def selection_order(utxos: Iterable[Utxo], the_event_id: bytes, round: int, hash32: Hash32) -> list[Utxo]:
    """The UTXOs in the order greedy selection takes them."""
    seed = hash32(the_event_id + u32(round))
    return sorted(utxos, key=lambda u: (hash32(seed + u.txid + u32(u.index)), u.txid, u.index))


def recipient_fee(fee: int, mode: FeeMode) -> int:
    """The part of ``fee`` taken from the recipient's output."""
    if isinstance(mode, RecipientPays):
        return fee
    if isinstance(mode, SignersPay):
        return 0
    return fee * mode.recipient_parts // (mode.recipient_parts + mode.signer_parts)


def build_template(
    event: Event,
    utxos: Iterable[Utxo],
    fee: int,
    mode: FeeMode,
    change_address: str,
    round: int,
    hash32: Hash32,
) -> Template | Refusal:
    """The template for ``event`` spending from ``utxos``, or why there is none."""
    utxos = list(utxos)
    outpoints = [(u.txid, u.index) for u in utxos]
    for outpoint in outpoints:
        if outpoints.count(outpoint) > 1:
            return Refusal("duplicate_outpoint", f"outpoint {outpoint[0].hex()}:{outpoint[1]} listed twice")
    if event.amount == 0:
        return Refusal("zero_amount", "an event must move at least 1 sompi")
    to_recipient_fee = recipient_fee(fee, mode)
    if event.amount < to_recipient_fee:
        return Refusal("amount_below_fee", f"amount {event.amount} is below the recipient's fee {to_recipient_fee}")
    target = event.amount + fee
    inputs: list[Utxo] = []
    for utxo in selection_order(utxos, event_id(event, hash32), round, hash32):
        if sum(u.amount for u in inputs) >= target:
            break
        inputs.append(utxo)
    total = sum(u.amount for u in inputs)
    if total < target:
        return Refusal("insufficient_funds", f"the group holds {total} sompi, needs {target} (amount + fee)")
    outputs = [Output(event.destination, event.amount - to_recipient_fee)]
    change = total - event.amount - (fee - to_recipient_fee)
    if change > 0:
        outputs.append(Output(change_address, change))
    return Template(tuple(inputs), tuple(outputs))


def template_bytes(template: Template) -> bytes:
    """The template's canonical bytes (version 1, see the module docstring)."""
    data = b"PSKT" + (1).to_bytes(2, "little") + u32(len(template.inputs))
    for u in template.inputs:
        data += u.txid + u32(u.index) + u64(u.amount)
    data += u32(len(template.outputs))
    for o in template.outputs:
        address = o.address.encode("utf-8")
        data += u64(o.amount) + len(address).to_bytes(2, "little") + address
    return data


def sighash(template: Template, i: int, hash32: Hash32) -> bytes:
    """What the group's keys sign for input ``i``."""
    u = template.inputs[i]
    return hash32(SIGHASH_TAG + hash32(template_bytes(template)) + u32(i) + u.txid + u32(u.index) + u64(u.amount))


def validation_hash(the_event_id: bytes, template: Template, hash32: Hash32) -> bytes:
    """``hash32(event_id || tx_template_hash || every input's sighash, in order)``."""
    sighashes = b"".join(sighash(template, i, hash32) for i in range(len(template.inputs)))
    return hash32(the_event_id + hash32(template_bytes(template)) + sighashes)
