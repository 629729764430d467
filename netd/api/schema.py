"""A typed model of every served Kubernetes type's fields (the OpenAPI schema, compact).

Source: the generated model classes of the official Python client (`kubernetes==32.0.1`,
release-1.32, kubectl's minor).  They carry each type's JSON field names, field types,
field descriptions and required fields, but lose what OpenAPI says about a handful of
special types (IntOrString, Quantity, Time/MicroTime, RawExtension, FieldsV1), the group a
type belongs to, and the strategic-merge markers; the small tables below put those back
(facts taken from k8s.io/api v0.32 types.go).

The client's modules are *parsed*, not imported: importing `kubernetes.client` costs ~1.2 s,
reading the ~230 reachable model files costs a fraction of that, and a JSON cache in a
directory the caller passes makes later starts nearly free.

Type expressions are compact strings: "string" | "integer" | "number" | "boolean" |
"object" (free-form, never checked) | "[]<expr>" (list) | "{}<expr>" (map, string keys) |
a definition name such as "io.k8s.api.core.v1.PodSpec" (always contains a dot).
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from netd.api.kinds import REGISTRY, ResourceType

FORMAT = 3  # bump when the cached JSON shape or the tables change

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
RAW_EXTENSION = "io.k8s.apimachinery.pkg.runtime.RawExtension"
TIME = META + ".Time"
MICRO_TIME = META + ".MicroTime"
FIELDS_V1 = META + ".FieldsV1"

# Definition-name prefix per API group (how kube-openapi names Go packages).
GROUP_PACKAGE = {
    "": "io.k8s.api.core.v1", "apps": "io.k8s.api.apps.v1",
    "discovery.k8s.io": "io.k8s.api.discovery.v1", "storage.k8s.io": "io.k8s.api.storage.v1",
    "coordination.k8s.io": "io.k8s.api.coordination.v1",
    "autoscaling": "io.k8s.api.autoscaling.v1", "policy": "io.k8s.api.policy.v1",
    "meta": META,
}

# Client classes living in apimachinery's meta/v1 whatever kind first reaches them.
_META_CLASSES = {
    "V1ObjectMeta", "V1ListMeta", "V1OwnerReference", "V1ManagedFieldsEntry",
    "V1LabelSelector", "V1LabelSelectorRequirement", "V1Status", "V1StatusCause",
    "V1StatusDetails", "V1DeleteOptions", "V1Preconditions", "V1WatchEvent", "V1Condition",
}
# Core types first reached from a non-core kind (StorageClass.allowedTopologies).
_CORE_CLASSES = {"V1TopologySelectorTerm", "V1TopologySelectorLabelRequirement"}

# Fields the client types as `object`: IntOrString unless listed as raw/FieldsV1.
_OBJECT_FIELDS = {
    ("V1WatchEvent", "object"): RAW_EXTENSION,
    ("V1ControllerRevision", "data"): RAW_EXTENSION,
    ("V1ManagedFieldsEntry", "fieldsV1"): FIELDS_V1,
}
# resource.Quantity fields (the client flattens them to str / dict(str, str)).
_QUANTITY_FIELDS = {
    ("V1ResourceRequirements", "limits"), ("V1ResourceRequirements", "requests"),
    ("V1VolumeResourceRequirements", "limits"), ("V1VolumeResourceRequirements", "requests"),
    ("V1PersistentVolumeSpec", "capacity"), ("V1PersistentVolumeClaimStatus", "capacity"),
    ("V1PersistentVolumeClaimStatus", "allocatedResources"),
    ("V1NodeStatus", "capacity"), ("V1NodeStatus", "allocatable"),
    ("V1EmptyDirVolumeSource", "sizeLimit"), ("V1PodSpec", "overhead"),
    ("V1ContainerStatus", "allocatedResources"), ("V1ResourceFieldSelector", "divisor"),
}
_MICRO_TIME_FIELDS = {
    ("CoreV1Event", "eventTime"), ("V1LeaseSpec", "acquireTime"),
    ("V1LeaseSpec", "renewTime"),
}

# Strategic-merge and list-type markers: (client class, field) ->
# (x-kubernetes-patch-strategy, x-kubernetes-patch-merge-key, list-type, list-map-keys).
# Taken from the +patchStrategy/+listType markers of k8s.io/api v0.32; e.g. Node
# spec.taints is atomic there (no merge key), so it is atomic here too.
_MERGE: dict[tuple[str, str], tuple[str, str, str, tuple[str, ...]]] = {}


def _merge(classes: Sequence[str], fld: str, strategy: str, key: str, list_type: str = "map",
           map_keys: tuple[str, ...] | None = None) -> None:
    keys = map_keys if map_keys is not None else ((key,) if key else ())
    for cls in classes:
        _MERGE[(cls, fld)] = (strategy, key, list_type, keys)


_CONTAINERS = ("V1Container", "V1EphemeralContainer")
_merge(_CONTAINERS, "ports", "merge", "containerPort", map_keys=("containerPort", "protocol"))
_merge(_CONTAINERS, "env", "merge", "name")
_merge(_CONTAINERS, "volumeMounts", "merge", "mountPath")
_merge(_CONTAINERS, "volumeDevices", "merge", "devicePath")
_merge(("V1ContainerStatus",), "volumeMounts", "merge", "mountPath")
_merge(("V1ContainerStatus",), "allocatedResourcesStatus", "merge", "name")
for _f in ("containers", "initContainers", "ephemeralContainers", "imagePullSecrets",
           "schedulingGates"):
    _merge(("V1PodSpec",), _f, "merge", "name")
_merge(("V1PodSpec",), "volumes", "merge,retainKeys", "name")
_merge(("V1PodSpec",), "resourceClaims", "merge,retainKeys", "name")
_merge(("V1PodSpec",), "hostAliases", "merge", "ip")
_merge(("V1PodSpec",), "topologySpreadConstraints", "merge", "topologyKey",
       map_keys=("topologyKey", "whenUnsatisfiable"))
_merge(("V1PodStatus",), "podIPs", "merge", "ip")
_merge(("V1PodStatus",), "hostIPs", "merge", "ip", list_type="atomic", map_keys=())
_merge(("V1PodStatus",), "resourceClaimStatuses", "merge,retainKeys", "name")
_merge(("V1ServiceSpec",), "ports", "merge", "port", map_keys=("port", "protocol"))
_merge(("V1NodeStatus",), "addresses", "merge", "type")
_merge(("V1NodeSpec",), "podCIDRs", "merge", "", list_type="set")
_merge(("V1NodeSpec",), "taints", "", "", list_type="atomic")
_merge(("V1PodStatus", "V1NodeStatus", "V1NamespaceStatus", "V1ServiceStatus",
        "V1PersistentVolumeClaimStatus", "V1ReplicationControllerStatus",
        "V1DeploymentStatus", "V1ReplicaSetStatus", "V1StatefulSetStatus",
        "V1DaemonSetStatus"), "conditions", "merge", "type")
_merge(("V1ResourceRequirements",), "claims", "", "", map_keys=("name",))
_merge(("V1ObjectMeta",), "finalizers", "merge", "", list_type="set")
_merge(("V1ObjectMeta",), "ownerReferences", "merge", "uid")
_merge(("V1Endpoint",), "addresses", "", "", list_type="set")
_merge(("V1DeploymentSpec",), "strategy", "retainKeys", "", list_type="")

# Descriptions of the top-level kinds (the client keeps field docs, not type docs);
# `kubectl explain <kind>` prints them.
KIND_DESCRIPTIONS = {
    "Namespace": "Namespace provides a scope for Names. Use of multiple namespaces is optional.",
    "Node": "Node is a worker node in Kubernetes. Each node will have a unique identifier in "
            "the cache (i.e. in etcd).",
    "Pod": "Pod is a collection of containers that can run on a host. This resource is "
           "created by clients and scheduled onto hosts.",
    "Service": "Service is a named abstraction of software service (for example, mysql) "
               "consisting of local port (for example 3306) that the proxy listens on, and "
               "the selector that determines which pods will answer requests sent through "
               "the proxy.",
    "Endpoints": "Endpoints is a collection of endpoints that implement the actual service.",
    "ReplicationController": "ReplicationController represents the configuration of a "
                             "replication controller.",
    "PersistentVolume": "PersistentVolume (PV) is a storage resource provisioned by an "
                        "administrator. It is analogous to a node. More info: https://"
                        "kubernetes.io/docs/concepts/storage/persistent-volumes",
    "PersistentVolumeClaim": "PersistentVolumeClaim is a user's request for and claim to a "
                             "persistent volume",
    "ConfigMap": "ConfigMap holds configuration data for pods to consume.",
    "Event": "Event is a report of an event somewhere in the cluster.  Events have a limited "
             "retention time and triggers and messages may evolve with time.",
    "Binding": "Binding ties one object to another; for example, a pod is bound to a node "
               "by a scheduler.",
    "Deployment": "Deployment enables declarative updates for Pods and ReplicaSets.",
    "ReplicaSet": "ReplicaSet ensures that a specified number of pod replicas are running "
                  "at any given time.",
    "StatefulSet": "StatefulSet represents a set of pods with consistent identities.",
    "DaemonSet": "DaemonSet represents the configuration of a daemon set.",
    "ControllerRevision": "ControllerRevision implements an immutable snapshot of state "
                          "data.",
    "EndpointSlice": "EndpointSlice represents a subset of the endpoints that implement a "
                     "service.",
    "StorageClass": "StorageClass describes the parameters for a class of storage for which "
                    "PersistentVolumes can be dynamically provisioned.",
    "Lease": "Lease defines a lease concept.",
    "Scale": "Scale represents a scaling request for a resource.",
    "Eviction": "Eviction evicts a pod from its node subject to certain policies and safety "
                "constraints. This is a subresource of Pod.",
    "Status": "Status is a return value for calls that don't return other objects.",
    "DeleteOptions": "DeleteOptions may be provided when deleting an API object.",
    "WatchEvent": "Event represents a single event to a watched resource.",
}

# Kinds served besides the registry's: subresource bodies and meta wrappers.
# (group, version, kind, client class)
_EXTRA_KINDS = (
    ("autoscaling", "v1", "Scale", "V1Scale"),
    ("policy", "v1", "Eviction", "V1Eviction"),
    ("", "v1", "Binding", "V1Binding"),
    ("", "v1", "Status", "V1Status"),
)
# Kinds that meta/v1 types answer for in every served group-version.
_PER_GROUP_META = (("DeleteOptions", "V1DeleteOptions"), ("WatchEvent", "V1WatchEvent"))


@dataclass(frozen=True)
class Field:
    name: str                     # JSON name
    type: str                     # type expression (module docstring)
    description: str = ""
    required: bool = False
    patch_strategy: str = ""      # x-kubernetes-patch-strategy
    patch_merge_key: str = ""     # x-kubernetes-patch-merge-key
    list_type: str = ""           # x-kubernetes-list-type
    list_map_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class TypeDef:
    name: str                     # OpenAPI definition name
    description: str = ""
    fields: dict[str, Field] = field(default_factory=dict)
    gvks: tuple[tuple[str, str, str], ...] = ()   # x-kubernetes-group-version-kind
    # "" for a struct; otherwise one of the special scalar types (leaf for field checks).
    special: str = ""


_SPECIALS = (
    TypeDef(INT_OR_STRING, "IntOrString is a type that can hold an int32 or a string.",
            special="int-or-string"),
    TypeDef(QUANTITY, "Quantity is a fixed-point representation of a number, e.g. 500m "
            "or 2Gi.", special="quantity"),
    TypeDef(TIME, "Time is a wrapper around time.Time which supports correct marshaling to "
            "YAML and JSON.", special="time"),
    TypeDef(MICRO_TIME, "MicroTime is version of Time with microsecond level precision.",
            special="micro-time"),
    TypeDef(RAW_EXTENSION, "RawExtension is used to hold extensions in external versions.",
            special="raw-extension"),
    TypeDef(FIELDS_V1, "FieldsV1 stores a set of fields in a data structure like a Trie, "
            "in JSON format.", special="fields-v1"),
)


def is_ref(expr: str) -> bool:
    return "." in expr and not expr.startswith(("[]", "{}"))


def element(expr: str) -> str:
    """The element type of a list or map expression."""
    return expr[2:]


class Schema:
    """Every definition by name, plus (group, version, kind) -> definition name."""

    def __init__(self, types: dict[str, TypeDef],
                 kinds: dict[tuple[str, str, str], str]) -> None:
        self.types = types
        self.kinds = kinds
        self._by_kind: dict[str, str] = {}
        for (_g, _v, kind), name in kinds.items():
            self._by_kind.setdefault(kind, name)

    def type(self, name: str) -> TypeDef:
        return self.types[name]

    def definition_name(self, kind: str, api_version: str | None = None) -> str | None:
        if api_version is None:
            return self._by_kind.get(kind)
        group, _, version = api_version.rpartition("/")
        return self.kinds.get((group, version, kind))

    def type_of(self, kind: str, api_version: str | None = None) -> TypeDef | None:
        name = self.definition_name(kind, api_version)
        return self.types.get(name) if name else None

    def field(self, type_name: str, json_name: str) -> Field | None:
        td = self.types.get(type_name)
        return td.fields.get(json_name) if td else None

    def field_at(self, kind: str, path: Sequence[str],
                 api_version: str | None = None) -> Field | None:
        """The field at a dotted path of JSON names; lists and maps are stepped through."""
        name = self.definition_name(kind, api_version)
        found: Field | None = None
        for part in path:
            if name is None:
                return None
            found = self.field(name, part)
            if found is None:
                return None
            expr = found.type
            while expr.startswith(("[]", "{}")):
                expr = element(expr)
            name = expr if is_ref(expr) else None
        return found

    def reachable(self, roots: Sequence[str]) -> Iterator[str]:
        """Definition names reachable from roots (roots included), each once."""
        seen: set[str] = set()
        stack = [r for r in roots if r in self.types]
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            yield name
            for f in self.types[name].fields.values():
                expr = f.type
                while expr.startswith(("[]", "{}")):
                    expr = element(expr)
                if is_ref(expr) and expr not in seen and expr in self.types:
                    stack.append(expr)

    # -- JSON round trip for the cache -------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        types = {}
        for name, td in self.types.items():
            types[name] = {
                "d": td.description, "g": [list(g) for g in td.gvks], "s": td.special,
                "f": [[f.name, f.type, f.description, f.required, f.patch_strategy,
                       f.patch_merge_key, f.list_type, list(f.list_map_keys)]
                      for f in td.fields.values()],
            }
        return {"format": FORMAT, "types": types,
                "kinds": [[g, v, k, n] for (g, v, k), n in self.kinds.items()]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Schema:
        types: dict[str, TypeDef] = {}
        for name, t in data["types"].items():
            fields = {f[0]: Field(f[0], f[1], f[2], f[3], f[4], f[5], f[6], tuple(f[7]))
                      for f in t["f"]}
            types[name] = TypeDef(name, t["d"], fields,
                                  tuple((g[0], g[1], g[2]) for g in t["g"]), t["s"])
        kinds = {(g, v, k): n for g, v, k, n in data["kinds"]}
        return cls(types, kinds)


# -- reading the client's model sources ---------------------------------------------------

_IMPORT_RE = re.compile(r"^from kubernetes\.client\.models\.(\w+) import (\w+)$", re.M)
_TYPES_RE = re.compile(r"openapi_types = \{(.*?)\n    \}", re.S)
_MAP_RE = re.compile(r"attribute_map = \{(.*?)\n    \}", re.S)
_PAIR_RE = re.compile(r"'(\w+)': '([^']+)'")
_REQUIRED_RE = re.compile(r"Invalid value for `(\w+)`, must not be `None`")
_GETTER_RE = re.compile(
    r'"""Gets the (\w+) of this \w+\.  # noqa: E501\n(.*?):return:', re.S)
