"""The UDP fault proxy: deterministic fault decisions, and QUIC between nodes surviving every fault it makes."""

from __future__ import annotations

import random

import pytest
import trio

from implementations.transport.proxy import Decision, FaultProxy, Faults, decide
from tests.transport_kit import converge, counter_nodes, increment, make_keys, nothing_left_behind, run


def _fates(seed: int, faults: Faults, n: int = 200) -> list[Decision]:
    rng = random.Random(f"{seed}:a->b")
    return [decide(rng, faults) for _ in range(n)]


def test_fault_decisions_depend_only_on_the_seed_and_the_link():
    faults = Faults(drop=0.3, duplicate=0.2, reorder=0.2, delay=(0.0, 0.01))
    assert _fates(7, faults) == _fates(7, faults)
    assert _fates(7, faults) != _fates(8, faults)
    dropped = [fate.drop for fate in _fates(7, faults)]
    assert 0.15 < sum(dropped) / len(dropped) < 0.45
    # the n-th datagram's fate does not shift when other faults change: every datagram draws the same four numbers
    assert [fate.drop for fate in _fates(7, Faults(drop=0.3))] == dropped


@pytest.mark.parametrize("bad", [{"drop": 1.5}, {"duplicate": -0.1}, {"delay": (0.2, 0.1)}, {"delay": (0, 120)}])
def test_impossible_faults_are_refused(bad):
    with pytest.raises(ValueError):
        Faults(**bad)


async def _proxied_counters(keys, scenario):
    async with trio.open_nursery() as nursery:
        proxy = await nursery.start(FaultProxy(seed=11).run)
        async with counter_nodes(keys, proxy) as drivers:
            await scenario(proxy, drivers)
        nursery.cancel_scope.cancel()


def test_quic_survives_loss_duplication_reordering_and_delay(tmp_path):
    keys = make_keys(tmp_path, "a", "b", "c")

    async def scenario(proxy, drivers):
        for src in keys:
            for dst in keys:
                if src != dst:
                    proxy.set_faults(src, dst, drop=0.2, duplicate=0.2, reorder=0.3, delay=(0.0, 0.003))
        for i in range(10):
            increment(drivers["abc"[i % 3]])
            await trio.sleep(0.01)
        await converge(drivers, 10)
        for fault in ("dropped", "duplicated", "reordered"):
            assert proxy.stats[fault] > 0, proxy.stats

    with nothing_left_behind():
        run(_proxied_counters, keys, scenario, timeout=20)


def test_a_partition_holds_until_it_heals_then_the_nodes_converge(tmp_path):
    keys = make_keys(tmp_path, "a", "b", "c")

    async def scenario(proxy, drivers):
        increment(drivers["a"])
        await converge(drivers, 1)
        proxy.partition([["a"], ["b", "c"]])
        increment(drivers["a"], 10)
        increment(drivers["b"], 100)
        await converge({name: drivers[name] for name in "bc"}, 101)
        await trio.sleep(0.2)  # several anti-entropy ticks: nothing crosses
        assert drivers["a"].core.value() == 11 and drivers["b"].core.value() == 101
        assert proxy.stats["partitioned"] > 0
        proxy.heal()
        await converge(drivers, 111)

    run(_proxied_counters, keys, scenario, timeout=20)


def test_an_asymmetric_partition_blocks_one_direction_only(tmp_path):
    keys = make_keys(tmp_path, "a", "b")

    async def scenario(proxy, drivers):
        increment(drivers["a"])
        await converge(drivers, 1)
        proxy.block("a", "b")
        increment(drivers["a"], 10)
        increment(drivers["b"], 100)
        while drivers["a"].core.value() != 111:  # b -> a still flows
            await trio.sleep(0.005)
        await trio.sleep(0.2)
        assert drivers["b"].core.value() == 101
        proxy.heal()
        await converge(drivers, 111)

    run(_proxied_counters, keys, scenario, timeout=20)
