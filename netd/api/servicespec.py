"""Which allocated values a Service's spec needs and holds, and the service strategy's
update rules about them (kube-apiserver pkg/registry/core/service/storage: needsClusterIP,
needsNodePort, needsHCNodePort, dropTypeDependentFields, patchAllocatedValues,
NormalizeClusterIPs). Pure functions over spec dicts, so the strategy (before
validation) and the allocation plugin (after it) share one definition.
"""
from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def needs_cluster_ip(spec: Obj) -> bool:
    return spec.get("type", "ClusterIP") != "ExternalName"


def needs_node_ports(spec: Obj) -> bool:
    return spec.get("type") in ("NodePort", "LoadBalancer")


def needs_hc_node_port(spec: Obj) -> bool:
    return spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


def should_allocate_node_ports(spec: Obj) -> bool:
    if spec.get("type") == "NodePort":
        return True
    return spec.get("type") == "LoadBalancer" and \
        spec.get("allocateLoadBalancerNodePorts", True) is not False


def held_ips(spec: Obj) -> list[str]:
    """The cluster IPs a stored Service holds ("None" and empty hold nothing)."""
    if not needs_cluster_ip(spec):
        return []
    ips = [ip for ip in spec.get("clusterIPs") or [] if isinstance(ip, str)]
    if not ips and isinstance(spec.get("clusterIP"), str):
        ips = [spec["clusterIP"]]
    return [ip for ip in ips if ip and ip != "None"]


def held_ports(spec: Obj) -> list[int]:
    """Node ports (and the health-check node port) a stored Service holds."""
    out: list[int] = []
    if needs_node_ports(spec):
        for p in spec.get("ports") or []:
            n = p.get("nodePort") if isinstance(p, dict) else None
            if isinstance(n, int) and n and n not in out:
                out.append(n)
    hc = spec.get("healthCheckNodePort")
    if needs_hc_node_port(spec) and isinstance(hc, int) and hc and hc not in out:
        out.append(hc)
    return out


def _node_ports(spec: Obj) -> list[Any]:
    return [p.get("nodePort") or 0 for p in spec.get("ports") or [] if isinstance(p, dict)]


def drop_type_dependent_fields(new: Obj, old: Obj) -> None:
    """dropTypeDependentFields of the service strategy: on a type change, clear what
    the server filled in for the old type, unless the user changed it too (then
    validation reports it). Must run on updates *before* validation (see report)."""
    if needs_cluster_ip(old) and not needs_cluster_ip(new):
        if (new.get("clusterIP") or "") == (old.get("clusterIP") or "") and \
                (new.get("clusterIPs") or []) == (old.get("clusterIPs") or []):
            new.pop("clusterIP", None)
            new.pop("clusterIPs", None)
        if new.get("ipFamilies") == old.get("ipFamilies"):
            new.pop("ipFamilies", None)
        if new.get("ipFamilyPolicy") == old.get("ipFamilyPolicy"):
            new.pop("ipFamilyPolicy", None)
    if needs_node_ports(old) and not needs_node_ports(new) and \
            _node_ports(new) == _node_ports(old):
        for p in new.get("ports") or []:
            if isinstance(p, dict):
                p.pop("nodePort", None)
    if needs_hc_node_port(old) and not needs_hc_node_port(new) and \
            new.get("healthCheckNodePort") == old.get("healthCheckNodePort"):
        new.pop("healthCheckNodePort", None)
    if old.get("type") == "LoadBalancer" and new.get("type") != "LoadBalancer":
        if new.get("allocateLoadBalancerNodePorts") is not None and \
                new.get("allocateLoadBalancerNodePorts") == old.get("allocateLoadBalancerNodePorts"):
            new.pop("allocateLoadBalancerNodePorts", None)
        if new.get("loadBalancerClass") == old.get("loadBalancerClass"):
            new.pop("loadBalancerClass", None)
    old_ext = old.get("type") in ("NodePort", "LoadBalancer") or bool(old.get("externalIPs"))
    new_ext = new.get("type") in ("NodePort", "LoadBalancer") or bool(new.get("externalIPs"))
    if old_ext and not new_ext and \
            new.get("externalTrafficPolicy") == old.get("externalTrafficPolicy"):
        new.pop("externalTrafficPolicy", None)


def patch_allocated_values(new: Obj, old: Obj) -> None:
    """patchAllocatedValues: an update that leaves out nodePorts / healthCheckNodePort
    keeps the allocated ones (matched by port name), so `kubectl replace` and `apply` of
    a manifest without them do not re-roll the ports."""
    if needs_cluster_ip(old) and needs_cluster_ip(new):
        if not new.get("clusterIP") and old.get("clusterIP"):
            new["clusterIP"] = old["clusterIP"]
        if not new.get("clusterIPs") and old.get("clusterIPs"):
            new["clusterIPs"] = list(old["clusterIPs"])
    if needs_node_ports(old) and needs_node_ports(new):
        used = {n for n in _node_ports(old) if n} & {n for n in _node_ports(new) if n}
        by_name = {p.get("name", ""): p.get("nodePort") or 0
                   for p in old.get("ports") or [] if isinstance(p, dict)}
        for p in new.get("ports") or []:
            if isinstance(p, dict) and not p.get("nodePort"):
                value = by_name.get(p.get("name", ""), 0)
                if value and value not in used:
                    p["nodePort"] = value
    if needs_hc_node_port(old) and needs_hc_node_port(new) and \
            not new.get("healthCheckNodePort") and old.get("healthCheckNodePort"):
        new["healthCheckNodePort"] = old["healthCheckNodePort"]


def normalize_cluster_ips(spec: Obj) -> None:
    """NormalizeClusterIPs: old clients send only clusterIP; both fields end up set."""
    ip = spec.get("clusterIP") or ""
    ips = spec.get("clusterIPs") or []
    if ip and not ips:
        spec["clusterIPs"] = [ip]
    elif ips and not ip:
        spec["clusterIP"] = ips[0]
