"""Objects every cluster is born with (created once, kept across restarts).

- the system namespaces;
- `default/kubernetes`: the API server's Service (first IP of the service CIDR, 443/https
  → 6443) and, once the daemon knows where it listens, its Endpoints and EndpointSlice
  — written here, as kube-apiserver's endpoint reconciler does, not by the endpoints
  controller (the Service has no selector);
- `kube-system/kube-dns`: the cluster DNS Service on the configured DNS IP, with the
  labels and port names kubeadm's CoreDNS manifest gives it.

Every call is idempotent; the Service objects are created if missing and otherwise
left alone (a user's edits survive), the API server's endpoints are corrected when the
address changed between runs.
"""
from __future__ import annotations

import ipaddress
import logging
from typing import Any

from netd.api import errors
from netd.api.kinds import resource
from netd.registry.admission import SYSTEM_NAMESPACES
from netd.registry.objectapi import ObjectAPI

log = logging.getLogger("netd.registry")

Obj = dict[str, Any]

# The kubernetes Endpoints/EndpointSlice are the API server's own: the mirroring
# controller must leave them alone (kube-apiserver labels them the same way).
SKIP_MIRROR = "endpointslice.kubernetes.io/skip-mirror"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def kubernetes_service(service_cidr: str) -> Obj:
    first = str(next(ipaddress.ip_network(service_cidr, strict=False).hosts()))
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"type": "ClusterIP", "clusterIP": first, "clusterIPs": [first],
                 "sessionAffinity": "None",
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                            "targetPort": 6443}]},
    }


def kube_dns_service(dns_ip: str) -> Obj:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": "kube-system",
                     "labels": {"k8s-app": "kube-dns",
                                "kubernetes.io/cluster-service": "true",
                                "kubernetes.io/name": "CoreDNS"},
                     "annotations": {"prometheus.io/port": "9153",
                                     "prometheus.io/scrape": "true"}},
        "spec": {"type": "ClusterIP", "clusterIP": dns_ip, "clusterIPs": [dns_ip],
                 "selector": {"k8s-app": "kube-dns"},
                 "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                           {"name": "dns-tcp", "port": 53, "protocol": "TCP",
                            "targetPort": 53},
                           {"name": "metrics", "port": 9153, "protocol": "TCP",
                            "targetPort": 9153}]},
    }


def kubernetes_endpoints(ip: str, port: int) -> tuple[Obj, Obj]:
    """The Endpoints and EndpointSlice kube-apiserver keeps for itself."""
    eps = {"apiVersion": "v1", "kind": "Endpoints",
           "metadata": {"name": "kubernetes", "namespace": "default",
                        "labels": {SKIP_MIRROR: "true"}},
           "subsets": [{"addresses": [{"ip": ip}],
                        "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]}
    family = "IPv4" if ipaddress.ip_address(ip).version == 4 else "IPv6"
    eps_slice = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                 "metadata": {"name": "kubernetes", "namespace": "default",
                              "labels": {SERVICE_NAME_LABEL: "kubernetes"}},
                 "addressType": family,
                 "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}],
                 "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}
    return eps, eps_slice


async def ensure_system_objects(api: ObjectAPI, config: Any = None,
                                api_endpoint: tuple[str, int] | None = None) -> None:
    """Namespaces always; with `config` (a netd.config.Config) the kubernetes and
    kube-dns Services; with `api_endpoint` (ip, port) the API server's Endpoints."""
    ns_rt = resource("", "namespaces")
    for name in SYSTEM_NAMESPACES:
        if api.store.get("namespaces", "", name) is not None:
            continue
        try:
            await api.create(ns_rt, "", {"apiVersion": "v1", "kind": "Namespace",
                                         "metadata": {"name": name}})
            log.info("created namespace %s", name)
        except errors.AlreadyExists:
            pass
    if config is not None:
        await _ensure_created(api, kubernetes_service(config.service_cidr))
        await _ensure_created(api, kube_dns_service(config.dns_ip))
    if api_endpoint is not None:
        await ensure_api_endpoints(api, *api_endpoint)


async def _ensure_created(api: ObjectAPI, obj: Obj) -> None:
    rt = resource("", "services")
    meta = obj["metadata"]
    if api.store.get(rt.group_resource, meta["namespace"], meta["name"]) is not None:
        return
    try:
        await api.create(rt, meta["namespace"], obj)
        log.info("created service %s/%s", meta["namespace"], meta["name"])
    except errors.AlreadyExists:
        pass
    except errors.APIError as exc:
        # e.g. a user Service took the address before this version of netd reserved
        # it: keep the daemon up and say why the system Service is missing.
        log.error("cannot create service %s/%s: %s", meta["namespace"], meta["name"],
                  exc.message)


async def ensure_api_endpoints(api: ObjectAPI, ip: str, port: int) -> None:
    """Point default/kubernetes at the API server (call again when the address moves).
    Loopback and unspecified addresses are not valid endpoints in Kubernetes (pods
    could not reach them either), so they are skipped with a warning."""
    addr = ipaddress.ip_address(ip)
    if addr.is_loopback or addr.is_unspecified or addr.is_link_local:
        log.warning("API endpoint %s is not reachable from pods; default/kubernetes gets "
                    "no endpoints", ip)
        return
    eps, eps_slice = kubernetes_endpoints(ip, port)
    for rt, body, fields in ((resource("", "endpoints"), eps, ("subsets",)),
                             (resource("discovery.k8s.io", "endpointslices"), eps_slice,
                              ("addressType", "endpoints", "ports"))):
        current = api.store.get(rt.group_resource, "default", "kubernetes")
        if current is None:
            try:
                await api.create(rt, "default", body)
            except errors.AlreadyExists:
                continue
            log.info("created %s default/kubernetes → %s:%d", rt.plural, ip, port)
            continue
        if all(current.obj.get(f) == body.get(f) for f in fields):
            continue
        if rt.plural == "endpointslices" and current.obj.get("addressType") != \
                body["addressType"]:
            # addressType is immutable: replace the slice.
            await api.delete(rt, "default", "kubernetes")
            await api.create(rt, "default", body)
        else:
            updated = dict(current.obj)
            for f in fields:
                updated[f] = body[f]
            await api.update(rt, "default", "kubernetes", updated)
        log.info("updated %s default/kubernetes → %s:%d", rt.plural, ip, port)
