"""Service and Endpoints validation (ValidateService, ValidateServiceUpdate, ValidateEndpoints).

Validation runs before the ClusterIP/NodePort allocator in netd's write path, so it reads
clusterIP/clusterIPs through the same normalisation the service strategy applies
(either one implies the other) and never requires values the allocator fills in
(clusterIPs, nodePorts, healthCheckNodePort).
"""
from __future__ import annotations

import functools
import ipaddress
from typing import Any

from netd.api.defaults import externally_accessible
from netd.api.errors import FieldError, duplicate, forbidden, invalid, not_supported, required
from netd.api.validation.common import (GoValue, as_dict, as_int, as_list, as_str, child,
                                        go_quote, go_strings, index, name_is_dns1035_label,
                                        name_is_dns_subdomain, validate_dns1123_label,
                                        validate_dns1123_subdomain, validate_qualified_name)
from netd.api.validation.meta import (validate_labels, validate_object_meta,
                                      validate_object_meta_update)
from netd.api.validation.net import (parse_ip, validate_cidr, validate_ip,
                                     validate_non_special_ip, validate_port_num,
                                     validate_port_num_or_name, validate_protocol)

SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
MAX_AFFINITY_TIMEOUT = 86400


def cluster_ips(spec: dict[str, Any]) -> list[str]:
    """spec.clusterIPs as the strategy normalises it before validation."""
    ips = [as_str(x) for x in as_list(spec.get("clusterIPs"))]
    ip = as_str(spec.get("clusterIP"))
    if not ips and ip:
        return [ip]
    return ips


def is_headless(spec: dict[str, Any]) -> bool:
    ips = cluster_ips(spec)
    return spec.get("type") == "ClusterIP" and bool(ips) and ips[0] == "None"


def _go_service_port(protocol: str, port: Any) -> GoValue:
    # field.Duplicate(portPath, core.ServicePort{Protocol, Port}) prints the struct with %#v.
    return GoValue('core.ServicePort{Name:"", Protocol:' + go_quote(protocol)
                   + ", AppProtocol:(*string)(nil), Port:" + str(port)
                   + ', TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}')


