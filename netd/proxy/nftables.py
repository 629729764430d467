"""nftables rules for one node, as text for ONE `nft -f -` transaction. Pure.

The layout follows kube-proxy's nftables backend (pkg/proxy/nftables/proxier.go,
KEP-3866), in a table `ip netd` of its own inside each node namespace (in host mode
`ip netd-<cluster>` in the host), so nothing else's rules are touched:

- dispatch by verdict maps keyed on `ipv4_addr . inet_proto . inet_service`
  (ClusterIPs, externalIPs) and `inet_proto . inet_service` on the node's addresses
  (NodePorts): a packet's cost does not grow with the number of services;
- per service port a chain `service-…` (all usable endpoints) and where a traffic
  policy is Local a chain `local-…` (this node's endpoints) ending in ONE DNAT rule:
  `dnat ip to numgen random mod N offset K map @endpoints-B`. Every service port owns
  a stable slot (key range K…) in one of a few shared maps `endpoints-B` (128 ports a
  map). This departs from kube-proxy's per-endpoint chains behind an anonymous
  `numgen … vmap`: the kernel looks sets up by name in a list and re-validates the
  jump graph, so 10,000 anonymous vmaps (or 10,000 named maps, or one map bound by
  10,000 rules: each element add walks every binding) make a sync quadratic;
- ClientIP affinity (rare) keeps kube-proxy's layout: one timed set per endpoint,
  refreshed by each new connection (= the sliding window), checked before a `numgen
  random mod N vmap` to per-endpoint chains `endpoint-…` doing the DNAT;
- NodePorts and externalIPs enter through `external-…`;
- no usable endpoint: `no-endpoint-*` maps checked in filter hooks reject (TCP reset /
  ICMP port unreachable, so clients fail at once) — or drop where a Local policy has
  no local endpoint; ports a ClusterIP does not serve are rejected after DNAT;
- masquerade (mark 0x4000, as kube-proxy): hairpin (an endpoint reaching itself,
  seen after DNAT as source == destination, one `hairpin-ips` set instead of a rule per
  endpoint),
  sources outside the pod CIDR to a ClusterIP, every external (NodePort/externalIP)
  connection under policy Cluster; never pod → ClusterIP (its source IP is kept) and
  never under externalTrafficPolicy Local from outside.

A full sync (first, periodic, after a failure) re-declares every object and flushes
every chain and map, keeping the affinity sets' contents (clients stay stuck across a
resync). A partial sync touches only chains whose rules changed and map elements that
were added, removed or changed. Both are one transaction: packets see the old or the
new rules, never a mixture.
"""
from __future__ import annotations

import base64
import functools
import hashlib
from dataclasses import dataclass, field

from netd.proxy.model import (Endpoint, ServicePort, Snapshot, cluster_endpoints,
                              local_endpoints)

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


@dataclass
class RuleSet:
    """The desired (or last applied) state of the dynamic part of the table."""
    base: str = ""                                   # static part, rendered text
    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)
    elements: dict[str, dict[str, str]] = field(default_factory=dict)  # map/set -> key -> value
    affinity: dict[str, int] = field(default_factory=dict)             # set name -> timeout
    # service port (_base) -> its slot in the endpoint maps; kept from one sync to the
    # next so a change rewrites only that port's rule and elements.
    slots: dict[str, int] = field(default_factory=dict)
    # service port (_base) -> its fragment (identity tells a partial sync what changed)
    fragments: dict[str, "Fragment"] = field(default_factory=dict)
    # False when only names are known (read back from the kernel after a restart or a
    # failed sync): the next sync must be full and deletes what is not desired.
    complete: bool = True

    def counts(self) -> dict[str, int]:
        return {"chain": len(self.chains),
                "rule": sum(len(r) for r in self.chains.values()),
                "element": sum(len(e) for e in self.elements.values()),
                "set": len(self.affinity) + sum(1 for m in self.elements if m not in MAPS)}


# ---- names ----------------------------------------------------------------------------

def _hash(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:8]


def _base(sp: ServicePort) -> str:
    return f"{sp.namespace}/{sp.name}/{sp.protocol.lower()}/{sp.port_name}"


def _chain(prefix: str, base: str) -> str:
    # The hash keeps names unique; the readable tail is for humans (`nft list`).
    return f"{prefix}-{_hash(prefix + base)}-{base}"[:240]


