"""The pure facts of StatefulSet pods and claims (k8s.io/kubernetes pkg/controller/
statefulset/stateful_set_utils.go): stable names and ordinals, identity labels,
hostname/subdomain, volumeClaimTemplates → PVCs, the PVC retention policy's owner
references, pod health predicates and the status counts.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from netd.controllers.controllerhistory import POD_REVISION_LABEL
from netd.controllers.podutil import is_pod_available, is_pod_ready, pod_from_template

Obj = dict[str, Any]

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
RETAIN = "Retain"
DELETE = "Delete"

_ORDINAL = re.compile(r"^(.*)-([0-9]+)$")


# ---- names and ordinals -------------------------------------------------------------

def parent_and_ordinal(name: str) -> tuple[str, int]:
    """getParentNameAndOrdinal: ("", -1) when the name has no trailing ordinal."""
    m = _ORDINAL.match(name)
    if not m:
        return "", -1
    try:
        return m.group(1), int(m.group(2))
    except ValueError:
        return "", -1


def ordinal_of(pod: Obj) -> int:
    return parent_and_ordinal(pod["metadata"].get("name") or "")[1]


def pod_name(sts: Obj, ordinal: int) -> str:
    return f"{sts['metadata']['name']}-{ordinal}"


def start_ordinal(sts: Obj) -> int:
    ordinals = (sts.get("spec") or {}).get("ordinals") or {}
    return int(ordinals.get("start") or 0)


def replicas_of(sts: Obj) -> int:
    r = (sts.get("spec") or {}).get("replicas")
    return 1 if r is None else int(r)


def end_ordinal(sts: Obj) -> int:
    """The last ordinal in range (inclusive); start - 1 when replicas is 0."""
    return start_ordinal(sts) + replicas_of(sts) - 1


def in_ordinal_range(pod: Obj, sts: Obj) -> bool:
    o = ordinal_of(pod)
    return start_ordinal(sts) <= o <= end_ordinal(sts)


def is_member_of(sts: Obj, pod: Obj) -> bool:
    parent, ordinal = parent_and_ordinal(pod["metadata"].get("name") or "")
    return ordinal >= 0 and parent == sts["metadata"]["name"]


def pod_revision(pod: Obj) -> str:
    return ((pod.get("metadata") or {}).get("labels") or {}).get(POD_REVISION_LABEL, "")


# ---- claims --------------------------------------------------------------------------

def claim_name(sts: Obj, template_name: str, ordinal: int) -> str:
    return f"{template_name}-{sts['metadata']['name']}-{ordinal}"


def claims_for(sts: Obj, ordinal: int) -> dict[str, Obj]:
    """getPersistentVolumeClaims: template name → the PVC to create, labelled with the
    set's selector matchLabels (how upstream ties claims back to the set)."""
    spec = sts.get("spec") or {}
    match_labels = (spec.get("selector") or {}).get("matchLabels") or {}
    out: dict[str, Obj] = {}
    for template in spec.get("volumeClaimTemplates") or []:
        tmeta = template.get("metadata") or {}
        tname = tmeta.get("name") or ""
        meta: Obj = {k: v for k, v in tmeta.items()
                     if k in ("labels", "annotations", "finalizers")}
        meta["labels"] = dict(meta.get("labels") or {}) | dict(match_labels)
        meta["name"] = claim_name(sts, tname, ordinal)
        meta["namespace"] = sts["metadata"]["namespace"]
        claim: Obj = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta,
                      "spec": dict(template.get("spec") or {})}
        out[tname] = claim
    return out


def _has_ref(obj: Obj, owner: Obj) -> bool:
    uid = owner["metadata"].get("uid")
    return any(r.get("uid") == uid for r in obj["metadata"].get("ownerReferences") or [])


def has_stale_owner_ref(claim: Obj, pod: Obj) -> bool:
    """A reference to a pod of this name but another uid (or to a pod not yet created)."""
    uid = pod["metadata"].get("uid")
    name = pod["metadata"].get("name")
    return any(r.get("kind") == "Pod" and r.get("name") == name and r.get("uid") != uid
               for r in claim["metadata"].get("ownerReferences") or [])


