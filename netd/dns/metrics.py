"""Prometheus metrics of the DNS server, under CoreDNS's names so dashboards and alerts
written for a cluster's CoreDNS work unchanged:

  coredns_dns_requests_total{server,zone,view,proto,family,type}
  coredns_dns_responses_total{server,zone,view,rcode,plugin}
  coredns_dns_request_duration_seconds{server,zone,view,type}   (histogram)
  coredns_cache_hits_total{server,type,view}, coredns_cache_misses_total{server,view}
  coredns_forward_requests_total{to}, coredns_forward_responses_total{to,rcode}

The per-query cost is a few list increments: each listener owns a `Stats` with flat
lists indexed by a small type slot and the rcode; `render()` aggregates on scrape.
"""
from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

# CoreDNS: prometheus.ExponentialBuckets(0.00025, 2, 16).
BUCKETS: tuple[float, ...] = tuple(0.00025 * 2 ** i for i in range(16))
FIRST_BUCKET = BUCKETS[0]

# CoreDNS reports these types by name and everything else as "other"
# (plugin/metrics/vars/monitor.go monitorType).
TYPE_NAMES: tuple[str, ...] = ("A", "AAAA", "NS", "PTR", "SRV", "TXT", "SOA", "CNAME", "MX",
                               "ANY", "HTTPS", "SVCB", "NAPTR", "DS", "DNSKEY", "IXFR", "AXFR",
                               "other")
_TYPE_CODES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16,
               "AAAA": 28, "SRV": 33, "NAPTR": 35, "DS": 43, "DNSKEY": 48, "SVCB": 64,
               "HTTPS": 65, "IXFR": 251, "AXFR": 252, "ANY": 255}
_SLOT_OF_CODE = {code: TYPE_NAMES.index(name) for name, code in _TYPE_CODES.items()}
OTHER_SLOT = len(TYPE_NAMES) - 1
N_TYPES = len(TYPE_NAMES)

RCODE_NAMES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP",
               5: "REFUSED", 6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH",
               10: "NOTZONE", 16: "BADVERS"}
N_RCODES = 24


def type_slot(qtype: int) -> int:
    return _SLOT_OF_CODE.get(qtype, OTHER_SLOT)


@dataclass
class Stats:
    """Counters of one listener (one protocol and address family)."""
    server: str
    proto: str
    family: str
    requests: list[int] = field(default_factory=lambda: [0] * N_TYPES)
    responses: list[int] = field(default_factory=lambda: [0] * N_RCODES)
    # duration histogram per type slot: bucket counts (+Inf last) and sums
    buckets: list[list[int]] = field(
        default_factory=lambda: [[0] * (len(BUCKETS) + 1) for _ in range(N_TYPES)])
    sums: list[float] = field(default_factory=lambda: [0.0] * N_TYPES)

    def observe(self, slot: int, rcode: int, seconds: float) -> None:
        self.requests[slot] += 1
        self.responses[rcode if rcode < N_RCODES else N_RCODES - 1] += 1
        self.buckets[slot][0 if seconds <= FIRST_BUCKET else bisect_left(BUCKETS, seconds)] += 1
        self.sums[slot] += seconds

    def observe_many(self, slots: list[int], rcodes: list[int], seconds: float) -> None:
        """A batch of queries answered together (netd.dns.udpbatch): `slots[t]` of
        type slot t, `rcodes[r]` with rcode r, each taking `seconds`."""
        bucket = 0 if seconds <= FIRST_BUCKET else bisect_left(BUCKETS, seconds)
        for slot, n in enumerate(slots):
            if n:
                self.requests[slot] += n
                self.buckets[slot][bucket] += n
                self.sums[slot] += seconds * n
        for rcode, n in enumerate(rcodes):
            if n:
                self.responses[rcode] += n


