"""The /scale subresource: an autoscaling/v1 Scale view of a workload's replicas."""
from __future__ import annotations

from typing import Any

from netd.api import errors
from netd.api.kinds import ResourceType
from netd.api.selectors import selector_from_dict, selector_from_set
from netd.registry.objectapi import ObjectAPI
from netd.store.base import StoredObject, copy_obj


def to_scale(rt: ResourceType, stored: StoredObject) -> dict[str, Any]:
    obj = stored.obj
    meta = obj.get("metadata", {})
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    if rt.kind == "ReplicationController":
        selector = str(selector_from_set(spec.get("selector") or {}))
    else:
        selector = str(selector_from_dict(spec.get("selector")))
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                          "creationTimestamp") if k in meta},
        "spec": {"replicas": int(spec.get("replicas", 0))},
        "status": {"replicas": int(status.get("replicas", 0)), "selector": selector},
    }


def _replicas(body: Any, name: str) -> int:
    if not isinstance(body, dict):
        raise errors.BadRequest("the body of the request must be a Scale object")
    replicas = (body.get("spec") or {}).get("replicas", 0)
    if isinstance(replicas, bool) or not isinstance(replicas, int):
        raise errors.BadRequest("Scale.spec.replicas must be an integer")
    if replicas < 0:
        raise errors.Invalid("Scale", name, [errors.invalid(
            "spec.replicas", replicas, "must be greater than or equal to 0")], "autoscaling")
    return replicas


def _check_scalable(rt: ResourceType) -> None:
    if rt.subresource("scale") is None:
        raise errors.NotFound(f"the server could not find the requested resource "
                              f"({rt.plural}/scale)")


def get_scale(api: ObjectAPI, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
    _check_scalable(rt)
    return to_scale(rt, api.get(rt, namespace, name))


async def update_scale(api: ObjectAPI, rt: ResourceType, namespace: str, name: str,
                       body: Any, *, dry_run: bool = False) -> dict[str, Any]:
    _check_scalable(rt)
    replicas = _replicas(body, name)
    current = api.get(rt, namespace, name)
    sent_rv = ((body.get("metadata") or {}).get("resourceVersion"))
    if sent_rv and str(sent_rv) != str(current.rv):
        raise errors.Conflict.stale(rt.plural, rt.group, name)
    obj = copy_obj(current.obj)
    obj.setdefault("spec", {})["replicas"] = replicas
    if not sent_rv:
        obj["metadata"].pop("resourceVersion", None)
    stored = await api.update(rt, namespace, name, obj, dry_run=dry_run,
                              field_validation="Ignore")
    return to_scale(rt, stored)


async def patch_scale(api: ObjectAPI, rt: ResourceType, namespace: str, name: str,
                      patch_type: str, patch: Any, *, dry_run: bool = False) -> dict[str, Any]:
    _check_scalable(rt)
    for _ in range(5):
        current = to_scale(rt, api.get(rt, namespace, name))
        scale_rt = ResourceType("autoscaling", "v1", "Scale", "scale", "scale", True)
        patched = api._apply_patch(scale_rt, current, patch_type, patch)
        if not (patched.get("metadata") or {}).get("resourceVersion"):
            patched.setdefault("metadata", {})["resourceVersion"] = \
                current["metadata"]["resourceVersion"]
        try:
            return await update_scale(api, rt, namespace, name, patched, dry_run=dry_run)
        except errors.Conflict:
            if (patch if isinstance(patch, dict) else {}).get("metadata", {}).get(
                    "resourceVersion"):
                raise
    raise errors.Conflict.of(rt.plural, rt.group, name, "too many concurrent scale patches")
