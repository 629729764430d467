"""Pure parts of the ReplicaSet / ReplicationController controller: which pods to
delete first, and the status a set of pods adds up to (the facts of
k8s.io/kubernetes pkg/controller/controller_utils.go ActivePodsWithRanks and
pkg/controller/replicaset/replica_set_utils.go calculateStatus)."""
from __future__ import annotations

import functools
import math
from datetime import datetime, timedelta
from typing import Any

from netd.api.selectors import selector_from_set
from netd.controllers.podutil import condition, is_pod_active, is_pod_available, \
    is_pod_ready, parse_time

Obj = dict[str, Any]

REPLICA_FAILURE = "ReplicaFailure"
# The PodDeletionCost annotation (beta, on by default since 1.22).
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
_PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}


def ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _ready_time(pod: Obj) -> datetime | None:
    c = condition(pod, "Ready")
    if c is None or c.get("status") != "True":
        return None
    return parse_time(c.get("lastTransitionTime"))


def _deletion_cost(pod: Obj) -> int:
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(DELETION_COST)
    try:
        return int(raw) if raw is not None else 0
    except ValueError:
        return 0  # upstream treats an unparsable cost as the default


def _max_restarts(pod: Obj) -> tuple[int, int]:
    """(regular containers, restartable init containers a.k.a. sidecars)."""
    status = pod.get("status") or {}
    regular = max((int(c.get("restartCount") or 0)
                   for c in status.get("containerStatuses") or []), default=0)
    sidecar_names = {c.get("name") for c in (pod.get("spec") or {}).get("initContainers") or []
                     if c.get("restartPolicy") == "Always"}
    sidecar = max((int(c.get("restartCount") or 0)
                   for c in status.get("initContainerStatuses") or []
                   if c.get("name") in sidecar_names), default=0)
    return regular, sidecar


def _log_rank(t: datetime, now: datetime) -> int:
    """LogarithmicScaleDown (on since 1.22): pods whose times differ by less than a
    power of two (in nanoseconds since `now`) count as equally old, so scale-down
    picks among them by UID, spreading deletions instead of always the newest."""
    delta = (now - t) / timedelta(microseconds=1) * 1000
    return int(math.log2(delta)) if delta > 0 else -1


def _time_less(a: datetime | None, b: datetime | None, ua: str, ub: str,
               now: datetime | None) -> bool | None:
    """afterOrZero with logarithmic buckets: None when the times compare equal."""
    if a == b:
        return None
    if now is None or a is None or b is None:
        if a is None or b is None:
            return a is None  # empty time is "newest"
        return a > b
    diff = _log_rank(a, now) - _log_rank(b, now)
    if diff == 0:
        return ua < ub
    return diff < 0


def _less(a: Obj, b: Obj, rank_a: int, rank_b: int, now: datetime | None) -> bool | None:
    """True when `a` should be deleted before `b`; None when they tie."""
    node_a = (a.get("spec") or {}).get("nodeName") or ""
    node_b = (b.get("spec") or {}).get("nodeName") or ""
    if node_a != node_b and (not node_a or not node_b):
        return not node_a
    pa = _PHASE_ORDINAL.get((a.get("status") or {}).get("phase") or "", 0)
    pb = _PHASE_ORDINAL.get((b.get("status") or {}).get("phase") or "", 0)
    if pa != pb:
        return pa < pb
    ra, rb = is_pod_ready(a), is_pod_ready(b)
    if ra != rb:
        return not ra
    ca, cb = _deletion_cost(a), _deletion_cost(b)
    if ca != cb:
        return ca < cb
    if rank_a != rank_b:
        return rank_a > rank_b  # more siblings on the same node: delete first
    uid_a = (a.get("metadata") or {}).get("uid") or ""
    uid_b = (b.get("metadata") or {}).get("uid") or ""
    if ra and rb:
        res = _time_less(_ready_time(a), _ready_time(b), uid_a, uid_b, now)
        if res is not None:
            return res
    (ra_reg, ra_side), (rb_reg, rb_side) = _max_restarts(a), _max_restarts(b)
    if ra_reg != rb_reg:
        return ra_reg > rb_reg
    if ra_side != rb_side:
        return ra_side > rb_side
    created_a = parse_time((a.get("metadata") or {}).get("creationTimestamp"))
    created_b = parse_time((b.get("metadata") or {}).get("creationTimestamp"))
    return _time_less(created_a, created_b, uid_a, uid_b, now)


