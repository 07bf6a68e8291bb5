"""Deterministic unsigned transactions (PSKT templates) for a Kaspa threshold-signing group.

Every signer of an m-of-n group rebuilds the unsigned transaction for a bridge event from
its own node's view of the group's UTXOs. ``build_template`` gives the same template,
byte for byte, whatever order the UTXOs are listed in (SPEC.md section 2):

* UTXOs are taken in the order of ``(BLAKE3(seed || txid || index u32 LE), txid, index)``
  with ``seed = BLAKE3(event_hash || round u32 LE)``, until ``sum >= amount + fee``;
* the recipient output comes first, then change to the group's change address if positive;
* the transaction fee is exactly ``fee``; ``RecipientPays``, ``SignersPay`` and
  ``Split(rp, sp)`` (``recipient_fee = fee * rp // (rp + sp)``, integers only) decide who
  carries it. A template that cannot be built raises ``TemplateRefused`` with a ``kind``
  (``duplicate_outpoint``, ``zero_amount``, ``amount_below_fee``, ``insufficient_funds``).

Canonical encodings (all integers fixed-width little-endian, strings UTF-8):

* event fields (``encode_event``): source, external_id, destination as ``u32 len || bytes``;
  amount u64; metadata as u32 count then ``key, value`` strings in strictly increasing key
  order; timestamp u64 (ns). ``event_hash = BLAKE3(b"igra:event:v1:" || event fields)``.
* template (``encode_template``), version 1::

      b"PSKT" | version u16 | n_inputs u32 | n_inputs * (txid 32 bytes | index u32 | amount u64)
             | n_outputs u32 | n_outputs * (amount u64 | address_len u16 | address UTF-8)

  ``decode_template`` is strict: bad magic, an unknown version, a truncated field, a
  non-UTF-8 or empty address or trailing bytes raise ``implementations.wire.DecodeError``
  naming the field and offset. Every field is fixed-width or length-prefixed, so each
  template has exactly one encoding: ``decode(encode(t)) == t`` and
  ``encode(decode(b)) == b``.

Hashes:

* ``tx_template_hash = BLAKE3(encode_template(t))``; it is also the transaction id.
* ``input_sighash(t, i) = BLAKE3(b"igra:sighash:v1:" || tx_template_hash || i u32 LE ||
  txid || index u32 LE || amount u64 LE)``: what the group's keys sign for input ``i``
  (Ed25519 over these 32 bytes). It commits to the whole transaction and to the coin spent.
* ``validation_hash = BLAKE3(event_hash || tx_template_hash || sighash_0 || ... )``.
* Compare hashes with ``hashes_equal`` (``hmac.compare_digest``, constant time).

``SignedTransaction`` is what a coordinator submits to the node (see ``implementations.ledger``):
the template plus, for each input in order, a tuple of ``(public_key, signature)`` pairs
(32 and 64 bytes), at least ``m`` of them by distinct keys of the owning group.
"""

from __future__ import annotations

import hmac
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import nacl.exceptions
import nacl.signing
from blake3 import blake3

from implementations.wire import DecodeError

__all__ = [
    "EVENT_TAG",
    "SIGHASH_TAG",
    "TEMPLATE_VERSION",
    "Event",
    "FeeMode",
    "Output",
    "RecipientPays",
    "SignedTransaction",
    "SignersPay",
    "Split",
    "Template",
    "TemplateRefused",
    "Utxo",
    "build_template",
    "decode_event",
    "decode_template",
    "encode_event",
    "encode_template",
    "event_hash",
    "hashes_equal",
    "input_sighash",
    "recipient_fee_share",
    "selection_order",
    "sighashes",
    "sign_inputs",
    "tx_template_hash",
    "validation_hash",
    "verify_signature",
]

EVENT_TAG = b"igra:event:v1:"
SIGHASH_TAG = b"igra:sighash:v1:"
TEMPLATE_MAGIC = b"PSKT"
TEMPLATE_VERSION = 1
U32_MAX = 2**32 - 1
U64_MAX = 2**64 - 1

_HEADER = struct.Struct("<4sHI")  # magic, version, n_inputs
_INPUT = struct.Struct("<32sIQ")  # txid, index, amount
_COUNT = struct.Struct("<I")
_OUTPUT = struct.Struct("<QH")  # amount, address length
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_OUTPOINT = struct.Struct("<IQ")


