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

#: SQLite's INTEGER is signed 64-bit. A wire integer that is stored in an INTEGER column
#: (a proposal's ``expires_at``) is refused at decode beyond this bound, so it can never
#: overflow halfway through a transaction (issue 7, defect 10).
I64_MAX = 2**63 - 1

#: Longest request id (the envelope's session id) in characters. Coordinators make request
#: ids of about 15 characters; each accepted envelope stores its session id for 24 hours.
MAX_SESSION_ID_CHARS = 128

#: Longest reason a signer's answer may give for a refusal, in characters: a coordinator
#: stores one per member and request. The SPEC's reasons are under 80 characters.
MAX_REASON_CHARS = 512

#: Most signatures one answer may carry, checked at decode (before any is verified). An
#: honest answer carries one per input; a relay may carry every member's, so a coordinator
#: also refuses an answer with more than (inputs x members) of them for its request.
MAX_ANSWER_SIGNATURES = 4096

#: Most envelopes one peer may have accepted in one session within the replay window: the
#: replay cache's rows per (peer, session). An honest member sends one proposal or one
#: answer per session; repeats of one envelope are refused as replays and add nothing.
MAX_ENVELOPES_PER_PEER_SESSION = 64

#: Most unexpired requests one coordinator may have a signer answer: the signer's stored
#: answers per peer. Requests live at most an hour (the expiry window), so an honest
#: coordinator stays far below it.
MAX_LIVE_REQUESTS_PER_COORDINATOR = 1024

# What a coordinator stores from outsiders is bounded by construction, not by a number:
# only signatures by members, on inputs the request has, once per (request, input, member);
# acks only from members, once per (request, member); a non-member's envelope leaves no row.
