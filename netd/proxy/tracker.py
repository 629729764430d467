"""ProxyTracker: Services and EndpointSlices from informers, folded into Snapshots.

kube-proxy keeps change trackers (pkg/proxy/servicechangetracker.go,
endpointschangetracker.go) so that a sync only reprocesses what changed. Here each
event marks its Service dirty (a slice: the Service it is labelled for, before and
after); a snapshot recomputes the dirty Services' ports only and reuses the other
ServicePort objects as they are, so the nftables sync finds what changed by identity
(rebuilding 10,000 service ports per change cost tens of milliseconds). Each snapshot
also logs which Services it recomputed (Snapshot.changed_since), so a partial sync
looks at those alone: flattening and comparing 10,000 ports per event was ~20 ms of
the ~24 ms from an EndpointSlice write to the rule being live
(bench/proxy_pipeline_bench.py).

The tracker owns its informers (not the controllers' shared factory): the proxy, like
kube-proxy, has its own watch and can be started after the controller manager. It
also records when each change arrived, for the network-programming latency metric:
EndpointSlices carry `endpoints.kubernetes.io/last-change-trigger-time` (set by the
EndpointSlice controller), and the time the proxy saw the event is used otherwise.
"""
from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from netd.api import kinds
from netd.client.informer import Informer
from netd.proxy.model import (SERVICE_NAME_LABEL, LogEntry, ServicePort, Snapshot, SvcKey,
                              service_ports)

log = logging.getLogger("netd.proxy.tracker")

Obj = dict[str, Any]
TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"


class _Ctx(Protocol):
    api: Any
    config: Any


def _rt(group: str, plural: str) -> kinds.ResourceType:
    rt = kinds.REGISTRY.by_plural(group, plural)
    assert rt is not None, plural
    return rt


# Snapshots a node proxy may lag behind and still sync only what changed (all nodes'
# runners are woken by the same events, so they are rarely more than one apart).
LOG_LENGTH = 64


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _service_key(obj: Obj) -> SvcKey:
    meta = _meta(obj)
    return (meta.get("namespace") or "", meta.get("name") or "")


def _slice_service(obj: Obj) -> SvcKey | None:
    meta = _meta(obj)
    svc = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    return (meta.get("namespace") or "", svc) if svc else None


