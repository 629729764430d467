"""Namespace, Node, ConfigMap, Event, PersistentVolume(Claim), StorageClass, Lease, Scale."""
from __future__ import annotations

import copy
from typing import Any, Callable

import pytest

from netd.api.validation import validate_create, validate_status_update, validate_update
from tests.unit.test_validation_kinds import texts, valid

Mutate = Callable[[dict[str, Any]], None]


def put(path: str, value: Any) -> Mutate:
    def mutate(obj: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        cur = obj
        for p in parents:
            cur = cur.setdefault(p, {})
        if value is None:
            cur.pop(last, None)
        else:
            cur[last] = value
    return mutate


CREATE_CASES: list[tuple[str, str, Mutate, list[str]]] = [
    ("ns-finalizer", "Namespace", put("spec.finalizers", ["kubernetes", "custom"]),
     ['spec.finalizers: Invalid value: "custom": name is neither a standard finalizer name '
      "nor is it fully qualified"]),
    ("node-taint-effect", "Node", put("spec.taints", [{"key": "a", "effect": "Sometimes"}]),
     ['metadata.taints[0].effect: Unsupported value: "Sometimes": supported values: '
      '"NoSchedule", "PreferNoSchedule", "NoExecute"']),
    ("node-taint-effect-required", "Node", put("spec.taints", [{"key": "a"}]),
     ["metadata.taints[0].effect: Required value"]),
    ("node-taint-duplicate", "Node", put("spec.taints", [{"key": "a", "effect": "NoSchedule"},
                                                         {"key": "a", "value": "x",
                                                          "effect": "NoSchedule"}]),
     ['metadata.taints[1]: Duplicate value: core.Taint{Key:"a", Value:"x", Effect:"NoSchedule", '
      "TimeAdded:<nil>}: taints must be unique by key and effect pair"]),
    ("node-podcidr", "Node", put("spec.podCIDRs", ["10.244.1.0"]),
     ['spec.podCIDRs[0]: Invalid value: "10.244.1.0": must be a valid CIDR value, (e.g. '
      '10.9.8.0/24 or 2001:db8::/64)']),
    ("node-podcidrs-family", "Node", put("spec.podCIDRs", ["10.244.1.0/24", "10.244.2.0/24"]),
     ['spec.podCIDRs: Invalid value: []string{"10.244.1.0/24", "10.244.2.0/24"}: may specify '
      'no more than one CIDR for each IP family']),
    ("node-capacity", "Node", put("status.capacity", {"cpu": "-1"}),
     ['status.capacity.cpu: Invalid value: "-1": must be greater than or equal to 0']),
    ("cm-key", "ConfigMap", put("data", {"a b": "x"}),
     ['data[a b]: Invalid value: "a b": a valid config key must consist of alphanumeric '
      "characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex "
      "used for validation is '[-._a-zA-Z0-9]+')"]),
    ("cm-dotdot", "ConfigMap", put("data", {"..x": "y"}),
     ['data[..x]: Invalid value: "..x": must not start with \'..\'']),
    ("cm-both-bags", "ConfigMap", put("data", {"blob": "x"}),
     ['data[blob]: Invalid value: "blob": duplicate of key present in binaryData']),
    ("cm-too-big", "ConfigMap", put("data", {"big": "x" * (1024 * 1024 + 1)}),
     ["Too long: must have at most 1048576 bytes"]),
    ("event-namespace-mismatch", "Event", put("involvedObject.namespace", "other"),
     ['involvedObject.namespace: Invalid value: "other": does not match event.namespace']),
    ("event-cluster-object-in-default", "Event", put("involvedObject.namespace", None), []),
    # Kubernetes also runs the qualified-name check on the empty component.
    ("event-new-style-needs-fields", "Event", put("eventTime", "2024-01-01T00:00:00.000000Z"),
     ["reportingComponent: Required value",
      'reportingComponent: Invalid value: "": name part must be non-empty',
      'reportingComponent: Invalid value: "": name part must consist of alphanumeric '
      "characters, '-', '_' or '.', and must start and end with an alphanumeric character "
      "(e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
      "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
      "reportingInstance: Required value", "action: Required value"]),
    ("event-new-style-ok", "Event", lambda o: o.update(
        eventTime="2024-01-01T00:00:00.000000Z", reportingComponent="netd.io/kubelet",
        reportingInstance="node-1", action="Started"), []),
    ("pv-capacity", "PersistentVolume", put("spec.capacity", {"storage": "0"}),
     ['spec.capacity[storage]: Invalid value: "0": must be greater than zero']),
    ("pv-capacity-other", "PersistentVolume", put("spec.capacity", {"storage": "1Gi",
                                                                    "cpu": "1"}),
     ['spec.capacity: Unsupported value: core.ResourceList{"cpu":{...}, "storage":{...}}: '
      'supported values: "storage"']),
    ("pv-access-modes", "PersistentVolume", put("spec.accessModes", ["ReadWriteSome"]),
     ['spec.accessModes: Unsupported value: "ReadWriteSome": supported values: "ReadOnlyMany", '
      '"ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"']),
    ("pv-access-modes-required", "PersistentVolume", put("spec.accessModes", []),
     ["spec.accessModes: Required value"]),
    ("pv-no-source", "PersistentVolume", put("spec.hostPath", None),
     ["spec: Required value: must specify a volume type"]),
    ("pv-two-sources", "PersistentVolume", put("spec.nfs", {"server": "a", "path": "/x"}),
     ["spec.nfs: Forbidden: may not specify more than 1 volume type"]),
    ("pv-reclaim", "PersistentVolume", put("spec.persistentVolumeReclaimPolicy", "Keep"),
     ['spec.persistentVolumeReclaimPolicy: Unsupported value: "Keep": supported values: '
      '"Delete", "Recycle", "Retain"']),
    ("pvc-storage-required", "PersistentVolumeClaim", put("spec.resources", {}),
     ["spec.resources[storage]: Required value"]),
    ("pvc-access-modes", "PersistentVolumeClaim", put("spec.accessModes", None),
     ["spec.accessModes: Required value: at least 1 access mode is required"]),
    ("pvc-rwop-mixed", "PersistentVolumeClaim",
     put("spec.accessModes", ["ReadWriteOncePod", "ReadWriteOnce"]),
     ["spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes"]),
    ("sc-provisioner", "StorageClass", put("provisioner", None),
     ["provisioner: Required value"]),
    ("sc-reclaim", "StorageClass", put("reclaimPolicy", "Recycle"),
     ['reclaimPolicy: Unsupported value: "Recycle": supported values: "Delete", "Retain"']),
    ("sc-binding", "StorageClass", put("volumeBindingMode", "Later"),
     ['volumeBindingMode: Unsupported value: "Later": supported values: "Immediate", '
      '"WaitForFirstConsumer"']),
    ("lease-duration", "Lease", put("spec.leaseDurationSeconds", 0),
     ["spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"]),
    ("lease-transitions", "Lease", put("spec.leaseTransitions", -1),
     ["spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0"]),
    ("scale-replicas", "Scale", put("spec.replicas", -2),
     ["spec.replicas: Invalid value: -2: must be greater than or equal to 0"]),
]


@pytest.mark.parametrize("kind,mutate,want", [c[1:] for c in CREATE_CASES],
                         ids=[c[0] for c in CREATE_CASES])
def test_create(kind: str, mutate: Mutate, want: list[str]) -> None:
    obj = valid(kind)
    mutate(obj)
    assert texts(validate_create(kind, obj)) == want


UPDATE_CASES: list[tuple[str, str, Mutate, Mutate, list[str]]] = [
    ("node-podcidr-set-once", "Node",
     lambda o: o.update(spec={"taints": o["spec"]["taints"]}),
     put("spec.podCIDRs", ["10.244.3.0/24"]), []),
    ("node-podcidr-immutable", "Node", lambda o: None, put("spec.podCIDRs", ["10.244.9.0/24"]),
     ['spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid']),
    ("node-taints-change", "Node", lambda o: None, put("spec.taints", []), []),
    ("node-unschedulable", "Node", lambda o: None, put("spec.unschedulable", True), []),
    ("node-provider-id", "Node", put("spec.providerID", "netd://a"),
     put("spec.providerID", "netd://b"),
     ['spec.providerID: Forbidden: node updates may not change providerID except from "" to '
      'valid']),
    ("cm-immutable", "ConfigMap", put("immutable", True), put("data", {"k": "changed"}),
     ["data: Forbidden: field is immutable when `immutable` is set"]),
    ("cm-immutable-unset", "ConfigMap", put("immutable", True), put("immutable", False),
     ["immutable: Forbidden: field is immutable when `immutable` is set"]),
    ("cm-mutable", "ConfigMap", lambda o: None, put("data", {"k": "changed"}), []),
    ("pvc-bind-once", "PersistentVolumeClaim", lambda o: None, put("spec.volumeName", "pv-1"),
     []),
    ("pvc-resize-bound", "PersistentVolumeClaim", put("status.phase", "Bound"),
     put("spec.resources", {"requests": {"storage": "1Gi"}}), []),
    ("pvc-shrink", "PersistentVolumeClaim", put("status.phase", "Bound"),
     put("spec.resources", {"requests": {"storage": "100Mi"}}),
     ["spec.resources.requests.storage: Forbidden: field can not be less than previous value"]),
    ("sc-parameters", "StorageClass", lambda o: None, put("parameters", {"root": "/x"}),
     ["parameters: Forbidden: updates to parameters are forbidden."]),
    ("sc-provisioner", "StorageClass", lambda o: None, put("provisioner", "other.io/x"),
     ["provisioner: Forbidden: updates to provisioner are forbidden."]),
    ("sc-binding", "StorageClass", lambda o: None,
     put("volumeBindingMode", "WaitForFirstConsumer"),
     ['volumeBindingMode: Invalid value: "WaitForFirstConsumer": field is immutable']),
    ("pv-source", "PersistentVolume", lambda o: None, put("spec.hostPath", {"path": "/other",
                                                                            "type": ""}),
     ['spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable after '
      'creation\n- hostPath.path: "/var/lib/netd/pv-1"\n+ hostPath.path: "/other"']),
    ("pv-claim-ref", "PersistentVolume", lambda o: None,
     put("spec.claimRef", {"namespace": "default", "name": "data"}), []),
    ("lease-renew", "Lease", lambda o: None, put("spec.renewTime", "2024-01-01T00:00:00.000000Z"),
     []),
    ("event-count", "Event", lambda o: None, put("count", 2), []),
]


@pytest.mark.parametrize("kind,before,mutate,want", [c[1:] for c in UPDATE_CASES],
                         ids=[c[0] for c in UPDATE_CASES])
def test_update(kind: str, before: Mutate, mutate: Mutate, want: list[str]) -> None:
    old = valid(kind)
    before(old)
    new = copy.deepcopy(old)
    mutate(new)
    assert texts(validate_update(kind, new, old)) == want


def test_pvc_spec_immutable_message() -> None:
    old = valid("PersistentVolumeClaim")
    new = copy.deepcopy(old)
    new["spec"]["accessModes"] = ["ReadWriteMany"]
    errs = texts(validate_update("PersistentVolumeClaim", new, old))
    assert errs == [
        "spec: Forbidden: spec is immutable after creation except resources.requests and "
        'volumeAttributesClassName for bound claims\n- accessModes[0]: "ReadWriteOnce"\n'
        '+ accessModes[0]: "ReadWriteMany"']


def test_pvc_volume_name_set_only_once() -> None:
    old = valid("PersistentVolumeClaim")
    old["spec"]["volumeName"] = "pv-1"
    new = copy.deepcopy(old)
    new["spec"]["volumeName"] = "pv-2"
    assert texts(validate_update("PersistentVolumeClaim", new, old))[0].startswith(
        "spec: Forbidden: spec is immutable after creation")


@pytest.mark.parametrize("deleting,phase,want", [
    (False, "Active", []),
    (False, "Terminating",
     ['status.Phase: Invalid value: "Terminating": may only be \'Active\' if '
      '`deletionTimestamp` is empty']),
    (True, "Terminating", []),
    (True, "Active",
     ['status.Phase: Invalid value: "Active": may only be \'Terminating\' if '
      '`deletionTimestamp` is not empty']),
], ids=["active", "terminating-early", "terminating", "active-while-deleting"])
def test_namespace_status(deleting: bool, phase: str, want: list[str]) -> None:
    old = valid("Namespace")
    if deleting:
        old["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    new = copy.deepcopy(old)
    new["status"] = {"phase": phase}
    assert texts(validate_status_update("Namespace", new, old)) == want


def test_node_status_update_checks_addresses() -> None:
    old = valid("Node")
    new = copy.deepcopy(old)
    new["status"]["addresses"].append(dict(new["status"]["addresses"][0]))
    assert texts(validate_status_update("Node", new, old)) == [
        'status.addresses[1]: Duplicate value: core.NodeAddress{Type:"InternalIP", '
        'Address:"172.18.0.2"}']


def test_pv_status_phase() -> None:
    old = valid("PersistentVolume")
    new = copy.deepcopy(old)
    new["status"] = {"phase": "Bound"}
    assert texts(validate_status_update("PersistentVolume", new, old)) == []
    new["status"] = {"phase": "Attached"}
    assert texts(validate_status_update("PersistentVolume", new, old)) == [
        'status.phase: Unsupported value: "Attached": supported values: "Available", "Bound", '
        '"Failed", "Pending", "Released"']
