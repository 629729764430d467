"""PodSpec validation: containers, probes, lifecycle hooks, DNS, tolerations, pod fields.

Follows pkg/apis/core/validation (ValidatePodSpec and helpers) of Kubernetes 1.32; the
per-container field validators (ports, env, mounts, resources) are in containers.py and
volumes in volumes.py.
"""
from __future__ import annotations

from typing import Any

from netd.api.errors import FieldError, duplicate, forbidden, invalid, not_supported, required
from netd.api.validation.common import (as_dict, as_int, as_list, as_str, child, go_strings,
                                        inclusive_range_error, index, is_valid_label_value,
                                        validate_dns1123_label, validate_dns1123_subdomain,
                                        validate_enum, validate_nonnegative,
                                        validate_qualified_name)
from netd.api.validation.containers import (validate_container_ports, validate_env,
                                            validate_env_from, validate_resources,
                                            validate_volume_mounts)
from netd.api.validation.meta import validate_labels
from netd.api.validation.net import validate_ip, validate_port_num, validate_port_num_or_name
from netd.api.validation.volumes import validate_volumes

MAX_INT32 = 2147483647
RESTART_POLICIES = ["Always", "OnFailure", "Never"]
DNS_POLICIES = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"]
PULL_POLICIES = ["Always", "IfNotPresent", "Never"]
TAINT_EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"]


# --- probes, hooks and containers ---------------------------------------------------

def _validate_handler(h: dict[str, Any], path: str, kinds: tuple[str, ...]) -> list[FieldError]:
    errs: list[FieldError] = []
    count = 0
    for kind in kinds:
        action = h.get(kind)
        if action is None:
            continue
        if count:
            errs.append(forbidden(child(path, kind), "may not specify more than 1 handler type"))
            continue
        count += 1
        a, p = as_dict(action), child(path, kind)
        if kind == "exec":
            if not as_list(a.get("command")):
                errs.append(required(child(p, "command")))
        elif kind == "httpGet":
            if not as_str(a.get("path")):
                errs.append(required(child(p, "path")))
            errs.extend(validate_port_num_or_name(a.get("port"), child(p, "port")))
            scheme = as_str(a.get("scheme"))
            if scheme not in ("HTTP", "HTTPS"):
                errs.append(not_supported(child(p, "scheme"), scheme, ["HTTP", "HTTPS"]))
        elif kind == "tcpSocket":
            errs.extend(validate_port_num_or_name(a.get("port"), child(p, "port")))
        elif kind == "grpc":
            errs.extend(validate_port_num(a.get("port"), child(p, "port")))
        elif kind == "sleep":
            s = as_int(a.get("seconds"))
            if s is None or s <= 0:
                errs.append(invalid(child(p, "seconds"), a.get("seconds"),
                                    "must be greater than 0"))
    if count == 0:
        errs.append(required(path, "must specify a handler type"))
    return errs


def _validate_probe(probe: Any, path: str, which: str) -> list[FieldError]:
    if probe is None:
        return []
    probe = as_dict(probe)
    errs = _validate_handler(probe, path, ("exec", "httpGet", "tcpSocket", "grpc"))
    for fld in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold",
                "failureThreshold"):
        errs.extend(validate_nonnegative(probe.get(fld), child(path, fld)))
    grace = probe.get("terminationGracePeriodSeconds")
    if grace is not None and (as_int(grace) is None or grace <= 0):
        errs.append(invalid(child(path, "terminationGracePeriodSeconds"), grace,
                            "must be greater than 0"))
    if which in ("livenessProbe", "startupProbe"):
        st = probe.get("successThreshold")
        if st is not None and st != 1:
            errs.append(invalid(child(path, "successThreshold"), st, "must be 1"))
    if which == "readinessProbe" and grace is not None:
        errs.append(invalid(child(path, "terminationGracePeriodSeconds"), grace,
                            "must not be set for readinessProbes"))
    return errs


