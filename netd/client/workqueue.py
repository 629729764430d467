"""A rate-limited work queue with client-go's semantics, for one asyncio loop.

The guarantees controllers are built on (k8s.io/client-go/util/workqueue):
- a key added many times before a worker takes it is handed out once (dirty set);
- a key is never handed to two workers at once: re-added while processing, it waits
  until `done(key)` and is then queued again — so a burst of changes during one
  reconcile costs exactly one more reconcile;
- `add_after` holds a key until its time (the earliest pending time wins);
- `add_rate_limited` waits a per-key exponential backoff (5 ms doubling to 1000 s,
  client-go's DefaultItemBasedRateLimiter), reset by `forget`.

Keys are strings ("ns/name" or "name"), never objects: controllers are level-triggered
and read current state when the key comes up.
"""
from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from netd.client.clock import Clock, RealClock, TimerHandle

DEFAULT_BASE_DELAY = 0.005
DEFAULT_MAX_DELAY = 1000.0


class RateLimiter(Protocol):
    def when(self, key: str) -> float:
        """The delay before `key` may be retried (records one more failure)."""
        ...

    def forget(self, key: str) -> None: ...

    def num_requeues(self, key: str) -> int: ...


class ItemExponentialRateLimiter:
    """base * 2**failures per key, capped at max_delay (ItemExponentialFailureRateLimiter)."""

    def __init__(self, base_delay: float = DEFAULT_BASE_DELAY,
                 max_delay: float = DEFAULT_MAX_DELAY) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._failures: dict[str, int] = {}

    def when(self, key: str) -> float:
        exp = self._failures.get(key, 0)
        self._failures[key] = exp + 1
        # Cap the exponent before computing: 2**exp overflows a float past ~1024.
        if exp > 64:
            return self.max_delay
        return min(self.base_delay * (2.0 ** exp), self.max_delay)

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)

    def num_requeues(self, key: str) -> int:
        return self._failures.get(key, 0)


@dataclass
class QueueMetrics:
    """Counters a metrics exporter reads (names follow workqueue_* in client-go)."""
    adds_total: int = 0
    retries_total: int = 0
    # Seconds each handed-out key waited in the queue since it was first queued.
    queue_latency: deque[float] = field(default_factory=lambda: deque(maxlen=1024))


class WorkQueue:
    def __init__(self, name: str = "", *, clock: Clock | None = None,
                 rate_limiter: RateLimiter | None = None) -> None:
        self.name = name
        self.clock: Clock = clock or RealClock()
        self.rate_limiter: RateLimiter = rate_limiter or ItemExponentialRateLimiter()
        self.metrics = QueueMetrics()
        self._queue: deque[str] = deque()
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        self._queued_at: dict[str, float] = {}
        # Keys waiting for their add_after time: (ready time, timer).
        self._waiting: dict[str, tuple[float, TimerHandle]] = {}
        self._getters: deque[asyncio.Future[None]] = deque()
        self._shutting_down = False

    # ---- adding -------------------------------------------------------------------

    def add(self, key: str) -> None:
        if self._shutting_down:
            return
        if key in self._dirty:
            return
        # Counted after de-duplication, as client-go's workqueue_adds_total is.
        self.metrics.adds_total += 1
        self._dirty.add(key)
        self._queued_at.setdefault(key, self.clock.now())
        if key in self._processing:
            # done() re-queues it: never two workers on one key.
            return
        self._queue.append(key)
        self._wake_one()

    def add_after(self, key: str, delay: float) -> None:
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        ready = self.clock.now() + delay
        pending = self._waiting.get(key)
        if pending is not None:
            if pending[0] <= ready:
                return  # already due sooner; client-go keeps the earliest time
            pending[1].cancel()
        handle = self.clock.call_later(delay, lambda: self._fire(key))
        self._waiting[key] = (ready, handle)

    def add_rate_limited(self, key: str) -> None:
        self.metrics.retries_total += 1
        self.add_after(key, self.rate_limiter.when(key))

    def forget(self, key: str) -> None:
        """Reset the key's failure count (call after a successful reconcile)."""
        self.rate_limiter.forget(key)

    def num_requeues(self, key: str) -> int:
        return self.rate_limiter.num_requeues(key)

    def _fire(self, key: str) -> None:
        self._waiting.pop(key, None)
        self.add(key)

    # ---- taking -------------------------------------------------------------------

    async def get(self) -> str | None:
        """The next key, marked processing until `done(key)`; None once shut down and
        drained (queued keys are still handed out after shutdown, as in client-go)."""
        while not self._queue:
            if self._shutting_down:
                return None
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._getters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                # A wake-up this getter swallowed belongs to the next one.
                if fut.done() and not fut.cancelled():
                    self._wake_one()
                raise
            finally:
                if fut in self._getters:
                    self._getters.remove(fut)
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        queued = self._queued_at.pop(key, None)
        if queued is not None:
            self.metrics.queue_latency.append(self.clock.now() - queued)
        return key

    def done(self, key: str) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._wake_one()

    def _wake_one(self) -> None:
        while self._getters:
            fut = self._getters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    # ---- lifecycle and introspection ----------------------------------------------

    def shutdown(self) -> None:
        """Stop accepting keys; getters return None once the queue is empty."""
        self._shutting_down = True
        for _, handle in self._waiting.values():
            handle.cancel()
        self._waiting.clear()
        while self._getters:
            fut = self._getters.popleft()
            if not fut.done():
                fut.set_result(None)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def __len__(self) -> int:
        """Keys ready to be handed out (client-go's Len; the queue-depth metric)."""
        return len(self._queue)

    def len(self) -> int:
        return len(self._queue)

    @property
    def processing(self) -> frozenset[str]:
        return frozenset(self._processing)

    @property
    def waiting(self) -> int:
        """Keys held by add_after / add_rate_limited, not yet due."""
        return len(self._waiting)

    def is_idle(self) -> bool:
        """Nothing queued, processing or waiting (tests wait on this)."""
        return not self._queue and not self._processing and not self._waiting
