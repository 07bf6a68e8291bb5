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

# ----- networked nodes (implementations.node) ------------------------------------------

#: Largest datagram a node decodes: a repair of ``MAX_REPAIR_MESSAGES`` ML-DSA-65 messages
#: (about 5.4 KB each with key and signature) fits with room to spare.
MAX_DATAGRAM_BYTES = 4 * 1024 * 1024
#: Messages one datagram may carry (batched gossip, repairs).
MAX_MESSAGES_PER_DATAGRAM = 256
#: A topic name, UTF-8 bytes.
MAX_TOPIC_BYTES = 128
#: One message's payload: a task-list delta or a threshold envelope, never a whole state.
MAX_PAYLOAD_BYTES = 1024 * 1024
#: Messages one anti-entropy repair carries; what is left is sent at the next round.
MAX_REPAIR_MESSAGES = 64
#: Seq ranges one digest may list per origin, and origins per topic: a digest stays small
#: however a peer's knowledge is fragmented (what does not fit is asked for next round).
MAX_DIGEST_RANGES = 256
MAX_DIGEST_ORIGINS = 4096
#: FOAF queries: the most hops a query may ask for (SPEC: queries use TTL 3).
MAX_FOAF_TTL = 8