def _check_int(value: int, name: str, hi: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= hi:
        raise ValueError(f"{name} must be an integer in [0, {hi}], got {value!r}")


# --- data -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    """A bridge event. ``metadata`` (string pairs, or a dict) is kept as pairs sorted by key."""

    source: str
    external_id: str
    destination: str
    amount: int
    metadata: tuple[tuple[str, str], ...] = ()
    timestamp: int = 0

    def __post_init__(self) -> None:
        for name in ("source", "external_id", "destination"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"event {name} must be a string, got {getattr(self, name)!r:.80}")
        if not 1 <= len(self.destination.encode("utf-8")) <= 0xFFFF:
            raise ValueError(f"event destination must be a non-empty address of at most 65535 bytes: {self.destination!r:.60}")
        _check_int(self.amount, "event amount", U64_MAX)
        _check_int(self.timestamp, "event timestamp", U64_MAX)
        items = tuple(self.metadata.items() if isinstance(self.metadata, Mapping) else self.metadata)
        if not all(isinstance(p, (tuple, list)) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in items):
            raise ValueError(f"event metadata must be (key, value) string pairs, got {items!r:.80}")
        metadata = tuple(sorted((k, v) for k, v in items))
        keys = [k for k, _ in metadata]
        if len(set(keys)) != len(keys):
            raise ValueError(f"event metadata has a duplicate key: {sorted(k for k in keys if keys.count(k) > 1)[0]!r}")
        object.__setattr__(self, "metadata", metadata)


@dataclass(frozen=True, slots=True)
class Utxo:
    """An unspent output: outpoint ``(txid, index)`` and amount in sompi. Also a template input."""

    txid: bytes
    index: int
    amount: int

    def __post_init__(self) -> None:
        if not isinstance(self.txid, bytes) or len(self.txid) != 32:
            raise ValueError(f"a txid is 32 bytes, got {self.txid!r:.80}")
        _check_int(self.index, "output index", U32_MAX)
        _check_int(self.amount, "UTXO amount", U64_MAX)

    @property
    def outpoint(self) -> tuple[bytes, int]:
        return (self.txid, self.index)


@dataclass(frozen=True, slots=True)
class Output:
    address: str
    amount: int

    def __post_init__(self) -> None:
        if not isinstance(self.address, str) or not 1 <= len(self.address.encode("utf-8")) <= 0xFFFF:
            raise ValueError(f"an address is a non-empty string of at most 65535 UTF-8 bytes, got {self.address!r:.80}")
        _check_int(self.amount, "output amount", U64_MAX)


@dataclass(frozen=True, slots=True)
class Template:
    """The unsigned transaction: inputs in selection order, recipient output first."""

    inputs: tuple[Utxo, ...]
    outputs: tuple[Output, ...]

    @property
    def fee(self) -> int:
        """``sum(inputs) - sum(outputs)`` (negative for a template that creates money)."""
        return sum(u.amount for u in self.inputs) - sum(o.amount for o in self.outputs)


@dataclass(frozen=True, slots=True)
class RecipientPays:
    """The recipient gets ``amount - fee``."""


@dataclass(frozen=True, slots=True)
class SignersPay:
    """The recipient gets ``amount``; the change pays the fee."""


@dataclass(frozen=True, slots=True)
class Split:
    """The fee is split ``recipient_parts : signer_parts``, the recipient's share rounded down."""

    recipient_parts: int
    signer_parts: int

    def __post_init__(self) -> None:
        _check_int(self.recipient_parts, "recipient_parts", U32_MAX)
        _check_int(self.signer_parts, "signer_parts", U32_MAX)
        if self.recipient_parts + self.signer_parts == 0:
            raise ValueError("Split needs at least one part: recipient_parts + signer_parts == 0")


FeeMode = RecipientPays | SignersPay | Split


@dataclass(frozen=True, slots=True)
class SignedTransaction:
    """A template with, per input, the ``(public_key, signature)`` pairs collected for it."""

    template: Template
    signatures: tuple[tuple[tuple[bytes, bytes], ...], ...]


class TemplateRefused(ValueError):
    """No template can be built for this event from this UTXO set. ``kind`` is stable."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


# --- events ---------------------------------------------------------------------------


def _put_str(parts: list[bytes], s: str) -> None:
    data = s.encode("utf-8")
    parts.append(_U32.pack(len(data)))
    parts.append(data)


def encode_event(event: Event) -> bytes:
    """The event's canonical fields (the event-hash preimage without its tag)."""
    parts: list[bytes] = []
    _put_str(parts, event.source)
    _put_str(parts, event.external_id)
    _put_str(parts, event.destination)
    parts.append(_U64.pack(event.amount))
    parts.append(_U32.pack(len(event.metadata)))
    for key, value in event.metadata:
        _put_str(parts, key)
        _put_str(parts, value)
    parts.append(_U64.pack(event.timestamp))
    return b"".join(parts)


def event_hash(event: Event) -> bytes:
    """The event id: ``BLAKE3(b"igra:event:v1:" || encode_event(event))``."""
    return blake3(EVENT_TAG + encode_event(event)).digest()


class _Reader:
    """Reads fixed-width fields off a buffer; every shortfall is a ``DecodeError``."""

    def __init__(self, data: bytes, what: str) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise DecodeError(f"{what}: expected bytes, got {type(data).__name__}")
        self.data, self.pos, self.what = memoryview(bytes(data)), 0, what

    def take(self, n: int, field: str) -> memoryview:
        if len(self.data) - self.pos < n:
            left = len(self.data) - self.pos
            raise DecodeError(f"{self.what}: truncated at {field} (offset {self.pos}): needs {n} bytes, {left} left")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: struct.Struct, field: str) -> tuple:
        return fmt.unpack(self.take(fmt.size, field))

    def text(self, n: int, field: str) -> str:
        at = self.pos
        try:
            return bytes(self.take(n, field)).decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError(f"{self.what}: {field} (offset {at}) is not valid UTF-8") from None

    def string(self, field: str) -> str:
        (n,) = self.unpack(_U32, f"{field} length")
        return self.text(n, field)

    def end(self) -> None:
        if self.pos != len(self.data):
            raise DecodeError(f"{self.what}: {len(self.data) - self.pos} trailing bytes at offset {self.pos}")