def service_chain(sp: ServicePort) -> str:
    return _chain("service", _base(sp))


def local_chain(sp: ServicePort) -> str:
    return _chain("local", _base(sp))


def external_chain(sp: ServicePort) -> str:
    return _chain("external", _base(sp))


def endpoint_chain(sp: ServicePort, ep: Endpoint) -> str:
    return _chain("endpoint", f"{_base(sp)}__{ep.ip}/{ep.port}")


def endpoint_map(slot: int, proto: str) -> str:
    return f"endpoints-{proto}-{slot // PORTS_PER_MAP}"


def affinity_set(sp: ServicePort, ep: Endpoint) -> str:
    # The timeout is part of the name: a set's timeout cannot change in place, so a new
    # timeout makes a new set (the old one goes with the rules that used it).
    base = f"{_base(sp)}__{ep.ip}/{ep.port}"
    return f"affinity-{_hash(f'{base}@{sp.affinity_timeout}')}-{base}"[:240]


# ---- desired state ----------------------------------------------------------------------

@functools.lru_cache(maxsize=64)
def _base_text(node: NodeView, cfg: RenderConfig) -> str:
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
        "services": ["ip daddr . meta l4proto . th dport vmap @service-ips",
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


def _pick(rs: RuleSet, sp: ServicePort, eps: tuple[Endpoint, ...], key: int) -> list[str]:
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


Fragment = tuple[dict[str, tuple[str, ...]], dict[str, dict[str, str]], dict[str, int]]


@functools.lru_cache(maxsize=1 << 16)
def _fragment(sp: ServicePort, node: NodeView, cfg: RenderConfig, slot: int) -> Fragment:
    """One service port's chains, map elements and affinity sets. Cached: ServicePorts
    are immutable values, so a sync after one change re-renders only that port
    (hashing names and formatting rules is most of the cost of 10,000 services), and
    an unchanged port yields the very same object."""
    rs = RuleSet(elements={name: {} for name in MAPS})
    _service_port(rs, sp, node, cfg, slot)
    return rs.chains, {k: v for k, v in rs.elements.items() if v}, rs.affinity


def _service_port(rs: RuleSet, sp: ServicePort, node: NodeView, cfg: RenderConfig,
                  slot: int) -> None:
    proto = sp.protocol.lower()
    cluster = cluster_endpoints(sp)
    local = local_endpoints(sp, node.name)
    svc, loc, ext = service_chain(sp), local_chain(sp), external_chain(sp)
    ips, nps = rs.elements["service-ips"], rs.elements["service-nodeports"]
    no_ips, no_nps = rs.elements["no-endpoint-services"], rs.elements["no-endpoint-nodeports"]
    for ip in sp.cluster_ips:
        rs.elements["cluster-ips"][ip] = ""

    used: dict[str, Endpoint] = {}
    if cluster:
        masq = [f"ip daddr {ip} {proto} dport {sp.port} ip saddr != {cfg.pod_cidr} "
                f"jump mark-for-masquerade" for ip in sp.cluster_ips]
        rs.chains[svc] = tuple(masq + _pick(rs, sp, cluster, slot << SLOT_SHIFT))
        used.update((endpoint_chain(sp, e), e) for e in cluster)
    if local and (sp.internal_local or sp.external_local):
        rs.chains[loc] = tuple(_pick(rs, sp, local, (slot << SLOT_SHIFT) + LOCAL_OFFSET))
        used.update((endpoint_chain(sp, e), e) for e in local)
    hairpin = rs.elements["hairpin-ips"]
    for ep in used.values():
        hairpin[f"{ep.ip} . {ep.ip}"] = ""
    if not sp.affinity_timeout and max(len(cluster), len(local)) <= LOCAL_OFFSET:
        used = {}      # the DNAT is in the service chain itself: no endpoint chains

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

    for chain, ep in used.items():
        rules = []
        if sp.affinity_timeout:
            aff = affinity_set(sp, ep)
            rs.affinity[aff] = sp.affinity_timeout
            rules.append(f"update @{aff} {{ ip saddr }}")
        rules.append(f"meta l4proto {proto} dnat to {ep.ip}:{ep.port}")
        rs.chains[chain] = tuple(rules)


def _slots(ports: list[ServicePort], previous: dict[str, int]) -> dict[str, int]:
    """Each service port keeps its slot; new ports take the lowest free ones."""
    slots: dict[str, int] = {}
    for sp in ports:
        b = _base(sp)
        if b in previous:
            slots[b] = previous[b]
    taken = set(slots.values())
    free = (i for i in range(MAX_SLOTS) if i not in taken)
    for sp in ports:
        b = _base(sp)
        if b not in slots:
            slots[b] = next(free)
    return slots


def desired(snapshot: Snapshot, node: NodeView, cfg: RenderConfig,
            previous: RuleSet | None = None) -> RuleSet:
    """The rules for `snapshot`; `previous` (what was applied) lends its slots so
    unchanged service ports render exactly as before."""
    rs = RuleSet(base=_base_text(node, cfg), elements={name: {} for name in MAPS})
    for ip in node.node_ips:
        rs.elements["nodeport-ips"][ip] = ""
    # The DNS service is answered by the node-local DNS, never proxied.
    ports = [sp for sp in snapshot.ports if cfg.dns_ip not in sp.cluster_ips]
    rs.slots = _slots(ports, previous.slots if previous is not None else {})
    for sp in ports:
        b = _base(sp)
        frag = rs.fragments[b] = _fragment(sp, node, cfg, rs.slots[b])
        chains, elements, affinity = frag
        rs.chains.update(chains)
        for name, elems in elements.items():
            if name in rs.elements:
                rs.elements[name].update(elems)
            else:
                rs.elements[name] = dict(elems)
        rs.affinity.update(affinity)
    return rs


# ---- transaction text -------------------------------------------------------------------

def _elements(verb: str, t: str, name: str, items: list[str]) -> list[str]:
    out = []
    for i in range(0, len(items), 1000):   # keep single commands to a sane length
        out.append(f"{verb} element {t} {name} {{ {', '.join(items[i:i + 1000])} }}")
    return out


def _item(key: str, value: str) -> str:
    return f"{key} : {value}" if value else key


def _affinity_decl(t: str, name: str, timeout: int) -> str:
    return (f"add set {t} {name} {{ type ipv4_addr ; flags dynamic,timeout ; "
            f"timeout {timeout}s ; }}")


def _map_decl(t: str, name: str) -> str:
    proto = name.split("-")[1]
    return f"add map {t} {name} {{ {ENDPOINT_MAP_TYPE.format(proto=proto)} ; }}"


def _changed_names(new: RuleSet, old: RuleSet) -> tuple[list[str], dict[str, list[str]]]:
    """Chains and map keys a partial sync must look at: those of the service ports
    whose fragment changed (unchanged ports share the cached fragment object), plus
    the node's own elements. Values still come from the merged state, so a key shared
    by several ports (a ClusterIP of a multi-port service, a hairpin address) is
    compared as a whole."""
    chains: dict[str, None] = {}
    keys: dict[str, dict[str, None]] = {"nodeport-ips": {}}
    touched = [f for b, f in new.fragments.items() if old.fragments.get(b) is not f]
    touched += [f for b, f in old.fragments.items() if new.fragments.get(b) is not f]
    for frag_chains, frag_elements, _ in touched:
        chains.update(dict.fromkeys(frag_chains))
        for name, elems in frag_elements.items():
            keys.setdefault(name, {}).update(dict.fromkeys(elems))
    for name in ("nodeport-ips",):
        keys[name].update(dict.fromkeys(new.elements.get(name, {})))
        keys[name].update(dict.fromkeys(old.elements.get(name, {})))
    return list(chains), {name: list(k) for name, k in keys.items()}


def render_diff(new: RuleSet, previous: RuleSet | None, table: str = "netd",
                full: bool = False) -> str:
    """The transaction turning `previous` (what the kernel has) into `new`; a full
    rebuild when asked, when nothing (or only names) is known, or when the static part
    changed. Empty when nothing changed."""
    t = f"ip {table}"
    full = full or previous is None or not previous.complete or previous.base != new.base
    old = previous or RuleSet(complete=False)
    lines: list[str] = []
    new_maps = [m for m in new.elements if m not in MAPS and new.elements[m]]
    stale_maps = [m for m in old.elements if m not in MAPS and not new.elements.get(m)]
    stale_sets = [s for s in old.affinity if s not in new.affinity]
    if full:
        stale_chains = [c for c in old.chains if c not in new.chains]
        lines.append(new.base)
        for chain in new.chains:
            lines.append(f"add chain {t} {chain}")
            if previous is None or chain in old.chains:
                # Flushing a chain just created costs the kernel as much as filling it:
                # only chains that may hold rules already (all of them when nothing
                # is known) are flushed.
                lines.append(f"flush chain {t} {chain}")
        for m in new_maps:
            lines.append(_map_decl(t, m))
            if previous is None or m in old.elements:
                lines.append(f"flush map {t} {m}")
        lines += [_affinity_decl(t, s, n) for s, n in new.affinity.items()]
        lines += [f"flush chain {t} {c}" for c in stale_chains]
        for chain, rules in new.chains.items():
            lines += [f"add rule {t} {chain} {r}" for r in rules]
        # Elements after the rules: an empty map is cheap to bind a rule to.
        for name, elems in new.elements.items():
            if elems:
                lines += _elements("add", t, name, [_item(k, v) for k, v in elems.items()])
    else:
        names, keys = _changed_names(new, old)
        stale_chains = [c for c in names if c in old.chains and c not in new.chains]
        added = [c for c in names if c in new.chains and c not in old.chains]
        changed = [c for c in names if c in new.chains and c in old.chains
                   and old.chains[c] != new.chains[c]]
        lines += [f"add chain {t} {c}" for c in added]
        lines += [_map_decl(t, m) for m in new_maps if not old.elements.get(m)]
        lines += [_affinity_decl(t, s, n) for s, n in new.affinity.items()
                  if s not in old.affinity]
        lines += [f"flush chain {t} {c}" for c in stale_chains + changed]
        for chain in added + changed:
            lines += [f"add rule {t} {chain} {r}" for r in new.chains[chain]]
        for name, candidates in keys.items():
            if name in stale_maps:
                continue        # deleted whole below
            elems, before = new.elements.get(name, {}), old.elements.get(name, {})
            gone = [k for k in candidates if k in before and elems.get(k) != before[k]]
            come = [_item(k, elems[k]) for k in candidates
                    if k in elems and before.get(k) != elems[k]]
            if gone:
                lines += _elements("delete", t, name, gone)
            if come:
                lines += _elements("add", t, name, come)
    # Last: nothing refers to them any more (their referrers were flushed or rewritten
    # above, in this same transaction).
    lines += [f"delete chain {t} {c}" for c in stale_chains]
    lines += [f"delete set {t} {s}" for s in stale_sets]
    lines += [f"delete map {t} {m}" for m in stale_maps]
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def render(snapshot: Snapshot, node: NodeView, cfg: RenderConfig,
           previous: RuleSet | None, full: bool = False) -> str:
    return render_diff(desired(snapshot, node, cfg, previous), previous, cfg.table, full)


def parse_names(listing: str) -> RuleSet:
    """Chain and set names from `nft -t list table` (terse) output: what a full sync
    must delete when netd does not know what it applied last (restart, failure)."""
    rs = RuleSet(complete=False)
    for line in listing.splitlines():
        words = line.split()
        if len(words) >= 2 and words[-1] == "{" and words[0] in ("chain", "set", "map"):
            name = words[1]
            if words[0] == "chain" and _dynamic(name, "service", "local", "external",
                                                "endpoint"):
                rs.chains[name] = ()
            elif words[0] == "set" and _dynamic(name, "affinity"):
                rs.affinity[name] = 0
            elif words[0] == "map" and _endpoint_map(name):
                rs.elements[name] = {}
    return rs


def _endpoint_map(name: str) -> bool:
    words = name.split("-")
    return (len(words) == 3 and words[0] == "endpoints" and words[1] in ("tcp", "udp", "sctp")
            and words[2].isdigit())


def _dynamic(name: str, *prefixes: str) -> bool:
    # prefix-<8 base32>-…: never a static chain such as service-endpoints-check
    head, _, rest = name.partition("-")
    h = rest[:9]
    return head in prefixes and len(h) == 9 and h[8] == "-" and all(
        c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" for c in h[:8])


def delete_table(table: str = "netd") -> str:
    return f"delete table ip {table}\n"
