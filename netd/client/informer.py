"""Informers: list + watch one resource into an indexed cache, and tell handlers.

client-go's SharedIndexInformer, for one asyncio loop and an in-process ObjectAPI:
- `run()` lists (consistent snapshot at revision R), then watches from R; every event
  updates the cache and calls the handlers, in revision order.
- A watch the store ends (the consumer fell behind, or it was told to stop) is resumed
  from the last revision seen, so nothing is lost or seen twice.
- When that revision has left the store's history (errors.Gone, HTTP 410) the informer
  re-lists and delivers the *difference* against its cache: adds, updates, and deletes
  for objects that vanished meanwhile. client-go wraps the latter in a
  DeletedFinalStateUnknown tombstone; netd hands handlers the last object it knew,
  which is what every handler ends up unwrapping anyway.
- With a selector, an object that stops matching is delivered as a delete (the store's
  filtered watch turns such a MODIFIED into DELETED, as kube-apiserver's cacher does).

Cache objects are the store's shared, read-only dicts (no copy per event: that would
dominate the cost of a busy informer). Handlers and readers MUST copy (netd.store.base.
copy_obj) before changing anything, then write through the API with the object's
resourceVersion.
"""
from __future__ import annotations

import asyncio
import builtins
import logging
from typing import Any, Callable, Iterable

from netd.api import errors
from netd.api.kinds import ResourceType
from netd.client.clock import Clock, RealClock
from netd.registry.objectapi import ObjectAPI
from netd.store.base import ADDED, DELETED, MODIFIED, StoredObject

log = logging.getLogger("netd.client.informer")

Obj = dict[str, Any]
AddHandler = Callable[[Obj], None]
UpdateHandler = Callable[[Obj, Obj], None]
DeleteHandler = Callable[[Obj], None]
IndexFunc = Callable[[Obj], Iterable[str]]

# Back-off between watches that end before delivering anything (e.g. the store is
# shutting down): avoids a hot loop while the supervisor decides what to do.
_REWATCH_MIN = 0.05
_REWATCH_MAX = 5.0


def key_of(obj: Obj) -> str:
    """client-go's MetaNamespaceKeyFunc: "ns/name", or "name" when cluster-scoped."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace") or ""
    name = meta.get("name") or ""
    return f"{ns}/{name}" if ns else name


def split_key(key: str) -> tuple[str, str]:
    """(namespace, name) of a key made by key_of ("" namespace when cluster-scoped)."""
    ns, sep, name = key.partition("/")
    return (ns, name) if sep else ("", ns)


# ---- common index functions ------------------------------------------------------

def index_by_namespace(obj: Obj) -> list[str]:
    ns = (obj.get("metadata") or {}).get("namespace")
    return [ns] if ns else []


def index_by_owner_uid(obj: Obj) -> list[str]:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return [r["uid"] for r in refs if isinstance(r, dict) and r.get("uid")]


def index_by_controller_uid(obj: Obj) -> list[str]:
    """Only the managing owner (controller: true), as ReplicaSet/Job controllers use."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return [r["uid"] for r in refs
            if isinstance(r, dict) and r.get("controller") and r.get("uid")]


def index_by_node(obj: Obj) -> list[str]:
    node = (obj.get("spec") or {}).get("nodeName")
    return [node] if node else []


class _Handler:
    __slots__ = ("on_add", "on_update", "on_delete")

    def __init__(self, on_add: AddHandler | None, on_update: UpdateHandler | None,
                 on_delete: DeleteHandler | None) -> None:
        self.on_add = on_add
        self.on_update = on_update
        self.on_delete = on_delete


class _Index:
    __slots__ = ("fn", "by_value", "by_key")

    def __init__(self, fn: IndexFunc) -> None:
        self.fn = fn
        self.by_value: dict[str, dict[str, None]] = {}
        self.by_key: dict[str, tuple[str, ...]] = {}

    def put(self, key: str, obj: Obj) -> None:
        self.remove(key)
        values = tuple(dict.fromkeys(self.fn(obj)))
        if values:
            self.by_key[key] = values
            for v in values:
                self.by_value.setdefault(v, {})[key] = None

    def remove(self, key: str) -> None:
        for v in self.by_key.pop(key, ()):
            keys = self.by_value.get(v)
            if keys is not None:
                keys.pop(key, None)
                if not keys:
                    del self.by_value[v]


