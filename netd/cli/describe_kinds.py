"""kubectl's describers for Service, Deployment, ReplicaSet, StatefulSet and Node
over plain dicts, and the kind → describer table (`describe`)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from netd.api.printers.common import (
    as_dict, as_int, as_list, as_str, format_label_selector, format_labels, get,
    join_host_port, selector_string, since,
)
from netd.cli.describe import (
    Related, Writer, annotations_multiline, controller_of, describe_events, describe_generic,
    describe_config_map, describe_namespace, go_value, int_or_string, labels_multiline, rfc1123z,
)
from netd.cli.describe_pods import describe_pod, describe_pod_template
from netd.cli.quantity import format_quantity, parse_quantity

Obj = dict[str, Any]


# ------------------------------------------------------------------------ service


def _endpoints(slices: list[Obj], port_name: str) -> str:
    """formatEndpointSlices for one service port: ready addresses, at most 3 shown."""
    shown: list[str] = []
    count = 0
    for s in slices:
        ports = [as_dict(p) for p in as_list(s.get("ports"))]
        endpoints = [as_dict(e) for e in as_list(s.get("endpoints"))]
        targets: list[int | None] = [None] if not ports else \
            [as_int(p.get("port")) for p in ports if as_str(p.get("name")) == port_name]
        for port in targets:
            for e in endpoints:
                if get(e, "conditions", "ready") is False:
                    continue
                addrs = as_list(e.get("addresses"))
                if not addrs:
                    continue
                if len(shown) < 3:
                    shown.append(str(addrs[0]) if port is None
                                 else join_host_port(str(addrs[0]), port))
                count += 1
    if not slices:
        return "<none>"
    text = ",".join(shown)
    return f"{text} + {count - 3} more..." if count > 3 else text


def describe_service(svc: Obj, rel: Related, now: datetime) -> str:
    w = Writer()
    meta, spec = as_dict(svc.get("metadata")), as_dict(svc.get("spec"))
    w.write(0, f"Name:\t{as_str(meta.get('name'))}\n")
    w.write(0, f"Namespace:\t{as_str(meta.get('namespace'))}\n")
    labels_multiline(w, "Labels", meta.get("labels"))
    annotations_multiline(w, "Annotations", meta.get("annotations"))
    w.write(0, f"Selector:\t{format_labels(spec.get('selector'))}\n")
    w.write(0, f"Type:\t{as_str(spec.get('type'))}\n")
    if spec.get("ipFamilyPolicy"):
        w.write(0, f"IP Family Policy:\t{spec['ipFamilyPolicy']}\n")
    families = ",".join(map(str, as_list(spec.get("ipFamilies")))) or "<none>"
    w.write(0, f"IP Families:\t{families}\n")
    w.write(0, f"IP:\t{as_str(spec.get('clusterIP'))}\n")
    w.write(0, f"IPs:\t{','.join(map(str, as_list(spec.get('clusterIPs')))) or '<none>'}\n")
    if spec.get("externalIPs"):
        w.write(0, f"External IPs:\t{','.join(map(str, spec['externalIPs']))}\n")
    if spec.get("externalName"):
        w.write(0, f"External Name:\t{spec['externalName']}\n")
    ingress = [as_dict(i) for i in as_list(get(svc, "status", "loadBalancer", "ingress"))]
    if ingress:
        text = ", ".join(as_str(i.get("ip")) or as_str(i.get("hostname")) for i in ingress)
        w.write(0, f"LoadBalancer Ingress:\t{text}\n")
    for p in map(as_dict, as_list(spec.get("ports"))):
        name = as_str(p.get("name")) or "<unset>"
        proto = as_str(p.get("protocol")) or "TCP"
        w.write(0, f"Port:\t{name}\t{as_int(p.get('port'))}/{proto}\n")
        target = p.get("targetPort", p.get("port"))
        w.write(0, f"TargetPort:\t{int_or_string(target)}/{proto}\n")
        if p.get("appProtocol"):
            w.write(0, f"AppProtocol:\t{p['appProtocol']}\n")
        if as_int(p.get("nodePort")):
            w.write(0, f"NodePort:\t{name}\t{p['nodePort']}/{proto}\n")
        w.write(0, f"Endpoints:\t{_endpoints(rel.endpoint_slices, as_str(p.get('name')))}\n")
    w.write(0, f"Session Affinity:\t{as_str(spec.get('sessionAffinity'))}\n")
    if spec.get("externalTrafficPolicy"):
        w.write(0, f"External Traffic Policy:\t{spec['externalTrafficPolicy']}\n")
    if spec.get("internalTrafficPolicy"):
        w.write(0, f"Internal Traffic Policy:\t{spec['internalTrafficPolicy']}\n")
    if as_int(spec.get("healthCheckNodePort")):
        w.write(0, f"HealthCheck NodePort:\t{spec['healthCheckNodePort']}\n")
    if spec.get("trafficDistribution"):
        w.write(0, f"Traffic Distribution:\t{spec['trafficDistribution']}\n")
    describe_events(w, rel.events, now)
    return w.text()


# ---------------------------------------------------------------------- workloads


def _owned_by(obj: Obj, uid: str) -> bool:
    return any(as_dict(r).get("controller") and as_dict(r).get("uid") == uid
               for r in as_list(get(obj, "metadata", "ownerReferences")))


def pod_counts(pods: list[Obj], owner_uid: str) -> tuple[int, int, int, int]:
    """getPodStatusForController: running, waiting, succeeded, failed among the
    pods the controller owns."""
    phases = [as_str(get(p, "status", "phase")) for p in pods if _owned_by(p, owner_uid)]
    return (phases.count("Running"), phases.count("Pending"), phases.count("Succeeded"),
            phases.count("Failed"))


def _pods_status(rel: Related, uid: str) -> str:
    r, w_, s, f = pod_counts(rel.pods, uid)
    return f"{r} Running / {w_} Waiting / {s} Succeeded / {f} Failed"


def _conditions3(w: Writer, status: Obj) -> None:
    conditions = [as_dict(c) for c in as_list(status.get("conditions"))]
    if conditions:
        w.write(0, "Conditions:\n  Type\tStatus\tReason\n")
        w.write(1, "----\t------\t------\n")
        for c in conditions:
            w.write(1, f"{as_str(c.get('type'))} \t{as_str(c.get('status'))}\t"
                       f"{as_str(c.get('reason'))}\n")


def _selector(spec: Obj) -> str:
    try:
        return selector_string(spec.get("selector"))
    except ValueError:
        return "<error>"


def _strip_hash(template: Obj) -> Obj:
    labels = dict(as_dict(get(template, "metadata", "labels")))
    labels.pop("pod-template-hash", None)
    meta = dict(as_dict(template.get("metadata")), labels=labels)
    return dict(template, metadata=meta)


def split_replica_sets(d: Obj, replica_sets: list[Obj]) -> tuple[list[Obj], list[Obj]]:
    """Old and new ReplicaSets of a Deployment: the new one's template equals the
    Deployment's, ignoring pod-template-hash (deploymentutil.EqualIgnoreHash)."""
    uid = as_str(get(d, "metadata", "uid"))
    owned = [rs for rs in replica_sets if _owned_by(rs, uid)]
    want = _strip_hash(as_dict(get(d, "spec", "template")))
    new = [rs for rs in owned if _strip_hash(as_dict(get(rs, "spec", "template"))) == want][:1]
    return [rs for rs in owned if rs not in new], new


