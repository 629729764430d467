"""The records one Service (with its EndpointSlices) contributes to the zone.

A fragment depends only on that Service, its slices and the zone's settings, so the
index keeps fragments between builds and rebuilds only the Services whose objects
changed: a change costs a merge of dicts, not a re-derivation of the whole cluster.

Which names exist follows CoreDNS's kubernetes plugin (kubernetes.go findServices,
reverse.go, object/endpoint.go EndpointSliceToEndpoints) where the Kubernetes DNS
specification (schema 1.1.0) is silent.
"""
from __future__ import annotations

import ipaddress
from typing import Any

Obj = dict[str, Any]
Srv = tuple[int, str, str]   # (port, target relative to the zone, target address)

SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def dashed(ip: str) -> str:
    """CoreDNS endpointHostname() for endpoints without a hostname: 10-244-1-5, and for
    IPv6 colons become dashes with a trailing "-" padded to "-0" (fd00:: → fd00--0)."""
    if "." in ip:
        return ip.replace(".", "-")
    out = ip.replace(":", "-")
    return out + "0" if out.endswith("-") else out


def reverse_name(ip: str) -> str:
    if ":" not in ip:
        a, b, c, d = ip.split(".")
        return f"{d}.{c}.{b}.{a}.in-addr.arpa"
    return ipaddress.IPv6Address(ip).reverse_pointer


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def cluster_ips(spec: Obj) -> list[str]:
    ips = spec.get("clusterIPs")
    if ips:
        return list(ips)
    ip = spec.get("clusterIP")
    return [ip] if ip else []


def _ready(ep: Obj) -> bool:
    # CoreDNS endpointsliceReady: a nil condition counts as ready (EndpointSlice API:
    # "nil should be interpreted as true").
    return (ep.get("conditions") or {}).get("ready") is not False


def reverse_ents(names: list[str], apexes: frozenset[str]) -> set[str]:
    """Empty non-terminals between reverse names and the reverse apex they fall in
    (`1.244.10.in-addr.arpa` for a PTR at `5.1.244.10.in-addr.arpa`); none for names
    outside netd's reverse zones."""
    out: set[str] = set()
    for name in names:
        chain: list[str] = []
        pos = name.find(".") + 1
        while pos > 0:
            anc = name[pos:]
            if anc in apexes:
                out.update(chain)
                break
            if anc in out or anc in ("in-addr.arpa", "ip6.arpa"):
                break
            chain.append(anc)
            pos = name.find(".", pos) + 1
    return out


class Fragment:
    """Records of one Service. `objs` holds the objects it was built from; the index
    reuses the fragment while the very same (never mutated) objects come back."""
    __slots__ = ("objs", "addrs", "srvs", "cname", "cluster_ptrs", "endpoint_ptrs",
                 "ents", "endpoints")

    def __init__(self, objs: tuple[Obj, ...]) -> None:
        self.objs = objs
        self.addrs: dict[str, list[str]] = {}
        self.srvs: dict[str, list[Srv]] = {}
        self.cname: tuple[str, str] | None = None
        self.cluster_ptrs: list[tuple[str, str]] = []    # (reverse name, target)
        self.endpoint_ptrs: list[tuple[str, str]] = []
        self.ents: set[str] = set()
        self.endpoints = 0

    def same_objects(self, objs: tuple[Obj, ...]) -> bool:
        mine = self.objs
        return len(mine) == len(objs) and all(a is b for a, b in zip(mine, objs))


