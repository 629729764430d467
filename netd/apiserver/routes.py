"""Parse Kubernetes REST paths into what they address. Pure."""
from __future__ import annotations

from dataclasses import dataclass

from netd.api import errors
from netd.api.kinds import REGISTRY, ResourceType


@dataclass(frozen=True)
class Target:
    rt: ResourceType
    namespace: str | None      # None: all namespaces (or cluster-scoped)
    name: str | None           # None: the collection
    subresource: str | None


def _not_found(path: str) -> errors.NotFound:
    return errors.NotFound("the server could not find the requested resource")


def parse_resource_path(path: str) -> Target | None:
    """`/api/v1/namespaces/default/pods/web-0/status` → Target. None when the path is
    a discovery path (`/api`, `/api/v1`, `/apis/apps`, `/apis/apps/v1`)."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return None
    if parts[0] == "api":
        if len(parts) < 2:
            return None
        group, version, rest = "", parts[1], parts[2:]
    elif parts[0] == "apis":
        if len(parts) < 3:
            return None
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise _not_found(path)
    if not rest:
        return None
    if not any(gv == (group, version) for gv in REGISTRY.groups()):
        raise _not_found(path)
    namespace: str | None = None
    # /namespaces/{ns}/{plural}... addresses namespaced objects, unless {plural} is a
    # subresource of the namespace object itself (status, finalize).
    if rest[0] == "namespaces" and len(rest) >= 3 and group == "":
        ns_rt = REGISTRY.by_plural("", "namespaces")
        assert ns_rt is not None
        if ns_rt.subresource(rest[2]) is not None and len(rest) == 3:
            return Target(ns_rt, None, rest[1], rest[2])
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    elif rest[0] == "namespaces" and len(rest) == 2 and group != "":
        raise _not_found(path)
    rt = REGISTRY.by_plural(group, rest[0])
    if rt is None or rt.version != version:
        raise _not_found(path)
    if namespace is not None and not rt.namespaced:
        raise _not_found(path)
    name = rest[1] if len(rest) >= 2 else None
    sub = rest[2] if len(rest) >= 3 else None
    if len(rest) > 3:
        raise _not_found(path)
    if sub is not None and rt.subresource(sub) is None:
        raise _not_found(path)
    if rt.namespaced and name is not None and namespace is None:
        raise _not_found(path)
    return Target(rt, namespace, name, sub)
