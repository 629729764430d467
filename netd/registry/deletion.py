"""Deletion semantics of kube-apiserver's generic registry: preconditions, graceful
deletion of pods, finalizers for Orphan/Foreground propagation, namespace finalizers."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from netd.api import errors
from netd.api.kinds import ResourceType
from netd.store.base import StoredObject, copy_obj

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
POLICIES = ("Orphan", "Background", "Foreground")


@dataclass(frozen=True)
class Plan:
    # None: remove from the store now; else the object to write (deletion pending).
    updated: dict[str, Any] | None


def check_preconditions(rt: ResourceType, current: StoredObject,
                        options: dict[str, Any]) -> None:
    pre = options.get("preconditions") or {}
    meta = current.obj.get("metadata", {})
    uid = pre.get("uid")
    if uid and uid != meta.get("uid"):
        raise errors.Conflict.of(rt.plural, rt.group, current.name,
                                 f"Precondition failed: UID in precondition: {uid}, "
                                 f"UID in object meta: {meta.get('uid')}")
    rv = pre.get("resourceVersion")
    if rv and str(rv) != str(current.rv):
        raise errors.Conflict.of(rt.plural, rt.group, current.name,
                                 f"Precondition failed: ResourceVersion in precondition: {rv}, "
                                 f"ResourceVersion in object meta: {current.rv}")


def propagation(options: dict[str, Any]) -> str:
    policy = options.get("propagationPolicy")
    if policy is not None:
        if policy not in POLICIES:
            raise errors.Invalid("DeleteOptions", "", [errors.not_supported(
                "propagationPolicy", policy, list(POLICIES))])
        if options.get("orphanDependents") is not None:
            raise errors.Invalid("DeleteOptions", "", [errors.invalid(
                "propagationPolicy", policy,
                "orphanDependents and deletionPropagation cannot be both set")])
        return str(policy)
    if options.get("orphanDependents") is True:
        return "Orphan"
    # apps/v1 and core/v1 default to deleting dependents in the background.
    return "Background"


def _grace(rt: ResourceType, obj: dict[str, Any], options: dict[str, Any]) -> int:
    if rt.kind != "Pod":
        return 0
    given = options.get("gracePeriodSeconds")
    spec = obj.get("spec") or {}
    grace = int(given) if given is not None else int(spec.get("terminationGracePeriodSeconds", 30))
    # An unscheduled or finished pod has no kubelet to wait for: delete at once.
    if not spec.get("nodeName") or (obj.get("status") or {}).get("phase") in ("Succeeded",
                                                                            "Failed"):
        return 0
    return max(grace, 0)


def plan(rt: ResourceType, obj: dict[str, Any], options: dict[str, Any],
         now: datetime) -> Plan:
    policy = propagation(options)
    meta = obj.get("metadata", {})
    grace = _grace(rt, obj, options)
    finalizers = list(meta.get("finalizers") or [])
    wanted = {"Orphan": ORPHAN, "Foreground": FOREGROUND}.get(policy)
    if wanted:
        finalizers = [f for f in finalizers if f not in (ORPHAN, FOREGROUND)] + [wanted]
    elif options.get("propagationPolicy") == "Background":
        finalizers = [f for f in finalizers if f not in (ORPHAN, FOREGROUND)]
    ns_finalizers = (obj.get("spec") or {}).get("finalizers") if rt.kind == "Namespace" else None

    if meta.get("deletionTimestamp"):
        current_grace = int(meta.get("deletionGracePeriodSeconds") or 0)
        if rt.kind == "Pod" and grace == 0 and not finalizers:
            return Plan(None)  # forced deletion of a terminating pod
        updated = copy_obj(obj)
        umeta = updated["metadata"]
        if rt.kind == "Pod" and grace < current_grace:
            umeta["deletionTimestamp"] = _ts(now + timedelta(seconds=grace))
            umeta["deletionGracePeriodSeconds"] = grace
        if finalizers != list(meta.get("finalizers") or []):
            umeta["finalizers"] = finalizers
        return Plan(updated)

    if grace == 0 and not finalizers and not ns_finalizers:
        return Plan(None)
    updated = copy_obj(obj)
    umeta = updated["metadata"]
    umeta["deletionTimestamp"] = _ts(now + timedelta(seconds=grace))
    umeta["deletionGracePeriodSeconds"] = grace
    if finalizers:
        umeta["finalizers"] = finalizers
    if rt.kind == "Namespace":
        updated.setdefault("status", {})["phase"] = "Terminating"
    return Plan(updated)


def finalized(rt: ResourceType, obj: dict[str, Any]) -> bool:
    """Whether an object marked for deletion, now without metadata finalizers, may go."""
    meta = obj.get("metadata", {})
    if int(meta.get("deletionGracePeriodSeconds") or 0) > 0:
        return False  # a terminating pod goes when its kubelet confirms
    if rt.kind == "Namespace" and (obj.get("spec") or {}).get("finalizers"):
        return False
    return True


def _ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")
