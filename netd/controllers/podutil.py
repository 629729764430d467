"""Pod and ownership helpers shared by the workload controllers (the facts of
k8s.io/kubernetes pkg/api/v1/pod and pkg/controller/controller_utils.go). Pure."""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

import orjson

Obj = dict[str, Any]

# apimachinery's rand.SafeEncodeString alphabet (no vowels, no ambiguous digits).
_SAFE = "bcdfghjklmnpqrstvwxz2456789"


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def condition(obj: Obj, type_: str) -> Obj | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return c
    return None


def is_pod_ready(pod: Obj) -> bool:
    c = condition(pod, "Ready")
    return c is not None and c.get("status") == "True"


def is_pod_active(pod: Obj) -> bool:
    """Not finished and not being deleted (controller_utils.IsPodActive)."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and \
        not pod.get("metadata", {}).get("deletionTimestamp")


def is_pod_available(pod: Obj, min_ready_seconds: int, now: datetime) -> bool:
    """Ready for at least minReadySeconds (podutil.IsPodAvailable)."""
    c = condition(pod, "Ready")
    if c is None or c.get("status") != "True":
        return False
    if min_ready_seconds <= 0:
        return True
    since = parse_time(c.get("lastTransitionTime"))
    return since is not None and since + timedelta(seconds=min_ready_seconds) <= now


def controller_ref(obj: Obj) -> Obj | None:
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def new_controller_ref(owner: Obj) -> Obj:
    meta = owner["metadata"]
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": meta["name"],
            "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}


def is_controlled_by(obj: Obj, owner: Obj) -> bool:
    ref = controller_ref(obj)
    return ref is not None and ref.get("uid") == owner.get("metadata", {}).get("uid")


def pod_from_template(template: Obj, owner: Obj, *, name: str = "",
                      generate_name: str = "") -> Obj:
    """A new Pod from a PodTemplateSpec, controlled by `owner` (GetPodFromTemplate)."""
    tmeta = template.get("metadata") or {}
    meta: Obj = {"namespace": owner["metadata"]["namespace"],
                 "labels": dict(tmeta.get("labels") or {}),
                 "ownerReferences": [new_controller_ref(owner)]}
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    if tmeta.get("finalizers"):
        meta["finalizers"] = list(tmeta["finalizers"])
    if name:
        meta["name"] = name
    else:
        meta["generateName"] = generate_name
    spec = orjson.loads(orjson.dumps(template.get("spec") or {}))
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def safe_encode(value: int) -> str:
    return "".join(_SAFE[int(ch, 16) % len(_SAFE)] for ch in f"{value:x}")


def template_hash(template: Obj, collision_count: int = 0) -> str:
    """A stable short hash of a pod template, encoded like kube-controller-manager's
    pod-template-hash (SafeEncodeString of a 32-bit hash). The exact hash function
    differs from Go's (FNV over a spew dump), which only matters for cross-tool equality."""
    data = orjson.dumps(template, option=orjson.OPT_SORT_KEYS)
    if collision_count:
        data += str(collision_count).encode()
    value = int.from_bytes(hashlib.blake2s(data, digest_size=4).digest(), "big")
    return safe_encode(value)
