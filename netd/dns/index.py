"""The cluster zone index: every name netd's DNS answers, built from Services,
EndpointSlices, Pods (and Namespaces) — an immutable snapshot.

Pure: no I/O, no dnslib objects (those are made per query by netd.dns.resolver, whose
answers the server caches). Records are derived per Service (netd.dns.fragment). A
build from scratch (netd.dns.assemble) takes ~35 ms at 1,000 services and 2,000 pods
on the 2-core test machine; after that, each snapshot is derived from the previous
one in time proportional to the change (netd.dns.delta over netd.dns.layered tables:
~0.1 ms for one Service, see bench/dns_index_bench.py), so record churn never holds
the event loop that answers queries.

Names are stored lowercased without the trailing dot. Targets that live inside the
cluster zone (SRV targets, the NS target) are stored *relative* to the zone, because
CoreDNS writes them with the zone spelled as the question spelled it
(handler_case_test.go: `svc1.testns.svc.cLuStEr.LoCaL.`); PTR targets are absolute
(CoreDNS builds them from its configured primary zone).

What exists follows CoreDNS's kubernetes plugin (kubernetes.go findServices/findPods,
reverse.go, object/endpoint.go) — the reference where the Kubernetes DNS specification
(kubernetes/dns docs/specification.md, schema 1.1.0) is silent.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from netd.dns.fragment import SERVICE_NAME_LABEL, Fragment
from netd.dns.layered import Layered

Obj = dict[str, Any]
SvcKey = tuple[str, str]

SCHEMA_VERSION = "1.1.0"
DNS_SERVICE = ("kube-system", "kube-dns")
# Namespaces every netd cluster has (registry bootstrap), known even when the caller
# does not pass the Namespace objects.
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
POD_MODES = ("disabled", "insecure", "verified")
# More reverse zones than this for one CIDR means a silly prefix (e.g. a /9 expands to
# 128 /16 zones); stop there rather than build thousands of apexes.
_MAX_REVERSE_ZONES = 4096


@dataclass(frozen=True)
class DnsConfig:
    domain: str = "cluster.local"
    ttl: int = 5
    pod_mode: str = "disabled"          # disabled | insecure | verified
    service_cidr: str = "10.96.0.0/12"  # comma-separated for dual-stack
    pod_cidr: str = "10.244.0.0/16"

    @classmethod
    def from_config(cls, config: Any) -> DnsConfig:
        """From netd.config.Config (duck-typed so this module stays import-light)."""
        return cls(domain=config.domain, ttl=config.dns.ttl, pod_mode=config.dns.pods,
                   service_cidr=config.service_cidr, pod_cidr=config.pod_cidr)


def reverse_zones(cidr: str) -> list[str]:
    """Reverse zone apexes covering exactly `cidr`: the prefix rounded *up* to a label
    boundary (octet for IPv4, nibble for IPv6), so a /12 becomes sixteen /16 zones and
    netd never claims addresses outside its own ranges (e.g. the rest of 10/8)."""
    net = ipaddress.ip_network(cidr.strip(), strict=False)
    step = 8 if net.version == 4 else 4
    bits = -(-net.prefixlen // step) * step
    if bits == 0:
        return []  # a default route is not a zone netd may claim
    subnets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = (
        [net] if bits == net.prefixlen else list(net.subnets(new_prefix=bits)))
    out: list[str] = []
    for sub in subnets[:_MAX_REVERSE_ZONES]:
        full = sub.network_address.reverse_pointer.split(".")
        if sub.version == 4:
            labels = full[4 - bits // 8:]
        else:
            labels = full[32 - bits // 4:]
        out.append(".".join(labels))
    return out


def split_cidrs(text: str) -> list[str]:
    return [c.strip() for c in (text or "").split(",") if c.strip()]


class ZoneIndex:
    """Immutable snapshot of the zone. Build with ZoneIndex.build() (or derive the next
    one from a set of changed keys with ZoneIndex.update()); resolve with
    netd.dns.resolver.resolve(). Never mutated after it is built (readers share it
    freely); its tables are netd.dns.layered.Layered mappings that share unchanged
    entries with the snapshots before it."""

    def __init__(self, cfg: DnsConfig, *, generation: int = 0, serial: int | None = None
                 ) -> None:
        if cfg.pod_mode not in POD_MODES:
            raise ValueError(f"pod_mode must be one of {', '.join(POD_MODES)}")
        self.cfg = cfg
        self.domain = cfg.domain.strip(".").lower()
        self.dot_domain = "." + self.domain
        self.svc_suffix = ".svc." + self.domain
        self.pod_suffix = ".pod." + self.domain
        self.ttl = cfg.ttl
        self.pod_mode = cfg.pod_mode
        self.generation = generation
        # CoreDNS uses the Unix time of the last change; the indexer passes that. Pure
        # callers get the generation, which also only grows.
        self.serial = (generation if serial is None else serial) & 0xFFFFFFFF
        # Records by owner name, one table per kind: most names own one kind only, and a
        # table entry is much cheaper to build than an object per name.
        # Addresses (IPv4 and IPv6 mixed; the resolver picks by family).
        self.addrs: Layered[str, list[str]] = Layered()
        # SRV candidates (port, target relative to the zone, target address). Port -1
        # is CoreDNS's sentinel for a port-less EndpointSlice: never rendered, but
        # counted, because CoreDNS weighs the set over every candidate
        # (backend_lookup.go SRV: weight = floor(100 / candidates), at least 1).
        self.srvs: Layered[str, list[tuple[int, str, str]]] = Layered()
        self.ptrs: Layered[str, list[str]] = Layered()   # absolute targets, trailing dot
        self.cnames: Layered[str, str] = Layered()  # ExternalName target as written
        self.txts: Layered[str, list[str]] = Layered()
        self.ents: Layered[str, bool] = Layered()   # names that exist with no records
        self.namespaces: frozenset[str] = frozenset()
        self.reverse_apexes: frozenset[str] = frozenset()
        self.dns_ips: tuple[str, ...] = ()  # kube-system/kube-dns cluster IPs
        self.counts: dict[str, int] = {}
        # Bookkeeping for deriving the next snapshot from this one (netd.dns.delta):
        # everything a change must undo is reachable by the changed key alone.
        self._fragments: Layered[SvcKey, Fragment] = Layered()
        self._ent_refs: Layered[str, int] = Layered()    # fragment ENT -> fragments
        self._ptr_cluster: Layered[str, str] = Layered()  # reverse name -> cluster PTR
        # reverse name -> every endpoint PTR target naming it, sorted, with repeats
        self._ptr_eps: Layered[str, tuple[str, ...]] = Layered()
        # verified pod records: "ns/name" -> (the Pod, its (name, address) records)
        self._pods: Layered[str, tuple[Obj, tuple[tuple[str, str], ...]]] = Layered()
        self._pod_refs: Layered[str, int] = Layered()    # pod name -> pods naming it
        self._skeleton: frozenset[str] = frozenset()
        self._mergeable = False   # no duplicate keys, no order-dependent names
        self._token = object()          # identity of this snapshot, for changed_names
        self._delta: tuple[object, frozenset[str]] | None = None

    def __repr__(self) -> str:
        return (f"ZoneIndex(domain={self.domain!r}, generation={self.generation}, "
                f"names={self.counts.get('names', 0)}, ents={len(self.ents)})")

    def exists(self, low: str) -> bool:
        """Whether `low` owns any record or is an empty non-terminal."""
        return (low in self.addrs or low in self.srvs or low in self.ptrs
                or low in self.cnames or low in self.txts or low in self.ents)

    def changed_names(self, previous: ZoneIndex) -> set[str] | None:
        """Lowercased owner names whose answers may differ between `previous` and this
        index (records, existence as NXDOMAIN vs NODATA), or None when anything may
        have changed (configuration, the DNS service's own addresses behind every NS
        answer, namespaces in insecure pod mode). The SOA serial is not a name: it
        changes on every build and the server patches it into cached negatives."""
        if previous is self:
            return set()
        if self._delta is not None and self._delta[0] is previous._token:
            return set(self._delta[1])
        if (previous.cfg != self.cfg or previous.dns_ips != self.dns_ips
                or (self.pod_mode == "insecure" and previous.namespaces != self.namespaces)):
            return None
        # After a full build: compare everything (flat dicts, C speed).
        out: set[str] = set(self.ents.flat().keys() ^ previous.ents.flat().keys())
        pairs: tuple[tuple[Layered[str, Any], Layered[str, Any]], ...] = (
            (self.addrs, previous.addrs), (self.srvs, previous.srvs),
            (self.ptrs, previous.ptrs), (self.cnames, previous.cnames),
            (self.txts, previous.txts))
        for mine_t, theirs_t in pairs:
            mine, theirs = mine_t.flat(), theirs_t.flat()
            out.update(mine.keys() ^ theirs.keys())
            for name, value in mine.items():
                other = theirs.get(name)
                if other is not value and other is not None and other != value:
                    out.add(name)
        return out

    # ---- reads used by the resolver ---------------------------------------------------

    def reverse_apex_of(self, low: str) -> str | None:
        """The reverse zone apex `low` (lowercase, no trailing dot) falls in, if any."""
        if not low.endswith(".arpa"):
            return None
        apexes = self.reverse_apexes
        pos = 0
        while True:
            cand = low[pos:]
            if cand in apexes:
                return cand
            nxt = low.find(".", pos)
            if nxt < 0:
                return None
            pos = nxt + 1

    # ---- build ------------------------------------------------------------------------

    @staticmethod
    def build(services: list[Obj], slices: list[Obj], pods: list[Obj], cfg: DnsConfig,
              *, namespaces: Iterable[Obj] | None = None, generation: int = 0,
              serial: int | None = None, previous: ZoneIndex | None = None,
              derive: bool = True) -> ZoneIndex:
        """Build the whole zone from object lists.

        `namespaces` (Namespace objects) decides which `<ns>.svc.<zone>` names exist,
        as CoreDNS's namespaceExposed() does; without it namespaces are inferred from
        the objects plus the system namespaces.

        With `previous` (an index built with the same cfg), the lists are compared
        with it by object identity and, when few Services changed, the result is
        derived from it as ZoneIndex.update does; otherwise the records of every
        Service whose objects are the very same as last time are reused. That relies
        on the informer contract: cache objects are never mutated in place — a change
        is a new dict. Comparing the lists is O(zone); the indexer, which knows what
        changed from its informer events, calls update() instead (and builds with
        derive=False when update() declined: only the fragment reuse is wanted)."""
        from netd.dns.assemble import assemble
        if previous is not None and previous.cfg != cfg:
            previous = None
        if previous is not None and derive:
            from netd.dns.delta import apply, detect
            changes = detect(previous, services, slices, pods, namespaces)
            if changes is not None:
                idx = apply(previous, changes, generation=generation, serial=serial)
                if idx is not None:
                    return idx
        idx = ZoneIndex(cfg, generation=generation, serial=serial)
        assemble(idx, services, slices, pods, namespaces, previous)
        return idx

    @staticmethod
    def update(previous: ZoneIndex, services: Mapping[SvcKey, tuple[Obj | None, list[Obj]]],
               pods: Mapping[str, Obj | None] | None = None, *, generation: int = 0,
               serial: int | None = None) -> ZoneIndex | None:
        """The next snapshot after a change to the given keys only, in O(change):
        `services` maps each changed Service key (lowercased namespace, name) to its
        current Service object (None: deleted) and all its EndpointSlices; `pods`
        ("namespace/name" -> Pod or None) matters in verified pod mode only. None when
        only a full build is exact (the caller then calls build()): a change of the
        DNS Service's own addresses, names two objects claim, a cluster IP two
        Services share, too many changes to be worth it."""
        from netd.dns.delta import Changes, apply
        return apply(previous, Changes(dict(services), dict(pods or {})),
                     generation=generation, serial=serial)


def namespace_set(services: list[Obj], pods: list[Obj], namespaces: Iterable[Obj] | None
                  ) -> frozenset[str]:
    if namespaces is not None:
        ns_names = {(n.get("metadata") or {}).get("name") or "" for n in namespaces}
    else:
        ns_names = set(SYSTEM_NAMESPACES)
        for group in (services, pods):
            for obj in group:
                ns_names.add((obj.get("metadata") or {}).get("namespace") or "")
    ns_names.discard("")
    return frozenset(n.lower() for n in ns_names)


def service_key(svc: Obj) -> SvcKey | None:
    meta = svc.get("metadata") or {}
    key = ((meta.get("namespace") or "").lower(), (meta.get("name") or "").lower())
    return key if key[0] and key[1] else None


def slice_key(sl: Obj) -> SvcKey | None:
    meta = sl.get("metadata") or {}
    svc_name = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    return ((meta.get("namespace") or "").lower(), svc_name.lower()) if svc_name else None


def slice_order(sl: Obj) -> str:
    """A Service's EndpointSlices are taken in name order, whatever order the caller
    lists them in, so a Service's records (and their order within an answer) do not
    depend on the order events arrived in: an index derived from changes equals a
    build from scratch."""
    return (sl.get("metadata") or {}).get("name") or ""


def pod_key(pod: Obj) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"
