"""Strategic-merge metadata: Kubernetes' `patchStrategy` / `patchMergeKey` struct tags.

Transcribed from k8s.io/api core/v1, apps/v1 (v0.32) and apimachinery meta/v1 types.go,
for the kinds netd serves. A path that is not described here behaves like a field
without tags upstream: maps merge recursively, lists are replaced whole (the same as a
JSON merge patch, which is also what custom resources get).

Notable upstream facts kept on purpose: Node `spec.taints` and Service `spec.selector`
carry no tags (taints replace as a whole list); Deployment `spec.strategy` is
`retainKeys` so switching to Recreate can drop `rollingUpdate`.
"""
from __future__ import annotations

from dataclasses import dataclass

MERGE = "merge"
REPLACE = "replace"


@dataclass(frozen=True)
class FieldMeta:
    strategy: str = ""        # "" (default: replace lists, merge maps), "merge", "replace"
    merge_key: str = ""       # for lists of maps with strategy "merge"
    retain_keys: bool = False  # the `retainKeys` half of e.g. "merge,retainKeys"
    type: str = ""            # the struct type of the value (or of list elements)


def _m(key: str = "", type_: str = "", retain: bool = False) -> FieldMeta:
    return FieldMeta(MERGE, key, retain, type_)


def _t(type_: str, retain: bool = False) -> FieldMeta:
    return FieldMeta("", "", retain, type_)


_CONDITIONS = _m("type")

# struct type -> json field -> metadata. Only fields with tags or with tagged descendants.
TYPES: dict[str, dict[str, FieldMeta]] = {
    "ObjectMeta": {
        "ownerReferences": _m("uid"),
        "finalizers": _m(),
    },
    "Container": {
        "ports": _m("containerPort"),
        "env": _m("name"),
        "volumeMounts": _m("mountPath"),
        "volumeDevices": _m("devicePath"),
    },
    "PodSpec": {
        "volumes": _m("name", retain=True),
        "initContainers": _m("name", "Container"),
        "containers": _m("name", "Container"),
        # EphemeralContainerCommon repeats Container's tags.
        "ephemeralContainers": _m("name", "Container"),
        "imagePullSecrets": _m("name"),
        "hostAliases": _m("ip"),
        "topologySpreadConstraints": _m("topologyKey"),
        "schedulingGates": _m("name"),
        "resourceClaims": _m("name", retain=True),
    },
    "PodStatus": {
        "conditions": _CONDITIONS,
        "hostIPs": _m("ip"),
        "podIPs": _m("ip"),
        "resourceClaimStatuses": _m("name", retain=True),
    },
    "PodTemplateSpec": {"metadata": _t("ObjectMeta"), "spec": _t("PodSpec")},
    "ConditionsStatus": {"conditions": _CONDITIONS},
    "ServiceSpec": {"ports": _m("port")},
    "NodeSpec": {"podCIDRs": _m()},
    "NodeStatus": {"conditions": _CONDITIONS, "addresses": _m("type")},
    "TemplateSpec": {"template": _t("PodTemplateSpec")},
    "DeploymentSpec": {"template": _t("PodTemplateSpec"),
                       "strategy": _t("", retain=True)},
    "StatefulSetSpec": {"template": _t("PodTemplateSpec"),
                        "volumeClaimTemplates": _t("PersistentVolumeClaim")},
}

_OBJECT_META = _t("ObjectMeta")
# Top-level kinds: ObjectMeta plus their spec/status types. The kinds with an empty entry
# (and any unknown kind, e.g. a CRD) have nothing tagged beyond metadata.
_KINDS: dict[str, dict[str, FieldMeta]] = {
    "Pod": {"spec": _t("PodSpec"), "status": _t("PodStatus")},
    "Service": {"spec": _t("ServiceSpec"), "status": _t("ConditionsStatus")},
    "Node": {"spec": _t("NodeSpec"), "status": _t("NodeStatus")},
    "Namespace": {"status": _t("ConditionsStatus")},
    "PersistentVolumeClaim": {"status": _t("ConditionsStatus")},
    "ReplicationController": {"spec": _t("TemplateSpec"), "status": _t("ConditionsStatus")},
    "ReplicaSet": {"spec": _t("TemplateSpec"), "status": _t("ConditionsStatus")},
    "DaemonSet": {"spec": _t("TemplateSpec"), "status": _t("ConditionsStatus")},
    "Deployment": {"spec": _t("DeploymentSpec"), "status": _t("ConditionsStatus")},
    "StatefulSet": {"spec": _t("StatefulSetSpec"), "status": _t("ConditionsStatus")},
    "PodTemplate": {"template": _t("PodTemplateSpec")},
    "_Unknown": {},
}
TYPES.update({kind: {"metadata": _OBJECT_META, **fields} for kind, fields in _KINDS.items()})

_DEFAULT = FieldMeta()


@dataclass(frozen=True)
class Schema:
    """A cursor into TYPES: what `LookupPatchMeta` is upstream. Unknown names are untagged."""

    name: str = ""

    def lookup(self, key: str) -> tuple["Schema", FieldMeta]:
        meta = TYPES.get(self.name, {}).get(key, _DEFAULT)
        return Schema(meta.type), meta


def schema_for_kind(kind: str) -> Schema:
    """The schema of a top-level kind; unknown kinds (CRDs) still get ObjectMeta's tags."""
    return Schema(kind if kind in _KINDS else "_Unknown")

