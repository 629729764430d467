"""A ZoneIndex built from scratch: every Service's fragment merged into fresh tables.

Used for the first index, after a failed build, and for the changes netd.dns.delta
cannot derive exactly (a namespace appearing, the DNS Service's addresses moving, a
name or cluster IP two objects claim). Fragments of unchanged Services are reused from
`previous`. Whatever a from-scratch build produces is what a derived index must equal
(tests compare the two under random change sequences), so every rule that could make
the result depend on the order objects are listed in is either order-free here (slices
taken in name order, endpoint PTR targets sorted) or marks the index not mergeable
(duplicate keys, a cluster IP two Services claim: "first Service wins").
"""
from __future__ import annotations

from typing import Any, Iterable

from netd.dns.fragment import Fragment, build_fragment, dashed
from netd.dns.index import (
    DNS_SERVICE, SCHEMA_VERSION, ZoneIndex, namespace_set, pod_key, reverse_zones,
    service_key, slice_key, slice_order, split_cidrs,
)
from netd.dns.layered import Layered

Obj = dict[str, Any]
PodRecords = tuple[tuple[str, str], ...]


def pod_records(pod: Obj, suffix: str) -> PodRecords:
    """The (name, address) records of one Pod in verified mode."""
    meta = pod.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return ()  # object/pod.go ToPod: terminating pods are not indexed
    ns = (meta.get("namespace") or "").lower()
    status = pod.get("status") or {}
    ips = [p.get("ip") for p in status.get("podIPs") or () if p.get("ip")]
    if not ips and status.get("podIP"):
        ips = [status["podIP"]]
    # CoreDNS turns the name back into an IP and compares it with PodIP as strings,
    # so only the canonical dashed form answers.
    return tuple((f"{dashed(ip)}.{ns}{suffix}", ip) for ip in ips)


def ptr_answer(cluster: str | None, eps: tuple[str, ...] | None) -> list[str] | None:
    """ptrs[rev]: reverse.go answers a cluster IP with its Service only, any other
    address with every endpoint name it has. CoreDNS lists those in its indexer's
    (Go map) order; netd sorts them, so the answer is the same however the objects
    arrived."""
    if cluster is not None:
        return [cluster]
    if eps:
        return list(dict.fromkeys(eps))
    return None


