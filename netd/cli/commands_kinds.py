"""What the user means by `pods`, `po`, `deploy/web`, `pods,svc`, `all` or
`deployments.v1.apps`: kubectl's resource-argument grammar over netd's kinds.

netd serves exactly the kinds in netd.api.kinds, so resolving against that registry
gives the same answers as discovery without a round trip per command.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

from netd.api.kinds import REGISTRY, Registry, ResourceType


class UsageError(Exception):
    """A command line kubectl would refuse (printed as `error: ...`, exit 1)."""


@dataclass
class Selection:
    """One resource type and the names asked for (empty: all of them)."""

    rt: ResourceType
    names: list[str] = field(default_factory=list)


def resolve(word: str, registry: Registry = REGISTRY) -> ResourceType:
    """`pods`, `pod`, `po`, `Pod`, `deployments.apps`, `deployments.v1.apps`."""
    rt = registry.resolve(word)
    if rt is None:
        # resource.version.group, the fully qualified form kubectl also accepts.
        parts = word.lower().split(".")
        if len(parts) >= 3:
            cand = registry.resolve(parts[0] + "." + ".".join(parts[2:]))
            if cand is not None and cand.version == parts[1]:
                rt = cand
        elif len(parts) == 2 and parts[1].startswith("v") and parts[1][1:2].isdigit():
            cand = registry.resolve(parts[0])
            if cand is not None and cand.group == "" and cand.version == parts[1]:
                rt = cand
    if rt is None:
        raise UsageError(f'the server doesn\'t have a resource type "{word}"')
    return rt


def category(name: str, registry: Registry = REGISTRY) -> list[ResourceType]:
    """Members of a category (`all`) in discovery order: group by group, and within
    a group by resource name, which is how kube-apiserver lists them."""
    out: list[ResourceType] = []
    for group, version in registry.groups():
        members = [rt for rt in registry.in_group_version(group, version)
                   if name in rt.categories]
        out += sorted(members, key=lambda rt: rt.plural)
    return out


def _types(spec: str, registry: Registry) -> list[ResourceType]:
    out: list[ResourceType] = []
    for word in spec.split(","):
        if not word:
            continue
        members = category(word.lower(), registry)
        for rt in members or [resolve(word, registry)]:
            if rt not in out:
                out.append(rt)
    return out


def parse_args(args: list[str], registry: Registry = REGISTRY) -> list[Selection]:
    """`TYPE[,TYPE...] [NAME...]` or `TYPE/NAME [TYPE/NAME...]`, as kubectl parses them."""
    if not args:
        raise UsageError("You must specify the type of resource to get. Use \"netd get "
                         "all\" or a type such as pods, services, deployments, nodes.")
    if "/" in args[0]:
        selections: list[Selection] = []
        for arg in args:
            if "/" not in arg:
                raise UsageError("there is no need to specify a resource type as a separate "
                                 "argument when passing arguments in resource/name form "
                                 "(e.g. 'netd get resource/<resource_name>' instead of "
                                 "'netd get resource resource/<resource_name>'")
            word, _, name = arg.partition("/")
            if not name:
                raise UsageError(f"arguments in resource/name form must have a single "
                                 f"resource and name")
            rt = resolve(word, registry)
            for sel in selections:
                if sel.rt == rt:
                    sel.names.append(name)
                    break
            else:
                selections.append(Selection(rt, [name]))
        return selections
    for arg in args[1:]:
        if "/" in arg:
            raise UsageError("there is no need to specify a resource type as a separate "
                             "argument when passing arguments in resource/name form "
                             "(e.g. 'netd get resource/<resource_name>' instead of "
                             "'netd get resource resource/<resource_name>'")
    types = _types(args[0], registry)
    names = list(args[1:])
    if names and len(types) > 1:
        raise UsageError("you must specify only one resource type when naming objects")
    return [Selection(rt, list(names)) for rt in types]


def collection_path(rt: ResourceType, namespace: str | None) -> str:
    """REST path of a collection; namespace None lists across all namespaces."""
    base = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    if rt.namespaced and namespace is not None:
        return f"{base}/namespaces/{namespace}/{rt.plural}"
    return f"{base}/{rt.plural}"


def object_path(rt: ResourceType, namespace: str, name: str, sub: str = "") -> str:
    path = collection_path(rt, namespace if rt.namespaced else None) + "/" + quote(name, safe="")
    return path + "/" + sub if sub else path
