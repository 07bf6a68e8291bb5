"""Every limit an implementation puts on what a peer may send or store, in one place.

A message over a limit is refused whole with ``implementations.wire.DecodeError`` (or a
subclass), whose text names the limit, and changes nothing. Each limit below says what it
bounds and why its value is what it is; the README's table of limits is made from this
module (``python -m harness limits``) so the two cannot drift apart.

Add a limit here, never as a literal where it is checked.
"""

from __future__ import annotations

#: Largest message any decoder accepts. A guard against absurd length headers; the
#: tighter per-kind limits below are what really bound the work a message causes.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

#: Integers on the wire are unsigned 64-bit unless a field says otherwise.
U64_MAX = 2**64 - 1

#: The greatest RGA counter (``implementations.rga``): ids are ``(counter, replica)``, both
#: unsigned 64-bit on the wire, and a local insert takes a counter one above every counter
#: its replica has seen. Every counter up to this one is accepted from a peer: refusing a
#: lower ceiling would not stop an attacker (it would send the ceiling itself) and would cut
#: off honest replicas whose own inserts go past it after such an attack. A replica that has
#: seen this counter refuses further inserts with ``CounterSpaceExhausted`` before changing
#: anything; its deletes, deltas, merges and ``state()`` go on working, so the worst a peer
#: can do with one message is stop the inserts of those who receive it, never poison them.
RGA_MAX_COUNTER = U64_MAX