def rank_pods(pods: list[Obj], related: list[Obj]) -> list[int]:
    """For each pod, how many active related pods (its siblings under the same
    Deployment, itself included) share its node."""
    on_node: dict[str, int] = {}
    for p in related:
        if is_pod_active(p):
            node = (p.get("spec") or {}).get("nodeName") or ""
            on_node[node] = on_node.get(node, 0) + 1
    return [on_node.get((p.get("spec") or {}).get("nodeName") or "", 0) for p in pods]


def sort_for_deletion(pods: list[Obj], related: list[Obj] | None = None,
                      now: datetime | None = None) -> list[Obj]:
    """`pods` ordered cheapest-to-delete first (ActivePodsWithRanks)."""
    ranks = rank_pods(pods, related if related is not None else pods)
    indexed = list(zip(pods, ranks))

    def cmp(x: tuple[Obj, int], y: tuple[Obj, int]) -> int:
        if _less(x[0], y[0], x[1], y[1], now):
            return -1
        if _less(y[0], x[0], y[1], x[1], now):
            return 1
        return 0

    indexed.sort(key=functools.cmp_to_key(cmp))
    return [p for p, _ in indexed]


def pods_to_delete(pods: list[Obj], related: list[Obj], diff: int,
                   now: datetime | None = None) -> list[Obj]:
    if diff < len(pods):
        pods = sort_for_deletion(pods, related, now)
    return pods[:diff]


def calculate_status(owner: Obj, pods: list[Obj], manage_error: Exception | None,
                     now: datetime) -> Obj:
    """The new .status of a ReplicaSet/ReplicationController over its claimed active
    pods. Zero counts are omitted as Go's omitempty does (except `replicas`)."""
    spec = owner.get("spec") or {}
    old = owner.get("status") or {}
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels")
    template_sel = selector_from_set(template_labels)
    min_ready = int(spec.get("minReadySeconds") or 0)
    fully = ready = available = 0
    for pod in pods:
        if template_sel.matches((pod.get("metadata") or {}).get("labels")):
            fully += 1
        if is_pod_ready(pod):
            ready += 1
            if is_pod_available(pod, min_ready, now):
                available += 1
    conditions = [dict(c) for c in old.get("conditions") or []]
    failure = next((c for c in conditions if c.get("type") == REPLICA_FAILURE), None)
    if manage_error is not None and failure is None:
        diff = len(pods) - int(spec.get("replicas", 1))
        reason = "FailedCreate" if diff < 0 else "FailedDelete" if diff > 0 else ""
        conditions.append({"type": REPLICA_FAILURE, "status": "True",
                           "lastTransitionTime": ts(now), "reason": reason,
                           "message": _error_text(manage_error)})
    elif manage_error is None and failure is not None:
        conditions = [c for c in conditions if c.get("type") != REPLICA_FAILURE]
    status: Obj = {"replicas": len(pods)}
    for name, value in (("fullyLabeledReplicas", fully), ("readyReplicas", ready),
                        ("availableReplicas", available),
                        ("observedGeneration", int((owner.get("metadata") or {})
                                                   .get("generation") or 0))):
        if value:
            status[name] = value
    if conditions:
        status["conditions"] = conditions
    return status


def _error_text(err: Exception) -> str:
    return str(getattr(err, "message", None) or err)


def next_availability_check(pods: list[Obj], min_ready: int, now: datetime) -> float | None:
    """Seconds until the first ready-but-not-yet-available pod becomes available
    (minReadySeconds), so the controller looks again exactly then."""
    if min_ready <= 0:
        return None
    soonest: float | None = None
    for pod in pods:
        since = _ready_time(pod)
        if since is None:
            continue
        left = (since + timedelta(seconds=min_ready) - now).total_seconds()
        if left > 0 and (soonest is None or left < soonest):
            soonest = left
    return soonest
