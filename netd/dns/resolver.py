"""Answer one question from a ZoneIndex: pure, no I/O; dnslib only for record types.

Semantics follow CoreDNS's kubernetes plugin (handler.go, plugin/backend_lookup.go):
AA always set; owner names spelled exactly as the question spelled them; in-zone
targets written with the zone spelled as the question spelled it; NXDOMAIN and NODATA
both carry the zone's SOA in authority; SOA `ns.dns.<zone>. hostmaster.<zone>.` with
refresh 7200, retry 1800, expire 86400, minimum = ttl and TTL min(ttl, 300).

Where CoreDNS answers NXDOMAIN for a name that exists (TXT on `svc.<zone>`, A on
`dns-version.<zone>`, `_tcp.<svc>...` empty non-terminals, or a CNAME-owning name asked
for MX) netd answers as RFC 1034/2308/8020 require (NODATA; the CNAME): an NXDOMAIN for
an existing name lets RFC 8020 resolvers prune the whole subtree below it.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from dnslib import AAAA, CNAME, NS, PTR, QTYPE, RCODE, RR, SOA, SRV, TXT, A

from netd.dns.index import ZoneIndex

# dns-version.<zone> TXT carries CoreDNS's fixed 28800 s TTL (kubernetes.go Services).
VERSION_TTL = 28800
MAX_CNAME_CHAIN = 10   # backend_lookup.go maxCnameChainLength

_A, _AAAA, _SRV, _PTR = QTYPE.A, QTYPE.AAAA, QTYPE.SRV, QTYPE.PTR
_TXT, _CNAME, _SOA, _NS = QTYPE.TXT, QTYPE.CNAME, QTYPE.SOA, QTYPE.NS
_XFR = frozenset((QTYPE.AXFR, QTYPE.IXFR))
NOERROR, NXDOMAIN, REFUSED = RCODE.NOERROR, RCODE.NXDOMAIN, RCODE.REFUSED


@dataclass(frozen=True)
class Answer:
    rcode: int
    answer: list[RR]
    authority: list[RR]
    additional: list[RR]
    authoritative: bool = True
    # An ExternalName chain left the cluster zone at this name: the server resolves
    # (chase, qtype) upstream and appends those records after `answer` (CoreDNS does the
    # same through its upstream Lookup in backend_lookup.go A/AAAA/TXT).
    chase: str | None = None


def resolve(index: ZoneIndex, qname: str, qtype: int) -> Answer | None:
    """The answer for (qname, qtype), or None when qname is outside the cluster zone and
    netd's reverse zones (the server forwards it)."""
    return _resolve(index, qname, qtype, 0, None)


def _resolve(index: ZoneIndex, qname: str, qtype: int, depth: int,
             seen: set[str] | None) -> Answer | None:
    name = qname[:-1] if qname.endswith(".") else qname
    low = name.lower()
    dom = index.domain
    if low == dom or low.endswith(index.dot_domain):
        apex = dom
    else:
        rev = index.reverse_apex_of(low)
        if rev is None:
            return _outside(index, name, low, qtype)
        apex = rev
    zone = name[len(name) - len(apex):]   # the apex as the question spelled it
    if qtype in _XFR:
        return Answer(REFUSED, [], [], [], True)  # handler.go: no zone transfers
    target = index.cnames.get(low)
    if target is not None:
        return _cname(index, name, target, qtype, zone, depth, seen)
    if low == apex:
        return _apex(index, name, zone, qtype)
    ttl = index.ttl
    if qtype == _A or qtype == _AAAA:
        ips = index.addrs.get(low)
        if ips is None and index.pod_mode == "insecure" and low.endswith(index.pod_suffix):
            ips = _insecure_pod(index, low)
        if ips is None:
            return _negative(index, low, zone)
        if qtype == _A:
            answer = [RR(name, _A, ttl=ttl, rdata=A(ip))
                      for ip in dict.fromkeys(ips) if ":" not in ip]
        else:
            answer = [RR(name, _AAAA, ttl=ttl, rdata=AAAA(ip))
                      for ip in dict.fromkeys(ips) if ":" in ip]
        if not answer:
            return _nodata(index, zone)
        return Answer(NOERROR, answer, [], [], True)
    if qtype == _SRV:
        entries = index.srvs.get(low)
        if not entries:
            return _negative(index, low, zone)
        answer, extra = _srv(entries, name, zone, ttl)
        if not answer:
            return _nodata(index, zone)
        return Answer(NOERROR, answer, [], extra, True)
    if qtype == _PTR:
        targets = index.ptrs.get(low)
        if not targets:
            return _negative(index, low, zone)
        return Answer(NOERROR, [RR(name, _PTR, ttl=ttl, rdata=PTR(t))
                                for t in dict.fromkeys(targets)], [], [], True)
    if qtype == _TXT:
        texts = index.txts.get(low)
        if texts:
            return Answer(NOERROR, [RR(name, _TXT, ttl=VERSION_TTL, rdata=TXT(t))
                                    for t in texts], [], [], True)
    return _negative(index, low, zone)


def _negative(index: ZoneIndex, low: str, zone: str) -> Answer:
    """NODATA when the name exists (with other records, or as an empty non-terminal),
    else NXDOMAIN; both with the zone's SOA (plugin.BackendError)."""
    if index.exists(low) or (index.pod_mode == "insecure" and low.endswith(index.pod_suffix)
                             and _insecure_pod(index, low) is not None):
        return _nodata(index, zone)
    return Answer(NXDOMAIN, [], [_soa(index, zone)], [], True)


