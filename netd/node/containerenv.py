"""A container's environment and argv as the kubelet makes them (pure).

kubelet makeEnvironmentVariables: envFrom sources first (ConfigMap keys, with the
prefix; keys that are not valid variable names are skipped), then `env` in order,
each value `$(VAR)`-expanded against what is defined so far and the service
variables; service-link variables fill in only names not yet defined. Then command
and args are expanded against the final environment. `$$` escapes a `$`; a
reference to an undefined variable stays as written.
"""
from __future__ import annotations

import re
from typing import Any, Callable

from netd.api.servicelinks import service_env

Obj = dict[str, Any]
Lookup = Callable[[str, str], Obj | None]     # (namespace, name) -> object or None

_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


class EnvError(Exception):
    """A reference that cannot be satisfied (kubelet: CreateContainerConfigError)."""


def expand(text: str, env: dict[str, str]) -> str:
    """k8s.io/kubernetes/third_party/forked/golang/expansion semantics."""
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "$" and i + 1 < n:
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = text.find(")", i + 2)
                if end < 0:
                    out.append(text[i:])
                    break
                name = text[i + 2:end]
                out.append(env[name] if name in env else text[i:end + 1])
                i = end + 1
                continue
        out.append(ch)
        i += 1
    return "".join(out)


def _field_value(path: str, pod: Obj, node_name: str, pod_ip: str, host_ip: str) -> str:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']*)'\]", path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    if path in ("metadata.labels", "metadata.annotations"):
        items = meta.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    simple = {
        "metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName") or node_name,
        "spec.serviceAccountName": spec.get("serviceAccountName") or "default",
        "status.podIP": pod_ip, "status.podIPs": pod_ip, "status.hostIP": host_ip,
        "status.hostIPs": host_ip}
    if path in simple:
        return str(simple[path] or "")
    raise EnvError(f"unsupported fieldRef {path!r}")


def _resource_value(ref: Obj, container: Obj) -> str:
    resource = str(ref.get("resource") or "")
    kind, _, name = resource.partition(".")
    res = container.get("resources") or {}
    value = (res.get(kind) or {}).get(name)
    if value is None:
        # kubelet falls back to the node's allocatable (netd's nodes: 4 CPUs, 8Gi).
        value = {"cpu": "4", "memory": str(8 * 1024 ** 3),
                 "ephemeral-storage": str(100 * 1024 ** 3)}.get(name, "0")
    return str(value)


def container_env(pod: Obj, container: Obj, *, services: list[Obj], configmaps: Lookup,
                  node_name: str, pod_ip: str, host_ip: str) -> dict[str, str]:
    ns = (pod.get("metadata") or {}).get("namespace") or "default"
    spec = pod.get("spec") or {}
    env: dict[str, str] = {}
    for src in container.get("envFrom") or []:
        ref = src.get("configMapRef") if isinstance(src, dict) else None
        if not isinstance(ref, dict):
            continue
        cm = configmaps(ns, str(ref.get("name") or ""))
        if cm is None:
            if ref.get("optional"):
                continue
            raise EnvError(f'configmap "{ref.get("name")}" not found')
        prefix = str(src.get("prefix") or "")
        for k, v in (cm.get("data") or {}).items():
            if _ENV_NAME.match(prefix + k):
                env[prefix + k] = str(v)
    svc = {e["name"]: str(e["value"]) for e in service_env(
        services, ns, spec.get("enableServiceLinks", True) is not False)}
    for var in container.get("env") or []:
        if not isinstance(var, dict) or not var.get("name"):
            continue
        name = str(var["name"])
        source = var.get("valueFrom")
        if isinstance(source, dict):
            if isinstance(source.get("fieldRef"), dict):
                env[name] = _field_value(str(source["fieldRef"].get("fieldPath") or ""), pod,
                                         node_name, pod_ip, host_ip)
            elif isinstance(source.get("resourceFieldRef"), dict):
                env[name] = _resource_value(source["resourceFieldRef"], container)
            elif isinstance(source.get("configMapKeyRef"), dict):
                ref = source["configMapKeyRef"]
                cm = configmaps(ns, str(ref.get("name") or ""))
                key = str(ref.get("key") or "")
                data = (cm or {}).get("data") or {}
                if key in data:
                    env[name] = str(data[key])
                elif not ref.get("optional"):
                    if cm is None:
                        raise EnvError(f'configmap "{ref.get("name")}" not found')
                    raise EnvError(f'couldn\'t find key {key} in ConfigMap '
                                   f'{ns}/{ref.get("name")}')
            continue
        env[name] = expand(str(var.get("value") or ""), {**svc, **env})
    for k, v in svc.items():
        env.setdefault(k, v)
    return env


def expand_argv(argv: list[str], env: dict[str, str]) -> list[str]:
    return [expand(a, env) for a in argv]
