"""Pod validation: containers, ports, env, volumes, mounts, probes, resources, DNS,
tolerations, and what a pod update may change. Each case mutates a valid pod."""
from __future__ import annotations

import copy
from typing import Any, Callable

import pytest

from netd.api.defaults import apply_defaults
from netd.api.validation import validate_create, validate_status_update, validate_update
from tests.unit.test_validation_kinds import texts, valid

Mutate = Callable[[dict[str, Any]], None]


def c0(pod: dict[str, Any]) -> dict[str, Any]:
    return pod["spec"]["containers"][0]


def setp(path: str, value: Any) -> Mutate:
    def mutate(pod: dict[str, Any]) -> None:
        parts = path.split(".")
        cur: Any = pod
        for part in parts[:-1]:
            cur = cur[int(part)] if isinstance(cur, list) else cur[part]
        last: Any = int(parts[-1]) if isinstance(cur, list) else parts[-1]
        if value is _DEL:
            del cur[last]
        else:
            cur[last] = value
    return mutate


_DEL = object()
LABEL_RE = "'[a-z0-9]([-a-z0-9]*[a-z0-9])?'"
PORT_RANGE = "must be between 1 and 65535, inclusive"

CREATE_CASES: list[tuple[str, Mutate, list[str]]] = [
    ("no-containers", setp("spec.containers", []), ["spec.containers: Required value"]),
    ("container-name-required", setp("spec.containers.0.name", ""),
     ["spec.containers[0].name: Required value"]),
    ("container-name-label", setp("spec.containers.0.name", "Web"),
     ['spec.containers[0].name: Invalid value: "Web": a lowercase RFC 1123 label must consist '
      "of lower case alphanumeric characters or '-', and must start and end with an "
      "alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
      f"{LABEL_RE})"]),
    ("duplicate-container", lambda p: p["spec"]["containers"].append(copy.deepcopy(c0(p))),
     ['spec.containers[1].name: Duplicate value: "web"']),
    ("init-name-clash", lambda p: p["spec"].setdefault("initContainers", []).append(
        {"name": "web", "image": "busybox", "terminationMessagePolicy": "File",
         "imagePullPolicy": "Always"}),
     ['spec.initContainers[0].name: Duplicate value: "web"']),
    ("image-required", setp("spec.containers.0.image", ""),
     ["spec.containers[0].image: Required value"]),
    ("port-range", setp("spec.containers.0.ports", [{"containerPort": 70000, "protocol": "TCP"}]),
     [f"spec.containers[0].ports[0].containerPort: Invalid value: 70000: {PORT_RANGE}"]),
    ("port-required", setp("spec.containers.0.ports", [{"protocol": "TCP"}]),
     ["spec.containers[0].ports[0].containerPort: Required value"]),
    ("port-protocol", setp("spec.containers.0.ports", [{"containerPort": 80,
                                                         "protocol": "ICMP"}]),
     ['spec.containers[0].ports[0].protocol: Unsupported value: "ICMP": supported values: '
      '"SCTP", "TCP", "UDP"']),
    ("port-name-too-long", setp("spec.containers.0.ports", [
        {"containerPort": 80, "protocol": "TCP", "name": "abcdefghijklmnop"}]),
     ['spec.containers[0].ports[0].name: Invalid value: "abcdefghijklmnop": must be no more '
      'than 15 characters']),
    ("port-name-digits", setp("spec.containers.0.ports", [
        {"containerPort": 80, "protocol": "TCP", "name": "8080"}]),
     ['spec.containers[0].ports[0].name: Invalid value: "8080": must contain at least one '
      'letter (a-z)']),
    ("port-name-duplicate", setp("spec.containers.0.ports", [
        {"containerPort": 80, "protocol": "TCP", "name": "http"},
        {"containerPort": 81, "protocol": "TCP", "name": "http"}]),
     ['spec.containers[0].ports[1].name: Duplicate value: "http"']),
    ("host-port-conflict", setp("spec.containers.0.ports", [
        {"containerPort": 80, "hostPort": 8080, "protocol": "TCP"},
        {"containerPort": 81, "hostPort": 8080, "protocol": "TCP"}]),
     ['spec.containers[0].ports[1].hostPort: Duplicate value: "/TCP/8080"']),
    ("env-name-required", setp("spec.containers.0.env", [{"name": ""}]),
     ["spec.containers[0].env[0].name: Required value"]),
    ("env-name-equals", setp("spec.containers.0.env", [{"name": "A=B"}]),
     ['spec.containers[0].env[0].name: Invalid value: "A=B": a valid environment variable '
      "name must consist only of printable ASCII characters other than '='"]),
    ("env-value-and-valuefrom", setp("spec.containers.0.env", [
        {"name": "A", "value": "x", "valueFrom": {"fieldRef": {"apiVersion": "v1",
                                                               "fieldPath": "metadata.name"}}}]),
     ['spec.containers[0].env[0].valueFrom: Invalid value: "": may not be specified when '
      '`value` is not empty']),
    ("env-fieldpath", setp("spec.containers.0.env", [
        {"name": "A", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.bogus"}}}]),
     ['spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Unsupported value: "spec.bogus": '
      'supported values: "metadata.name", "metadata.namespace", "metadata.uid", '
      '"spec.nodeName", "spec.serviceAccountName", "status.hostIP", "status.hostIPs", '
      '"status.podIP", "status.podIPs"']),
    ("env-no-source", setp("spec.containers.0.env", [{"name": "A", "valueFrom": {}}]),
     ['spec.containers[0].env[0].valueFrom: Invalid value: "": must specify one of: `fieldRef`, '
      '`resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`']),
    ("env-configmap-key", setp("spec.containers.0.env", [
        {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": ""}}}]),
     ["spec.containers[0].env[0].valueFrom.configMapKeyRef.key: Required value"]),
    ("mount-unknown-volume", setp("spec.containers.0.volumeMounts", [
        {"name": "nope", "mountPath": "/x"}]),
     ['spec.containers[0].volumeMounts[0].name: Not found: "nope"']),
    ("mount-path-unique", setp("spec.containers.0.volumeMounts", [
        {"name": "cfg", "mountPath": "/x"}, {"name": "scratch", "mountPath": "/x"}]),
     ['spec.containers[0].volumeMounts[1].mountPath: Invalid value: "/x": must be unique']),
    ("mount-subpath-backsteps", setp("spec.containers.0.volumeMounts", [
        {"name": "cfg", "mountPath": "/x", "subPath": "../etc"}]),
     ['spec.containers[0].volumeMounts.subPath: Invalid value: "../etc": must not contain '
      "'..'"]),
    ("volume-duplicate", lambda p: p["spec"]["volumes"].append({"name": "cfg", "emptyDir": {}}),
     ['spec.volumes[2].name: Duplicate value: "cfg"']),
    # Sources are counted in Kubernetes' order, so the configMap is the extra one here.
    ("volume-two-sources", setp("spec.volumes.0.emptyDir", {}),
     ["spec.volumes[0].configMap: Forbidden: may not specify more than 1 volume type"]),
    ("volume-name", setp("spec.volumes.1.name", "Scratch"),
     ['spec.volumes[1].name: Invalid value: "Scratch": a lowercase RFC 1123 label must consist '
      "of lower case alphanumeric characters or '-', and must start and end with an "
      "alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
      f"{LABEL_RE})",
      'spec.containers[0].volumeMounts[1].name: Not found: "scratch"']),
    ("volume-configmap-mode", setp("spec.volumes.0.configMap.defaultMode", 1000),
     ["spec.volumes[0].configMap.defaultMode: Invalid value: 1000: must be a number between 0 "
      "and 0777 (octal), both inclusive"]),
    ("volume-hostpath-type", setp("spec.volumes.1", {"name": "scratch",
                                                     "hostPath": {"path": "/x", "type": "Dir"}}),
     ['spec.volumes[1].hostPath.type: Unsupported value: "Dir": supported values: "", '
      '"BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", '
      '"Socket"']),
    ("volume-pvc-claim", setp("spec.volumes.1", {"name": "scratch", "persistentVolumeClaim": {}}),
     ["spec.volumes[1].persistentVolumeClaim.claimName: Required value"]),
    ("probe-no-handler", setp("spec.containers.0.readinessProbe", {"periodSeconds": 1,
                                                                  "timeoutSeconds": 1,
                                                                  "successThreshold": 1,
                                                                  "failureThreshold": 1}),
     ["spec.containers[0].readinessProbe: Required value: must specify a handler type"]),
    ("probe-two-handlers", setp("spec.containers.0.livenessProbe.exec", {"command": ["true"]}),
     ["spec.containers[0].livenessProbe.tcpSocket: Forbidden: may not specify more than 1 "
      "handler type"]),
    ("probe-negative", setp("spec.containers.0.livenessProbe.periodSeconds", -1),
     ["spec.containers[0].livenessProbe.periodSeconds: Invalid value: -1: must be greater than "
      "or equal to 0"]),
    ("liveness-success-threshold", setp("spec.containers.0.livenessProbe.successThreshold", 2),
     ["spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"]),
    ("probe-port-name", setp("spec.containers.0.readinessProbe.httpGet.port", "HTTP"),
     ['spec.containers[0].readinessProbe.httpGet.port: Invalid value: "HTTP": must contain '
      'only alpha-numeric characters (a-z, 0-9), and hyphens (-)']),
    ("probe-scheme", setp("spec.containers.0.readinessProbe.httpGet.scheme", "FTP"),
     ['spec.containers[0].readinessProbe.httpGet.scheme: Unsupported value: "FTP": supported '
      'values: "HTTP", "HTTPS"']),
    ("requests-above-limits", setp("spec.containers.0.resources", {
        "requests": {"cpu": "1", "memory": "64Mi"}, "limits": {"cpu": "0.5", "memory": "64Mi"}}),
     ['spec.containers[0].resources.requests: Invalid value: "1": must be less than or equal '
      'to cpu limit of 500m']),
    ("quantity-syntax", setp("spec.containers.0.resources", {"limits": {"memory": "64MB"}}),
     ['spec.containers[0].resources.limits[memory]: Invalid value: "64MB": quantities must '
      "match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"]),
    ("quantity-negative", setp("spec.containers.0.resources", {"limits": {"cpu": "-1"}}),
     ['spec.containers[0].resources.limits[cpu]: Invalid value: "-1": must be greater than or '
      'equal to 0']),
    ("resource-name", setp("spec.containers.0.resources", {"limits": {"pods": "1"}}),
     ['spec.containers[0].resources.limits[pods]: Invalid value: "pods": must be a standard '
      'resource for containers']),
    ("extended-resource-needs-limit", setp("spec.containers.0.resources", {
        "requests": {"example.com/gpu": "1"}}),
     ["spec.containers[0].resources.limits: Required value: Limit must be set for non "
      "overcommitable resources"]),
    ("restart-policy", setp("spec.restartPolicy", "Sometimes"),
     ['spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", '
      '"OnFailure", "Never"']),
    ("dns-policy", setp("spec.dnsPolicy", "Cluster"),
     ['spec.dnsPolicy: Unsupported value: "Cluster": supported values: '
      '"ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"']),
    ("dns-none-needs-config", setp("spec.dnsConfig", _DEL),
     ["spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"]),
    ("dns-none-needs-nameserver", setp("spec.dnsConfig", {"searches": ["a.b"]}),
     ["spec.dnsConfig.nameservers: Required value: must provide at least one DNS nameserver "
      "when `dnsPolicy` is None"]),
    ("dns-nameserver-ip", setp("spec.dnsConfig.nameservers", ["10.96.0.300"]),
     ['spec.dnsConfig.nameservers[0]: Invalid value: "10.96.0.300": must be a valid IP '
      'address, (e.g. 10.9.8.7 or 2001:db8::ffff)']),
    ("dns-too-many-nameservers", setp("spec.dnsConfig.nameservers",
                                      ["1.1.1.1", "1.0.0.1", "8.8.8.8", "8.8.4.4"]),
     ['spec.dnsConfig.nameservers: Invalid value: []string{"1.1.1.1", "1.0.0.1", "8.8.8.8", '
      '"8.8.4.4"}: must not have more than 3 nameservers']),
    ("hostname", setp("spec.hostname", "web_0"),
     ['spec.hostname: Invalid value: "web_0": a lowercase RFC 1123 label must consist of '
      "lower case alphanumeric characters or '-', and must start and end with an alphanumeric "
      "character (e.g. 'my-name',  or '123-abc', regex used for validation is "
      f"{LABEL_RE})"]),
    ("subdomain-not-dotted", setp("spec.subdomain", "a.b"),
     ['spec.subdomain: Invalid value: "a.b": a lowercase RFC 1123 label must consist of '
      "lower case alphanumeric characters or '-', and must start and end with an alphanumeric "
      "character (e.g. 'my-name',  or '123-abc', regex used for validation is "
      f"{LABEL_RE})"]),
    ("node-selector", setp("spec.nodeSelector", {"disk": "fast ssd"}),
     ['spec.nodeSelector: Invalid value: "fast ssd": a valid label must be an empty string or '
      "consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
      "alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
      "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"]),
    ("active-deadline", setp("spec.activeDeadlineSeconds", 0),
     ["spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, "
      "inclusive"]),
    ("toleration-operator", setp("spec.tolerations", [{"key": "a", "operator": "In"}]),
     ['spec.tolerations[0].operator: Unsupported value: "In": supported values: "Equal", '
      '"Exists"']),
    ("toleration-empty-key", setp("spec.tolerations", [{"operator": "Equal", "value": "x"}]),
     ['spec.tolerations[0].operator: Invalid value: "Equal": operator must be Exists when '
      '`key` is empty, which means "match all values and all keys"']),
    ("toleration-effect", setp("spec.tolerations", [{"key": "a", "operator": "Exists",
                                                     "effect": "NoRun"}]),
     ['spec.tolerations[0].effect: Unsupported value: "NoRun": supported values: '
      '"NoSchedule", "PreferNoSchedule", "NoExecute"']),
    ("toleration-seconds-needs-noexecute", setp("spec.tolerations", [
        {"key": "a", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 5}]),
     ['spec.tolerations[0].effect: Invalid value: "NoSchedule": effect must be \'NoExecute\' '
      'when `tolerationSeconds` is set']),
    ("grace-required", setp("spec.terminationGracePeriodSeconds", _DEL),
     ["spec.terminationGracePeriodSeconds: Required value"]),
    ("regular-container-restart-policy", setp("spec.containers.0.restartPolicy", "Always"),
     ["spec.containers[0].restartPolicy: Forbidden: may not be set for non-init containers"]),
    ("init-probe-forbidden", lambda p: p["spec"].setdefault("initContainers", []).append(
        {"name": "init", "image": "busybox", "terminationMessagePolicy": "File",
         "imagePullPolicy": "Always", "readinessProbe": {"exec": {"command": ["true"]}}}),
     ["spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers "
      "without restartPolicy=Always"]),
    ("ephemeral-on-create", setp("spec.ephemeralContainers", [{"name": "dbg"}]),
     ["spec.ephemeralContainers: Forbidden: cannot be set on create"]),
]


@pytest.mark.parametrize("mutate,want", [c[1:] for c in CREATE_CASES],
                         ids=[c[0] for c in CREATE_CASES])
def test_pod_create(mutate: Mutate, want: list[str]) -> None:
    pod = valid("Pod")
    mutate(pod)
    assert texts(validate_create("Pod", pod)) == want


def test_sidecar_init_container_may_have_probes() -> None:
    pod = valid("Pod", defaulted=False)
    pod["spec"]["initContainers"] = [{"name": "proxy", "image": "envoy", "restartPolicy": "Always",
                                      "readinessProbe": {"tcpSocket": {"port": 9901}}}]
    apply_defaults("Pod", pod)
    assert texts(validate_create("Pod", pod)) == []


POD_UPDATE_PREFIX = (
    "spec: Forbidden: pod updates may not change fields other than "
    "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
    "`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously "
    "negative)\n")

UPDATE_CASES: list[tuple[str, Mutate, list[str]]] = [
    ("image", setp("spec.containers.0.image", "busybox:1.37"), []),
    ("add-toleration", lambda p: p["spec"]["tolerations"].append(
        {"key": "a", "operator": "Exists", "effect": "NoSchedule"}), []),
    ("toleration-seconds-change", setp("spec.tolerations.0.tolerationSeconds", 10), []),
    ("active-deadline-set", setp("spec.activeDeadlineSeconds", 100), []),
    ("labels", setp("metadata.labels", {"app": "other"}), []),
    ("remove-toleration", lambda p: p["spec"]["tolerations"].pop(),
     ["spec.tolerations: Forbidden: existing toleration can not be modified except its "
      "tolerationSeconds"]),
    ("add-container", lambda p: p["spec"]["containers"].append(
        dict(c0(p), name="second")),
     ["spec.containers: Forbidden: pod updates may not add or remove containers"]),
]


@pytest.mark.parametrize("mutate,want", [c[1:] for c in UPDATE_CASES],
                         ids=[c[0] for c in UPDATE_CASES])
def test_pod_update(mutate: Mutate, want: list[str]) -> None:
    old = valid("Pod")
    new = copy.deepcopy(old)
    mutate(new)
    assert texts(validate_update("Pod", new, old)) == want


@pytest.mark.parametrize("mutate,changed", [
    (setp("spec.containers.0.command", ["sh"]), "containers[0].command"),
    (setp("spec.restartPolicy", "Never"), "restartPolicy"),
    (setp("spec.nodeName", "node-2"), "nodeName"),
], ids=["command", "restartPolicy", "nodeName"])
def test_pod_update_forbidden(mutate: Mutate, changed: str) -> None:
    old = valid("Pod")
    new = copy.deepcopy(old)
    mutate(new)
    errs = texts(validate_update("Pod", new, old))
    assert len(errs) == 1 and errs[0].startswith(POD_UPDATE_PREFIX)
    assert f"+ {changed}:" in errs[0]


def test_active_deadline_may_only_shrink() -> None:
    old = valid("Pod")
    old["spec"]["activeDeadlineSeconds"] = 100
    new = copy.deepcopy(old)
    new["spec"]["activeDeadlineSeconds"] = 200
    assert texts(validate_update("Pod", new, old)) == [
        "spec.activeDeadlineSeconds: Invalid value: 200: must be less than or equal to "
        "previous value"]


STATUS_CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("ips", {"phase": "Running", "podIP": "10.244.1.5", "podIPs": [{"ip": "10.244.1.5"}],
             "hostIP": "172.18.0.2"}, []),
    ("dual-stack", {"podIPs": [{"ip": "10.244.1.5"}, {"ip": "fd00::5"}]}, []),
    ("bad-pod-ip", {"podIP": "10.244.1"},
     ['status.podIPs[0]: Invalid value: "10.244.1": must be a valid IP address, (e.g. 10.9.8.7 '
      'or 2001:db8::ffff)']),
    ("same-family-twice", {"podIPs": [{"ip": "10.244.1.5"}, {"ip": "10.244.1.6"}]},
     ["status.podIPs: Invalid value: []core.PodIP{...}: may specify no more than one IP for "
      "each IP family"]),
]


@pytest.mark.parametrize("status,want", [c[1:] for c in STATUS_CASES],
                         ids=[c[0] for c in STATUS_CASES])
def test_pod_status_update(status: dict[str, Any], want: list[str]) -> None:
    old = valid("Pod")
    new = copy.deepcopy(old)
    new["status"] = status
    assert texts(validate_status_update("Pod", new, old)) == want


def test_status_update_may_not_move_pod() -> None:
    old = valid("Pod")
    new = copy.deepcopy(old)
    new["spec"]["nodeName"] = "node-9"
    assert texts(validate_status_update("Pod", new, old)) == [
        "status.nodeName: Forbidden: may not be changed directly"]
