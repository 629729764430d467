"""The schema built from the official client's models, and unknown-field detection."""
from __future__ import annotations

from typing import Any

import pytest
import yaml

from netd.api import schema as S
from netd.api.fieldcheck import strict_error_message, unknown_fields, warnings
from netd.api.kinds import REGISTRY

# The seeds' manifests (001: PVs + headless Service + StatefulSet), verbatim.
SEED_MANIFESTS = """
apiVersion: v1
kind: PersistentVolume
metadata:
  name: pv001
  labels:
    name: pv001
spec:
  nfs:
    path: /data/volumes/v1
    server: nfs1
  accessModes: ["ReadWriteMany","ReadWriteOnce"]
  capacity:
    storage: 2Gi
---
apiVersion: v1
kind: Service
metadata:
  name: myapp
  labels:
    app: myapp
spec:
  ports:
  - port: 80
    name: web
  clusterIP: None
  selector:
    app: myapp-pod
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: myapp
spec:
  serviceName: myapp
  replicas: 3
  selector:
    matchLabels:
      app: myapp-pod
  template:
    metadata:
      labels:
        app: myapp-pod
    spec:
      containers:
      - name: myapp
        image: ikubernetes/myapp:v1
        ports:
        - containerPort: 80
          name: web
        volumeMounts:
        - name: myappdata
          mountPath: /usr/share/nginx/html
  volumeClaimTemplates:
  - metadata:
      name: myappdata
    spec:
      accessModes: [ "ReadWriteOnce" ]
      resources:
        requests:
          storage: 2Gi
"""


@pytest.fixture(scope="module")
def sch() -> S.Schema:
    return S.get_schema()


def _seeds() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(SEED_MANIFESTS) if d]


# -- schema ------------------------------------------------------------------------------

def test_every_served_kind_and_list_has_a_definition_with_its_gvk(sch: S.Schema) -> None:
    for rt in REGISTRY.types:
        for kind in (rt.kind, rt.list_kind):
            td = sch.type_of(kind, rt.api_version)
            assert td is not None, kind
            assert (rt.group, rt.version, kind) in td.gvks
            assert {"apiVersion", "kind", "metadata"} <= set(td.fields)


@pytest.mark.parametrize("kind,api_version,name", [
    ("Pod", "v1", "io.k8s.api.core.v1.Pod"),
    ("Event", "v1", "io.k8s.api.core.v1.Event"),
    ("EndpointSlice", "discovery.k8s.io/v1", "io.k8s.api.discovery.v1.EndpointSlice"),
    ("Scale", "autoscaling/v1", "io.k8s.api.autoscaling.v1.Scale"),
    ("Eviction", "policy/v1", "io.k8s.api.policy.v1.Eviction"),
    ("Status", "v1", S.META + ".Status"),
    ("DeleteOptions", "apps/v1", S.META + ".DeleteOptions"),
    ("WatchEvent", "v1", S.META + ".WatchEvent"),
    ("Deployment", "v1", None),  # wrong group-version
], ids=["pod", "core-event", "endpointslice", "scale", "eviction", "status",
        "deleteoptions-apps", "watchevent", "wrong-gv"])
def test_definition_names(sch: S.Schema, kind: str, api_version: str, name: str | None) -> None:
    assert sch.definition_name(kind, api_version) == name


@pytest.mark.parametrize("type_name,fld,expr", [
    ("io.k8s.api.core.v1.ServicePort", "targetPort", S.INT_OR_STRING),
    ("io.k8s.api.apps.v1.RollingUpdateDeployment", "maxSurge", S.INT_OR_STRING),
    ("io.k8s.api.core.v1.ResourceRequirements", "limits", "{}" + S.QUANTITY),
    ("io.k8s.api.core.v1.PersistentVolumeSpec", "capacity", "{}" + S.QUANTITY),
    ("io.k8s.api.core.v1.EmptyDirVolumeSource", "sizeLimit", S.QUANTITY),
    (S.META + ".ObjectMeta", "creationTimestamp", S.TIME),
    (S.META + ".ObjectMeta", "labels", "{}string"),
    ("io.k8s.api.coordination.v1.LeaseSpec", "renewTime", S.MICRO_TIME),
    ("io.k8s.api.apps.v1.ControllerRevision", "data", S.RAW_EXTENSION),
    (S.META + ".ManagedFieldsEntry", "fieldsV1", S.FIELDS_V1),
    ("io.k8s.api.core.v1.PodSpec", "containers", "[]io.k8s.api.core.v1.Container"),
    ("io.k8s.api.apps.v1.DeploymentSpec", "selector", S.META + ".LabelSelector"),
    ("io.k8s.api.storage.v1.StorageClass", "allowedTopologies",
     "[]io.k8s.api.core.v1.TopologySelectorTerm"),
    ("io.k8s.api.core.v1.ContainerPort", "containerPort", "integer"),
    ("io.k8s.api.core.v1.PodSpec", "hostNetwork", "boolean"),
], ids=["intorstring-targetport", "intorstring-maxsurge", "quantity-limits",
        "quantity-capacity", "quantity-sizelimit", "time", "labels-map", "microtime",
        "rawextension", "fieldsv1", "list-of-ref", "meta-package", "core-from-storage",
        "integer", "boolean"])