def _rs_list(sets: list[Obj]) -> str:
    text = ", ".join(f"{as_str(get(rs, 'metadata', 'name'))} "
                     f"({as_int(get(rs, 'status', 'replicas'))}/"
                     f"{as_int(get(rs, 'spec', 'replicas'), 1)} replicas created)"
                     for rs in sets)
    return text or "<none>"


def describe_deployment(d: Obj, rel: Related, now: datetime) -> str:
    w = Writer()
    meta, spec, status = (as_dict(d.get(k)) for k in ("metadata", "spec", "status"))
    w.write(0, f"Name:\t{as_str(meta.get('name'))}\n")
    w.write(0, f"Namespace:\t{as_str(meta.get('namespace'))}\n")
    w.write(0, f"CreationTimestamp:\t{rfc1123z(meta.get('creationTimestamp'))}\n")
    labels_multiline(w, "Labels", meta.get("labels"))
    annotations_multiline(w, "Annotations", meta.get("annotations"))
    w.write(0, f"Selector:\t{_selector(spec)}\n")
    w.write(0, f"Replicas:\t{as_int(spec.get('replicas'), 1)} desired | "
               f"{as_int(status.get('updatedReplicas'))} updated | "
               f"{as_int(status.get('replicas'))} total | "
               f"{as_int(status.get('availableReplicas'))} available | "
               f"{as_int(status.get('unavailableReplicas'))} unavailable\n")
    strategy = as_dict(spec.get("strategy"))
    w.write(0, f"StrategyType:\t{as_str(strategy.get('type'))}\n")
    w.write(0, f"MinReadySeconds:\t{as_int(spec.get('minReadySeconds'))}\n")
    ru = strategy.get("rollingUpdate")
    if isinstance(ru, dict):
        w.write(0, f"RollingUpdateStrategy:\t{int_or_string(ru.get('maxUnavailable'))} max "
                   f"unavailable, {int_or_string(ru.get('maxSurge'))} max surge\n")
    describe_pod_template(w, as_dict(spec.get("template")))
    _conditions3(w, status)
    old, new = split_replica_sets(d, rel.replica_sets)
    if old or new:
        w.write(0, f"OldReplicaSets:\t{_rs_list(old)}\n")
        w.write(0, f"NewReplicaSet:\t{_rs_list(new)}\n")
    describe_events(w, rel.events, now)
    return w.text()


