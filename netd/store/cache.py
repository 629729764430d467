"""The in-memory side of every backend: current objects, revision, history, watchers.

A backend commits a write durably, then calls `apply_put`/`apply_delete` with the
committed version; the cache updates the indexes, appends the event to history and
wakes matching watchers — all synchronously, so within one event loop a reader
never observes a half-applied write and watchers see events in revision order.
An etcd backend would feed the same calls from its own watch stream.
"""
from __future__ import annotations

from typing import Any, Iterable

import orjson

from netd.api import errors
from netd.store.base import ADDED, DELETED, MODIFIED, StoredObject, WatchEvent
from netd.store.index import ResourceIndex
from netd.store.watch import STORE_CLOSED, EventHistory, QueueWatcher, WatcherHub


def split_resource(resource: str) -> tuple[str, str]:
    """"deployments.apps" -> ("deployments", "apps"): plurals have no dots, groups may.

    Error messages read the same either way ("deployments.apps \"x\" not found") but
    Status.details then carries kind and group separately, as kube-apiserver's do.
    """
    plural, _, group = resource.partition(".")
    return plural, group


def stamp(obj: dict[str, Any], rv: int) -> dict[str, Any]:
    """A shallow copy of obj with metadata.resourceVersion = str(rv).

    The caller's dicts are left untouched; key order is kept (metadata stays where
    the client put it), so the encoding reads like what was sent.
    """
    out = dict(obj)
    meta = obj.get("metadata")
    meta = dict(meta) if isinstance(meta, dict) else {}
    meta["resourceVersion"] = str(rv)
    out["metadata"] = meta
    return out


def encode_new(obj: dict[str, Any], rv: int) -> tuple[dict[str, Any], bytes]:
    """The object to keep (obj re-stamped with rv) and its encoding.

    Ownership: the store keeps obj's nested values (spec, status, …) as they are;
    only the top level and metadata are copied. A deep copy (orjson round-trip)
    would cost more than the whole SQLite commit once the heap holds many objects
    (the decoded dicts feed the cyclic GC), and every caller hands over an object
    it built for this write — the same "never mutate what you gave the cache" rule
    as client-go's informers. Callers must not mutate obj after the call.
    """
    stored = stamp(obj, rv)
    return stored, encode(stored)


def encode(obj: Any) -> bytes:
    """orjson.dumps(obj) as a right-sized bytes object.

    orjson returns its growth buffer with only the length set: a 2 KB pod occupies
    4 KB, a 10 KB Endpoints ~128 KB. The store keeps the encoding of every current
    object and of every event in the history window, so the copy (well under a
    microsecond) took the daemon from 64 to 38 KB per pod (bench/pods_full_bench.py).
    """
    return bytes(memoryview(orjson.dumps(obj)))


class StateCache:
    """Current state + history + fan-out. Not thread-safe: one event loop owns it."""

    def __init__(self, revision: int = 0, history_size: int = 100_000,
                 watcher_queue_limit: int = 10_000) -> None:
        self._rev = revision
        self._resources: dict[str, ResourceIndex] = {}
        self._history = EventHistory(history_size, revision)
        self._hub = WatcherHub()
        self._limit = watcher_queue_limit
        self._closed = False

    @property
    def revision(self) -> int:
        return self._rev

    @property
    def oldest_watchable(self) -> int:
        return self._history.floor

    @property
    def watcher_count(self) -> int:
        return len(self._hub)

    def load(self, objects: Iterable[StoredObject]) -> None:
        """Fill the initial state (before any watcher); no events are produced."""
        for stored in objects:
            self._index(stored.resource).put(stored)

    def resources(self) -> list[str]:
        return sorted(r for r, idx in self._resources.items() if len(idx))

    def get(self, resource: str, namespace: str, name: str) -> StoredObject | None:
        idx = self._resources.get(resource)
        return idx.get(namespace, name) if idx is not None else None

    def list(self, resource: str, namespace: str | None = None
             ) -> tuple[list[StoredObject], int]:
        idx = self._resources.get(resource)
        items = idx.snapshot(namespace) if idx is not None else []
        return items, self._rev

    def apply_put(self, stored: StoredObject) -> WatchEvent:
        """Record a committed create/update; ADDED or MODIFIED by what was there."""
        self._advance(stored.rv)
        prev = self._index(stored.resource).put(stored)
        event = WatchEvent(ADDED if prev is None else MODIFIED, stored.rv, stored.resource,
                           stored.namespace, stored.name, stored.obj, stored.raw,
                           prev.obj if prev is not None else None)
        self._publish(event, prev.raw if prev is not None else None)
        return event

    def apply_delete(self, last: StoredObject) -> WatchEvent:
        """Record a committed delete; `last` is the final state stamped with the
        deletion revision (what kube-apiserver sends in a DELETED event)."""
        self._advance(last.rv)
        idx = self._resources.get(last.resource)
        prev = idx.remove(last.namespace, last.name) if idx is not None else None
        event = WatchEvent(DELETED, last.rv, last.resource, last.namespace, last.name,
                           last.obj, last.raw, prev.obj if prev is not None else None)
        self._publish(event, prev.raw if prev is not None else None)
        return event

    def watch(self, resource: str | None, namespace: str | None,
              from_rv: int) -> QueueWatcher:
        if self._closed:
            raise errors.ServiceUnavailable("store is closed")
        # Replay and registration happen in one synchronous step: no write can land
        # between them, so the stream has neither gaps nor duplicates.
        initial = self._history.since(from_rv, resource, namespace)
        watcher = QueueWatcher(resource, namespace, self._limit, initial, from_rv,
                               on_close=self._hub.remove)
        self._hub.add(watcher)
        return watcher

    def close(self) -> None:
        self._closed = True
        self._hub.close_all(STORE_CLOSED)

    def _index(self, resource: str) -> ResourceIndex:
        idx = self._resources.get(resource)
        if idx is None:
            idx = self._resources[resource] = ResourceIndex()
        return idx

    def _advance(self, rv: int) -> None:
        if rv <= self._rev:
            raise errors.InternalError(
                f"store revision went backwards: {rv} after {self._rev}")
        self._rev = rv

    def _publish(self, event: WatchEvent, prev_raw: bytes | None) -> None:
        self._history.append(event, prev_raw)
        self._hub.dispatch(event)
