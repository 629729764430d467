"""Defaulting for every served kind, as kube-apiserver 1.32 applies it.

Sources: pkg/apis/core/v1/defaults.go, pkg/apis/apps/v1/defaults.go,
pkg/apis/discovery/v1/defaults.go, pkg/apis/storage/v1/defaults.go, plus the
registry-strategy steps that behave like defaulting (namespace finalizer, the
DefaultTolerationSeconds admission plugin for pods).

Defaulting runs on create and on every update (as the real decoder does), so every rule
here only fills what is absent and never overwrites what a client sent. Fields a client
sent are never dropped.
"""
from __future__ import annotations

import copy
from typing import Any, Callable

from netd.api.quantity import parse_quantity

Obj = dict[str, Any]

# Keys of core/v1 VolumeSource in the order validateVolumeSource counts them; a volume
# with none of them defaults to emptyDir.
VOLUME_SOURCES = (
    "hostPath", "emptyDir", "gitRepo", "gcePersistentDisk", "awsElasticBlockStore", "secret",
    "nfs", "iscsi", "glusterfs", "flocker", "persistentVolumeClaim", "rbd", "cinder", "cephfs",
    "quobyte", "downwardAPI", "fc", "flexVolume", "configMap", "azureFile", "vsphereVolume",
    "photonPersistentDisk", "portworxVolume", "azureDisk", "storageos", "projected", "scaleIO",
    "csi", "ephemeral", "image",
)

_FILE_MODE_DEFAULT = 0o644  # 420: v1.SecretVolumeSourceDefaultMode and friends


def _d(parent: Obj, key: str) -> Obj:
    """parent[key] as a dict, created when absent; a non-dict is left alone (validation
    reports it) and a throwaway dict is returned."""
    v = parent.get(key)
    if v is None:
        v = parent[key] = {}
    return v if isinstance(v, dict) else {}


def _items(v: Any) -> list[Obj]:
    return [x for x in v if isinstance(x, dict)] if isinstance(v, list) else []


def _default(obj: Obj, key: str, value: Any) -> None:
    if obj.get(key) is None:
        obj[key] = copy.deepcopy(value)


# --- pod spec ----------------------------------------------------------------------------

def image_pull_policy(image: Any) -> str:
    """Always for `:latest` or untagged images, else IfNotPresent (SetDefaults_Container)."""
    if not isinstance(image, str) or not image:
        return "IfNotPresent"
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.partition(":")[2] if ":" in last else ""
    if not tag and not digest:
        tag = "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


def _http_get(action: Any) -> None:
    if isinstance(action, dict):
        _default(action, "path", "/")
        _default(action, "scheme", "HTTP")


def _probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    # SetDefaults_Probe treats an explicit 0 like an absent value.
    for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10),
                       ("successThreshold", 1), ("failureThreshold", 3)):
        if not probe.get(key):
            probe[key] = value
    _http_get(probe.get("httpGet"))


def _field_ref(holder: Any) -> None:
    if isinstance(holder, dict) and isinstance(holder.get("fieldRef"), dict):
        _default(holder["fieldRef"], "apiVersion", "v1")


def _container(c: Obj) -> None:
    _default(c, "terminationMessagePath", "/dev/termination-log")
    _default(c, "terminationMessagePolicy", "File")
    if not c.get("imagePullPolicy"):
        c["imagePullPolicy"] = image_pull_policy(c.get("image"))
    for port in _items(c.get("ports")):
        _default(port, "protocol", "TCP")
    _default(c, "resources", {})
    for name in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(c.get(name))
    lifecycle = c.get("lifecycle")
    if isinstance(lifecycle, dict):
        for hook in ("postStart", "preStop"):
            if isinstance(lifecycle.get(hook), dict):
                _http_get(lifecycle[hook].get("httpGet"))
    for env in _items(c.get("env")):
        _field_ref(env.get("valueFrom"))


