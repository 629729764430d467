"""BoundedFrequencyRunner: kube-proxy's coalescing sync loop (pkg/util/async,
pkg/proxy/runner.go) for asyncio.

- `request()` asks for a run; any number of requests before the run starts fold into
  one (the run reads the newest state, so nothing is lost).
- Runs are at least `min_interval` apart (a burst of changes costs one sync per
  interval, not one per change).
- Every `full_period` a run happens even without requests (the caller makes it a full
  resync: `full_requested` is True for it).
- `fn` reads `run_full` to know whether this run must rebuild everything.
- A run that raises is retried with exponential backoff (capped at `max_backoff`), and
  the retry is flagged full: after any failure the kernel state is unknown.
- Nothing runs before `start()`; the first run is always full.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger("netd.proxy.runner")


class BoundedFrequencyRunner:
    def __init__(self, name: str, fn: Callable[[], Awaitable[None]], min_interval: float,
                 full_period: float, *, retry_base: float = 0.1, max_backoff: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.fn = fn
        self.min_interval = max(0.0, min_interval)
        self.full_period = full_period
        self.retry_base = retry_base
        self.max_backoff = max_backoff
        self.clock = clock
        self.full_requested = True
        self.run_full = True          # what the current (or last) run was asked to do
        self.runs = 0
        self.failures = 0
        self._wake = asyncio.Event()
        self._pending = True          # the first run happens as soon as we start
        self._last_run = float("-inf")
        self._last_full = float("-inf")
        self._consecutive_failures = 0
        self._retry_at: float | None = None
        self._task: asyncio.Task[None] | None = None
        self.idle = asyncio.Event()

    def request(self) -> None:
        self._pending = True
        self.idle.clear()
        self._wake.set()

    def request_full(self) -> None:
        self.full_requested = True
        self.request()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.loop(), name=f"proxy-runner:{self.name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    def _next_deadline(self, now: float) -> float:
        """When the loop must wake on its own (periodic full sync or a retry)."""
        deadline = self._last_full + self.full_period if self.full_period > 0 else float("inf")
        if self._retry_at is not None:
            deadline = min(deadline, self._retry_at)
        return deadline

    async def loop(self) -> None:
        while True:
            now = self.clock()
            if self._retry_at is not None and now >= self._retry_at:
                self._retry_at = None
                self._pending = True
            if self.full_period > 0 and now >= self._last_full + self.full_period:
                self.full_requested = True
                self._pending = True
            if self._pending and self._retry_at is None:
                wait = self._last_run + self.min_interval - now
                if wait > 0:
                    await self._sleep(wait)
                    continue
                await self._run_once()
                continue
            self.idle.set()
            timeout = self._next_deadline(now) - now
            await self._sleep(timeout if timeout != float("inf") else None)

    async def _sleep(self, timeout: float | None) -> None:
        self._wake.clear()
        if self._pending and self._retry_at is None and timeout is not None:
            # Waiting out min_interval: new requests change nothing, just sleep.
            await asyncio.sleep(timeout)
            return
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    async def _run_once(self) -> None:
        self._pending = False
        full = self.run_full = self.full_requested
        self.full_requested = False
        self._last_run = self.clock()
        self.runs += 1
        try:
            await self.fn()
        except asyncio.CancelledError:
            raise
        except Exception:
            self.failures += 1
            self._consecutive_failures += 1
            delay = min(self.max_backoff,
                        self.retry_base * 2 ** min(self._consecutive_failures - 1, 16))
            self._retry_at = self.clock() + delay
            self.full_requested = True
            log.exception("%s: sync failed (%d in a row); full resync in %.2fs", self.name,
                          self._consecutive_failures, delay)
            return
        self._consecutive_failures = 0
        if full:
            self._last_full = self._last_run
