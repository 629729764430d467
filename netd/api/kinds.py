"""The registry of served resource types: what discovery lists and URLs resolve to.

Pure data. Shapes follow kube-apiserver's discovery (APIResource) for Kubernetes 1.32.
"""
from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
SUB_VERBS = ("get", "patch", "update")


@dataclass(frozen=True)
class Subresource:
    name: str                      # "status", "scale"
    kind: str                      # kind of the object the subresource speaks
    group: str = ""                # group/version of that kind when it differs (Scale)
    version: str = ""
    verbs: tuple[str, ...] = SUB_VERBS


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[Subresource, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    # Whether spec changes bump metadata.generation (kinds without spec/status split don't).
    has_status: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def group_resource(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def subresource(self, name: str) -> Subresource | None:
        for sub in self.subresources:
            if sub.name == name:
                return sub
        return None


_STATUS = Subresource("status", "")
_SCALE = Subresource("scale", "Scale", "autoscaling", "v1")


def _status(kind: str) -> Subresource:
    return Subresource("status", kind)


def _rt(group: str, version: str, kind: str, plural: str, namespaced: bool,
        short: tuple[str, ...] = (), categories: tuple[str, ...] = (),
        subs: tuple[str, ...] = (), has_status: bool = True) -> ResourceType:
    subresources: list[Subresource] = []
    for s in subs:
        if s == "status":
            subresources.append(_status(kind))
        elif s == "scale":
            subresources.append(_SCALE)
        else:
            # Connect-style subresources (pods/log, pods/exec …) are declared by kind.
            subresources.append(Subresource(s, kind, verbs=_CONNECT_VERBS.get(s, ("get",))))
    return ResourceType(group, version, kind, plural, kind.lower(), namespaced, short,
                        categories, tuple(subresources), has_status=has_status)


_CONNECT_VERBS: dict[str, tuple[str, ...]] = {
    "log": ("get",),
    "exec": ("create", "get"),
    "portforward": ("create", "get"),
    "attach": ("create", "get"),
    "binding": ("create",),
    "eviction": ("create",),
    "finalize": ("update",),
}

RESOURCES: tuple[ResourceType, ...] = (
    _rt("", "v1", "Namespace", "namespaces", False, ("ns",), subs=("status", "finalize")),
    _rt("", "v1", "Node", "nodes", False, ("no",), subs=("status",)),
    _rt("", "v1", "Pod", "pods", True, ("po",), ("all",),
        subs=("status", "log", "exec", "portforward", "attach", "binding", "eviction")),
    _rt("", "v1", "Service", "services", True, ("svc",), ("all",), subs=("status",)),
    _rt("", "v1", "Endpoints", "endpoints", True, ("ep",), has_status=False),
    _rt("", "v1", "ReplicationController", "replicationcontrollers", True, ("rc",), ("all",),
        subs=("status", "scale")),
    _rt("", "v1", "PersistentVolume", "persistentvolumes", False, ("pv",), subs=("status",)),
    _rt("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, ("pvc",),
        subs=("status",)),
    _rt("", "v1", "ConfigMap", "configmaps", True, ("cm",), has_status=False),
    _rt("", "v1", "Event", "events", True, ("ev",), has_status=False),
    _rt("apps", "v1", "Deployment", "deployments", True, ("deploy",), ("all",),
        subs=("status", "scale")),
    _rt("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), ("all",),
        subs=("status", "scale")),
    _rt("apps", "v1", "StatefulSet", "statefulsets", True, ("sts",), ("all",),
        subs=("status", "scale")),
    _rt("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",), ("all",), subs=("status",)),
    _rt("apps", "v1", "ControllerRevision", "controllerrevisions", True, has_status=False),
    _rt("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True, has_status=False),
    _rt("storage.k8s.io", "v1", "StorageClass", "storageclasses", False, ("sc",),
        has_status=False),
    _rt("coordination.k8s.io", "v1", "Lease", "leases", True, has_status=False),
)

# Kinds that exist only as subresource bodies or wrappers, never stored.
SCALE_GROUP, SCALE_VERSION = "autoscaling", "v1"


@dataclass
class Registry:
    """Lookups over RESOURCES by plural, kind, short name; built once."""

    types: tuple[ResourceType, ...] = RESOURCES
    _by_plural: dict[tuple[str, str], ResourceType] = field(default_factory=dict)
    _by_kind: dict[tuple[str, str], ResourceType] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for rt in self.types:
            self._by_plural[(rt.group, rt.plural)] = rt
            self._by_kind[(rt.group, rt.kind)] = rt

    def by_plural(self, group: str, plural: str) -> ResourceType | None:
        return self._by_plural.get((group, plural))

    def by_kind(self, group: str, kind: str) -> ResourceType | None:
        return self._by_kind.get((group, kind))

    def by_api_version_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        rt = self._by_kind.get((group, kind))
        if rt is None or rt.version != version:
            return None
        return rt

    def groups(self) -> list[tuple[str, str]]:
        """(group, version) pairs in discovery order, core ("") first."""
        seen: list[tuple[str, str]] = []
        for rt in self.types:
            gv = (rt.group, rt.version)
            if gv not in seen:
                seen.append(gv)
        return seen

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [rt for rt in self.types if rt.group == group and rt.version == version]

    def resolve(self, word: str) -> ResourceType | None:
        """What a CLI user means by `pods`, `pod`, `po`, `Pod` or `deployments.apps`."""
        word_l = word.lower()
        name, _, group = word_l.partition(".")
        for rt in self.types:
            if group and rt.group != group:
                continue
            if name in (rt.plural, rt.singular) or name in rt.short_names or \
                    name == rt.kind.lower():
                return rt
        return None


REGISTRY = Registry()


def resource(group: str, plural: str) -> ResourceType:
    """A served resource type that must exist (module-level constants of components)."""
    rt = REGISTRY.by_plural(group, plural)
    if rt is None:
        raise KeyError(f"{plural}.{group} is not served" if group else f"{plural} is not served")
    return rt