def _volume(v: Obj) -> None:
    if not any(v.get(k) is not None for k in VOLUME_SOURCES):
        v["emptyDir"] = {}
    for kind in ("secret", "configMap", "downwardAPI", "projected"):
        src = v.get(kind)
        if isinstance(src, dict):
            _default(src, "defaultMode", _FILE_MODE_DEFAULT)
    if isinstance(v.get("downwardAPI"), dict):
        for item in _items(v["downwardAPI"].get("items")):
            _field_ref(item)
    if isinstance(v.get("projected"), dict):
        for source in _items(v["projected"].get("sources")):
            if isinstance(source.get("downwardAPI"), dict):
                for item in _items(source["downwardAPI"].get("items")):
                    _field_ref(item)
    if isinstance(v.get("hostPath"), dict):
        _default(v["hostPath"], "type", "")


def pod_spec(spec: Obj) -> None:
    """SetDefaults_PodSpec and what it reaches (containers, volumes, probes)."""
    _default(spec, "dnsPolicy", "ClusterFirst")
    _default(spec, "restartPolicy", "Always")
    _default(spec, "securityContext", {})
    _default(spec, "terminationGracePeriodSeconds", 30)
    _default(spec, "schedulerName", "default-scheduler")
    for key in ("containers", "initContainers"):
        for c in _items(spec.get(key)):
            _container(c)
    for v in _items(spec.get("volumes")):
        _volume(v)


def pod_template(parent: Obj, key: str = "template") -> None:
    tmpl = parent.get(key)
    if isinstance(tmpl, dict):
        pod_spec(_d(tmpl, "spec"))


# Added by the DefaultTolerationSeconds admission plugin to every pod (not templates).
_DEFAULT_TOLERATIONS: tuple[dict[str, Any], ...] = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
     "tolerationSeconds": 300},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
     "tolerationSeconds": 300},
)


def _pod(obj: Obj) -> None:
    spec = _d(obj, "spec")
    pod_spec(spec)
    # SetDefaults_Pod (pods only, not templates): requests default to limits, service
    # links on, and hostNetwork pods publish their container ports as host ports.
    for key in ("containers", "initContainers"):
        for c in _items(spec.get(key)):
            res = c.get("resources")
            if isinstance(res, dict) and isinstance(res.get("limits"), dict):
                req = _d(res, "requests")
                for name, qty in res["limits"].items():
                    req.setdefault(name, qty)
            if spec.get("hostNetwork") is True:
                for port in _items(c.get("ports")):
                    if not port.get("hostPort"):
                        port["hostPort"] = port.get("containerPort")
    _default(spec, "enableServiceLinks", True)
    tolerations = spec.get("tolerations")
    if tolerations is None:
        tolerations = spec["tolerations"] = []
    if isinstance(tolerations, list):
        for default in _DEFAULT_TOLERATIONS:
            if not any(isinstance(t, dict) and _tolerates(t, default["key"])
                       for t in tolerations):
                tolerations.append(dict(default))


def _tolerates(t: Obj, taint_key: str) -> bool:
    """The admission plugin's test: an empty key or this key, with NoExecute or any effect."""
    return (t.get("effect") or "") in ("", "NoExecute") and (t.get("key") or "") in ("", taint_key)


# --- core kinds --------------------------------------------------------------------------

def _namespace(obj: Obj) -> None:
    meta = _d(obj, "metadata")
    name = meta.get("name")
    if isinstance(name, str) and name:
        # The label always reflects the name (SetDefaults_Namespace overwrites it).
        labels = meta.get("labels")
        if labels is None:
            labels = meta["labels"] = {}
        if isinstance(labels, dict):
            labels["kubernetes.io/metadata.name"] = name
    # PrepareForCreate adds the `kubernetes` finalizer; it is removed only through
    # namespaces/finalize while the namespace is terminating, so never re-add it then.
    if not meta.get("deletionTimestamp"):
        spec = _d(obj, "spec")
        finalizers = spec.get("finalizers")
        if finalizers is None:
            spec["finalizers"] = ["kubernetes"]
        elif isinstance(finalizers, list) and "kubernetes" not in finalizers:
            finalizers.append("kubernetes")
    status = _d(obj, "status")
    _default(status, "phase", "Active")


