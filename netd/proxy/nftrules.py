"""One service port's nftables objects (its "fragment") and the table's static part,
for nftables.py. Pure. The layout and why: see nftables.py's docstring.
"""
from __future__ import annotations

import base64
import functools
import hashlib
from dataclasses import dataclass

from netd.proxy.model import (Endpoint, ServicePort, cluster_endpoints, local_endpoints)

MAPS = {
    # name: (type, comment)
    "service-ips": ("ipv4_addr . inet_proto . inet_service : verdict",
                    "ClusterIP and externalIP dispatch"),
    "service-nodeports": ("inet_proto . inet_service : verdict", "NodePort dispatch"),
    "no-endpoint-services": ("ipv4_addr . inet_proto . inet_service : verdict",
                             "ClusterIP and externalIP ports without usable endpoints"),
    "no-endpoint-nodeports": ("inet_proto . inet_service : verdict",
                              "NodePorts without usable endpoints"),
    "cluster-ips": ("ipv4_addr", "every proxied ClusterIP"),
    "nodeport-ips": ("ipv4_addr", "addresses NodePorts answer on"),
    "hairpin-ips": ("ipv4_addr . ipv4_addr", "endpoint . itself: hairpin masquerade"),
}
REJECT = "goto reject-chain"
# Endpoint maps: slot s owns keys s << SLOT_SHIFT …; the local pick starts LOCAL_OFFSET
# above the cluster pick. PORTS_PER_MAP bounds the rules bound to one map (each element
# added walks the map's bindings) while keeping the number of sets small (each set
# reference is a linear lookup by name in the kernel).
SLOT_SHIFT = 16
LOCAL_OFFSET = 1 << 15
MAX_SLOTS = 1 << 16
PORTS_PER_MAP = 128
# One map per protocol: nft 1.0.x cannot add a rule matching `meta l4proto tcp` that
# uses a map read back from the kernel whose data is typed `th dport`.
ENDPOINT_MAP_TYPE = "typeof numgen random mod 1 : ip daddr . {proto} dport"
PICK_MAP_TYPE = ("typeof ip daddr . {proto} dport . numgen random mod 1 : "
                 "ip daddr . {proto} dport")


@dataclass(frozen=True)
class NodeView:
    """What a node's rules depend on besides the snapshot."""
    name: str
    node_ips: tuple[str, ...]        # addresses NodePorts answer on


@dataclass(frozen=True)
class RenderConfig:
    pod_cidr: str
    service_cidr: str
    dns_ip: str
    table: str = "netd"
    masquerade_mark: int = 0x4000


Fragment = tuple[dict[str, tuple[str, ...]], dict[str, dict[str, str]], dict[str, int]]


@dataclass
class _Scratch:
    """What _service_port fills in: chains, elements, affinity sets."""
    chains: dict[str, tuple[str, ...]]
    elements: dict[str, dict[str, str]]
    affinity: dict[str, int]


# ---- names ----------------------------------------------------------------------------

def _hash(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:8]


def port_base(sp: ServicePort) -> str:
    return f"{sp.namespace}/{sp.name}/{sp.protocol.lower()}/{sp.port_name}"


def _chain(prefix: str, base: str) -> str:
    # The hash keeps names unique; the readable tail is for humans (`nft list`).
    return f"{prefix}-{_hash(prefix + base)}-{base}"[:240]


def service_chain(sp: ServicePort) -> str:
    return _chain("service", port_base(sp))


def local_chain(sp: ServicePort) -> str:
    return _chain("local", port_base(sp))


def external_chain(sp: ServicePort) -> str:
    return _chain("external", port_base(sp))


def endpoint_chain(sp: ServicePort, ep: Endpoint) -> str:
    return _chain("endpoint", f"{port_base(sp)}__{ep.ip}/{ep.port}")


def endpoint_map(slot: int, proto: str) -> str:
    return f"endpoints-{proto}-{slot // PORTS_PER_MAP}"