_ESCAPE_RE = re.compile(r"\\(.)")
_ESCAPES = {"n": "\n", "t": "\t"}


@dataclass
class _RawClass:
    name: str
    types: dict[str, str]          # python attr -> client type
    json: dict[str, str]           # python attr -> JSON name
    required: set[str]
    docs: dict[str, str]


def _models_dir() -> Path:
    import importlib.util  # local: only needed when the cache misses
    spec = importlib.util.find_spec("kubernetes")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the kubernetes client package is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "client" / "models"


def _client_version(models: Path) -> str:
    text = (models.parent.parent / "__init__.py").read_text()
    m = re.search(r"__version__ = \"([^\"]+)\"", text)
    return m.group(1) if m else "unknown"


def _unescape(s: str) -> str:
    return _ESCAPE_RE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(1)), s)


def _read_class(models: Path, module: str, name: str) -> _RawClass:
    text = (models / f"{module}.py").read_text(encoding="utf-8")
    tm, mm = _TYPES_RE.search(text), _MAP_RE.search(text)
    types = dict(_PAIR_RE.findall(tm.group(1))) if tm else {}
    jmap = dict(_PAIR_RE.findall(mm.group(1))) if mm else {}
    docs: dict[str, str] = {}
    for attr, body in _GETTER_RE.findall(text):
        doc = body.strip()
        if doc.endswith("# noqa: E501"):
            doc = doc[: -len("# noqa: E501")].rstrip()
        docs[attr] = _unescape(doc)
    return _RawClass(name, types, jmap, set(_REQUIRED_RE.findall(text)), docs)


