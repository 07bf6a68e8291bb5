"""The driver of sans-I/O cores: messages to ``handle``, ticks at the core's deadline, outputs sent, refusals counted."""

from __future__ import annotations

import itertools
import time
import urllib.request

import trio

from implementations.transport.driver import NS_PER_SECOND, CoreDriver
from implementations.transport.metrics import NodeMetrics
from tests.transport_kit import address_of, converge, counter_nodes, increment, make_keys, nothing_left_behind, opened, run


def test_counter_cores_converge_over_quic(tmp_path):
    keys = make_keys(tmp_path, "a", "b", "c")

    async def scenario():
        async with counter_nodes(keys) as drivers:
            for _ in range(5):
                for driver in drivers.values():
                    increment(driver)
            await converge(drivers, 15)
            assert all(driver.stats["refused"] == 0 for driver in drivers.values())

    with nothing_left_behind():
        run(scenario)


class DeadlineCore:
    """Asks to be ticked every 20 ms; remembers every ``now`` it was given."""

    def __init__(self) -> None:
        self.nows: list[int] = []
        self.created: int | None = None

    def next_deadline(self, now: int) -> int:
        if self.created is None:
            self.created = now
        return (self.nows[-1] if self.nows else self.created) + 20_000_000

    def tick(self, now: int) -> list:
        self.nows.append(now)
        return []

    def handle(self, data: bytes, now: int) -> list:
        raise ValueError("this core takes no messages")


def test_ticks_come_at_the_cores_deadline_with_a_monotonic_wall_scale_now(tmp_path):
    keys = make_keys(tmp_path, "a")["a"]

    async def scenario():
        async with opened(keys) as endpoint, trio.open_nursery() as nursery:
            with_deadline = CoreDriver(DeadlineCore(), endpoint, tick_period_ns=10 * NS_PER_SECOND)
            period_only = CoreDriver(CounterCoreWithoutPeers(), endpoint, tick_period_ns=100_000_000)
            nursery.start_soon(with_deadline._ticks)
            nursery.start_soon(period_only._ticks)
            await trio.sleep(0.35)
            nursery.cancel_scope.cancel()
        nows = with_deadline.core.nows
        assert 8 <= len(nows) <= 18, nows
        assert all(later - earlier >= 20_000_000 for earlier, later in itertools.pairwise(nows))
        assert abs(nows[0] - time.time_ns()) < 5 * NS_PER_SECOND
        assert 2 <= period_only.stats["ticks"] <= 4

    run(scenario)


class CounterCoreWithoutPeers:
    def tick(self, now: int) -> list:
        return []


def test_refused_messages_are_counted_and_change_nothing(tmp_path):
    keys = make_keys(tmp_path, "a", "b", "mallory")

    async def scenario():
        async with counter_nodes({name: keys[name] for name in "ab"}) as drivers, opened(keys["mallory"]) as mallory:
            increment(drivers["a"], 3)
            await converge(drivers, 3)
            conn = await mallory.connect(address_of(drivers["a"].endpoint))
            for garbage in (b"", b"\xc1", b"\x93\xa9toy.counts\x01\x91\x92\xc4\x01x\xff"):
                conn.send_nowait(garbage)
            while drivers["a"].stats["refused"] < 3:
                await trio.sleep(0.005)
            assert drivers["a"].core.value() == 3
            increment(drivers["b"], 2)
            await converge(drivers, 5)

    run(scenario)


def test_a_message_for_a_peer_nobody_knows_is_counted_not_sent(tmp_path):
    keys = make_keys(tmp_path, "a")["a"]

    async def scenario():
        async with opened(keys) as endpoint:
            driver = CoreDriver(DeadlineCore(), endpoint)
            assert driver.apply(lambda core, now: ("done", [(b"\x00" * 32, b"hello")])) == "done"
            assert driver.stats["unknown_peer"] == 1 and endpoint.stats["messages_sent"] == 0

    run(scenario)


def test_the_core_reports_through_the_metrics_sink_and_the_node_serves_them(tmp_path):
    keys = make_keys(tmp_path, "a", "b")

    async def scenario():
        async with counter_nodes(keys) as drivers:
            metrics = NodeMetrics()
            drivers["a"].metrics = metrics
            drivers["a"].core.attach_metrics(metrics)
            increment(drivers["b"])
            await converge(drivers, 1)
            while metrics.snapshot().get("mbt_peers_online") != 1.0:
                await trio.sleep(0.01)
            with metrics.serve() as port:
                page = await trio.to_thread.run_sync(_scrape, port)
        assert 'mbt_gossip_messages_total{kind="counts"}' in page
        assert "mbt_peers_online 1.0" in page
        assert "process_resident_memory_bytes" in page and "mbt_resident_memory_bytes" in page

    with nothing_left_behind():
        run(scenario)


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()
