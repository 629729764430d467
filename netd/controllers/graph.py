"""A whole-store view for controllers that span every kind (garbage collector,
namespace deleter): object identity by uid, owner → dependents, and a callback per
change. Fed by one list of every resource plus one watch of all resources."""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Callable

from netd.api import errors
from netd.api.kinds import REGISTRY, ResourceType
from netd.store.base import DELETED, Store, WatchEvent

log = logging.getLogger("netd.controllers.graph")

_BY_RESOURCE = {rt.group_resource: rt for rt in REGISTRY.types}


@dataclass(frozen=True)
class Node:
    rt: ResourceType
    namespace: str
    name: str
    uid: str


Listener = Callable[[str, Node, dict[str, Any], dict[str, Any] | None], None]


class ObjectGraph:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.nodes: dict[str, Node] = {}
        self.owners: dict[str, set[str]] = {}       # dependent uid -> owner uids
        self.dependents: dict[str, set[str]] = {}   # owner uid -> dependent uids
        self.listeners: list[Listener] = []
        self.synced = asyncio.Event()
        self._rv = 0

    def _put(self, rt: ResourceType, obj: dict[str, Any]) -> Node:
        meta = obj.get("metadata", {})
        uid = meta.get("uid", "")
        node = Node(rt, meta.get("namespace", ""), meta.get("name", ""), uid)
        self.nodes[uid] = node
        new_owners = {ref.get("uid", "") for ref in meta.get("ownerReferences") or []}
        for old in self.owners.get(uid, set()) - new_owners:
            self.dependents.get(old, set()).discard(uid)
        for owner in new_owners:
            self.dependents.setdefault(owner, set()).add(uid)
        self.owners[uid] = new_owners
        return node

    def _drop(self, uid: str) -> None:
        self.nodes.pop(uid, None)
        for owner in self.owners.pop(uid, set()):
            deps = self.dependents.get(owner)
            if deps is not None:
                deps.discard(uid)
                if not deps:
                    del self.dependents[owner]

    def _relist(self) -> None:
        self.nodes.clear()
        self.owners.clear()
        self.dependents.clear()
        rv = self.store.revision
        for rt in REGISTRY.types:
            items, _ = self.store.list(rt.group_resource)
            for item in items:
                node = self._put(rt, item.obj)
                self._notify("ADDED", node, item.obj, None)
        self._rv = rv

    def _notify(self, typ: str, node: Node, obj: dict[str, Any],
                prev: dict[str, Any] | None) -> None:
        for listener in self.listeners:
            try:
                listener(typ, node, obj, prev)
            except Exception:
                log.exception("graph listener failed for %s %s/%s", node.rt.plural,
                              node.namespace, node.name)

    def _apply(self, ev: WatchEvent) -> None:
        rt = _BY_RESOURCE.get(ev.resource)
        if rt is None:
            return
        if ev.type == DELETED:
            uid = ev.obj.get("metadata", {}).get("uid", "")
            node = self.nodes.get(uid) or Node(rt, ev.namespace, ev.name, uid)
            self._drop(uid)
            self._notify(DELETED, node, ev.obj, ev.prev)
        else:
            node = self._put(rt, ev.obj)
            self._notify(ev.type, node, ev.obj, ev.prev)

    async def run(self) -> None:
        self._relist()
        self.synced.set()
        while True:
            try:
                watcher = self.store.watch(None, None, self._rv)
            except errors.Gone:
                self._relist()
                continue
            async for batch in watcher:
                for ev in batch:
                    self._apply(ev)
                    self._rv = ev.rv
            if not watcher.closed_reason:
                return  # the store is closing
            log.warning("graph watch closed (%s); resuming", watcher.closed_reason)

    def live_uid(self, uid: str) -> bool:
        return uid in self.nodes
