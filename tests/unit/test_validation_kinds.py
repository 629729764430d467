"""Every served kind: a valid object defaults and validates cleanly on create, on a no-op
update and on a no-op status update; the dispatcher ignores unknown kinds and tolerates
malformed bodies. Other test_validation_* modules import valid() from here."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from netd.api.defaults import apply_defaults
from netd.api.errors import FieldError
from netd.api.validation import validate_create, validate_status_update, validate_update


def _meta(name: str, ns: str | None = "default", **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, **extra}
    if ns is not None:
        meta["namespace"] = ns
    return meta


def _template(app: str = "web") -> dict[str, Any]:
    return {"metadata": {"labels": {"app": app}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.25",
                                     "ports": [{"containerPort": 80, "name": "http"}]}]}}


_VALID: dict[str, dict[str, Any]] = {
    "Namespace": {"metadata": _meta("team-a", None)},
    "Node": {"metadata": _meta("node-1", None),
             "spec": {"podCIDR": "10.244.1.0/24",
                      "taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]},
             "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                        "addresses": [{"type": "InternalIP", "address": "172.18.0.2"}]}},
    "Pod": {"metadata": _meta("web-0", labels={"app": "web"}),
            "spec": {"containers": [{
                "name": "web", "image": "busybox:1.36",
                "command": ["sh", "-c", "sleep 1000"],
                "ports": [{"containerPort": 8080, "name": "http"}],
                "env": [{"name": "POD_NAME",
                         "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "MODE", "value": "x"}],
                "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "500m",
                                                                      "memory": "64Mi"}},
                "readinessProbe": {"httpGet": {"port": "http"}},
                "livenessProbe": {"tcpSocket": {"port": 8080}},
                "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"},
                                 {"name": "scratch", "mountPath": "/scratch"}]}],
                "volumes": [{"name": "cfg", "configMap": {"name": "web-config"}},
                            {"name": "scratch"}],
                "hostname": "web-0", "subdomain": "web",
                "dnsPolicy": "None", "dnsConfig": {"nameservers": ["10.96.0.10"],
                                                   "searches": ["default.svc.cluster.local"]},
                "nodeSelector": {"kubernetes.io/hostname": "node-1"}}},
    "Service": {"metadata": _meta("web"),
                "spec": {"selector": {"app": "web"},
                         "ports": [{"name": "http", "port": 80, "targetPort": "http"},
                                   {"name": "dns", "port": 53, "protocol": "UDP"}]}},
    "Endpoints": {"metadata": _meta("web"),
                  "subsets": [{"addresses": [{"ip": "10.244.1.5", "nodeName": "node-1"}],
                               "notReadyAddresses": [{"ip": "10.244.2.7"}],
                               "ports": [{"name": "http", "port": 8080},
                                         {"name": "dns", "port": 53, "protocol": "UDP"}]}]},
    "ReplicationController": {"metadata": _meta("web"), "spec": {"replicas": 2,
                                                                 "template": _template()}},
    "PersistentVolume": {"metadata": _meta("pv-1", None),
                         "spec": {"capacity": {"storage": "1Gi"},
                                  "accessModes": ["ReadWriteOnce"],
                                  "hostPath": {"path": "/var/lib/netd/pv-1"},
                                  "storageClassName": "standard"}},
    "PersistentVolumeClaim": {"metadata": _meta("data"),
                              "spec": {"accessModes": ["ReadWriteOnce"],
                                       "resources": {"requests": {"storage": "512Mi"}}}},
    "ConfigMap": {"metadata": _meta("web-config"), "data": {"nginx.conf": "x", "KEY_1": "v"},
                  "binaryData": {"blob": "aGVsbG8="}},
    "Event": {"metadata": _meta("web-0.17a8b"),
              "involvedObject": {"kind": "Pod", "name": "web-0", "namespace": "default"},
              "reason": "Started", "message": "Started container web", "type": "Normal"},
    "Deployment": {"metadata": _meta("web"),
                   "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                            "template": _template()}},
    "ReplicaSet": {"metadata": _meta("web-5d4f"),
                   "spec": {"replicas": 3, "selector": {
                       "matchLabels": {"app": "web"},
                       "matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]},
                       "template": _template()}},
    "StatefulSet": {"metadata": _meta("db"),
                    "spec": {"serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                             "template": {"metadata": {"labels": {"app": "db"}}, "spec": {
                                 "containers": [{"name": "db", "image": "postgres:16",
                                                 "volumeMounts": [{"name": "data",
                                                                   "mountPath": "/data"}]}]}},
                             "volumeClaimTemplates": [{
                                 "metadata": {"name": "data"},
                                 "spec": {"accessModes": ["ReadWriteOnce"],
                                          "resources": {"requests": {"storage": "1Gi"}}}}]}},
    "DaemonSet": {"metadata": _meta("agent"),
                  "spec": {"selector": {"matchLabels": {"app": "agent"}},
                           "template": _template("agent")}},
    "ControllerRevision": {"metadata": _meta("db-7c9"), "data": {"spec": {}}, "revision": 1},
    "EndpointSlice": {"metadata": _meta("web-abcde", labels={
                          "kubernetes.io/service-name": "web"}),
                      "addressType": "IPv4",
                      "endpoints": [{"addresses": ["10.244.1.5"], "conditions": {"ready": True},
                                     "nodeName": "node-1", "hostname": "web-0"}],
                      "ports": [{"name": "http", "port": 8080}]},
    "StorageClass": {"metadata": _meta("standard", None), "provisioner": "netd.io/hostpath",
                     "parameters": {"root": "/var/lib/netd"}},
    "Lease": {"metadata": _meta("node-1", "kube-node-lease"),
              "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40}},
    "Scale": {"metadata": _meta("web"), "spec": {"replicas": 5}},
}

KINDS = sorted(_VALID)


def valid(kind: str, defaulted: bool = True) -> dict[str, Any]:
    """A fresh valid object of kind, defaulted unless asked otherwise."""
    obj = copy.deepcopy(_VALID[kind])
    if defaulted:
        apply_defaults(kind, obj)
    return obj


def texts(errs: list[FieldError]) -> list[str]:
    return [str(e) for e in errs]


def test_every_kind_has_a_valid_object() -> None:
    from netd.api.kinds import RESOURCES
    assert {rt.kind for rt in RESOURCES} | {"Scale"} == set(KINDS)


@pytest.mark.parametrize("kind", KINDS, ids=KINDS)
def test_valid_object_passes_create(kind: str) -> None:
    assert texts(validate_create(kind, valid(kind))) == []


@pytest.mark.parametrize("kind", KINDS, ids=KINDS)
def test_noop_update_passes(kind: str) -> None:
    old = valid(kind)
    new = copy.deepcopy(old)
    apply_defaults(kind, new)
    assert texts(validate_update(kind, new, old)) == []


@pytest.mark.parametrize("kind", KINDS, ids=KINDS)
def test_noop_status_update_passes(kind: str) -> None:
    old = valid(kind)
    assert texts(validate_status_update(kind, copy.deepcopy(old), old)) == []


@pytest.mark.parametrize("kind", KINDS, ids=KINDS)
def test_defaulting_is_idempotent(kind: str) -> None:
    once = valid(kind)
    twice = copy.deepcopy(once)
    apply_defaults(kind, twice)
    assert twice == once


@pytest.mark.parametrize("kind", KINDS, ids=KINDS)
def test_missing_name_is_required(kind: str) -> None:
    obj = valid(kind)
    del obj["metadata"]["name"]
    assert "metadata.name: Required value: name or generateName is required" in \
        texts(validate_create(kind, obj))


def test_unknown_kind_is_not_validated_or_defaulted() -> None:
    obj = {"metadata": {"name": "Not Valid!"}}
    apply_defaults("Widget", obj)
    assert obj == {"metadata": {"name": "Not Valid!"}}
    assert validate_create("Widget", obj) == []
    assert validate_update("Widget", obj, obj) == []


@pytest.mark.parametrize("body", [
    {"metadata": "nope", "spec": []},
    {"metadata": {"name": "p", "namespace": "default", "labels": ["a"]},
     "spec": {"containers": "busybox"}},
    {"metadata": {"name": "p", "namespace": "default"},
     "spec": {"containers": [{"name": 5, "image": ["x"], "ports": [{"containerPort": "80"}]}]}},
], ids=["wrong-top-level-types", "wrong-nested-types", "wrong-scalars"])
def test_malformed_pod_reports_errors_not_exceptions(body: dict[str, Any]) -> None:
    apply_defaults("Pod", body)
    errs = validate_create("Pod", body)
    assert errs and all(isinstance(e, FieldError) for e in errs)
