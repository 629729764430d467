"""apps/v1 kinds: Deployment, ReplicaSet, StatefulSet, DaemonSet, ControllerRevision.

pkg/apis/apps/validation of Kubernetes 1.32, plus the registry strategies' rule that
apps/v1 selectors are immutable. StatefulSet pod templates are deliberately not run
through PodSpec validation (Kubernetes does not either: their volumeMounts may name
volumeClaimTemplates, which are not pod volumes).
"""
from __future__ import annotations

from typing import Any

from netd.api.errors import FieldError, forbidden, invalid, not_supported, required
from netd.api.validation.common import (GoValue, as_dict, as_int, as_list, as_str, child,
                                        go_int_or_string, go_quote, go_string_map,
                                        go_label_selector,
                                        name_is_dns_label, name_is_dns_subdomain,
                                        validate_nonnegative)
from netd.api.validation.core import validate_replica_status
from netd.api.validation.meta import (selector_is_empty, selector_matches,
                                      validate_label_selector, validate_object_meta,
                                      validate_object_meta_update)
from netd.api.validation.net import (int_or_percent_value, validate_not_more_than_100_percent,
                                     validate_positive_int_or_percent)
from netd.api.validation.template import (validate_pod_template_metadata,
                                          validate_pod_template_spec)

STATEFULSET_UPDATE_FORBIDDEN = (
    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
    "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are "
    "forbidden")


def _template_labels(spec: dict[str, Any]) -> Any:
    return as_dict(as_dict(spec.get("template")).get("metadata")).get("labels")


def _validate_selector(spec: dict[str, Any], kind_word: str) -> list[FieldError]:
    """Selector required, valid and non-empty (Deployment/ReplicaSet/StatefulSet)."""
    sel = spec.get("selector")
    if sel is None:
        return [required("spec.selector")]
    errs = validate_label_selector(sel, "spec.selector")
    if selector_is_empty(sel):
        errs.append(invalid("spec.selector", go_label_selector(sel),
                            f"empty selector is invalid for {kind_word}"))
    return errs


def _mismatch(spec: dict[str, Any]) -> list[FieldError]:
    """`selector` does not match template `labels` (a nil selector matches nothing; an
    empty one matches everything and is reported as empty instead)."""
    sel = spec.get("selector")
    if sel is not None and selector_is_empty(sel):
        return []
    labels = _template_labels(spec)
    if selector_matches(sel, labels):
        return []
    return [invalid("spec.template.metadata.labels", go_string_map(labels),
                    "`selector` does not match template `labels`")]


def _validate_rs_template(spec: dict[str, Any], kind: str) -> list[FieldError]:
    """ValidatePodTemplateSpecForReplicaSet (also used by Deployment)."""
    if spec.get("template") is None:
        return [required("spec.template")]
    errs = _mismatch(spec)
    tmpl = as_dict(spec.get("template"))
    errs.extend(validate_pod_template_spec(tmpl, "spec.template"))
    tspec = as_dict(tmpl.get("spec"))
    if tspec.get("restartPolicy") != "Always":
        errs.append(not_supported("spec.template.spec.restartPolicy",
                                  as_str(tspec.get("restartPolicy")), ["Always"]))
    if tspec.get("activeDeadlineSeconds") is not None:
        errs.append(forbidden("spec.template.spec.activeDeadlineSeconds",
                              f"activeDeadlineSeconds in {kind} is not Supported"))
    return errs


