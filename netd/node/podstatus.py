"""The pod status a kubelet reports, from what the node knows of each container (pure).

Phase follows kubelet's getPhase: pending while initializing or while a container
waits without having run; Running while something runs (or, with restartPolicy
Always, restarts); Succeeded when everything stopped with 0 and nothing restarts;
Failed when something stopped non-zero under Never (or an init container failed
under Never). Conditions are kubelet's five, in its order, keeping
lastTransitionTime while a status holds; conditions owned by others are kept.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from netd.node.simpod import KUBELET_CONDITIONS, _gate_message, image_id
from netd.registry.objectapi import timestamp

Obj = dict[str, Any]


@dataclass
class CState:
    """What the node knows of one container."""
    name: str
    image: str
    init: bool = False
    sidecar: bool = False           # an init container with restartPolicy Always
    state: Obj = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: Obj = field(default_factory=dict)
    ready: bool = False
    started: bool = False
    restart_count: int = 0
    container_id: str = ""

    def status(self) -> Obj:
        out: Obj = {"name": self.name, "state": self.state, "lastState": self.last_state,
                    "ready": self.ready, "restartCount": self.restart_count,
                    "image": self.image, "imageID": image_id(self.image) if self.container_id
                    else ""}
        if self.container_id:
            out["containerID"] = self.container_id
        out["started"] = self.started
        return out

    @property
    def running(self) -> bool:
        return "running" in self.state

    @property
    def succeeded(self) -> bool:
        return (self.state.get("terminated") or {}).get("exitCode") == 0


def phase(restart_policy: str, inits: list[CState], containers: list[CState],
          init_failed: bool) -> str:
    if init_failed and restart_policy == "Never":
        return "Failed"
    if any(not (c.succeeded or (c.sidecar and c.started)) for c in inits):
        return "Pending"
    running = stopped = succeeded = waiting = 0
    for c in containers:
        if c.running:
            running += 1
        elif "terminated" in c.state:
            stopped += 1
            succeeded += c.succeeded
        elif c.last_state.get("terminated"):
            stopped += 1
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if restart_policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if restart_policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def _cond(old: dict[str, Obj], type_: str, value: str, ts: str, reason: str = "",
          message: str = "") -> Obj:
    prev = old.get(type_) or {}
    cond: Obj = {"type": type_, "status": value, "lastProbeTime": None,
                 "lastTransitionTime": prev.get("lastTransitionTime")
                 if prev.get("status") == value and prev.get("lastTransitionTime") else ts}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def pod_status(pod: Obj, *, sandbox_ready: bool, inits: list[CState],
               containers: list[CState], init_failed: bool, pod_ip: str, host_ip: str,
               now: datetime) -> Obj:
    old = pod.get("status") or {}
    spec = pod.get("spec") or {}
    ts = timestamp(now)
    ph = phase(spec.get("restartPolicy") or "Always", inits, containers, init_failed)
    if old.get("phase") in ("Succeeded", "Failed"):
        ph = old["phase"]       # terminal phases never go back
    old_conds = {c.get("type"): c for c in old.get("conditions") or []}
    others = [c for c in old.get("conditions") or [] if c.get("type") not in KUBELET_CONDITIONS]
    incomplete = [c.name for c in inits if not (c.succeeded or (c.sidecar and c.started))]
    unready = [c.name for c in containers if not c.ready] + \
        [c.name for c in inits if c.sidecar and not c.ready]
    terminal = ph in ("Succeeded", "Failed")
    have = {c.get("type"): c.get("status") for c in others}
    gates = [g.get("conditionType") for g in spec.get("readinessGates") or []
             if have.get(g.get("conditionType")) != "True"]
    conds = [_cond(old_conds, "PodReadyToStartContainers",
                   "True" if sandbox_ready and not terminal else "False", ts)]
    if incomplete:
        conds.append(_cond(old_conds, "Initialized", "False", ts, "ContainersNotInitialized",
                           f"containers with incomplete status: [{' '.join(incomplete)}]"))
    else:
        conds.append(_cond(old_conds, "Initialized", "True", ts))
    if terminal:
        cr = ("False", "PodCompleted", "")
    elif unready:
        cr = ("False", "ContainersNotReady",
              f"containers with unready status: [{' '.join(unready)}]")
    else:
        cr = ("True", "", "")
    if cr[0] == "True" and gates:
        ready = ("False", "ReadinessGatesNotReady", _gate_message(gates, have))
    else:
        ready = cr
    conds.append(_cond(old_conds, "Ready", ready[0], ts, ready[1], ready[2]))
    conds.append(_cond(old_conds, "ContainersReady", cr[0], ts, cr[1], cr[2]))
    conds.append(_cond(old_conds, "PodScheduled", "True", ts))
    out = dict(old)
    out.update({"phase": ph, "conditions": conds + others, "hostIP": host_ip,
                "hostIPs": [{"ip": host_ip}], "startTime": old.get("startTime") or ts,
                "containerStatuses": [c.status() for c in containers]})
    if pod_ip:
        out["podIP"] = pod_ip
        out["podIPs"] = [{"ip": pod_ip}]
    if inits:
        out["initContainerStatuses"] = [c.status() for c in inits]
    return out