@dataclass
class Metrics:
    stats: list[Stats] = field(default_factory=list)
    cache_hits: dict[str, int] = field(default_factory=lambda: {"success": 0, "denial": 0})
    cache_misses: int = 0
    forward_requests: dict[str, int] = field(default_factory=dict)
    forward_responses: dict[tuple[str, str], int] = field(default_factory=dict)

    def listener(self, server: str, proto: str, family: str) -> Stats:
        s = Stats(server, proto, family)
        self.stats.append(s)
        return s

    def forwarded(self, to: str, rcode: int | None) -> None:
        self.forward_requests[to] = self.forward_requests.get(to, 0) + 1
        key = (to, "timeout" if rcode is None else RCODE_NAMES.get(rcode, str(rcode)))
        self.forward_responses[key] = self.forward_responses.get(key, 0) + 1

    def render(self) -> str:
        out: list[str] = []
        _render_requests(out, self.stats)
        _render_responses(out, self.stats)
        _render_durations(out, self.stats)
        out.append("# HELP coredns_cache_hits_total The count of cache hits.")
        out.append("# TYPE coredns_cache_hits_total counter")
        for kind, n in sorted(self.cache_hits.items()):
            out.append(f'coredns_cache_hits_total{{server="dns://:53",type="{kind}",'
                       f'view=""}} {n}')
        out.append("# HELP coredns_cache_misses_total The count of cache misses.")
        out.append("# TYPE coredns_cache_misses_total counter")
        out.append(f'coredns_cache_misses_total{{server="dns://:53",view=""}} '
                   f'{self.cache_misses}')
        if self.forward_requests:
            out.append("# HELP coredns_forward_requests_total Counter of requests made per "
                       "upstream.")
            out.append("# TYPE coredns_forward_requests_total counter")
            for to, n in sorted(self.forward_requests.items()):
                out.append(f'coredns_forward_requests_total{{to="{to}"}} {n}')
            out.append("# HELP coredns_forward_responses_total Counter of responses received "
                       "per upstream.")
            out.append("# TYPE coredns_forward_responses_total counter")
            for (to, rc), n in sorted(self.forward_responses.items()):
                out.append(f'coredns_forward_responses_total{{rcode="{rc}",to="{to}"}} {n}')
        return "\n".join(out) + "\n"


def _render_requests(out: list[str], stats: list[Stats]) -> None:
    out.append("# HELP coredns_dns_requests_total Counter of DNS requests made per zone, "
               "protocol and family.")
    out.append("# TYPE coredns_dns_requests_total counter")
    agg: dict[tuple[str, str, str, str], int] = {}
    for s in stats:
        for slot, n in enumerate(s.requests):
            if n:
                key = (s.server, s.proto, s.family, TYPE_NAMES[slot])
                agg[key] = agg.get(key, 0) + n
    for (server, proto, fam, typ), n in sorted(agg.items()):
        out.append(f'coredns_dns_requests_total{{family="{fam}",proto="{proto}",'
                   f'server="{server}",type="{typ}",view="",zone="."}} {n}')


def _render_responses(out: list[str], stats: list[Stats]) -> None:
    out.append("# HELP coredns_dns_responses_total Counter of response status codes.")
    out.append("# TYPE coredns_dns_responses_total counter")
    agg: dict[tuple[str, str], int] = {}
    for s in stats:
        for rcode, n in enumerate(s.responses):
            if n:
                key = (s.server, RCODE_NAMES.get(rcode, str(rcode)))
                agg[key] = agg.get(key, 0) + n
    for (server, rc), n in sorted(agg.items()):
        out.append(f'coredns_dns_responses_total{{plugin="",rcode="{rc}",server="{server}",'
                   f'view="",zone="."}} {n}')


def _render_durations(out: list[str], stats: list[Stats]) -> None:
    name = "coredns_dns_request_duration_seconds"
    out.append(f"# HELP {name} Histogram of the time (in seconds) each request took per zone.")
    out.append(f"# TYPE {name} histogram")
    agg: dict[tuple[str, int], tuple[list[int], float]] = {}
    for s in stats:
        for slot in range(N_TYPES):
            counts = s.buckets[slot]
            if not any(counts):
                continue
            key = (s.server, slot)
            prev, total = agg.get(key, ([0] * len(counts), 0.0))
            agg[key] = ([a + b for a, b in zip(prev, counts)], total + s.sums[slot])
    for (server, slot), (counts, total) in sorted(agg.items()):
        labels = f'server="{server}",type="{TYPE_NAMES[slot]}",view="",zone="."'
        running = 0
        for le, n in zip(BUCKETS, counts):
            running += n
            out.append(f'{name}_bucket{{{labels},le="{le:g}"}} {running}')
        running += counts[-1]
        out.append(f'{name}_bucket{{{labels},le="+Inf"}} {running}')
        out.append(f"{name}_sum{{{labels}}} {total:.9g}")
        out.append(f"{name}_count{{{labels}}} {running}")


METRICS = Metrics()


def render() -> str:
    """The daemon's /metrics body for DNS (Prometheus text format 0.0.4)."""
    return METRICS.render()
