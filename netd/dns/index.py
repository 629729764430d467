"""The cluster zone index: every name netd's DNS answers, built from Services,
EndpointSlices, Pods (and Namespaces) — an immutable snapshot.

Pure: no I/O, no dnslib objects (those are made per query by netd.dns.resolver, whose
answers the server caches). Records are derived per Service (netd.dns.fragment) and
reused from the previous index while that Service's objects are unchanged, so a
rebuild after one change is a merge of dicts (~10 ms at 1,000 services and 2,000
pods on the 2-core test machine, ~35 ms for a build from scratch; see
bench/dns_index_bench.py) and can run on the event loop.

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
from typing import Any, Iterable

from netd.dns.fragment import SERVICE_NAME_LABEL, Fragment, build_fragment, dashed

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


def _split_cidrs(text: str) -> list[str]:
    return [c.strip() for c in (text or "").split(",") if c.strip()]


class ZoneIndex:
    """Immutable snapshot of the zone. Build with ZoneIndex.build(); resolve with
    netd.dns.resolver.resolve(). Never mutated after build (readers share it freely)."""

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
        # Records by owner name, one dict per kind: most names own one kind only, and a
        # dict entry is much cheaper to build than an object per name.
        # Addresses (IPv4 and IPv6 mixed; the resolver picks by family).
        self.addrs: dict[str, list[str]] = {}
        # SRV candidates (port, target relative to the zone, target address). Port -1
        # is CoreDNS's sentinel for a port-less EndpointSlice: never rendered, but
        # counted, because CoreDNS weighs the set over every candidate
        # (backend_lookup.go SRV: weight = floor(100 / candidates), at least 1).
        self.srvs: dict[str, list[tuple[int, str, str]]] = {}
        self.ptrs: dict[str, list[str]] = {}      # absolute targets with trailing dot
        self.cnames: dict[str, str] = {}          # ExternalName target as the user wrote it
        self.txts: dict[str, list[str]] = {}
        self.ents: set[str] = set()        # names that exist with no records at all
        self.namespaces: frozenset[str] = frozenset()
        self.reverse_apexes: frozenset[str] = frozenset()
        self.dns_ips: tuple[str, ...] = ()  # kube-system/kube-dns cluster IPs
        self.counts: dict[str, int] = {}
        self._fragments: dict[tuple[str, str], Fragment] = {}
        # Bookkeeping for merging only the changed Services into a copy of the previous
        # index (netd.dns.delta), so a build under churn costs O(changes), not O(zone).
        self._token = object()          # identity of this snapshot, for changed_names
        self._delta: tuple[object, frozenset[str]] | None = None
        self._objs: tuple[tuple[Obj, ...], ...] = ()   # keeps id() keys below unique
        self._svc_key: dict[int, SvcKey | None] = {}
        self._slice_key: dict[int, SvcKey | None] = {}
        self._pod_ids: frozenset[int] = frozenset()
        self._ptr_refs: dict[str, int] = {}   # reverse name -> contributing fragments
        self._ent_refs: dict[str, int] = {}   # fragment ENT -> contributing fragments
        self._skeleton: frozenset[str] = frozenset()
        self._mergeable = False   # no duplicate Service keys, no name collisions

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
        out: set[str] = set(self.ents ^ previous.ents)
        pairs: tuple[tuple[dict[str, Any], dict[str, Any]], ...] = (
            (self.addrs, previous.addrs), (self.srvs, previous.srvs),
            (self.ptrs, previous.ptrs), (self.cnames, previous.cnames),
            (self.txts, previous.txts))
        for mine, theirs in pairs:
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
              serial: int | None = None, previous: ZoneIndex | None = None) -> ZoneIndex:
        """Build the whole zone.

        `namespaces` (Namespace objects) decides which `<ns>.svc.<zone>` names exist,
        as CoreDNS's namespaceExposed() does; without it namespaces are inferred from
        the objects plus the system namespaces.

        With `previous` (an index built with the same cfg), the records of every
        Service whose Service and EndpointSlice objects are the very same objects as
        last time are reused. That relies on the informer contract: cache objects are
        never mutated in place — a change is a new dict."""
        idx = ZoneIndex(cfg, generation=generation, serial=serial)
        if previous is not None and previous.cfg != cfg:
            previous = None
        if previous is not None:
            from netd.dns.delta import merge
            if merge(idx, services, slices, pods, namespaces, previous):
                return idx
        _assemble(idx, services, slices, pods, namespaces, previous)
        return idx


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


def ptr_value(frag: Fragment, rev: str) -> list[str]:
    """ptrs[rev] when `frag` is the only fragment naming `rev` (as _assemble merges)."""
    for r, target in frag.cluster_ptrs:
        if r == rev:
            return [target]
    return [target for r, target in frag.endpoint_ptrs if r == rev]


def frag_revs(frag: Fragment) -> set[str]:
    return {r for r, _ in frag.cluster_ptrs} | {r for r, _ in frag.endpoint_ptrs}


def _assemble(idx: ZoneIndex, services: list[Obj], slices: list[Obj], pods: list[Obj],
              namespaces: Iterable[Obj] | None, previous: ZoneIndex | None) -> None:
    dom = idx.domain
    apexes: list[str] = []
    for cidr in _split_cidrs(idx.cfg.service_cidr) + _split_cidrs(idx.cfg.pod_cidr):
        apexes.extend(reverse_zones(cidr))
    idx.reverse_apexes = rev_apexes = frozenset(apexes)

    idx.namespaces = namespace_set(services, pods, namespaces)

    # The skeleton: apex, svc/pod subtrees, one empty name per namespace. CoreDNS
    # parse.go answers NODATA for `svc.<zone>`, `pod.<zone>` and, when the namespace
    # exists (namespace.go namespaceExposed), `<ns>.svc.<zone>`; `<ns>.pod.<zone>`
    # exists only with pod records on (findPods returns errNoItems first otherwise).
    ents = idx.ents
    ents.update((dom, "svc." + dom, "pod." + dom))
    ents.update(ns + idx.svc_suffix for ns in idx.namespaces)
    if idx.pod_mode != "disabled":
        ents.update(ns + idx.pod_suffix for ns in idx.namespaces)
    ents.update(apexes)
    idx.txts["dns-version." + dom] = [SCHEMA_VERSION]
    skeleton = set(ents)

    by_svc: dict[tuple[str, str], list[Obj]] = {}
    slice_keys = idx._slice_key
    for sl in slices:
        skey = slice_keys[id(sl)] = slice_key(sl)
        if skey is not None:
            by_svc.setdefault(skey, []).append(sl)
    svc_keys = idx._svc_key
    mergeable = True
    ptr_refs, ent_refs = idx._ptr_refs, idx._ent_refs

    old = previous._fragments if previous is not None else {}
    frags = idx._fragments
    addrs, srvs, ptrs = idx.addrs, idx.srvs, idx.ptrs
    cluster_ptr: set[str] = set()
    endpoint_ptrs: list[list[tuple[str, str]]] = []
    n_endpoints = 0
    for svc in services:
        key = svc_keys[id(svc)] = service_key(svc)
        if key is None:
            continue
        if key in frags:
            mergeable = False
            continue
        svc_slices = by_svc.get(key, [])
        frag = old.get(key)
        if frag is None or not frag.same_objects((svc, *svc_slices)):
            frag = build_fragment(svc, svc_slices, dom, rev_apexes)
        frags[key] = frag
        if mergeable and not (addrs.keys().isdisjoint(frag.addrs)
                              and srvs.keys().isdisjoint(frag.srvs)
                              and (frag.cname is None or frag.cname[0] not in idx.cnames)):
            mergeable = False
        for rev in frag_revs(frag):
            ptr_refs[rev] = ptr_refs.get(rev, 0) + 1
        for ent in frag.ents:
            ent_refs[ent] = ent_refs.get(ent, 0) + 1
        addrs.update(frag.addrs)
        srvs.update(frag.srvs)
        if frag.cname is not None:
            idx.cnames[frag.cname[0]] = frag.cname[1]
        for rev, target in frag.cluster_ptrs:
            # First service wins, like SvcIndexReverse()[0] in reverse.go.
            if rev not in cluster_ptr:
                cluster_ptr.add(rev)
                ptrs[rev] = [target]
        if frag.endpoint_ptrs:
            endpoint_ptrs.append(frag.endpoint_ptrs)
        ents.update(frag.ents)
        n_endpoints += frag.endpoints
    # reverse.go: an address that is a cluster IP answers with its service only;
    # otherwise with every endpoint name that address has.
    for ep_group in endpoint_ptrs:
        for rev, target in ep_group:
            if rev in cluster_ptr:
                continue
            lst = ptrs.get(rev)
            ptrs[rev] = [target] if lst is None else [*lst, target]

    dns_ips = addrs.get(f"{DNS_SERVICE[1]}.{DNS_SERVICE[0]}{idx.svc_suffix}")
    if dns_ips:
        # The SOA MNAME `ns.dns.<zone>` resolves to the DNS service, as CoreDNS's
        # isDefaultNS()/nsAddrs() answer it.
        idx.dns_ips = tuple(dns_ips)
        if "ns.dns." + dom in addrs:
            mergeable = False
        addrs["ns.dns." + dom] = list(dns_ips)
        ents.add("dns." + dom)
        skeleton.add("dns." + dom)

    n_pods = 0
    if idx.pod_mode == "verified":
        n_names = len(addrs)
        n_pods = _pods(idx, pods)
        idx._pod_ids = frozenset(map(id, pods))
        # A pod name that is also a Service-derived name: keep full builds exact.
        mergeable = mergeable and len(addrs) - n_names == len(
            {n for n in addrs if n.endswith(idx.pod_suffix)})
    idx._skeleton = frozenset(skeleton)
    idx._objs = (tuple(services), tuple(slices), tuple(pods))
    idx._mergeable = mergeable
    idx.counts = {"services": len(frags), "endpoints": n_endpoints, "pods": n_pods,
                  "names": len(addrs) + len(ptrs) + len(idx.cnames) + len(idx.txts),
                  "ents": len(ents)}


def _pods(idx: ZoneIndex, pods: list[Obj]) -> int:
    suffix = idx.pod_suffix
    addrs = idx.addrs
    count = 0
    for pod in pods:
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            continue  # object/pod.go ToPod: terminating pods are not indexed
        ns = (meta.get("namespace") or "").lower()
        status = pod.get("status") or {}
        ips = [p.get("ip") for p in status.get("podIPs") or () if p.get("ip")]
        if not ips and status.get("podIP"):
            ips = [status["podIP"]]
        for ip in ips:
            # CoreDNS turns the name back into an IP and compares it with PodIP as
            # strings, so only the canonical dashed form answers.
            name = f"{dashed(ip)}.{ns}{suffix}"
            lst = addrs.get(name)
            if lst is None:
                addrs[name] = [ip]
            elif ip not in lst:
                addrs[name] = [*lst, ip]
            count += 1
    return count