class _Builder:
    def __init__(self, models: Path) -> None:
        self.models = models
        index = (models / "__init__.py").read_text()
        self.modules = {cls: mod for mod, cls in _IMPORT_RE.findall(index)}
        self.raw: dict[str, _RawClass] = {}
        self.def_name: dict[str, str] = {}       # client class -> definition name
        self.types: dict[str, TypeDef] = {s.name: s for s in _SPECIALS}
        self.kinds: dict[tuple[str, str, str], str] = {}

    def class_for(self, group: str, version: str, kind: str) -> str:
        candidates = [f"{version.capitalize()}{kind}"]
        prefix = "Core" if not group else group.split(".")[0].capitalize()
        candidates.insert(0, f"{prefix}{version.capitalize()}{kind}")
        for c in candidates:
            if c in self.modules:
                return c
        raise KeyError(f"no client model for {group}/{version} {kind}")

    def add_root(self, group: str, cls: str) -> str:
        """Walk cls and everything it references, naming each by its package."""
        stack = [cls]
        while stack:
            c = stack.pop()
            if c in self.def_name:
                continue
            raw = self.raw[c] = _read_class(self.models, self.modules[c], c)
            pkg_group = "meta" if c in _META_CLASSES else "" if c in _CORE_CLASSES else group
            if c.startswith("Core"):
                pkg_group = ""
            short = re.sub(r"^[A-Za-z]*?V\d+(?:(?:alpha|beta)\d+)?(?=[A-Z])", "", c)
            self.def_name[c] = f"{GROUP_PACKAGE[pkg_group]}.{short}"
            for t in raw.types.values():
                inner = re.sub(r"^(list\[|dict\(str, )", "", t).rstrip("])")
                if inner in self.modules and inner not in self.def_name:
                    stack.append(inner)
        return self.def_name[cls]

    def expr(self, cls: str, attr: str, ctype: str) -> str:
        jname = self.raw[cls].json.get(attr, attr)
        if ctype.startswith("list["):
            return "[]" + self.expr(cls, attr, ctype[5:-1])
        if ctype.startswith("dict(str, "):
            return "{}" + self.expr(cls, attr, ctype[10:-1])
        if (cls, jname) in _QUANTITY_FIELDS:
            return QUANTITY
        if ctype == "object":
            return _OBJECT_FIELDS.get((cls, jname), INT_OR_STRING if jname in {
                "port", "targetPort", "maxSurge", "maxUnavailable", "minAvailable",
                "partition"} else "object")
        if ctype == "datetime":
            return MICRO_TIME if (cls, jname) in _MICRO_TIME_FIELDS else TIME
        prim = {"str": "string", "int": "integer", "float": "number", "bool": "boolean",
                "date": "string"}.get(ctype)
        if prim:
            return prim
        return self.def_name[ctype]

    def finish(self) -> Schema:
        gvks: dict[str, list[tuple[str, str, str]]] = {}
        for (g, v, k), name in self.kinds.items():
            gvks.setdefault(name, []).append((g, v, k))
        for cls, raw in self.raw.items():
            name = self.def_name[cls]
            fields: dict[str, Field] = {}
            for attr, ctype in raw.types.items():
                jname = raw.json.get(attr, attr)
                strategy, key, ltype, mkeys = _MERGE.get((cls, jname), ("", "", "", ()))
                fields[jname] = Field(jname, self.expr(cls, attr, ctype),
                                      raw.docs.get(attr, ""), attr in raw.required,
                                      strategy, key, ltype, mkeys)
            kind = next((k for _g, _v, k in gvks.get(name, [])), "")
            desc = KIND_DESCRIPTIONS.get(kind, "")
            if not desc and kind.endswith("List"):
                desc = f"{kind} is a list of {kind[:-4]} objects."
            self.types[name] = TypeDef(name, desc, fields, tuple(gvks.get(name, ())))
        return Schema(self.types, self.kinds)