def decode_event(data: bytes) -> Event:
    """The event whose canonical fields are ``data``, or ``DecodeError``."""
    r = _Reader(data, "event")
    source, external_id, destination = r.string("source"), r.string("external_id"), r.string("destination")
    (amount,) = r.unpack(_U64, "amount")
    (count,) = r.unpack(_U32, "metadata count")
    metadata = []
    for i in range(count):
        key, value = r.string(f"metadata[{i}] key"), r.string(f"metadata[{i}] value")
        if metadata and key <= metadata[-1][0]:
            previous = metadata[-1][0]
            raise DecodeError(f"event: metadata[{i}] key {key!r:.40} is not after {previous!r:.40} (keys must be sorted, unique)")
        metadata.append((key, value))
    (timestamp,) = r.unpack(_U64, "timestamp")
    r.end()
    try:
        return Event(source, external_id, destination, amount, tuple(metadata), timestamp)
    except ValueError as error:
        raise DecodeError(f"event: {error}") from None


# --- templates ------------------------------------------------------------------------


def encode_template(template: Template) -> bytes:
    """The canonical bytes of ``template`` (format version 1, see the module docstring)."""
    parts = [_HEADER.pack(TEMPLATE_MAGIC, TEMPLATE_VERSION, len(template.inputs))]
    parts.extend(_INPUT.pack(u.txid, u.index, u.amount) for u in template.inputs)
    parts.append(_COUNT.pack(len(template.outputs)))
    for output in template.outputs:
        address = output.address.encode("utf-8")
        parts.append(_OUTPUT.pack(output.amount, len(address)))
        parts.append(address)
    return b"".join(parts)


def decode_template(data: bytes) -> Template:
    """The template encoded in ``data``; anything else raises ``DecodeError``."""
    r = _Reader(data, "pskt")
    magic, version, n_inputs = r.unpack(_HEADER, "header")
    if magic != TEMPLATE_MAGIC:
        raise DecodeError(f"pskt: bad magic {bytes(magic)!r}, expected {TEMPLATE_MAGIC!r}")
    if version != TEMPLATE_VERSION:
        raise DecodeError(f"pskt: version {version} is not supported (expected {TEMPLATE_VERSION})")
    if n_inputs * _INPUT.size > len(r.data) - r.pos:
        raise DecodeError(f"pskt: truncated: {n_inputs} inputs need {n_inputs * _INPUT.size} bytes, {len(r.data) - r.pos} left")
    inputs = tuple(Utxo(*r.unpack(_INPUT, f"input {i}")) for i in range(n_inputs))
    (n_outputs,) = r.unpack(_COUNT, "output count")
    outputs = []
    for i in range(n_outputs):
        amount, length = r.unpack(_OUTPUT, f"output {i}")
        if length == 0:
            raise DecodeError(f"pskt: output {i} has an empty address (offset {r.pos - 2})")
        outputs.append(Output(r.text(length, f"output {i} address"), amount))
    r.end()
    return Template(inputs, tuple(outputs))


def tx_template_hash(template: Template) -> bytes:
    """``BLAKE3(encode_template(template))``, also the transaction id."""
    return blake3(encode_template(template)).digest()


def input_sighash(template: Template, index: int, template_hash: bytes | None = None) -> bytes:
    """What the group signs for input ``index`` (pass ``template_hash`` to save rehashing)."""
    if template_hash is None:
        template_hash = tx_template_hash(template)
    utxo = template.inputs[index]
    return blake3(SIGHASH_TAG + template_hash + _U32.pack(index) + utxo.txid + _OUTPOINT.pack(utxo.index, utxo.amount)).digest()