# ---- pieces ---------------------------------------------------------------------------

def _soa(index: ZoneIndex, zone: str) -> RR:
    ttl = index.ttl
    return RR(zone, _SOA, ttl=min(ttl, 300),
              rdata=SOA(f"ns.dns.{zone}", f"hostmaster.{zone}",
                        (index.serial, 7200, 1800, 86400, ttl)))


def _nodata(index: ZoneIndex, zone: str) -> Answer:
    return Answer(NOERROR, [], [_soa(index, zone)], [], True)


def _apex(index: ZoneIndex, name: str, zone: str, qtype: int) -> Answer:
    if qtype == _SOA:
        return Answer(NOERROR, [_soa(index, zone)], [], [], True)
    if qtype == _NS:
        answer, extra = _ns(index, name, zone)
        return Answer(NOERROR, answer, [], extra, True)
    return _nodata(index, zone)


def _ns(index: ZoneIndex, name: str, zone: str) -> tuple[list[RR], list[RR]]:
    """CoreDNS names the server after the Service in front of it (ns.go nsAddrs):
    `kube-dns.kube-system.svc.<zone>.` with its cluster IPs as glue; with no such
    Service it falls back to `ns.dns.<zone>.`."""
    ttl = index.ttl
    if not index.dns_ips:
        return [RR(name, _NS, ttl=ttl, rdata=NS(f"ns.dns.{zone}"))], []
    # A reverse zone's NS still points into the cluster zone, spelled canonically.
    target = (f"kube-dns.kube-system.svc.{zone}" if zone.lower() == index.domain
              else f"kube-dns.kube-system.svc.{index.domain}")
    extra = [RR(target, _AAAA if ":" in ip else _A, ttl=ttl,
                rdata=AAAA(ip) if ":" in ip else A(ip)) for ip in index.dns_ips]
    return [RR(name, _NS, ttl=ttl, rdata=NS(target))], extra


def _srv(entries: list[tuple[int, str, str]], name: str, zone: str, ttl: int
         ) -> tuple[list[RR], list[RR]]:
    # backend_lookup.go SRV: every record has priority 0 and weight
    # floor(100 / number of candidates, port-less sentinels included), at least 1;
    # records deduplicated by (target, port) and glue by (target, address).
    weight = max(1, 100 // len(entries))
    answer: list[RR] = []
    extra: list[RR] = []
    seen_srv: set[tuple[str, int]] = set()
    seen_glue: set[tuple[str, str]] = set()
    for port, rel, ip in entries:
        if port < 0:
            continue
        target = f"{rel}.{zone}"
        if (rel, port) not in seen_srv:
            seen_srv.add((rel, port))
            answer.append(RR(name, _SRV, ttl=ttl, rdata=SRV(0, weight, port, target)))
        if (rel, ip) not in seen_glue:
            seen_glue.add((rel, ip))
            if ":" in ip:
                extra.append(RR(target, _AAAA, ttl=ttl, rdata=AAAA(ip)))
            else:
                extra.append(RR(target, _A, ttl=ttl, rdata=A(ip)))
    return answer, extra


def _cname(index: ZoneIndex, name: str, target: str, qtype: int, zone: str, depth: int,
           seen: set[str] | None) -> Answer:
    rr = RR(name, _CNAME, ttl=index.ttl, rdata=CNAME(target))
    if qtype == _CNAME:
        return Answer(NOERROR, [rr], [], [], True)
    seen = set() if seen is None else seen
    seen.add(name.lower())
    tlow = target.lower()
    if tlow in seen or depth >= MAX_CNAME_CHAIN:
        # A loop (or an absurd chain) stops at the CNAME itself, as CoreDNS drops
        # "x CNAME x" rather than recursing.
        return Answer(NOERROR, [rr], [], [], True)
    sub = _resolve(index, target, qtype, depth + 1, seen)
    if sub is None:
        # Outside every zone netd serves: the server forwards the target.
        return Answer(NOERROR, [rr], [], [], True, chase=target)
    # Inside the zone the chain is followed here (CoreDNS: "include the target's
    # records"); the target's rcode and SOA describe the end of the chain (RFC 6604).
    return Answer(sub.rcode, [rr, *sub.answer], sub.authority, sub.additional, True,
                  chase=sub.chase)


def _insecure_pod(index: ZoneIndex, low: str) -> list[str] | None:
    """`a-b-c-d.<ns>.pod.<zone>` in insecure mode: any well-formed address in an
    existing namespace answers (kubernetes.go findPods, podModeInsecure)."""
    rest = low[:-len(index.pod_suffix)]
    podname, dot, ns = rest.partition(".")
    if not dot or "." in ns or ns not in index.namespaces:
        return None
    # findPods: exactly three dashes and no "--" reads as IPv4, anything else as IPv6.
    if podname.count("-") == 3 and "--" not in podname:
        text = podname.replace("-", ".")
    else:
        text = podname.replace("-", ":")
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    return [str(ip)]


def _outside(index: ZoneIndex, name: str, low: str, qtype: int) -> Answer | None:
    """A reverse name outside netd's reverse zones may still be an endpoint address
    netd knows (an EndpointSlice pointing at a node or external IP): CoreDNS answers
    those PTRs too. Everything else there belongs to the upstream resolvers."""
    if qtype != _PTR:
        return None
    targets = index.ptrs.get(low)
    if not targets:
        return None
    return Answer(NOERROR, [RR(name, _PTR, ttl=index.ttl, rdata=PTR(t))
                            for t in dict.fromkeys(targets)], [], [], True)
