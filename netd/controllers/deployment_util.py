"""Pure Deployment arithmetic (the facts of k8s.io/kubernetes
pkg/controller/deployment/util/deployment_util.go): surge/unavailability fenceposts,
ReplicaSet orderings, revision and replica annotations, proportional scaling,
conditions and status. No I/O: every function takes and returns plain dicts."""
from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any, Iterable, Sequence

from netd.controllers.podutil import parse_time

Obj = dict[str, Any]

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
HASH_LABEL = "pod-template-hash"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
DEPRECATED_ROLLBACK_TO = "deprecated.deployment.rollback.to"
# Annotations the controller owns on a ReplicaSet; never copied from the Deployment.
_SKIP_COPY = {LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS,
              DEPRECATED_ROLLBACK_TO}
MAX_REV_HISTORY_CHARS = 2000
MAX_INT32 = 2**31 - 1

PROGRESSING = "Progressing"
AVAILABLE = "Available"
REPLICA_FAILURE = "ReplicaFailure"
NEW_RS_REASON = "NewReplicaSetCreated"
FOUND_NEW_RS_REASON = "FoundNewReplicaSet"
RS_UPDATED_REASON = "ReplicaSetUpdated"
NEW_RS_AVAILABLE_REASON = "NewReplicaSetAvailable"
TIMED_OUT_REASON = "ProgressDeadlineExceeded"
PAUSED_REASON = "DeploymentPaused"
RESUMED_REASON = "DeploymentResumed"
FAILED_RS_CREATE_REASON = "ReplicaSetCreateError"
MIN_AVAILABLE_REASON = "MinimumReplicasAvailable"
MIN_UNAVAILABLE_REASON = "MinimumReplicasUnavailable"


def ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- basic accessors ----------------------------------------------------------------

