"""netd.cli.describe*: kubectl describe's text over plain dicts.

The goldens follow kubectl's describers line for line (pkg/describe/describe.go):
the labels, block alignment from its tabwriter (minwidth 0, padding 2), and the
quirks (trailing spaces in condition rows, the empty column in the node pods table).
"""
from __future__ import annotations

import time
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Iterator

import pytest

from netd.cli.describe import (
    LAST_APPLIED, Related, Writer, annotations_multiline, event_interval, smart_label,
)
from netd.cli.describe_kinds import describe, node_roles, pod_counts, split_replica_sets
from netd.cli.describe_pods import field_ref_value, qos_class
from netd.cli.quantity import format_quantity, parse_quantity

NOW = datetime(2026, 1, 1, 0, 10, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # kubectl prints timestamps in the local zone; pin it.
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


POD: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "web-5d8f9c4b7-abcde", "namespace": "default", "uid": "u1",
                 "labels": {"app": "web", "pod-template-hash": "5d8f9c4b7"},
                 "annotations": {LAST_APPLIED: "{}"},
                 "ownerReferences": [{"kind": "ReplicaSet", "name": "web-5d8f9c4b7",
                                      "controller": True, "uid": "rs1"}],
                 "creationTimestamp": "2026-01-01T00:00:00Z"},
    "spec": {"serviceAccountName": "default", "nodeName": "node-1", "priority": 0,
             "containers": [{
                 "name": "web", "image": "nginx",
                 "ports": [{"containerPort": 80, "protocol": "TCP"}],
                 "env": [{"name": "A", "value": "1"},
                         {"name": "POD_IP", "valueFrom": {"fieldRef": {
                             "apiVersion": "v1", "fieldPath": "status.podIP"}}}],
                 "readinessProbe": {"httpGet": {"path": "/", "port": 80, "scheme": "HTTP"},
                                    "timeoutSeconds": 1, "periodSeconds": 10,
                                    "successThreshold": 1, "failureThreshold": 3}}],
             "tolerations": [
                 {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                  "effect": "NoExecute", "tolerationSeconds": 300},
                 {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                  "effect": "NoExecute", "tolerationSeconds": 300}]},
    "status": {"phase": "Running", "hostIP": "172.18.0.2", "podIP": "10.244.0.5",
               "podIPs": [{"ip": "10.244.0.5"}], "startTime": "2026-01-01T00:00:00Z",
               "conditions": [{"type": "Initialized", "status": "True"},
                              {"type": "Ready", "status": "True"},
                              {"type": "PodScheduled", "status": "True"}],
               "containerStatuses": [{
                   "name": "web", "ready": True, "restartCount": 0, "image": "nginx",
                   "imageID": "", "containerID": "netd://abc",
                   "state": {"running": {"startedAt": "2026-01-01T00:00:01Z"}}}]},
}
POD_EVENTS = [
    {"type": "Normal", "reason": "Scheduled",
     "message": "Successfully assigned default/web to node-1",
     "source": {"component": "default-scheduler"}, "count": 1,
     "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z"},
    {"type": "Warning", "reason": "Unhealthy", "message": "Readiness probe failed ",
     "source": {"component": "kubelet"}, "count": 4,
     "firstTimestamp": "2026-01-01T00:01:00Z", "lastTimestamp": "2026-01-01T00:05:00Z",
     "involvedObject": {"fieldPath": "spec.containers{web}"}},
]
SERVICE: dict[str, Any] = {
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {"type": "ClusterIP", "selector": {"app": "web"}, "clusterIP": "10.96.0.20",
             "clusterIPs": ["10.96.0.20"], "ipFamilies": ["IPv4"],
             "ipFamilyPolicy": "SingleStack", "sessionAffinity": "None",
             "internalTrafficPolicy": "Cluster",
             "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]},
}
SLICES = [{"ports": [{"name": "", "port": 8080, "protocol": "TCP"}],
           "endpoints": [{"addresses": ["10.244.0.5"], "conditions": {"ready": True}},
                         {"addresses": ["10.244.0.6"], "conditions": {"ready": False}}]}]
TEMPLATE = {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx",
                                     "resources": {"requests": {"cpu": "100m"}}}]}}
