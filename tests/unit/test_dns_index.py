"""ZoneIndex.build(): reverse zones, naming helpers, namespaces, incremental reuse
(equivalent to a full build), and the build cost at 1,000 services / 2,000 pods."""
from __future__ import annotations

import random
import time
from typing import Any

import pytest

from bench.dns_index_bench import synthetic
from netd.dns.fragment import dashed, reverse_name
from netd.dns.index import DnsConfig, ZoneIndex, reverse_zones
from tests.unit.test_dns_resolver import SERVICES, SLICES, eps, ep, svc

Obj = dict[str, Any]


@pytest.mark.parametrize("cidr,zones", [
    ("10.244.0.0/16", ["244.10.in-addr.arpa"]),
    ("10.0.0.0/8", ["10.in-addr.arpa"]),
    ("192.168.1.0/24", ["1.168.192.in-addr.arpa"]),
    ("10.96.0.0/12", [f"{i}.10.in-addr.arpa" for i in range(96, 112)]),
    ("10.96.0.0/23", ["0.96.10.in-addr.arpa", "1.96.10.in-addr.arpa"]),
    ("fd00:10:96::/108", ["0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f"
                          ".ip6.arpa"[len("0.0.0.0.0."):]]),
    ("fd00::/62", [f"{n}.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa" for n in range(4)]),
    ("0.0.0.0/0", []),
], ids=["v4-16", "v4-8", "v4-24", "v4-12-expands", "v4-23-expands", "v6-108",
        "v6-62-expands", "default-route"])
def test_reverse_zones(cidr: str, zones: list[str]) -> None:
    assert sorted(reverse_zones(cidr)) == sorted(zones)


@pytest.mark.parametrize("ip,name,rev", [
    ("10.244.1.5", "10-244-1-5", "5.1.244.10.in-addr.arpa"),
    ("fd00::5", "fd00--5", "5.0.0.0" + ".0" * 24 + ".0.0.d.f.ip6.arpa"),
    ("fd00::", "fd00--0", "0.0.0.0" + ".0" * 24 + ".0.0.d.f.ip6.arpa"),
], ids=["v4", "v6", "v6-trailing"])
def test_names(ip: str, name: str, rev: str) -> None:
    assert dashed(ip) == name
    assert reverse_name(ip) == rev


def test_bad_pod_mode() -> None:
    with pytest.raises(ValueError):
        ZoneIndex.build([], [], [], DnsConfig(pod_mode="maybe"))


def test_namespaces_inferred_without_namespace_objects() -> None:
    idx = ZoneIndex.build([svc("a", ["10.96.0.1"], ns="team")], [], [], DnsConfig())
    assert {"team", "default", "kube-system", "kube-public", "kube-node-lease"} <= \
        idx.namespaces
    assert idx.exists("team.svc.cluster.local")
    given = ZoneIndex.build([], [], [], DnsConfig(), namespaces=[{"metadata": {
        "name": "only"}}])
    assert given.namespaces == frozenset({"only"})
    assert not given.exists("default.svc.cluster.local")


def test_generation_and_serial() -> None:
    idx = ZoneIndex.build([], [], [], DnsConfig(), generation=7)
    assert (idx.generation, idx.serial) == (7, 7)
    idx = ZoneIndex.build([], [], [], DnsConfig(), generation=7, serial=1700000000)
    assert idx.serial == 1700000000


def test_counts() -> None:
    idx = ZoneIndex.build(SERVICES, SLICES, [], DnsConfig())
    assert idx.counts["services"] == len(SERVICES)
    # ready (or publishNotReady) addresses of slices whose Service exists
    assert idx.counts["endpoints"] == 2 + 4 + 2 + 0 + 1 + 1 + 1


def _snapshot(idx: ZoneIndex) -> tuple[Any, ...]:
    return (idx.addrs, idx.srvs, idx.ptrs, idx.cnames, idx.txts, idx.ents, idx.namespaces,
            idx.dns_ips)