def _validate_lifecycle(lc: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for hook in ("postStart", "preStop"):
        h = as_dict(lc).get(hook)
        if h is not None:
            errs.extend(_validate_handler(as_dict(h), child(path, hook),
                                          ("exec", "httpGet", "tcpSocket", "sleep")))
    return errs


def _validate_security_context(sc: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    sc = as_dict(sc)
    for fld in ("runAsUser", "runAsGroup"):
        v = sc.get(fld)
        if v is not None and (as_int(v) is None or not 0 <= v <= MAX_INT32):
            errs.append(invalid(child(path, fld), v, inclusive_range_error(0, MAX_INT32)))
    if sc.get("privileged") is True and sc.get("allowPrivilegeEscalation") is False:
        errs.append(invalid(path, "", "cannot set `allowPrivilegeEscalation` to false and "
                                      "`privileged` to true"))
    return errs


def _validate_container_common(c: dict[str, Any], volumes: set[str], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    name = as_str(c.get("name"))
    if not name:
        errs.append(required(child(path, "name")))
    else:
        errs.extend(validate_dns1123_label(name, child(path, "name")))
    if not as_str(c.get("image")):
        errs.append(required(child(path, "image")))
    errs.extend(validate_enum(c.get("terminationMessagePolicy"),
                              child(path, "terminationMessagePolicy"),
                              ["File", "FallbackToLogsOnError"]))
    errs.extend(validate_container_ports(c.get("ports"), child(path, "ports")))
    errs.extend(validate_env(c.get("env"), child(path, "env")))
    errs.extend(validate_env_from(c.get("envFrom"), child(path, "envFrom")))
    errs.extend(validate_volume_mounts(c.get("volumeMounts"), volumes, child(path, "volumeMounts")))
    errs.extend(validate_enum(c.get("imagePullPolicy"), child(path, "imagePullPolicy"),
                              PULL_POLICIES))
    errs.extend(validate_resources(c.get("resources"), child(path, "resources")))
    errs.extend(_validate_security_context(c.get("securityContext"),
                                           child(path, "securityContext")))
    return errs


def _host_port_conflicts(containers: list[Any], path: str, seen: set[str]) -> list[FieldError]:
    errs: list[FieldError] = []
    for ci, c in enumerate(containers):
        for pi, port in enumerate(as_list(as_dict(c).get("ports"))):
            port = as_dict(port)
            hp = port.get("hostPort")
            if not hp:
                continue
            text = f"{as_str(port.get('hostIP'))}/{as_str(port.get('protocol'))}/{hp}"
            if text in seen:
                errs.append(duplicate(child(index(child(index(path, ci), "ports"), pi),
                                            "hostPort"), text))
            seen.add(text)
    return errs


def _validate_containers(spec: dict[str, Any], volumes: set[str], path: str) -> list[FieldError]:
    containers = as_list(spec.get("containers"))
    if not containers:
        return [required(path)]
    errs: list[FieldError] = []
    names: set[str] = set()
    for i, c in enumerate(containers):
        p, c = index(path, i), as_dict(c)
        errs.extend(_validate_container_common(c, volumes, p))
        name = as_str(c.get("name"))
        if name in names:
            errs.append(duplicate(child(p, "name"), name))
        names.add(name)
        errs.extend(_validate_lifecycle(c.get("lifecycle"), child(p, "lifecycle")))
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            errs.extend(_validate_probe(c.get(probe), child(p, probe), probe))
        if c.get("restartPolicy") is not None:
            errs.append(forbidden(child(p, "restartPolicy"),
                                  "may not be set for non-init containers"))
    errs.extend(_host_port_conflicts(containers, path, set()))
    return errs


def _validate_init_containers(spec: dict[str, Any], volumes: set[str],
                              path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    names = {as_str(as_dict(c).get("name")) for c in as_list(spec.get("containers"))}
    for i, c in enumerate(as_list(spec.get("initContainers"))):
        p, c = index(path, i), as_dict(c)
        errs.extend(_validate_container_common(c, volumes, p))
        restart_always = False
        if c.get("restartPolicy") is not None:
            if c["restartPolicy"] != "Always":
                errs.append(not_supported(child(p, "restartPolicy"), c["restartPolicy"],
                                          ["Always"]))
            restart_always = c["restartPolicy"] == "Always"
        name = as_str(c.get("name"))
        if name in names:
            errs.append(duplicate(child(p, "name"), name))
        elif name:
            names.add(name)
        errs.extend(_host_port_conflicts([c], path, set()))
        if restart_always:
            # Sidecar containers take the regular containers' probes and hooks.
            errs.extend(_validate_lifecycle(c.get("lifecycle"), child(p, "lifecycle")))
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                errs.extend(_validate_probe(c.get(probe), child(p, probe), probe))
        else:
            for fld in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
                if c.get(fld) is not None:
                    errs.append(forbidden(child(p, fld), "may not be set for init containers "
                                                         "without restartPolicy=Always"))
    return errs


# --- pod-level fields --------------------------------------------------------------------

def validate_tolerations(tolerations: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, t in enumerate(as_list(tolerations)):
        p, t = index(path, i), as_dict(t)
        k, op, effect = as_str(t.get("key")), as_str(t.get("operator")), as_str(t.get("effect"))
        if k:
            errs.extend(validate_qualified_name(k, child(p, "key")))
        if not k and op != "Exists":
            errs.append(invalid(child(p, "operator"), op, "operator must be Exists when `key` is "
                                "empty, which means \"match all values and all keys\""))
        if t.get("tolerationSeconds") is not None and effect != "NoExecute":
            errs.append(invalid(child(p, "effect"), effect,
                                "effect must be 'NoExecute' when `tolerationSeconds` is set"))
        value = as_str(t.get("value"))
        if op in ("Equal", ""):
            msgs = is_valid_label_value(value)
            if msgs:
                errs.append(invalid(child(p, "operator"), value, ";".join(msgs)))
        elif op == "Exists":
            if value:
                errs.append(invalid(child(p, "operator"), t,
                                    "value must be empty when `operator` is 'Exists'"))
        else:
            errs.append(not_supported(child(p, "operator"), op, ["Equal", "Exists"]))
        if effect and effect not in TAINT_EFFECTS:
            errs.append(not_supported(child(p, "effect"), effect, TAINT_EFFECTS))
    return errs


def _validate_dns_config(spec: dict[str, Any], path: str) -> list[FieldError]:
    cfg = spec.get("dnsConfig")
    if spec.get("dnsPolicy") == "None":
        if cfg is None:
            return [required(path, "must provide `dnsConfig` when `dnsPolicy` is None")]
        if not as_list(as_dict(cfg).get("nameservers")):
            return [required(child(path, "nameservers"),
                             "must provide at least one DNS nameserver when `dnsPolicy` is None")]
    if cfg is None:
        return []
    cfg = as_dict(cfg)
    errs: list[FieldError] = []
    nameservers = as_list(cfg.get("nameservers"))
    if len(nameservers) > 3:
        errs.append(invalid(child(path, "nameservers"), go_strings(nameservers),
                            "must not have more than 3 nameservers"))
    for i, ns in enumerate(nameservers):
        errs.extend(validate_ip(as_str(ns), index(child(path, "nameservers"), i)))
    searches = [as_str(s) for s in as_list(cfg.get("searches"))]
    if len(searches) > 32:
        errs.append(invalid(child(path, "searches"), go_strings(searches),
                            "must not have more than 32 search paths"))
    if len(" ".join(searches)) > 2048:
        errs.append(invalid(child(path, "searches"), go_strings(searches), "must not have more "
                            "than 2048 characters (including spaces) in the search list"))
    for i, s in enumerate(searches):
        if i == 0 and s == ".":
            continue
        errs.extend(validate_dns1123_subdomain(s[:-1] if s.endswith(".") else s,
                                               index(child(path, "searches"), i)))
    for i, opt in enumerate(as_list(cfg.get("options"))):
        if not as_str(as_dict(opt).get("name")):
            errs.append(required(index(child(path, "options"), i), "must not be empty"))
    return errs


def validate_pod_spec(spec: Any, path: str) -> list[FieldError]:
    """ValidatePodSpec, in Kubernetes' order."""
    spec = as_dict(spec)
    errs: list[FieldError] = []
    if spec.get("terminationGracePeriodSeconds") is None:
        errs.append(required(child(path, "terminationGracePeriodSeconds")))
    vol_errs, volumes = validate_volumes(spec.get("volumes"), child(path, "volumes"))
    errs.extend(vol_errs)
    errs.extend(_validate_containers(spec, volumes, child(path, "containers")))
    errs.extend(_validate_init_containers(spec, volumes, child(path, "initContainers")))
    if spec.get("hostNetwork") is True:
        for ci, c in enumerate(as_list(spec.get("containers"))):
            for pi, port in enumerate(as_list(as_dict(c).get("ports"))):
                port = as_dict(port)
                hp = port.get("hostPort")
                if hp and hp != port.get("containerPort"):
                    errs.append(invalid(child(index(child(index(child(path, "containers"), ci),
                                                              "ports"), pi), "hostPort"),
                                        hp,
                                        "must match `containerPort` when `hostNetwork` is true"))
    errs.extend(validate_enum(spec.get("restartPolicy"), child(path, "restartPolicy"),
                              RESTART_POLICIES))
    errs.extend(validate_enum(spec.get("dnsPolicy"), child(path, "dnsPolicy"), DNS_POLICIES))
    errs.extend(validate_labels(spec.get("nodeSelector"), child(path, "nodeSelector")))
    sc = as_dict(spec.get("securityContext"))
    errs.extend(_validate_security_context(sc, child(path, "securityContext")))
    for fld in ("fsGroup",):
        v = sc.get(fld)
        if v is not None and (as_int(v) is None or not 0 <= v <= MAX_INT32):
            errs.append(invalid(child(path, "securityContext", fld), v,
                                inclusive_range_error(0, MAX_INT32)))
    errs.extend(_validate_dns_config(spec, child(path, "dnsConfig")))
    for fld in ("serviceAccountName", "nodeName"):
        v = as_str(spec.get(fld))
        if v:
            errs.extend(validate_dns1123_subdomain(v, child(path, fld)))
    ads = spec.get("activeDeadlineSeconds")
    if ads is not None and (as_int(ads) is None or not 1 <= ads <= MAX_INT32):
        errs.append(invalid(child(path, "activeDeadlineSeconds"), ads,
                            inclusive_range_error(1, MAX_INT32)))
    for fld in ("hostname", "subdomain"):
        v = as_str(spec.get(fld))
        if v:
            errs.extend(validate_dns1123_label(v, child(path, fld)))
    errs.extend(validate_tolerations(spec.get("tolerations"), child(path, "tolerations")))
    for i, alias in enumerate(as_list(spec.get("hostAliases"))):
        p = index(child(path, "hostAliases"), i)
        errs.extend(validate_ip(as_str(as_dict(alias).get("ip")), child(p, "ip")))
        for j, host in enumerate(as_list(as_dict(alias).get("hostnames"))):
            errs.extend(validate_dns1123_subdomain(as_str(host), index(child(p, "hostnames"), j)))
    return errs