OWNER = [{"uid": "d1", "controller": True, "kind": "Deployment", "name": "web"}]
DEPLOYMENT: dict[str, Any] = {
    "metadata": {"name": "web", "namespace": "default", "uid": "d1",
                 "creationTimestamp": "2026-01-01T00:00:00Z", "labels": {"app": "web"},
                 "annotations": {"deployment.kubernetes.io/revision": "1"}},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE,
             "strategy": {"type": "RollingUpdate",
                          "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}},
    "status": {"replicas": 2, "updatedReplicas": 2, "availableReplicas": 1,
               "unavailableReplicas": 1,
               "conditions": [{"type": "Available", "status": "False",
                               "reason": "MinimumReplicasUnavailable"},
                              {"type": "Progressing", "status": "True",
                               "reason": "ReplicaSetUpdated"}]},
}
RS_NEW = {"metadata": {"name": "web-abc", "uid": "r1", "ownerReferences": OWNER},
          "spec": {"replicas": 2, "template": {
              "metadata": {"labels": {"app": "web", "pod-template-hash": "abc"}},
              "spec": TEMPLATE["spec"]}},
          "status": {"replicas": 2}}
RS_OLD = {"metadata": {"name": "web-old", "uid": "r0", "ownerReferences": OWNER},
          "spec": {"replicas": 0, "template": {
              "metadata": {"labels": {"app": "web", "pod-template-hash": "old"}},
              "spec": {"containers": [{"name": "web", "image": "httpd"}]}}},
          "status": {"replicas": 0}}
NODE: dict[str, Any] = {
    "metadata": {"name": "node-1", "uid": "n1", "creationTimestamp": "2026-01-01T00:00:00Z",
                 "labels": {"kubernetes.io/hostname": "node-1",
                            "node-role.kubernetes.io/control-plane": ""}},
    "spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"],
             "taints": [{"key": "a", "value": "b", "effect": "NoSchedule"}]},
    "status": {
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                        "message": "netd node agent is ready",
                        "lastHeartbeatTime": "2026-01-01T00:09:00Z",
                        "lastTransitionTime": "2026-01-01T00:00:00Z"}],
        "addresses": [{"type": "InternalIP", "address": "172.18.0.2"},
                      {"type": "Hostname", "address": "node-1"}],
        "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        "nodeInfo": {"kernelVersion": "6.1", "osImage": "netd", "operatingSystem": "linux",
                     "architecture": "amd64", "kubeletVersion": "v1.32.0-netd"}},
}
NODE_PODS = [{"metadata": {"name": "web-abc-1", "namespace": "default",
                           "creationTimestamp": "2026-01-01T00:05:00Z"},
              "spec": {"containers": [{"resources": {
                  "requests": {"cpu": "100m", "memory": "128Mi"},
                  "limits": {"memory": "256Mi"}}}]}}]
LEASE = {"spec": {"holderIdentity": "node-1", "renewTime": "2026-01-01T00:09:50.000000Z"}}
CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "c", "namespace": "default", "uid": "x",
                          "resourceVersion": "3", "creationTimestamp": "2026-01-01T00:00:00Z"},
             "data": {"key": "v", "other": "w"}, "binaryData": {"bin": "AAEC"}}
LEASE_OBJ = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": "l", "namespace": "kube-node-lease", "uid": "x"},
             "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40}}
NAMESPACE = {"metadata": {"name": "prod", "labels": {"kubernetes.io/metadata.name": "prod"}},
             "status": {"phase": "Active"}}

CASES = [
    ("Pod", POD, Related(events=POD_EVENTS)),
    ("Service", SERVICE, Related(events=[], endpoint_slices=SLICES)),
    ("Deployment", DEPLOYMENT, Related(events=[], replica_sets=[RS_OLD, RS_NEW])),
    ("Node", NODE, Related(events=None, pods=NODE_PODS, lease=LEASE)),
    ("ConfigMap", CONFIGMAP, Related(events=[])),
    ("Lease", LEASE_OBJ, Related(events=None)),
    ("Namespace", NAMESPACE, Related()),
]

