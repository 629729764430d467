"""WorkQueue: client-go rate-limited queue semantics, driven by a FakeClock (no sleeps)."""
from __future__ import annotations

import asyncio

import pytest

from netd.client.clock import FakeClock
from netd.client.workqueue import ItemExponentialRateLimiter, WorkQueue

DEADLINE = 5.0


def make_queue() -> tuple[WorkQueue, FakeClock]:
    clock = FakeClock()
    return WorkQueue("test", clock=clock), clock


async def take(q: WorkQueue) -> str | None:
    return await asyncio.wait_for(q.get(), DEADLINE)


async def drain_ready(q: WorkQueue) -> list[str]:
    out = []
    while len(q):
        key = await take(q)
        assert key is not None
        out.append(key)
    return out


@pytest.mark.parametrize("adds,expected", [
    (["a"], ["a"]),
    (["a", "a", "a"], ["a"]),
    (["a", "b", "a", "c", "b"], ["a", "b", "c"]),
    ([], []),
], ids=["single", "same-key-thrice", "interleaved-keeps-first-order", "empty"])
async def test_add_deduplicates_and_keeps_fifo_order(adds: list[str], expected: list[str]) -> None:
    q, _ = make_queue()
    for k in adds:
        q.add(k)
    assert len(q) == len(expected)
    assert await drain_ready(q) == expected
    assert q.metrics.adds_total == len(expected)


async def test_key_readded_while_processing_waits_for_done() -> None:
    q, _ = make_queue()
    q.add("a")
    assert await take(q) == "a"
    assert q.processing == {"a"}
    q.add("a")
    q.add("a")
    # Not handed out while a worker holds it — even to a second, idle worker.
    assert len(q) == 0
    second = asyncio.ensure_future(q.get())
    await asyncio.sleep(0)
    assert not second.done()
    q.done("a")
    assert await asyncio.wait_for(second, DEADLINE) == "a"
    q.done("a")
    assert q.is_idle()


async def test_done_without_readd_does_not_requeue() -> None:
    q, _ = make_queue()
    q.add("a")
    await take(q)
    q.done("a")
    assert len(q) == 0 and q.is_idle()


async def test_get_waits_for_an_add() -> None:
    q, _ = make_queue()
    getter = asyncio.ensure_future(q.get())
    await asyncio.sleep(0)
    assert not getter.done()
    q.add("x")
    assert await asyncio.wait_for(getter, DEADLINE) == "x"


async def test_many_getters_each_get_a_different_key() -> None:
    q, _ = make_queue()
    getters = [asyncio.ensure_future(q.get()) for _ in range(3)]
    await asyncio.sleep(0)
    for k in ("a", "b", "c"):
        q.add(k)
    got = await asyncio.wait_for(asyncio.gather(*getters), DEADLINE)
    assert sorted(got) == ["a", "b", "c"]  # type: ignore[type-var]


async def test_cancelled_getter_does_not_swallow_a_wakeup() -> None:
    q, _ = make_queue()
    first = asyncio.ensure_future(q.get())
    second = asyncio.ensure_future(q.get())
    await asyncio.sleep(0)
    q.add("a")          # wakes `first`
    first.cancel()      # …which is cancelled before it runs
    assert await asyncio.wait_for(second, DEADLINE) == "a"
    assert first.cancelled()


@pytest.mark.parametrize("failures,expected", [
    (1, 0.005),
    (2, 0.010),
    (3, 0.020),
    (11, 0.005 * 2 ** 10),
    (18, 0.005 * 2 ** 17),   # 655.36 s, still under the cap
    (19, 1000.0),            # 1310.72 s capped at 1000 s
    (2000, 1000.0),          # no float overflow far past the cap
], ids=["first", "second", "third", "eleventh", "last-uncapped", "capped", "huge"])
def test_exponential_backoff_growth(failures: int, expected: float) -> None:
    rl = ItemExponentialRateLimiter()
    delay = 0.0
    for _ in range(failures):
        delay = rl.when("k")
    assert delay == pytest.approx(expected)
    assert rl.num_requeues("k") == failures


