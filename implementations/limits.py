"""Every limit an implementation puts on what a peer may send or store, in one place.

A message over a limit is refused whole with ``implementations.wire.OverLimit`` (a
``DecodeError``), whose text and ``limit`` attribute name the limit, and changes nothing.
Each limit below says what it bounds and why its value is what it is; the README's table of
limits is made from this module (``python -m harness limits``) so the two cannot drift apart
(``tests/test_limits.py`` checks it).

Add a limit here with ``declare``, never as a literal where it is checked. ``declare``
returns the plain integer, so ``from implementations.limits import X`` gives a number.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class Limit(NamedTuple):
    """A declared limit: its name, value and unit, what it bounds, and why this value."""

    name: str
    value: int | float
    unit: str
    bounds: str
    why: str


#: Every declared limit, by name, in the order of declaration.
LIMITS: dict[str, Limit] = {}


def declare(name: str, value: int | float, unit: str, bounds: str, why: str = "") -> Any:
    """Record a limit in ``LIMITS`` and return its value (an int, or a float of seconds)."""
    if name in LIMITS:
        raise ValueError(f"limit {name} is declared twice")
    LIMITS[name] = Limit(name, value, unit, bounds, why)
    return value


#: Integers on the wire are unsigned 64-bit unless a field says otherwise (not a limit a
#: peer can exceed: the decoder refuses anything else as malformed).
U64_MAX = 2**64 - 1

#: SQLite's INTEGER is signed 64-bit. A wire integer that is stored in an INTEGER column
#: (a proposal's ``expires_at``) is refused at decode beyond this bound, so it can never
#: overflow halfway through a transaction (issue 7, defect 10). (A type's bound, like U64_MAX.)
I64_MAX = 2**63 - 1

# ----- every message ----------------------------------------------------------------------

MAX_MESSAGE_BYTES = declare(
    "MAX_MESSAGE_BYTES", 64 * 1024 * 1024, "bytes",
    "any message any decoder accepts",
    "a guard against absurd length headers; the per-kind limits below are what bound the work a message causes",
)

# ----- causal contexts and dots (OR-Sets, and the task list's membership) --------------------

MAX_COUNTER_GAP = declare(
    "MAX_COUNTER_GAP", 2**32, "counters",
    "how far beyond the greatest dot of a replica the receiver has seen a message may name that replica's dots "
    "(the receiver's own included)",
    "no replica makes four billion operations between two messages that reach a peer; a counter near 2^64 - 1 "
    "then needs 2^32 messages to reach, so no counter ever overflows (a replica's next dot is beyond every dot "
    "of its own it has seen, so an accepted claim ahead only makes it skip counters)",
)
MAX_CONTEXT_REPLICAS = declare(
    "MAX_CONTEXT_REPLICAS", 2**16, "replicas",
    "distinct replicas a causal context names, in a message and in a replica's state after the join",
    "each costs memory for ever; 65,536 replicas of one set is beyond any deployment this project models",
)
MAX_CLOUD_RANGES = declare(
    "MAX_CLOUD_RANGES", 2**16, "ranges",
    "runs of dots seen out of order (beyond a gap in a replica's counters), all replicas together, in a "
    "message and in a replica's state after the join",
    "gaps come from deltas lost or late and a full-state sync closes them, so honest clouds stay small; a "
    "lying peer cannot make a receiver keep a million-dot cloud (a run of dots costs one range, not one "
    "entry per dot)",
)
MAX_SET_DOTS = declare(
    "MAX_SET_DOTS", 2**22, "dots",
    "live dots (adds not yet removed) a delta-state OR-Set replica holds after a join",
    "replica ids are not authenticated, so a bound per peer would bound nothing: the whole store is bounded "
    "(about 1 GiB of Python objects at the limit)",
)
MAX_TOMBSTONE_TAGS = declare(
    "MAX_TOMBSTONE_TAGS", 2**22, "tags",
    "tags (added and tombstoned, counted per element) a tombstone OR-Set replica holds after a merge",
    "tombstones are never collected, so this bounds the whole memory of the set; use the delta-state "
    "OR-Set for sets that churn",
)

# ----- hybrid logical clocks (LWW registers, the task list's fields) --------------------------

MAX_CLOCK_AHEAD_NS = declare(
    "MAX_CLOCK_AHEAD_NS", 300 * 10**9, "ns",
    "how far a received write's wall time may be ahead of the receiver's clock",
    "deployed hybrid logical clocks bound the offset they accept (CockroachDB: 500 ms by default); five "
    "minutes tolerates badly set clocks, yet a peer cannot drag every later timestamp to the year 2554",
)
MAX_HLC_COUNTER = declare(
    "MAX_HLC_COUNTER", 2**32 - 1, "counter",
    "the counter of a timestamp: received writes above it are refused, and a clock about to issue more moves "
    "its wall time on by one nanosecond instead",
    "the counter only counts writes within one wall-clock nanosecond; bounding it keeps every counter a "
    "replica issues or accepts far from 2^64 - 1, so no message can make its next write overflow",
)

# ----- the task list -----------------------------------------------------------------------

MAX_TASKS = declare(
    "MAX_TASKS", 2**16, "task ids",
    "task ids a task-list replica keeps field registers of, and (separately) checkbox records of, after a "
    "join; a message carries at most 4 field writes and 2 records per task of that many",
    "fields and checkbox states of a task may arrive before the task does, so they are kept for any id; this "
    "bounds what a peer can make a replica keep (the state holds at most two checkbox records per task: the "
    "best claim and the best completion)",
)

# --- Threshold signing (implementations/threshold.py, threshold_envelope.py) -----------------

MAX_SESSION_ID_CHARS = declare(
    "MAX_SESSION_ID_CHARS", 128, "characters",
    "longest request id (the envelope's session id)",
    "coordinators make request ids of about 15 characters; each accepted envelope stores its session id for 24 hours",
)
MAX_REASON_CHARS = declare(
    "MAX_REASON_CHARS", 512, "characters",
    "longest reason a signer's answer may give for a refusal",
    "a coordinator stores one per member and request; the SPEC's reasons are under 80 characters",
)
MAX_ANSWER_SIGNATURES = declare(
    "MAX_ANSWER_SIGNATURES", 4096, "signatures",
    "most signatures one answer may carry, checked at decode (before any is verified)",
    "an honest answer carries one per input; a relay may carry every member's, so a coordinator also refuses an "
    "answer with more than (inputs x members) of them for its request",
)
MAX_ENVELOPES_PER_PEER_SESSION = declare(
    "MAX_ENVELOPES_PER_PEER_SESSION", 64, "envelopes",
    "most envelopes one peer may have accepted in one session within the replay window: the replay cache's rows "
    "per (peer, session)",
    "an honest member sends one proposal or one answer per session; repeats of one envelope are refused as "
    "replays and add nothing",
)
MAX_LIVE_REQUESTS_PER_COORDINATOR = declare(
    "MAX_LIVE_REQUESTS_PER_COORDINATOR", 1024, "requests",
    "most unexpired requests one coordinator may have a signer answer: the signer's stored answers per peer",
    "requests live at most an hour (the expiry window), so an honest coordinator stays far below it",
)

# What a coordinator stores from outsiders is bounded by construction, not by a number:
# only signatures by members, on inputs the request has, once per (request, input, member);
# acks only from members, once per (request, member); a non-member's envelope leaves no row.

# --- The RGA sequence (implementations/rga.py) ---------------------------------------------

RGA_MAX_COUNTER = declare(
    "RGA_MAX_COUNTER", U64_MAX, "counter",
    "the greatest RGA counter: ids are (counter, replica), both unsigned 64-bit on the wire, and a local insert "
    "takes a counter one above every counter its replica has seen",
    "every counter up to this one is accepted from a peer: a lower ceiling would not stop an attacker (it would "
    "send the ceiling itself) and would cut off honest replicas whose own inserts go past it after such an "
    "attack. A replica that has seen it refuses further inserts with CounterSpaceExhausted before changing "
    "anything; its deletes, deltas, merges and state() go on working, so one message can stop the inserts of "
    "those who receive it, never poison them",
)

# --- The QUIC transport between node processes (implementations/transport/) ---------------

MAX_FRAME_BYTES = declare(
    "MAX_FRAME_BYTES", 1024 * 1024, "bytes",
    "largest message framed on a QUIC stream (the 4-byte length prefix not counted)",
    "a node's messages are envelopes, digests and deltas: kilobytes (an ML-DSA-65 signature is 3,309 "
    "bytes). A frame header announcing more closes the connection with a reason naming this. A connection "
    "carries one stream (the client's first bidirectional stream): data on any other stream closes the "
    "connection too",
)
MAX_AUTH_MESSAGE_BYTES = declare(
    "MAX_AUTH_MESSAGE_BYTES", 8 * 1024, "bytes",
    "largest identity hello or proof (public key, nonce, certificate fingerprint, signature)",
    "an ML-DSA-65 public key (1,952 bytes) and signature (3,309 bytes) fit with room to spare",
)
MAX_SEND_BUFFER_BYTES = declare(
    "MAX_SEND_BUFFER_BYTES", 4 * 1024 * 1024, "bytes",
    "bytes written to a connection's stream and not yet acknowledged by the peer",
    "a send past it waits (``Connection.send``) or is refused (``Connection.send_nowait``: the core "
    "driver drops the message and counts it; gossip and anti-entropy repair what is lost)",
)
QUIC_MAX_STREAM_DATA = declare(
    "QUIC_MAX_STREAM_DATA", 2 * 1024 * 1024, "bytes",
    "QUIC flow control granted to a peer, per stream",
    "a peer cannot make us buffer more than this of data we have not yet read from aioquic",
)
QUIC_MAX_DATA = declare(
    "QUIC_MAX_DATA", 4 * 1024 * 1024, "bytes",
    "QUIC flow control granted to a peer, per connection",
    "a peer cannot make us buffer more than this of data we have not yet read from aioquic",
)
QUIC_DATAGRAM_BYTES = declare(
    "QUIC_DATAGRAM_BYTES", 16_000, "bytes",
    "largest QUIC datagram (UDP payload) an endpoint sends",
    "nodes talk on 127.0.0.1, whose MTU is 65,536; aioquic writes a long-header packet's length in "
    "2 bytes, so at most 16,383. A 4 MiB message costs 3.5 times less CPU than at RFC 9000's 1,200 "
    "(the endpoint machine's send-buffer search: 7.2 against 25.0 CPU s for the same 18 examples). "
    "Across a real network the path's MTU bounds it: 1,200 is always safe",
)
MAX_RECEIVE_QUEUE = declare(
    "MAX_RECEIVE_QUEUE", 1024, "messages",
    "messages received and not yet taken by the node",
    "when it holds this many the endpoint stops reading its socket (back-pressure through QUIC's own loss "
    "recovery), it never drops; it may exceed it by the messages of one batch of datagrams "
    "(``RECEIVE_BATCH``)",
)
MAX_CONNECTIONS = declare(
    "MAX_CONNECTIONS", 256, "connections",
    "connections one endpoint holds at once, dialed and accepted together",
    "a new Initial packet past it is ignored",
)
MAX_PENDING_PER_PEER = declare(
    "MAX_PENDING_PER_PEER", 1024, "messages",
    "messages waiting for a connection to a peer that is still being dialed; older ones are dropped (and "
    "counted) past it",
)
AUTH_TIMEOUT_SECONDS = declare(
    "AUTH_TIMEOUT_SECONDS", 5.0, "s",
    "seconds a new connection has to finish the TLS handshake and prove its node identity",
)
IDLE_TIMEOUT_SECONDS = declare(
    "IDLE_TIMEOUT_SECONDS", 30.0, "s",
    "a connection silent for this long is closed by QUIC",
    "a quiet connection is pinged every PING_INTERVAL_SECONDS so a live peer never reaches it",
)
PING_INTERVAL_SECONDS = declare(
    "PING_INTERVAL_SECONDS", 5.0, "s",
    "how often a quiet connection is pinged",
    "well within IDLE_TIMEOUT_SECONDS, so a live peer's connection never idles out",
)
UNANSWERED_SECONDS = declare(
    "UNANSWERED_SECONDS", 3.0, "s",
    "a connection with data the peer has not acknowledged, and from which nothing at all has been heard "
    "for this long, is closed: the peer crashed (a restarted node has forgotten the connection) or is cut "
    "off",
    "the next message dials again. Well above a loopback round trip and QUIC's first retransmissions, "
    "well below the idle timeout",
)

# --- The fault proxy and the control endpoints (loopback only) -----------------------------

MAX_PROXY_HELD_DATAGRAMS = declare(
    "MAX_PROXY_HELD_DATAGRAMS", 10_000, "datagrams",
    "datagrams the fault proxy holds (delayed or held back for reordering) at once; past it a datagram "
    "that would be held is dropped and counted",
)
MAX_CONTROL_LINE_BYTES = declare(
    "MAX_CONTROL_LINE_BYTES", 1024 * 1024, "bytes",
    "largest request or answer line on a control endpoint (one JSON object per line)",
)
CONTROL_TIMEOUT_SECONDS = declare(
    "CONTROL_TIMEOUT_SECONDS", 10.0, "s",
    "seconds a control request may take before the client gives up",
)
TOY_COUNTER_MAX_NODES = declare(
    "TOY_COUNTER_MAX_NODES", 1024, "nodes",
    "nodes in one message of the toy counter core (``implementations.transport.toy``), which stands in "
    "for the node core in the transport's tests",
)

# ----- networked nodes (implementations.node) ------------------------------------------

MAX_DATAGRAM_BYTES = declare(
    "MAX_DATAGRAM_BYTES", 4 * 1024 * 1024, "bytes",
    "largest datagram a node decodes: a repair of ``MAX_REPAIR_MESSAGES`` ML-DSA-65 messages (about 5.4 "
    "KB each with key and signature) fits with room to spare",
)
MAX_MESSAGES_PER_DATAGRAM = declare(
    "MAX_MESSAGES_PER_DATAGRAM", 256, "messages",
    "messages one datagram may carry (batched gossip, repairs)",
)
MAX_TOPIC_BYTES = declare(
    "MAX_TOPIC_BYTES", 128, "bytes",
    "a topic name, UTF-8 bytes",
)
MAX_PAYLOAD_BYTES = declare(
    "MAX_PAYLOAD_BYTES", 1024 * 1024, "bytes",
    "one message's payload: a task-list delta or a threshold envelope, never a whole state",
)
MAX_REPAIR_MESSAGES = declare(
    "MAX_REPAIR_MESSAGES", 64, "messages",
    "messages one anti-entropy repair carries; what is left is sent at the next round",
)
MAX_DIGEST_RANGES = declare(
    "MAX_DIGEST_RANGES", 256, "ranges",
    "seq ranges one digest may list per origin",
    "a digest stays small however a peer's knowledge is fragmented (what does not fit is asked for next "
    "round)",
)
MAX_DIGEST_ORIGINS = declare(
    "MAX_DIGEST_ORIGINS", 4096, "origins",
    "origins one digest may list per topic",
    "a digest stays small however a peer's knowledge is fragmented (what does not fit is asked for next "
    "round)",
)
MAX_FOAF_TTL = declare(
    "MAX_FOAF_TTL", 8, "hops",
    "FOAF queries: the most hops a query may ask for (SPEC: queries use TTL 3)",
)


# --- Mesh node processes (implementations/transport/mesh_node.py) ---------------------------

MAX_MESH_MEMBERS = declare(
    "MAX_MESH_MEMBERS", 256, "members",
    "members of one mesh a node process accepts in join",
    "a local cluster or a test mesh is tens of nodes; the node core's digests bound the origins they name too "
    "(MAX_DIGEST_ORIGINS)",
)
MAX_RECORDED_ARRIVALS = declare(
    "MAX_RECORDED_ARRIVALS", 100_000, "arrival times",
    "arrival times a node process records for benchmarks (record_arrivals) until the arrivals control operation "
    "takes them; past it the oldest are dropped",
    "a forgotten recorder costs at most a few megabytes",
)

# --- The process adapter (harness/process.py) -----------------------------------------------

MAX_PROCESS_REPLY_BYTES = declare(
    "MAX_PROCESS_REPLY_BYTES", 64 * 1024 * 1024, "bytes",
    "longest line a child process of the process adapter (harness.process) may answer with",
    "a reply carries at most one replica's state in base64 (kilobytes at the sizes machines use); a child that "
    "writes more without an end of line answers nonsense",
)