def replicas(obj: Obj) -> int:
    value = (obj.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def status_int(obj: Obj, name: str) -> int:
    return int((obj.get("status") or {}).get(name) or 0)


def annotations_of(obj: Obj) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def revision(rs: Obj) -> int:
    try:
        return int(annotations_of(rs).get(REVISION) or 0)
    except ValueError:
        return 0


def max_revision(rss: Iterable[Obj]) -> int:
    return max((revision(rs) for rs in rss), default=0)


def is_rolling_update(d: Obj) -> bool:
    return ((d.get("spec") or {}).get("strategy") or {}).get("type", "RollingUpdate") \
        == "RollingUpdate"


def has_progress_deadline(d: Obj) -> bool:
    value = (d.get("spec") or {}).get("progressDeadlineSeconds")
    return value is not None and int(value) != MAX_INT32


# ---- fenceposts -----------------------------------------------------------------------

def scaled_value(value: int | str | None, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent: ints as they are, "N%" of total rounded
    up (surge) or down (unavailability)."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value)
    if not text.endswith("%"):
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"invalid value for IntOrString: invalid value {text!r}") \
                from None
    pct = int(text[:-1])
    exact = pct * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def resolve_fenceposts(max_surge: int | str | None, max_unavailable: int | str | None,
                       desired: int) -> tuple[int, int]:
    surge = scaled_value(max_surge if max_surge is not None else 0, desired, True)
    unavailable = scaled_value(max_unavailable if max_unavailable is not None else 0,
                               desired, False)
    if surge == 0 and unavailable == 0:
        # Validation forbids 0/0, but 25% of 1 rounds down to 0: let one pod go at a
        # time rather than never progressing.
        unavailable = 1
    return surge, unavailable


def _rolling(d: Obj) -> Obj:
    return ((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}


def max_surge(d: Obj) -> int:
    if not is_rolling_update(d):
        return 0
    ru = _rolling(d)
    return resolve_fenceposts(ru.get("maxSurge"), ru.get("maxUnavailable"), replicas(d))[0]


def max_unavailable(d: Obj) -> int:
    if not is_rolling_update(d) or replicas(d) == 0:
        return 0
    ru = _rolling(d)
    unavailable = resolve_fenceposts(ru.get("maxSurge"), ru.get("maxUnavailable"),
                                     replicas(d))[1]
    return min(unavailable, replicas(d))


# ---- ReplicaSet sets ----------------------------------------------------------------

def _name(rs: Obj) -> str:
    return str((rs.get("metadata") or {}).get("name") or "")


def _creation_key(rs: Obj) -> tuple[str, str]:
    return ((rs.get("metadata") or {}).get("creationTimestamp") or "", _name(rs))


def by_creation(rss: Iterable[Obj]) -> list[Obj]:
    """Oldest first, ties by name (ReplicaSetsByCreationTimestamp)."""
    return sorted(rss, key=_creation_key)


def by_size_older(rss: Iterable[Obj]) -> list[Obj]:
    """Largest first; equal sizes oldest first (ReplicaSetsBySizeOlder)."""
    return sorted(by_creation(rss), key=lambda rs: -replicas(rs))


def by_size_newer(rss: Iterable[Obj]) -> list[Obj]:
    """Largest first; equal sizes newest first (ReplicaSetsBySizeNewer)."""
    return sorted(list(reversed(by_creation(rss))), key=lambda rs: -replicas(rs))


def by_revision(rss: Iterable[Obj]) -> list[Obj]:
    return sorted(by_creation(rss), key=revision)


def filter_active(rss: Iterable[Obj | None]) -> list[Obj]:
    return [rs for rs in rss if rs is not None and replicas(rs) > 0]


def total_replicas(rss: Iterable[Obj | None]) -> int:
    return sum(replicas(rs) for rs in rss if rs is not None)


def total_status(rss: Iterable[Obj | None], field: str) -> int:
    return sum(status_int(rs, field) for rs in rss if rs is not None)


def _drop_nulls(value: Any) -> Any:
    """Typed Go objects cannot tell `null` from absent: kubectl sends a template's
    `metadata.creationTimestamp: null` (e.g. on `rollout undo`), which must still
    equal the stored template without it."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _without_hash(template: Obj | None) -> Obj:
    t = _drop_nulls(template or {})
    meta = dict(t.get("metadata") or {})
    labels = dict(meta.get("labels") or {})
    labels.pop(HASH_LABEL, None)
    if labels:
        meta["labels"] = labels
    else:
        meta.pop("labels", None)
    if meta:
        t["metadata"] = meta
    else:
        t.pop("metadata", None)
    return t


def equal_ignore_hash(a: Obj | None, b: Obj | None) -> bool:
    return _without_hash(a) == _without_hash(b)


def find_new_rs(d: Obj, rss: list[Obj]) -> Obj | None:
    """The oldest ReplicaSet whose template is the Deployment's (hash label aside)."""
    template = (d.get("spec") or {}).get("template")
    for rs in by_creation(rss):
        if equal_ignore_hash((rs.get("spec") or {}).get("template"), template):
            return rs
    return None


def find_old_rss(d: Obj, rss: list[Obj]) -> tuple[list[Obj], list[Obj]]:
    """(old ReplicaSets with pods, every old ReplicaSet)."""
    new = find_new_rs(d, rss)
    new_uid = (new or {}).get("metadata", {}).get("uid")
    all_old = [rs for rs in rss if new is None or rs["metadata"].get("uid") != new_uid]
    return [rs for rs in all_old if replicas(rs) != 0], all_old


def find_active_or_latest(new: Obj | None, olds: list[Obj]) -> Obj | None:
    if new is None and not olds:
        return None
    olds_desc = list(reversed(by_creation(olds)))
    active = filter_active([*olds_desc, new])
    if not active:
        return new if new is not None else olds_desc[0]
    if len(active) == 1:
        return active[0]
    return None


def is_saturated(d: Obj, rs: Obj | None) -> bool:
    if rs is None:
        return False
    try:
        desired = int(annotations_of(rs).get(DESIRED_REPLICAS, ""))
    except ValueError:
        return False
    want = replicas(d)
    return replicas(rs) == want and desired == want and \
        status_int(rs, "availableReplicas") == want


# ---- annotations ----------------------------------------------------------------------

def replicas_annotations_need_update(rs: Obj, desired: int, max_replicas: int) -> bool:
    ann = annotations_of(rs)
    return ann.get(DESIRED_REPLICAS) != str(desired) or ann.get(MAX_REPLICAS) != str(max_replicas)


def set_replicas_annotations(rs: Obj, desired: int, max_replicas: int) -> bool:
    ann = rs.setdefault("metadata", {}).setdefault("annotations", {})
    changed = False
    for key, value in ((DESIRED_REPLICAS, str(desired)), (MAX_REPLICAS, str(max_replicas))):
        if ann.get(key) != value:
            ann[key] = value
            changed = True
    return changed


def copy_deployment_annotations(d: Obj, rs: Obj) -> bool:
    """User annotations (kubernetes.io/change-cause among them, which `kubectl rollout
    history` shows) travel from the Deployment to its ReplicaSets."""
    ann = rs.setdefault("metadata", {}).setdefault("annotations", {})
    changed = False
    for key, value in annotations_of(d).items():
        if key in _SKIP_COPY or ann.get(key) == value:
            continue
        ann[key] = value
        changed = True
    return changed


def set_new_rs_annotations(d: Obj, rs: Obj, new_revision: str, exists: bool,
                           limit: int = MAX_REV_HISTORY_CHARS) -> bool:
    """SetNewReplicaSetAnnotations: copy user annotations, move the revision forward
    and, when an old ReplicaSet comes back (a rollback), remember its earlier
    revisions in revision-history."""
    changed = copy_deployment_annotations(d, rs)
    ann = rs["metadata"]["annotations"]
    had_revision = REVISION in ann
    old_text = ann.get(REVISION, "")
    try:
        old_rev = int(old_text) if old_text else 0
    except ValueError:
        return False
    new_rev = int(new_revision)
    if old_rev < new_rev:
        ann[REVISION] = new_revision
        changed = True
    if had_revision and old_rev < new_rev:
        history = ann.get(REVISION_HISTORY, "")
        olds = history.split(",") if history else []
        if not olds:
            ann[REVISION_HISTORY] = old_text
        else:
            total = len(history) + len(old_text) + 1
            start = 0
            while total > limit and start < len(olds):
                total -= len(olds[start]) + 1
                start += 1
            if total <= limit:
                ann[REVISION_HISTORY] = ",".join([*olds[start:], old_text])
    if not exists and set_replicas_annotations(rs, replicas(d), replicas(d) + max_surge(d)):
        changed = True
    return changed


def set_deployment_revision(d: Obj, rev: str) -> bool:
    ann = d.setdefault("metadata", {}).setdefault("annotations", {})
    if ann.get(REVISION) == rev:
        return False
    ann[REVISION] = rev
    return True


# ---- scaling arithmetic ---------------------------------------------------------------

def _round_half_away(x: float) -> int:
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def rs_fraction(rs: Obj, d: Obj) -> int:
    """How many replicas `rs` gains (or loses) when the Deployment's size changes,
    in proportion to its share of the size it was last annotated with."""
    if replicas(d) == 0:
        return -replicas(rs)
    deployment_replicas = replicas(d) + max_surge(d)
    try:
        annotated = int(annotations_of(rs)[MAX_REPLICAS])
    except (KeyError, ValueError):
        annotated = status_int(d, "replicas")
    if annotated == 0:
        return 0
    return _round_half_away(replicas(rs) * deployment_replicas / annotated) - replicas(rs)


def proportion(rs: Obj | None, d: Obj, to_add: int, added: int) -> int:
    if rs is None or replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = rs_fraction(rs, d)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def proportional_sizes(d: Obj, rss: list[Obj]) -> tuple[list[tuple[Obj, int]], str]:
    """The new size of every active ReplicaSet when a Deployment is resized mid-rollout
    (DeploymentController.scale), largest (by the scaling direction) first, and "up",
    "down" or "" for the event text."""
    active = filter_active(rss)
    allowed = replicas(d) + max_surge(d) if replicas(d) > 0 else 0
    to_add = allowed - total_replicas(active)
    op = ""
    if to_add > 0:
        active = by_size_newer(active)
        op = "up"
    elif to_add < 0:
        active = by_size_older(active)
        op = "down"
    added = 0
    sizes: list[int] = []
    for rs in active:
        if to_add != 0:
            p = proportion(rs, d, to_add, added)
            sizes.append(replicas(rs) + p)
            added += p
        else:
            sizes.append(replicas(rs))
    if active and to_add != 0:
        sizes[0] = max(0, sizes[0] + to_add - added)  # leftovers to the largest
    return list(zip(active, sizes)), op


def new_rs_new_replicas(d: Obj, all_rss: list[Obj], new_rs: Obj) -> int:
    """The size the new ReplicaSet may grow to this step."""
    if not is_rolling_update(d):
        return replicas(d)
    surge = scaled_value(_rolling(d).get("maxSurge"), replicas(d), True)
    current = total_replicas(all_rss)
    max_total = replicas(d) + surge
    if current >= max_total:
        return replicas(new_rs)
    grow = min(max_total - current, replicas(d) - replicas(new_rs))
    return replicas(new_rs) + grow


# ---- conditions and status -------------------------------------------------------------

def get_condition(status: Obj, type_: str) -> Obj | None:
    for c in status.get("conditions") or []:
        if c.get("type") == type_:
            return c
    return None


def new_condition(type_: str, status: str, reason: str, message: str, now: datetime) -> Obj:
    t = ts(now)
    return {"type": type_, "status": status, "lastUpdateTime": t, "lastTransitionTime": t,
            "reason": reason, "message": message}


def set_condition(status: Obj, cond: Obj) -> None:
    """SetDeploymentCondition: same status and reason is a no-op; same status keeps
    lastTransitionTime; the condition moves to the end of the list."""
    current = get_condition(status, cond["type"])
    if current is not None and current.get("status") == cond["status"] and \
            current.get("reason") == cond["reason"]:
        return
    if current is not None and current.get("status") == cond["status"]:
        cond = {**cond, "lastTransitionTime": current.get("lastTransitionTime")}
    status["conditions"] = [c for c in status.get("conditions") or []
                            if c.get("type") != cond["type"]] + [cond]


def remove_condition(status: Obj, type_: str) -> None:
    if "conditions" in status:
        status["conditions"] = [c for c in status["conditions"] if c.get("type") != type_]
        if not status["conditions"]:
            del status["conditions"]


def calculate_status(all_rss: Sequence[Obj | None], new_rs: Obj | None, d: Obj,
                     now: datetime) -> Obj:
    """The Deployment's status over its ReplicaSets (conditions other than Available
    are carried over; zero counts are omitted as Go's omitempty does)."""
    rss = [rs for rs in all_rss if rs is not None]
    available = total_status(rss, "availableReplicas")
    unavailable = max(0, total_replicas(rss) - available)
    old = d.get("status") or {}
    status: Obj = {}
    for name, value in (
            ("observedGeneration", int((d.get("metadata") or {}).get("generation") or 0)),
            ("replicas", total_status(rss, "replicas")),
            ("updatedReplicas", total_status([new_rs], "replicas")),
            ("readyReplicas", total_status(rss, "readyReplicas")),
            ("availableReplicas", available),
            ("unavailableReplicas", unavailable)):
        if value:
            status[name] = value
    if old.get("conditions"):
        status["conditions"] = [dict(c) for c in old["conditions"]]
    if "collisionCount" in old:
        status["collisionCount"] = old["collisionCount"]
    if available >= replicas(d) - max_unavailable(d):
        set_condition(status, new_condition(AVAILABLE, "True", MIN_AVAILABLE_REASON,
                                            "Deployment has minimum availability.", now))
    else:
        set_condition(status, new_condition(AVAILABLE, "False", MIN_UNAVAILABLE_REASON,
                                            "Deployment does not have minimum availability.",
                                            now))
    return status


def deployment_complete(d: Obj, status: Obj) -> bool:
    want = replicas(d)
    return int(status.get("updatedReplicas") or 0) == want and \
        int(status.get("replicas") or 0) == want and \
        int(status.get("availableReplicas") or 0) == want and \
        int(status.get("observedGeneration") or 0) >= \
        int((d.get("metadata") or {}).get("generation") or 0)


def deployment_progressing(d: Obj, new: Obj) -> bool:
    old = d.get("status") or {}

    def g(s: Obj, k: str) -> int:
        return int(s.get(k) or 0)

    old_old = g(old, "replicas") - g(old, "updatedReplicas")
    new_old = g(new, "replicas") - g(new, "updatedReplicas")
    return g(new, "updatedReplicas") > g(old, "updatedReplicas") or new_old < old_old or \
        g(new, "readyReplicas") > g(old, "readyReplicas") or \
        g(new, "availableReplicas") > g(old, "availableReplicas")


def deployment_timed_out(d: Obj, status: Obj, now: datetime) -> bool:
    if not has_progress_deadline(d):
        return False
    cond = get_condition(status, PROGRESSING)
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE_REASON:
        return False
    if cond.get("reason") == TIMED_OUT_REASON:
        return True
    since = parse_time(cond.get("lastUpdateTime"))
    if since is None:
        return False
    deadline = timedelta(seconds=int(d["spec"]["progressDeadlineSeconds"]))
    return since + deadline < now


# ---- the new ReplicaSet ---------------------------------------------------------------

def selector_with_hash(selector: Obj, hash_: str) -> Obj:
    out = dict(selector or {})
    out["matchLabels"] = {**(out.get("matchLabels") or {}), HASH_LABEL: hash_}
    return out