def sighashes(template: Template) -> tuple[bytes, ...]:
    """The sighash of every input, in input order."""
    template_hash = tx_template_hash(template)
    return tuple(input_sighash(template, i, template_hash) for i in range(len(template.inputs)))


def validation_hash(the_event_hash: bytes, template: Template) -> bytes:
    """``BLAKE3(event_hash || tx_template_hash || sighash_0 || ...)``."""
    hasher = blake3(the_event_hash)
    template_hash = tx_template_hash(template)
    hasher.update(template_hash)
    for i in range(len(template.inputs)):
        hasher.update(input_sighash(template, i, template_hash))
    return hasher.digest()


def hashes_equal(a: bytes, b: bytes) -> bool:
    """Constant-time comparison of two hashes."""
    return hmac.compare_digest(a, b)


def sign_inputs(signing_key: nacl.signing.SigningKey, template: Template) -> tuple[bytes, ...]:
    """``signing_key``'s 64-byte Ed25519 signature over each input's sighash, in input order."""
    return tuple(signing_key.sign(h).signature for h in sighashes(template))


def verify_signature(public_key: bytes, signature: bytes, sighash: bytes) -> bool:
    """Whether ``signature`` is ``public_key``'s valid Ed25519 signature over ``sighash``."""
    if not (isinstance(public_key, bytes) and len(public_key) == 32 and isinstance(signature, bytes) and len(signature) == 64):
        return False
    try:
        nacl.signing.VerifyKey(public_key).verify(sighash, signature)
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        return False
    return True


# --- building -------------------------------------------------------------------------


def recipient_fee_share(fee: int, fee_mode: FeeMode) -> int:
    """The part of ``fee`` taken from the recipient's output (integer arithmetic only)."""
    if isinstance(fee_mode, RecipientPays):
        return fee
    if isinstance(fee_mode, SignersPay):
        return 0
    if isinstance(fee_mode, Split):
        return fee * fee_mode.recipient_parts // (fee_mode.recipient_parts + fee_mode.signer_parts)
    raise TypeError(f"fee_mode must be RecipientPays, SignersPay or Split, got {fee_mode!r}")


def selection_order(utxos: Iterable[Utxo], the_event_hash: bytes, round: int = 0) -> list[Utxo]:
    """``utxos`` in the order greedy selection takes them; a repeated outpoint is refused."""
    seed = blake3(the_event_hash + _U32.pack(round)).digest()
    keyed = []
    seen: set[tuple[bytes, int]] = set()
    for utxo in utxos:
        outpoint = (utxo.txid, utxo.index)
        if outpoint in seen:
            raise TemplateRefused("duplicate_outpoint", f"the UTXO set lists {utxo.txid.hex()}:{utxo.index} twice")
        seen.add(outpoint)
        keyed.append((blake3(seed + utxo.txid + _U32.pack(utxo.index)).digest(), utxo.txid, utxo.index, utxo))
    keyed.sort(key=lambda k: k[:3])
    return [k[3] for k in keyed]


def build_template(
    event: Event,
    utxos: Iterable[Utxo],
    *,
    fee: int,
    fee_mode: FeeMode,
    change_address: str,
    round: int = 0,
) -> Template:
    """The deterministic template paying ``event``, independent of the order of ``utxos``.

    ``change_address`` is the group's own address; ``round`` (u32) changes the selection
    order when a proposal is retried. Raises ``TemplateRefused`` (see the module docstring).
    """
    _check_int(fee, "fee", U64_MAX)
    _check_int(round, "round", U32_MAX)
    recipient_fee = recipient_fee_share(fee, fee_mode)
    signer_fee = fee - recipient_fee
    ordered = selection_order(utxos, event_hash(event), round)
    if event.amount == 0:
        raise TemplateRefused("zero_amount", "the event moves 0 sompi; a transaction needs at least 1")
    if event.amount < recipient_fee:
        raise TemplateRefused("amount_below_fee", f"amount {event.amount} is below the recipient's fee share {recipient_fee}")

    target = event.amount + fee
    selected, total = [], 0
    for utxo in ordered:
        if total >= target:
            break
        selected.append(utxo)
        total += utxo.amount
    if total < target:
        raise TemplateRefused("insufficient_funds", f"the group's UTXOs hold {total} sompi, {target} needed (amount + fee)")

    outputs = [Output(event.destination, event.amount - recipient_fee)]
    change = total - event.amount - signer_fee
    if change > 0:
        outputs.append(Output(change_address, change))
    return Template(tuple(selected), tuple(outputs))
