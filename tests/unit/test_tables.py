"""Golden tests for netd.api.tables: the columns and cells kube-apiserver 1.32 serves.

Expected values come from the apiserver printers (pkg/printers/internalversion) and what
`kubectl get` shows against a real cluster; `now` is fixed so ages are exact.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from netd.api.errors import BadRequest
from netd.api.tables import column_definitions, human_duration, row_cells, to_table

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=timezone.utc)


def ago(**kw: float) -> str:
    return (NOW - timedelta(**kw)).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str = "x", created: str | None = None, **extra: Any) -> dict[str, Any]:
    m: dict[str, Any] = {"name": name, "namespace": "default",
                         "creationTimestamp": created or ago(minutes=5)}
    m.update(extra)
    return m


# --------------------------------------------------------------------------- durations

@pytest.mark.parametrize("delta,want", [
    (timedelta(0), "0s"),
    (timedelta(seconds=-1), "0s"),
    (timedelta(seconds=-1.5), "0s"),
    (timedelta(seconds=-2), "<invalid>"),
    (timedelta(seconds=59.9), "59s"),
    (timedelta(seconds=119), "119s"),
    (timedelta(minutes=2), "2m"),
    (timedelta(minutes=3, seconds=20), "3m20s"),
    (timedelta(minutes=9, seconds=59), "9m59s"),
    (timedelta(minutes=10, seconds=30), "10m"),
    (timedelta(minutes=179), "179m"),
    (timedelta(hours=3), "3h"),
    (timedelta(hours=3, minutes=5), "3h5m"),
    (timedelta(hours=7, minutes=59), "7h59m"),
    (timedelta(hours=8, minutes=30), "8h"),
    (timedelta(hours=47), "47h"),
    (timedelta(hours=48), "2d"),
    (timedelta(days=2, hours=5), "2d5h"),
    (timedelta(days=7, hours=23), "7d23h"),
    (timedelta(days=8, hours=3), "8d"),
    (timedelta(days=729), "729d"),
    (timedelta(days=730), "2y"),
    (timedelta(days=731), "2y1d"),
    (timedelta(days=365 * 8), "8y"),
    (timedelta(days=365 * 20 + 100), "20y"),
], ids=lambda v: str(v))
def test_human_duration(delta: timedelta, want: str) -> None:
    assert human_duration(delta) == want


# --------------------------------------------------------------------------- headers

def kubectl_header(kind: str, wide: bool = False) -> str:
    """The header line kubectl derives from the column definitions."""
    cols = column_definitions(kind)
    return " ".join(c["name"].upper() for c in cols if wide or c["priority"] == 0)


HEADERS = {
    "Pod": ("NAME READY STATUS RESTARTS AGE",
            "NAME READY STATUS RESTARTS AGE IP NODE NOMINATED NODE READINESS GATES"),
    "Service": ("NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE",
                "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE SELECTOR"),
    "Endpoints": ("NAME ENDPOINTS AGE", "NAME ENDPOINTS AGE"),
    "EndpointSlice": ("NAME ADDRESSTYPE PORTS ENDPOINTS AGE",
                      "NAME ADDRESSTYPE PORTS ENDPOINTS AGE"),
    "ReplicationController": ("NAME DESIRED CURRENT READY AGE",
                              "NAME DESIRED CURRENT READY AGE CONTAINERS IMAGES SELECTOR"),
    "ReplicaSet": ("NAME DESIRED CURRENT READY AGE",
                   "NAME DESIRED CURRENT READY AGE CONTAINERS IMAGES SELECTOR"),
    "Deployment": ("NAME READY UP-TO-DATE AVAILABLE AGE",
                   "NAME READY UP-TO-DATE AVAILABLE AGE CONTAINERS IMAGES SELECTOR"),
    "StatefulSet": ("NAME READY AGE", "NAME READY AGE CONTAINERS IMAGES"),
    "DaemonSet": ("NAME DESIRED CURRENT READY UP-TO-DATE AVAILABLE NODE SELECTOR AGE",
                  "NAME DESIRED CURRENT READY UP-TO-DATE AVAILABLE NODE SELECTOR AGE "
                  "CONTAINERS IMAGES SELECTOR"),
    "ControllerRevision": ("NAME CONTROLLER REVISION AGE", "NAME CONTROLLER REVISION AGE"),
    "Namespace": ("NAME STATUS AGE", "NAME STATUS AGE"),
    "Node": ("NAME STATUS ROLES AGE VERSION",
             "NAME STATUS ROLES AGE VERSION INTERNAL-IP EXTERNAL-IP OS-IMAGE KERNEL-VERSION "
             "CONTAINER-RUNTIME"),
    "PersistentVolume": (
        "NAME CAPACITY ACCESS MODES RECLAIM POLICY STATUS CLAIM STORAGECLASS "
        "VOLUMEATTRIBUTESCLASS REASON AGE",
        "NAME CAPACITY ACCESS MODES RECLAIM POLICY STATUS CLAIM STORAGECLASS "
        "VOLUMEATTRIBUTESCLASS REASON AGE VOLUMEMODE"),
    "PersistentVolumeClaim": (
        "NAME STATUS VOLUME CAPACITY ACCESS MODES STORAGECLASS VOLUMEATTRIBUTESCLASS AGE",
        "NAME STATUS VOLUME CAPACITY ACCESS MODES STORAGECLASS VOLUMEATTRIBUTESCLASS AGE "
        "VOLUMEMODE"),
    "StorageClass": (
        "NAME PROVISIONER RECLAIMPOLICY VOLUMEBINDINGMODE ALLOWVOLUMEEXPANSION AGE",
        "NAME PROVISIONER RECLAIMPOLICY VOLUMEBINDINGMODE ALLOWVOLUMEEXPANSION AGE"),
    "ConfigMap": ("NAME DATA AGE", "NAME DATA AGE"),
    "Lease": ("NAME HOLDER AGE", "NAME HOLDER AGE"),
    "Event": ("LAST SEEN TYPE REASON OBJECT MESSAGE",
              "LAST SEEN TYPE REASON OBJECT SUBOBJECT SOURCE MESSAGE FIRST SEEN COUNT NAME"),
    "Widget": ("NAME CREATED AT", "NAME CREATED AT"),
}


@pytest.mark.parametrize("kind", list(HEADERS), ids=list(HEADERS))
def test_kubectl_headers(kind: str) -> None:
    narrow, wide = HEADERS[kind]
    assert kubectl_header(kind) == narrow
    assert kubectl_header(kind, wide=True) == wide


@pytest.mark.parametrize("kind", list(HEADERS), ids=list(HEADERS))
def test_column_definition_shape(kind: str) -> None:
    cols = column_definitions(kind)
    for col in cols:
        assert set(col) == {"name", "type", "format", "description", "priority"}
        assert col["type"] in ("string", "integer", "date")
        assert col["priority"] in (0, 1)
        assert col["description"], col["name"]
    # The object name column is the one formatted "name" (Event puts it last, wide).
    named = [c["name"] for c in cols if c["format"] == "name"]
    assert named == ["Name"]
    # Every row has one cell per column definition.
    assert len(row_cells(kind, {"metadata": meta()}, NOW)) == len(cols)


@pytest.mark.parametrize("kind,integer_columns", [
    ("Pod", []),
    ("ReplicationController", ["Desired", "Current", "Ready"]),
    ("ReplicaSet", ["Desired", "Current", "Ready"]),
    ("DaemonSet", ["Desired", "Current", "Ready", "Up-to-date", "Available"]),
    ("Deployment", []),
    ("Event", []),
], ids=lambda v: str(v))
def test_integer_columns(kind: str, integer_columns: list[str]) -> None:
    cols = column_definitions(kind)
    assert [c["name"] for c in cols if c["type"] == "integer"] == integer_columns


def test_default_table_columns() -> None:
    cols = column_definitions("Widget")
    assert [(c["name"], c["type"], c["format"]) for c in cols] == [
        ("Name", "string", "name"), ("Created At", "date", "")]
    assert cols[1]["description"].startswith("CreationTimestamp is a timestamp")
    assert "\n\nPopulated by the system." in cols[1]["description"]


def test_column_definitions_are_fresh_copies() -> None:
    column_definitions("Pod")[0]["name"] = "mutated"
    assert column_definitions("Pod")[0]["name"] == "Name"


# --------------------------------------------------------------------------- pods

def pod(status: dict[str, Any] | None = None, *, containers: int = 1,
        init: list[dict[str, Any]] | None = None, deleting: bool = False,
        spec: dict[str, Any] | None = None) -> dict[str, Any]:
    m = meta("web-1")
    if deleting:
        m["deletionTimestamp"] = ago(seconds=10)
    s: dict[str, Any] = {"containers": [{"name": f"c{i}", "image": "nginx"}
                                        for i in range(containers)]}
    if init is not None:
        s["initContainers"] = init
    s.update(spec or {})
    return {"apiVersion": "v1", "kind": "Pod", "metadata": m, "spec": s,
            "status": status if status is not None else {}}


RUNNING = {"running": {"startedAt": ago(minutes=4)}}


def cs(name: str = "c0", state: dict[str, Any] | None = None, ready: bool = False,
       restarts: int = 0, last_finished: str | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "ready": ready, "restartCount": restarts,
                           "state": state if state is not None else {}}
    if last_finished is not None:
        out["lastState"] = {"terminated": {"exitCode": 1, "finishedAt": last_finished}}
    out.update(extra)
    return out


POD_CASES: list[tuple[str, dict[str, Any], tuple[str, str, str]]] = [
    ("empty-status-pending", pod({}), ("0/1", "", "0")),
    ("phase-pending", pod({"phase": "Pending"}), ("0/1", "Pending", "0")),
    ("status-reason-wins", pod({"phase": "Failed", "reason": "Evicted"}),
     ("0/1", "Evicted", "0")),
    ("scheduling-gated", pod({"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
     ("0/1", "SchedulingGated", "0")),
    ("container-creating", pod({"phase": "Pending", "containerStatuses": [
        cs(state={"waiting": {"reason": "ContainerCreating"}})]}),
     ("0/1", "ContainerCreating", "0")),
    ("running-ready", pod({"phase": "Running", "containerStatuses": [
        cs(state=RUNNING, ready=True)]}), ("1/1", "Running", "0")),
    ("running-one-of-two-ready", pod({"phase": "Running", "containerStatuses": [
        cs("c0", RUNNING, ready=True), cs("c1", RUNNING, ready=False)]}, containers=2),
     ("1/2", "Running", "0")),
    ("crashloop-with-restart-age", pod({"phase": "Running", "containerStatuses": [
        cs(state={"waiting": {"reason": "CrashLoopBackOff"}}, restarts=4,
           last_finished=ago(minutes=5))]}),
     ("0/1", "CrashLoopBackOff", "4 (5m ago)")),
    ("restart-age-uses-latest-finish", pod({"phase": "Running", "containerStatuses": [
        cs("c0", RUNNING, True, restarts=1, last_finished=ago(hours=3)),
        cs("c1", RUNNING, True, restarts=2, last_finished=ago(seconds=40))]}, containers=2),
     ("2/2", "Running", "3 (40s ago)")),
    ("restarts-without-finish-time", pod({"phase": "Running", "containerStatuses": [
        cs(state=RUNNING, ready=True, restarts=2)]}), ("1/1", "Running", "2")),
    ("completed", pod({"phase": "Succeeded", "containerStatuses": [
        cs(state={"terminated": {"exitCode": 0, "reason": "Completed"}})]}),
     ("0/1", "Completed", "0")),
    ("error", pod({"phase": "Failed", "containerStatuses": [
        cs(state={"terminated": {"exitCode": 1, "reason": "Error"}})]}),
     ("0/1", "Error", "0")),
    ("terminated-signal", pod({"phase": "Failed", "containerStatuses": [
        cs(state={"terminated": {"exitCode": 137, "signal": 9}})]}),
     ("0/1", "Signal:9", "0")),
    ("terminated-exit-code", pod({"phase": "Failed", "containerStatuses": [
        cs(state={"terminated": {"exitCode": 2}})]}),
     ("0/1", "ExitCode:2", "0")),
    ("completed-but-one-running-ready", pod({"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True"}], "containerStatuses": [
        cs("c0", {"terminated": {"exitCode": 0, "reason": "Completed"}}),
        cs("c1", RUNNING, ready=True)]}, containers=2),
     ("1/2", "Running", "0")),
    ("completed-but-one-running-not-ready", pod({"phase": "Running", "containerStatuses": [
        cs("c0", {"terminated": {"exitCode": 0, "reason": "Completed"}}),
        cs("c1", RUNNING, ready=True)]}, containers=2),
     ("1/2", "NotReady", "0")),
    ("init-progress", pod({"phase": "Pending", "initContainerStatuses": [
        cs("i0", {"terminated": {"exitCode": 0, "reason": "Completed"}}),
        cs("i1", RUNNING)]}, init=[{"name": "i0"}, {"name": "i1"}]),
     ("0/1", "Init:1/2", "0")),
    ("init-waiting-pod-initializing-counts-progress", pod({
        "phase": "Pending", "initContainerStatuses": [
            cs("i0", {"waiting": {"reason": "PodInitializing"}})]}, init=[{"name": "i0"}]),
     ("0/1", "Init:0/1", "0")),
    ("init-crashloop", pod({"phase": "Pending", "initContainerStatuses": [
        cs("i0", {"waiting": {"reason": "CrashLoopBackOff"}}, restarts=3,
           last_finished=ago(minutes=1))],
        "containerStatuses": [cs(state={"waiting": {"reason": "PodInitializing"}})]},
        init=[{"name": "i0"}]),
     ("0/1", "Init:CrashLoopBackOff", "3 (60s ago)")),
    ("init-error", pod({"phase": "Pending", "initContainerStatuses": [
        cs("i0", {"terminated": {"exitCode": 1, "reason": "Error"}})]}, init=[{"name": "i0"}]),
     ("0/1", "Init:Error", "0")),
    ("init-exit-code", pod({"phase": "Pending", "initContainerStatuses": [
        cs("i0", {"terminated": {"exitCode": 3}})]}, init=[{"name": "i0"}]),
     ("0/1", "Init:ExitCode:3", "0")),
    ("init-signal", pod({"phase": "Pending", "initContainerStatuses": [
        cs("i0", {"terminated": {"exitCode": 1, "signal": 15}})]}, init=[{"name": "i0"}]),
     ("0/1", "Init:Signal:15", "0")),
    ("sidecar-counts-ready-and-total", pod({"phase": "Running", "conditions": [
        {"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
        "initContainerStatuses": [
            cs("side", RUNNING, ready=True, started=True, restarts=1,
               last_finished=ago(minutes=2))],
        "containerStatuses": [cs(state=RUNNING, ready=True)]},
        init=[{"name": "side", "restartPolicy": "Always"}]),
     ("2/2", "Running", "1 (2m ago)")),
    ("terminating", pod({"phase": "Running", "containerStatuses": [
        cs(state=RUNNING, ready=True)]}, deleting=True), ("1/1", "Terminating", "0")),
    ("terminating-finished-pod-keeps-reason", pod({"phase": "Succeeded", "containerStatuses": [
        cs(state={"terminated": {"exitCode": 0, "reason": "Completed"}})]}, deleting=True),
     ("0/1", "Completed", "0")),
    ("node-lost-unknown", pod({"phase": "Running", "reason": "NodeLost"}, deleting=True),
     ("0/1", "Unknown", "0")),
]


@pytest.mark.parametrize("obj,want", [(o, w) for _, o, w in POD_CASES],
                         ids=[i for i, _, _ in POD_CASES])
def test_pod_ready_status_restarts(obj: dict[str, Any], want: tuple[str, str, str]) -> None:
    cells = row_cells("Pod", obj, NOW)
    assert tuple(cells[1:4]) == want
    assert cells[0] == "web-1" and cells[4] == "5m"


@pytest.mark.parametrize("status,spec,want", [
    ({}, {}, ["<none>", "<none>", "<none>", "<none>"]),
    ({"podIP": "10.244.1.5", "podIPs": [{"ip": "10.244.1.5"}, {"ip": "fd00::5"}],
      "nominatedNodeName": "n2"}, {"nodeName": "n1"}, ["10.244.1.5", "n1", "n2", "<none>"]),
    ({"podIP": "10.244.1.6"}, {}, ["10.244.1.6", "<none>", "<none>", "<none>"]),
    ({"conditions": [{"type": "gate/a", "status": "True"}, {"type": "gate/b",
                                                            "status": "False"}]},
     {"readinessGates": [{"conditionType": "gate/a"}, {"conditionType": "gate/b"},
                         {"conditionType": "gate/c"}]},
     ["<none>", "<none>", "<none>", "1/3"]),
], ids=["empty", "ips-and-nodes", "podip-only", "readiness-gates"])
def test_pod_wide_cells(status: dict[str, Any], spec: dict[str, Any], want: list[str]) -> None:
    assert row_cells("Pod", pod(status, spec=spec), NOW)[5:] == want


# --------------------------------------------------------------------------- services

def svc(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": meta("web", ago(days=2, hours=5)), "spec": spec,
            "status": status or {}}


SERVICE_CASES = [
    ("cluster-ip", svc({"type": "ClusterIP", "clusterIP": "10.96.0.20",
                        "clusterIPs": ["10.96.0.20"], "selector": {"app": "nginx"},
                        "ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}]}),
     ["web", "ClusterIP", "10.96.0.20", "<none>", "80/TCP", "2d5h", "app=nginx"]),
    ("kube-dns-multi-port", svc({"type": "ClusterIP", "clusterIPs": ["10.96.0.10"],
                                 "selector": {"k8s-app": "kube-dns"},
                                 "ports": [{"port": 53, "protocol": "UDP"},
                                           {"port": 53, "protocol": "TCP"},
                                           {"port": 9153, "protocol": "TCP"}]}),
     ["web", "ClusterIP", "10.96.0.10", "<none>", "53/UDP,53/TCP,9153/TCP", "2d5h",
      "k8s-app=kube-dns"]),
    ("node-port", svc({"type": "NodePort", "clusterIPs": ["10.96.5.5"],
                       "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}],
                       "selector": {"tier": "web", "app": "nginx"}}),
     ["web", "NodePort", "10.96.5.5", "<none>", "80:30080/TCP", "2d5h",
      "app=nginx,tier=web"]),
    ("external-ips", svc({"type": "ClusterIP", "clusterIPs": ["10.96.5.6"],
                          "externalIPs": ["192.0.2.10", "192.0.2.11"],
                          "ports": [{"port": 443, "protocol": "TCP"}]}),
     ["web", "ClusterIP", "10.96.5.6", "192.0.2.10,192.0.2.11", "443/TCP", "2d5h", "<none>"]),
    ("lb-pending", svc({"type": "LoadBalancer", "clusterIPs": ["10.96.5.7"],
                        "ports": [{"port": 80, "nodePort": 31000, "protocol": "TCP"}]}),
     ["web", "LoadBalancer", "10.96.5.7", "<pending>", "80:31000/TCP", "2d5h", "<none>"]),
    ("lb-ingress-sorted-dedup", svc(
        {"type": "LoadBalancer", "clusterIPs": ["10.96.5.8"],
         "ports": [{"port": 80, "nodePort": 31001, "protocol": "TCP"}]},
        {"loadBalancer": {"ingress": [{"ip": "198.51.100.9"}, {"hostname": "lb.example.com"},
                                      {"ip": "198.51.100.2"}, {"ip": "198.51.100.9"}]}}),
     ["web", "LoadBalancer", "10.96.5.8", "198.51.100.2,198.51.100.9,lb.example.com",
      "80:31001/TCP", "2d5h", "<none>"]),
    ("lb-ingress-plus-external", svc(
        {"type": "LoadBalancer", "clusterIPs": ["10.96.5.9"], "externalIPs": ["192.0.2.1"],
         "ports": [{"port": 80, "nodePort": 31002, "protocol": "TCP"}]},
        {"loadBalancer": {"ingress": [{"ip": "198.51.100.3"}]}}),
     ["web", "LoadBalancer", "10.96.5.9", "198.51.100.3,192.0.2.1", "80:31002/TCP", "2d5h",
      "<none>"]),
    ("external-name", svc({"type": "ExternalName", "externalName": "db.example.com"}),
     ["web", "ExternalName", "<none>", "db.example.com", "<none>", "2d5h", "<none>"]),
    ("headless", svc({"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"],
                      "selector": {"app": "db"},
                      "ports": [{"port": 5432, "protocol": "TCP"}]}),
     ["web", "ClusterIP", "None", "<none>", "5432/TCP", "2d5h", "app=db"]),
    ("sctp-and-defaults", svc({"clusterIP": "10.96.1.1",
                               "ports": [{"port": 9000, "protocol": "SCTP"}, {"port": 81}]}),
     ["web", "ClusterIP", "10.96.1.1", "<none>", "9000/SCTP,81/TCP", "2d5h", "<none>"]),
]


@pytest.mark.parametrize("obj,want", [(o, w) for _, o, w in SERVICE_CASES],
                         ids=[i for i, _, _ in SERVICE_CASES])
def test_service_cells(obj: dict[str, Any], want: list[Any]) -> None:
    assert row_cells("Service", obj, NOW) == want


# --------------------------------------------------------------------------- endpoints

def addrs(*ips: str) -> list[dict[str, str]]:
    return [{"ip": ip} for ip in ips]


ENDPOINTS_CASES = [
    ("no-subsets", {}, "<none>"),
    ("one", {"subsets": [{"addresses": addrs("10.244.1.5"), "ports": [{"port": 80}]}]},
     "10.244.1.5:80"),
    ("more", {"subsets": [{"addresses": addrs("10.244.1.5", "10.244.2.3", "10.244.3.4",
                                              "10.244.4.4"),
                           "ports": [{"port": 80}]}]},
     "10.244.1.5:80,10.244.2.3:80,10.244.3.4:80 + 1 more..."),
    ("ports-multiply", {"subsets": [{"addresses": addrs("10.0.0.1", "10.0.0.2"),
                                     "ports": [{"port": 53, "name": "dns"},
                                               {"port": 9153, "name": "metrics"}]}]},
     "10.0.0.1:53,10.0.0.2:53,10.0.0.1:9153 + 1 more..."),
    ("headless-no-ports", {"subsets": [{"addresses": addrs("10.0.0.7", "10.0.0.8")}]},
     "10.0.0.7,10.0.0.8"),
    ("ipv6-bracketed", {"subsets": [{"addresses": addrs("fd00::1"), "ports": [{"port": 80}]}]},
     "[fd00::1]:80"),
    ("only-not-ready", {"subsets": [{"notReadyAddresses": addrs("10.0.0.9"),
                                     "ports": [{"port": 80}]}]}, ""),
]


@pytest.mark.parametrize("body,want", [(b, w) for _, b, w in ENDPOINTS_CASES],
                         ids=[i for i, _, _ in ENDPOINTS_CASES])
def test_endpoints_cells(body: dict[str, Any], want: str) -> None:
    obj = {"metadata": meta("web", ago(seconds=30)), **body}
    assert row_cells("Endpoints", obj, NOW) == ["web", want, "30s"]


SLICE_CASES = [
    ("empty", {"addressType": "IPv4", "endpoints": [], "ports": []},
     ["IPv4", "<unset>", "<unset>"]),
    ("typical", {"addressType": "IPv4",
                 "endpoints": [{"addresses": ["10.244.1.5"]}, {"addresses": ["10.244.2.3"]}],
                 "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
     ["IPv4", "80", "10.244.1.5,10.244.2.3"]),
    ("more-and-all-ports", {"addressType": "IPv6",
                            "endpoints": [{"addresses": [f"fd00::{i}"]} for i in range(1, 6)],
                            "ports": [{}, {"name": "named"}, {"port": 1}, {"port": 2}]},
     ["IPv6", "*,named,1 + 1 more...", "fd00::1,fd00::2,fd00::3 + 2 more..."]),
]


@pytest.mark.parametrize("body,want", [(b, w) for _, b, w in SLICE_CASES],
                         ids=[i for i, _, _ in SLICE_CASES])
def test_endpointslice_cells(body: dict[str, Any], want: list[str]) -> None:
    obj = {"metadata": meta("web-abcde", ago(hours=9)), **body}
    assert row_cells("EndpointSlice", obj, NOW) == ["web-abcde", *want, "9h"]


# --------------------------------------------------------------------------- workloads

TEMPLATE = {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"},
                                    {"name": "sidecar", "image": "busybox"}]}}
LABEL_SELECTOR = {"matchLabels": {"app": "web", "tier": "fe"},
                  "matchExpressions": [{"key": "env", "operator": "In",
                                        "values": ["prod", "dev"]},
                                       {"key": "canary", "operator": "DoesNotExist"}]}

WORKLOAD_CASES = [
    ("rc", "ReplicationController",
     {"spec": {"replicas": 3, "selector": {"app": "web"}, "template": TEMPLATE},
      "status": {"replicas": 3, "readyReplicas": 2}},
     ["x", 3, 3, 2, "5m", "nginx,sidecar", "nginx:1.27,busybox", "app=web"]),
    ("rs", "ReplicaSet",
     {"spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
               "template": TEMPLATE}, "status": {"replicas": 2}},
     ["x", 2, 2, 0, "5m", "nginx,sidecar", "nginx:1.27,busybox", "app=web"]),
    ("rs-expressions-sorted", "ReplicaSet",
     {"spec": {"replicas": 1, "selector": LABEL_SELECTOR, "template": TEMPLATE}},
     ["x", 1, 0, 0, "5m", "nginx,sidecar", "nginx:1.27,busybox",
      "app=web,!canary,env in (dev,prod),tier=fe"]),
    ("rs-no-selector", "ReplicaSet", {"spec": {"template": TEMPLATE}},
     ["x", 1, 0, 0, "5m", "nginx,sidecar", "nginx:1.27,busybox", "<none>"]),
    ("deployment", "Deployment",
     {"spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
               "template": TEMPLATE},
      "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}},
     ["x", "2/3", 3, 2, "5m", "nginx,sidecar", "nginx:1.27,busybox", "app=web"]),
    ("deployment-fresh", "Deployment", {"spec": {"template": TEMPLATE}},
     ["x", "0/1", 0, 0, "5m", "nginx,sidecar", "nginx:1.27,busybox", ""]),
    ("deployment-bad-selector", "Deployment",
     {"spec": {"replicas": 0, "selector": {"matchExpressions": [
         {"key": "a", "operator": "Bogus"}]}, "template": TEMPLATE}},
     ["x", "0/0", 0, 0, "5m", "nginx,sidecar", "nginx:1.27,busybox", "<invalid>"]),
    ("statefulset", "StatefulSet",
     {"spec": {"replicas": 3, "template": TEMPLATE}, "status": {"readyReplicas": 1}},
     ["x", "1/3", "5m", "nginx,sidecar", "nginx:1.27,busybox"]),
    ("daemonset", "DaemonSet",
     {"spec": {"selector": {"matchLabels": {"app": "web"}},
               "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"},
                                     "containers": [{"name": "agent", "image": "a:1"}]}}},
      "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                 "updatedNumberScheduled": 3, "numberAvailable": 2}},
     ["x", 3, 3, 2, 3, 2, "kubernetes.io/os=linux", "5m", "agent", "a:1", "app=web"]),
    ("daemonset-empty", "DaemonSet", {"spec": {"template": {"spec": {"containers": []}}}},
     ["x", 0, 0, 0, 0, 0, "<none>", "5m", "", "", "<none>"]),
]


@pytest.mark.parametrize("kind,body,want", [(k, b, w) for _, k, b, w in WORKLOAD_CASES],
                         ids=[i for i, _, _, _ in WORKLOAD_CASES])
def test_workload_cells(kind: str, body: dict[str, Any], want: list[Any]) -> None:
    assert row_cells(kind, {"metadata": meta(), **body}, NOW) == want


@pytest.mark.parametrize("owners,want", [
    ([], "<none>"),
    ([{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "controller": True}],
     "daemonset.apps/agent"),
    ([{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db"}], "<none>"),
    ([{"apiVersion": "v1", "kind": "Pod", "name": "p", "controller": False},
      {"apiVersion": "v1", "kind": "ReplicationController", "name": "rc",
       "controller": True}], "replicationcontroller/rc"),
], ids=["none", "daemonset", "not-controller", "core-group"])
def test_controller_revision_cells(owners: list[dict[str, Any]], want: str) -> None:
    obj = {"metadata": meta("agent-6d4b8", ownerReferences=owners), "revision": 4,
           "data": {}}
    assert row_cells("ControllerRevision", obj, NOW) == ["agent-6d4b8", want, 4, "5m"]


# --------------------------------------------------------------------------- cluster kinds

def node(conditions: list[dict[str, Any]], *, unschedulable: bool = False,
         labels: dict[str, str] | None = None, info: dict[str, str] | None = None,
         addresses: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "n1", "creationTimestamp": ago(days=10),
                         "labels": labels or {}},
            "spec": {"unschedulable": True} if unschedulable else {},
            "status": {"conditions": conditions, "nodeInfo": info or {},
                       "addresses": addresses or []}}


READY = [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}]
NODE_CASES = [
    ("ready", node(READY, info={"kubeletVersion": "v1.32.0", "osImage": "Debian 12",
                                "kernelVersion": "6.1.0",
                                "containerRuntimeVersion": "netd://0.1.0"},
                   addresses=[{"type": "Hostname", "address": "n1"},
                              {"type": "InternalIP", "address": "172.18.0.2"}],
                   labels={"node-role.kubernetes.io/control-plane": "",
                           "kubernetes.io/role": "worker"}),
     ["n1", "Ready", "control-plane,worker", "10d", "v1.32.0", "172.18.0.2", "<none>",
      "Debian 12", "6.1.0", "netd://0.1.0"]),
    ("not-ready-cordoned", node([{"type": "Ready", "status": "False"}], unschedulable=True),
     ["n1", "NotReady,SchedulingDisabled", "<none>", "10d", "", "<none>", "<none>",
      "<unknown>", "<unknown>", "<unknown>"]),
    ("ready-cordoned", node(READY, unschedulable=True,
                            addresses=[{"type": "ExternalIP", "address": "203.0.113.4"}]),
     ["n1", "Ready,SchedulingDisabled", "<none>", "10d", "", "<none>", "203.0.113.4",
      "<unknown>", "<unknown>", "<unknown>"]),
    ("no-conditions", node([], labels={"node-role.kubernetes.io/": "x"}),
     ["n1", "Unknown", "<none>", "10d", "", "<none>", "<none>", "<unknown>", "<unknown>",
      "<unknown>"]),
    ("ready-unknown-status", node([{"type": "Ready", "status": "Unknown"}]),
     ["n1", "NotReady", "<none>", "10d", "", "<none>", "<none>", "<unknown>", "<unknown>",
      "<unknown>"]),
]


@pytest.mark.parametrize("obj,want", [(o, w) for _, o, w in NODE_CASES],
                         ids=[i for i, _, _ in NODE_CASES])
def test_node_cells(obj: dict[str, Any], want: list[str]) -> None:
    assert row_cells("Node", obj, NOW) == want


@pytest.mark.parametrize("kind,obj,want", [
    ("Namespace", {"metadata": meta("kube-system", ago(days=400)),
                   "status": {"phase": "Active"}}, ["kube-system", "Active", "400d"]),
    ("Namespace", {"metadata": meta("gone", ago(seconds=3)),
                   "status": {"phase": "Terminating"}}, ["gone", "Terminating", "3s"]),
    ("ConfigMap", {"metadata": meta("cfg"), "data": {"a": "1", "b": "2"},
                   "binaryData": {"c": "AA=="}}, ["cfg", 3, "5m"]),
    ("ConfigMap", {"metadata": meta("empty")}, ["empty", 0, "5m"]),
    ("Lease", {"metadata": meta("n1", ago(days=3)), "spec": {"holderIdentity": "n1"}},
     ["n1", "n1", "3d"]),
    ("Lease", {"metadata": meta("free"), "spec": {}}, ["free", "", "5m"]),
], ids=["namespace", "namespace-terminating", "configmap", "configmap-empty", "lease",
        "lease-unheld"])
def test_small_kind_cells(kind: str, obj: dict[str, Any], want: list[Any]) -> None:
    assert row_cells(kind, obj, NOW) == want


EVENT_CASES = [
    ("classic", {"metadata": meta("web-1.17d", ago(minutes=10)),
                 "involvedObject": {"kind": "Pod", "name": "web-1",
                                    "fieldPath": "spec.containers{nginx}"},
                 "reason": "Pulled", "type": "Normal",
                 "message": "  Container image already present\n",
                 "source": {"component": "kubelet", "host": "n1"},
                 "firstTimestamp": ago(minutes=10), "lastTimestamp": ago(minutes=2),
                 "count": 3},
     ["2m", "Normal", "Pulled", "pod/web-1", "spec.containers{nginx}", "kubelet, n1",
      "Container image already present", "10m", 3, "web-1.17d"]),
    ("event-time-and-series", {"metadata": meta("ev2"), "eventTime": "2024-06-01T11:00:00.123456Z",
                               "series": {"count": 7,
                                          "lastObservedTime": "2024-06-01T11:59:00.000000Z"},
                               "involvedObject": {"kind": "Node", "name": "n1"},
                               "reason": "Rebooted", "type": "Warning", "message": "m",
                               "reportingComponent": "netd-node", "reportingInstance": "n1"},
     ["60s", "Warning", "Rebooted", "node/n1", "", "netd-node, n1", "m", "59m", 7, "ev2"]),
    ("singleton-no-times", {"metadata": meta("ev3"), "involvedObject": {"kind": "Namespace"},
                            "reason": "R", "type": "Normal", "message": "",
                            "source": {"component": "ctl"}},
     ["<unknown>", "Normal", "R", "namespace", "", "ctl", "", "<unknown>", 1, "ev3"]),
    ("first-only", {"metadata": meta("ev4"), "involvedObject": {"kind": "Service", "name": "s"},
                    "firstTimestamp": ago(hours=5), "count": 1, "source": {}},
     ["5h", "", "", "service/s", "", "", "", "5h", 1, "ev4"]),
]


@pytest.mark.parametrize("obj,want", [(o, w) for _, o, w in EVENT_CASES],
                         ids=[i for i, _, _ in EVENT_CASES])
def test_event_cells(obj: dict[str, Any], want: list[Any]) -> None:
    assert row_cells("Event", obj, NOW) == want


# --------------------------------------------------------------------------- storage

STORAGE_CASES = [
    ("pv-bound", "PersistentVolume",
     {"metadata": meta("pv1", ago(days=1)),
      "spec": {"capacity": {"storage": "10Gi"},
               "accessModes": ["ReadWriteMany", "ReadWriteOnce", "ReadWriteOnce"],
               "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "local",
               "claimRef": {"namespace": "default", "name": "data"},
               "volumeMode": "Filesystem"},
      "status": {"phase": "Bound"}},
     ["pv1", "10Gi", "RWO,RWX", "Retain", "Bound", "default/data", "local", "<unset>", "",
      "24h", "Filesystem"]),
    ("pv-terminating-beta-class", "PersistentVolume",
     {"metadata": meta("pv2", ago(hours=1), deletionTimestamp=ago(seconds=5),
                       annotations={"volume.beta.kubernetes.io/storage-class": "old"}),
      "spec": {"accessModes": ["ReadOnlyMany", "ReadWriteOncePod"],
               "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "new",
               "volumeAttributesClassName": "gold"},
      "status": {"phase": "Released", "reason": "Lost"}},
     ["pv2", "0", "ROX,RWOP", "Delete", "Terminating", "", "old", "gold", "Lost", "60m",
      "<unset>"]),
    ("pvc-bound", "PersistentVolumeClaim",
     {"metadata": meta("data"),
      "spec": {"volumeName": "pv1", "storageClassName": "local",
               "resources": {"requests": {"storage": "1Gi"}}, "volumeMode": "Block"},
      "status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"],
                 "capacity": {"storage": "10Gi"}}},
     ["data", "Bound", "pv1", "10Gi", "RWO", "local", "<unset>", "5m", "Block"]),
    ("pvc-pending", "PersistentVolumeClaim",
     {"metadata": meta("want"), "spec": {"resources": {"requests": {"storage": "1Gi"}}},
      "status": {"phase": "Pending"}},
     ["want", "Pending", "", "", "", "", "<unset>", "5m", "<unset>"]),
    ("sc-default", "StorageClass",
     {"metadata": meta("standard", annotations={
         "storageclass.kubernetes.io/is-default-class": "true"}),
      "provisioner": "netd.io/hostpath", "reclaimPolicy": "Retain",
      "volumeBindingMode": "WaitForFirstConsumer", "allowVolumeExpansion": True},
     ["standard (default)", "netd.io/hostpath", "Retain", "WaitForFirstConsumer", True,
      "5m"]),
    ("sc-defaults", "StorageClass",
     {"metadata": meta("slow", annotations={
         "storageclass.beta.kubernetes.io/is-default-class": "false"}),
      "provisioner": "x"},
     ["slow", "x", "Delete", "Immediate", False, "5m"]),
]


@pytest.mark.parametrize("kind,obj,want", [(k, o, w) for _, k, o, w in STORAGE_CASES],
                         ids=[i for i, _, _, _ in STORAGE_CASES])
def test_storage_cells(kind: str, obj: dict[str, Any], want: list[Any]) -> None:
    assert row_cells(kind, obj, NOW) == want


# --------------------------------------------------------------------------- default table

@pytest.mark.parametrize("created,want", [
    ("2024-05-01T10:00:00Z", "2024-05-01T10:00:00Z"),
    ("2024-05-01T12:00:00+02:00", "2024-05-01T10:00:00Z"),
    ("2024-05-01T10:00:00.123456Z", "2024-05-01T10:00:00Z"),
    (None, "0001-01-01T00:00:00Z"),
], ids=["utc", "offset", "fraction", "missing"])
def test_default_table_cells(created: str | None, want: str) -> None:
    obj = {"metadata": {"name": "w", "creationTimestamp": created}}
    assert row_cells("Widget", obj, NOW) == ["w", want]


def test_missing_creation_timestamp_is_unknown_age() -> None:
    assert row_cells("ConfigMap", {"metadata": {"name": "c"}}, NOW) == ["c", 0, "<unknown>"]


def test_naive_now_is_treated_as_utc() -> None:
    naive = NOW.replace(tzinfo=None)
    assert row_cells("Lease", {"metadata": meta("l")}, naive)[2] == "5m"


# --------------------------------------------------------------------------- to_table

PODS = [pod({"phase": "Running", "containerStatuses": [cs(state=RUNNING, ready=True)]}),
        pod({"phase": "Succeeded"}), pod({"phase": "Failed"})]


def test_to_table_shape_and_metadata_objects() -> None:
    table = to_table("Pod", PODS, NOW, resource_version="42", continue_token="tok")
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "42", "continue": "tok"}
    assert table["columnDefinitions"] == column_definitions("Pod")
    assert [r["cells"] for r in table["rows"]] == [row_cells("Pod", p, NOW) for p in PODS]
    obj = table["rows"][0]["object"]
    assert obj == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                   "metadata": PODS[0]["metadata"]}
    json.dumps(table)  # plain JSON all the way down


def test_to_table_row_conditions_mark_finished_pods() -> None:
    rows = to_table("Pod", PODS, NOW)["rows"]
    assert "conditions" not in rows[0]
    assert rows[1]["conditions"] == [{"type": "Completed", "status": "True",
                                      "reason": "Succeeded",
                                      "message": "The pod has completed successfully."}]
    assert rows[2]["conditions"][0]["reason"] == "Failed"


@pytest.mark.parametrize("include,check", [
    ("None", lambda o, src: o is None),
    ("Object", lambda o, src: o is src),
    ("Metadata", lambda o, src: o["kind"] == "PartialObjectMetadata"
     and o["metadata"] == src["metadata"] and "spec" not in o),
    ("", lambda o, src: o["kind"] == "PartialObjectMetadata"),
], ids=["none", "object", "metadata", "empty-means-metadata"])
def test_to_table_include_object(include: str, check: Any) -> None:
    table = to_table("Pod", PODS[:1], NOW, include_object=include)
    assert check(table["rows"][0]["object"], PODS[0])


def test_to_table_object_gets_type_filled_without_mutating_input() -> None:
    src = {"metadata": meta("svc"), "spec": {"clusterIPs": ["10.96.0.1"]}}
    out = to_table("Service", [src], NOW, include_object="Object")["rows"][0]["object"]
    assert out["apiVersion"] == "v1" and out["kind"] == "Service"
    assert "kind" not in src
    deploy = to_table("Deployment", [{"metadata": meta()}], NOW,
                      include_object="Object")["rows"][0]["object"]
    assert deploy["apiVersion"] == "apps/v1"


def test_to_table_no_headers_and_empty_list() -> None:
    table = to_table("Service", [], NOW, no_headers=True, remaining_item_count=0)
    assert table["columnDefinitions"] == []
    assert table["rows"] == []
    assert table["metadata"] == {"remainingItemCount": 0}


def test_to_table_default_kind() -> None:
    table = to_table("Widget", [{"metadata": meta("w", "2024-01-02T03:04:05Z")}], NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Created At"]
    assert table["rows"][0]["cells"] == ["w", "2024-01-02T03:04:05Z"]


@pytest.mark.parametrize("bad", ["metadata", "All", "object"], ids=lambda v: v)
def test_to_table_rejects_unknown_include_object(bad: str) -> None:
    with pytest.raises(BadRequest) as err:
        to_table("Pod", PODS, NOW, include_object=bad)
    assert bad in str(err.value)


def test_every_served_kind_has_its_own_printer() -> None:
    from netd.api.kinds import RESOURCES
    from netd.api.tables import has_printer
    assert [rt.kind for rt in RESOURCES if not has_printer(rt.kind)] == []
    assert not has_printer("Widget")
