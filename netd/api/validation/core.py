"""Core kinds: Pod (object level), Namespace, Node, ConfigMap, Event, ReplicationController.

pkg/apis/core/validation of Kubernetes 1.32; Service/Endpoints live in service.py and
PV/PVC in storage.py.
"""
from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from netd.api.errors import (FieldError, duplicate, forbidden, invalid, not_supported, required,
                             too_long)
from netd.api.quantity import PARSE_ERROR, format_quantity, parse_quantity_with_format
from netd.api.validation.common import (GoValue, as_dict, as_int, as_list, as_str, child,
                                        go_quote, go_string_map, go_strings, index,
                                        is_config_map_key, is_dns1123_subdomain,
                                        is_valid_label_value, key, name_is_dns_label,
                                        name_is_dns_subdomain, name_is_path_segment,
                                        validate_nonnegative, validate_qualified_name)
from netd.api.validation.meta import (selector_matches, validate_object_meta,
                                      validate_object_meta_update)
from netd.api.validation.net import parse_ip, validate_cidr, validate_ip
from netd.api.validation.pod import TAINT_EFFECTS, validate_pod_spec
from netd.api.validation.template import validate_pod_template_spec

# --- Pod ---------------------------------------------------------------------------------

POD_UPDATE_FORBIDDEN = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
    "additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be "
    "set to 1 if it was previously negative)")