def pick_chain(proto: str, count: int) -> str:
    """The chain (and the map of the same name) shared by every ClusterIP-only port
    of `proto` with `count` endpoints."""
    return f"pick-{proto}-{count}"


def shared_pick(sp: ServicePort) -> bool:
    """ClusterIP-only ports without affinity (nearly all of them) have no chain of
    their own: service-ips sends them to the shared pick chain for their endpoint
    count, whose one rule looks the endpoint up by (ClusterIP, port, random index).
    A partial sync for them changes map elements only, and nft's cache, which it
    re-reads for every transaction and which holds every chain, stays small."""
    return not sp.node_port and not sp.external_ips and not sp.affinity_timeout


def needs_slot(sp: ServicePort) -> bool:
    return not shared_pick(sp)


def map_decl(t: str, name: str) -> str:
    """Declaration of a dynamic map (endpoints-<proto>-<n> or pick-<proto>-<count>)."""
    kind, proto = name.split("-")[:2]
    typ = (PICK_MAP_TYPE if kind == "pick" else ENDPOINT_MAP_TYPE).format(proto=proto)
    return f"add map {t} {name} {{ {typ} ; }}"


def affinity_set(sp: ServicePort, ep: Endpoint) -> str:
    # The timeout is part of the name: a set's timeout cannot change in place, so a new
    # timeout makes a new set (the old one goes with the rules that used it).
    base = f"{port_base(sp)}__{ep.ip}/{ep.port}"
    return f"affinity-{_hash(f'{base}@{sp.affinity_timeout}')}-{base}"[:240]


# ---- desired state ----------------------------------------------------------------------

@functools.lru_cache(maxsize=64)
def base_text(node: NodeView, cfg: RenderConfig) -> str:
    t = f"ip {cfg.table}"
    mark = f"0x{cfg.masquerade_mark:x}"
    hooks = {
        # chain: (type, hook, priority) — priorities as kube-proxy's: the endpoint checks
        # run before DNAT (-110), the ClusterIP port check after it (-90 on output).
        "filter-input": ("filter", "input", -110),
        "filter-forward": ("filter", "forward", -110),
        "filter-output": ("filter", "output", -110),
        "filter-output-post-dnat": ("filter", "output", -90),
        "nat-prerouting": ("nat", "prerouting", -100),
        "nat-output": ("nat", "output", -100),
        "nat-postrouting": ("nat", "postrouting", 100),
    }
    rules: dict[str, list[str]] = {
        "filter-input": ["ct state new jump nodeport-endpoints-check",
                         "ct state new jump service-endpoints-check"],
        "filter-forward": ["ct state new jump service-endpoints-check",
                           "ct state new jump cluster-ips-check"],
        "filter-output": ["ct state new jump service-endpoints-check"],
        "filter-output-post-dnat": ["ct state new jump cluster-ips-check"],
        "nat-prerouting": ["jump services"],
        "nat-output": ["jump services"],
        "nat-postrouting": ["jump masquerading"],
        # Sources outside the pod CIDR to a ClusterIP are masqueraded (kube-proxy puts
        # this rule in every service chain; one rule here, before the dispatch, marks
        # the same packets: a ClusterIP port that is not served is rejected anyway).
        "services": [f"ip daddr @cluster-ips ip saddr != {cfg.pod_cidr} "
                     "jump mark-for-masquerade",
                     "ip daddr . meta l4proto . th dport vmap @service-ips",
                     "ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports"],
        "service-endpoints-check": [
            "ip daddr . meta l4proto . th dport vmap @no-endpoint-services"],
        "nodeport-endpoints-check": [
            "ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports"],
        "cluster-ips-check": [
            # Still addressed to a ClusterIP after DNAT: a port the service lacks.
            "ip daddr @cluster-ips reject",
            # An unallocated service IP would bounce node -> host -> node until its TTL
            # runs out; the DNS IP is answered locally and must pass.
            f"ip daddr != {cfg.dns_ip} ip daddr {cfg.service_cidr} drop"],
        "mark-for-masquerade": [f"meta mark set meta mark or {mark}"],
        "masquerading": ["ct status dnat ip saddr . ip daddr @hairpin-ips "
                         "jump mark-for-masquerade",
                         f"meta mark and {mark} == 0 return",
                         f"meta mark set meta mark xor {mark}",
                         "masquerade fully-random"],
        "reject-chain": ["meta l4proto tcp reject with tcp reset", "reject"],
    }
    lines = [f"add table {t} {{ comment \"netd service proxy, node {node.name}\" ; }}"]
    for name in rules:
        if name in hooks:
            typ, hook, prio = hooks[name]
            lines.append(f"add chain {t} {name} {{ type {typ} hook {hook} priority {prio} ; }}")
        else:
            lines.append(f"add chain {t} {name}")
        lines.append(f"flush chain {t} {name}")
    for name, (typ, comment) in MAPS.items():
        kind = "map" if ":" in typ else "set"
        lines.append(f"add {kind} {t} {name} {{ type {typ} ; comment \"{comment}\" ; }}")
        lines.append(f"flush {kind} {t} {name}")
    for name, body in rules.items():
        lines += [f"add rule {t} {name} {r}" for r in body]
    return "\n".join(lines) + "\n"


