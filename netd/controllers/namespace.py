"""Namespace deletion: once a namespace is Terminating, delete everything in it,
then remove the `kubernetes` finalizer so the namespace itself goes."""
from __future__ import annotations

import logging
from typing import Any

from netd.api import errors
from netd.api.kinds import REGISTRY
from netd.client.controller import Controller
from netd.controllers.graph import Node, ObjectGraph
from netd.registry.objectapi import ObjectAPI
from netd.store.base import copy_obj

log = logging.getLogger("netd.controllers.namespace")

_NS = REGISTRY.by_plural("", "namespaces")
assert _NS is not None
NAMESPACES = _NS
_NAMESPACED = [rt for rt in REGISTRY.types if rt.namespaced]


class NamespaceController(Controller):
    def __init__(self, api: ObjectAPI, graph: ObjectGraph) -> None:
        super().__init__("namespace")
        self.api = api
        self.graph = graph
        graph.listeners.append(self._on_change)

    def _on_change(self, typ: str, node: Node, obj: dict[str, Any],
                   prev: dict[str, Any] | None) -> None:
        if node.rt.kind == "Namespace":
            if obj.get("metadata", {}).get("deletionTimestamp") and typ != "DELETED":
                self.queue.add(node.name)
        elif typ == "DELETED" and node.namespace:
            ns = self.api.store.get("namespaces", "", node.namespace)
            if ns is not None and ns.obj.get("metadata", {}).get("deletionTimestamp"):
                self.queue.add(node.namespace)

    async def wait_synced(self) -> None:
        await self.graph.synced.wait()

    async def reconcile(self, name: str) -> None:
        ns = self.api.store.get("namespaces", "", name)
        if ns is None or not ns.obj.get("metadata", {}).get("deletionTimestamp"):
            return
        remaining = 0
        for rt in _NAMESPACED:
            items, _ = self.api.store.list(rt.group_resource, name)
            for item in items:
                remaining += 1
                if item.obj.get("metadata", {}).get("deletionTimestamp"):
                    continue
                try:
                    await self.api.delete(rt, name, item.name,
                                          {"propagationPolicy": "Background"})
                except errors.NotFound:
                    remaining -= 1
        if remaining:
            return  # deletions of the content re-queue this namespace
        body = copy_obj(ns.obj)
        body.setdefault("spec", {})["finalizers"] = []
        await self.api.update(NAMESPACES, "", name, body, subresource="finalize")
        log.info("namespace %s deleted", name)