def describe_replica_set(rs: Obj, rel: Related, now: datetime) -> str:
    w = Writer()
    meta, spec, status = (as_dict(rs.get(k)) for k in ("metadata", "spec", "status"))
    w.write(0, f"Name:\t{as_str(meta.get('name'))}\n")
    w.write(0, f"Namespace:\t{as_str(meta.get('namespace'))}\n")
    w.write(0, f"Selector:\t{format_label_selector(spec.get('selector'))}\n")
    labels_multiline(w, "Labels", meta.get("labels"))
    annotations_multiline(w, "Annotations", meta.get("annotations"))
    if controller_of(rs):
        w.write(0, f"Controlled By:\t{controller_of(rs)}\n")
    w.write(0, f"Replicas:\t{as_int(status.get('replicas'))} current / "
               f"{as_int(spec.get('replicas'), 1)} desired\n")
    w.write(0, f"Pods Status:\t{_pods_status(rel, as_str(meta.get('uid')))}\n")
    describe_pod_template(w, as_dict(spec.get("template")))
    _conditions3(w, status)
    describe_events(w, rel.events, now)
    return w.text()


def describe_stateful_set(sts: Obj, rel: Related, now: datetime) -> str:
    w = Writer()
    meta, spec, status = (as_dict(sts.get(k)) for k in ("metadata", "spec", "status"))
    w.write(0, f"Name:\t{as_str(meta.get('name'))}\n")
    w.write(0, f"Namespace:\t{as_str(meta.get('namespace'))}\n")
    w.write(0, f"CreationTimestamp:\t{rfc1123z(meta.get('creationTimestamp'))}\n")
    w.write(0, f"Selector:\t{_selector(spec)}\n")
    labels_multiline(w, "Labels", meta.get("labels"))
    annotations_multiline(w, "Annotations", meta.get("annotations"))
    if spec.get("serviceName"):
        w.write(0, f"Service Name:\t{spec['serviceName']}\n")
    if spec.get("podManagementPolicy"):
        w.write(0, f"Pod Management Policy:\t{spec['podManagementPolicy']}\n")
    w.write(0, f"Replicas:\t{as_int(spec.get('replicas'), 1)} desired | "
               f"{as_int(status.get('replicas'))} total\n")
    update = as_dict(spec.get("updateStrategy"))
    w.write(0, f"Update Strategy:\t{as_str(update.get('type'))}\n")
    ru = as_dict(update.get("rollingUpdate"))
    if ru.get("partition") is not None:
        w.write(1, f"Partition:\t{go_value(ru['partition'])}\n")
        if ru.get("maxUnavailable") is not None:
            w.write(1, f"MaxUnavailable:\t{int_or_string(ru['maxUnavailable'])}\n")
    retention = spec.get("persistentVolumeClaimRetentionPolicy")
    if isinstance(retention, dict):
        w.write(0, "Persistent Volume Claim Retention Policy:\n")
        w.write(1, f"WhenDeleted:\t{as_str(retention.get('whenDeleted'))}\n")
        w.write(1, f"WhenScaled:\t{as_str(retention.get('whenScaled'))}\n")
    w.write(0, f"Pods Status:\t{_pods_status(rel, as_str(meta.get('uid')))}\n")
    describe_pod_template(w, as_dict(spec.get("template")))
    claims = [as_dict(c) for c in as_list(spec.get("volumeClaimTemplates"))]
    if not claims:
        w.write(0, "Volume Claims:\t<none>\n")
    else:
        w.write(0, "Volume Claims:\n")
        for c in claims:
            cmeta, cspec = as_dict(c.get("metadata")), as_dict(c.get("spec"))
            w.write(1, f"Name:\t{as_str(cmeta.get('name'))}\n")
            w.write(1, f"StorageClass:\t{as_str(cspec.get('storageClassName'))}\n")
            labels_multiline(w, "Labels", cmeta.get("labels"), "  ")
            labels_multiline(w, "Annotations", cmeta.get("annotations"), "  ")
            cap = get(cspec, "resources", "requests", "storage")
            w.write(1, f"Capacity:\t{go_value(cap) if cap is not None else '<default>'}\n")
            w.write(1, f"Access Modes:\t{go_value(as_list(cspec.get('accessModes')))}\n")
    describe_events(w, rel.events, now)
    return w.text()