def build_schema(resources: Sequence[ResourceType] = REGISTRY.types) -> Schema:
    """Build the schema from the installed client's model sources (uncached)."""
    b = _Builder(_models_dir())
    gvs: list[tuple[str, str]] = []
    for rt in resources:
        if (rt.group, rt.version) not in gvs:
            gvs.append((rt.group, rt.version))
        for kind in (rt.kind, rt.list_kind):
            b.kinds[(rt.group, rt.version, kind)] = b.add_root(
                rt.group, b.class_for(rt.group, rt.version, kind))
    for group, version, kind, cls in _EXTRA_KINDS:
        b.kinds[(group, version, kind)] = b.add_root(group, cls)
        if (group, version) not in gvs:
            gvs.append((group, version))
    for kind, cls in _PER_GROUP_META:
        name = b.add_root("meta", cls)
        for g, v in gvs:
            b.kinds.setdefault((g, v, kind), name)
    return b.finish()


_SCHEMA: Schema | None = None


def get_schema(cache_dir: str | os.PathLike[str] | None = None) -> Schema:
    """The schema, built once per process; with cache_dir, also cached on disk as JSON."""
    global _SCHEMA
    if _SCHEMA is not None:
        return _SCHEMA
    path: Path | None = None
    if cache_dir is not None:
        models = _models_dir()
        path = Path(cache_dir) / f"schema-k8s{_client_version(models)}-f{FORMAT}.json"
        try:
            data = json.loads(path.read_text())
            if data.get("format") == FORMAT:
                _SCHEMA = Schema.from_json(data)
                return _SCHEMA
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            pass  # missing or stale cache: rebuild below
    schema = build_schema()
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(schema.to_json(), separators=(",", ":")))
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only cache directory only costs start time
    _SCHEMA = schema
    return schema
