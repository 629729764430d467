"""Container field validators: ports, env, envFrom, volumeMounts, resources.

pkg/apis/core/validation of Kubernetes 1.32 (validateContainerPorts, ValidateEnv,
ValidateEnvFrom, ValidateVolumeMounts, ValidateResourceRequirements), including its
field-path quirks (`volumeMounts.subPath` without an index) because kubectl users see them.
"""
from __future__ import annotations

from typing import Any

from netd.api.errors import FieldError, duplicate, invalid, not_found, not_supported, required
from netd.api.quantity import PARSE_ERROR, format_quantity, parse_quantity_with_format
from netd.api.validation.common import (as_dict, as_list, as_str, child, index,
                                        is_config_map_key, is_dns1123_subdomain,
                                        is_relaxed_env_var_name, is_valid_port_name, key,
                                        validate_dns1123_subdomain, validate_qualified_name)
from netd.api.validation.net import validate_port_num, validate_protocol

_ENV_FIELD_PATHS = ["metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
                    "spec.serviceAccountName", "status.hostIP", "status.hostIPs",
                    "status.podIP", "status.podIPs"]
_STANDARD_CONTAINER_RESOURCES = {"cpu", "memory", "ephemeral-storage"}
_STANDARD_RESOURCES = _STANDARD_CONTAINER_RESOURCES | {
    "pods", "services", "replicationcontrollers", "resourcequotas", "secrets", "configmaps",
    "persistentvolumeclaims", "storage", "requests.cpu", "requests.memory", "requests.storage",
    "requests.ephemeral-storage", "limits.cpu", "limits.memory", "limits.ephemeral-storage",
    "services.nodeports", "services.loadbalancers"}


# --- containers --------------------------------------------------------------------------

