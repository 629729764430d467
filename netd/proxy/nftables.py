"""nftables rules for one node, as text for ONE `nft -f -` transaction. Pure.

The layout follows kube-proxy's nftables backend (pkg/proxy/nftables/proxier.go,
KEP-3866), in a table `ip netd` of its own inside each node namespace (in host mode
`ip netd-<cluster>` in the host), so nothing else's rules are touched:

- dispatch by verdict maps keyed on `ipv4_addr . inet_proto . inet_service`
  (ClusterIPs, externalIPs) and `inet_proto . inet_service` on the node's addresses
  (NodePorts): a packet's cost does not grow with the number of services;
- a ClusterIP-only port without affinity (nearly every port) has no chain of its own:
  service-ips sends it to `pick-<proto>-<N>`, one chain per endpoint count N shared by
  every such port, whose one rule is `dnat ip to ip daddr . <proto> dport . numgen
  random mod N map @pick-<proto>-<N>` over a map keyed by (ClusterIP, port, index)
  (internalTrafficPolicy Local: this node's endpoints). An endpoint change is then only
  map elements, and the table keeps a handful of chains (nft re-reads every chain into
  its cache before each transaction: 10,000 chains made that most of a partial sync);
- other ports (NodePort, externalIPs, affinity) keep a chain `service-…` (all usable
  endpoints) and where a traffic policy is Local a chain `local-…` (this node's
  endpoints) ending in ONE DNAT rule:
  `dnat ip to numgen random mod N offset K map @endpoints-B`. Each of those owns
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
  sources outside the pod CIDR to a ClusterIP (one rule on @cluster-ips before the
  dispatch), every external (NodePort/externalIP)
  connection under policy Cluster; never pod → ClusterIP (its source IP is kept) and
  never under externalTrafficPolicy Local from outside.

A full sync (first, periodic, after a failure) re-declares every object and flushes
every chain and map, keeping the affinity sets' contents (clients stay stuck across a
resync). A partial sync touches only chains whose rules changed and map elements that
were added, removed or changed; nftdelta.py computes it from the service ports that
changed, patching the applied RuleSet in place. Both are one transaction: packets see
the old or the new rules, never a mixture.

Module map: nftrules.py renders one service port's objects (its fragment) and the
static part; this module merges fragments into a RuleSet and writes transactions.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from netd.proxy.model import ServicePort, Snapshot
from netd.proxy.nftrules import (LOCAL_OFFSET, MAPS, MAX_SLOTS, PORTS_PER_MAP, REJECT,
                                 SLOT_SHIFT, Fragment, NodeView, RenderConfig,
                                 affinity_set, base_text, endpoint_chain, endpoint_map,
                                 external_chain, fragment, local_chain, map_decl,
                                 needs_slot, pick_chain, port_base, service_chain,
                                 shared_pick)

__all__ = ["LOCAL_OFFSET", "MAPS", "PORTS_PER_MAP", "REJECT", "SLOT_SHIFT", "Change",
           "NodeView", "RenderConfig", "RuleSet", "affinity_set", "delete_table",
           "desired", "endpoint_chain", "endpoint_map", "external_chain", "local_chain",
           "parse_names", "partial_text", "pick_chain", "render", "render_diff",
           "service_chain", "shared_pick"]


@dataclass
class RuleSet:
    """The desired (or last applied) state of the dynamic part of the table."""
    base: str = ""                                   # static part, rendered text
    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)
    elements: dict[str, dict[str, str]] = field(default_factory=dict)  # map/set -> key -> value
    affinity: dict[str, int] = field(default_factory=dict)             # set name -> timeout
    # service port (port_base) -> its slot in the endpoint maps; kept from one sync to
    # the next so a change rewrites only that port's rule and elements.
    slots: dict[str, int] = field(default_factory=dict)
    # service port (port_base) -> its fragment and the ServicePort it was made from
    fragments: dict[str, Fragment] = field(default_factory=dict)
    ports: dict[str, ServicePort] = field(default_factory=dict)
    # id(ServicePort) -> port_base for the ports above (they are kept alive there):
    # a sync finds the ports that changed by identity, without looking at the others.
    ids: dict[int, str] = field(default_factory=dict)
    # How many fragments contribute a chain / a map key (a ClusterIP shared by the
    # ports of a service, a hairpin address, a shared pick chain): it goes with the last.
    chain_refs: dict[str, int] = field(default_factory=dict)
    refs: dict[str, dict[str, int]] = field(default_factory=dict)
    # False when only names are known (read back from the kernel after a restart or a
    # failed sync): the next sync must be full and deletes what is not desired.
    complete: bool = True

    def counts(self) -> dict[str, int]:
        return {"chain": len(self.chains),
                "rule": sum(len(r) for r in self.chains.values()),
                "element": sum(len(e) for e in self.elements.values()),
                "set": len(self.affinity) + sum(1 for m in self.elements if m not in MAPS)}


# ---- desired state ----------------------------------------------------------------------

def _slots(ports: list[ServicePort], previous: dict[str, int]) -> dict[str, int]:
    """Each service port keeps its slot; new ports take the lowest free ones. Ports on
    a shared pick chain need none."""
    slots: dict[str, int] = {}
    wanting = [port_base(sp) for sp in ports if needs_slot(sp)]
    for b in wanting:
        if b in previous:
            slots[b] = previous[b]
    taken = set(slots.values())
    free = (i for i in range(MAX_SLOTS) if i not in taken)
    for b in wanting:
        if b not in slots:
            slots[b] = next(free)
    return slots


def add_fragment(rs: RuleSet, frag: Fragment) -> None:
    """Merge one fragment into `rs`, counting contributors (see RuleSet.refs)."""
    chains, elements, affinity = frag
    crefs = rs.chain_refs
    for name, rules in chains.items():
        crefs[name] = crefs.get(name, 0) + 1
        rs.chains[name] = rules
    for name, elems in elements.items():
        cur = rs.elements.get(name)
        if cur is None:
            cur = rs.elements[name] = {}
            refs = rs.refs[name] = {}
        else:
            refs = rs.refs.setdefault(name, {})
        for k in elems:
            refs[k] = refs.get(k, 0) + 1
        cur.update(elems)
    rs.affinity.update(affinity)


def desired(snapshot: Snapshot, node: NodeView, cfg: RenderConfig,
            previous: RuleSet | None = None) -> RuleSet:
    """The rules for `snapshot`; `previous` (what was applied) lends its slots so
    unchanged service ports render exactly as before."""
    rs = RuleSet(base=base_text(node, cfg), elements={name: {} for name in MAPS})
    rs.refs = {name: {} for name in MAPS}
    for ip in node.node_ips:
        rs.elements["nodeport-ips"][ip] = ""
        rs.refs["nodeport-ips"][ip] = 1
    # The DNS service is answered by the node-local DNS, never proxied.
    ports = [sp for sp in snapshot.ports if cfg.dns_ip not in sp.cluster_ips]
    old = previous if previous is not None and previous.complete else None
    rs.slots = _slots(ports, previous.slots if previous is not None else {})
    for sp in ports:
        b = port_base(sp)
        slot = rs.slots.get(b, -1)
        if old is not None and old.ports.get(b) is sp and old.slots.get(b, -1) == slot:
            frag = old.fragments[b]        # unchanged: skip hashing the port for the cache
        else:
            frag = fragment(sp, node, cfg, slot)
        rs.fragments[b] = frag
        rs.ports[b] = sp
        rs.ids[id(sp)] = b
        add_fragment(rs, frag)
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


Rules = tuple[str, ...]


@dataclass
class Change:
    """What a partial sync changes: each touched name with its value before and after
    (None: absent)."""
    chains: dict[str, tuple[Rules | None, Rules | None]] = field(default_factory=dict)
    elements: dict[str, dict[str, tuple[str | None, str | None]]] = field(
        default_factory=dict)
    sets: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)
    # dynamic maps (endpoint and pick maps) among the touched ones: had / have elements
    maps: dict[str, tuple[bool, bool]] = field(default_factory=dict)


def partial_text(change: Change, table: str = "netd") -> str:
    t = f"ip {table}"
    chains = change.chains
    added = [c for c, (b, a) in chains.items() if b is None and a is not None]
    changed = [c for c, (b, a) in chains.items() if b is not None and a is not None and b != a]
    stale = [c for c, (b, a) in chains.items() if b is not None and a is None]
    new_maps = [m for m, (b, a) in change.maps.items() if a and not b]
    stale_maps = {m for m, (b, a) in change.maps.items() if b and not a}
    lines = [f"add chain {t} {c}" for c in added]
    lines += [map_decl(t, m) for m in new_maps]
    lines += [_affinity_decl(t, s, a) for s, (b, a) in change.sets.items()
              if b is None and a is not None]
    lines += [f"flush chain {t} {c}" for c in stale + changed]
    for c in added + changed:
        rules = chains[c][1]
        assert rules is not None
        lines += [f"add rule {t} {c} {r}" for r in rules]
    for name, keys in change.elements.items():
        if name in stale_maps:
            continue        # deleted whole below
        gone = [k for k, (b, a) in keys.items() if b is not None and a != b]
        come = [_item(k, a) for k, (b, a) in keys.items() if a is not None and a != b]
        if gone:
            lines += _elements("delete", t, name, gone)
        if come:
            lines += _elements("add", t, name, come)
    # Last: nothing refers to them any more (their referrers were flushed or rewritten
    # above, in this same transaction).
    lines += [f"delete chain {t} {c}" for c in stale]
    lines += [f"delete set {t} {s}" for s, (b, a) in change.sets.items()
              if b is not None and a is None]
    lines += [f"delete map {t} {m}" for m in stale_maps]
    return "".join(line + "\n" for line in lines)


def _full_text(new: RuleSet, previous: RuleSet | None, t: str) -> str:
    old = previous or RuleSet(complete=False)
    lines: list[str] = [new.base.rstrip("\n")]
    new_maps = [m for m in new.elements if m not in MAPS and new.elements[m]]
    stale_maps = [m for m in old.elements if m not in MAPS and not new.elements.get(m)]
    stale_sets = [s for s in old.affinity if s not in new.affinity]
    stale_chains = [c for c in old.chains if c not in new.chains]
    for chain in new.chains:
        lines.append(f"add chain {t} {chain}")
        if previous is None or chain in old.chains:
            # Flushing a chain just created costs the kernel as much as filling it:
            # only chains that may hold rules already (all of them when nothing is
            # known) are flushed.
            lines.append(f"flush chain {t} {chain}")
    for m in new_maps:
        lines.append(map_decl(t, m))
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
    lines += [f"delete chain {t} {c}" for c in stale_chains]
    lines += [f"delete set {t} {s}" for s in stale_sets]
    lines += [f"delete map {t} {m}" for m in stale_maps]
    return "".join(line + "\n" for line in lines)


def diff(new: RuleSet, old: RuleSet) -> Change:
    """The Change between two complete RuleSets, looking only at the service ports
    whose fragment differs (unchanged ports share the fragment object) and the node's
    own elements. Values come from the merged states, so a key several ports share is
    compared as a whole. (Syncs use nftdelta, which patches instead of comparing.)"""
    change = Change()
    touched = [f for b, f in new.fragments.items() if old.fragments.get(b) is not f]
    touched += [f for b, f in old.fragments.items() if new.fragments.get(b) is not f]
    keys: dict[str, dict[str, None]] = {"nodeport-ips": dict.fromkeys(
        list(new.elements.get("nodeport-ips", {})) + list(old.elements.get("nodeport-ips", {})))}
    for frag_chains, frag_elements, frag_sets in touched:
        for c in frag_chains:
            change.chains[c] = (old.chains.get(c), new.chains.get(c))
        for name, elems in frag_elements.items():
            keys.setdefault(name, {}).update(dict.fromkeys(elems))
        for s in frag_sets:
            change.sets[s] = (old.affinity.get(s), new.affinity.get(s))
    for name, ks in keys.items():
        before, after = old.elements.get(name, {}), new.elements.get(name, {})
        change.elements[name] = {k: (before.get(k), after.get(k)) for k in ks}
        if name not in MAPS:
            change.maps[name] = (bool(before), bool(after))
    return change


def render_diff(new: RuleSet, previous: RuleSet | None, table: str = "netd",
                full: bool = False) -> str:
    """The transaction turning `previous` (what the kernel has) into `new`; a full
    rebuild when asked, when nothing (or only names) is known, or when the static part
    changed. Empty when nothing changed."""
    if full or previous is None or not previous.complete or previous.base != new.base:
        return _full_text(new, previous, f"ip {table}")
    return partial_text(diff(new, previous), table)


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
            if words[0] == "chain" and (_dynamic(name, "service", "local", "external",
                                                 "endpoint") or _counted(name, "pick")):
                rs.chains[name] = ()
            elif words[0] == "set" and _dynamic(name, "affinity"):
                rs.affinity[name] = 0
            elif words[0] == "map" and (_counted(name, "endpoints") or _counted(name, "pick")):
                rs.elements[name] = {}
    return rs


def _counted(name: str, prefix: str) -> bool:
    """<prefix>-<protocol>-<number>: endpoint maps, pick chains and maps."""
    words = name.split("-")
    return (len(words) == 3 and words[0] == prefix and words[1] in ("tcp", "udp", "sctp")
            and words[2].isdigit())


def _dynamic(name: str, *prefixes: str) -> bool:
    # prefix-<8 base32>-…: never a static chain such as service-endpoints-check
    head, _, rest = name.partition("-")
    h = rest[:9]
    return head in prefixes and len(h) == 9 and h[8] == "-" and all(
        c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" for c in h[:8])


def delete_table(table: str = "netd") -> str:
    return f"delete table ip {table}\n"