GOLDEN = {
    'Pod': (
        'Name:             web-5d8f9c4b7-abcde\n'
        'Namespace:        default\n'
        'Priority:         0\n'
        'Service Account:  default\n'
        'Node:             node-1/172.18.0.2\n'
        'Start Time:       Thu, 01 Jan 2026 00:00:00 +0000\n'
        'Labels:           app=web\n'
        '                  pod-template-hash=5d8f9c4b7\n'
        'Annotations:      <none>\n'
        'Status:           Running\n'
        'IP:               10.244.0.5\n'
        'IPs:\n'
        '  IP:           10.244.0.5\n'
        'Controlled By:  ReplicaSet/web-5d8f9c4b7\n'
        'Containers:\n'
        '  web:\n'
        '    Container ID:   netd://abc\n'
        '    Image:          nginx\n'
        '    Image ID:       \n'
        '    Port:           80/TCP\n'
        '    Host Port:      0/TCP\n'
        '    State:          Running\n'
        '      Started:      Thu, 01 Jan 2026 00:00:01 +0000\n'
        '    Ready:          True\n'
        '    Restart Count:  0\n'
        '    Readiness:      http-get http://:80/ delay=0s timeout=1s period=10s successThreshold=1 failureThreshold=3\n'
        '    Environment:\n'
        '      A:       1\n'
        '      POD_IP:   (v1:status.podIP)\n'
        '    Mounts:    <none>\n'
        'Conditions:\n'
        '  Type           Status\n'
        '  Initialized    True \n'
        '  Ready          True \n'
        '  PodScheduled   True \n'
        'Volumes:         <none>\n'
        'QoS Class:       BestEffort\n'
        'Node-Selectors:  <none>\n'
        'Tolerations:     node.kubernetes.io/not-ready:NoExecute op=Exists for 300s\n'
        '                 node.kubernetes.io/unreachable:NoExecute op=Exists for 300s\n'
        'Events:\n'
        '  Type     Reason     Age              From               Message\n'
        '  ----     ------     ----             ----               -------\n'
        '  Normal   Scheduled  10m              default-scheduler  Successfully assigned default/web to node-1\n'
        '  Warning  Unhealthy  5m (x4 over 9m)  kubelet            spec.containers{web}: Readiness probe failed\n'
    ),
    'Service': (
        'Name:                     web\n'
        'Namespace:                default\n'
        'Labels:                   <none>\n'
        'Annotations:              <none>\n'
        'Selector:                 app=web\n'
        'Type:                     ClusterIP\n'
        'IP Family Policy:         SingleStack\n'
        'IP Families:              IPv4\n'
        'IP:                       10.96.0.20\n'
        'IPs:                      10.96.0.20\n'
        'Port:                     <unset>  80/TCP\n'
        'TargetPort:               8080/TCP\n'
        'Endpoints:                10.244.0.5:8080\n'
        'Session Affinity:         None\n'
        'Internal Traffic Policy:  Cluster\n'
        'Events:                   <none>\n'
    ),
    'Deployment': (
        'Name:                   web\n'
        'Namespace:              default\n'
        'CreationTimestamp:      Thu, 01 Jan 2026 00:00:00 +0000\n'
        'Labels:                 app=web\n'
        'Annotations:            deployment.kubernetes.io/revision: 1\n'
        'Selector:               app=web\n'
        'Replicas:               2 desired | 2 updated | 2 total | 1 available | 1 unavailable\n'
        'StrategyType:           RollingUpdate\n'
        'MinReadySeconds:        0\n'
        'RollingUpdateStrategy:  25% max unavailable, 25% max surge\n'
        'Pod Template:\n'
        '  Labels:  app=web\n'
        '  Containers:\n'
        '   web:\n'
        '    Image:      nginx\n'
        '    Port:       <none>\n'
        '    Host Port:  <none>\n'
        '    Requests:\n'
        '      cpu:         100m\n'
        '    Environment:   <none>\n'
        '    Mounts:        <none>\n'
        '  Volumes:         <none>\n'
        '  Node-Selectors:  <none>\n'
        '  Tolerations:     <none>\n'
        'Conditions:\n'
        '  Type           Status  Reason\n'
        '  ----           ------  ------\n'
        '  Available      False   MinimumReplicasUnavailable\n'
        '  Progressing    True    ReplicaSetUpdated\n'
        'OldReplicaSets:  web-old (0/0 replicas created)\n'
        'NewReplicaSet:   web-abc (2/2 replicas created)\n'
        'Events:          <none>\n'
    ),
    'Node': (
        'Name:               node-1\n'
        'Roles:              control-plane\n'
        'Labels:             kubernetes.io/hostname=node-1\n'
        '                    node-role.kubernetes.io/control-plane=\n'
        'Annotations:        <none>\n'
        'CreationTimestamp:  Thu, 01 Jan 2026 00:00:00 +0000\n'
        'Taints:             a=b:NoSchedule\n'
        'Unschedulable:      false\n'
        'Lease:\n'
        '  HolderIdentity:  node-1\n'
        '  AcquireTime:     <unset>\n'
        '  RenewTime:       Thu, 01 Jan 2026 00:09:50 +0000\n'
        'Conditions:\n'
        '  Type    Status  LastHeartbeatTime                 LastTransitionTime                Reason         Message\n'
        '  ----    ------  -----------------                 ------------------                ------         -------\n'
        '  Ready   True    Thu, 01 Jan 2026 00:09:00 +0000   Thu, 01 Jan 2026 00:00:00 +0000   KubeletReady   netd node agent is ready\n'
        'Addresses:\n'
        '  InternalIP:  172.18.0.2\n'
        '  Hostname:    node-1\n'
        'Capacity:\n'
        '  cpu:     4\n'
        '  memory:  8Gi\n'
        '  pods:    110\n'
        'Allocatable:\n'
        '  cpu:     4\n'
        '  memory:  8Gi\n'
        '  pods:    110\n'
        'System Info:\n'
        '  Machine ID:                 \n'
        '  System UUID:                \n'
        '  Boot ID:                    \n'
        '  Kernel Version:             6.1\n'
        '  OS Image:                   netd\n'
        '  Operating System:           linux\n'
        '  Architecture:               amd64\n'
        '  Container Runtime Version:  \n'
        '  Kubelet Version:            v1.32.0-netd\n'
        '  Kube-Proxy Version:         \n'
        'PodCIDR:                      10.244.0.0/24\n'
        'PodCIDRs:                     10.244.0.0/24\n'
        'Non-terminated Pods:          (1 in total)\n'
        '  Namespace                   Name         CPU Requests  CPU Limits  Memory Requests  Memory Limits  Age\n'
        '  ---------                   ----         ------------  ----------  ---------------  -------------  ---\n'
        '  default                     web-abc-1    100m (2%)     0 (0%)      128Mi (1%)       256Mi (3%)     5m\n'
        'Allocated resources:\n'
        '  (Total limits may be over 100 percent, i.e., overcommitted.)\n'
        '  Resource           Requests    Limits\n'
        '  --------           --------    ------\n'
        '  cpu                100m (2%)   0 (0%)\n'
        '  memory             128Mi (1%)  256Mi (3%)\n'
        '  ephemeral-storage  0 (0%)      0 (0%)\n'
    ),
    'ConfigMap': (
        'Name:         c\n'
        'Namespace:    default\n'
        'Labels:       <none>\n'
        'Annotations:  <none>\n'
        '\n'
        'Data\n'
        '====\n'
        'key:\n'
        '----\n'
        'v\n'
        '\n'
        'other:\n'
        '----\n'
        'w\n'
        '\n'
        '\n'
        'BinaryData\n'
        '====\n'
        'bin: 3 bytes\n'
        '\n'
        'Events:  <none>\n'
    ),
    'Lease': (
        'Name:         l\n'
        'Namespace:    kube-node-lease\n'
        'Labels:       <none>\n'
        'Annotations:  <none>\n'
        'API Version:  coordination.k8s.io/v1\n'
        'Kind:         Lease\n'
        'Metadata:\n'
        '  UID:  x\n'
        'Spec:\n'
        '  Holder Identity:         node-1\n'
        '  Lease Duration Seconds:  40\n'
    ),
    'Namespace': (
        'Name:         prod\n'
        'Labels:       kubernetes.io/metadata.name=prod\n'
        'Annotations:  <none>\n'
        'Status:       Active\n'
    ),
}