def test_field_types(sch: S.Schema, type_name: str, fld: str, expr: str) -> None:
    f = sch.field(type_name, fld)
    assert f is not None and f.type == expr


@pytest.mark.parametrize("type_name,fld,strategy,key,map_keys", [
    ("io.k8s.api.core.v1.PodSpec", "containers", "merge", "name", ("name",)),
    ("io.k8s.api.core.v1.PodSpec", "initContainers", "merge", "name", ("name",)),
    ("io.k8s.api.core.v1.PodSpec", "volumes", "merge,retainKeys", "name", ("name",)),
    ("io.k8s.api.core.v1.PodSpec", "imagePullSecrets", "merge", "name", ("name",)),
    ("io.k8s.api.core.v1.PodSpec", "hostAliases", "merge", "ip", ("ip",)),
    ("io.k8s.api.core.v1.PodSpec", "topologySpreadConstraints", "merge", "topologyKey",
     ("topologyKey", "whenUnsatisfiable")),
    ("io.k8s.api.core.v1.Container", "ports", "merge", "containerPort",
     ("containerPort", "protocol")),
    ("io.k8s.api.core.v1.Container", "env", "merge", "name", ("name",)),
    ("io.k8s.api.core.v1.Container", "volumeMounts", "merge", "mountPath", ("mountPath",)),
    ("io.k8s.api.core.v1.Container", "volumeDevices", "merge", "devicePath", ("devicePath",)),
    ("io.k8s.api.core.v1.EphemeralContainer", "env", "merge", "name", ("name",)),
    ("io.k8s.api.core.v1.ServiceSpec", "ports", "merge", "port", ("port", "protocol")),
    ("io.k8s.api.core.v1.PodStatus", "conditions", "merge", "type", ("type",)),
    ("io.k8s.api.apps.v1.DeploymentStatus", "conditions", "merge", "type", ("type",)),
    ("io.k8s.api.core.v1.NodeStatus", "addresses", "merge", "type", ("type",)),
    (S.META + ".ObjectMeta", "ownerReferences", "merge", "uid", ("uid",)),
    (S.META + ".ObjectMeta", "finalizers", "merge", "", ()),
    ("io.k8s.api.apps.v1.DeploymentSpec", "strategy", "retainKeys", "", ()),
    ("io.k8s.api.core.v1.NodeSpec", "taints", "", "", ()),
], ids=lambda v: v if isinstance(v, str) and "." not in v else None)
def test_strategic_merge_markers(sch: S.Schema, type_name: str, fld: str, strategy: str,
                                 key: str, map_keys: tuple[str, ...]) -> None:
    f = sch.field(type_name, fld)
    assert f is not None
    assert (f.patch_strategy, f.patch_merge_key, f.list_map_keys) == (strategy, key, map_keys)


@pytest.mark.parametrize("type_name,fld,required", [
    ("io.k8s.api.core.v1.Container", "name", True),
    ("io.k8s.api.core.v1.Container", "image", False),
    ("io.k8s.api.core.v1.ServicePort", "port", True),
    ("io.k8s.api.core.v1.PodSpec", "containers", True),
    ("io.k8s.api.apps.v1.StatefulSetSpec", "selector", True),
    ("io.k8s.api.core.v1.PodList", "items", True),
], ids=["container-name", "container-image", "serviceport-port", "podspec-containers",
        "sts-selector", "list-items"])
def test_required_fields(sch: S.Schema, type_name: str, fld: str, required: bool) -> None:
    f = sch.field(type_name, fld)
    assert f is not None and f.required is required


def test_descriptions_come_from_the_client(sch: S.Schema) -> None:
    f = sch.field("io.k8s.api.core.v1.Container", "name")
    assert f is not None and f.description.startswith("Name of the container")
    td = sch.type_of("Pod")
    assert td is not None and td.description.startswith("Pod is a collection of containers")
    # Escaped quotes in the generated docstrings come out unescaped.
    f = sch.field("io.k8s.api.core.v1.ContainerPort", "protocol")
    assert f is not None and '\\"' not in f.description and '"TCP"' in f.description


def test_field_at_steps_through_lists(sch: S.Schema) -> None:
    f = sch.field_at("StatefulSet", ["spec", "template", "spec", "containers", "ports"])
    assert f is not None and f.patch_merge_key == "containerPort"
    assert sch.field_at("Pod", ["spec", "nope"]) is None
    assert sch.field_at("Pod", ["metadata", "labels", "app"]) is None


def test_json_round_trip_is_identical(sch: S.Schema) -> None:
    again = S.Schema.from_json(sch.to_json())
    assert again.types == sch.types
    assert again.kinds == sch.kinds