def _node(obj: Obj) -> None:
    spec = obj.get("spec")
    if isinstance(spec, dict):
        # v1 conversion keeps podCIDR and podCIDRs[0] in step.
        cidr, cidrs = spec.get("podCIDR"), spec.get("podCIDRs")
        if cidr and not cidrs:
            spec["podCIDRs"] = [cidr]
        elif cidrs and isinstance(cidrs, list) and not cidr:
            spec["podCIDR"] = cidrs[0]
    status = obj.get("status")
    if isinstance(status, dict) and status.get("allocatable") is None and \
            isinstance(status.get("capacity"), dict):
        status["allocatable"] = copy.deepcopy(status["capacity"])


def externally_accessible(spec: Obj) -> bool:
    t = spec.get("type")
    return t in ("LoadBalancer", "NodePort") or (t == "ClusterIP" and bool(spec.get("externalIPs")))


def _service(obj: Obj) -> None:
    spec = _d(obj, "spec")
    _default(spec, "sessionAffinity", "None")
    if spec.get("sessionAffinity") == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec.get("sessionAffinity") == "ClientIP":
        cfg = spec.get("sessionAffinityConfig")
        client_ip = cfg.get("clientIP") if isinstance(cfg, dict) else None
        if not isinstance(client_ip, dict) or client_ip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 10800}}
    _default(spec, "type", "ClusterIP")
    for port in _items(spec.get("ports")):
        _default(port, "protocol", "TCP")
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    if externally_accessible(spec):
        if not spec.get("externalTrafficPolicy"):
            spec["externalTrafficPolicy"] = "Cluster"
    if spec.get("type") != "ExternalName":
        _default(spec, "internalTrafficPolicy", "Cluster")
    if spec.get("type") == "LoadBalancer":
        _default(spec, "allocateLoadBalancerNodePorts", True)
        # LoadBalancerIPMode (beta, on in 1.32): ingress IPs default to VIP mode.
        status = obj.get("status")
        lb = status.get("loadBalancer") if isinstance(status, dict) else None
        if isinstance(lb, dict):
            for ing in _items(lb.get("ingress")):
                if ing.get("ip") and ing.get("ipMode") is None:
                    ing["ipMode"] = "VIP"


def _endpoints(obj: Obj) -> None:
    for subset in _items(obj.get("subsets")):
        for port in _items(subset.get("ports")):
            _default(port, "protocol", "TCP")


def _replication_controller(obj: Obj) -> None:
    spec = _d(obj, "spec")
    tmpl = spec.get("template")
    tmeta = tmpl.get("metadata") if isinstance(tmpl, dict) else None
    labels = tmeta.get("labels") if isinstance(tmeta, dict) else None
    if isinstance(labels, dict) and labels:
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        meta = _d(obj, "metadata")
        if not meta.get("labels"):
            meta["labels"] = dict(labels)
    _default(spec, "replicas", 1)
    pod_template(spec)


def _pvc_spec(spec: Obj) -> None:
    _default(spec, "volumeMode", "Filesystem")


def _persistent_volume(obj: Obj) -> None:
    spec = _d(obj, "spec")
    _default(spec, "persistentVolumeReclaimPolicy", "Retain")
    _default(spec, "volumeMode", "Filesystem")
    if isinstance(spec.get("hostPath"), dict):
        _default(spec["hostPath"], "type", "")
    _default(_d(obj, "status"), "phase", "Pending")


def _persistent_volume_claim(obj: Obj) -> None:
    _pvc_spec(_d(obj, "spec"))
    _default(_d(obj, "status"), "phase", "Pending")


# --- apps --------------------------------------------------------------------------------

def _deployment(obj: Obj) -> None:
    spec = _d(obj, "spec")
    _default(spec, "replicas", 1)
    strategy = _d(spec, "strategy")
    _default(strategy, "type", "RollingUpdate")
    if strategy.get("type") == "RollingUpdate":
        ru = _d(strategy, "rollingUpdate")
        _default(ru, "maxUnavailable", "25%")
        _default(ru, "maxSurge", "25%")
    _default(spec, "revisionHistoryLimit", 10)
    _default(spec, "progressDeadlineSeconds", 600)
    pod_template(spec)