@pytest.mark.parametrize("kind,obj,rel", CASES, ids=[c[0] for c in CASES])
def test_describe_golden(kind: str, obj: dict[str, Any], rel: Related) -> None:
    assert describe(kind, obj, rel, NOW) == GOLDEN[kind]


def test_describe_pod_terminating_and_unscheduled() -> None:
    pod = {"metadata": {"name": "p", "namespace": "default",
                        "deletionTimestamp": "2026-01-01T00:09:30Z",
                        "deletionGracePeriodSeconds": 30},
           "spec": {"containers": [{"name": "c", "image": "busybox",
                                    "command": ["sh", "-c", "a\nb"]}]},
           "status": {"phase": "Running"}}
    text = describe("Pod", pod, Related(events=None), NOW)
    assert "Node:                      <none>\n" in text
    assert "Status:                    Terminating (lasts 30s)\n" in text
    assert "Termination Grace Period:  30s\n" in text
    assert "    Command:\n      sh\n      -c\n      a\n      b\n" in text
    assert "IPs:                       <none>\n" in text
    assert "Events:" not in text


@pytest.mark.parametrize("name,label", [
    ("apiVersion", "API Version"), ("resourceVersion", "Resource Version"),
    ("uid", "UID"), ("clusterIP", "Cluster IP"), ("podCIDRs", "Pod CIDRs"),
    ("HTTPServer", "HTTPServer"), ("data", "Data"), ("ipv4", "ipv4"),
    ("kube-proxy", "Kube - Proxy"), ("serviceURL", "Service URL"),
], ids=lambda v: str(v))
def test_smart_label(name: str, label: str) -> None:
    assert smart_label(name) == label