def _pick(rs: _Scratch, sp: ServicePort, eps: tuple[Endpoint, ...], key: int) -> list[str]:
    proto = sp.protocol.lower()
    if not sp.affinity_timeout and len(eps) <= LOCAL_OFFSET:
        if len(eps) == 1:
            return [f"meta l4proto {proto} dnat to {eps[0].ip}:{eps[0].port}"]
        slot = key >> SLOT_SHIFT
        rs.elements.setdefault(endpoint_map(slot, proto), {}).update(
            (str(key + i), f"{ep.ip} . {ep.port}") for i, ep in enumerate(eps))
        return [f"meta l4proto {proto} dnat ip to numgen random mod {len(eps)} offset {key} "
                f"map @{endpoint_map(slot, proto)}"]
    rules = []
    if sp.affinity_timeout:
        rules += [f"ip saddr @{affinity_set(sp, ep)} goto {endpoint_chain(sp, ep)}"
                  for ep in eps]
    if len(eps) == 1:
        # No random pick to make; an anonymous vmap costs the kernel a set object.
        rules.append(f"goto {endpoint_chain(sp, eps[0])}")
        return rules
    targets = ", ".join(f"{i} : goto {endpoint_chain(sp, ep)}" for i, ep in enumerate(eps))
    rules.append(f"numgen random mod {len(eps)} vmap {{ {targets} }}")
    return rules


@functools.lru_cache(maxsize=1 << 16)
def fragment(sp: ServicePort, node: NodeView, cfg: RenderConfig, slot: int) -> Fragment:
    """One service port's chains, map elements and affinity sets. Cached: ServicePorts
    are immutable values, so a sync after one change re-renders only that port
    (hashing names and formatting rules is most of the cost of 10,000 services), and
    an unchanged port yields the very same object."""
    rs = _Scratch({}, {name: {} for name in MAPS}, {})
    _service_port(rs, sp, node, cfg, slot)
    return rs.chains, {k: v for k, v in rs.elements.items() if v}, rs.affinity


