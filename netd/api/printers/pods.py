"""The Pod printer: READY, STATUS, RESTARTS exactly as kube-apiserver 1.32 computes them
(pkg/printers/internalversion printPod), because `kubectl get pods` is the view users
trust most; any drift in STATUS wording reads as a broken cluster.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from netd.api.printers import descriptions as d
from netd.api.printers.common import (
    NONE, Column, Printer, age, age_column, as_dict, as_int, as_list, as_str, get,
    name_column, name_of, parse_time, since, wide,
)

# node.NodeUnreachablePodReason: set by the node lifecycle controller on pods of a lost node.
NODE_UNREACHABLE_REASON = "NodeLost"
# v1.PodReasonSchedulingGated: the scheduler's condition reason while schedulingGates remain.
SCHEDULING_GATED = "SchedulingGated"

COLUMNS = (
    name_column(),
    Column("Ready", "string", d.POD_READY),
    Column("Status", "string", d.POD_STATUS),
    # A string since 1.24: the cell can read "3 (5m ago)".
    Column("Restarts", "string", d.POD_RESTARTS),
    age_column(),
    wide("IP", d.POD_IP),
    wide("Node", d.POD_NODE),
    wide("Nominated Node", d.POD_NOMINATED),
    wide("Readiness Gates", d.POD_READINESS_GATES),
)


def _restartable(init_spec: dict[str, Any] | None) -> bool:
    """podutil.IsRestartableInitContainer: a sidecar (init container restartPolicy Always)."""
    return init_spec is not None and init_spec.get("restartPolicy") == "Always"


def _has_condition(pod: dict[str, Any], ctype: str) -> bool:
    for cond in as_list(get(pod, "status", "conditions")):
        cond = as_dict(cond)
        if cond.get("type") == ctype:
            return cond.get("status") == "True"
    return False


def _pod_ready(pod: dict[str, Any]) -> bool:
    # hasPodReadyCondition scans every condition (not only the first Ready one).
    return any(as_dict(c).get("type") == "Ready" and as_dict(c).get("status") == "True"
               for c in as_list(get(pod, "status", "conditions")))


class _Restarts:
    """Restart count and the latest lastState.terminated.finishedAt seen so far."""

    def __init__(self) -> None:
        self.count = 0
        self.last: datetime | None = None

    def add(self, status: dict[str, Any]) -> None:
        self.count += as_int(status.get("restartCount"))
        finished = parse_time(get(status, "lastState", "terminated", "finishedAt"))
        if get(status, "lastState", "terminated") is not None and finished is not None:
            if self.last is None or finished > self.last:
                self.last = finished


def _terminated_reason(term: dict[str, Any], prefix: str) -> str:
    reason = as_str(term.get("reason"))
    if reason:
        return prefix + reason
    signal = as_int(term.get("signal"))
    if signal != 0:
        return f"{prefix}Signal:{signal}"
    return f"{prefix}ExitCode:{as_int(term.get('exitCode'))}"


def pod_status(pod: dict[str, Any], now: datetime) -> tuple[str, str, str]:
    """(READY, STATUS, RESTARTS) cells of printPod."""
    spec = as_dict(pod.get("spec"))
    status = as_dict(pod.get("status"))
    containers = as_list(spec.get("containers"))
    init_specs = {as_str(as_dict(c).get("name")): as_dict(c)
                  for c in as_list(spec.get("initContainers"))}
    total = len(containers) + sum(1 for c in init_specs.values() if _restartable(c))
    ready = 0

    phase = as_str(status.get("phase"))
    reason = as_str(status.get("reason")) or phase
    for cond in as_list(status.get("conditions")):
        cond = as_dict(cond)
        if cond.get("type") == "PodScheduled" and cond.get("reason") == SCHEDULING_GATED:
            reason = SCHEDULING_GATED

    restarts = _Restarts()
    sidecar_restarts = _Restarts()
    init_statuses = as_list(status.get("initContainerStatuses"))
    n_init = len(as_list(spec.get("initContainers")))
    initializing = False
    for i, raw in enumerate(init_statuses):
        cs = as_dict(raw)
        restarts.add(cs)
        sidecar = _restartable(init_specs.get(as_str(cs.get("name"))))
        if sidecar:
            sidecar_restarts.add(cs)
        term = get(cs, "state", "terminated")
        waiting_reason = as_str(get(cs, "state", "waiting", "reason"))
        if term is not None and as_int(as_dict(term).get("exitCode")) == 0:
            continue
        if sidecar and cs.get("started") is True:
            if cs.get("ready") is True:
                ready += 1
            continue
        if term is not None:
            reason = _terminated_reason(as_dict(term), "Init:")
        elif waiting_reason and waiting_reason != "PodInitializing":
            reason = "Init:" + waiting_reason
        else:
            reason = f"Init:{i}/{n_init}"
        initializing = True
        break

    if not initializing or _has_condition(pod, "Initialized"):
        # Only sidecar restarts count alongside the app containers once init is done.
        restarts = sidecar_restarts
        has_running = False
        for raw in reversed(as_list(status.get("containerStatuses"))):
            cs = as_dict(raw)
            restarts.add(cs)
            waiting_reason = as_str(get(cs, "state", "waiting", "reason"))
            term = get(cs, "state", "terminated")
            if get(cs, "state", "waiting") is not None and waiting_reason:
                reason = waiting_reason
            elif term is not None:
                reason = _terminated_reason(as_dict(term), "")
            elif cs.get("ready") is True and get(cs, "state", "running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _pod_ready(pod) else "NotReady"

    deleting = get(pod, "metadata", "deletionTimestamp") is not None
    if deleting and as_str(status.get("reason")) == NODE_UNREACHABLE_REASON:
        reason = "Unknown"
    elif deleting and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"

    restarts_cell = str(restarts.count)
    if restarts.count != 0 and restarts.last is not None:
        restarts_cell = f"{restarts.count} ({since(restarts.last, now)} ago)"
    return f"{ready}/{total}", reason, restarts_cell


def _readiness_gates(pod: dict[str, Any]) -> str:
    gates = as_list(get(pod, "spec", "readinessGates"))
    if not gates:
        return NONE
    conditions = [as_dict(c) for c in as_list(get(pod, "status", "conditions"))]
    true = 0
    for gate in gates:
        ctype = as_dict(gate).get("conditionType")
        for cond in conditions:
            if cond.get("type") == ctype:
                if cond.get("status") == "True":
                    true += 1
                break
    return f"{true}/{len(gates)}"


def _cells(pod: dict[str, Any], now: datetime) -> list[Any]:
    ready, reason, restarts = pod_status(pod, now)
    # The printer reads only podIPs; status.podIP is its mirror and covers objects
    # written without the plural field.
    ip = as_str(get(pod, "status", "podIPs", 0, "ip")) or as_str(get(pod, "status", "podIP"))
    node = as_str(get(pod, "spec", "nodeName"))
    nominated = as_str(get(pod, "status", "nominatedNodeName"))
    return [name_of(pod), ready, reason, restarts, age(pod, now),
            ip or NONE, node or NONE, nominated or NONE, _readiness_gates(pod)]


def _conditions(pod: dict[str, Any]) -> list[dict[str, Any]]:
    # Row conditions let clients tell finished pods apart without the object.
    phase = get(pod, "status", "phase")
    if phase == "Succeeded":
        return [{"type": "Completed", "status": "True", "reason": "Succeeded",
                 "message": "The pod has completed successfully."}]
    if phase == "Failed":
        return [{"type": "Completed", "status": "True", "reason": "Failed",
                 "message": "The pod failed."}]
    return []


PRINTERS = {"Pod": Printer(COLUMNS, _cells, _conditions)}