def test_annotations_long_and_multiline_values() -> None:
    w = Writer()
    annotations_multiline(w, "Annotations", {
        "b": "x" * 150, "a": "short", "c": "one\ntwo\n", LAST_APPLIED: "{}"})
    assert w.text() == (
        "Annotations:  a: short\n"
        "              b:\n"
        "                " + "x" * 138 + "...\n"
        "              c:\n"
        "                one\n"
        "                two\n")


@pytest.mark.parametrize("event,expected", [
    ({"firstTimestamp": "2026-01-01T00:09:00Z", "count": 1}, "60s"),
    ({"firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:08:00Z",
      "count": 3}, "2m (x3 over 10m)"),
    ({"eventTime": "2026-01-01T00:09:58.000000Z"}, "2s"),
    ({"eventTime": "2026-01-01T00:00:00.000000Z",
      "series": {"count": 7, "lastObservedTime": "2026-01-01T00:09:00.000000Z"}},
     "60s (x7 over 10m)"),
    ({}, "<unknown>"),
], ids=["single", "counted", "event-time", "series", "no-time"])
def test_event_interval(event: dict[str, Any], expected: str) -> None:
    assert event_interval(event, NOW) == expected


def test_service_endpoints_truncate_and_headless() -> None:
    many = [{"ports": [{"name": "http", "port": 80}],
             "endpoints": [{"addresses": [f"10.0.0.{i}"]} for i in range(5)]}]
    svc = {"metadata": {"name": "s", "namespace": "d"},
           "spec": {"ports": [{"name": "http", "port": 80, "targetPort": "web",
                               "nodePort": 30080, "protocol": "TCP"}]}}
    text = describe("Service", svc, Related(endpoint_slices=many), NOW)
    assert "Endpoints:         10.0.0.0:80,10.0.0.1:80,10.0.0.2:80 + 2 more...\n" in text
    assert "TargetPort:        web/TCP\n" in text
    assert "NodePort:          http  30080/TCP\n" in text
    headless = [{"endpoints": [{"addresses": ["10.0.0.9"]}]}]
    svc2 = {"metadata": {"name": "h"}, "spec": {"clusterIP": "None",
                                               "ports": [{"port": 80}]}}
    assert "Endpoints:         10.0.0.9\n" in describe(
        "Service", svc2, Related(endpoint_slices=headless), NOW)
    assert "Endpoints:         <none>\n" in describe("Service", svc2, Related(), NOW)