def _service_port(rs: _Scratch, sp: ServicePort, node: NodeView, cfg: RenderConfig,
                  slot: int) -> None:
    proto = sp.protocol.lower()
    cluster = cluster_endpoints(sp)
    local = local_endpoints(sp, node.name)
    ips, nps = rs.elements["service-ips"], rs.elements["service-nodeports"]
    no_ips, no_nps = rs.elements["no-endpoint-services"], rs.elements["no-endpoint-nodeports"]
    for ip in sp.cluster_ips:
        rs.elements["cluster-ips"][ip] = ""
    hairpin = rs.elements["hairpin-ips"]
    if shared_pick(sp):
        _shared_pick(rs, sp, proto, cluster, local)
        return
    svc, loc, ext = service_chain(sp), local_chain(sp), external_chain(sp)

    direct = not sp.affinity_timeout and max(len(cluster), len(local)) <= LOCAL_OFFSET
    used: list[Endpoint] = []
    if cluster:
        rs.chains[svc] = tuple(_pick(rs, sp, cluster, slot << SLOT_SHIFT))
        used += cluster
    if local and (sp.internal_local or sp.external_local):
        rs.chains[loc] = tuple(_pick(rs, sp, local, (slot << SLOT_SHIFT) + LOCAL_OFFSET))
        used += local
    for ep in used:
        hairpin[f"{ep.ip} . {ep.ip}"] = ""
    # Without affinity the DNAT is in the service chain itself: no endpoint chains.
    chains = {} if direct else {endpoint_chain(sp, e): e for e in used}

    # ClusterIPs
    if sp.internal_local:
        internal = loc if local else None
    else:
        internal = svc if cluster else None
    for ip in sp.cluster_ips:
        key = f"{ip} . {proto} . {sp.port}"
        if internal:
            ips[key] = f"goto {internal}"
        else:
            no_ips[key] = REJECT if not cluster else "drop"

    # NodePorts and externalIPs
    if sp.node_port or sp.external_ips:
        if cluster:
            if sp.external_local:
                rules = [f"ip saddr {cfg.pod_cidr} goto {svc}",
                         "fib saddr type local jump mark-for-masquerade",
                         f"fib saddr type local goto {svc}",
                         f"goto {loc}" if local else "drop"]
            else:
                rules = ["jump mark-for-masquerade", f"goto {svc}"]
            rs.chains[ext] = tuple(rules)
        for ip in sp.external_ips:
            key = f"{ip} . {proto} . {sp.port}"
            if cluster:
                ips[key] = f"goto {ext}"
            else:
                no_ips[key] = REJECT
        if sp.node_port:
            key = f"{proto} . {sp.node_port}"
            if cluster:
                nps[key] = f"goto {ext}"
            else:
                no_nps[key] = REJECT

    for chain, ep in chains.items():
        rules = []
        if sp.affinity_timeout:
            aff = affinity_set(sp, ep)
            rs.affinity[aff] = sp.affinity_timeout
            rules.append(f"update @{aff} {{ ip saddr }}")
        rules.append(f"meta l4proto {proto} dnat to {ep.ip}:{ep.port}")
        rs.chains[chain] = tuple(rules)




def _shared_pick(rs: _Scratch, sp: ServicePort, proto: str, cluster: tuple[Endpoint, ...],
                 local: tuple[Endpoint, ...]) -> None:
    eps = local if sp.internal_local else cluster
    hairpin = rs.elements["hairpin-ips"]
    for ep in cluster + (local if sp.internal_local else ()):
        hairpin[f"{ep.ip} . {ep.ip}"] = ""
    if not eps:
        # No endpoint at all: reject; only remote ones under internalTrafficPolicy
        # Local: drop (kube-proxy).
        for ip in sp.cluster_ips:
            rs.elements["no-endpoint-services"][f"{ip} . {proto} . {sp.port}"] = (
                REJECT if not cluster else "drop")
        return
    chain = pick_chain(proto, len(eps))
    rs.chains[chain] = (f"meta l4proto {proto} dnat ip to ip daddr . {proto} dport . "
                        f"numgen random mod {len(eps)} map @{chain}",)
    picks = rs.elements.setdefault(chain, {})
    targets = [f"{ep.ip} . {ep.port}" for ep in eps]
    for ip in sp.cluster_ips:
        picks.update((f"{ip} . {sp.port} . {i}", t) for i, t in enumerate(targets))
        rs.elements["service-ips"][f"{ip} . {proto} . {sp.port}"] = f"goto {chain}"
