"""A mesh node process with one catalogued bug planted: ``python -m tests.bugs.realnet_node BUG --data DIR``.

The ``realnet`` machine's nodes are OS processes, so a bug of theirs cannot be patched into
the test process as the other areas' are: ``tests/bugs/realnet.py`` starts this program in
place of ``implementations.transport.mesh_node`` (``Cluster(node_program=...)``), and it
applies the bug's patch in its own process, then runs the node exactly as ``mesh_node`` does.
Each patch is a context manager; ``PLANTS`` names them.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from unittest import mock

from aioquic.quic import events

from implementations import limits
from implementations.transport import endpoint
from implementations.transport.identity import Ed25519Identity


def any_signature_verifies() -> AbstractContextManager:
    """The identity proof is never checked: ``verify`` returns True whatever the signature (a
    wrapper that reports "no exception" for every outcome)."""
    return mock.patch.object(Ed25519Identity, "verify", lambda self, public_key, message, signature: True)


def frame_length_trusted() -> AbstractContextManager:
    """A frame's announced length is believed: once the peer is proven, the reader waits for
    (and would buffer) as many bytes as its 4-byte header claims, up to 4 GiB (the limit the
    endpoint gives the reader then is the header's own range)."""
    return mock.patch.object(limits, "MAX_FRAME_BYTES", 2**32 - 1)


_REAL_RECEIVE = endpoint.Connection._receive


def _every_stream_as_the_message_stream(self, event, delivered):
    if event.stream_id != endpoint.MESSAGE_STREAM:  # BUG: a second stream must close the connection
        event = events.StreamDataReceived(data=event.data, end_stream=event.end_stream, stream_id=endpoint.MESSAGE_STREAM)
    return _REAL_RECEIVE(self, event, delivered)


def streams_merged() -> AbstractContextManager:
    """Data on any stream of a connection is read as the message stream's: a stranger's second
    stream is spliced into the frames of the first instead of closing the connection."""
    return mock.patch.object(endpoint.Connection, "_receive", _every_stream_as_the_message_stream)


def _recovering_every_request(real_ensure):
    def ensure(self, now):
        building = self.node is None
        node = real_ensure(self, now)
        if building and self.coordinator is not None:
            timeout = self.settings["group"]["session_timeout_ms"] * 1_000_000
            # BUG: the recovery query has lost its "WHERE state IN ('Pending', 'Approved')": a session
            # that ended before the crash is taken for a live one, and counted again as it "ends"
            for request_id, expires_at in self.coordinator.store.execute("SELECT request_id, expires_at FROM requests"):
                self.sessions.setdefault(request_id, expires_at - timeout)
            self._account(now)
        return node

    return ensure


def restart_recounts_sessions() -> AbstractContextManager:
    """A coordinator that starts again on its files takes every request it holds for a live
    session, the ended ones too: each session it had ended before a crash is counted again in
    ``mbt_sessions_total`` (nothing else changes: those requests are ended, so nothing acts on them)."""
    from implementations.transport import mesh_node

    return mock.patch.object(mesh_node.MeshNodeCore, "_ensure", _recovering_every_request(mesh_node.MeshNodeCore._ensure))


def _counting_the_file_again(real_ensure):
    def ensure(self, now):
        building = self.node is None
        node = real_ensure(self, now)
        if building and self.coordinator is not None and self.metrics is not None:
            # BUG: the counter is restored from the file's total, as if it counted since the file began;
            # a Prometheus counter counts what this process did (a scraper adds up its restarts)
            held = self.coordinator.store.execute("SELECT COUNT(*) FROM partial_signatures").fetchone()[0]
            for _ in range(held):
                self.metrics.partial_signature()
        return node

    return ensure


def restart_recounts_signatures() -> AbstractContextManager:
    """A node that starts again on its files counts, in ``mbt_partial_signatures_total``, every
    valid member signature its coordinator's file holds: those the killed process had counted
    are counted a second time (a counter restored from a persisted total)."""
    from implementations.transport import mesh_node

    return mock.patch.object(mesh_node.MeshNodeCore, "_ensure", _counting_the_file_again(mesh_node.MeshNodeCore._ensure))


def _wired_only_at_join(real_join, real_ensure):
    def join(self, now, settings):
        self._joined_in_this_process = True
        return real_join(self, now, settings)

    def ensure(self, now):
        building = self.node is None
        node = real_ensure(self, now)
        if building and not getattr(self, "_joined_in_this_process", False):
            # BUG: the signing core is wired to the mesh where the join operation builds the node; a node
            # started again on its files (its settings read back from mesh.json) builds it without the wiring
            node.envelope_sink = None
        return node

    return join, ensure


def restart_forgets_signing() -> AbstractContextManager:
    """A node started again on its files takes part in the mesh's task list but no longer in its signing:
    its signer and coordinator are wired to the mesh only by the ``join`` operation, so a restarted node
    drops every proposal and answer (a coordinator restarted waits out every session it opens)."""
    from implementations.transport import mesh_node

    join, ensure = _wired_only_at_join(mesh_node.MeshNodeCore.join, mesh_node.MeshNodeCore._ensure)
    stack = contextlib.ExitStack()
    stack.enter_context(mock.patch.object(mesh_node.MeshNodeCore, "join", join))
    stack.enter_context(mock.patch.object(mesh_node.MeshNodeCore, "_ensure", ensure))
    return stack


PLANTS: dict[str, Callable[[], AbstractContextManager]] = {
    "any-signature-verifies": any_signature_verifies,
    "frame-length-trusted": frame_length_trusted,
    "streams-merged": streams_merged,
    "restart-recounts-sessions": restart_recounts_sessions,
    "restart-recounts-signatures": restart_recounts_signatures,
    "restart-forgets-signing": restart_forgets_signing,
}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in PLANTS:
        got = repr(args[0]) if args else "nothing"
        print(f"usage: python -m tests.bugs.realnet_node BUG --data DIR, BUG one of {sorted(PLANTS)}; got {got}",
              file=sys.stderr)
        return 2
    with PLANTS[args[0]]():
        from implementations.transport import mesh_node

        return mesh_node.main(args[1:])


if __name__ == "__main__":
    sys.exit(main())
