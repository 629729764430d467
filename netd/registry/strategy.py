"""Per-kind rules of the write path that are not validation: what a create resets,
what an update may touch, when generation moves. Mirrors the `PrepareForCreate` /
`PrepareForUpdate` strategies of kube-apiserver's registries.
"""
from __future__ import annotations

from typing import Any

from netd.api import servicespec
from netd.api.defaults import pod_qos_class
from netd.api.kinds import ResourceType
from netd.store.base import copy_obj

# Metadata fields only the server sets; a client's values are ignored on update.
_SYSTEM_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                "generation", "namespace", "selfLink")

# Initial status a create leaves (the client's status is dropped, as kube-apiserver does).
_INITIAL_STATUS: dict[str, dict[str, Any]] = {
    "Pod": {"phase": "Pending"},
    "Service": {"loadBalancer": {}},
    "Namespace": {"phase": "Active"},
    "PersistentVolume": {"phase": "Pending"},
    "PersistentVolumeClaim": {"phase": "Pending"},
}

# Kinds whose create keeps a status the client sent (nodes register their own status,
# and these have no controller that would otherwise fill it in).
_KEEP_STATUS_ON_CREATE = {"Node"}


def spec_of(obj: dict[str, Any]) -> dict[str, Any]:
    """Everything but metadata and status: what a generation counts changes of."""
    return {k: v for k, v in obj.items()
            if k not in ("metadata", "status", "apiVersion", "kind")}


def prepare_for_create(rt: ResourceType, obj: dict[str, Any]) -> None:
    meta = obj.setdefault("metadata", {})
    for key in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
        meta.pop(key, None)
    if rt.has_status:
        meta["generation"] = 1
        if rt.kind not in _KEEP_STATUS_ON_CREATE:
            status = dict(_INITIAL_STATUS.get(rt.kind, {}))
            if rt.kind == "Namespace":
                status["phase"] = "Active"
            if status or "status" in obj:
                obj["status"] = status
        if rt.kind == "Pod":
            obj["status"]["qosClass"] = pod_qos_class(obj.get("spec") or {})
    else:
        meta.pop("generation", None)


def prepare_for_update(rt: ResourceType, new: dict[str, Any], old: dict[str, Any],
                       subresource: str | None) -> None:
    """Reset what this kind of update may not change (status via the main resource,
    spec via /status), carry over system metadata, and bump generation."""
    new_meta = new.setdefault("metadata", {})
    old_meta = old.get("metadata", {})
    for key in _SYSTEM_META:
        if key in old_meta:
            new_meta[key] = old_meta[key]
        else:
            new_meta.pop(key, None)
    if subresource == "finalize":
        # namespaces/finalize changes spec.finalizers and nothing else.
        finalizers = (new.get("spec") or {}).get("finalizers") or []
        new.clear()
        new.update(copy_obj(old))
        new.setdefault("spec", {})["finalizers"] = finalizers
        return
    if subresource == "status":
        for key in list(new.keys()):
            if key not in ("metadata", "status", "apiVersion", "kind"):
                del new[key]
        for key, value in old.items():
            if key not in ("metadata", "status"):
                new[key] = value
        # /status may not touch ownership or finalization (as kube-apiserver).
        for key in ("ownerReferences", "finalizers"):
            if key in old_meta:
                new_meta[key] = old_meta[key]
            else:
                new_meta.pop(key, None)
        return
    _keep_server_set_spec(rt, new, old)
    if rt.has_status and rt.subresource("status") is not None:
        if "status" in old:
            new["status"] = old["status"]
        else:
            new.pop("status", None)
    if rt.has_status and spec_of(new) != spec_of(old):
        new_meta["generation"] = int(old_meta.get("generation", 1)) + 1


def _keep_server_set_spec(rt: ResourceType, new: dict[str, Any], old: dict[str, Any]) -> None:
    """Spec fields the server set, which an update that leaves them out keeps (as
    kube-apiserver's strategies do), so `kubectl replace` of a manifest works."""
    new_spec = new.get("spec")
    old_spec = old.get("spec") or {}
    if not isinstance(new_spec, dict):
        return
    if rt.kind == "Namespace" and "finalizers" not in new_spec and "finalizers" in old_spec:
        new_spec["finalizers"] = old_spec["finalizers"]
    if rt.kind == "Service":
        # A type change drops what the old type needed (nodePorts, clusterIP for
        # ExternalName); values the allocator assigned survive an update omitting them.
        servicespec.drop_type_dependent_fields(new_spec, old_spec)
        servicespec.patch_allocated_values(new_spec, old_spec)
