"""Admission: checks and mutations after validation, before the store write.

Plugins run in order. An allocating plugin (ClusterIP, NodePort) returns an undo
callable so a later failure (another plugin, the store) gives back what it took:
a rejected request changes nothing.
"""
from __future__ import annotations

from typing import Any, Callable, Protocol

from netd.api import errors
from netd.api.kinds import ResourceType
from netd.store.base import Store

Undo = Callable[[], None]

# Namespaces a cluster is born with; kube-apiserver refuses to delete these.
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
UNDELETABLE_NAMESPACES = ("default", "kube-system", "kube-public")


class AdmissionPlugin(Protocol):
    async def on_create(self, rt: ResourceType, obj: dict[str, Any],
                        dry_run: bool) -> Undo | None: ...

    async def on_update(self, rt: ResourceType, new: dict[str, Any], old: dict[str, Any],
                        dry_run: bool) -> Undo | None: ...

    async def on_delete(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        """Called once the object is gone from the store (release what it held)."""


class PluginBase:
    """No-op defaults so plugins implement only what they need."""

    async def on_create(self, rt: ResourceType, obj: dict[str, Any],
                        dry_run: bool) -> Undo | None:
        return None

    async def on_update(self, rt: ResourceType, new: dict[str, Any], old: dict[str, Any],
                        dry_run: bool) -> Undo | None:
        return None

    async def on_delete(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        return None


class NamespaceLifecycle(PluginBase):
    """New objects only in namespaces that exist and are not terminating."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def on_create(self, rt: ResourceType, obj: dict[str, Any],
                        dry_run: bool) -> Undo | None:
        if not rt.namespaced:
            return None
        meta = obj["metadata"]
        ns = meta.get("namespace", "")
        current = self._store.get("namespaces", "", ns)
        if current is None:
            raise errors.NotFound.of("namespaces", "", ns)
        if current.obj.get("metadata", {}).get("deletionTimestamp") and rt.kind != "Event":
            raise errors.Forbidden(
                f'{rt.group_resource} "{meta.get("name", "")}" is forbidden: unable to create '
                f"new content in namespace {ns} because it is being terminated",
                name=meta.get("name", ""), kind=rt.plural, group=rt.group)
        return None


def run_undos(undos: list[Undo]) -> None:
    for undo in reversed(undos):
        undo()