class Informer:
    def __init__(self, api: ObjectAPI, rt: ResourceType, namespace: str | None = None,
                 label_selector: str = "", field_selector: str = "", *,
                 clock: Clock | None = None) -> None:
        self.api = api
        self.rt = rt
        self.namespace = namespace if rt.namespaced else None
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.clock: Clock = clock or RealClock()
        self.name = rt.group_resource + (f"@{namespace}" if self.namespace else "")
        self._cache: dict[str, Obj] = {}
        self._indexes: dict[str, _Index] = {}
        self._handlers: list[_Handler] = []
        self._rv = 0
        self._synced = asyncio.Event()
        self._stopped = False
        self._running = False
        self._stream: Any = None
        self._sleeper: asyncio.Future[None] | None = None
        # Counters for metrics and tests.
        self.lists = 0
        self.watches = 0
        self.events = 0
        self.handler_errors = 0

    # ---- configuration ----------------------------------------------------------------

    def add_index(self, name: str, fn: IndexFunc) -> None:
        """A secondary index; may be added after sync (it is built from the cache)."""
        if name in self._indexes:
            raise ValueError(f"informer {self.name}: index {name!r} already exists")
        index = _Index(fn)
        for key, obj in self._cache.items():
            index.put(key, obj)
        self._indexes[name] = index

    def add_handler(self, on_add: AddHandler | None = None,
                    on_update: UpdateHandler | None = None,
                    on_delete: DeleteHandler | None = None) -> None:
        """Register callbacks (synchronous; run on the loop, so keep them cheap —
        typically they only enqueue keys). A handler added after sync is first told
        about every cached object as an add, like client-go's AddEventHandler."""
        handler = _Handler(on_add, on_update, on_delete)
        self._handlers.append(handler)
        if on_add is not None:
            for obj in list(self._cache.values()):
                self._call(on_add, obj)

    # ---- reads ------------------------------------------------------------------------

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        await self._synced.wait()

    @property
    def resource_version(self) -> int:
        """The last revision this cache reflects."""
        return self._rv

    def get(self, key: str) -> Obj | None:
        return self._cache.get(key)

    def get_by_name(self, namespace: str, name: str) -> Obj | None:
        return self._cache.get(f"{namespace}/{name}" if namespace else name)

    def list(self) -> list[Obj]:
        return list(self._cache.values())

    def keys(self) -> builtins.list[str]:
        return list(self._cache)

    def __len__(self) -> int:
        return len(self._cache)

    def by_index(self, name: str, value: str) -> builtins.list[Obj]:
        index = self._indexes.get(name)
        if index is None:
            raise KeyError(f"informer {self.name}: no index {name!r}")
        keys = index.by_value.get(value, {})
        return [self._cache[k] for k in keys]

    def index_keys(self, name: str, value: str) -> builtins.list[str]:
        index = self._indexes.get(name)
        if index is None:
            raise KeyError(f"informer {self.name}: no index {name!r}")
        return list(index.by_value.get(value, {}))

    # ---- the loop ---------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running

    def stop(self) -> None:
        self._stopped = True
        stream = self._stream
        if stream is not None:
            stream.close()
        if self._sleeper is not None:
            self._sleeper.cancel()

    async def run(self) -> None:
        """List, then watch until stop(). Meant to run as a supervised task: an
        unexpected error propagates; a restarted run() re-lists and delivers the
        difference against the cache it kept."""
        if self._running:
            raise RuntimeError(f"informer {self.name} is already running")
        self._running = True
        need_list = True
        empty_watches = 0
        try:
            while not self._stopped:
                if need_list:
                    self._relist()
                    need_list = False
                try:
                    delivered = await self._watch_once()
                except errors.Gone as exc:
                    log.info("informer %s: %s; re-listing", self.name, exc.message)
                    need_list = True
                    continue
                if self._stopped:
                    break
                # Resume from the last revision seen at once; back off only when
                # watches keep ending empty-handed (e.g. the store is closing).
                empty_watches = 0 if delivered else empty_watches + 1
                if empty_watches > 1:
                    await self._pause(min(_REWATCH_MAX,
                                          _REWATCH_MIN * 2 ** min(empty_watches - 2, 10)))
        finally:
            self._running = False
            self._stream = None

    async def _pause(self, delay: float) -> None:
        self._sleeper = asyncio.ensure_future(self.clock.sleep(delay))
        try:
            await self._sleeper
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not self._stopped or (task is not None and task.cancelling()):
                raise  # cancelled from outside, not by stop()
        finally:
            self._sleeper = None

    def _relist(self) -> None:
        result = self.api.list(self.rt, self.namespace, label_selector=self.label_selector,
                               field_selector=self.field_selector)
        self.lists += 1
        fresh: dict[str, StoredObject] = {}
        for item in result.items:
            fresh[key_of(item.obj)] = item
        # Vanished objects first: a handler mapping both to one key sees the final state.
        for key in [k for k in self._cache if k not in fresh]:
            gone = self._cache.pop(key)
            self._unindex(key)
            self._deliver_delete(gone)
        for key, item in fresh.items():
            old = self._cache.get(key)
            if old is not None and _rv_of(old) == item.rv:
                continue
            self._put(key, item.obj)
            if old is None:
                self._deliver_add(item.obj)
            else:
                self._deliver_update(old, item.obj)
        self._rv = result.resource_version
        if not self._synced.is_set():
            log.debug("informer %s synced at revision %d with %d objects", self.name,
                      self._rv, len(self._cache))
            self._synced.set()

    async def _watch_once(self) -> bool:
        """One watch from self._rv until the store ends it; True if anything arrived."""
        stream = self.api.watch(self.rt, self.namespace, resource_version=str(self._rv),
                                label_selector=self.label_selector,
                                field_selector=self.field_selector)
        self.watches += 1
        self._stream = stream
        delivered = False
        try:
            if self._stopped:
                return False
            async for batch in stream.batches():
                for typ, ev in batch:
                    if ev.rv <= self._rv:
                        continue  # replayed twice around a resume; already applied
                    self._apply(typ, ev.obj)
                    self._rv = ev.rv
                    delivered = True
                if self._stopped:
                    break
        finally:
            stream.close()
            self._stream = None
        if not self._stopped:
            log.debug("informer %s: watch ended at revision %d (%s); resuming", self.name,
                      self._rv, stream.closed_reason or "closed")
        return delivered

    def _apply(self, typ: str, obj: Obj) -> None:
        self.events += 1
        key = key_of(obj)
        if typ == DELETED:
            old = self._cache.pop(key, None)
            if old is not None:
                self._unindex(key)
                self._deliver_delete(obj)
            return
        if typ not in (ADDED, MODIFIED):
            return
        old = self._cache.get(key)
        self._put(key, obj)
        if old is None:
            self._deliver_add(obj)
        else:
            self._deliver_update(old, obj)

    # ---- cache and handler plumbing ---------------------------------------------------

    def _put(self, key: str, obj: Obj) -> None:
        self._cache[key] = obj
        for index in self._indexes.values():
            try:
                index.put(key, obj)
            except Exception:
                log.exception("informer %s: index function failed on %s", self.name, key)

    def _unindex(self, key: str) -> None:
        for index in self._indexes.values():
            index.remove(key)

    def _deliver_add(self, obj: Obj) -> None:
        for h in self._handlers:
            if h.on_add is not None:
                self._call(h.on_add, obj)

    def _deliver_update(self, old: Obj, new: Obj) -> None:
        for h in self._handlers:
            if h.on_update is not None:
                self._call(h.on_update, old, new)

    def _deliver_delete(self, obj: Obj) -> None:
        for h in self._handlers:
            if h.on_delete is not None:
                self._call(h.on_delete, obj)

    def _call(self, fn: Callable[..., None], *args: Obj) -> None:
        try:
            fn(*args)
        except Exception:
            # One broken handler must not stall the informer (or the other handlers).
            self.handler_errors += 1
            log.exception("informer %s: event handler %r failed", self.name, fn)


def _rv_of(obj: Obj) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


class InformerFactory:
    """One informer per (resource, namespace, selectors), shared by every controller
    that asks (client-go's SharedInformerFactory): one watch and one cache per kind."""

    def __init__(self, api: ObjectAPI, *, clock: Clock | None = None) -> None:
        self.api = api
        self.clock = clock
        self._informers: dict[tuple[str, str | None, str, str], Informer] = {}

    def informer(self, rt: ResourceType, namespace: str | None = None,
                 label_selector: str = "", field_selector: str = "") -> Informer:
        ns = namespace if rt.namespaced else None
        key = (rt.group_resource, ns, label_selector, field_selector)
        inf = self._informers.get(key)
        if inf is None:
            inf = Informer(self.api, rt, ns, label_selector, field_selector,
                           clock=self.clock)
            self._informers[key] = inf
        return inf

    @property
    def informers(self) -> list[Informer]:
        return list(self._informers.values())

    async def wait_synced(self) -> None:
        await asyncio.gather(*(inf.wait_synced() for inf in self._informers.values()))

    def stop(self) -> None:
        for inf in self._informers.values():
            inf.stop()