def _validate_service_port(sp: dict[str, Any], require_name: bool, names: set[str],
                           path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    name = as_str(sp.get("name"))
    if require_name and not name:
        errs.append(required(child(path, "name")))
    elif name:
        errs.extend(validate_dns1123_label(name, child(path, "name")))
        if name in names:
            errs.append(duplicate(child(path, "name"), name))
        else:
            names.add(name)
    errs.extend(validate_port_num(sp.get("port"), child(path, "port")))
    errs.extend(validate_protocol(sp.get("protocol"), child(path, "protocol")))
    errs.extend(validate_port_num_or_name(sp.get("targetPort"), child(path, "targetPort")))
    if sp.get("appProtocol") is not None:
        errs.extend(validate_qualified_name(as_str(sp.get("appProtocol")),
                                            child(path, "appProtocol")))
    node_port = sp.get("nodePort")
    if node_port not in (None, 0):
        n = as_int(node_port)
        if n is None or not 0 <= n <= 65535:
            errs.append(invalid(child(path, "nodePort"), node_port,
                                "must be between 0 and 65535, inclusive"))
    return errs


def _validate_cluster_ips(spec: dict[str, Any]) -> list[FieldError]:
    """ValidateServiceClusterIPsRelatedFields over the normalised view."""
    if spec.get("type") == "ExternalName":
        return []
    errs: list[FieldError] = []
    path = "spec.clusterIPs"
    ip, ips = as_str(spec.get("clusterIP")), cluster_ips(spec)
    if ip and ips[0] != ip:
        errs.append(invalid(path, go_strings(ips), "first value must match `clusterIP`"))
    families = [as_str(f) for f in as_list(spec.get("ipFamilies"))]
    seen: set[str] = set()
    for i, fam in enumerate(families):
        if fam not in ("IPv4", "IPv6"):
            errs.append(not_supported(index("spec.ipFamilies", i), fam, ["IPv4", "IPv6"]))
        if fam in seen:
            errs.append(duplicate(index("spec.ipFamilies", i), fam))
        seen.add(fam)
    policy = spec.get("ipFamilyPolicy")
    supported = ["PreferDualStack", "RequireDualStack", "SingleStack"]
    if policy is not None and policy not in supported:
        errs.append(not_supported("spec.ipFamilyPolicy", policy, supported))
    bad = False
    for i, value in enumerate(ips):
        if i == 0 and value == "None":
            if len(ips) > 1:
                bad = True
                errs.append(invalid(path, go_strings(ips),
                                    "'None' must be the first and only value"))
            continue
        ip_errs = validate_ip(value, index(path, i))
        bad = bad or bool(ip_errs)
        errs.extend(ip_errs)
    if len(ips) > 2:
        errs.append(invalid(path, go_strings(ips), "may only hold up to 2 values"))
    if bad:
        return errs
    if len(ips) > 1:
        versions = [parse_ip(x).version for x in ips[:2]]  # type: ignore[union-attr]
        if versions[0] == versions[1]:
            errs.append(invalid(path, go_strings(ips),
                                "may specify no more than one IP for each IP family"))
    if not is_headless(spec) and ips and families:
        for i, value in enumerate(ips[:len(families)]):
            v6 = isinstance(parse_ip(value), ipaddress.IPv6Address)
            if families[i] == "IPv4" and v6:
                errs.append(invalid(index(path, i), value, "expected an IPv4 value as indicated "
                                                           f"by `ipFamilies[{i}]`"))
            if families[i] == "IPv6" and not v6:
                errs.append(invalid(index(path, i), value, "expected an IPv6 value as indicated "
                                                           f"by `ipFamilies[{i}]`"))
    return errs


def validate_service(obj: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(obj, True, name_is_dns1035_label)
    spec = as_dict(obj.get("spec"))
    stype = as_str(spec.get("type"))
    ports = [as_dict(p) for p in as_list(spec.get("ports"))]
    headless = is_headless(spec)
    if not ports and not headless and stype != "ExternalName":
        errs.append(required("spec.ports"))
    ips = cluster_ips(spec)
    if stype in ("LoadBalancer", "NodePort") and ips and ips[0] == "None":
        errs.append(invalid("spec.clusterIPs[0]", "None",
                            f"may not be set to 'None' for {stype} services"))
    elif stype == "ExternalName":
        if ips:
            errs.append(forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
        if as_list(spec.get("ipFamilies")):
            errs.append(forbidden("spec.ipFamilies", "may not be set for ExternalName services"))
        if spec.get("ipFamilyPolicy") is not None:
            errs.append(forbidden("spec.ipFamilyPolicy",
                                  "may not be set for ExternalName services"))
        cname = as_str(spec.get("externalName"))
        cname = cname[:-1] if cname.endswith(".") else cname
        if cname:
            errs.extend(validate_dns1123_subdomain(cname, "spec.externalName"))
        else:
            errs.append(required("spec.externalName"))
    names: set[str] = set()
    for i, sp in enumerate(ports):
        errs.extend(_validate_service_port(sp, len(ports) > 1, names, index("spec.ports", i)))
    if spec.get("selector") is not None:
        errs.extend(validate_labels(spec.get("selector"), "spec.selector"))
    affinity = as_str(spec.get("sessionAffinity"))
    if not affinity:
        errs.append(required("spec.sessionAffinity"))
    elif affinity not in ("ClientIP", "None"):
        errs.append(not_supported("spec.sessionAffinity", affinity, ["ClientIP", "None"]))
    cfg = spec.get("sessionAffinityConfig")
    if affinity == "ClientIP":
        errs.extend(_validate_client_ip_affinity(cfg))
    elif affinity == "None" and cfg is not None:
        errs.append(forbidden("spec.sessionAffinityConfig",
                              "must not be set when session affinity is None"))
    errs.extend(_validate_cluster_ips(spec))
    for i, ext in enumerate(as_list(spec.get("externalIPs"))):
        p = index("spec.externalIPs", i)
        ip_errs = validate_ip(as_str(ext), p)
        errs.extend(ip_errs or validate_non_special_ip(as_str(ext), p))
    if not stype:
        errs.append(required("spec.type"))
    elif stype not in SERVICE_TYPES:
        errs.append(not_supported("spec.type", stype, SERVICE_TYPES))
    if stype == "ClusterIP":
        for i, sp in enumerate(ports):
            if sp.get("nodePort"):
                errs.append(forbidden(child(index("spec.ports", i), "nodePort"),
                                      "may not be used when `type` is 'ClusterIP'"))
    seen_node: set[tuple[str, Any]] = set()
    for i, sp in enumerate(ports):
        if not sp.get("nodePort"):
            continue
        k = (as_str(sp.get("protocol")), sp.get("nodePort"))
        if k in seen_node:
            errs.append(duplicate(child(index("spec.ports", i), "nodePort"), sp.get("nodePort")))
        seen_node.add(k)
    seen_port: set[tuple[str, Any]] = set()
    for i, sp in enumerate(ports):
        k = (as_str(sp.get("protocol")), sp.get("port"))
        if k in seen_port:
            errs.append(duplicate(index("spec.ports", i), _go_service_port(*k)))
        seen_port.add(k)
    ranges = as_list(spec.get("loadBalancerSourceRanges"))
    if ranges:
        # Kubernetes spells this path with a capital L.
        if stype != "LoadBalancer":
            errs.append(forbidden("spec.LoadBalancerSourceRanges",
                                  "may only be used when `type` is 'LoadBalancer'"))
        for i, r in enumerate(ranges):
            errs.extend(validate_cidr(as_str(r).strip(), index("spec.LoadBalancerSourceRanges", i)))
    if spec.get("allocateLoadBalancerNodePorts") is not None and stype != "LoadBalancer":
        errs.append(forbidden("spec.allocateLoadBalancerNodePorts",
                              "may only be used when `type` is 'LoadBalancer'"))
    if stype == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        errs.append(required("allocateLoadBalancerNodePorts"))
    if spec.get("loadBalancerClass") is not None:
        if stype != "LoadBalancer":
            errs.append(forbidden("spec.loadBalancerClass",
                                  "may only be used when service type is 'LoadBalancer'"))
        else:
            errs.extend(validate_qualified_name(as_str(spec.get("loadBalancerClass")),
                                                "spec.loadBalancerClass"))
    errs.extend(_validate_traffic_policies(spec))
    return errs


def _validate_client_ip_affinity(cfg: Any) -> list[FieldError]:
    path = "spec.sessionAffinityConfig"
    detail = "when session affinity type is ClientIP"
    if cfg is None:
        return [required(path, detail)]
    client_ip = as_dict(cfg).get("clientIP")
    if client_ip is None:
        return [required(child(path, "clientIP"), detail)]
    timeout = as_dict(client_ip).get("timeoutSeconds")
    tpath = child(path, "clientIP", "timeoutSeconds")
    if timeout is None:
        return [required(tpath, detail)]
    n = as_int(timeout)
    if n is None or n <= 0 or n > MAX_AFFINITY_TIMEOUT:
        return [invalid(tpath, timeout,
                        f"must be greater than 0 and less than {MAX_AFFINITY_TIMEOUT}")]
    return []


def _validate_traffic_policies(spec: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    stype = as_str(spec.get("type"))
    etp = as_str(spec.get("externalTrafficPolicy"))
    if not externally_accessible(spec):
        if etp:
            errs.append(invalid("spec.externalTrafficPolicy", etp,
                                "may only be set for externally-accessible services"))
    elif not etp:
        errs.append(required("spec.externalTrafficPolicy"))
    elif etp not in ("Cluster", "Local"):
        errs.append(not_supported("spec.externalTrafficPolicy", etp, ["Cluster", "Local"]))
    hc = spec.get("healthCheckNodePort")
    needs_hc = stype == "LoadBalancer" and etp == "Local"
    if not needs_hc and hc not in (None, 0):
        errs.append(invalid("spec.healthCheckNodePort", hc, "may only be set when `type` is "
                            "'LoadBalancer' and `externalTrafficPolicy` is 'Local'"))
    elif needs_hc and hc not in (None, 0):
        errs.extend(validate_port_num(hc, "spec.healthCheckNodePort"))
    itp = spec.get("internalTrafficPolicy")
    if itp is None:
        if stype in ("NodePort", "LoadBalancer", "ClusterIP"):
            errs.append(required("spec.internalTrafficPolicy"))
    elif itp not in ("Cluster", "Local"):
        errs.append(not_supported("spec.internalTrafficPolicy", itp, ["Cluster", "Local"]))
    td = spec.get("trafficDistribution")
    if td is not None and td != "PreferClose":
        errs.append(not_supported("spec.trafficDistribution", td, ["PreferClose"]))
    return errs


def validate_service_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new, old)
    ns, os_ = as_dict(new.get("spec")), as_dict(old.get("spec"))
    errs.extend(_validate_cluster_ip_change(ns, os_))
    old_class, new_class = os_.get("loadBalancerClass"), ns.get("loadBalancerClass")
    if os_.get("type") == "LoadBalancer" and ns.get("type") == "LoadBalancer" and \
            old_class != new_class:
        errs.append(invalid("spec.loadBalancerClass", new_class, "may not change once set"))
    errs.extend(validate_service(new))
    return errs


def _validate_cluster_ip_change(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    """validateUpgradeDowngradeClusterIPs. An update that leaves clusterIP(s) out keeps the
    allocated ones (the registry copies them back, as kube-apiserver's patchAllocatedValues)."""
    if new.get("type") == "ExternalName" or old.get("type") == "ExternalName":
        return []
    if is_headless(new) and is_headless(old):
        return []
    new_ips, old_ips = cluster_ips(new), cluster_ips(old)
    if not new_ips:
        return []
    path = "spec.clusterIPs"
    shown = go_strings(new_ips)
    errs: list[FieldError] = []
    if len(old_ips) == len(new_ips):
        for i, value in enumerate(old_ips):
            if value != new_ips[i]:
                errs.append(invalid(index(path, i), shown, "may not change once set"))
    elif len(old_ips) > len(new_ips):
        if new_ips[0] != old_ips[0]:
            errs.append(invalid(index(path, 0), shown, "may not change once set"))
        if len(new_ips) == 1 and new.get("ipFamilyPolicy") != "SingleStack":
            errs.append(invalid(index(path, 0), shown, "`ipFamilyPolicy` must be set to "
                                "'SingleStack' when releasing the secondary clusterIP"))
    elif old_ips and new_ips[0] != old_ips[0]:
        errs.append(invalid(index(path, 0), shown, "may not change once set"))
    return errs


def validate_service_status_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new, old)
    lb = as_dict(as_dict(new.get("status")).get("loadBalancer"))
    for i, ing in enumerate(as_list(lb.get("ingress"))):
        p, ing = index("status.loadBalancer.ingress", i), as_dict(ing)
        ip = as_str(ing.get("ip"))
        if ip:
            errs.extend(validate_ip(ip, child(p, "ip")))
        host = as_str(ing.get("hostname"))
        if host:
            errs.extend(validate_dns1123_subdomain(host, child(p, "hostname")))
            if parse_ip(host) is not None:
                errs.append(invalid(child(p, "hostname"), host, "must be a DNS name, not an IP "
                                                                "address"))
        mode = ing.get("ipMode")
        if mode is not None and mode not in ("Proxy", "VIP"):
            errs.append(not_supported(child(p, "ipMode"), mode, ["Proxy", "VIP"]))
    return errs


# --- Endpoints ---------------------------------------------------------------------------

def _validate_endpoint_address(addr: dict[str, Any], path: str) -> list[FieldError]:
    ip = as_str(addr.get("ip"))
    errs = validate_ip(ip, child(path, "ip"))
    host = as_str(addr.get("hostname"))
    if host:
        errs.extend(validate_dns1123_label(host, child(path, "hostname")))
    node = addr.get("nodeName")
    if node is not None:
        errs.extend(invalid(child(path, "nodeName"), node, m)
                    for m in name_is_dns_subdomain(as_str(node), False))
    errs.extend(validate_non_special_ip(ip, child(path, "ip")))
    return errs


@functools.lru_cache(maxsize=65536)
def _address_ok(ip: str, host: str, node: str | None) -> bool:
    # Cached: the Endpoints of a 1,000-pod Service re-validate the same 1,000 addresses
    # on every readiness change; the answer depends on these three strings only.
    addr: dict[str, Any] = {"ip": ip, "hostname": host}
    if node is not None:
        addr["nodeName"] = node
    return not _validate_endpoint_address(addr, "")


def _address_valid(addr: dict[str, Any]) -> bool:
    node = addr.get("nodeName")
    return (node is None or isinstance(node, str)) and \
        _address_ok(as_str(addr.get("ip")), as_str(addr.get("hostname")), node)


def validate_endpoints(obj: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(obj, True, name_is_dns_subdomain)
    for i, subset in enumerate(as_list(obj.get("subsets"))):
        p, subset = index("subsets", i), as_dict(subset)
        addrs = as_list(subset.get("addresses"))
        not_ready = as_list(subset.get("notReadyAddresses"))
        if not addrs and not not_ready:
            errs.append(required(p, "must specify `addresses` or `notReadyAddresses`"))
        for field, listed in (("addresses", addrs), ("notReadyAddresses", not_ready)):
            for j, a in enumerate(listed):
                a = as_dict(a)
                if not _address_valid(a):   # the field path is built only for errors
                    errs.extend(_validate_endpoint_address(a, index(child(p, field), j)))
        ports = as_list(subset.get("ports"))
        for j, port in enumerate(ports):
            pp, port = index(child(p, "ports"), j), as_dict(port)
            name = as_str(port.get("name"))
            if len(ports) > 1 and not name:
                errs.append(required(child(pp, "name")))
            elif name:
                errs.extend(validate_dns1123_label(name, child(pp, "name")))
            errs.extend(validate_port_num(port.get("port"), child(pp, "port")))
            errs.extend(validate_protocol(port.get("protocol"), child(pp, "protocol")))
            if port.get("appProtocol") is not None:
                errs.extend(validate_qualified_name(as_str(port.get("appProtocol")),
                                                    child(pp, "appProtocol")))
    return errs


def validate_endpoints_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    return validate_object_meta_update(new, old) + [
        e for e in validate_endpoints(new) if not e.field.startswith("metadata.")]
