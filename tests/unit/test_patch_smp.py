"""Strategic merge patch with Kubernetes' merge keys, driven by the shapes kubectl sends."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from netd.api import errors
from netd.api.patch import apply_strategic_merge_patch, create_three_way_merge_patch
from netd.api.smp import PatchUnprocessable


def deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web", "x": "1"},
                     "finalizers": ["a.example/f"],
                     "ownerReferences": [{"uid": "u1", "name": "o1", "kind": "K"},
                                         {"uid": "u2", "name": "o2", "kind": "K"}]},
        "spec": {
            "replicas": 1, "unknownField": {"kept": True},
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "sidecar", "image": "proxy:1"},
                        {"name": "myapp", "image": "myapp:v1",
                         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                         "ports": [{"containerPort": 80, "name": "http"},
                                   {"containerPort": 443, "name": "https"}],
                         "volumeMounts": [{"mountPath": "/data", "name": "data"}]},
                    ],
                    "volumes": [{"name": "data", "emptyDir": {}},
                                {"name": "cfg", "configMap": {"name": "cfg"}}],
                },
            },
        },
        "status": {"conditions": [{"type": "Available", "status": "True"},
                                  {"type": "Progressing", "status": "True"}]},
    }


def _tpl(d: dict[str, Any]) -> dict[str, Any]:
    return d["spec"]["template"]["spec"]


def _c(d: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in _tpl(d)["containers"] if c["name"] == name)


# (id, patch, expected change applied to a fresh deployment())
KUBECTL_SHAPES: list[tuple[str, dict[str, Any], Any]] = [
    ("set-image",  # kubectl set image deployment/web myapp=myapp:v2
     {"spec": {"template": {"spec": {"containers": [{"name": "myapp", "image": "myapp:v2"}]}}}},
     lambda d: _c(d, "myapp").update(image="myapp:v2")),
    ("patch-replicas",  # kubectl patch -p '{"spec":{"replicas":4}}'
     {"spec": {"replicas": 4}}, lambda d: d["spec"].update(replicas=4)),
    ("rollout-restart",
     {"spec": {"template": {"metadata": {"annotations": {
         "kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"}}}}},
     lambda d: d["spec"]["template"]["metadata"].update(annotations={
         "kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"})),
    ("set-env-remove-one",  # kubectl set env deployment/web A-
     {"spec": {"template": {"spec": {
         "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "myapp"}],
         "containers": [{"name": "myapp", "$setElementOrder/env": [{"name": "B"}],
                         "env": [{"$patch": "delete", "name": "A"}]}]}}}},
     lambda d: _c(d, "myapp").update(env=[{"name": "B", "value": "2"}])),
    ("set-env-add-one",  # kubectl set env deployment/web C=3
     {"spec": {"template": {"spec": {
         "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "myapp"}],
         "containers": [{"name": "myapp",
                         "$setElementOrder/env": [{"name": "A"}, {"name": "B"}, {"name": "C"}],
                         "env": [{"name": "C", "value": "3"}]}]}}}},
     lambda d: _c(d, "myapp")["env"].append({"name": "C", "value": "3"})),
    ("update-one-env-value",
     {"spec": {"template": {"spec": {"containers": [
         {"name": "myapp", "env": [{"name": "B", "value": "22"}]}]}}}},
     lambda d: _c(d, "myapp")["env"][1].update(value="22")),
    ("null-deletes-label", {"metadata": {"labels": {"x": None}}},
     lambda d: d["metadata"]["labels"].pop("x")),
    ("null-deletes-field-in-list-item",
     {"spec": {"template": {"spec": {"containers": [{"name": "myapp", "ports": None}]}}}},
     lambda d: _c(d, "myapp").pop("ports")),
    ("delete-container",
     {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}},
     lambda d: _tpl(d)["containers"].pop(0)),
    ("replace-containers-list",
     {"spec": {"template": {"spec": {"containers": [{"name": "only", "image": "o"},
                                                    {"$patch": "replace"}]}}}},
     lambda d: _tpl(d).update(containers=[{"name": "only", "image": "o"}])),
    ("replace-labels-map", {"metadata": {"labels": {"$patch": "replace", "new": "y"}}},
     lambda d: d["metadata"].update(labels={"new": "y"})),
    ("delete-map", {"spec": {"template": {"metadata": {"$patch": "delete"}}}},
     lambda d: d["spec"]["template"].update(metadata={})),
    ("merge-directive-on-map-is-default", {"metadata": {"labels": {"$patch": "merge", "y": "2"}}},
     lambda d: d["metadata"]["labels"].update(y="2")),
    ("strategy-recreate-retain-keys",  # what kubectl apply sends for RollingUpdate->Recreate
     {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None}}},
     lambda d: d["spec"].update(strategy={"type": "Recreate"})),
    ("volume-source-switch-retain-keys",
     {"spec": {"template": {"spec": {"volumes": [
         {"$retainKeys": ["hostPath", "name"], "name": "data", "hostPath": {"path": "/x"}}]}}}},
     lambda d: _tpl(d)["volumes"].__setitem__(0, {"name": "data", "hostPath": {"path": "/x"}})),
    ("finalizers-union", {"metadata": {"finalizers": ["a.example/f", "b.example/g"]}},
     lambda d: d["metadata"].update(finalizers=["a.example/f", "b.example/g"])),
    ("finalizers-delete-from-primitive-list",
     {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.example/f"]}},
     lambda d: d["metadata"].update(finalizers=[])),
    ("owner-reference-by-uid",
     {"metadata": {"ownerReferences": [{"uid": "u2", "controller": True}]}},
     lambda d: d["metadata"]["ownerReferences"][1].update(controller=True)),
    ("status-condition-by-type",
     {"status": {"conditions": [{"type": "Progressing", "status": "False", "reason": "X"}]}},
     lambda d: d["status"]["conditions"][1].update(status="False", reason="X")),
    ("unknown-field-added-and-kept", {"spec": {"anotherUnknown": [1, 2]}},
     lambda d: d["spec"].update(anotherUnknown=[1, 2])),
    ("selector-map-merges", {"spec": {"selector": {"matchLabels": {"tier": "fe"}}}},
     lambda d: d["spec"]["selector"]["matchLabels"].update(tier="fe")),
    ("empty-patch", {}, lambda d: None),
]


@pytest.mark.parametrize("patch,change", [c[1:] for c in KUBECTL_SHAPES],
                         ids=[c[0] for c in KUBECTL_SHAPES])
def test_strategic_merge_kubectl_shapes(patch: dict[str, Any], change: Any) -> None:
    doc, patch_before = deployment(), copy.deepcopy(patch)
    want = deployment()
    change(want)
    assert apply_strategic_merge_patch(doc, patch, "Deployment") == want
    assert doc == deployment() and patch == patch_before   # inputs untouched


# Each merge key from the struct tags: two items, the patch updates one by its key.
# (id, kind, path to the list, merge key, key of item 1, key of item 2)
MERGE_KEYS: list[tuple[str, str, tuple[Any, ...], str, Any, Any]] = [
    ("pod-containers", "Pod", ("spec", "containers"), "name", "a", "b"),
    ("pod-initContainers", "Pod", ("spec", "initContainers"), "name", "a", "b"),
    ("pod-ephemeralContainers", "Pod", ("spec", "ephemeralContainers"), "name", "a", "b"),
    ("pod-volumes", "Pod", ("spec", "volumes"), "name", "a", "b"),
    ("pod-imagePullSecrets", "Pod", ("spec", "imagePullSecrets"), "name", "a", "b"),
    ("pod-hostAliases", "Pod", ("spec", "hostAliases"), "ip", "10.0.0.1", "10.0.0.2"),
    ("pod-topologySpreadConstraints", "Pod", ("spec", "topologySpreadConstraints"),
     "topologyKey", "zone", "host"),
    ("pod-status-conditions", "Pod", ("status", "conditions"), "type", "Ready", "Initialized"),
    ("pod-status-podIPs", "Pod", ("status", "podIPs"), "ip", "10.244.0.2", "fd00::2"),
    ("pod-status-hostIPs", "Pod", ("status", "hostIPs"), "ip", "172.18.0.2", "fd01::2"),
    ("container-env", "Pod", ("spec", "containers", 0, "env"), "name", "A", "B"),
    ("container-ports", "Pod", ("spec", "containers", 0, "ports"), "containerPort", 80, 443),
    ("container-volumeMounts", "Pod", ("spec", "containers", 0, "volumeMounts"),
     "mountPath", "/a", "/b"),
    ("container-volumeDevices", "Pod", ("spec", "containers", 0, "volumeDevices"),
     "devicePath", "/dev/a", "/dev/b"),
    ("init-container-env", "Pod", ("spec", "initContainers", 0, "env"), "name", "A", "B"),
    ("service-ports", "Service", ("spec", "ports"), "port", 80, 443),
    ("service-status-conditions", "Service", ("status", "conditions"), "type", "A", "B"),
    ("node-conditions", "Node", ("status", "conditions"), "type", "Ready", "MemoryPressure"),
    ("node-addresses", "Node", ("status", "addresses"), "type", "InternalIP", "Hostname"),
    ("namespace-conditions", "Namespace", ("status", "conditions"), "type", "A", "B"),
    ("pvc-conditions", "PersistentVolumeClaim", ("status", "conditions"), "type", "A", "B"),
    ("rs-template-containers", "ReplicaSet", ("spec", "template", "spec", "containers"),
     "name", "a", "b"),
    ("rs-conditions", "ReplicaSet", ("status", "conditions"), "type", "A", "B"),
    ("rc-template-containers", "ReplicationController",
     ("spec", "template", "spec", "containers"), "name", "a", "b"),
    ("ds-template-volumes", "DaemonSet", ("spec", "template", "spec", "volumes"),
     "name", "a", "b"),
    ("ds-conditions", "DaemonSet", ("status", "conditions"), "type", "A", "B"),
    ("sts-template-containers", "StatefulSet", ("spec", "template", "spec", "containers"),
     "name", "a", "b"),
    ("sts-conditions", "StatefulSet", ("status", "conditions"), "type", "A", "B"),
    ("deploy-conditions", "Deployment", ("status", "conditions"), "type", "A", "B"),
    ("owner-references", "ConfigMap", ("metadata", "ownerReferences"), "uid", "u1", "u2"),
    ("crd-owner-references", "Widget", ("metadata", "ownerReferences"), "uid", "u1", "u2"),
]


def _nest(path: tuple[Any, ...], leaf: Any) -> Any:
    """Build a document holding `leaf` at `path` (int steps are one-item lists)."""
    for step in reversed(path):
        if isinstance(step, int):
            leaf = [{"name": "c0", **leaf}]
        else:
            leaf = {step: leaf}
    return leaf


@pytest.mark.parametrize("kind,path,key,k1,k2", [c[1:] for c in MERGE_KEYS],
                         ids=[c[0] for c in MERGE_KEYS])
def test_merge_keys(kind: str, path: tuple[Any, ...], key: str, k1: Any, k2: Any) -> None:
    def wrap(items: list[Any]) -> dict[str, Any]:
        *head, last = path
        inner: Any = {last: items}
        return _nest(tuple(head), inner)

    doc = wrap([{key: k1, "old": 1}, {key: k2, "old": 2}])
    patch = wrap([{key: k2, "new": 3}])
    want = wrap([{key: k1, "old": 1}, {key: k2, "old": 2, "new": 3}])
    assert apply_strategic_merge_patch(doc, patch, kind) == want


# Lists without a patchStrategy upstream are replaced as a whole.
REPLACED_LISTS: list[tuple[str, str, tuple[Any, ...]]] = [
    ("node-taints", "Node", ("spec", "taints")),
    ("container-command", "Pod", ("spec", "containers", 0, "command")),
    ("sts-volumeClaimTemplates", "StatefulSet", ("spec", "volumeClaimTemplates")),
    ("endpointslice-endpoints", "EndpointSlice", ("endpoints",)),
    ("endpoints-subsets", "Endpoints", ("subsets",)),
    ("crd-list", "Widget", ("spec", "items")),
    ("pod-container-statuses", "Pod", ("status", "containerStatuses")),
]


@pytest.mark.parametrize("kind,path", [c[1:] for c in REPLACED_LISTS],
                         ids=[c[0] for c in REPLACED_LISTS])
def test_untagged_lists_are_replaced(kind: str, path: tuple[Any, ...]) -> None:
    doc = _nest(path, [{"name": "a", "key": "k1"}, {"name": "b", "key": "k2"}])
    patch = _nest(path, [{"name": "b", "key": "k3"}])
    assert apply_strategic_merge_patch(doc, patch, kind) == patch


def test_node_pod_cidrs_union() -> None:
    doc = {"spec": {"podCIDRs": ["10.244.1.0/24"]}}
    patch = {"spec": {"podCIDRs": ["10.244.1.0/24", "fd00:1::/64"]}}
    got = apply_strategic_merge_patch(doc, patch, "Node")
    assert got["spec"]["podCIDRs"] == ["10.244.1.0/24", "fd00:1::/64"]


def test_cordon_node() -> None:
    doc = {"metadata": {"name": "n1"}, "spec": {"podCIDR": "10.244.1.0/24"}}
    got = apply_strategic_merge_patch(doc, {"spec": {"unschedulable": True}}, "Node")
    assert got["spec"] == {"podCIDR": "10.244.1.0/24", "unschedulable": True}


# --- list order, as kube-apiserver produces it -----------------------------------------------

ORDER_CASES: list[tuple[str, list[str], dict[str, Any], list[str]]] = [
    # Without $setElementOrder upstream puts a new item before the live ones.
    ("new-item-first", ["a", "b"], {"containers": [{"name": "c"}]}, ["c", "a", "b"]),
    ("updated-item-keeps-place", ["a", "b", "c"], {"containers": [{"name": "b", "x": 1}]},
     ["a", "b", "c"]),
    ("patch-order-wins-for-patched-items", ["a", "b", "c"],
     {"containers": [{"name": "c"}, {"name": "a"}]}, ["b", "c", "a"]),
    ("set-element-order-appends", ["a", "b"],
     {"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
      "containers": [{"name": "c"}]}, ["a", "b", "c"]),
    ("set-element-order-inserts", ["a", "b"],
     {"$setElementOrder/containers": [{"name": "a"}, {"name": "c"}, {"name": "b"}],
      "containers": [{"name": "c"}]}, ["a", "c", "b"]),
    ("set-element-order-reorders-only", ["a", "b", "c"],
     {"$setElementOrder/containers": [{"name": "c"}, {"name": "b"}, {"name": "a"}]},
     ["c", "b", "a"]),
    # A server-only item goes before the first patch item it preceded live.
    ("set-element-order-with-server-only-item", ["a", "x", "b"],
     {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}, ["x", "b", "a"]),
]


@pytest.mark.parametrize("live,spec_patch,want", [c[1:] for c in ORDER_CASES],
                         ids=[c[0] for c in ORDER_CASES])
def test_list_order(live: list[str], spec_patch: dict[str, Any], want: list[str]) -> None:
    doc = {"spec": {"containers": [{"name": n} for n in live]}}
    got = apply_strategic_merge_patch(doc, {"spec": spec_patch}, "Pod")
    assert [c["name"] for c in got["spec"]["containers"]] == want


def test_finalizers_order_and_duplicates() -> None:
    doc = {"metadata": {"finalizers": ["a", "b"]}}
    got = apply_strategic_merge_patch(doc, {"metadata": {"finalizers": ["b", "c", "c"]}}, "Pod")
    assert got["metadata"]["finalizers"] == ["a", "b", "c"]


# --- directives never end up stored ----------------------------------------------------------

def test_directives_stripped_from_new_subtrees() -> None:
    doc = {"metadata": {"name": "d"}}
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"},
                      "template": {"spec": {
                          "$setElementOrder/containers": [{"name": "a"}],
                          "containers": [{"name": "a", "$setElementOrder/env": [{"name": "E"}],
                                          "env": [{"name": "E", "value": "1"},
                                                  {"name": "gone", "$patch": "delete"}]}],
                          "$deleteFromPrimitiveList/x": ["y"]}}}}
    got = apply_strategic_merge_patch(doc, patch, "Deployment")
    assert got == {"metadata": {"name": "d"},
                   "spec": {"strategy": {"type": "Recreate"},
                            "template": {"spec": {"containers": [
                                {"name": "a", "env": [{"name": "E", "value": "1"}]}]}}}}


def test_null_inside_new_subtree_is_dropped() -> None:
    got = apply_strategic_merge_patch({}, {"spec": {"a": None, "b": {"c": None, "d": 1}}}, "Pod")
    assert got == {"spec": {"b": {"d": 1}}}


def test_delete_from_primitive_list_missing_list_is_noop() -> None:
    doc = {"metadata": {"name": "x"}}
    patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}
    assert apply_strategic_merge_patch(doc, patch, "Pod") == doc


# --- errors --------------------------------------------------------------------------------------

SMP_ERRORS: list[tuple[str, dict[str, Any], dict[str, Any], str, int]] = [
    ("missing-merge-key", deployment(),
     {"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}},
     "map: map[image:x] does not contain declared merge key: name", 400),
    ("unknown-map-directive", deployment(), {"metadata": {"labels": {"$patch": "foo"}}},
     "unknown patch type: foo in map: map[$patch:foo]", 400),
    ("merge-directive-in-list", deployment(),
     {"spec": {"template": {"spec": {"containers": [{"$patch": "merge"}]}}}},
     "merging lists cannot yet be specified in the patch", 400),
    ("set-element-order-mismatch", {"spec": {"containers": [{"name": "a"}, {"name": "b"}]}},
     {"spec": {"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
               "containers": [{"name": "b", "x": 1}, {"name": "a", "x": 1}]}},
     "doesn't match $setElementOrder list", 400),
    ("retain-keys-missing-patched-key", deployment(),
     {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 1}}}},
     "invalid patch format of retainKeys", 400),
    ("bad-delete-from-primitive-list-key", deployment(),
     {"metadata": {"$deleteFromPrimitiveListfinalizers": ["a"]}},
     "invalid patch format of primitive list", 400),
    ("list-of-lists", {"metadata": {"finalizers": ["a"]}},
     {"metadata": {"finalizers": [["b"]]}}, "lists of lists are not supported", 422),
    ("mixed-element-types", {"metadata": {"finalizers": ["a"]}},
     {"metadata": {"finalizers": [1]}}, "list element types are not identical", 400),
]


@pytest.mark.parametrize("doc,patch,message,code", [c[1:] for c in SMP_ERRORS],
                         ids=[c[0] for c in SMP_ERRORS])
def test_strategic_merge_errors(doc: dict[str, Any], patch: dict[str, Any], message: str,
                                code: int) -> None:
    kind = "Pod" if "containers" in doc.get("spec", {}) else "Deployment"
    with pytest.raises(errors.APIError) as exc:
        apply_strategic_merge_patch(doc, patch, kind)
    assert message in exc.value.message
    assert exc.value.code == code
    if code == 422:
        assert isinstance(exc.value, PatchUnprocessable)


@pytest.mark.parametrize("patch", [[{"op": "add"}], "x", None], ids=["list", "string", "null"])
def test_strategic_merge_patch_must_be_object(patch: Any) -> None:
    with pytest.raises(errors.BadRequest):
        apply_strategic_merge_patch(deployment(), patch, "Deployment")


# --- kubectl apply: three-way patches ------------------------------------------------------------

def _applied(obj: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(obj)


THREE_WAY: list[tuple[str, Any, Any, dict[str, Any]]] = [
    # (id, change to make `modified` from last-applied, change someone made live, patch)
    ("no-change", lambda d: None, lambda d: None, {}),
    ("drop-label-from-config",
     lambda d: d["metadata"]["labels"].pop("x"), lambda d: None,
     {"metadata": {"labels": {"x": None}}}),
    ("label-added-live-is-kept",
     lambda d: None, lambda d: d["metadata"]["labels"].update(live="1"), {}),
    ("replicas-changed-live-is-reset",
     lambda d: None, lambda d: d["spec"].update(replicas=5), {"spec": {"replicas": 1}}),
    ("image-change",
     lambda d: _c(d, "myapp").update(image="myapp:v2"), lambda d: None,
     {"spec": {"template": {"spec": {
         "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "myapp"}],
         "containers": [{"name": "myapp", "image": "myapp:v2"}]}}}}),
    ("env-removed",
     lambda d: _c(d, "myapp")["env"].pop(0), lambda d: None,
     {"spec": {"template": {"spec": {
         "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "myapp"}],
         "containers": [{"name": "myapp", "$setElementOrder/env": [{"name": "B"}],
                         "env": [{"name": "A", "$patch": "delete"}]}]}}}}),
    ("strategy-to-recreate",
     lambda d: d["spec"].update(strategy={"type": "Recreate"}), lambda d: None,
     {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate",
                            "rollingUpdate": None}}}),
    ("finalizer-removed",
     lambda d: d["metadata"].update(finalizers=[]), lambda d: None,
     {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.example/f"]}}),
    ("finalizer-dropped-from-list",
     lambda d: d["metadata"].update(finalizers=["a.example/f", "b"]),
     lambda d: None,
     {"metadata": {"$setElementOrder/finalizers": ["a.example/f", "b"], "finalizers": ["b"]}}),
]


@pytest.mark.parametrize("edit,live_edit,want", [c[1:] for c in THREE_WAY],
                         ids=[c[0] for c in THREE_WAY])
def test_three_way_merge_patch(edit: Any, live_edit: Any, want: dict[str, Any]) -> None:
    original = deployment()
    modified = deployment()
    edit(modified)
    current = deployment()
    live_edit(current)
    inputs = copy.deepcopy((original, modified, current))
    patch = create_three_way_merge_patch(original, modified, current, "Deployment")
    assert patch == want
    assert (original, modified, current) == inputs
    # Applying what kubectl sends yields the config plus whatever the config never owned.
    result = apply_strategic_merge_patch(current, patch, "Deployment")
    expected = copy.deepcopy(modified)
    if "live" in current["metadata"]["labels"]:
        expected["metadata"]["labels"]["live"] = "1"
    assert result == expected


def test_three_way_without_last_applied_never_deletes() -> None:
    current = deployment()
    modified = {"metadata": {"name": "web", "labels": {"app": "web"}},
                "spec": {"replicas": 3}}
    patch = create_three_way_merge_patch(None, modified, current, "Deployment")
    assert patch == {"spec": {"replicas": 3}}


def test_three_way_removed_from_config_and_changed_live() -> None:
    original = {"metadata": {"labels": {"a": "1", "b": "2"}}}
    modified = {"metadata": {"labels": {"a": "1"}}}
    current = {"metadata": {"labels": {"a": "9", "b": "3", "c": "4"}}}
    patch = create_three_way_merge_patch(original, modified, current, "ConfigMap")
    assert patch == {"metadata": {"labels": {"a": "1", "b": None}}}
    assert apply_strategic_merge_patch(current, patch, "ConfigMap") == {
        "metadata": {"labels": {"a": "1", "c": "4"}}}
