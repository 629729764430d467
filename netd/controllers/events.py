"""Events as a real cluster records them (core/v1 Event), written in the background.

`record()` never blocks a reconcile: it queues; a supervised task writes. Repeats of
the same (object, type, reason, message, source) are folded into one Event whose
count and lastTimestamp grow, as client-go's EventCorrelator does, so
`kubectl describe` and `kubectl get events` read like a cluster's.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from netd.api import errors
from netd.api.kinds import REGISTRY
from netd.registry.objectapi import MERGE_PATCH, ObjectAPI

log = logging.getLogger("netd.controllers.events")

EVENTS = REGISTRY.by_plural("", "events")
assert EVENTS is not None
_EVENTS = EVENTS

NORMAL = "Normal"
WARNING = "Warning"
_QUEUE_LIMIT = 10_000


def _ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Pending:
    involved: dict[str, Any]
    type: str
    reason: str
    message: str
    component: str
    host: str
    when: datetime


@dataclass
class EventRecorder:
    api: ObjectAPI
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
    _queue: asyncio.Queue[_Pending] = field(default_factory=asyncio.Queue)
    # correlation key -> (namespace, event name, count)
    _seen: dict[tuple[str, ...], tuple[str, str, int]] = field(default_factory=dict)
    dropped: int = 0

    def record(self, obj: dict[str, Any], type: str, reason: str, message: str, *,
               component: str, host: str = "") -> None:
        """Queue an event about `obj` (any served object, as stored)."""
        if self._queue.qsize() >= _QUEUE_LIMIT:
            self.dropped += 1  # never let events grow memory without bound
            return
        meta = obj.get("metadata", {})
        involved = {"kind": obj.get("kind", ""), "apiVersion": obj.get("apiVersion", ""),
                    "name": meta.get("name", ""), "uid": meta.get("uid", ""),
                    "resourceVersion": meta.get("resourceVersion", "")}
        if meta.get("namespace"):
            involved["namespace"] = meta["namespace"]
        self._queue.put_nowait(_Pending(involved, type, reason, message, component, host,
                                        self.clock()))

    async def run(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                await self._write(item)
            except errors.APIError as err:
                # e.g. the namespace is gone: events are best-effort, like a cluster's.
                log.debug("event %s for %s dropped: %s", item.reason,
                          item.involved.get("name"), err.message)
            except Exception:
                log.exception("event %s for %s failed", item.reason, item.involved.get("name"))
            finally:
                self._queue.task_done()

    async def flush(self) -> None:
        """Wait until everything queued so far is written (tests)."""
        await self._queue.join()

    async def _write(self, p: _Pending) -> None:
        key = (p.involved["uid"], p.type, p.reason, p.message, p.component, p.host)
        ns = p.involved.get("namespace") or "default"
        seen = self._seen.get(key)
        if seen is not None:
            ev_ns, name, count = seen
            try:
                await self.api.patch(_EVENTS, ev_ns, name, MERGE_PATCH, {
                    "count": count + 1, "lastTimestamp": _ts(p.when)})
                self._seen[key] = (ev_ns, name, count + 1)
                return
            except errors.NotFound:
                pass
        name = f"{p.involved['name']}.{time.time_ns():x}"
        source: dict[str, str] = {"component": p.component}
        if p.host:
            source["host"] = p.host
        body = {"apiVersion": "v1", "kind": "Event",
                "metadata": {"name": name, "namespace": ns},
                "involvedObject": p.involved, "reason": p.reason, "message": p.message,
                "type": p.type, "source": source, "count": 1,
                "firstTimestamp": _ts(p.when), "lastTimestamp": _ts(p.when),
                "reportingComponent": p.component, "reportingInstance": p.host or "netd"}
        await self.api.create(_EVENTS, ns, body, field_validation="Ignore")
        if len(self._seen) > 50_000:
            self._seen.clear()
        self._seen[key] = (ns, name, 1)