def validate_pod(obj: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(obj, True, name_is_dns_subdomain)
    spec = as_dict(obj.get("spec"))
    errs.extend(validate_pod_spec(spec, "spec"))
    if as_list(spec.get("ephemeralContainers")):
        errs.append(forbidden("spec.ephemeralContainers", "cannot be set on create"))
    return errs


def spec_diff(old: Any, new: Any, path: str = "") -> list[str]:
    """A short line-per-difference rendering standing in for Go's cmp.Diff output."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for k in list(old) + [k for k in new if k not in old]:
            out.extend(spec_diff(old.get(k), new.get(k), f"{path}.{k}" if path else k))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out = []
        for i, (a, b) in enumerate(zip(old, new)):
            out.extend(spec_diff(a, b, f"{path}[{i}]"))
        return out
    if old == new:
        return []
    return [f"- {path}: {json.dumps(old, sort_keys=True)}",
            f"+ {path}: {json.dumps(new, sort_keys=True)}"]


def _only_added_tolerations(new: list[Any], old: list[Any]) -> bool:
    for o in old:
        o = as_dict(o)
        if not any(isinstance(n, dict) and {**o, "tolerationSeconds": n.get("tolerationSeconds")}
                   == {**n, "tolerationSeconds": n.get("tolerationSeconds")} for n in new):
            return False
    return True


def validate_pod_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new, old)
    ns, os_ = as_dict(new.get("spec")), as_dict(old.get("spec"))
    errs.extend(validate_pod_spec(ns, "spec"))
    for fld in ("containers", "initContainers"):
        nc, oc = as_list(ns.get(fld)), as_list(os_.get(fld))
        if len(nc) != len(oc):
            errs.append(forbidden(f"spec.{fld}", "pod updates may not add or remove containers"))
            return errs
        for i, c in enumerate(nc):
            image = as_str(as_dict(c).get("image"))
            if image and image.strip() != image:
                errs.append(invalid(f"spec.{fld}[{i}].image", image,
                                    "must not have leading or trailing whitespace"))
    if not _only_added_tolerations(as_list(ns.get("tolerations")), as_list(os_.get("tolerations"))):
        errs.append(forbidden("spec.tolerations",
                              "existing toleration can not be modified except its "
                              "tolerationSeconds"))
    if ns == os_:
        return errs
    ads_new, ads_old = ns.get("activeDeadlineSeconds"), os_.get("activeDeadlineSeconds")
    if ads_new is not None:
        if ads_old is not None and as_int(ads_new) is not None and as_int(ads_old) is not None \
                and ads_old < ads_new:
            errs.append(invalid("spec.activeDeadlineSeconds", ads_new,
                                "must be less than or equal to previous value"))
            return errs
    elif ads_old is not None:
        errs.append(invalid("spec.activeDeadlineSeconds", None,
                            "must not update from a positive integer to nil value"))
    munged = json.loads(json.dumps(ns))
    for fld in ("containers", "initContainers"):
        for c, oc in zip(as_list(munged.get(fld)), as_list(os_.get(fld))):
            if isinstance(c, dict) and isinstance(oc, dict):
                if "image" in oc:
                    c["image"] = oc["image"]
                else:
                    c.pop("image", None)
    for fld in ("activeDeadlineSeconds", "tolerations", "schedulingGates"):
        if fld in os_:
            munged[fld] = os_[fld]
        else:
            munged.pop(fld, None)
    old_grace = os_.get("terminationGracePeriodSeconds")
    if isinstance(old_grace, int) and old_grace < 0 and \
            munged.get("terminationGracePeriodSeconds") == 1:
        munged["terminationGracePeriodSeconds"] = old_grace
    if munged != os_:
        diff = "\n".join(spec_diff(os_, munged))
        errs.append(forbidden("spec", POD_UPDATE_FORBIDDEN + "\n" + diff))
    return errs


def _ip_list(status: dict[str, Any], single: str, plural: str) -> list[str]:
    items = [as_str(as_dict(x).get("ip")) for x in as_list(status.get(plural))]
    if not items and as_str(status.get(single)):
        return [as_str(status.get(single))]
    return items


def validate_pod_status_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new, old)
    if as_str(as_dict(new.get("spec")).get("nodeName")) != \
            as_str(as_dict(old.get("spec")).get("nodeName")):
        errs.append(forbidden("status.nodeName", "may not be changed directly"))
    status = as_dict(new.get("status"))
    for single, plural in (("podIP", "podIPs"), ("hostIP", "hostIPs")):
        ips = _ip_list(status, single, plural)
        path = f"status.{plural}"
        bad = False
        for i, ip in enumerate(ips):
            e = validate_ip(ip, index(path, i))
            bad = bad or bool(e)
            errs.extend(e)
        if len(ips) > 1 and not bad:
            versions = {parse_ip(ip).version for ip in ips}  # type: ignore[union-attr]
            if len(versions) != len(ips) or len(ips) > 2:
                errs.append(invalid(path, GoValue("[]core." + ("PodIP" if single == "podIP"
                                                               else "HostIP") + "{...}"),
                                    "may specify no more than one IP for each IP family"))
            seen: set[str] = set()
            for i, ip in enumerate(ips):
                if ip in seen:
                    errs.append(duplicate(index(path, i), ip))
                seen.add(ip)
    for fld in ("containerStatuses", "initContainerStatuses"):
        for i, cs in enumerate(as_list(status.get(fld))):
            errs.extend(validate_nonnegative(as_dict(cs).get("restartCount"),
                                             child(index(f"status.{fld}", i), "restartCount")))
    return errs


# --- Namespace ---------------------------------------------------------------------------

def _standard_finalizer(name: str) -> bool:
    return name in ("kubernetes", "orphan", "foregroundDeletion") or \
        name.startswith("kubernetes.io/") or "/" in name


def validate_namespace(obj: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(obj, False, name_is_dns_label)
    for f in as_list(as_dict(obj.get("spec")).get("finalizers")):
        f = as_str(f)
        errs.extend(validate_qualified_name(f, "spec.finalizers"))
        if "/" not in f and not _standard_finalizer(f):
            errs.append(invalid("spec.finalizers", f, "name is neither a standard finalizer name "
                                                      "nor is it fully qualified"))
    return errs


def validate_namespace_status_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new, old)
    phase = as_str(as_dict(new.get("status")).get("phase"))
    if not as_dict(new.get("metadata")).get("deletionTimestamp"):
        if phase != "Active":
            errs.append(invalid("status.Phase", phase,
                                "may only be 'Active' if `deletionTimestamp` is empty"))
    elif phase != "Terminating":
        errs.append(invalid("status.Phase", phase,
                            "may only be 'Terminating' if `deletionTimestamp` is not empty"))
    return errs


# --- Node --------------------------------------------------------------------------------

def _pod_cidrs(spec: dict[str, Any]) -> list[str]:
    cidrs = [as_str(c) for c in as_list(spec.get("podCIDRs"))]
    return cidrs or ([as_str(spec["podCIDR"])] if as_str(spec.get("podCIDR")) else [])


def _validate_taints(taints: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    seen: set[tuple[str, str]] = set()
    for i, t in enumerate(as_list(taints)):
        p, t = index(path, i), as_dict(t)
        k, v, effect = as_str(t.get("key")), as_str(t.get("value")), as_str(t.get("effect"))
        errs.extend(validate_qualified_name(k, child(p, "key")))
        msgs = is_valid_label_value(v)
        if msgs:
            errs.append(invalid(child(p, "value"), v, ";".join(msgs)))
        if not effect:
            errs.append(required(child(p, "effect")))
        elif effect not in TAINT_EFFECTS:
            errs.append(not_supported(child(p, "effect"), effect, TAINT_EFFECTS))
        if (effect, k) in seen:
            shown = GoValue("core.Taint{Key:" + go_quote(k) + ", Value:" + go_quote(v)
                            + ", Effect:" + go_quote(effect) + ", TimeAdded:<nil>}")
            errs.append(FieldError(duplicate(p, shown).type, p, shown,
                                   "taints must be unique by key and effect pair"))
            continue
        seen.add((effect, k))
    return errs


def _validate_node_resources(obj: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    status = as_dict(obj.get("status"))
    for bag in ("capacity", "allocatable"):
        for name, qty in as_dict(status.get(bag)).items():
            p = f"status.{bag}.{name}"
            try:
                value, fmt = parse_quantity_with_format(qty)
            except ValueError:
                errs.append(invalid(p, qty, PARSE_ERROR))
                continue
            if value < 0:
                errs.append(invalid(p, format_quantity(value, fmt),
                                    "must be greater than or equal to 0"))
    return errs


def validate_node(obj: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(obj, False, name_is_dns_subdomain)
    spec = as_dict(obj.get("spec"))
    if as_list(spec.get("taints")):
        # Kubernetes reports node taints under metadata.taints (a long-standing path quirk).
        errs.extend(_validate_taints(spec.get("taints"), "metadata.taints"))
    errs.extend(_validate_node_resources(obj))
    cidrs = _pod_cidrs(spec)
    for i, c in enumerate(cidrs):
        errs.extend(validate_cidr(c, index("spec.podCIDRs", i)))
    if len(cidrs) > 1:
        families = {parse_ip(c.partition("/")[0]).version for c in cidrs  # type: ignore[union-attr]
                    if parse_ip(c.partition("/")[0]) is not None}
        if len(families) != len(cidrs) or len(cidrs) > 2:
            errs.append(invalid("spec.podCIDRs", go_strings(cidrs),
                                "may specify no more than one CIDR for each IP family"))
        seen: set[str] = set()
        for i, c in enumerate(cidrs):
            if c in seen:
                errs.append(duplicate(index("spec.podCIDRs", i), c))
            seen.add(c)
    return errs


def validate_node_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new, old)
    errs.extend(_validate_node_resources(new))
    seen: list[Any] = []
    for i, addr in enumerate(as_list(as_dict(new.get("status")).get("addresses"))):
        if addr in seen:
            a = as_dict(addr)
            errs.append(duplicate(index("status.addresses", i),
                                  GoValue("core.NodeAddress{Type:" + go_quote(as_str(a.get("type")))
                                          + ", Address:" + go_quote(as_str(a.get("address")))
                                          + "}")))
        seen.append(addr)
    ns, os_ = as_dict(new.get("spec")), as_dict(old.get("spec"))
    old_cidrs, new_cidrs = _pod_cidrs(os_), _pod_cidrs(ns)
    if old_cidrs:
        if len(old_cidrs) != len(new_cidrs):
            errs.append(forbidden("spec.podCIDRs",
                                  "node updates may not change podCIDR except from \"\" to valid"))
        else:
            for o, n in zip(old_cidrs, new_cidrs):
                if o != n:
                    errs.append(forbidden("spec.podCIDRs", "node updates may not change "
                                                           "podCIDR except from \"\" to valid"))
    old_pid = as_str(os_.get("providerID"))
    if old_pid and old_pid != as_str(ns.get("providerID")):
        errs.append(forbidden("spec.providerID",
                              "node updates may not change providerID except from \"\" to valid"))
    if as_list(ns.get("taints")):
        errs.extend(_validate_taints(ns.get("taints"), "metadata.taints"))
    if as_str(ns.get("externalID")) != as_str(os_.get("externalID")):
        errs.append(forbidden("spec.externalID", "may not be updated"))
    return errs


# --- ConfigMap ---------------------------------------------------------------------------

MAX_CONFIG_MAP_SIZE = 1024 * 1024


def validate_config_map(obj: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(obj, True, name_is_dns_subdomain)
    data, binary = as_dict(obj.get("data")), as_dict(obj.get("binaryData"))
    total = 0
    for k, v in data.items():
        errs.extend(invalid(key("data", k), k, m) for m in is_config_map_key(k))
        if k in binary:
            errs.append(invalid(key("data", k), k, "duplicate of key present in binaryData"))
        total += len(v.encode()) if isinstance(v, str) else 0
    for k, v in binary.items():
        errs.extend(invalid(key("binaryData", k), k, m) for m in is_config_map_key(k))
        try:
            total += len(base64.b64decode(as_str(v), validate=True))
        except (binascii.Error, ValueError):
            errs.append(invalid(key("binaryData", k), "", "illegal base64 data"))
    if total > MAX_CONFIG_MAP_SIZE:
        errs.append(too_long("", "", MAX_CONFIG_MAP_SIZE))
    return errs


def validate_config_map_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new, old)
    if old.get("immutable") is True:
        if new.get("immutable") is not True:
            errs.append(forbidden("immutable", "field is immutable when `immutable` is set"))
        for fld in ("data", "binaryData"):
            if new.get(fld) != old.get(fld):
                errs.append(forbidden(fld, "field is immutable when `immutable` is set"))
    errs.extend(validate_config_map(new))
    return errs


# --- Event -------------------------------------------------------------------------------

def validate_event(obj: dict[str, Any]) -> list[FieldError]:
    """legacyValidateEvent for core/v1, plus the generic metadata check every create gets."""
    meta = as_dict(obj.get("metadata"))
    ns = as_str(meta.get("namespace"))
    involved_ns = as_str(as_dict(obj.get("involvedObject")).get("namespace"))
    errs: list[FieldError] = []
    if not obj.get("eventTime"):
        if not involved_ns:
            if ns not in ("", "default"):
                errs.append(invalid("involvedObject.namespace", involved_ns,
                                    "does not match event.namespace"))
        elif ns != involved_ns:
            errs.append(invalid("involvedObject.namespace", involved_ns,
                                "does not match event.namespace"))
    else:
        if not involved_ns and ns not in ("default", "kube-system"):
            errs.append(invalid("involvedObject.namespace", involved_ns,
                                "does not match event.namespace"))
        component = as_str(obj.get("reportingComponent"))
        if not component:
            errs.append(required("reportingComponent"))
        errs.extend(validate_qualified_name(component, "reportingComponent"))
        for fld, limit in (("reportingInstance", 128), ("action", 128), ("reason", 128)):
            value = as_str(obj.get(fld))
            if not value:
                errs.append(required(fld))
            if len(value) > limit:
                errs.append(invalid(fld, "", f"can have at most {limit} characters"))
        if len(as_str(obj.get("message"))) > 1024:
            errs.append(invalid("message", "", "can have at most 1024 characters"))
    errs.extend(invalid("namespace", ns, m) for m in is_dns1123_subdomain(ns))
    errs.extend(validate_object_meta(obj, True, name_is_path_segment))
    return errs


def validate_event_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    return validate_object_meta_update(new, old) + [
        e for e in validate_event(new) if not e.field.startswith("metadata.")]


# --- ReplicationController ---------------------------------------------------------------

def validate_rc_spec(spec: dict[str, Any], path: str = "spec") -> list[FieldError]:
    errs = validate_nonnegative(spec.get("minReadySeconds"), child(path, "minReadySeconds"))
    selector = spec.get("selector")
    if not as_dict(selector):
        errs.append(required(child(path, "selector")))
    errs.extend(validate_nonnegative(spec.get("replicas"), child(path, "replicas")))
    tmpl = spec.get("template")
    tpath = child(path, "template")
    if tmpl is None:
        errs.append(required(tpath))
        return errs
    tmpl = as_dict(tmpl)
    labels = as_dict(tmpl.get("metadata")).get("labels")
    if as_dict(selector) and not selector_matches({"matchLabels": selector}, labels):
        errs.append(invalid(child(tpath, "metadata", "labels"), go_string_map(labels),
                            "`selector` does not match template `labels`"))
    errs.extend(validate_pod_template_spec(tmpl, tpath))
    tspec = as_dict(tmpl.get("spec"))
    if tspec.get("restartPolicy") != "Always":
        errs.append(not_supported(child(tpath, "spec", "restartPolicy"),
                                  as_str(tspec.get("restartPolicy")), ["Always"]))
    if tspec.get("activeDeadlineSeconds") is not None:
        errs.append(forbidden(child(tpath, "spec", "activeDeadlineSeconds"),
                              "activeDeadlineSeconds in ReplicationController is not Supported"))
    return errs


def validate_replication_controller(obj: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(obj, True, name_is_dns_subdomain)
    errs.extend(validate_rc_spec(as_dict(obj.get("spec"))))
    return errs


def validate_replication_controller_update(new: dict[str, Any],
                                           old: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new, old)
    errs.extend(validate_rc_spec(as_dict(new.get("spec"))))
    return errs


def validate_replica_status(status: dict[str, Any], fields: tuple[str, ...]) -> list[FieldError]:
    """Non-negative counters, none above status.replicas (RC/RS/Deployment/StatefulSet)."""
    errs: list[FieldError] = []
    for fld in fields:
        errs.extend(validate_nonnegative(status.get(fld), f"status.{fld}"))
    replicas = as_int(status.get("replicas")) or 0
    for fld in fields:
        v = as_int(status.get(fld))
        if fld not in ("replicas", "observedGeneration", "collisionCount",
                       "unavailableReplicas") and v is not None and v > replicas:
            errs.append(invalid(f"status.{fld}", v, "cannot be greater than status.replicas"))
    return errs