def retention_policy(sts: Obj) -> tuple[str, str]:
    p = (sts.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
    return p.get("whenDeleted") or RETAIN, p.get("whenScaled") or RETAIN


def claim_owner_matches(claim: Obj, sts: Obj, pod: Obj) -> bool:
    """claimOwnerMatchesSetAndPod: whenDeleted=Delete → a reference to the set (the
    garbage collector deletes the claim with the set); whenScaled=Delete → a reference
    to the pod once it is scaled down (deleted with the pod); Retain → neither."""
    when_deleted, when_scaled = retention_policy(sts)
    scaled_down = not in_ordinal_range(pod, sts)
    want_set = when_deleted == DELETE and not (when_scaled == DELETE and scaled_down)
    want_pod = when_scaled == DELETE and scaled_down
    return _has_ref(claim, sts) == want_set and _has_ref(claim, pod) == want_pod


def _ref(owner: Obj) -> Obj:
    meta = owner["metadata"]
    return {"apiVersion": owner.get("apiVersion") or "v1", "kind": owner.get("kind") or "",
            "name": meta["name"], "uid": meta["uid"]}


def claim_refs_for_policy(claim: Obj, sts: Obj, pod: Obj) -> list[Obj]:
    """updateClaimOwnerRefForSetAndPod: the claim's ownerReferences after applying the
    policy (references to other owners are kept)."""
    when_deleted, when_scaled = retention_policy(sts)
    scaled_down = not in_ordinal_range(pod, sts)
    want_set = when_deleted == DELETE and not (when_scaled == DELETE and scaled_down)
    want_pod = when_scaled == DELETE and scaled_down
    sts_uid, pod_uid = sts["metadata"].get("uid"), pod["metadata"].get("uid")
    refs = [r for r in claim["metadata"].get("ownerReferences") or []
            if r.get("uid") not in (sts_uid, pod_uid)]
    if want_set:
        refs.append(_ref(sts))
    if want_pod and pod_uid:
        refs.append(_ref(pod))
    return refs


# ---- pods ----------------------------------------------------------------------------

def new_pod(sts: Obj, ordinal: int, revision: str) -> Obj:
    """newStatefulSetPod + setPodRevision: the template's pod, named `<set>-<ordinal>`,
    hostname = its name and subdomain = serviceName (what gives it the DNS name
    `<pod>.<service>`), identity labels, and the claims mounted as volumes."""
    template = (sts.get("spec") or {}).get("template") or {}
    name = pod_name(sts, ordinal)
    pod = pod_from_template(template, sts, name=name)
    update_identity(sts, pod, ordinal)
    spec = pod["spec"]
    spec["hostname"] = name
    service = (sts.get("spec") or {}).get("serviceName")
    if service:
        spec["subdomain"] = service
    update_storage(sts, pod, ordinal)
    if revision:
        pod["metadata"]["labels"][POD_REVISION_LABEL] = revision
    return pod


def update_identity(sts: Obj, pod: Obj, ordinal: int) -> None:
    meta = pod["metadata"]
    meta["namespace"] = sts["metadata"]["namespace"]
    labels = meta.setdefault("labels", {})
    labels[POD_NAME_LABEL] = meta["name"]
    labels[POD_INDEX_LABEL] = str(ordinal)


def update_storage(sts: Obj, pod: Obj, ordinal: int) -> None:
    """Claim volumes replace template volumes of the same name (upstream's rule)."""
    claims = claims_for(sts, ordinal)
    volumes = [{"name": tname, "persistentVolumeClaim": {"claimName": c["metadata"]["name"]}}
               for tname, c in claims.items()]
    for v in pod["spec"].get("volumes") or []:
        if v.get("name") not in claims:
            volumes.append(v)
    if volumes:
        pod["spec"]["volumes"] = volumes


def identity_matches(sts: Obj, pod: Obj) -> bool:
    parent, ordinal = parent_and_ordinal(pod["metadata"].get("name") or "")
    labels = pod["metadata"].get("labels") or {}
    return (ordinal >= 0 and parent == sts["metadata"]["name"]
            and pod["metadata"].get("namespace") == sts["metadata"]["namespace"]
            and labels.get(POD_NAME_LABEL) == pod["metadata"]["name"]
            and labels.get(POD_INDEX_LABEL) == str(ordinal))


def storage_matches(sts: Obj, pod: Obj) -> bool:
    ordinal = ordinal_of(pod)
    if ordinal < 0:
        return False
    volumes = {v.get("name"): v for v in pod["spec"].get("volumes") or []}
    for tname, claim in claims_for(sts, ordinal).items():
        v = volumes.get(tname)
        if v is None or (v.get("persistentVolumeClaim") or {}).get("claimName") != \
                claim["metadata"]["name"]:
            return False
    return True


def phase(pod: Obj) -> str:
    return (pod.get("status") or {}).get("phase") or ""


def is_created(pod: Obj) -> bool:
    return phase(pod) != ""


def is_terminating(pod: Obj) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def is_finished(pod: Obj) -> bool:
    return phase(pod) in ("Failed", "Succeeded")


def is_running_and_ready(pod: Obj) -> bool:
    return phase(pod) == "Running" and is_pod_ready(pod)


def is_running_and_available(pod: Obj, min_ready: int, now: datetime) -> bool:
    return phase(pod) == "Running" and is_pod_available(pod, min_ready, now)


def is_healthy(pod: Obj) -> bool:
    return is_running_and_ready(pod) and not is_terminating(pod)


def replica_status(pods: list[Obj], min_ready: int, now: datetime, current: str,
                   update: str) -> dict[str, int]:
    """computeReplicaStatus over the pods the set has (not yet created ones have no
    phase and count nowhere)."""
    out = {"replicas": 0, "readyReplicas": 0, "availableReplicas": 0,
           "currentReplicas": 0, "updatedReplicas": 0}
    for pod in pods:
        if is_created(pod):
            out["replicas"] += 1
        if is_running_and_ready(pod):
            out["readyReplicas"] += 1
            if is_running_and_available(pod, min_ready, now):
                out["availableReplicas"] += 1
        if is_created(pod) and not is_terminating(pod):
            rev = pod_revision(pod)
            if rev == current:
                out["currentReplicas"] += 1
            if rev == update:
                out["updatedReplicas"] += 1
    return out