def validate_container_ports(ports: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    names: set[str] = set()
    for i, port in enumerate(as_list(ports)):
        p = index(path, i)
        port = as_dict(port)
        name = as_str(port.get("name"))
        if name:
            msgs = is_valid_port_name(name)
            if msgs:
                errs.extend(invalid(child(p, "name"), name, m) for m in msgs)
            elif name in names:
                errs.append(duplicate(child(p, "name"), name))
            else:
                names.add(name)
        if not port.get("containerPort"):
            errs.append(required(child(p, "containerPort")))
        else:
            errs.extend(validate_port_num(port.get("containerPort"), child(p, "containerPort")))
        if port.get("hostPort"):
            errs.extend(validate_port_num(port.get("hostPort"), child(p, "hostPort")))
        errs.extend(validate_protocol(port.get("protocol"), child(p, "protocol")))
    return errs


def _validate_object_field_selector(ref: dict[str, Any], path: str) -> list[FieldError]:
    if not as_str(ref.get("apiVersion")):
        return [required(child(path, "apiVersion"))]
    fp = as_str(ref.get("fieldPath"))
    if not fp:
        return [required(child(path, "fieldPath"))]
    if "[" in fp and fp.endswith("]"):
        base, _, sub = fp[:-1].partition("[")
        sub = sub.strip("'\"")
        if base == "metadata.annotations":
            return validate_qualified_name(sub.lower(), path)
        if base == "metadata.labels":
            return validate_qualified_name(sub, path)
        return [invalid(path, base, "does not support subscript")]
    if fp not in _ENV_FIELD_PATHS:
        return [not_supported(child(path, "fieldPath"), fp, sorted(_ENV_FIELD_PATHS))]
    return []


def _validate_key_selector(ref: dict[str, Any], path: str) -> list[FieldError]:
    errs = [invalid(child(path, "name"), as_str(ref.get("name")), m)
            for m in is_dns1123_subdomain(as_str(ref.get("name")))]
    k = as_str(ref.get("key"))
    if not k:
        errs.append(required(child(path, "key")))
    else:
        errs.extend(invalid(child(path, "key"), k, m) for m in is_config_map_key(k))
    return errs


def validate_env(env: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, ev in enumerate(as_list(env)):
        p = index(path, i)
        ev = as_dict(ev)
        name = as_str(ev.get("name"))
        if not name:
            errs.append(required(child(p, "name")))
        else:
            errs.extend(invalid(child(p, "name"), name, m) for m in is_relaxed_env_var_name(name))
        vf = ev.get("valueFrom")
        if vf is None:
            continue
        vf = as_dict(vf)
        vp = child(p, "valueFrom")
        sources = 0
        if vf.get("fieldRef") is not None:
            sources += 1
            errs.extend(_validate_object_field_selector(as_dict(vf["fieldRef"]),
                                                        child(vp, "fieldRef")))
        if vf.get("resourceFieldRef") is not None:
            sources += 1
            if not as_str(as_dict(vf["resourceFieldRef"]).get("resource")):
                errs.append(required(child(vp, "resourceFieldRef", "resource")))
        for kind in ("configMapKeyRef", "secretKeyRef"):
            if vf.get(kind) is not None:
                sources += 1
                errs.extend(_validate_key_selector(as_dict(vf[kind]), child(vp, kind)))
        if sources == 0:
            errs.append(invalid(vp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, "
                                        "`configMapKeyRef` or `secretKeyRef`"))
        elif as_str(ev.get("value")):
            errs.append(invalid(vp, "", "may not be specified when `value` is not empty"))
        elif sources > 1:
            errs.append(invalid(vp, "", "may not have more than one field specified at a time"))
    return errs


def validate_env_from(env_from: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, ev in enumerate(as_list(env_from)):
        p = index(path, i)
        ev = as_dict(ev)
        prefix = as_str(ev.get("prefix"))
        if prefix:
            errs.extend(invalid(child(p, "prefix"), prefix, m)
                        for m in is_relaxed_env_var_name(prefix))
        sources = 0
        for kind in ("configMapRef", "secretRef"):
            if ev.get(kind) is not None:
                sources += 1
                name = as_str(as_dict(ev[kind]).get("name"))
                if not name:
                    errs.append(required(child(p, kind, "name")))
                else:
                    errs.extend(validate_dns1123_subdomain(name, child(p, kind, "name")))
        if sources == 0:
            errs.append(invalid(path, "", "must specify one of: `configMapRef` or `secretRef`"))
        elif sources > 1:
            errs.append(invalid(path, "", "may not have more than one field specified at a time"))
    return errs


def _local_descending_path(value: str, path: str) -> list[FieldError]:
    errs = []
    if value.startswith("/"):
        errs.append(invalid(path, value, "must be a relative path"))
    if ".." in value.split("/"):
        errs.append(invalid(path, value, "must not contain '..'"))
    return errs


def validate_volume_mounts(mounts: Any, volumes: set[str], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    seen: set[str] = set()
    for i, m in enumerate(as_list(mounts)):
        p = index(path, i)
        m = as_dict(m)
        name = as_str(m.get("name"))
        if not name:
            errs.append(required(child(p, "name")))
        if name not in volumes:
            errs.append(not_found(child(p, "name"), name))
        mount_path = as_str(m.get("mountPath"))
        if not mount_path:
            errs.append(required(child(p, "mountPath")))
        if mount_path in seen:
            errs.append(invalid(child(p, "mountPath"), mount_path, "must be unique"))
        seen.add(mount_path)
        sub = as_str(m.get("subPath"))
        if sub:
            # Kubernetes reports these at the list path, without the index.
            errs.extend(_local_descending_path(sub, child(path, "subPath")))
        sub_expr = as_str(m.get("subPathExpr"))
        if sub_expr:
            if sub:
                errs.append(invalid(child(p, "subPathExpr"), sub_expr,
                                    "subPathExpr and subPath are mutually exclusive"))
            errs.extend(_local_descending_path(sub_expr, child(path, "subPathExpr")))
    return errs


def _overcommit_allowed(name: str) -> bool:
    """helper.IsOvercommitAllowed: native resources except hugepages; extended ones are not."""
    native = "/" not in name or "kubernetes.io/" in name
    return native and not name.startswith("hugepages-")


def _validate_resource_name(name: str, path: str) -> list[FieldError]:
    errs = validate_qualified_name(name, path)
    if errs:
        return errs
    if "/" not in name:
        if name not in _STANDARD_RESOURCES and not name.startswith("hugepages-"):
            errs.append(invalid(path, name, "must be a standard resource type or fully qualified"))
        if name not in _STANDARD_CONTAINER_RESOURCES and not name.startswith("hugepages-"):
            errs.append(invalid(path, name, "must be a standard resource for containers"))
    return errs


def _quantity(value: Any, path: str) -> tuple[Any, str, list[FieldError]]:
    """(value, canonical text, errors) for a quantity field."""
    try:
        v, fmt = parse_quantity_with_format(value)
    except ValueError:
        return None, "", [invalid(path, value, PARSE_ERROR)]
    text = format_quantity(v, fmt)
    if v < 0:
        return v, text, [invalid(path, text, "must be greater than or equal to 0")]
    return v, text, []


def validate_resources(res: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    res = as_dict(res)
    lim_path, req_path = child(path, "limits"), child(path, "requests")
    limits: dict[str, tuple[Any, str]] = {}
    for name, qty in as_dict(res.get("limits")).items():
        p = key(lim_path, name)
        errs.extend(_validate_resource_name(name, p))
        v, text, qerrs = _quantity(qty, p)
        errs.extend(qerrs)
        if v is not None:
            limits[name] = (v, text)
    for name, qty in as_dict(res.get("requests")).items():
        p = key(req_path, name)
        errs.extend(_validate_resource_name(name, p))
        v, text, qerrs = _quantity(qty, p)
        errs.extend(qerrs)
        if v is None:
            continue
        if name in limits:
            lv, ltext = limits[name]
            if v != lv and not _overcommit_allowed(name):
                errs.append(invalid(req_path, text, f"must be equal to {name} limit of {ltext}"))
            elif v > lv:
                errs.append(invalid(req_path, text,
                                    f"must be less than or equal to {name} limit of {ltext}"))
        elif not _overcommit_allowed(name):
            errs.append(required(lim_path, "Limit must be set for non overcommitable resources"))
    return errs
