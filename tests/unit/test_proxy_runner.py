"""BoundedFrequencyRunner: coalescing, first run full, retry after failure (full)."""
from __future__ import annotations

import asyncio

from netd.proxy.runner import BoundedFrequencyRunner


async def wait_until(cond, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    async def loop() -> None:
        while not cond():
            await asyncio.sleep(0)
    await asyncio.wait_for(loop(), timeout)


async def test_nothing_before_start_first_run_full_and_coalescing() -> None:
    runs: list[bool] = []
    gate = asyncio.Event()

    async def fn() -> None:
        runs.append(r.run_full)
        await gate.wait()

    r = BoundedFrequencyRunner("t", fn, 0.0, 0.0)
    r.request()
    await asyncio.sleep(0)
    assert runs == []
    r.start()
    await wait_until(lambda: len(runs) == 1)
    for _ in range(5):
        r.request()             # while the first run is blocked: fold into one
    gate.set()
    await wait_until(lambda: r.idle.is_set() and len(runs) == 2)
    assert runs == [True, False]
    await r.stop()


async def test_failure_retries_with_full_sync() -> None:
    runs: list[bool] = []

    async def fn() -> None:
        runs.append(r.run_full)
        if len(runs) == 2:
            raise RuntimeError("nft failed")

    r = BoundedFrequencyRunner("t", fn, 0.0, 0.0, retry_base=0.001)
    r.start()
    await wait_until(lambda: len(runs) == 1)
    r.request()
    await wait_until(lambda: len(runs) == 3)
    assert runs == [True, False, True]
    assert r.failures == 1
    await r.stop()


async def test_min_interval_and_periodic_full() -> None:
    times: list[float] = []
    loop = asyncio.get_running_loop()

    async def fn() -> None:
        times.append(loop.time())

    r = BoundedFrequencyRunner("t", fn, 0.05, 0.2)
    r.start()
    await wait_until(lambda: len(times) == 1)
    r.request()
    await wait_until(lambda: len(times) == 2)
    assert times[1] - times[0] >= 0.045
    await wait_until(lambda: len(times) == 3)   # nobody asked: the periodic full resync
    assert r.run_full
    await r.stop()
