"""What a kubelet reports for a pod that runs (pure): container statuses with a fake
runtime's identities, the kubelet-owned conditions and addresses. Timestamps of what
did not change are kept, so reporting the same state again is a no-op write.
"""
from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from netd.registry.objectapi import timestamp

Obj = dict[str, Any]

# Conditions a kubelet owns; a pod's other conditions (readiness gates, disruption
# targets) belong to someone else and are kept.
KUBELET_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
                      "PodScheduled")


# ---- fake container runtime identities ------------------------------------------------

def image_ref(image: str) -> str:
    """docker.io/library/nginx for "nginx:1.25" (the repository a runtime reports)."""
    name = image.split("@", 1)[0]
    slash, colon = name.rfind("/"), name.rfind(":")
    if colon > slash:
        name = name[:colon]
    first = name.split("/", 1)[0]
    if "/" not in name:
        return f"docker.io/library/{name}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{name}"
    return name


def image_id(image: str) -> str:
    digest = hashlib.sha256(image.encode()).hexdigest()
    return f"{image_ref(image)}@sha256:{digest}"


def container_id(pod_uid: str, name: str) -> str:
    return "netd://" + hashlib.sha256(f"{pod_uid}/{name}".encode()).hexdigest()


# ---- desired pod status (pure) --------------------------------------------------------

def running_status(pod: Obj, pod_ip: str, host_ip: str, now: datetime) -> Obj:
    """The status a kubelet reports for `pod` running on this node, keeping the
    timestamps of what did not change (so re-reporting is a no-op write)."""
    old = pod.get("status") or {}
    spec = pod.get("spec") or {}
    uid = pod["metadata"].get("uid", "")
    ts = timestamp(now)
    started = old.get("startTime") or ts
    old_running = {c.get("name"): c for c in old.get("containerStatuses") or []}
    statuses = []
    for c in spec.get("containers") or []:
        prev = old_running.get(c.get("name")) or {}
        running = (prev.get("state") or {}).get("running") or {}
        statuses.append({
            "name": c.get("name"), "image": c.get("image", ""),
            "imageID": image_id(c.get("image", "")),
            "containerID": container_id(uid, c.get("name", "")),
            "ready": True, "started": True, "restartCount": 0,
            "state": {"running": {"startedAt": running.get("startedAt") or ts}},
            "lastState": {}})
    init_statuses = []
    old_init = {c.get("name"): c for c in old.get("initContainerStatuses") or []}
    for c in spec.get("initContainers") or []:
        prev = old_init.get(c.get("name")) or {}
        state = prev.get("state") or {}
        if c.get("restartPolicy") == "Always":   # a sidecar keeps running
            new_state: Obj = {"running": {"startedAt": (state.get("running") or {})
                                          .get("startedAt") or ts}}
            started_flag = True
        else:
            term = state.get("terminated") or {}
            new_state = {"terminated": {
                "exitCode": 0, "reason": "Completed",
                "startedAt": term.get("startedAt") or ts,
                "finishedAt": term.get("finishedAt") or ts,
                "containerID": container_id(uid, c.get("name", ""))}}
            started_flag = False
        init_statuses.append({
            "name": c.get("name"), "image": c.get("image", ""),
            "imageID": image_id(c.get("image", "")),
            "containerID": container_id(uid, c.get("name", "")),
            "ready": True, "started": started_flag, "restartCount": 0,
            "state": new_state, "lastState": {}})
    others = [c for c in old.get("conditions") or []
              if c.get("type") not in KUBELET_CONDITIONS]
    have = {c.get("type"): c.get("status") for c in others}
    gates_missing = [g.get("conditionType") for g in spec.get("readinessGates") or []
                     if have.get(g.get("conditionType")) != "True"]
    wanted: list[tuple[str, str, str, str]] = [
        ("PodReadyToStartContainers", "True", "", ""),
        ("Initialized", "True", "", ""),
        ("Ready", "False" if gates_missing else "True",
         "ReadinessGatesNotReady" if gates_missing else "", _gate_message(gates_missing, have)),
        ("ContainersReady", "True", "", ""),
        ("PodScheduled", "True", "", ""),
    ]
    old_conds = {c.get("type"): c for c in old.get("conditions") or []}
    conditions = []
    for type_, value, reason, message in wanted:
        prev = old_conds.get(type_) or {}
        cond: Obj = {"type": type_, "status": value, "lastProbeTime": None,
                     "lastTransitionTime": prev.get("lastTransitionTime")
                     if prev.get("status") == value and prev.get("lastTransitionTime")
                     else ts}
        if reason:
            cond["reason"] = reason
            cond["message"] = message
        conditions.append(cond)
    status_out = dict(old)
    status_out.update({
        "phase": "Running", "conditions": conditions + others,
        "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip, "podIPs": [{"ip": pod_ip}], "startTime": started,
        "containerStatuses": statuses})
    if init_statuses:
        status_out["initContainerStatuses"] = init_statuses
    return status_out


def _gate_message(missing: list[Any], have: dict[Any, Any]) -> str:
    # status.generateContainersReadyCondition / GetPodReadyCondition wording.
    if not missing:
        return ""
    gate = missing[0]
    if gate not in have:
        return f'corresponding condition of pod readiness gate "{gate}" does not exist.'
    return f'the status of pod readiness gate "{gate}" is not "True", but {have[gate]}'