def test_incremental_reuses_unchanged_fragments() -> None:
    services, slices = list(SERVICES), list(SLICES)
    pods: list[Obj] = []
    first = ZoneIndex.build(services, slices, pods, DnsConfig())
    slices[0] = eps("web", [ep("10.244.1.99")],
                    [{"name": "http", "port": 8080, "protocol": "TCP"}])
    second = ZoneIndex.build(services, slices, pods, DnsConfig(), previous=first)
    web = ("default", "web")
    nginx = ("default", "nginx")
    assert second._fragments[nginx] is first._fragments[nginx]
    assert second._fragments[web] is not first._fragments[web]
    assert "10-244-1-99.web.default.svc.cluster.local" in second.addrs
    assert "10-244-1-5.web.default.svc.cluster.local" not in second.addrs
    assert "5.1.244.10.in-addr.arpa" not in second.ptrs
    # A different configuration never reuses anything.
    third = ZoneIndex.build(services, slices, pods, DnsConfig(ttl=9), previous=second)
    assert third._fragments[nginx] is not second._fragments[nginx]
    assert _snapshot(third) == _snapshot(ZoneIndex.build(services, slices, pods,
                                                         DnsConfig(ttl=9)))


def test_incremental_equals_full_build_under_random_changes() -> None:
    rng = random.Random(5)
    services, slices, pods = synthetic(60, 120, headless_every=3)
    cfg = DnsConfig(pod_mode="verified")
    idx = ZoneIndex.build(services, slices, pods, cfg)
    for step in range(60):
        i = rng.randrange(len(slices))
        action = rng.choice(["ready", "hostname", "delete-slice", "delete-svc", "ports"])
        if action == "ready":
            sl = dict(slices[i])
            sl["endpoints"] = [dict(e, conditions={"ready": rng.random() < 0.5})
                               for e in sl["endpoints"]]
            slices[i] = sl
        elif action == "hostname":
            sl = dict(slices[i])
            sl["endpoints"] = [dict(e, hostname=f"h{step}") for e in sl["endpoints"]]
            slices[i] = sl
        elif action == "delete-slice":
            slices.pop(i)
        elif action == "delete-svc" and len(services) > 2:
            services.pop(rng.randrange(len(services) - 1))
        elif action == "ports":
            s = dict(services[i % len(services)])
            s["spec"] = dict(s["spec"], ports=[{"name": "x", "port": 1, "protocol": "UDP"}])
            services[i % len(services)] = s
        idx = ZoneIndex.build(services, slices, pods, cfg, generation=step, previous=idx)
        full = ZoneIndex.build(services, slices, pods, cfg, generation=step)
        assert _snapshot(idx) == _snapshot(full), (step, action)


def test_headless_becoming_empty_then_ready_again() -> None:
    cfg = DnsConfig()
    services = [svc("h", ["None"])]
    slices = [eps("h", [ep("10.244.0.9", "h-0")],
                  [{"name": "http", "port": 80, "protocol": "TCP"}])]
    a = ZoneIndex.build(services, slices, [], cfg)
    assert a.exists("_tcp.h.default.svc.cluster.local")
    slices = [eps("h", [ep("10.244.0.9", "h-0", ready=False)],
                  [{"name": "http", "port": 80, "protocol": "TCP"}])]
    b = ZoneIndex.build(services, slices, [], cfg, previous=a)
    for name in ("h.default.svc.cluster.local", "_http._tcp.h.default.svc.cluster.local",
                 "_tcp.h.default.svc.cluster.local", "h-0.h.default.svc.cluster.local"):
        assert not b.exists(name), name
    assert b.exists("default.svc.cluster.local")


def test_build_cost_at_1000_services_2000_pods() -> None:
    """The freshness budget (50 ms p99 from change to answer) needs the rebuild well
    under it. Measured, printed; asserted loosely (shared, noisy CI machines): a full
    build under 0.5 s and a one-change rebuild under half of a full build."""
    services, slices, pods = synthetic(1000, 2000)
    cfg = DnsConfig(pod_mode="verified")
    fulls, incs = [], []
    idx = ZoneIndex.build(services, slices, pods, cfg)
    for r in range(5):
        t0 = time.perf_counter()
        idx = ZoneIndex.build(services, slices, pods, cfg)
        fulls.append(time.perf_counter() - t0)
        sl = dict(slices[r])
        sl["endpoints"] = []
        slices[r] = sl
        t0 = time.perf_counter()
        idx = ZoneIndex.build(services, slices, pods, cfg, previous=idx)
        incs.append(time.perf_counter() - t0)
    full, inc = min(fulls), min(incs)
    print(f"\nzone index 1000 svc/2000 pods: full {full * 1e3:.1f} ms, "
          f"1-change {inc * 1e3:.1f} ms, {idx.counts}")
    assert idx.counts["services"] == 1001 and idx.counts["pods"] == 2000
    assert full < 0.5
    assert inc < full * 0.75