def _replica_set(obj: Obj) -> None:
    spec = _d(obj, "spec")
    _default(spec, "replicas", 1)
    pod_template(spec)


def _stateful_set(obj: Obj) -> None:
    spec = _d(obj, "spec")
    _default(spec, "podManagementPolicy", "OrderedReady")
    strategy = _d(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
        _default(strategy, "rollingUpdate", {})
    ru = strategy.get("rollingUpdate")
    if strategy.get("type") == "RollingUpdate" and isinstance(ru, dict):
        _default(ru, "partition", 0)
    policy = _d(spec, "persistentVolumeClaimRetentionPolicy")
    _default(policy, "whenDeleted", "Retain")
    _default(policy, "whenScaled", "Retain")
    _default(spec, "replicas", 1)
    _default(spec, "revisionHistoryLimit", 10)
    pod_template(spec)
    for claim in _items(spec.get("volumeClaimTemplates")):
        _pvc_spec(_d(claim, "spec"))
        # The nested PVC defaulter also sets its status, which kubectl shows.
        _default(_d(claim, "status"), "phase", "Pending")


def _daemon_set(obj: Obj) -> None:
    spec = _d(obj, "spec")
    strategy = _d(spec, "updateStrategy")
    _default(strategy, "type", "RollingUpdate")
    if strategy.get("type") == "RollingUpdate":
        ru = _d(strategy, "rollingUpdate")
        _default(ru, "maxUnavailable", 1)
        _default(ru, "maxSurge", 0)
    _default(spec, "revisionHistoryLimit", 10)
    pod_template(spec)


# --- other groups ------------------------------------------------------------------------

def _endpoint_slice(obj: Obj) -> None:
    for port in _items(obj.get("ports")):
        _default(port, "name", "")
        _default(port, "protocol", "TCP")


def _storage_class(obj: Obj) -> None:
    _default(obj, "reclaimPolicy", "Delete")
    _default(obj, "volumeBindingMode", "Immediate")


_DEFAULTERS: dict[str, Callable[[Obj], None]] = {
    "Pod": _pod,
    "Namespace": _namespace,
    "Node": _node,
    "Service": _service,
    "Endpoints": _endpoints,
    "ReplicationController": _replication_controller,
    "PersistentVolume": _persistent_volume,
    "PersistentVolumeClaim": _persistent_volume_claim,
    "Deployment": _deployment,
    "ReplicaSet": _replica_set,
    "StatefulSet": _stateful_set,
    "DaemonSet": _daemon_set,
    "EndpointSlice": _endpoint_slice,
    "StorageClass": _storage_class,
}


def apply_defaults(kind: str, obj: dict[str, Any]) -> None:
    """Fill Kubernetes' defaults into obj in place; unknown kinds are left alone."""
    fn = _DEFAULTERS.get(kind)
    if fn is not None and isinstance(obj, dict):
        fn(obj)


def pod_qos_class(spec: dict[str, Any]) -> str:
    """GetPodQOS: Guaranteed, Burstable or BestEffort from cpu/memory requests and limits."""
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    guaranteed = True
    for key in ("initContainers", "containers"):
        for c in _items(spec.get(key)):
            res = c.get("resources")
            res = res if isinstance(res, dict) else {}
            found: set[str] = set()
            for bag, acc in (("requests", requests), ("limits", limits)):
                for name, qty in (res.get(bag) or {}).items():
                    if name not in ("cpu", "memory"):
                        continue
                    try:
                        value = parse_quantity(qty)
                    except ValueError:
                        continue
                    if value > 0:
                        acc[name] = acc.get(name, 0) + value
                        if bag == "limits":
                            found.add(name)
            if found != {"cpu", "memory"}:
                guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and all(limits.get(n) == v for n, v in requests.items()) and \
            len(requests) == len(limits):
        return "Guaranteed"
    return "Burstable"
