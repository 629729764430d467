"""Printers for the service-routing kinds: Service, Endpoints, EndpointSlice.

These are the tables netd users read to check what the proxy and DNS will do, so the
PORT(S) and ENDPOINTS strings follow kube-apiserver 1.32 to the character.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from netd.api.printers import descriptions as d
from netd.api.printers.common import (
    NONE, Column, Printer, age, age_column, as_dict, as_int, as_list, as_str, format_labels,
    get, join_host_port, list_with_more, name_column, name_of, wide,
)

# printers.go loadBalancerWidth: LB addresses are clipped unless printing wide. The
# apiserver always generates wide rows, so the clip never applies to served tables.
LOAD_BALANCER_WIDTH = 16

SERVICE_COLUMNS = (
    name_column(),
    Column("Type", "string", d.SVC_TYPE),
    Column("Cluster-IP", "string", d.SVC_CLUSTER_IP),
    Column("External-IP", "string", d.SVC_EXTERNAL_IPS),
    Column("Port(s)", "string", d.SVC_PORTS),
    age_column(),
    wide("Selector", d.SVC_SELECTOR),
)


def _lb_ingress(svc: dict[str, Any], wide_output: bool = True) -> str:
    """loadBalancerStatusStringer: sorted, de-duplicated IPs (else hostnames)."""
    found: set[str] = set()
    for ing in as_list(get(svc, "status", "loadBalancer", "ingress")):
        ing = as_dict(ing)
        value = as_str(ing.get("ip")) or as_str(ing.get("hostname"))
        if value:
            found.add(value)
    text = ",".join(sorted(found))
    if not wide_output and len(text) > LOAD_BALANCER_WIDTH:
        text = text[:LOAD_BALANCER_WIDTH - 3] + "..."
    return text


def service_type(svc: dict[str, Any]) -> str:
    # Defaulting makes type ClusterIP before storage; printing the default for an
    # undefaulted object keeps the row readable instead of "<unknown>".
    return as_str(get(svc, "spec", "type")) or "ClusterIP"


def external_ip(svc: dict[str, Any]) -> str:
    """getServiceExternalIP."""
    external = [ip for ip in as_list(get(svc, "spec", "externalIPs")) if isinstance(ip, str)]
    kind = service_type(svc)
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else NONE
    if kind == "LoadBalancer":
        lb = _lb_ingress(svc)
        if external:
            return ",".join((lb.split(",") if lb else []) + external)
        return lb or "<pending>"
    if kind == "ExternalName":
        return as_str(get(svc, "spec", "externalName"))
    return "<unknown>"


def port_string(ports: Any) -> str:
    """makePortString: 80/TCP, 80:30080/TCP joined by ","."""
    pieces = []
    for port in as_list(ports):
        port = as_dict(port)
        number = as_int(port.get("port"))
        proto = as_str(port.get("protocol")) or "TCP"
        node_port = as_int(port.get("nodePort"))
        pieces.append(f"{number}:{node_port}/{proto}" if node_port > 0 else f"{number}/{proto}")
    return ",".join(pieces)


def _cluster_ip(svc: dict[str, Any]) -> str:
    # The printer reads clusterIPs[0]; clusterIP is its mirror for single-stack objects
    # written before defaulting filled the plural field.
    ip = as_str(get(svc, "spec", "clusterIPs", 0)) or as_str(get(svc, "spec", "clusterIP"))
    return ip or NONE


def _service_cells(svc: dict[str, Any], now: datetime) -> list[Any]:
    return [name_of(svc), service_type(svc), _cluster_ip(svc), external_ip(svc),
            port_string(get(svc, "spec", "ports")) or NONE, age(svc, now),
            format_labels(get(svc, "spec", "selector"))]


ENDPOINTS_COLUMNS = (
    name_column(),
    Column("Endpoints", "string", d.EP_SUBSETS),
    age_column(),
)


def format_endpoints(endpoints: dict[str, Any], limit: int = 3) -> str:
    """formatEndpoints with ports=nil: ready addresses x ports, 3 shown, "+ N more..."."""
    subsets = as_list(endpoints.get("subsets"))
    if not subsets:
        return NONE
    shown: list[str] = []
    count = 0
    for subset in subsets:
        subset = as_dict(subset)
        addresses = [as_str(as_dict(a).get("ip")) for a in as_list(subset.get("addresses"))]
        ports = as_list(subset.get("ports"))
        if not ports:
            # Headless services may have no ports: list bare IPs.
            count += len(addresses)
            shown.extend(addresses[:max(0, limit - len(shown))])
            continue
        for port in ports:
            number = as_int(as_dict(port).get("port"))
            count += len(addresses)
            for ip in addresses:
                if len(shown) == limit:
                    break
                shown.append(join_host_port(ip, number))
    text = ",".join(shown)
    if count > limit:
        return f"{text} + {count - limit} more..."
    return text


def _endpoints_cells(ep: dict[str, Any], now: datetime) -> list[Any]:
    return [name_of(ep), format_endpoints(ep), age(ep, now)]


SLICE_COLUMNS = (
    name_column(),
    Column("AddressType", "string", d.EPS_ADDRESS_TYPE),
    Column("Ports", "string", d.EPS_PORTS),
    Column("Endpoints", "string", d.EPS_ENDPOINTS),
    age_column(),
)


def format_slice_ports(ports: Any) -> str:
    """formatDiscoveryPorts: port number, else its name, else "*" (all ports)."""
    items = []
    for port in as_list(ports):
        port = as_dict(port)
        if isinstance(port.get("port"), int):
            items.append(str(port["port"]))
        elif isinstance(port.get("name"), str):
            items.append(port["name"])
        else:
            items.append("*")
    return list_with_more(items, len(items))


def format_slice_endpoints(endpoints: Any) -> str:
    """formatDiscoveryEndpoints: every address of every endpoint, ready or not."""
    items = [addr for ep in as_list(endpoints)
             for addr in as_list(as_dict(ep).get("addresses")) if isinstance(addr, str)]
    return list_with_more(items, len(items))


def _slice_cells(eps: dict[str, Any], now: datetime) -> list[Any]:
    return [name_of(eps), as_str(eps.get("addressType")), format_slice_ports(eps.get("ports")),
            format_slice_endpoints(eps.get("endpoints")), age(eps, now)]


PRINTERS = {
    "Service": Printer(SERVICE_COLUMNS, _service_cells),
    "Endpoints": Printer(ENDPOINTS_COLUMNS, _endpoints_cells),
    "EndpointSlice": Printer(SLICE_COLUMNS, _slice_cells),
}