# --------------------------------------------------------------------------- node

_ROLE_PREFIX = "node-role.kubernetes.io/"


def node_roles(node: Obj) -> list[str]:
    roles = set()
    for k, v in as_dict(get(node, "metadata", "labels")).items():
        if k.startswith(_ROLE_PREFIX) and k[len(_ROLE_PREFIX):]:
            roles.add(k[len(_ROLE_PREFIX):])
        elif k == "kubernetes.io/role" and v:
            roles.add(str(v))
    return sorted(roles)


def _pod_totals(pod: Obj) -> dict[str, dict[str, Any]]:
    """Sum of container requests/limits, maxed with each init container (PodRequests)."""
    out: dict[str, dict[str, Any]] = {"requests": {}, "limits": {}}
    for kind in ("requests", "limits"):
        total: dict[str, Any] = {}
        for c in as_list(get(pod, "spec", "containers")):
            for res, q in as_dict(get(c, "resources", kind)).items():
                total[res] = total.get(res, 0) + parse_quantity(q)
        for c in as_list(get(pod, "spec", "initContainers")):
            for res, q in as_dict(get(c, "resources", kind)).items():
                total[res] = max(total.get(res, 0), parse_quantity(q))
        out[kind] = total
    return out


_GO_INT64_NAN = -9223372036854775808


def _pct(value: Any, whole: Any, guarded: bool = True) -> int:
    if not whole:
        # The per-pod rows divide without a guard; Go's int64(NaN or Inf) on amd64
        # is the minimum int64, which is what kubectl prints for a node that
        # reports no allocatable resources.
        return 0 if guarded else _GO_INT64_NAN
    return int(value / whole * 100)


def describe_node_resources(w: Writer, node: Obj, pods: list[Obj], now: datetime) -> None:
    alloc = as_dict(get(node, "status", "allocatable")) or as_dict(get(node, "status", "capacity"))
    whole = {res: parse_quantity(alloc.get(res, 0))
             for res in ("cpu", "memory", "ephemeral-storage")}
    w.write(0, f"Non-terminated Pods:\t({len(pods)} in total)\n")
    w.write(1, "Namespace\tName\t\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\tAge\n")
    w.write(1, "---------\t----\t\t------------\t----------\t---------------\t-------------\t---\n")
    sums: dict[str, dict[str, Any]] = {"requests": {}, "limits": {}}

    def cell(kind: str, res: str, value: Any, guarded: bool = True) -> str:
        return f"{format_quantity(value, res)} ({_pct(value, whole[res], guarded)}%)"

    for pod in pods:
        t = _pod_totals(pod)
        for kind in ("requests", "limits"):
            for res, v in t[kind].items():
                sums[kind][res] = sums[kind].get(res, 0) + v
        cells = [cell(k, r, t[k].get(r, 0), guarded=False) for r in ("cpu", "memory")
                 for k in ("requests", "limits")]
        w.write(1, f"{as_str(get(pod, 'metadata', 'namespace'))}\t"
                   f"{as_str(get(pod, 'metadata', 'name'))}\t\t" + "\t".join(cells) +
                f"\t{since(get(pod, 'metadata', 'creationTimestamp'), now)}\n")
    w.write(0, "Allocated resources:\n  (Total limits may be over 100 percent, i.e., "
               "overcommitted.)\n")
    w.write(1, "Resource\tRequests\tLimits\n")
    w.write(1, "--------\t--------\t------\n")
    for res in ("cpu", "memory", "ephemeral-storage"):
        w.write(1, f"{res}\t{cell('requests', res, sums['requests'].get(res, 0))}\t"
                   f"{cell('limits', res, sums['limits'].get(res, 0))}\n")


