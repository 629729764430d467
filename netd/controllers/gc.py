"""Garbage collector: ownerReferences cascading deletion as kube-controller-manager's
garbage collector does it.

- A dependent whose owners are all gone is deleted (Background); one with some
  owners gone loses the dangling references.
- An owner being deleted with the `orphan` finalizer has its references removed from
  every dependent, then the finalizer.
- An owner with `foregroundDeletion` has its dependents deleted (foreground too);
  the finalizer goes once no dependent with blockOwnerDeletion remains.
Keys are uids; reconcile reads current state, so it is idempotent.
"""
from __future__ import annotations

import logging
from typing import Any

from netd.api import errors
from netd.controllers.graph import Node, ObjectGraph
from netd.registry.deletion import FOREGROUND, ORPHAN
from netd.registry.objectapi import JSON_PATCH, MERGE_PATCH, ObjectAPI
from netd.client.controller import Controller

log = logging.getLogger("netd.controllers.gc")


class GarbageCollector(Controller):
    def __init__(self, api: ObjectAPI, graph: ObjectGraph, workers: int = 2) -> None:
        super().__init__("garbagecollector", workers=workers)
        self.api = api
        self.graph = graph
        graph.listeners.append(self._on_change)

    def _on_change(self, typ: str, node: Node, obj: dict[str, Any],
                   prev: dict[str, Any] | None) -> None:
        meta = obj.get("metadata", {})
        if typ == "DELETED":
            # Its dependents may now be orphans; its owners may be waiting on it.
            for dep in list(self.graph.dependents.get(node.uid, ())):
                self.queue.add(dep)
            for ref in meta.get("ownerReferences") or []:
                self.queue.add(ref.get("uid", ""))
            return
        if meta.get("ownerReferences") or (meta.get("deletionTimestamp") and
                                           set(meta.get("finalizers") or ()) &
                                           {ORPHAN, FOREGROUND}):
            self.queue.add(node.uid)

    async def wait_synced(self) -> None:
        await self.graph.synced.wait()

    def _current(self, uid: str) -> tuple[Node, dict[str, Any]] | None:
        node = self.graph.nodes.get(uid)
        if node is None:
            return None
        stored = self.api.store.get(node.rt.group_resource, node.namespace, node.name)
        if stored is None or stored.obj.get("metadata", {}).get("uid") != uid:
            return None
        return node, stored.obj

    async def reconcile(self, uid: str) -> None:
        found = self._current(uid)
        if found is None:
            return
        node, obj = found
        meta = obj.get("metadata", {})
        finalizers = meta.get("finalizers") or []
        if meta.get("deletionTimestamp") and ORPHAN in finalizers:
            await self._orphan(node, obj)
            return
        if meta.get("deletionTimestamp") and FOREGROUND in finalizers:
            await self._foreground(node, obj)
            return
        refs = meta.get("ownerReferences") or []
        if not refs:
            return
        dangling = [r for r in refs if not self._owner_exists(node, r)]
        waiting_owner = [r for r in refs if r not in dangling and r.get("blockOwnerDeletion")
                         and self._in_foreground(r.get("uid", ""))]
        if len(dangling) == len(refs):
            policy = "Foreground" if waiting_owner else "Background"
            log.info("deleting %s %s/%s: all owners are gone", node.rt.plural, node.namespace,
                     node.name)
            await self._delete(node, uid, policy)
        elif waiting_owner:
            await self._delete(node, uid, "Foreground")
        elif dangling:
            await self._set_owner_refs(node, uid, [r for r in refs if r not in dangling])

    def _owner_exists(self, node: Node, ref: dict[str, Any]) -> bool:
        owner = self.graph.nodes.get(ref.get("uid", ""))
        if owner is None:
            return False
        # A namespaced owner must live in the dependent's namespace.
        return not owner.rt.namespaced or owner.namespace == node.namespace

    def _in_foreground(self, uid: str) -> bool:
        found = self._current(uid)
        if found is None:
            return False
        meta = found[1].get("metadata", {})
        return bool(meta.get("deletionTimestamp")) and FOREGROUND in (meta.get("finalizers")
                                                                      or [])

    async def _delete(self, node: Node, uid: str, policy: str) -> None:
        try:
            await self.api.delete(node.rt, node.namespace, node.name,
                                  {"propagationPolicy": policy, "preconditions": {"uid": uid}})
        except errors.NotFound:
            pass

    async def _orphan(self, node: Node, obj: dict[str, Any]) -> None:
        for dep_uid in list(self.graph.dependents.get(node.uid, ())):
            found = self._current(dep_uid)
            if found is None:
                continue
            dep, dobj = found
            refs = dobj.get("metadata", {}).get("ownerReferences") or []
            keep = [r for r in refs if r.get("uid") != node.uid]
            if len(keep) != len(refs):
                await self._set_owner_refs(dep, dep_uid, keep)
        await self._drop_finalizer(node, obj, ORPHAN)

    async def _foreground(self, node: Node, obj: dict[str, Any]) -> None:
        blocking = 0
        for dep_uid in list(self.graph.dependents.get(node.uid, ())):
            found = self._current(dep_uid)
            if found is None:
                continue
            dep, dobj = found
            ref: dict[str, Any] = next((r for r in dobj.get("metadata", {}).get("ownerReferences") or []
                        if r.get("uid") == node.uid), {})
            if ref.get("blockOwnerDeletion"):
                blocking += 1
            if not dobj.get("metadata", {}).get("deletionTimestamp"):
                await self._delete(dep, dep_uid, "Foreground")
        if blocking == 0:
            await self._drop_finalizer(node, obj, FOREGROUND)

    async def _set_owner_refs(self, node: Node, uid: str, refs: list[dict[str, Any]]) -> None:
        # An empty list is removed, as Go's omitempty would leave it out.
        op = {"op": "replace", "path": "/metadata/ownerReferences", "value": refs} if refs \
            else {"op": "remove", "path": "/metadata/ownerReferences"}
        await self.api.patch(node.rt, node.namespace, node.name, JSON_PATCH, [
            {"op": "test", "path": "/metadata/uid", "value": uid}, op])

    async def _drop_finalizer(self, node: Node, obj: dict[str, Any], name: str) -> None:
        finalizers = [f for f in obj.get("metadata", {}).get("finalizers") or [] if f != name]
        await self.api.patch(node.rt, node.namespace, node.name, MERGE_PATCH, {
            "metadata": {"finalizers": finalizers or None,
                         "resourceVersion": obj["metadata"]["resourceVersion"]}})
