"""Shared set-up of the transport tests: node keys in a tmp dir, bounded trio runs, nothing left behind."""

from __future__ import annotations

from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass

import trio

from implementations.transport import tls
from implementations.transport.driver import CoreDriver
from implementations.transport.endpoint import Endpoint, PeerAddress, open_endpoint
from implementations.transport.identity import Ed25519Identity
from implementations.transport.process import leftovers, snapshot
from implementations.transport.proxy import FaultProxy
from implementations.transport.toy import CounterCore


@dataclass
class Keys:
    identity: Ed25519Identity
    certificate: tls.NodeCertificate


def make_keys(tmp_path, *names: str) -> dict[str, Keys]:
    return {
        name: Keys(Ed25519Identity.load_or_create(tmp_path / name), tls.load_or_create(tmp_path / name)) for name in names
    }


def opened(keys: Keys):
    """An endpoint of the node these keys belong to (``async with``)."""
    return open_endpoint(keys.identity, keys.certificate)


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


@asynccontextmanager
async def counter_nodes(keys: dict[str, Keys], proxy: FaultProxy | None = None, tick_ns: int = 50_000_000):
    """A ``CounterCore`` node per name, each on its own endpoint, reaching the others through ``proxy`` if given."""
    names = sorted(keys)
    peers = [keys[name].identity.public_key for name in names]
    async with AsyncExitStack() as stack:
        endpoints = {name: await stack.enter_async_context(opened(keys[name])) for name in names}
        nursery = await stack.enter_async_context(trio.open_nursery())
        drivers = {}
        for name in names:
            directory = {}
            for other in names:
                if other != name:
                    port = await proxy.add_link(name, endpoints[name].address, other, endpoints[other].address) if proxy else None
                    directory[keys[other].identity.public_key] = address_of(endpoints[other], port)
            core = CounterCore(keys[name].identity.public_key, peers)
            drivers[name] = CoreDriver(core, endpoints[name], directory, tick_period_ns=tick_ns)
            nursery.start_soon(drivers[name].run)
        yield drivers
        nursery.cancel_scope.cancel()


def increment(driver: CoreDriver, by: int = 1) -> int:
    return driver.apply(lambda core, now: (core.value() + by, core.increment(by)))


async def converge(drivers: dict[str, CoreDriver], total: int) -> None:
    """Wait (bounded by the caller) until every node counts ``total``."""
    while not all(driver.core.value() == total for driver in drivers.values()):
        await trio.sleep(0.005)
