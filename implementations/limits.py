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

#: Longest line a child process of the process adapter (``harness.process``) may answer
#: with. A reply carries at most one replica's state in base64 (kilobytes at the sizes
#: machines use); a child that writes more without an end of line answers nonsense.
MAX_PROCESS_REPLY_BYTES = 64 * 1024 * 1024