def assemble(idx: ZoneIndex, services: list[Obj], slices: list[Obj], pods: list[Obj],
             namespaces: Iterable[Obj] | None, previous: ZoneIndex | None) -> None:
    dom = idx.domain
    apexes: list[str] = []
    for cidr in split_cidrs(idx.cfg.service_cidr) + split_cidrs(idx.cfg.pod_cidr):
        apexes.extend(reverse_zones(cidr))
    idx.reverse_apexes = rev_apexes = frozenset(apexes)
    idx.namespaces = namespace_set(services, pods, namespaces)

    # The skeleton: apex, svc/pod subtrees, one empty name per namespace. CoreDNS
    # parse.go answers NODATA for `svc.<zone>`, `pod.<zone>` and, when the namespace
    # exists (namespace.go namespaceExposed), `<ns>.svc.<zone>`; `<ns>.pod.<zone>`
    # exists only with pod records on (findPods returns errNoItems first otherwise).
    ents: dict[str, bool] = dict.fromkeys((dom, "svc." + dom, "pod." + dom), True)
    ents.update((ns + idx.svc_suffix, True) for ns in idx.namespaces)
    if idx.pod_mode != "disabled":
        ents.update((ns + idx.pod_suffix, True) for ns in idx.namespaces)
    ents.update((a, True) for a in apexes)
    txts = {"dns-version." + dom: [SCHEMA_VERSION]}
    skeleton = set(ents)

    by_svc: dict[tuple[str, str], list[Obj]] = {}
    for sl in slices:
        skey = slice_key(sl)
        if skey is not None:
            by_svc.setdefault(skey, []).append(sl)
    for group in by_svc.values():
        group.sort(key=slice_order)
    mergeable = True
    old = previous._fragments if previous is not None else None
    frags: dict[tuple[str, str], Fragment] = {}
    addrs: dict[str, list[str]] = {}
    srvs: dict[str, list[tuple[int, str, str]]] = {}
    cnames: dict[str, str] = {}
    ent_refs: dict[str, int] = {}
    ptr_cluster: dict[str, str] = {}
    eps: dict[str, list[str]] = {}
    n_endpoints = 0
    for svc in services:
        key = service_key(svc)
        if key is None:
            continue
        if key in frags:
            mergeable = False   # two objects, one name: list order decides
            continue
        svc_slices = by_svc.get(key, [])
        frag = old.get(key) if old is not None else None
        if frag is None or not frag.same_objects((svc, *svc_slices)):
            frag = build_fragment(svc, svc_slices, dom, rev_apexes)
        frags[key] = frag
        if mergeable and not (addrs.keys().isdisjoint(frag.addrs)
                              and srvs.keys().isdisjoint(frag.srvs)
                              and (frag.cname is None or frag.cname[0] not in cnames)):
            mergeable = False
        addrs.update(frag.addrs)
        srvs.update(frag.srvs)
        if frag.cname is not None:
            cnames[frag.cname[0]] = frag.cname[1]
        for rev, target in frag.cluster_ptrs:
            # First Service wins, like SvcIndexReverse()[0] in reverse.go. Cluster IPs
            # are allocated uniquely, so a shared one is a curiosity: full builds only.
            if rev in ptr_cluster:
                mergeable = False
            else:
                ptr_cluster[rev] = target
        for rev, target in frag.endpoint_ptrs:
            lst = eps.get(rev)
            if lst is None:
                eps[rev] = [target]
            else:
                lst.append(target)
        for ent in frag.ents:
            ent_refs[ent] = ent_refs.get(ent, 0) + 1
            ents[ent] = True
        n_endpoints += frag.endpoints
    ptr_eps = {rev: tuple(sorted(lst)) for rev, lst in eps.items()}
    ptrs: dict[str, list[str]] = {}
    for rev in ptr_cluster.keys() | ptr_eps.keys():
        answer = ptr_answer(ptr_cluster.get(rev), ptr_eps.get(rev))
        if answer is not None:
            ptrs[rev] = answer

    dns_ips = addrs.get(f"{DNS_SERVICE[1]}.{DNS_SERVICE[0]}{idx.svc_suffix}")
    if dns_ips:
        # The SOA MNAME `ns.dns.<zone>` resolves to the DNS service, as CoreDNS's
        # isDefaultNS()/nsAddrs() answer it.
        idx.dns_ips = tuple(dns_ips)
        if "ns.dns." + dom in addrs:
            mergeable = False
        addrs["ns.dns." + dom] = list(dns_ips)
        ents["dns." + dom] = True
        skeleton.add("dns." + dom)

    n_pods = 0
    if idx.pod_mode == "verified":
        n_pods, pods_ok = _pods(idx, pods, addrs)
        mergeable = mergeable and pods_ok
    idx.addrs, idx.srvs, idx.cnames = Layered(addrs), Layered(srvs), Layered(cnames)
    idx.ptrs, idx.txts, idx.ents = Layered(ptrs), Layered(txts), Layered(ents)
    idx._fragments, idx._ent_refs = Layered(frags), Layered(ent_refs)
    idx._ptr_cluster, idx._ptr_eps = Layered(ptr_cluster), Layered(ptr_eps)
    idx._skeleton = frozenset(skeleton)
    idx._mergeable = mergeable
    idx.counts = {"services": len(frags), "endpoints": n_endpoints, "pods": n_pods,
                  "names": len(addrs) + len(ptrs) + len(cnames) + len(txts),
                  "ents": len(ents)}


def _pods(idx: ZoneIndex, pods: list[Obj], addrs: dict[str, list[str]]
          ) -> tuple[int, bool]:
    """Verified pod records into `addrs`; (records added, result order-free)."""
    suffix = idx.pod_suffix
    table: dict[str, tuple[Obj, PodRecords]] = {}
    refs: dict[str, int] = {}
    count = 0
    ok = True
    for pod in pods:
        pk = pod_key(pod)
        if pk in table:
            ok = False
        records = pod_records(pod, suffix)
        table[pk] = (pod, records)
        for name, ip in records:
            lst = addrs.get(name)
            n = refs.get(name, 0)
            if lst is None:
                addrs[name] = [ip]
            else:
                if not n:
                    ok = False    # a Service-derived name
                if ip not in lst:
                    # Two spellings of one address: the order pods come in decides.
                    ok = False
                    addrs[name] = [*lst, ip]
            refs[name] = n + 1
            count += 1
    idx._pods, idx._pod_refs = Layered(table), Layered(refs)
    return count, ok
