"""A mesh node process with one catalogued bug planted: ``python -m tests.bugs.realnet_node BUG --data DIR``.

The ``realnet`` machine's nodes are OS processes, so a bug of theirs cannot be patched into
the test process as the other areas' are: ``tests/bugs/realnet.py`` starts this program in
place of ``implementations.transport.mesh_node`` (``Cluster(node_program=...)``), and it
applies the bug's patch in its own process, then runs the node exactly as ``mesh_node`` does.
Each patch is a context manager; ``PLANTS`` names them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from unittest import mock

from implementations.transport import framing
from implementations.transport.identity import Ed25519Identity


def any_signature_verifies() -> AbstractContextManager:
    """The identity proof is never checked: ``verify`` returns True whatever the signature (a
    wrapper that reports "no exception" for every outcome)."""
    return mock.patch.object(Ed25519Identity, "verify", lambda self, public_key, message, signature: True)


def _frames_without_a_limit(self):
    buffer, start = self._buffer, 0
    try:
        while len(buffer) - start >= framing.HEADER.size:
            (length,) = framing.HEADER.unpack_from(buffer, start)
            end = start + framing.HEADER.size + length  # BUG: the announced length is never checked
            if len(buffer) < end:
                break
            message = bytes(buffer[start + framing.HEADER.size : end])
            start = end
            yield message
    finally:
        del buffer[:start]


def frame_length_trusted() -> AbstractContextManager:
    """A frame's announced length is believed: the reader waits for (and would buffer) as many
    bytes as a peer's 4-byte header claims, up to 4 GiB."""
    return mock.patch.object(framing.FrameReader, "_frames", _frames_without_a_limit)


PLANTS: dict[str, Callable[[], AbstractContextManager]] = {
    "any-signature-verifies": any_signature_verifies,
    "frame-length-trusted": frame_length_trusted,
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
