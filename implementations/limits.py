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

# --- The RGA sequence (implementations/rga.py) ---------------------------------------------

#: The greatest RGA counter (``implementations.rga``): ids are ``(counter, replica)``, both
#: unsigned 64-bit on the wire, and a local insert takes a counter one above every counter
#: its replica has seen. Every counter up to this one is accepted from a peer: refusing a
#: lower ceiling would not stop an attacker (it would send the ceiling itself) and would cut
#: off honest replicas whose own inserts go past it after such an attack. A replica that has
#: seen this counter refuses further inserts with ``CounterSpaceExhausted`` before changing
#: anything; its deletes, deltas, merges and ``state()`` go on working, so the worst a peer
#: can do with one message is stop the inserts of those who receive it, never poison them.
RGA_MAX_COUNTER = U64_MAX

# --- The QUIC transport between node processes (implementations/transport/) ---------------

#: Largest message framed on a QUIC stream (the 4-byte length prefix not counted). A node's
#: messages are envelopes, digests and deltas: kilobytes (an ML-DSA-65 signature is 3,309
#: bytes). A frame header announcing more closes the connection with a reason naming this.
#: A connection carries one stream (the client's first bidirectional stream): data on any
#: other stream closes the connection too.
MAX_FRAME_BYTES = 1024 * 1024

#: Largest identity hello or proof (public key, nonce, certificate fingerprint, signature):
#: an ML-DSA-65 public key (1,952 bytes) and signature (3,309 bytes) fit with room to spare.
MAX_AUTH_MESSAGE_BYTES = 8 * 1024

#: Bytes written to a connection's stream and not yet acknowledged by the peer. A send past
#: it waits (``Connection.send``) or is refused (``Connection.send_nowait``: the core driver
#: drops the message and counts it; gossip and anti-entropy repair what is lost).
MAX_SEND_BUFFER_BYTES = 4 * 1024 * 1024

#: QUIC flow control granted to a peer: per stream and per connection. A peer cannot make
#: us buffer more than this of data we have not yet read from aioquic.
QUIC_MAX_STREAM_DATA = 2 * 1024 * 1024
QUIC_MAX_DATA = 4 * 1024 * 1024

#: Messages received and not yet taken by the node. When it holds this many the endpoint
#: stops reading its socket (back-pressure through QUIC's own loss recovery), it never
#: drops; it may exceed it by the messages of one batch of datagrams (``RECEIVE_BATCH``).
MAX_RECEIVE_QUEUE = 1024

#: Connections one endpoint holds at once, dialed and accepted together. A new Initial
#: packet past it is ignored.
MAX_CONNECTIONS = 256

#: Messages waiting for a connection to a peer that is still being dialed; older ones are
#: dropped (and counted) past it.
MAX_PENDING_PER_PEER = 1024

#: Seconds a new connection has to finish the TLS handshake and prove its node identity.
AUTH_TIMEOUT_SECONDS = 5.0

#: A connection silent for this long is closed by QUIC; a quiet connection is pinged every
#: ``PING_INTERVAL_SECONDS`` so a live peer never reaches it.
IDLE_TIMEOUT_SECONDS = 30.0
PING_INTERVAL_SECONDS = 5.0

#: A connection with data the peer has not acknowledged, and from which nothing at all has
#: been heard for this long, is closed: the peer crashed (a restarted node has forgotten the
#: connection) or is cut off. The next message dials again. Well above a loopback round trip
#: and QUIC's first retransmissions, well below the idle timeout.
UNANSWERED_SECONDS = 3.0

# --- The fault proxy and the control endpoints (loopback only) -----------------------------

#: Datagrams the fault proxy holds (delayed or held back for reordering) at once; past it a
#: datagram that would be held is dropped and counted.
MAX_PROXY_HELD_DATAGRAMS = 10_000

#: Largest request or answer line on a control endpoint (one JSON object per line).
MAX_CONTROL_LINE_BYTES = 1024 * 1024

#: Seconds a control request may take before the client gives up.
CONTROL_TIMEOUT_SECONDS = 10.0

#: Nodes in one message of the toy counter core (``implementations.transport.toy``), which
#: stands in for the node core in the transport's tests.
TOY_COUNTER_MAX_NODES = 1024

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

# --- Mesh node processes (implementations/transport/mesh_node.py) ---------------------------

#: Members of one mesh a node process accepts in ``join``: a local cluster or a test mesh is
#: tens of nodes; the node core's digests bound the origins they name too (MAX_DIGEST_ORIGINS).
MAX_MESH_MEMBERS = 256

#: Arrival times a node process records for benchmarks (``record_arrivals``) until the
#: ``arrivals`` control operation takes them; past it the oldest are dropped, so a forgotten
#: recorder costs at most a few megabytes.
MAX_RECORDED_ARRIVALS = 100_000

# --- The process adapter (harness/process.py) -----------------------------------------------

#: Longest line a child process of the process adapter (``harness.process``) may answer
#: with. A reply carries at most one replica's state in base64 (kilobytes at the sizes
#: machines use); a child that writes more without an end of line answers nonsense.
MAX_PROCESS_REPLY_BYTES = 64 * 1024 * 1024