def test_cache_dir_is_written_then_used(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(S, "_SCHEMA", None)
    first = S.get_schema(tmp_path)
    files = list(tmp_path.glob("schema-*.json"))
    assert len(files) == 1
    monkeypatch.setattr(S, "_SCHEMA", None)
    # A cache hit must not read the client's sources at all.
    monkeypatch.setattr(S, "build_schema", lambda: pytest.fail("cache ignored"))
    second = S.get_schema(tmp_path)
    assert second.types == first.types


def test_corrupt_cache_is_rebuilt(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(S, "_SCHEMA", None)
    S.get_schema(tmp_path)
    path = next(tmp_path.glob("schema-*.json"))
    path.write_text("{not json")
    monkeypatch.setattr(S, "_SCHEMA", None)
    assert S.get_schema(tmp_path).type_of("Pod") is not None
    assert path.read_text().startswith("{")


# -- unknown fields ----------------------------------------------------------------------

def test_seed_manifests_have_no_unknown_fields() -> None:
    docs = _seeds()
    assert [d["kind"] for d in docs] == ["PersistentVolume", "Service", "StatefulSet"]
    for d in docs:
        assert unknown_fields(d["kind"], d, d["apiVersion"]) == [], d["kind"]


def _sts() -> dict[str, Any]:
    return _seeds()[2]


def _mutate(path: str, value: Any = 1) -> dict[str, Any]:
    obj = _sts()
    cur: Any = obj
    parts = path.split(".")
    for p in parts[:-1]:
        cur = cur[int(p)] if p.isdigit() else cur[p]
    cur[parts[-1]] = value
    return obj


@pytest.mark.parametrize("path,expected", [
    ("spec.foo", ["spec.foo"]),
    ("foo", ["foo"]),
    ("spec.template.spec.containers.0.imagee", ["spec.template.spec.containers[0].imagee"]),
    ("spec.template.spec.containers.0.ports.0.hostPortt",
     ["spec.template.spec.containers[0].ports[0].hostPortt"]),
    ("spec.volumeClaimTemplates.0.spec.resources.limitz",
     ["spec.volumeClaimTemplates[0].spec.resources.limitz"]),
    ("metadata.labelz", ["metadata.labelz"]),
    ("spec.selector.matchLabelz", ["spec.selector.matchLabelz"]),
    # Free-form maps: any key is fine.
    ("metadata.labels", None),
    ("metadata.annotations", None),
    ("spec.template.metadata.labels", None),
    ("spec.volumeClaimTemplates.0.spec.resources.requests", None),
    ("spec.selector.matchLabels", None),
], ids=["spec-foo", "top-level", "imagee", "deep-list", "pvc-template", "meta-typo",
        "selector-typo", "labels", "annotations", "template-labels", "quantity-map",
        "matchlabels"])
def test_unknown_field_paths(path: str, expected: list[str] | None) -> None:
    value: Any = 1 if expected else {"anything.example.com/x": "y", "zzz": "1"}
    obj = _mutate(path, value)
    assert unknown_fields("StatefulSet", obj) == (expected or [])


@pytest.mark.parametrize("kind,obj", [
    ("ConfigMap", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                   "data": {"any-key": "v", "x.y": "z"}, "binaryData": {"b": "AA=="}}),
    ("ControllerRevision", {"apiVersion": "apps/v1", "kind": "ControllerRevision",
                            "metadata": {"name": "r"}, "revision": 1,
                            "data": {"spec": {"template": {"whatever": True}}}}),
    ("Pod", {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "p", "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {}}}]},
        "spec": {"containers": [{"name": "c", "image": "i",
                                 "resources": {"limits": {"cpu": "1", "memory": 5}}}]}}),
    ("Service", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                 "spec": {"ports": [{"port": 80, "targetPort": "http"}],
                          "selector": {"a": "b"}}}),
    ("Deployment", {"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": "d"},
                    "spec": {"strategy": {"rollingUpdate": {"maxSurge": "25%",
                                                            "maxUnavailable": 0}},
                             "selector": {"matchLabels": {"a": "b"}},
                             "template": {"spec": {"containers": None}}}}),
    ("Scale", {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "d"},
               "spec": {"replicas": 3}}),
], ids=["configmap-data", "rawextension", "fieldsv1-and-quantities", "intorstring",
        "deployment-nulls", "scale"])
def test_free_form_and_special_values_are_never_reported(kind: str, obj: dict[str, Any]) -> None:
    assert unknown_fields(kind, obj) == []


def test_multiple_unknown_fields_in_input_order() -> None:
    obj = {"apiVersion": "v1", "kind": "Service", "zeta": 1, "metadata": {"name": "s"},
           "spec": {"ports": [{"port": 1}, {"port": 2, "nodeport": 3}], "alpha": True}}
    paths = unknown_fields("Service", obj)
    assert paths == ["zeta", "spec.ports[1].nodeport", "spec.alpha"]
    assert strict_error_message(paths) == (
        'strict decoding error: unknown field "zeta", unknown field "spec.ports[1].nodeport", '
        'unknown field "spec.alpha"')
    assert warnings(paths[:1]) == ['unknown field "zeta"']


def test_unknown_kind_and_wrong_shapes_yield_nothing() -> None:
    assert unknown_fields("Widget", {"spec": {"x": 1}}) == []
    # Type errors are the decoder's business, not unknown fields.
    assert unknown_fields("Pod", {"spec": "oops", "metadata": ["x"]}) == []
