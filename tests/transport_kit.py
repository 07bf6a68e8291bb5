"""Shared set-up of the transport tests: node keys in a tmp dir, bounded trio runs, nothing left behind."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import trio

from implementations.transport import tls
from implementations.transport.endpoint import Endpoint, PeerAddress
from implementations.transport.identity import Ed25519Identity
from implementations.transport.process import leftovers, snapshot


@dataclass
class Keys:
    identity: Ed25519Identity
    certificate: tls.NodeCertificate


def make_keys(tmp_path, *names: str) -> dict[str, Keys]:
    return {
        name: Keys(Ed25519Identity.load_or_create(tmp_path / name), tls.load_or_create(tmp_path / name)) for name in names
    }


def run(async_fn, *args, timeout: float = 10.0):
    """``trio.run`` with every test's wait bounded."""

    async def bounded():
        with trio.fail_after(timeout):
            return await async_fn(*args)

    return trio.run(bounded)


@contextmanager
def nothing_left_behind():
    """Fail if the block leaves a child process or a bound port of this process behind."""
    before = snapshot()
    yield
    left = leftovers(before)
    assert not left, f"left behind: {left}"


def address_of(endpoint: Endpoint, port: int | None = None) -> PeerAddress:
    """``endpoint``'s address, or the same node reached through a proxy ``port``."""
    address = endpoint.peer_address()
    return address if port is None else PeerAddress("127.0.0.1", port, address.certificate, address.public_key)
