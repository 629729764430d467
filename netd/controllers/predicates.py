"""Node fitness of a pod, as kube-scheduler's filter plugins decide it. Pure.

Each filter returns None (fits) or the reasons a node was rejected, worded exactly as
kube-scheduler words them, because FitError histograms those strings into the
`0/3 nodes are available: ...` message users read in `kubectl describe pod`.
The DaemonSet controller asks the same questions (node affinity, taints), so the
functions take plain objects and no scheduler state.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from functools import lru_cache
from typing import Any, Iterable

from netd.api.quantity import parse_quantity

Obj = dict[str, Any]

# Filter reasons (pkg/scheduler/framework/plugins/*).
ERR_UNSCHEDULABLE = "node(s) were unschedulable"
ERR_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
ERR_PORTS = "node(s) didn't have free ports for the requested pod ports"
ERR_NODE_NAME = "node(s) didn't match the requested node name"
ERR_TOO_MANY_PODS = "Too many pods"

# Taints the node lifecycle controller keeps on nodes (netd has no such controller:
# the scheduler derives them from the node's state so messages read the same).
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"

# Requests assumed for containers that set none, for scoring only
# (pkg/scheduler/util: DefaultMilliCPURequest, DefaultMemoryRequest).
DEFAULT_MILLI_CPU = 100
DEFAULT_MEMORY = 200 * 1024 * 1024


@lru_cache(maxsize=4096)
def _qty(value: str) -> Decimal:
    try:
        return parse_quantity(value)
    except ValueError:
        return Decimal(0)


def quantity(value: Any) -> Decimal:
    if value is None:
        return Decimal(0)
    return _qty(str(value))


def resource_amount(name: str, value: Any) -> int:
    """cpu in millicores, everything else in units (bytes for memory), rounded up."""
    q = quantity(value)
    if name == "cpu":
        q = q * 1000
    return int(q.to_integral_value(rounding=ROUND_CEILING))


# ---- pod requests -----------------------------------------------------------------

def pod_requests(pod: Obj) -> dict[str, int]:
    """max(sum of app containers (+ sidecars), each init container) + overhead —
    resourcehelper.PodRequests. Limits stand in for missing requests, as defaulting
    does for containers that set only limits."""
    spec = pod.get("spec") or {}
    total: dict[str, int] = {}
    for c in spec.get("containers") or []:
        _add(total, _container_requests(c))
    sidecars: dict[str, int] = {}
    init_max: dict[str, int] = {}
    for c in spec.get("initContainers") or []:
        req = _container_requests(c)
        if c.get("restartPolicy") == "Always":
            # A sidecar runs beside every later init container and the app containers.
            _add(sidecars, req)
            _add(total, req)
            continue
        step = dict(req)
        _add(step, sidecars)
        for k, v in step.items():
            init_max[k] = max(init_max.get(k, 0), v)
    for k, v in init_max.items():
        total[k] = max(total.get(k, 0), v)
    for k, v in (spec.get("overhead") or {}).items():
        total[k] = total.get(k, 0) + resource_amount(k, v)
    return total


def _container_requests(c: Obj) -> dict[str, int]:
    res = c.get("resources") or {}
    merged = dict(res.get("limits") or {})
    merged.update(res.get("requests") or {})
    return {k: resource_amount(k, v) for k, v in merged.items()}


def _add(into: dict[str, int], more: dict[str, int]) -> None:
    for k, v in more.items():
        into[k] = into.get(k, 0) + v


def score_requests(pod: Obj) -> tuple[int, int]:
    """(milli-cpu, memory) for scoring: zero requests count as the defaults."""
    cpu = mem = 0
    for c in (pod.get("spec") or {}).get("containers") or []:
        req = _container_requests(c)
        cpu += req.get("cpu") or DEFAULT_MILLI_CPU
        mem += req.get("memory") or DEFAULT_MEMORY
    return cpu, mem


def host_ports(pod: Obj) -> list[tuple[str, str, int]]:
    out = []
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("hostPort"):
                out.append((p.get("hostIP") or "0.0.0.0", p.get("protocol") or "TCP",
                            int(p["hostPort"])))
    return out


# ---- node affinity / selector ------------------------------------------------------

def _match_expression(expr: Obj, labels: dict[str, str]) -> bool:
    key = expr.get("key") or ""
    op = expr.get("operator")
    values = [str(v) for v in expr.get("values") or []]
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    if op in ("Gt", "Lt"):
        if key not in labels or len(values) != 1:
            return False
        try:
            have, want = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False


def match_node_selector_term(term: Obj, node: Obj) -> bool:
    """A term with neither expressions nor fields matches nothing (nodeaffinity)."""
    exprs = term.get("matchExpressions") or []
    fields_ = term.get("matchFields") or []
    if not exprs and not fields_:
        return False
    meta = node.get("metadata") or {}
    labels = meta.get("labels") or {}
    if not all(_match_expression(e, labels) for e in exprs):
        return False
    # matchFields supports only metadata.name (the field a DaemonSet pins nodes by).
    for f in fields_:
        if f.get("key") != "metadata.name":
            return False
        if not _match_expression(f, {"metadata.name": meta.get("name", "")}):
            return False
    return True


def match_node_selector_terms(terms: Iterable[Obj], node: Obj) -> bool:
    return any(match_node_selector_term(t, node) for t in terms)


def matches_node_affinity(pod: Obj, node: Obj) -> bool:
    """spec.nodeSelector AND required node affinity (RequiredNodeAffinity.Match)."""
    spec = pod.get("spec") or {}
    labels = (node.get("metadata") or {}).get("labels") or {}
    for k, v in (spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if required is None:
        return True
    return match_node_selector_terms(required.get("nodeSelectorTerms") or [], node)


def preferred_affinity_score(pod: Obj, node: Obj) -> int:
    prefs = (((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {}) \
        .get("preferredDuringSchedulingIgnoredDuringExecution") or []
    return sum(int(p.get("weight") or 0) for p in prefs
               if match_node_selector_term(p.get("preference") or {}, node))


# ---- taints and tolerations ---------------------------------------------------------

def tolerates(toleration: Obj, taint: Obj) -> bool:
    """v1helper.Toleration.ToleratesTaint."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    op = toleration.get("operator") or "Equal"
    if op == "Exists":
        return True
    if op == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def tolerated(tolerations: list[Obj], taint: Obj) -> bool:
    return any(tolerates(t, taint) for t in tolerations)