def test_backoff_is_per_key_and_forget_resets() -> None:
    rl = ItemExponentialRateLimiter()
    assert [rl.when("a") for _ in range(3)] == pytest.approx([0.005, 0.01, 0.02])
    assert rl.when("b") == pytest.approx(0.005)
    rl.forget("a")
    assert rl.num_requeues("a") == 0
    assert rl.when("a") == pytest.approx(0.005)


async def test_add_rate_limited_waits_backoff_on_the_clock() -> None:
    q, clock = make_queue()
    q.add_rate_limited("k")
    assert len(q) == 0 and q.waiting == 1
    clock.advance(0.004)
    assert len(q) == 0
    clock.advance(0.001)
    assert len(q) == 1 and q.waiting == 0
    assert await take(q) == "k"
    q.done("k")
    # Second failure: twice as long.
    q.add_rate_limited("k")
    clock.advance(0.009)
    assert len(q) == 0
    clock.advance(0.001)
    assert len(q) == 1
    assert q.num_requeues("k") == 2
    assert q.metrics.retries_total == 2
    q.forget("k")
    assert q.num_requeues("k") == 0
    await take(q)
    q.done("k")
    q.add_rate_limited("k")
    clock.advance(0.005)
    assert len(q) == 1


@pytest.mark.parametrize("delays,advance_to_first,expected_at", [
    ([10.0], 9.9, 10.0),
    ([10.0, 20.0], 9.9, 10.0),    # a later time does not postpone
    ([10.0, 3.0], 2.9, 3.0),      # an earlier time wins
    ([0.0], None, 0.0),           # no delay: queued at once
    ([-1.0], None, 0.0),
], ids=["single", "later-ignored", "earlier-wins", "zero", "negative"])
async def test_add_after(delays: list[float], advance_to_first: float | None,
                         expected_at: float) -> None:
    q, clock = make_queue()
    for d in delays:
        q.add_after("k", d)
    if advance_to_first is not None:
        clock.advance(advance_to_first)
        assert len(q) == 0
        clock.advance(expected_at - advance_to_first)
    assert len(q) == 1
    assert await take(q) == "k"
    q.done("k")
    # Exactly one copy was delivered: nothing else fires later.
    clock.advance(100.0)
    assert len(q) == 0 and q.is_idle()


async def test_add_after_key_already_queued_is_deduplicated_when_due() -> None:
    q, clock = make_queue()
    q.add("k")
    q.add_after("k", 1.0)
    clock.advance(1.0)
    assert len(q) == 1


async def test_shutdown_drains_then_returns_none_and_ignores_adds() -> None:
    q, clock = make_queue()
    q.add("a")
    q.add_after("later", 5.0)
    q.shutdown()
    q.add("b")
    assert await take(q) == "a"          # queued keys still handed out (client-go)
    q.done("a")
    assert await take(q) is None
    clock.advance(10.0)                  # the delayed key was dropped
    assert len(q) == 0


async def test_shutdown_wakes_waiting_getters() -> None:
    q, _ = make_queue()
    getters = [asyncio.ensure_future(q.get()) for _ in range(2)]
    await asyncio.sleep(0)
    q.shutdown()
    assert await asyncio.wait_for(asyncio.gather(*getters), DEADLINE) == [None, None]


async def test_queue_latency_metric_uses_clock() -> None:
    q, clock = make_queue()
    q.add("a")
    clock.advance(2.5)
    q.add("a")  # a duplicate add does not reset the wait
    await take(q)
    assert list(q.metrics.queue_latency) == [pytest.approx(2.5)]


async def test_fake_clock_sleep_and_ordering() -> None:
    clock = FakeClock()
    fired: list[str] = []
    clock.call_later(2.0, lambda: fired.append("b"))
    clock.call_later(1.0, lambda: fired.append("a"))
    h = clock.call_later(1.5, lambda: fired.append("cancelled"))
    h.cancel()
    sleeper = asyncio.ensure_future(clock.sleep(3.0))
    await asyncio.sleep(0)
    assert clock.next_deadline() == pytest.approx(1.0)
    assert clock.advance(2.0) == 2
    assert fired == ["a", "b"]
    assert not sleeper.done()
    clock.advance(1.0)
    await asyncio.wait_for(sleeper, DEADLINE)
    with pytest.raises(ValueError):
        clock.advance(-1)
