"""pods/binding: how a scheduler assigns a pod to a node.

kube-apiserver's BindingREST does not go through the pod update strategy (which
forbids changing spec.nodeName): it rewrites the stored pod directly inside a
guaranteed update — nodeName set only when empty, the Binding's annotations merged,
condition PodScheduled=True — and answers a Status. Failures that are not already
API errors become 409 Conflicts on `pods/binding`. This module does the same against
netd's store, so a scheduler (in-process or over HTTP, `POST .../pods/<name>/binding`)
binds exactly as it would on a cluster.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from netd.api import errors
from netd.registry.objectapi import ObjectAPI, timestamp
from netd.store.base import copy_obj

_RETRIES = 8


async def bind(api: ObjectAPI, namespace: str, pod_name: str, node_name: str, *,
               uid: str = "", resource_version: str = "",
               annotations: dict[str, str] | None = None,
               dry_run: bool = False) -> dict[str, Any]:
    """Assign the pod to `node_name`; returns the updated pod (shared, read-only).

    Raises NotFound when the pod is gone, Conflict when it is already bound, being
    deleted, gated, or fails the uid/resourceVersion preconditions."""
    if not node_name:
        raise errors.Invalid("Binding", pod_name, [errors.required("target.name")])
    for _ in range(_RETRIES):
        current = api.store.get("pods", namespace, pod_name)
        if current is None:
            raise errors.NotFound.of("pods", "", pod_name)
        pod = current.obj
        meta = pod.get("metadata") or {}
        if uid and uid != meta.get("uid"):
            raise _conflict(pod_name, f"Precondition failed: UID in precondition: {uid}, "
                                      f"UID in object meta: {meta.get('uid')}")
        if resource_version and str(resource_version) != str(current.rv):
            raise _conflict(pod_name, "Precondition failed: ResourceVersion in precondition: "
                                      f"{resource_version}, ResourceVersion in object meta: "
                                      f"{current.rv}")
        if meta.get("deletionTimestamp"):
            raise _conflict(pod_name, f"pod {pod_name} is being deleted, cannot be assigned "
                                      "to a host")
        spec = pod.get("spec") or {}
        if spec.get("nodeName"):
            raise _conflict(pod_name, f'pod {pod_name} is already assigned to node '
                                      f'"{spec["nodeName"]}"')
        if spec.get("schedulingGates"):
            raise _conflict(pod_name, f"pod {pod_name} has non-empty .spec.schedulingGates")
        updated = bound_pod(pod, node_name, api.clock(), annotations)
        if dry_run:
            return updated
        try:
            stored = await api.store.update("pods", namespace, pod_name, updated, current.rv)
        except errors.Conflict:
            continue  # written meanwhile: re-read and re-check, as GuaranteedUpdate does
        return stored.obj
    raise _conflict(pod_name, "the object has been modified too often to bind")


def bound_pod(pod: dict[str, Any], node_name: str, now: datetime,
              annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """A copy of `pod` assigned to the node (pure; podutil.UpdatePodCondition)."""
    updated = copy_obj(pod)
    updated.setdefault("spec", {})["nodeName"] = node_name
    if annotations:
        updated["metadata"].setdefault("annotations", {}).update(annotations)
    status = updated.setdefault("status", {})
    conditions = status.setdefault("conditions", [])
    for cond in conditions:
        if cond.get("type") == "PodScheduled":
            if cond.get("status") != "True":
                cond["lastTransitionTime"] = timestamp(now)
            cond["status"] = "True"
            cond.pop("reason", None)
            cond.pop("message", None)
            cond["lastProbeTime"] = None
            break
    else:
        conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                           "lastTransitionTime": timestamp(now)})
    return updated


async def create_binding(api: ObjectAPI, namespace: str, pod_name: str,
                         body: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
    """The HTTP verb: POST /api/v1/namespaces/{ns}/pods/{name}/binding with a Binding
    (v1) body. Answers the Status kube-apiserver answers (201 Success)."""
    if not isinstance(body, dict):
        raise errors.BadRequest("the body of the request must be a JSON object")
    meta = body.get("metadata") or {}
    name = meta.get("name") or pod_name
    if name != pod_name:
        raise errors.BadRequest("name in URL does not match name in Binding object")
    target = body.get("target") or {}
    errs = []
    if target.get("kind") not in (None, "", "Node"):
        errs.append(errors.not_supported("target.kind", target.get("kind"), ["Node", "<empty>"]))
    if not target.get("name"):
        errs.append(errors.required("target.name"))
    if errs:
        raise errors.Invalid("Binding", pod_name, errs)
    await bind(api, namespace, pod_name, str(target["name"]), uid=meta.get("uid") or "",
               resource_version=str(meta.get("resourceVersion") or ""),
               annotations=meta.get("annotations") or None, dry_run=dry_run)
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "code": 201}


def _conflict(pod_name: str, why: str) -> errors.Conflict:
    return errors.Conflict.of("pods/binding", "", pod_name, why)
