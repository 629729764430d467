"""Which nodes a DaemonSet runs on, and the pods it puts there — pure
(k8s.io/kubernetes pkg/controller/daemon/util, NodeShouldRunDaemonPod, the scheduler's
node-affinity and taint-toleration predicates, v1helper.ToleratesTaint).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from netd.controllers.controllerhistory import POD_REVISION_LABEL
from netd.controllers.podutil import is_pod_available, pod_from_template

Obj = dict[str, Any]

# Tolerations the DaemonSet controller adds to every daemon pod
# (util.AddOrUpdateDaemonPodTolerations): daemons keep running on nodes that are not
# ready, unreachable, under pressure or cordoned.
DAEMON_TOLERATIONS: tuple[Obj, ...] = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists",
     "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
)
# Only for hostNetwork daemons: they do not need the pod network to be up.
NETWORK_UNAVAILABLE: Obj = {"key": "node.kubernetes.io/network-unavailable",
                            "operator": "Exists", "effect": "NoSchedule"}
TEMPLATE_GENERATION_LABEL = "pod-template-generation"
TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"
NAME_FIELD = "metadata.name"


def add_daemon_tolerations(spec: Obj) -> None:
    """AddOrUpdateDaemonPodTolerations: add (or replace by key+effect) the defaults."""
    wanted = list(DAEMON_TOLERATIONS)
    if spec.get("hostNetwork"):
        wanted.append(NETWORK_UNAVAILABLE)
    tolerations = [t for t in spec.get("tolerations") or [] if isinstance(t, dict)]
    for add in wanted:
        tolerations = [t for t in tolerations
                       if not (t.get("key") == add["key"] and t.get("effect") == add["effect"])]
        tolerations.append(dict(add))
    spec["tolerations"] = tolerations


def tolerates(toleration: Obj, taint: Obj) -> bool:
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    if toleration.get("key") and toleration["key"] != taint.get("key"):
        return False
    op = toleration.get("operator") or "Equal"
    if op == "Exists":
        return True
    if op == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def untolerated_taints(taints: list[Obj], tolerations: list[Obj],
                       effects: tuple[str, ...]) -> list[Obj]:
    return [t for t in taints if t.get("effect") in effects
            and not any(tolerates(tol, t) for tol in tolerations)]


def _requirement_matches(req: Obj, values: dict[str, str]) -> bool:
    key, op = req.get("key") or "", req.get("operator") or ""
    wanted = [str(v) for v in req.get("values") or []]
    have = values.get(key)
    if op == "In":
        return have is not None and have in wanted
    if op == "NotIn":
        return have is None or have not in wanted
    if op == "Exists":
        return have is not None
    if op == "DoesNotExist":
        return have is None
    if op in ("Gt", "Lt") and have is not None and len(wanted) == 1:
        try:
            a, b = int(have), int(wanted[0])
        except ValueError:
            return False
        return a > b if op == "Gt" else a < b
    return False


def term_matches(term: Obj, node: Obj) -> bool:
    """A NodeSelectorTerm: all its label expressions and field requirements (only
    metadata.name is a node field); an empty term matches nothing."""
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not exprs and not fields:
        return False
    labels = node["metadata"].get("labels") or {}
    node_fields = {NAME_FIELD: node["metadata"].get("name") or ""}
    return all(_requirement_matches(e, labels) for e in exprs) and \
        all(_requirement_matches(f, node_fields) for f in fields)


def required_affinity_matches(spec: Obj, node: Obj) -> bool:
    """nodeaffinity.GetRequiredNodeAffinity(pod).Match: nodeSelector AND any term."""
    labels = node["metadata"].get("labels") or {}
    for k, v in (spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if required is None:
        return True
    return any(term_matches(t, node) for t in required.get("nodeSelectorTerms") or [])


def should_run(node: Obj, ds: Obj) -> tuple[bool, bool]:
    """NodeShouldRunDaemonPod: (should run a new pod, may keep an existing one)."""
    template_spec = dict(((ds.get("spec") or {}).get("template") or {}).get("spec") or {})
    name = node["metadata"]["name"]
    if template_spec.get("nodeName") not in (None, "", name):
        return False, False
    add_daemon_tolerations(template_spec)
    if not required_affinity_matches(template_spec, node):
        return False, False
    taints = (node.get("spec") or {}).get("taints") or []
    tolerations = template_spec.get("tolerations") or []
    if untolerated_taints(taints, tolerations, ("NoSchedule", "NoExecute")):
        # Running daemons stay unless a NoExecute taint would evict them anyway.
        return False, not untolerated_taints(taints, tolerations, ("NoExecute",))
    return True, True


def target_node(pod: Obj) -> str:
    """util.GetTargetNodeName: the bound node, or the one the affinity pins."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution")) or {}
    for term in required.get("nodeSelectorTerms") or []:
        for f in term.get("matchFields") or []:
            if f.get("key") == NAME_FIELD and f.get("operator") == "In" and \
                    len(f.get("values") or []) == 1:
                return str(f["values"][0])
    return ""


def pin_to_node(spec: Obj, node_name: str) -> None:
    """ReplaceDaemonSetPodNodeNameNodeAffinity: the required node affinity becomes one
    term `metadata.name In [node]` (the scheduler binds it; since 1.12 the controller
    no longer sets nodeName itself); preferred terms and pod affinities are kept."""
    term = {"matchFields": [{"key": NAME_FIELD, "operator": "In", "values": [node_name]}]}
    affinity = spec["affinity"] = spec.get("affinity") or {}
    node_affinity = affinity["nodeAffinity"] = affinity.get("nodeAffinity") or {}
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {
        "nodeSelectorTerms": [term]}


def template_generation(ds: Obj) -> str | None:
    value = (ds["metadata"].get("annotations") or {}).get(TEMPLATE_GENERATION_ANNOTATION)
    return str(value) if value else None


def new_daemon_pod(ds: Obj, node_name: str, hash_: str) -> Obj:
    """util.CreatePodTemplate + the node pin: the pod a node gets."""
    pod = pod_from_template((ds.get("spec") or {}).get("template") or {}, ds,
                            generate_name=f"{ds['metadata']['name']}-")
    add_daemon_tolerations(pod["spec"])
    labels = pod["metadata"]["labels"]
    generation = template_generation(ds)
    if generation is not None:
        labels[TEMPLATE_GENERATION_LABEL] = generation
    if hash_:
        labels[POD_REVISION_LABEL] = hash_
    pin_to_node(pod["spec"], node_name)
    return pod


def is_updated(pod: Obj, hash_: str, generation: str | None) -> bool:
    """util.IsPodUpdated."""
    labels = pod["metadata"].get("labels") or {}
    if generation is not None and labels.get(TEMPLATE_GENERATION_LABEL) == generation:
        return True
    return bool(hash_) and labels.get(POD_REVISION_LABEL) == hash_


def oldest_first(pods: list[Obj]) -> list[Obj]:
    """podByCreationTimestampAndPhase: bound pods first, then by age."""
    return sorted(pods, key=lambda p: (not (p.get("spec") or {}).get("nodeName"),
                                       p["metadata"].get("creationTimestamp") or "",
                                       p["metadata"].get("name") or ""))


def available(pod: Obj, min_ready: int, now: datetime) -> bool:
    return is_pod_available(pod, min_ready, now)


def scaled_value(value: Any, total: int) -> int:
    """intstr.GetScaledValueFromIntOrPercent rounding up, as UnavailableCount and
    SurgeCount do."""
    if value is None:
        return 0
    if isinstance(value, str) and value.endswith("%"):
        return -(-int(value[:-1]) * total // 100)
    return int(value)