def test_split_replica_sets_and_pod_counts() -> None:
    other = {"metadata": {"name": "x", "ownerReferences": [{"uid": "zz", "controller": True}]},
             "spec": TEMPLATE}
    old, new = split_replica_sets(DEPLOYMENT, [RS_OLD, RS_NEW, other])
    assert [r["metadata"]["name"] for r in old] == ["web-old"]
    assert [r["metadata"]["name"] for r in new] == ["web-abc"]
    mine = {"uid": "r1", "controller": True}
    pods = [{"metadata": {"ownerReferences": [mine]}, "status": {"phase": p}}
            for p in ("Running", "Running", "Pending", "Failed")]
    pods.append({"metadata": {}, "status": {"phase": "Running"}})  # orphan: not counted
    assert pod_counts(pods, "r1") == (2, 1, 0, 1)


@pytest.mark.parametrize("containers,expected", [
    ([{}], "BestEffort"),
    ([{"resources": {"requests": {"cpu": "100m"}}}], "Burstable"),
    ([{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}], "Guaranteed"),
    ([{"resources": {"limits": {"cpu": "1", "memory": "1Gi"},
                     "requests": {"cpu": "1000m", "memory": "1Gi"}}}], "Guaranteed"),
    ([{"resources": {"limits": {"cpu": "1", "memory": "1Gi"},
                     "requests": {"cpu": "500m"}}}], "Burstable"),
], ids=["best-effort", "burstable", "guaranteed", "guaranteed-equal", "burstable-lower"])
def test_qos_class(containers: list[dict[str, Any]], expected: str) -> None:
    assert qos_class({"spec": {"containers": containers}}) == expected
    assert qos_class({"spec": {}, "status": {"qosClass": "Given"}}) == "Given"


def test_node_roles_and_field_refs() -> None:
    assert node_roles({"metadata": {"labels": {"node-role.kubernetes.io/worker": "",
                                               "kubernetes.io/role": "edge",
                                               "node-role.kubernetes.io/": "x"}}}) == [
        "edge", "worker"]
    # kubectl's scheme converts only the metadata name/namespace field labels.
    assert field_ref_value(POD, "metadata.name") == "web-5d8f9c4b7-abcde"
    assert field_ref_value(POD, "metadata.namespace") == "default"
    assert field_ref_value(POD, "spec.nodeName") == ""
    assert field_ref_value(POD, "metadata.labels['app']") == ""
    assert field_ref_value(None, "metadata.name") == ""


@pytest.mark.parametrize("text,value", [
    ("100m", Decimal("0.1")), ("2", Decimal(2)), ("1Gi", Decimal(2 ** 30)),
    ("500M", Decimal(500_000_000)), ("1e3", Decimal(1000)), (3, Decimal(3)),
    ("bogus", Decimal(0)),
], ids=lambda v: str(v))
def test_parse_quantity(text: Any, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("value,resource,text", [
    (Decimal("0.25"), "cpu", "250m"), (Decimal(2), "cpu", "2"), (Decimal(0), "cpu", "0"),
    (Decimal(128 * 2 ** 20), "memory", "128Mi"), (Decimal(1_500_000_000), "memory", "1500M"),
    (Decimal(1000), "memory", "1k"), (Decimal(1001), "memory", "1001"),
], ids=lambda v: str(v))
def test_format_quantity(value: Decimal, resource: str, text: str) -> None:
    assert format_quantity(value, resource) == text


def test_node_without_allocatable_prints_kubectls_overflowed_percentages() -> None:
    # kubectl divides by the node's allocatable without a guard in the per-pod rows;
    # Go's int64(NaN) is the minimum int64. The totals below are guarded (0%).
    node = {"metadata": {"name": "bare"}, "status": {}}
    text = describe("Node", node, Related(pods=NODE_PODS), NOW)
    assert "100m (-9223372036854775808%)  0 (-9223372036854775808%)" in text
    assert "  cpu                100m (0%)   0 (0%)\n" in text