def _trigger_time(obj: Obj) -> float | None:
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(TRIGGER_TIME)
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class ProxyTracker:
    def __init__(self, ctx: _Ctx, *, services: Informer | None = None,
                 slices: Informer | None = None) -> None:
        self.dns_ip: str = ctx.config.dns_ip
        self.services = services or Informer(ctx.api, _rt("", "services"))
        self.slices = slices or Informer(ctx.api, _rt("discovery.k8s.io", "endpointslices"))
        self.synced = asyncio.Event()
        self._callbacks: list[Callable[[], None]] = []
        self._generation = 0
        self._snapshot: Snapshot | None = None
        self._snapshot_gen = -1
        # wall-clock times of changes not yet in an applied snapshot
        self._pending_triggers: list[float] = []
        self._tasks: list[asyncio.Task[None]] = []
        # service -> slice name -> slice; service -> its ports (as of the last snapshot)
        self._slices: dict[SvcKey, dict[str, Obj]] = {}
        self._ports: dict[SvcKey, tuple[ServicePort, ...]] = {}
        self._order: list[SvcKey] = []          # the keys of _ports, sorted
        self._dirty: set[SvcKey] = set()
        self._log: tuple[LogEntry, ...] = ()     # Snapshot.changed_since
        self.services.add_handler(self._on_add, self._on_update, self._on_delete)
        self.slices.add_handler(self._on_slice_add, self._on_slice_update,
                                self._on_slice_delete)

    # ---- events -----------------------------------------------------------------------

    def _changed(self, obj: Obj | None) -> None:
        self._generation += 1
        trigger = _trigger_time(obj) if obj is not None else None
        self._pending_triggers.append(trigger if trigger is not None else time.time())
        if self.synced.is_set():
            for cb in self._callbacks:
                cb()

    def _on_add(self, obj: Obj) -> None:
        self._dirty.add(_service_key(obj))
        self._changed(obj)

    def _on_update(self, old: Obj, new: Obj) -> None:
        # Status-only churn of a Service (or resourceVersion bumps) changes nothing the
        # proxy renders; equal ServicePorts make the sync a no-op anyway.
        self._dirty.add(_service_key(new))
        self._changed(new)

    def _on_delete(self, obj: Obj) -> None:
        self._dirty.add(_service_key(obj))
        self._changed(None)

    def _slice_put(self, obj: Obj) -> None:
        svc = _slice_service(obj)
        if svc is not None:
            self._slices.setdefault(svc, {})[_meta(obj).get("name") or ""] = obj
            self._dirty.add(svc)

    def _slice_drop(self, obj: Obj) -> None:
        svc = _slice_service(obj)
        if svc is None:
            return
        group = self._slices.get(svc, {})
        group.pop(_meta(obj).get("name") or "", None)
        if not group:
            self._slices.pop(svc, None)
        self._dirty.add(svc)

    def _on_slice_add(self, obj: Obj) -> None:
        self._slice_put(obj)
        self._changed(obj)

    def _on_slice_update(self, old: Obj, new: Obj) -> None:
        self._slice_drop(old)        # its service label may have changed
        self._slice_put(new)
        self._changed(new)

    def _on_slice_delete(self, obj: Obj) -> None:
        self._slice_drop(obj)
        self._changed(None)

    def subscribe(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    # ---- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        for inf in (self.services, self.slices):
            if not inf.running and not inf.has_synced:
                self._tasks.append(asyncio.create_task(inf.run(), name=f"proxy:{inf.name}"))
        await asyncio.gather(self.services.wait_synced(), self.slices.wait_synced())
        self.synced.set()
        for cb in self._callbacks:
            cb()

    async def stop(self) -> None:
        for inf in (self.services, self.slices):
            if self._tasks:
                inf.stop()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks = []

    # ---- reads ------------------------------------------------------------------------

    @property
    def generation(self) -> int:
        return self._generation

    def snapshot(self) -> Snapshot:
        """The current state (cached until the next change). Building it costs the
        Services that changed, not the Services there are: the snapshot shares the
        unchanged ports and gets a copy of the per-Service table, and its change log
        tells a partial sync which Services to look at."""
        if self._snapshot is None or self._snapshot_gen != self._generation:
            for key in self._dirty:
                svc = self.services.get_by_name(*key)
                group = self._slices.get(key, {})
                # Slices in name order, as model.slices_by_service: the same endpoints
                # in the same order whatever order events came in.
                ports = service_ports(svc, [group[n] for n in sorted(group)],
                                      self.dns_ip) if svc is not None else []
                if ports:
                    # model.build_snapshot's order: (namespace, name, port name, protocol)
                    ports.sort(key=lambda p: (p.port_name, p.protocol))
                    if key not in self._ports:
                        bisect.insort(self._order, key)
                    self._ports[key] = tuple(ports)
                elif self._ports.pop(key, None) is not None:
                    del self._order[bisect.bisect_left(self._order, key)]
            entry = (self._snapshot_gen, self._generation, frozenset(self._dirty))
            self._log = (self._log + (entry,))[-LOG_LENGTH:]
            self._dirty.clear()
            self._snapshot = Snapshot.of_services(dict(self._ports), list(self._order),
                                                  self._generation, self._log)
            self._snapshot_gen = self._generation
        return self._snapshot

    def take_triggers(self) -> list[float]:
        """Change times since the last call (the caller applied everything up to now)."""
        out, self._pending_triggers = self._pending_triggers, []
        return out

    def requeue_triggers(self, triggers: list[float]) -> None:
        """A failed sync applied nothing: its changes are still pending."""
        self._pending_triggers[:0] = triggers
