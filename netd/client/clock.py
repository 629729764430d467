"""Time as an injected dependency, so queues and controllers are tested without sleeping.

Everything in netd/client that waits (delayed adds, rate-limited retries, informer
re-watch backoff, reconcile durations) asks a Clock. RealClock is the event loop's
monotonic clock; FakeClock only moves when a test calls `advance()`, firing the timers
that fell due in deadline order — the same idea as client-go's clock.FakeClock and
kopf's looptime.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
from typing import Callable, Protocol


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds (only differences mean anything)."""
        ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        """Run `callback` (synchronously, on the loop) once `delay` seconds have passed."""
        ...

    async def sleep(self, delay: float) -> None: ...


class RealClock:
    """The running event loop's clock (loop.time / loop.call_later)."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return asyncio.get_running_loop().call_later(max(0.0, delay), callback)

    async def sleep(self, delay: float) -> None:
        await asyncio.sleep(max(0.0, delay))


class _FakeTimer:
    __slots__ = ("when", "seq", "callback", "cancelled")

    def __init__(self, when: float, seq: int, callback: Callable[[], None]) -> None:
        self.when = when
        self.seq = seq
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def __lt__(self, other: "_FakeTimer") -> bool:
        return (self.when, self.seq) < (other.when, other.seq)


class FakeClock:
    """A clock that stands still until `advance()`; for tests.

    Timers fire synchronously inside `advance()`, in (deadline, creation) order, so a
    test sees their effect (a key re-queued, a sleeper's future resolved) right after
    the call — coroutines woken by them still need the loop to run (await something).
    """

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._timers: list[_FakeTimer] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        timer = _FakeTimer(self._now + max(0.0, delay), next(self._seq), callback)
        heapq.heappush(self._timers, timer)
        return timer

    async def sleep(self, delay: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not fut.done():
                fut.set_result(None)

        timer = self.call_later(delay, wake)
        try:
            await fut
        finally:
            timer.cancel()

    @property
    def pending(self) -> int:
        """Timers not yet fired or cancelled."""
        return sum(1 for t in self._timers if not t.cancelled)

    def next_deadline(self) -> float | None:
        """Seconds from now until the earliest pending timer (None: no timers)."""
        self._drop_cancelled()
        return self._timers[0].when - self._now if self._timers else None

    def advance(self, seconds: float) -> int:
        """Move time forward and fire every timer due by then; returns how many fired."""
        if seconds < 0:
            raise ValueError("time cannot go backwards")
        target = self._now + seconds
        fired = 0
        while True:
            self._drop_cancelled()
            if not self._timers or self._timers[0].when > target:
                break
            timer = heapq.heappop(self._timers)
            # Callbacks observe the time they were due at, as on a real loop.
            self._now = max(self._now, timer.when)
            timer.callback()
            fired += 1
        self._now = target
        return fired

    def _drop_cancelled(self) -> None:
        while self._timers and self._timers[0].cancelled:
            heapq.heappop(self._timers)