def _immutable_selector(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    ns, os_ = as_dict(new.get("spec")).get("selector"), as_dict(old.get("spec")).get("selector")
    if _norm_selector(ns) == _norm_selector(os_):
        return []
    return [invalid("spec.selector", go_label_selector(ns), "field is immutable")]


def _norm_selector(sel: Any) -> Any:
    # Semantic equality: nil and empty maps/lists are the same.
    if sel is None:
        return None
    s = as_dict(sel)
    return {"matchLabels": s.get("matchLabels") or {},
            "matchExpressions": s.get("matchExpressions") or []}


# --- Deployment --------------------------------------------------------------------------

def _go_deployment_strategy(strategy: dict[str, Any]) -> GoValue:
    return GoValue("apps.DeploymentStrategy{Type:" + go_quote(as_str(strategy.get("type")))
                   + ", RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}")


def _validate_deployment_strategy(strategy: dict[str, Any]) -> list[FieldError]:
    path = "spec.strategy"
    t = as_str(strategy.get("type"))
    ru = strategy.get("rollingUpdate")
    if t == "Recreate":
        if ru is not None:
            return [forbidden(child(path, "rollingUpdate"),
                              "may not be specified when strategy `type` is 'Recreate'")]
        return []
    if t == "RollingUpdate":
        if ru is None:
            return [required(child(path, "rollingUpdate"),
                             "this should be defaulted and never be nil")]
        ru = as_dict(ru)
        rpath = child(path, "rollingUpdate")
        mu, ms = ru.get("maxUnavailable"), ru.get("maxSurge")
        errs = validate_positive_int_or_percent(mu, child(rpath, "maxUnavailable"))
        errs.extend(validate_positive_int_or_percent(ms, child(rpath, "maxSurge")))
        if int_or_percent_value(mu)[0] == 0 and int_or_percent_value(ms)[0] == 0:
            errs.append(invalid(child(rpath, "maxUnavailable"), go_int_or_string(mu),
                                "may not be 0 when `maxSurge` is 0"))
        errs.extend(validate_not_more_than_100_percent(mu, child(rpath, "maxUnavailable")))
        return errs
    return [not_supported(path, _go_deployment_strategy(strategy), ["Recreate", "RollingUpdate"])]


def validate_deployment_spec(spec: dict[str, Any]) -> list[FieldError]:
    errs = validate_nonnegative(spec.get("replicas"), "spec.replicas")
    errs.extend(_validate_selector(spec, "deployment"))
    errs.extend(_validate_rs_template(spec, "Deployment"))
    errs.extend(_validate_deployment_strategy(as_dict(spec.get("strategy"))))
    errs.extend(validate_nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds"))
    errs.extend(validate_nonnegative(spec.get("revisionHistoryLimit"),
                                     "spec.revisionHistoryLimit"))
    pds = spec.get("progressDeadlineSeconds")
    if pds is not None:
        errs.extend(validate_nonnegative(pds, "spec.progressDeadlineSeconds"))
        mrs = as_int(spec.get("minReadySeconds")) or 0
        if as_int(pds) is not None and pds <= mrs:
            errs.append(invalid("spec.progressDeadlineSeconds", pds,
                                "must be greater than minReadySeconds"))
    return errs


def validate_deployment(obj: dict[str, Any]) -> list[FieldError]:
    return validate_object_meta(obj, True, name_is_dns_subdomain) + \
        validate_deployment_spec(as_dict(obj.get("spec")))


def validate_deployment_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    return validate_object_meta_update(new, old) + \
        validate_deployment_spec(as_dict(new.get("spec"))) + _immutable_selector(new, old)


# --- ReplicaSet --------------------------------------------------------------------------

def validate_replica_set_spec(spec: dict[str, Any]) -> list[FieldError]:
    errs = validate_nonnegative(spec.get("replicas"), "spec.replicas")
    errs.extend(validate_nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds"))
    # Kubernetes' ReplicaSet validation says "deployment" here too.
    errs.extend(_validate_selector(spec, "deployment"))
    errs.extend(_validate_rs_template(spec, "ReplicaSet"))
    return errs


def validate_replica_set(obj: dict[str, Any]) -> list[FieldError]:
    return validate_object_meta(obj, True, name_is_dns_subdomain) + \
        validate_replica_set_spec(as_dict(obj.get("spec")))


def validate_replica_set_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    return validate_object_meta_update(new, old) + \
        validate_replica_set_spec(as_dict(new.get("spec"))) + _immutable_selector(new, old)


# --- StatefulSet -------------------------------------------------------------------------

def validate_stateful_set_spec(spec: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    pmp = as_str(spec.get("podManagementPolicy"))
    if not pmp:
        errs.append(required("spec.podManagementPolicy"))
    elif pmp not in ("OrderedReady", "Parallel"):
        errs.append(invalid("spec.podManagementPolicy", pmp,
                            "must be 'OrderedReady' or 'Parallel'"))
    strategy = as_dict(spec.get("updateStrategy"))
    t = as_str(strategy.get("type"))
    ru = strategy.get("rollingUpdate")
    if not t:
        errs.append(required("spec.updateStrategy"))
    elif t == "OnDelete":
        if ru is not None:
            errs.append(invalid("spec.updateStrategy.rollingUpdate",
                                GoValue("&apps.RollingUpdateStatefulSetStrategy{...}"),
                                "only allowed for updateStrategy 'RollingUpdate'"))
    elif t == "RollingUpdate":
        if ru is not None:
            ru = as_dict(ru)
            rpath = "spec.updateStrategy.rollingUpdate"
            errs.extend(validate_nonnegative(ru.get("partition"), child(rpath, "partition")))
            mu = ru.get("maxUnavailable")
            if mu is not None:
                mpath = child(rpath, "maxUnavailable")
                errs.extend(validate_positive_int_or_percent(mu, mpath))
                if int_or_percent_value(mu)[0] == 0:
                    errs.append(invalid(mpath, go_int_or_string(mu), "cannot be 0"))
                errs.extend(validate_not_more_than_100_percent(mu, mpath))
    else:
        errs.append(invalid("spec.updateStrategy",
                            GoValue("apps.StatefulSetUpdateStrategy{Type:" + go_quote(t)
                                    + ", RollingUpdate:(*apps.RollingUpdateStatefulSetStrategy)"
                                      "(nil)}"),
                            "must be 'RollingUpdate' or 'OnDelete'"))
    policy = spec.get("persistentVolumeClaimRetentionPolicy")
    if policy is not None:
        for fld in ("whenDeleted", "whenScaled"):
            v = as_str(as_dict(policy).get(fld))
            if v not in ("Retain", "Delete"):
                errs.append(not_supported(f"spec.persistentVolumeClaimRetentionPolicy.{fld}", v,
                                          ["Retain", "Delete"]))
    errs.extend(validate_nonnegative(spec.get("replicas"), "spec.replicas"))
    errs.extend(validate_nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds"))
    if spec.get("ordinals") is not None:
        errs.extend(validate_nonnegative(as_dict(spec.get("ordinals")).get("start"),
                                         "spec.ordinals.start"))
    errs.extend(_validate_selector(spec, "statefulset"))
    if spec.get("template") is None:
        errs.append(required("spec.template"))
    else:
        errs.extend(_mismatch(spec))
        errs.extend(validate_pod_template_metadata(as_dict(spec.get("template")),
                                                   "spec.template"))
    tspec = as_dict(as_dict(spec.get("template")).get("spec"))
    if tspec.get("restartPolicy") != "Always":
        errs.append(not_supported("spec.template.spec.restartPolicy",
                                  as_str(tspec.get("restartPolicy")), ["Always"]))
    if tspec.get("activeDeadlineSeconds") is not None:
        errs.append(forbidden("spec.template.spec.activeDeadlineSeconds",
                              "activeDeadlineSeconds in StatefulSet is not Supported"))
    for i, claim in enumerate(as_list(spec.get("volumeClaimTemplates"))):
        name = as_str(as_dict(as_dict(claim).get("metadata")).get("name"))
        if not name:
            errs.append(required(f"spec.volumeClaimTemplates[{i}].metadata.name",
                                 "name or generateName is required"))
    return errs


def validate_stateful_set(obj: dict[str, Any]) -> list[FieldError]:
    # StatefulSet names become pod hostnames, so they must be DNS labels.
    return validate_object_meta(obj, True, name_is_dns_label) + \
        validate_stateful_set_spec(as_dict(obj.get("spec")))


_STS_MUTABLE = ("replicas", "template", "updateStrategy", "minReadySeconds", "ordinals",
                "persistentVolumeClaimRetentionPolicy")


def validate_stateful_set_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new, old)
    ns, os_ = as_dict(new.get("spec")), as_dict(old.get("spec"))
    errs.extend(validate_stateful_set_spec(ns))
    clone = {k: v for k, v in ns.items() if k not in _STS_MUTABLE}
    rest = {k: v for k, v in os_.items() if k not in _STS_MUTABLE}
    if _semantic(clone) != _semantic(rest):
        errs.append(forbidden("spec", STATEFULSET_UPDATE_FORBIDDEN))
    return errs


def _semantic(v: Any) -> Any:
    """Drop empty maps/lists and nulls: Semantic.DeepEqual treats nil and empty alike."""
    if isinstance(v, dict):
        out = {k: _semantic(x) for k, x in v.items()}
        return {k: x for k, x in out.items() if x not in (None, {}, [])}
    if isinstance(v, list):
        return [_semantic(x) for x in v]
    return v


# --- DaemonSet ---------------------------------------------------------------------------

def _validate_daemon_set_strategy(strategy: dict[str, Any]) -> list[FieldError]:
    path = "spec.updateStrategy"
    t = as_str(strategy.get("type"))
    if t == "OnDelete":
        return []
    if t != "RollingUpdate":
        return [not_supported(path, GoValue("apps.DaemonSetUpdateStrategy{Type:" + go_quote(t)
                                            + ", RollingUpdate:(*apps.RollingUpdateDaemonSet)"
                                              "(nil)}"),
                              ["RollingUpdate", "OnDelete"])]
    ru = strategy.get("rollingUpdate")
    rpath = child(path, "rollingUpdate")
    if ru is None:
        return [required(rpath)]
    ru = as_dict(ru)
    mu, ms = ru.get("maxUnavailable"), ru.get("maxSurge")
    errs = validate_positive_int_or_percent(mu, child(rpath, "maxUnavailable"))
    errs.extend(validate_positive_int_or_percent(ms, child(rpath, "maxSurge")))
    errs.extend(validate_not_more_than_100_percent(mu, child(rpath, "maxUnavailable")))
    errs.extend(validate_not_more_than_100_percent(ms, child(rpath, "maxSurge")))
    has_u, has_s = int_or_percent_value(mu)[0] != 0, int_or_percent_value(ms)[0] != 0
    if has_u and has_s:
        errs.append(invalid(child(rpath, "maxSurge"), go_int_or_string(ms),
                            "may not be set when maxUnavailable is non-zero"))
    elif not has_u and not has_s:
        errs.append(required(child(rpath, "maxUnavailable"), "cannot be 0 when maxSurge is 0"))
    return errs


def validate_daemon_set_spec(spec: dict[str, Any]) -> list[FieldError]:
    errs = validate_label_selector(spec.get("selector"), "spec.selector")
    sel = spec.get("selector")
    if not selector_matches(sel, _template_labels(spec)) and not (
            sel is not None and selector_is_empty(sel)):
        errs.append(invalid("spec.template.metadata.labels", go_string_map(_template_labels(spec)),
                            "`selector` does not match template `labels`"))
    if sel is not None and selector_is_empty(sel):
        errs.append(invalid("spec.selector", go_label_selector(sel),
                            "empty selector is invalid for daemonset"))
    tmpl = as_dict(spec.get("template"))
    errs.extend(validate_pod_template_spec(tmpl, "spec.template"))
    tspec = as_dict(tmpl.get("spec"))
    if tspec.get("restartPolicy") != "Always":
        errs.append(not_supported("spec.template.spec.restartPolicy",
                                  as_str(tspec.get("restartPolicy")), ["Always"]))
    if tspec.get("activeDeadlineSeconds") is not None:
        errs.append(forbidden("spec.template.spec.activeDeadlineSeconds",
                              "activeDeadlineSeconds in DaemonSet is not Supported"))
    errs.extend(validate_nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds"))
    errs.extend(_validate_daemon_set_strategy(as_dict(spec.get("updateStrategy"))))
    errs.extend(validate_nonnegative(spec.get("revisionHistoryLimit"),
                                     "spec.revisionHistoryLimit"))
    return errs


def validate_daemon_set(obj: dict[str, Any]) -> list[FieldError]:
    return validate_object_meta(obj, True, name_is_dns_subdomain) + \
        validate_daemon_set_spec(as_dict(obj.get("spec")))


def validate_daemon_set_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    return validate_object_meta_update(new, old) + \
        validate_daemon_set_spec(as_dict(new.get("spec"))) + _immutable_selector(new, old)


# --- ControllerRevision ------------------------------------------------------------------

def validate_controller_revision(obj: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(obj, True, name_is_dns_subdomain)
    if obj.get("data") is None:
        errs.append(required("data", "data is mandatory"))
    errs.extend(validate_nonnegative(obj.get("revision"), "revision"))
    return errs


def validate_controller_revision_update(new: dict[str, Any],
                                        old: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new, old) + validate_controller_revision(new)
    if new.get("data") != old.get("data"):
        errs.append(invalid("data", GoValue("runtime.RawExtension{...}"), "field is immutable"))
    return errs


# --- status ------------------------------------------------------------------------------

_STATUS_FIELDS = {
    "Deployment": ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas",
                   "availableReplicas", "unavailableReplicas", "collisionCount"),
    "ReplicaSet": ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas",
                   "observedGeneration"),
    "ReplicationController": ("replicas", "fullyLabeledReplicas", "readyReplicas",
                              "availableReplicas", "observedGeneration"),
    "StatefulSet": ("replicas", "readyReplicas", "currentReplicas", "updatedReplicas",
                    "availableReplicas", "observedGeneration", "collisionCount"),
    "DaemonSet": ("currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled",
                  "numberReady", "observedGeneration", "updatedNumberScheduled",
                  "numberAvailable", "numberUnavailable", "collisionCount"),
}


def validate_workload_status_update(kind: str, new: dict[str, Any],
                                    old: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new, old)
    status, old_status = as_dict(new.get("status")), as_dict(old.get("status"))
    fields = _STATUS_FIELDS[kind]
    if kind == "DaemonSet":
        for fld in fields:
            errs.extend(validate_nonnegative(status.get(fld), f"status.{fld}"))
    else:
        errs.extend(validate_replica_status(status, fields))
        ready, avail = as_int(status.get("readyReplicas")), as_int(status.get("availableReplicas"))
        if ready is not None and avail is not None and avail > ready:
            word = "status.readyReplicas" if kind == "StatefulSet" else "readyReplicas"
            errs.append(invalid("status.availableReplicas", avail,
                                f"cannot be greater than {word}"))
    nc, oc = as_int(status.get("collisionCount")), as_int(old_status.get("collisionCount"))
    if oc is not None and (nc is None or nc < oc):
        errs.append(invalid("status.collisionCount", nc or 0, "cannot be decremented"))
    return errs