def describe_node(node: Obj, rel: Related, now: datetime) -> str:
    w = Writer()
    meta, spec, status = (as_dict(node.get(k)) for k in ("metadata", "spec", "status"))
    w.write(0, f"Name:\t{as_str(meta.get('name'))}\n")
    w.write(0, f"Roles:\t{','.join(node_roles(node)) or '<none>'}\n")
    labels_multiline(w, "Labels", meta.get("labels"))
    annotations_multiline(w, "Annotations", meta.get("annotations"))
    w.write(0, f"CreationTimestamp:\t{rfc1123z(meta.get('creationTimestamp'))}\n")
    taints = sorted(map(as_dict, as_list(spec.get("taints"))),
                    key=lambda t: f"{as_str(t.get('effect'))},{as_str(t.get('key'))}")
    w.write(0, "Taints:\t")
    if not taints:
        w.line("<none>")
    for i, t in enumerate(taints):
        text = as_str(t.get("key")) + (f"={t['value']}" if t.get("value") else "") + \
            f":{as_str(t.get('effect'))}"
        w.write(0, ("\t" if i else "") + text + "\n")
    w.write(0, f"Unschedulable:\t{'true' if spec.get('unschedulable') else 'false'}\n")
    if rel.lease is not None:
        lspec = as_dict(rel.lease.get("spec"))
        w.write(0, "Lease:\n")
        w.write(1, f"HolderIdentity:\t{as_str(lspec.get('holderIdentity')) or '<unset>'}\n")
        for key, title in (("acquireTime", "AcquireTime"), ("renewTime", "RenewTime")):
            value = lspec.get(key)
            w.write(1, f"{title}:\t{rfc1123z(value) if value else '<unset>'}\n")
    elif rel.lease_error:
        w.write(0, f"Lease:\tFailed to get lease: {rel.lease_error}\n")
    conditions = [as_dict(c) for c in as_list(status.get("conditions"))]
    if conditions:
        w.write(0, "Conditions:\n  Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\t"
                   "Reason\tMessage\n")
        w.write(1, "----\t------\t-----------------\t------------------\t------\t-------\n")
        for c in conditions:
            w.write(1, f"{as_str(c.get('type'))} \t{as_str(c.get('status'))} \t"
                       f"{rfc1123z(c.get('lastHeartbeatTime'))} \t"
                       f"{rfc1123z(c.get('lastTransitionTime'))} \t"
                       f"{as_str(c.get('reason'))} \t{as_str(c.get('message'))}\n")
    w.write(0, "Addresses:\n")
    for a in map(as_dict, as_list(status.get("addresses"))):
        w.write(1, f"{as_str(a.get('type'))}:\t{as_str(a.get('address'))}\n")
    for key, title in (("capacity", "Capacity"), ("allocatable", "Allocatable")):
        values = as_dict(status.get(key))
        if values:
            w.write(0, f"{title}:\n")
            for name in sorted(values):
                w.write(0, f"  {name}:\t{go_value(values[name])}\n")
    info = as_dict(status.get("nodeInfo"))
    w.write(0, "System Info:\n")
    for key, title in (("machineID", "Machine ID"), ("systemUUID", "System UUID"),
                       ("bootID", "Boot ID"), ("kernelVersion", "Kernel Version"),
                       ("osImage", "OS Image"), ("operatingSystem", "Operating System"),
                       ("architecture", "Architecture"),
                       ("containerRuntimeVersion", "Container Runtime Version"),
                       ("kubeletVersion", "Kubelet Version"),
                       ("kubeProxyVersion", "Kube-Proxy Version")):
        w.write(0, f"  {title}:\t{as_str(info.get(key))}\n")
    if spec.get("podCIDR"):
        w.write(0, f"PodCIDR:\t{spec['podCIDR']}\n")
    if spec.get("podCIDRs"):
        w.write(0, f"PodCIDRs:\t{','.join(map(str, spec['podCIDRs']))}\n")
    if spec.get("providerID"):
        w.write(0, f"ProviderID:\t{spec['providerID']}\n")
    describe_node_resources(w, node, rel.pods, now)
    describe_events(w, rel.events, now)
    return w.text()


DESCRIBERS = {
    "Pod": describe_pod,
    "Service": describe_service,
    "Deployment": describe_deployment,
    "ReplicaSet": describe_replica_set,
    "StatefulSet": describe_stateful_set,
    "Node": describe_node,
    "Namespace": lambda obj, rel, now: describe_namespace(obj),
    "ConfigMap": lambda obj, rel, now: describe_config_map(obj, rel.events, now),
}


def describe(kind: str, obj: Obj, rel: Related, now: datetime) -> str:
    fn = DESCRIBERS.get(kind)
    if fn is None:
        return describe_generic(obj, rel.events, now)
    return fn(obj, rel, now)
