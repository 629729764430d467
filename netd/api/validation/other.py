"""EndpointSlice (discovery.k8s.io/v1), Lease (coordination.k8s.io/v1), Scale (autoscaling/v1)."""
from __future__ import annotations

from typing import Any

from netd.api.errors import (FieldError, duplicate, forbidden, invalid, not_supported, required,
                             too_many)
from netd.api.validation.common import (as_dict, as_int, as_list, as_str, child, index,
                                        is_dns1123_subdomain, name_is_dns_subdomain,
                                        validate_dns1123_label, validate_qualified_name)
from netd.api.validation.meta import (validate_labels, validate_object_meta,
                                      validate_object_meta_update)
from netd.api.validation.net import (SUPPORTED_PROTOCOLS, parse_ip, validate_non_special_ip,
                                     validate_port_num)

ADDRESS_TYPES = ["FQDN", "IPv4", "IPv6"]
_MAX_ENDPOINTS, _MAX_ADDRESSES, _MAX_PORTS, _MAX_TOPOLOGY_LABELS = 1000, 100, 20000, 16


def _validate_address(address: str, address_type: str, path: str) -> list[FieldError]:
    if address_type in ("IPv4", "IPv6"):
        ip = parse_ip(address)
        if ip is None or (address_type == "IPv4") != (ip.version == 4):
            return [invalid(path, address, f"must be a valid {address_type} address")]
        return validate_non_special_ip(address, path)
    if address_type == "FQDN":
        name = address[:-1] if address.endswith(".") else address
        if "." not in name:
            return [invalid(path, address, "should be a domain with at least two segments "
                                           "separated by dots")]
        return [invalid(path, address, m) for m in is_dns1123_subdomain(name.lower())]
    return []


def validate_endpoint_slice(obj: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(obj, True, name_is_dns_subdomain)
    address_type = as_str(obj.get("addressType"))
    if not address_type:
        errs.append(required("addressType"))
    elif address_type not in ADDRESS_TYPES:
        errs.append(not_supported("addressType", address_type, ADDRESS_TYPES))
    endpoints = as_list(obj.get("endpoints"))
    if len(endpoints) > _MAX_ENDPOINTS:
        errs.append(too_many("endpoints", len(endpoints), _MAX_ENDPOINTS))
        endpoints = []
    for i, ep in enumerate(endpoints):
        p, ep = index("endpoints", i), as_dict(ep)
        apath = child(p, "addresses")
        addresses = as_list(ep.get("addresses"))
        if not addresses:
            errs.append(required(apath, "must contain at least 1 address"))
        elif len(addresses) > _MAX_ADDRESSES:
            errs.append(too_many(apath, len(addresses), _MAX_ADDRESSES))
        for j, address in enumerate(addresses):
            errs.extend(_validate_address(as_str(address), address_type, index(apath, j)))
        if ep.get("nodeName") is not None:
            node = as_str(ep.get("nodeName"))
            errs.extend(invalid(child(p, "nodeName"), node, m) for m in is_dns1123_subdomain(node))
        topology = ep.get("deprecatedTopology")
        if len(as_dict(topology)) > _MAX_TOPOLOGY_LABELS:
            errs.append(too_many(child(p, "deprecatedTopology"), len(as_dict(topology)),
                                 _MAX_TOPOLOGY_LABELS))
        errs.extend(validate_labels(topology, child(p, "deprecatedTopology")))
        if ep.get("hostname") is not None:
            errs.extend(validate_dns1123_label(as_str(ep.get("hostname")), child(p, "hostname")))
        zone = ep.get("zone")
        if zone is not None and as_str(zone):
            errs.extend(validate_labels({"topology.kubernetes.io/zone": as_str(zone)},
                                        child(p, "zone")))
    ports = as_list(obj.get("ports"))
    if len(ports) > _MAX_PORTS:
        errs.append(too_many("ports", len(ports), _MAX_PORTS))
        ports = []
    names: set[str] = set()
    for i, port in enumerate(ports):
        p, port = index("ports", i), as_dict(port)
        name = as_str(port.get("name"))
        if name:
            errs.extend(validate_dns1123_label(name, child(p, "name")))
        if name in names:
            errs.append(duplicate(child(p, "name"), name))
        names.add(name)
        protocol = port.get("protocol")
        if protocol is None:
            errs.append(required(child(p, "protocol")))
        elif protocol not in SUPPORTED_PROTOCOLS:
            errs.append(not_supported(child(p, "protocol"), protocol, SUPPORTED_PROTOCOLS))
        if port.get("port") is not None:
            errs.extend(validate_port_num(port.get("port"), child(p, "port")))
        if port.get("appProtocol") is not None:
            errs.extend(validate_qualified_name(as_str(port.get("appProtocol")),
                                                child(p, "appProtocol")))
    return errs


def validate_endpoint_slice_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new, old)
    errs.extend(e for e in validate_endpoint_slice(new) if not e.field.startswith("metadata."))
    if new.get("addressType") != old.get("addressType"):
        errs.append(invalid("addressType", as_str(new.get("addressType")), "field is immutable"))
    return errs


def validate_lease(obj: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(obj, True, name_is_dns_subdomain)
    spec = as_dict(obj.get("spec"))
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and (as_int(duration) is None or duration <= 0):
        errs.append(invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = spec.get("leaseTransitions")
    if transitions is not None and (as_int(transitions) is None or transitions < 0):
        errs.append(invalid("spec.leaseTransitions", transitions,
                            "must be greater than or equal to 0"))
    strategy = spec.get("strategy")
    if strategy is not None and as_str(strategy):
        errs.extend(validate_qualified_name(as_str(strategy), "spec.strategy"))
    if as_str(spec.get("preferredHolder")) and not as_str(strategy):
        errs.append(forbidden("spec.preferredHolder", "may only be specified if `strategy` is "
                                                      "defined"))
    return errs


def validate_lease_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    return validate_object_meta_update(new, old) + [
        e for e in validate_lease(new) if not e.field.startswith("metadata.")]


def validate_scale(obj: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(obj, True, name_is_dns_subdomain)
    replicas = as_dict(obj.get("spec")).get("replicas")
    if replicas is not None and (as_int(replicas) is None or replicas < 0):
        errs.append(invalid("spec.replicas", replicas, "must be greater than or equal to 0"))
    return errs

