"""Watch fan-out: the event history window, per-watcher queues, and dispatch.

Backend-neutral (used by netd.store.cache.StateCache, which any backend feeds).
Modelled on kube-apiserver's watch cache (staging/src/k8s.io/apiserver/pkg/storage/
cacher): a bounded ring of recent events serves watches that start in the past; a
start older than the ring answers 410 Expired ("too old resource version"), and the
client re-lists. A consumer that falls too far behind is cut off rather than
allowed to block writers or grow memory — the cacher does the same ("Forcing
watcher close due to unresponsiveness").
"""
from __future__ import annotations

import asyncio
from collections import deque
from typing import Callable

import orjson

from netd.api import errors
from netd.store.base import DELETED, WatchEvent, Watcher

WatchKey = tuple[str | None, str | None]  # (resource, namespace); None matches all

STORE_CLOSED = "store closed"


class QueueWatcher(Watcher):
    """One consumer's ordered stream. Iterating yields every pending event as one batch.

    Pending events live in a plain list swapped out whole by the consumer, and an
    asyncio.Event wakes it: a push is an append plus (when the consumer sleeps) one
    call_soon, so commit-to-wakeup is one loop iteration.
    """

    __slots__ = ("resource", "namespace", "_after", "_base_limit", "_limit", "_pending",
                 "_wake", "_closed", "_reason", "_on_close")

    def __init__(self, resource: str | None, namespace: str | None, limit: int,
                 initial: list[WatchEvent], after_rv: int = 0,
                 on_close: Callable[["QueueWatcher"], None] | None = None) -> None:
        self.resource = resource
        self.namespace = namespace
        # Only matters for a start beyond the current revision (etcd semantics: the
        # stream begins once the store gets there); otherwise every live event is newer.
        self._after = after_rv
        # The replay a client asked for is not a sign of slowness; only what piles up
        # on top of it counts against the limit (until the first batch is taken).
        self._base_limit = limit
        self._limit = limit + len(initial)
        self._pending: list[WatchEvent] = initial
        self._wake = asyncio.Event()
        self._closed = False
        self._reason: str | None = None
        self._on_close = on_close

    @property
    def key(self) -> WatchKey:
        return (self.resource, self.namespace)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def closed_reason(self) -> str | None:
        return self._reason

    @property
    def pending(self) -> int:
        return len(self._pending)

    def push(self, event: WatchEvent) -> None:
        if self._closed or event.rv <= self._after:
            return
        pending = self._pending
        pending.append(event)
        if len(pending) > self._limit:
            self.end(f"watcher of {self.resource or 'all resources'} fell more than "
                     f"{self._base_limit} events behind; re-list and watch again")
            return
        if len(pending) == 1:
            self._wake.set()

    def end(self, reason: str | None) -> None:
        """Close from the store's side, recording why (None: the consumer asked)."""
        if self._closed:
            return
        self._closed = True
        self._reason = reason
        # Undelivered events are dropped: after a close the client must re-list (or
        # re-watch from its last seen revision) anyway, and holding them is the very
        # memory growth the limit exists to stop.
        self._pending = []
        self._wake.set()
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            on_close(self)

    def close(self) -> None:
        self.end(None)

    def __aiter__(self) -> "QueueWatcher":
        return self

    async def __anext__(self) -> list[WatchEvent]:
        while True:
            if self._pending:
                batch, self._pending = self._pending, []
                self._limit = self._base_limit
                return batch
            if self._closed:
                raise StopAsyncIteration
            # No await between clear and wait: a push cannot slip in between.
            self._wake.clear()
            await self._wake.wait()


class WatcherHub:
    """Watchers indexed by (resource, namespace) so an event touches only its own."""

    __slots__ = ("_by_key",)

    def __init__(self) -> None:
        self._by_key: dict[WatchKey, dict[QueueWatcher, None]] = {}

    def __len__(self) -> int:
        return sum(len(ws) for ws in self._by_key.values())

    def add(self, watcher: QueueWatcher) -> None:
        self._by_key.setdefault(watcher.key, {})[watcher] = None

    def remove(self, watcher: QueueWatcher) -> None:
        ws = self._by_key.get(watcher.key)
        if ws is not None:
            ws.pop(watcher, None)
            if not ws:
                del self._by_key[watcher.key]

    def dispatch(self, event: WatchEvent) -> None:
        by_key = self._by_key
        if not by_key:
            return
        res, ns = event.resource, event.namespace
        for key in ((res, ns), (res, None), (None, ns), (None, None)):
            ws = by_key.get(key)
            if ws:
                # A push may close (and unregister) a slow watcher: iterate a copy.
                for w in tuple(ws):
                    w.push(event)

    def close_all(self, reason: str | None) -> None:
        for ws in list(self._by_key.values()):
            for w in tuple(ws):
                w.end(reason)
        self._by_key.clear()


class EventHistory:
    """The last `size` events, and the oldest revision a watch may start from.

    Kept as encoded bytes, not objects: a window of 100,000 events of large objects
    (a 1,000-address Endpoints) held as dicts is millions of objects the cyclic
    garbage collector must walk on every full collection (pauses of 100+ ms seen in
    bench/controllers_bench.py). Replays are rare (a watch resuming from the past);
    they decode on demand."""

    __slots__ = ("_events", "_floor")

    def __init__(self, size: int, start_revision: int) -> None:
        self._events: deque[tuple[str, int, str, str, str, bytes, bytes | None]] = \
            deque(maxlen=max(0, size))
        # Every event after `_floor` is in the window. Starts at the revision the
        # backend was opened at: history is not persisted.
        self._floor = start_revision

    @property
    def floor(self) -> int:
        return self._floor

    def __len__(self) -> int:
        return len(self._events)

    def append(self, event: WatchEvent, prev_raw: bytes | None = None) -> None:
        events = self._events
        if events.maxlen == 0:
            self._floor = event.rv
            return
        if len(events) == events.maxlen:
            self._floor = events[0][1]
        if prev_raw is None and event.prev is not None:
            prev_raw = _compact(orjson.dumps(event.prev))
        raw = event.raw
        if event.type == DELETED:
            # A backend encodes the final state of a deleted object just for this event
            # (nothing else keeps those bytes): right-size orjson's buffer (see
            # netd.store.cache.encode) before the window holds it.
            raw = _compact(raw)
        events.append((event.type, event.rv, event.resource, event.namespace, event.name,
                       raw, prev_raw))

    def since(self, from_rv: int, resource: str | None,
              namespace: str | None) -> list[WatchEvent]:
        """Events with rv > from_rv matching the filter, oldest first; Gone when
        the window no longer reaches back to from_rv."""
        if from_rv < self._floor:
            # kube-apiserver's wording and number: the oldest revision still servable.
            raise errors.Gone(f"too old resource version: {from_rv} ({self._floor})")
        out: list[WatchEvent] = []
        # Walk back from the newest: watches mostly resume from a recent revision,
        # so this costs the replay length, not the window size.
        for typ, rv, res, ns, name, raw, prev_raw in reversed(self._events):
            if rv <= from_rv:
                break
            if (resource is None or res == resource) and \
                    (namespace is None or ns == namespace):
                out.append(WatchEvent(typ, rv, res, ns, name, orjson.loads(raw), raw,
                                      orjson.loads(prev_raw) if prev_raw else None))
        out.reverse()
        return out


def _compact(raw: bytes) -> bytes:
    return bytes(memoryview(raw))