def node_taints(node: Obj) -> list[Obj]:
    """spec.taints plus the taints a node lifecycle controller would have added."""
    taints = list((node.get("spec") or {}).get("taints") or [])
    keys = {(t.get("key"), t.get("effect")) for t in taints}

    def add(key: str, effect: str) -> None:
        if (key, effect) not in keys:
            taints.append({"key": key, "effect": effect})
            keys.add((key, effect))

    if (node.get("spec") or {}).get("unschedulable"):
        add(TAINT_UNSCHEDULABLE, "NoSchedule")
    ready = node_ready_status(node)
    if ready == "Unknown":
        add(TAINT_UNREACHABLE, "NoSchedule")
    elif ready != "True":
        add(TAINT_NOT_READY, "NoSchedule")
    return taints


def node_ready_status(node: Obj) -> str:
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return str(c.get("status") or "Unknown")
    return "False"


def untolerated_taint(pod: Obj, node: Obj,
                      effects: tuple[str, ...] = ("NoSchedule", "NoExecute")) -> Obj | None:
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    for taint in node_taints(node):
        if taint.get("effect") in effects and not tolerated(tolerations, taint):
            return taint
    return None


def taint_message(taint: Obj) -> str:
    return f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value', '')}}}"


def intolerable_prefer_no_schedule(pod: Obj, node: Obj) -> int:
    tolerations = [t for t in (pod.get("spec") or {}).get("tolerations") or []
                   if not t.get("effect") or t.get("effect") == "PreferNoSchedule"]
    return sum(1 for taint in (node.get("spec") or {}).get("taints") or []
               if taint.get("effect") == "PreferNoSchedule"
               and not tolerated(tolerations, taint))


# ---- the node's current load ---------------------------------------------------------

@dataclass
class NodeUsage:
    """What the pods already on a node take (the scheduler cache's NodeInfo)."""
    requested: dict[str, int] = field(default_factory=dict)
    score_cpu: int = 0
    score_memory: int = 0
    pods: int = 0
    owners: dict[str, int] = field(default_factory=dict)   # controller uid -> pods
    ports: list[tuple[str, str, int]] = field(default_factory=list)


def allocatable(node: Obj) -> dict[str, int]:
    status = node.get("status") or {}
    alloc = status.get("allocatable") or status.get("capacity") or {}
    return {k: resource_amount(k, v) for k, v in alloc.items()}


def _ports_conflict(want: list[tuple[str, str, int]], used: list[tuple[str, str, int]]) -> bool:
    for ip, proto, port in want:
        for uip, uproto, uport in used:
            if port == uport and proto == uproto and \
                    (ip == uip or "0.0.0.0" in (ip, uip)):
                return True
    return False


def fit_reasons(pod: Obj, node: Obj, usage: NodeUsage,
                requests: dict[str, int] | None = None) -> list[str]:
    """Why `pod` cannot go to `node` ([] = it fits), in kube-scheduler's filter
    order; like the framework, the first failing plugin decides (the resource fit
    plugin reports every insufficient resource)."""
    spec = pod.get("spec") or {}
    tolerations = spec.get("tolerations") or []
    if (node.get("spec") or {}).get("unschedulable") and not tolerated(
            tolerations, {"key": TAINT_UNSCHEDULABLE, "effect": "NoSchedule"}):
        return [ERR_UNSCHEDULABLE]
    wanted = spec.get("nodeName")
    if wanted and wanted != (node.get("metadata") or {}).get("name"):
        return [ERR_NODE_NAME]
    taint = untolerated_taint(pod, node)
    if taint is not None:
        return [taint_message(taint)]
    if not matches_node_affinity(pod, node):
        return [ERR_AFFINITY]
    ports = host_ports(pod)
    if ports and _ports_conflict(ports, usage.ports):
        return [ERR_PORTS]
    return resource_reasons(pod, node, usage, requests)


def resource_reasons(pod: Obj, node: Obj, usage: NodeUsage,
                     requests: dict[str, int] | None = None) -> list[str]:
    alloc = allocatable(node)
    reasons = []
    if usage.pods + 1 > alloc.get("pods", 0):
        reasons.append(ERR_TOO_MANY_PODS)
    req = pod_requests(pod) if requests is None else requests
    for name in sorted(req, key=lambda n: (n not in ("cpu", "memory"), n)):
        amount = req[name]
        if amount <= 0:
            continue
        if amount > alloc.get(name, 0) - usage.requested.get(name, 0):
            reasons.append(f"Insufficient {name}")
    return reasons


def least_requested_score(node: Obj, usage: NodeUsage, cpu: int, mem: int) -> float:
    """NodeResourcesFit LeastAllocated over cpu and memory, 0..100."""
    alloc = allocatable(node)
    scores = []
    for cap, used in ((alloc.get("cpu", 0), usage.score_cpu + cpu),
                      (alloc.get("memory", 0), usage.score_memory + mem)):
        scores.append(0.0 if cap <= 0 or used > cap else (cap - used) * 100.0 / cap)
    return sum(scores) / len(scores)
