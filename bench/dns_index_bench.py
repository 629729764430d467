"""DNS zone index micro-benchmark (issue 5, freshness): ZoneIndex.build() time for a
cluster of 1,000 Services and 2,000 Pods, and resolve() calls/s over a query mix.

Baselines in the same run (only ratios compare on these noisy machines):
- build: the least any index must do — one pass over the same objects filling a plain
  dict name → address;
- resolve: a bare dict lookup of the lowercased name plus one dnslib RR construction.

Per-change rows: the list API (ZoneIndex.build with previous: compares every object,
O(zone)) and ZoneIndex.update with only the changed Service key, which is what
DnsIndexer runs for each (coalesced) change — O(change) over layered tables.

    .venv/bin/python bench/dns_index_bench.py [--services 1000] [--pods 2000] [--rounds 20]
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from dnslib import QTYPE, RR, A

from netd.dns.index import DnsConfig, ZoneIndex, service_key, slice_key
from netd.dns.resolver import resolve

Obj = dict[str, Any]


def synthetic(n_services: int = 1000, n_pods: int = 2000, namespaces: int = 10,
              headless_every: int = 10) -> tuple[list[Obj], list[Obj], list[Obj]]:
    """Services (every `headless_every`-th headless, StatefulSet-style hostnames), one
    EndpointSlice per Service with its share of the pods, the pods themselves."""
    services: list[Obj] = []
    slices: list[Obj] = []
    pods: list[Obj] = []
    per = max(1, n_pods // max(1, n_services))
    pod_i = 0
    for i in range(n_services):
        ns = f"ns-{i % namespaces}"
        name = f"svc-{i}"
        headless = headless_every > 0 and i % headless_every == 0
        cip = "None" if headless else f"10.96.{(i + 100) // 250}.{(i + 100) % 250 + 1}"
        services.append({"apiVersion": "v1", "kind": "Service",
                         "metadata": {"name": name, "namespace": ns},
                         "spec": {"clusterIP": cip, "clusterIPs": [cip], "type": "ClusterIP",
                                  "ports": [{"name": "http", "port": 80, "protocol": "TCP",
                                             "targetPort": 8080},
                                            {"name": "metrics", "port": 9090,
                                             "protocol": "TCP"}]}})
        endpoints = []
        for k in range(per):
            if pod_i >= n_pods:
                break
            ip = f"10.244.{pod_i // 250}.{pod_i % 250 + 2}"
            pname = f"{name}-{k}"
            pods.append({"apiVersion": "v1", "kind": "Pod",
                         "metadata": {"name": pname, "namespace": ns},
                         "spec": {"hostname": pname, "subdomain": name} if headless else {},
                         "status": {"phase": "Running", "podIP": ip,
                                    "podIPs": [{"ip": ip}]}})
            ep: Obj = {"addresses": [ip], "conditions": {"ready": True, "serving": True,
                                                         "terminating": False},
                       "targetRef": {"kind": "Pod", "namespace": ns, "name": pname}}
            if headless:
                ep["hostname"] = pname
            endpoints.append(ep)
            pod_i += 1
        slices.append({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                       "metadata": {"name": f"{name}-abcde", "namespace": ns,
                                    "labels": {"kubernetes.io/service-name": name}},
                       "addressType": "IPv4",
                       "ports": [{"name": "http", "port": 8080, "protocol": "TCP"},
                                 {"name": "metrics", "port": 9090, "protocol": "TCP"}],
                       "endpoints": endpoints})
    services.append({"apiVersion": "v1", "kind": "Service",
                     "metadata": {"name": "kube-dns", "namespace": "kube-system"},
                     "spec": {"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                              "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}})
    return services, slices, pods


def _baseline_build(services: list[Obj], pods: list[Obj]) -> dict[str, str]:
    out: dict[str, str] = {}
    for s in services:
        m = s["metadata"]
        out[f"{m['name']}.{m['namespace']}.svc.cluster.local"] = s["spec"]["clusterIP"]
    for p in pods:
        m = p["metadata"]
        out[f"{m['name']}.{m['namespace']}.pod.cluster.local"] = p["status"]["podIP"]
    return out


def _ms(samples: list[float]) -> str:
    s = sorted(samples)
    return (f"p50 {statistics.median(s) * 1e3:7.2f} ms  "
            f"p99 {s[min(len(s) - 1, int(len(s) * 0.99))] * 1e3:7.2f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--pods", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--queries", type=int, default=50_000)
    args = ap.parse_args()
    services, slices, pods = synthetic(args.services, args.pods)

    for mode in ("disabled", "verified"):
        cfg = DnsConfig(pod_mode=mode)
        build: list[float] = []
        base: list[float] = []
        idx = None
        for r in range(args.rounds):
            t0 = time.perf_counter()
            idx = ZoneIndex.build(services, slices, pods, cfg, generation=r)
            build.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            _baseline_build(services, pods)
            base.append(time.perf_counter() - t0)
        assert idx is not None
        ratio = statistics.median(build) / statistics.median(base)
        print(f"full build        pods={mode:8s} {_ms(build)}  names {idx.counts['names']:6d}"
              f"  | baseline dict {_ms(base)}  ratio {ratio:5.1f}x  (target < 50 ms)")
        # What the indexer does per change: one slice replaced by a new object (an
        # endpoint turned unready), the rest reused from the previous index.
        inc: list[float] = []
        for r in range(args.rounds):
            i = (r * 37) % len(slices)
            changed = dict(slices[i])
            changed["endpoints"] = [dict(e, conditions={"ready": r % 2 == 0})
                                    for e in slices[i]["endpoints"]]
            slices[i] = changed
            t0 = time.perf_counter()
            idx = ZoneIndex.build(services, slices, pods, cfg, generation=r, previous=idx)
            inc.append(time.perf_counter() - t0)
        ratio = statistics.median(inc) / statistics.median(base)
        print(f"1-change list API pods={mode:8s} {_ms(inc)}  "
              f"                | ratio to baseline {ratio:5.2f}x  (compares every object)")
        # What DnsIndexer does per change: ZoneIndex.update with the changed key only
        # (layered tables: O(change)); many rounds so overlays grow and compact.
        upd: list[float] = []
        by_key: dict[Any, list[Obj]] = {}
        for sl in slices:
            by_key.setdefault(slice_key(sl), []).append(sl)
        svc_of = {service_key(s): s for s in services}
        for r in range(args.rounds * 50):
            i = (r * 37) % len(slices)
            changed = dict(slices[i])
            changed["endpoints"] = [dict(e, conditions={"ready": r % 2 == 0})
                                    for e in slices[i]["endpoints"]]
            slices[i] = changed
            key = slice_key(changed)
            by_key[key] = [changed if o["metadata"]["name"] == changed["metadata"]["name"]
                           else o for o in by_key[key]]
            t0 = time.perf_counter()
            nxt = ZoneIndex.update(idx, {key: (svc_of.get(key), by_key[key])},
                                   generation=r)
            upd.append(time.perf_counter() - t0)
            assert nxt is not None
            idx = nxt
        ratio = statistics.median(upd) / statistics.median(base)
        print(f"1-change update() pods={mode:8s} {_ms(upd)}  "
              f"                | ratio to baseline {ratio:5.3f}x  (what the indexer runs)")

    # Lookups go through layered tables with a non-empty overlay here (the index
    # above, after its updates), as in the daemon under churn.
    mix = [("svc-1.ns-1.svc.cluster.local", QTYPE.A),
           ("_http._tcp.svc-2.ns-2.svc.cluster.local", QTYPE.SRV),
           ("svc-10.ns-0.svc.cluster.local", QTYPE.A),       # headless, 2 endpoints
           ("nope.ns-3.svc.cluster.local", QTYPE.A),         # NXDOMAIN
           ("svc-3.ns-3.svc.cluster.local", QTYPE.AAAA),     # NODATA
           ("10-244-0-2.ns-0.pod.cluster.local", QTYPE.A),
           ("2.0.244.10.in-addr.arpa", QTYPE.PTR)]
    n = args.queries
    t0 = time.perf_counter()
    for i in range(n):
        q, t = mix[i % len(mix)]
        resolve(idx, q, t)
    dt = time.perf_counter() - t0
    table = {q: "10.96.0.1" for q, _ in mix}
    t0 = time.perf_counter()
    for i in range(n):
        q, t = mix[i % len(mix)]
        ip = table.get(q.lower())
        RR(q, t, ttl=5, rdata=A(ip or "10.0.0.1"))
    bdt = time.perf_counter() - t0
    print(f"resolve() mix of {len(mix)}: {n / dt:9.0f} calls/s  | baseline dict+RR "
          f"{n / bdt:9.0f} calls/s  ratio {dt / bdt:4.1f}x slower")


if __name__ == "__main__":
    main()
