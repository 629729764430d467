"""Defaulting as kube-apiserver 1.32 applies it: table of (kind, input, path, expected)."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from netd.api.defaults import apply_defaults, image_pull_policy, pod_qos_class

_MISSING = object()


def get(obj: Any, path: str) -> Any:
    for part in path.replace("]", "").replace("[", ".").split("."):
        if isinstance(obj, list):
            obj = obj[int(part)] if int(part) < len(obj) else _MISSING
        elif isinstance(obj, dict):
            obj = obj.get(part, _MISSING)
        else:
            return _MISSING
        if obj is _MISSING:
            return _MISSING
    return obj


def pod_spec(**extra: Any) -> dict[str, Any]:
    return {"containers": [{"name": "c", "image": "nginx:1.25"}], **extra}


def template(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": "a"}}, "spec": pod_spec(**spec)}


POD = {"metadata": {"name": "p", "namespace": "default"}, "spec": pod_spec()}
PROBE = {"httpGet": {"port": 80}}
CASES: list[tuple[str, str, dict[str, Any], str, Any]] = [
    # Pod spec and containers
    ("pod-restartPolicy", "Pod", POD, "spec.restartPolicy", "Always"),
    ("pod-dnsPolicy", "Pod", POD, "spec.dnsPolicy", "ClusterFirst"),
    ("pod-grace", "Pod", POD, "spec.terminationGracePeriodSeconds", 30),
    ("pod-scheduler", "Pod", POD, "spec.schedulerName", "default-scheduler"),
    ("pod-securityContext", "Pod", POD, "spec.securityContext", {}),
    ("pod-serviceLinks", "Pod", POD, "spec.enableServiceLinks", True),
    ("pod-termination-path", "Pod", POD, "spec.containers[0].terminationMessagePath",
     "/dev/termination-log"),
    ("pod-termination-policy", "Pod", POD, "spec.containers[0].terminationMessagePolicy", "File"),
    ("pod-pull-tagged", "Pod", POD, "spec.containers[0].imagePullPolicy", "IfNotPresent"),
    ("pod-resources", "Pod", POD, "spec.containers[0].resources", {}),
    ("pod-not-ready-toleration", "Pod", POD, "spec.tolerations[0]",
     {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
      "tolerationSeconds": 300}),
    ("pod-unreachable-toleration", "Pod", POD, "spec.tolerations[1]",
     {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
      "tolerationSeconds": 300}),
    ("pod-toleration-kept", "Pod",
     {"spec": pod_spec(tolerations=[{"key": "node.kubernetes.io/not-ready",
                                     "operator": "Exists", "effect": "NoExecute",
                                     "tolerationSeconds": 5}])},
     "spec.tolerations", [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                           "effect": "NoExecute", "tolerationSeconds": 5},
                          {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                           "effect": "NoExecute", "tolerationSeconds": 300}]),
    ("pod-tolerate-everything", "Pod", {"spec": pod_spec(tolerations=[{"operator": "Exists"}])},
     "spec.tolerations", [{"operator": "Exists"}]),
    ("pod-port-protocol", "Pod",
     {"spec": {"containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 80}]}]}},
     "spec.containers[0].ports[0].protocol", "TCP"),
    ("pod-requests-from-limits", "Pod",
     {"spec": {"containers": [{"name": "c", "image": "x", "resources": {
         "limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}}]}},
     "spec.containers[0].resources.requests", {"cpu": "500m", "memory": "1Gi"}),
    ("pod-hostnetwork-hostport", "Pod",
     {"spec": {"hostNetwork": True, "containers": [{"name": "c", "image": "x",
                                                    "ports": [{"containerPort": 53}]}]}},
     "spec.containers[0].ports[0].hostPort", 53),
    ("probe-timeout", "Pod",
     {"spec": {"containers": [{"name": "c", "image": "x", "livenessProbe": PROBE}]}},
     "spec.containers[0].livenessProbe",
     {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
      "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}),
    ("probe-explicit-kept", "Pod",
     {"spec": {"containers": [{"name": "c", "image": "x", "readinessProbe": {
         "exec": {"command": ["true"]}, "periodSeconds": 2, "failureThreshold": 7}}]}},
     "spec.containers[0].readinessProbe",
     {"exec": {"command": ["true"]}, "periodSeconds": 2, "failureThreshold": 7,
      "timeoutSeconds": 1, "successThreshold": 1}),
    ("lifecycle-httpget", "Pod",
     {"spec": {"containers": [{"name": "c", "image": "x", "lifecycle": {
         "preStop": {"httpGet": {"port": 80, "path": "/stop"}}}}]}},
     "spec.containers[0].lifecycle.preStop.httpGet",
     {"port": 80, "path": "/stop", "scheme": "HTTP"}),
    ("env-fieldref-apiversion", "Pod",
     {"spec": {"containers": [{"name": "c", "image": "x", "env": [
         {"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}]}},
     "spec.containers[0].env[0].valueFrom.fieldRef.apiVersion", "v1"),
    ("init-container-defaults", "Pod",
     {"spec": {"containers": [{"name": "c", "image": "x"}],
               "initContainers": [{"name": "i", "image": "busybox"}]}},
     "spec.initContainers[0].imagePullPolicy", "Always"),
    ("volume-emptydir", "Pod", {"spec": pod_spec(volumes=[{"name": "v"}])},
     "spec.volumes[0]", {"name": "v", "emptyDir": {}}),
    ("volume-configmap-mode", "Pod",
     {"spec": pod_spec(volumes=[{"name": "v", "configMap": {"name": "cm"}}])},
     "spec.volumes[0].configMap.defaultMode", 420),
    ("volume-secret-mode", "Pod",
     {"spec": pod_spec(volumes=[{"name": "v", "secret": {"secretName": "s"}}])},
     "spec.volumes[0].secret.defaultMode", 420),
    ("volume-secret-mode-kept", "Pod",
     {"spec": pod_spec(volumes=[{"name": "v", "secret": {"secretName": "s",
                                                         "defaultMode": 256}}])},
     "spec.volumes[0].secret.defaultMode", 256),
    ("volume-hostpath-type", "Pod",
     {"spec": pod_spec(volumes=[{"name": "v", "hostPath": {"path": "/x"}}])},
     "spec.volumes[0].hostPath", {"path": "/x", "type": ""}),
    ("pod-user-fields-survive", "Pod",
     {"spec": pod_spec(restartPolicy="Never", futureField={"x": 1})},
     "spec.futureField", {"x": 1}),
    ("pod-restart-kept", "Pod", {"spec": pod_spec(restartPolicy="Never")},
     "spec.restartPolicy", "Never"),
    # Service
    ("svc-type", "Service", {"spec": {"ports": [{"port": 80}]}}, "spec.type", "ClusterIP"),
    ("svc-affinity", "Service", {"spec": {"ports": [{"port": 80}]}}, "spec.sessionAffinity",
     "None"),
    ("svc-protocol", "Service", {"spec": {"ports": [{"port": 80}]}}, "spec.ports[0].protocol",
     "TCP"),
    ("svc-targetport", "Service", {"spec": {"ports": [{"port": 80}]}},
     "spec.ports[0].targetPort", 80),
    ("svc-targetport-kept", "Service", {"spec": {"ports": [{"port": 80, "targetPort": "http"}]}},
     "spec.ports[0].targetPort", "http"),
    ("svc-itp", "Service", {"spec": {"ports": [{"port": 80}]}}, "spec.internalTrafficPolicy",
     "Cluster"),
    ("svc-no-etp-for-clusterip", "Service", {"spec": {"ports": [{"port": 80}]}},
     "spec.externalTrafficPolicy", _MISSING),
    ("svc-etp-nodeport", "Service", {"spec": {"type": "NodePort", "ports": [{"port": 80}]}},
     "spec.externalTrafficPolicy", "Cluster"),
    ("svc-etp-externalips", "Service", {"spec": {"externalIPs": ["1.2.3.4"],
                                                 "ports": [{"port": 80}]}},
     "spec.externalTrafficPolicy", "Cluster"),
    ("svc-lb-nodeports", "Service", {"spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}},
     "spec.allocateLoadBalancerNodePorts", True),
    ("svc-externalname-no-itp", "Service", {"spec": {"type": "ExternalName",
                                                     "externalName": "a.example.com"}},
     "spec.internalTrafficPolicy", _MISSING),
    ("svc-clientip-timeout", "Service", {"spec": {"sessionAffinity": "ClientIP",
                                                  "ports": [{"port": 80}]}},
     "spec.sessionAffinityConfig", {"clientIP": {"timeoutSeconds": 10800}}),
    ("svc-none-drops-config", "Service",
     {"spec": {"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 5}},
               "ports": [{"port": 80}]}},
     "spec.sessionAffinityConfig", _MISSING),
    ("svc-no-clusterip-allocated", "Service", {"spec": {"ports": [{"port": 80}]}},
     "spec.clusterIP", _MISSING),
    # Workloads
    ("deploy-replicas", "Deployment", {"spec": {"template": template()}}, "spec.replicas", 1),
    ("deploy-strategy", "Deployment", {"spec": {"template": template()}}, "spec.strategy",
     {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
    ("deploy-recreate", "Deployment",
     {"spec": {"strategy": {"type": "Recreate"}, "template": template()}}, "spec.strategy",
     {"type": "Recreate"}),
    ("deploy-history", "Deployment", {"spec": {"template": template()}},
     "spec.revisionHistoryLimit", 10),
    ("deploy-deadline", "Deployment", {"spec": {"template": template()}},
     "spec.progressDeadlineSeconds", 600),
    ("deploy-template", "Deployment", {"spec": {"template": template()}},
     "spec.template.spec.dnsPolicy", "ClusterFirst"),
    ("template-no-service-links", "Deployment", {"spec": {"template": template()}},
     "spec.template.spec.enableServiceLinks", _MISSING),
    ("template-no-tolerations", "Deployment", {"spec": {"template": template()}},
     "spec.template.spec.tolerations", _MISSING),
    ("rs-replicas", "ReplicaSet", {"spec": {"template": template()}}, "spec.replicas", 1),
    ("rs-template", "ReplicaSet", {"spec": {"template": template()}},
     "spec.template.spec.containers[0].imagePullPolicy", "IfNotPresent"),
    ("rc-selector", "ReplicationController", {"spec": {"template": template()}},
     "spec.selector", {"app": "a"}),
    ("rc-labels", "ReplicationController", {"spec": {"template": template()}},
     "metadata.labels", {"app": "a"}),
    ("rc-replicas", "ReplicationController", {"spec": {"template": template()}},
     "spec.replicas", 1),
    ("sts-policy", "StatefulSet", {"spec": {"template": template()}},
     "spec.podManagementPolicy", "OrderedReady"),
    ("sts-strategy", "StatefulSet", {"spec": {"template": template()}}, "spec.updateStrategy",
     {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
    ("sts-ondelete", "StatefulSet",
     {"spec": {"updateStrategy": {"type": "OnDelete"}, "template": template()}},
     "spec.updateStrategy", {"type": "OnDelete"}),
    ("sts-retention", "StatefulSet", {"spec": {"template": template()}},
     "spec.persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain",
                                                   "whenScaled": "Retain"}),
    ("sts-replicas", "StatefulSet", {"spec": {"template": template()}}, "spec.replicas", 1),
    ("sts-history", "StatefulSet", {"spec": {"template": template()}},
     "spec.revisionHistoryLimit", 10),
    ("sts-claim-volumemode", "StatefulSet",
     {"spec": {"template": template(), "volumeClaimTemplates": [
         {"metadata": {"name": "d"}, "spec": {"accessModes": ["ReadWriteOnce"]}}]}},
     "spec.volumeClaimTemplates[0].spec.volumeMode", "Filesystem"),
    ("ds-strategy", "DaemonSet", {"spec": {"template": template()}}, "spec.updateStrategy",
     {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
    ("ds-history", "DaemonSet", {"spec": {"template": template()}},
     "spec.revisionHistoryLimit", 10),
    # Other kinds
    ("ns-finalizer", "Namespace", {"metadata": {"name": "team"}}, "spec.finalizers",
     ["kubernetes"]),
    ("ns-finalizer-appended", "Namespace",
     {"metadata": {"name": "team"}, "spec": {"finalizers": ["example.com/x"]}},
     "spec.finalizers", ["example.com/x", "kubernetes"]),
    ("ns-terminating-no-finalizer", "Namespace",
     {"metadata": {"name": "team", "deletionTimestamp": "2024-01-01T00:00:00Z"},
      "spec": {"finalizers": []}}, "spec.finalizers", []),
    ("ns-phase", "Namespace", {"metadata": {"name": "team"}}, "status.phase", "Active"),
    ("ns-name-label", "Namespace", {"metadata": {"name": "team",
                                                 "labels": {"kubernetes.io/metadata.name": "x",
                                                            "a": "b"}}},
     "metadata.labels", {"kubernetes.io/metadata.name": "team", "a": "b"}),
    ("node-podcidrs", "Node", {"spec": {"podCIDR": "10.244.1.0/24"}}, "spec.podCIDRs",
     ["10.244.1.0/24"]),
    ("node-allocatable", "Node", {"status": {"capacity": {"cpu": "2"}}}, "status.allocatable",
     {"cpu": "2"}),
    ("pv-reclaim", "PersistentVolume", {"spec": {}}, "spec.persistentVolumeReclaimPolicy",
     "Retain"),
    ("pv-mode", "PersistentVolume", {"spec": {}}, "spec.volumeMode", "Filesystem"),
    ("pv-phase", "PersistentVolume", {"spec": {}}, "status.phase", "Pending"),
    ("pvc-mode", "PersistentVolumeClaim", {"spec": {}}, "spec.volumeMode", "Filesystem"),
    ("pvc-phase", "PersistentVolumeClaim", {"spec": {}}, "status.phase", "Pending"),
    ("ep-protocol", "Endpoints", {"subsets": [{"ports": [{"port": 80}]}]},
     "subsets[0].ports[0].protocol", "TCP"),
    ("slice-protocol", "EndpointSlice", {"ports": [{"port": 80}]}, "ports[0]",
     {"port": 80, "name": "", "protocol": "TCP"}),
    ("sc-reclaim", "StorageClass", {"provisioner": "x"}, "reclaimPolicy", "Delete"),
    ("sc-binding", "StorageClass", {"provisioner": "x"}, "volumeBindingMode", "Immediate"),
    ("scale-nothing", "Scale", {"spec": {}}, "spec", {}),
]


@pytest.mark.parametrize("kind,obj,path,want", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_defaults(kind: str, obj: dict[str, Any], path: str, want: Any) -> None:
    obj = copy.deepcopy(obj)
    apply_defaults(kind, obj)
    assert get(obj, path) == want


@pytest.mark.parametrize("image,want", [
    ("nginx", "Always"), ("nginx:latest", "Always"), ("nginx:1.25", "IfNotPresent"),
    ("localhost:5000/nginx", "Always"), ("localhost:5000/nginx:1", "IfNotPresent"),
    ("nginx@sha256:" + "a" * 64, "IfNotPresent"), ("", "IfNotPresent"),
], ids=["untagged", "latest", "tagged", "registry-port-untagged", "registry-port-tagged",
        "digest", "empty"])
def test_image_pull_policy(image: str, want: str) -> None:
    assert image_pull_policy(image) == want


@pytest.mark.parametrize("containers,want", [
    ([{"name": "a"}], "BestEffort"),
    ([{"resources": {"limits": {"cpu": "1", "memory": "1Gi"},
                     "requests": {"cpu": "1000m", "memory": "1024Mi"}}}], "Guaranteed"),
    ([{"resources": {"limits": {"cpu": "1"}}}], "Burstable"),
    ([{"resources": {"requests": {"memory": "1Gi"}}}], "Burstable"),
    ([{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
      {"resources": {}}], "Burstable"),
    ([{"resources": {"requests": {"cpu": "0"}}}], "BestEffort"),
], ids=["none", "equal-quantities", "cpu-only", "requests-only", "one-container-unbounded",
        "zero-request"])
def test_pod_qos_class(containers: list[dict[str, Any]], want: str) -> None:
    spec = {"containers": copy.deepcopy(containers)}
    apply_defaults("Pod", {"spec": spec})
    assert pod_qos_class(spec) == want


def test_unknown_kind_untouched() -> None:
    obj: dict[str, Any] = {"spec": {}}
    apply_defaults("Lease", obj)
    apply_defaults("Nope", obj)
    assert obj == {"spec": {}}


def test_wrongly_shaped_fields_do_not_raise() -> None:
    obj: dict[str, Any] = {"spec": {"containers": "x", "volumes": [1, None], "tolerations": "y"}}
    apply_defaults("Pod", obj)
    assert obj["spec"]["containers"] == "x" and obj["spec"]["tolerations"] == "y"