def build_fragment(svc: Obj, slices: list[Obj], domain: str,
                   apexes: frozenset[str]) -> Fragment:
    frag = Fragment((svc, *slices))
    meta = svc.get("metadata") or {}
    ns = (meta.get("namespace") or "").lower()
    name = (meta.get("name") or "").lower()
    spec = svc.get("spec") or {}
    base = f"{name}.{ns}"
    owner = f"{base}.svc.{domain}"
    if spec.get("type") == "ExternalName":
        target = (spec.get("externalName") or "").rstrip(".")
        # CoreDNS answers an ExternalName only when its target is a name (HostType
        # CNAME; an IP-shaped externalName gives no record, hence NXDOMAIN) and never
        # under port or endpoint names.
        if target and not is_ip(target):
            frag.cname = (owner, target)
        return frag
    ips = cluster_ips(spec)
    headless = bool(ips) and ips[0] == "None"
    if ips and not headless:
        _cluster_ip(frag, spec, ips, base, owner)
    if ips:  # a Service still waiting for its cluster IP has no names yet
        publish = bool(spec.get("publishNotReadyAddresses"))
        for sl in slices:
            if sl.get("addressType") != "FQDN":
                _slice(frag, sl, headless, publish, base, owner, domain)
    # Port names no ready endpoint backs do not exist. In particular a headless service
    # with no ready endpoint matches nothing in findServices, so errNoItems stands:
    # NXDOMAIN for it and every name below it.
    for key in [k for k, v in frag.addrs.items() if not v]:
        del frag.addrs[key]
        frag.srvs.pop(key, None)
    if headless and owner not in frag.addrs:
        frag.ents = {e for e in frag.ents if not e.endswith("." + owner)}
    if frag.endpoint_ptrs or frag.cluster_ptrs:
        frag.ents.update(reverse_ents([r for r, _ in frag.cluster_ptrs] +
                                      [r for r, _ in frag.endpoint_ptrs], apexes))
    return frag


def _cluster_ip(frag: Fragment, spec: Obj, ips: list[str], base: str, owner: str) -> None:
    ports = spec.get("ports") or []
    if not ports:
        # findServices emits records per port: a ClusterIP Service without ports has
        # none (NXDOMAIN), however odd.
        return
    frag.addrs[owner] = ips
    for ip in ips:
        frag.cluster_ptrs.append((reverse_name(ip), f"{owner}."))
    prefix = base + ".svc"
    srv: list[Srv] = []
    for p in ports:
        port = p.get("port")
        if not isinstance(port, int):
            continue
        entries = [(port, prefix, ip) for ip in ips]
        srv.extend(entries)
        pname = (p.get("name") or "").lower()
        if pname:
            proto = (p.get("protocol") or "TCP").lower()
            # `_<port>._<proto>.<svc>` answers A/AAAA too: CoreDNS Records() matches
            # port and protocol whatever the query type.
            powner = f"_{pname}._{proto}.{owner}"
            frag.addrs[powner] = ips
            frag.srvs.setdefault(powner, []).extend(entries)
            frag.ents.add(f"_{proto}.{owner}")
    frag.srvs[owner] = srv


def _slice(frag: Fragment, sl: Obj, headless: bool, publish: bool, base: str, owner: str,
           domain: str) -> None:
    # object/endpoint.go: a slice without ports gets one sentinel port -1, so its
    # endpoints still have A records and count in SRV weights, but give no SRV.
    ports: list[int] = []
    labels: list[tuple[int, str]] = []
    for p in sl.get("ports") or [{}]:
        port = p.get("port")
        port = port if isinstance(port, int) else -1
        ports.append(port)
        pname = (p.get("name") or "").lower()
        if pname:
            labels.append((port, f"_{pname}._{(p.get('protocol') or 'TCP').lower()}"))
    tail = f".{base}.svc"
    dot_dom = "." + domain
    ptr_tail = f"{tail}.{domain}."
    addrs, srvs, ptrs = frag.addrs, frag.srvs, frag.endpoint_ptrs
    svc_addrs: list[str] = []
    svc_srv: list[Srv] = []
    by_label: list[tuple[int, list[str], list[Srv]]] = []
    if headless:
        svc_addrs = addrs.setdefault(owner, [])
        svc_srv = srvs.setdefault(owner, [])
        for port, label in labels:
            lowner = f"{label}.{owner}"
            by_label.append((port, addrs.setdefault(lowner, []), srvs.setdefault(lowner, [])))
            frag.ents.add(label[label.index(".") + 1:] + "." + owner)
    for ep in sl.get("endpoints") or ():
        if not publish and not _ready(ep):
            continue
        hostname = ep.get("hostname")
        for ip in ep.get("addresses") or ():
            frag.endpoints += 1
            host = hostname.lower() if hostname else dashed(ip)
            target = host + tail
            hname = target + dot_dom
            entries = [(port, target, ip) for port in ports]
            lst = addrs.get(hname)
            if lst is None:
                addrs[hname] = [ip]
                srvs[hname] = entries
            else:
                lst.append(ip)
                srvs[hname].extend(entries)
            if headless:
                svc_addrs.append(ip)
                svc_srv.extend(entries)
                for port, laddrs, lsrv in by_label:
                    laddrs.append(ip)
                    lsrv.append((port, target, ip))
            ptrs.append((reverse_name(ip), host + ptr_tail))
