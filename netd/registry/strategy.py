"""Per-kind rules of the write path that are not validation: what a create resets,
what an update may touch, when generation moves. Mirrors the `PrepareForCreate` /
`PrepareForUpdate` strategies of kube-apiserver's registries.
"""
from __future__ import annotations

from typing import Any

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
            obj["status"]["qosClass"] = qos_class(obj.get("spec") or {})
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
    if rt.has_status and rt.subresource("status") is not None:
        if "status" in old:
            new["status"] = old["status"]
        else:
            new.pop("status", None)
    if rt.has_status and spec_of(new) != spec_of(old):
        new_meta["generation"] = int(old_meta.get("generation", 1)) + 1


def qos_class(spec: dict[str, Any]) -> str:
    """Kubernetes' QoS class from container requests and limits (GetPodQOS)."""
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        req = res.get("requests") or {}
        lim = res.get("limits") or {}
        if req or lim:
            any_set = True
        for name in ("cpu", "memory"):
            if name not in lim:
                guaranteed = False
            elif name in req and str(req[name]) != str(lim[name]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"
