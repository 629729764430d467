"""The controller base: informers → keys → work queue → N workers → reconcile(key).

The shape of kubernetes/sample-controller, for asyncio:
- informer handlers map each changed object to the keys it affects (`keys_for`; by
  default the object's own "ns/name"), and only enqueue them — level-triggered: the
  reconcile reads current state, so ten changes before a worker gets to a key cost one
  reconcile;
- workers start only after every informer has synced, so a reconcile never acts on a
  half-filled cache (e.g. deleting "orphan" pods it simply has not seen yet);
- a reconcile that raises is retried with per-key exponential backoff; one that
  returns resets the key's backoff (forget).

Subclasses implement `async reconcile(key)`, which must be idempotent and treat a
missing object as deleted.
"""
from __future__ import annotations

import asyncio
import bisect
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from netd.api import errors
from netd.client.clock import Clock, RealClock
from netd.client.informer import Informer, key_of
from netd.client.workqueue import RateLimiter, WorkQueue

log = logging.getLogger("netd.controller")

Obj = dict[str, Any]
KeysFunc = Callable[[Obj], Iterable[str]]

# Seconds; the upper bounds of the reconcile-duration histogram (an implicit +Inf
# bucket follows), close to controller-runtime's reconcile_time_seconds buckets.
DURATION_BUCKETS: tuple[float, ...] = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                       1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass
class Histogram:
    buckets: tuple[float, ...] = DURATION_BUCKETS
    counts: list[int] = field(default_factory=list)   # per bucket, last one is +Inf
    total: float = 0.0
    count: int = 0
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=256))

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.buckets) + 1)

    def observe(self, value: float) -> None:
        # Non-cumulative counts; an exporter sums them into Prometheus' `le` form.
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.count += 1
        self.recent.append(value)


@dataclass
class ControllerMetrics:
    reconciles_total: int = 0
    errors_total: int = 0
    dropped_total: int = 0       # keys given up after max_retries
    duration: Histogram = field(default_factory=Histogram)


class Controller:
    """Base class; see the module docstring. Typical wiring in a subclass::

        def __init__(self, client, factory):
            super().__init__("replicaset", workers=5)
            self.rs = self.watch(factory.informer(RS))
            self.pods = self.watch(factory.informer(POD), keys_for=self.owner_keys)
    """

    def __init__(self, name: str, *, workers: int = 1, clock: Clock | None = None,
                 rate_limiter: RateLimiter | None = None,
                 max_retries: int | None = None) -> None:
        if workers < 1:
            raise ValueError("a controller needs at least one worker")
        self.name = name
        self.workers = workers
        self.clock: Clock = clock or RealClock()
        self.max_retries = max_retries
        self.queue = WorkQueue(name, clock=self.clock, rate_limiter=rate_limiter)
        self.informers: list[Informer] = []
        self.metrics = ControllerMetrics()
        self._progress = asyncio.Event()
        self._started = False

    # ---- wiring --------------------------------------------------------------------

    def watch(self, informer: Informer, keys_for: KeysFunc | None = None) -> Informer:
        """Enqueue the keys `keys_for(obj)` (default: self.keys_for) for every add,
        update (old and new object: a pod that changed owner touches both) and delete
        the informer sees. Returns the informer for convenience."""
        mapping: KeysFunc = keys_for or self.keys_for

        def enqueue_obj(obj: Obj) -> None:
            for key in mapping(obj):
                self.queue.add(key)

        def on_update(old: Obj, new: Obj) -> None:
            keys = dict.fromkeys(mapping(new))
            keys.update(dict.fromkeys(mapping(old)))
            for key in keys:
                self.queue.add(key)

        informer.add_handler(enqueue_obj, on_update, enqueue_obj)
        if informer not in self.informers:
            self.informers.append(informer)
        return informer

    def keys_for(self, obj: Obj) -> list[str]:
        """The queue keys an event on `obj` affects (default: the object itself)."""
        return [key_of(obj)]

    def enqueue(self, key: str) -> None:
        self.queue.add(key)

    def enqueue_after(self, key: str, delay: float) -> None:
        """Look at `key` again later (e.g. when minReadySeconds or a grace period ends)."""
        self.queue.add_after(key, delay)

    async def reconcile(self, key: str) -> None:
        raise NotImplementedError

    # ---- running -------------------------------------------------------------------

    @property
    def queue_depth(self) -> int:
        return len(self.queue)

    @property
    def synced(self) -> bool:
        return all(inf.has_synced for inf in self.informers)

    async def run(self, *, run_informers: bool = False) -> None:
        """Wait for the informers to sync, then run the workers until stop().

        Informers are usually shared and run (supervised) by their owner; with
        run_informers=True this controller runs the ones not yet running as child
        tasks, and any of them failing fails run() (so its supervisor restarts all)."""
        if self._started:
            raise RuntimeError(f"controller {self.name} is already running")
        self._started = True
        try:
            async with asyncio.TaskGroup() as tg:
                if run_informers:
                    for inf in self.informers:
                        if not inf.running:
                            tg.create_task(inf.run(), name=f"informer:{inf.name}")
                await self.wait_synced()
                log.info("controller %s: caches synced, starting %d worker(s)", self.name,
                         self.workers)
                workers = [tg.create_task(self._worker(), name=f"{self.name}-worker-{i}")
                           for i in range(self.workers)]
                await asyncio.gather(*workers)
                if run_informers:
                    for inf in self.informers:
                        inf.stop()
        finally:
            self._started = False

    async def wait_synced(self) -> None:
        """Workers start after this returns; a controller fed by something other
        than informers (e.g. the object graph) overrides it."""
        for inf in self.informers:
            await inf.wait_synced()

    def stop(self) -> None:
        """Stop taking keys; run() returns once the workers finished what is queued."""
        self.queue.shutdown()

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            if key is None:
                return
            try:
                await self._process(key)
            finally:
                self.queue.done(key)
                self._notify()

    async def _process(self, key: str) -> None:
        start = self.clock.now()
        try:
            await self.reconcile(key)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.metrics.errors_total += 1
            self._handle_error(key, exc)
        else:
            self.queue.forget(key)
        finally:
            self.metrics.reconciles_total += 1
            self.metrics.duration.observe(max(0.0, self.clock.now() - start))

    def _handle_error(self, key: str, exc: Exception) -> None:
        retries = self.queue.num_requeues(key)
        if self.max_retries is not None and retries >= self.max_retries:
            self.metrics.dropped_total += 1
            self.queue.forget(key)
            log.error("controller %s: dropping %s out of the queue after %d retries: %s",
                      self.name, key, retries, exc)
            return
        if isinstance(exc, errors.Conflict):
            # Routine with optimistic concurrency: someone wrote first; retry quietly.
            log.info("controller %s: %s: %s; retrying", self.name, key, exc)
        elif isinstance(exc, errors.APIError):
            log.warning("controller %s: reconcile %s failed (retry %d): %s", self.name,
                        key, retries + 1, exc)
        else:
            log.error("controller %s: reconcile %s failed (retry %d)", self.name, key,
                      retries + 1, exc_info=exc)
        self.queue.add_rate_limited(key)

    # ---- waiting on progress (tests, shutdown) ---------------------------------------

    def _notify(self) -> None:
        self._progress.set()
        self._progress = asyncio.Event()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return once `predicate()` holds, re-checking after every reconcile. Callers
        bound it with asyncio.wait_for."""
        while not predicate():
            await self._progress.wait()

    def idle(self) -> bool:
        """Synced, nothing queued, in progress or waiting for a retry time."""
        return self.synced and self.queue.is_idle()
