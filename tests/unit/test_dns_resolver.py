"""resolve(): table of (qname, qtype) → rcode, answer, authority, additional, from the
Kubernetes DNS specification (schema 1.1.0) and CoreDNS's kubernetes plugin tests
(handler_test.go, handler_case_test.go, handler_pod_*_test.go, reverse_test.go)."""
from __future__ import annotations

from typing import Any

import pytest
from dnslib import QTYPE, RCODE, RR

from netd.dns.index import DnsConfig, ZoneIndex
from netd.dns.resolver import Answer, resolve

Obj = dict[str, Any]
SERIAL = 1499347823
SOA = "cluster.local. 5 SOA ns.dns.cluster.local. hostmaster.cluster.local. " \
      f"{SERIAL} 7200 1800 86400 5"
CFG = DnsConfig(domain="cluster.local", ttl=5, pod_mode="disabled",
                service_cidr="10.96.0.0/12,fd00:10:96::/108", pod_cidr="10.244.0.0/16")


def svc(name: str, ips: list[str] | None, ports: list[Obj] | None = None,
        ns: str = "default", **spec: Any) -> Obj:
    body: Obj = {"ports": ports if ports is not None else [
        {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}], **spec}
    if ips is not None:
        body["clusterIP"] = ips[0]
        body["clusterIPs"] = ips
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns}, "spec": body}


def ep(ip: str, hostname: str | None = None, ready: bool | None = True) -> Obj:
    out: Obj = {"addresses": [ip]}
    if ready is not None:
        out["conditions"] = {"ready": ready}
    if hostname:
        out["hostname"] = hostname
    return out


def eps(service: str, endpoints: list[Obj], ports: list[Obj] | None = None,
        ns: str = "default", name: str | None = None, family: str = "IPv4") -> Obj:
    sl: Obj = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"name": name or f"{service}-abcde", "namespace": ns,
                            "labels": {"kubernetes.io/service-name": service}},
               "addressType": family, "endpoints": endpoints}
    if ports is not None:
        sl["ports"] = ports
    return sl


def pod(name: str, ip: str, ns: str = "default", **meta: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, **meta},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}}


HTTP = [{"name": "http", "port": 8080, "protocol": "TCP"}]
SERVICES = [
    svc("web", ["10.96.0.20"], [{"name": "http", "port": 80, "protocol": "TCP"},
                                {"name": "dns", "port": 53, "protocol": "UDP"}]),
    svc("nginx", ["None"], [{"name": "web", "port": 80, "protocol": "TCP"}]),
    svc("multi", ["None"], [{"name": "http", "port": 80, "protocol": "TCP"},
                            {"name": "metrics", "port": 9090, "protocol": "TCP"}]),
    svc("unready", ["None"]),
    svc("pub", ["None"], publishNotReadyAddresses=True),
    svc("noports", ["None"], []),
    svc("ext", None, [], type="ExternalName", externalName="example.com"),
    svc("ext-in", None, [], type="ExternalName",
        externalName="web.default.svc.cluster.local"),
    svc("ext-chain", None, [], type="ExternalName",
        externalName="ext.default.svc.cluster.local."),
    svc("ext-missing", None, [], type="ExternalName",
        externalName="nothere.default.svc.cluster.local"),
    svc("ext-ip", None, [], type="ExternalName", externalName="1.2.3.4"),
    svc("ext-loop", None, [], type="ExternalName",
        externalName="ext-loop.default.svc.cluster.local"),
    svc("v6", ["fd00:10:96::20"]),
    svc("dual", ["10.96.0.30", "fd00:10:96::30"]),
    svc("pending", None),
    svc("kube-dns", ["10.96.0.10"], [{"name": "dns", "port": 53, "protocol": "UDP"},
                                     {"name": "dns-tcp", "port": 53, "protocol": "TCP"}],
        ns="kube-system"),
]
SLICES = [
    eps("web", [ep("10.244.1.5"), ep("10.244.1.6"), ep("10.244.1.7", ready=False)],
        [{"name": "http", "port": 8080, "protocol": "TCP"},
         {"name": "dns", "port": 5353, "protocol": "UDP"}]),
    eps("nginx", [ep("10.244.1.10", "web-0"), ep("10.244.1.11", "web-1"),
                  ep("10.244.1.12"), ep("10.244.1.13", "web-3", ready=False),
                  ep("10.244.1.14", ready=None)],
        [{"name": "web", "port": 80, "protocol": "TCP"}]),
    eps("multi", [ep("10.244.2.1"), ep("10.244.2.2")],
        [{"name": "http", "port": 80, "protocol": "TCP"},
         {"name": "metrics", "port": 9090, "protocol": "TCP"}]),
    eps("unready", [ep("10.244.2.5", ready=False)], HTTP),
    eps("pub", [ep("10.244.2.9", ready=False)], HTTP),
    eps("noports", [ep("10.244.2.20")]),
    eps("ghost", [ep("10.244.2.30")], HTTP),    # a slice whose Service is gone
    eps("dual", [ep("fd00:10:244::5")], HTTP, name="dual-v6", family="IPv6"),
]
PODS = [pod("web-abc", "10.244.1.5"), pod("other-pod", "10.244.3.3", ns="other"),
        pod("web6", "fd00:10:244::5")]
NAMESPACES = [{"metadata": {"name": n}} for n in ("default", "kube-system", "other")]


def build(cfg: DnsConfig = CFG, **kw: Any) -> ZoneIndex:
    return ZoneIndex.build(kw.get("services", SERVICES), kw.get("slices", SLICES),
                           kw.get("pods", PODS), cfg, namespaces=NAMESPACES,
                           serial=SERIAL)


INDEX = build()


def fmt(rr: RR) -> str:
    return f"{rr.rname} {rr.ttl} {QTYPE[rr.rtype]} {rr.rdata}"


def fmts(rrs: list[RR]) -> list[str]:
    return sorted(fmt(r) for r in rrs)


def A(name: str, *ips: str, ttl: int = 5) -> list[str]:
    return [f"{name} {ttl} {'AAAA' if ':' in ip else 'A'} {ip}" for ip in ips]


def srv(name: str, weight: int, port: int, target: str) -> str:
    return f"{name} 5 SRV 0 {weight} {port} {target}"


D = "default.svc.cluster.local."
NX, OK = RCODE.NXDOMAIN, RCODE.NOERROR
Q = QTYPE

# (id, qname, qtype, rcode, answer, authority, additional)
ROWS: list[tuple[str, str, int, int, list[str], list[str], list[str]]] = [
    # --- ClusterIP services (spec 2.3.1)
    ("clusterip-a", "web." + D, Q.A, OK, A("web." + D, "10.96.0.20"), [], []),
    ("clusterip-a-no-trailing-dot", "web.default.svc.cluster.local", Q.A, OK,
     A("web." + D, "10.96.0.20"), [], []),
    ("clusterip-aaaa-nodata", "web." + D, Q.AAAA, OK, [], [SOA], []),
    ("clusterip-txt-nodata", "web." + D, Q.TXT, OK, [], [SOA], []),
    ("clusterip-mx-nodata", "web." + D, Q.MX, OK, [], [SOA], []),
    ("clusterip-srv-all-ports", "web." + D, Q.SRV, OK,
     sorted([srv("web." + D, 50, 80, "web." + D), srv("web." + D, 50, 53, "web." + D)]),
     [], A("web." + D, "10.96.0.20")),
    ("clusterip-srv-named-port", "_http._tcp.web." + D, Q.SRV, OK,
     [srv("_http._tcp.web." + D, 100, 80, "web." + D)], [], A("web." + D, "10.96.0.20")),
    ("clusterip-srv-udp-port", "_dns._udp.web." + D, Q.SRV, OK,
     [srv("_dns._udp.web." + D, 100, 53, "web." + D)], [], A("web." + D, "10.96.0.20")),
    ("clusterip-srv-wrong-proto-nxdomain", "_dns._tcp.web." + D, Q.SRV, NX, [], [SOA], []),
    ("clusterip-srv-unknown-port-nxdomain", "_nope._tcp.web." + D, Q.SRV, NX, [], [SOA],
     []),
    ("clusterip-port-name-answers-a", "_http._tcp.web." + D, Q.A, OK,
     A("_http._tcp.web." + D, "10.96.0.20"), [], []),
    ("proto-ent-nodata", "_tcp.web." + D, Q.SRV, OK, [], [SOA], []),
    ("proto-ent-nodata-a", "_udp.web." + D, Q.A, OK, [], [SOA], []),
    ("clusterip-endpoint-name", "10-244-1-5.web." + D, Q.A, OK,
     A("10-244-1-5.web." + D, "10.244.1.5"), [], []),
    ("clusterip-unready-endpoint-nxdomain", "10-244-1-7.web." + D, Q.A, NX, [], [SOA],
     []),
    ("ipv6-clusterip-aaaa", "v6." + D, Q.AAAA, OK, A("v6." + D, "fd00:10:96::20"), [], []),
    ("ipv6-clusterip-a-nodata", "v6." + D, Q.A, OK, [], [SOA], []),
    ("dual-stack-a", "dual." + D, Q.A, OK, A("dual." + D, "10.96.0.30"), [], []),
    ("dual-stack-aaaa", "dual." + D, Q.AAAA, OK, A("dual." + D, "fd00:10:96::30"), [],
     []),
    ("dual-stack-srv-dedup", "_http._tcp.dual." + D, Q.SRV, OK,
     [srv("_http._tcp.dual." + D, 50, 80, "dual." + D)], [],
     sorted(A("dual." + D, "10.96.0.30") + A("dual." + D, "fd00:10:96::30"))),
    ("service-without-ip-nxdomain", "pending." + D, Q.A, NX, [], [SOA], []),
    ("unknown-service-nxdomain", "nope." + D, Q.A, NX, [], [SOA], []),
    ("slice-without-service-nxdomain", "ghost." + D, Q.A, NX, [], [SOA], []),
    ("too-deep-nxdomain", "a.b.c.web." + D, Q.A, NX, [], [SOA], []),
    # --- headless services (spec 2.4)
    ("headless-a-ready-only", "nginx." + D, Q.A, OK,
     sorted(A("nginx." + D, "10.244.1.10", "10.244.1.11", "10.244.1.12", "10.244.1.14")),
     [], []),
    ("headless-hostname", "web-0.nginx." + D, Q.A, OK,
     A("web-0.nginx." + D, "10.244.1.10"), [], []),
    ("headless-dashed-id", "10-244-1-12.nginx." + D, Q.A, OK,
     A("10-244-1-12.nginx." + D, "10.244.1.12"), [], []),
    ("headless-hostname-hides-dashed", "10-244-1-10.nginx." + D, Q.A, NX, [], [SOA], []),
    ("headless-unready-hostname-nxdomain", "web-3.nginx." + D, Q.A, NX, [], [SOA], []),
    ("headless-nil-ready-counts", "10-244-1-14.nginx." + D, Q.A, OK,
     A("10-244-1-14.nginx." + D, "10.244.1.14"), [], []),
    ("headless-srv", "_web._tcp.nginx." + D, Q.SRV, OK,
     sorted([srv("_web._tcp.nginx." + D, 25, 80, "web-0.nginx." + D),
             srv("_web._tcp.nginx." + D, 25, 80, "web-1.nginx." + D),
             srv("_web._tcp.nginx." + D, 25, 80, "10-244-1-12.nginx." + D),
             srv("_web._tcp.nginx." + D, 25, 80, "10-244-1-14.nginx." + D)]), [],
     sorted(A("web-0.nginx." + D, "10.244.1.10") + A("web-1.nginx." + D, "10.244.1.11")
            + A("10-244-1-12.nginx." + D, "10.244.1.12")
            + A("10-244-1-14.nginx." + D, "10.244.1.14"))),
    ("headless-endpoint-srv", "web-0.nginx." + D, Q.SRV, OK,
     [srv("web-0.nginx." + D, 100, 80, "web-0.nginx." + D)], [],
     A("web-0.nginx." + D, "10.244.1.10")),
    ("headless-endpoint-aaaa-nodata", "web-1.nginx." + D, Q.AAAA, OK, [], [SOA], []),
    ("headless-below-endpoint-nxdomain", "x.web-0.nginx." + D, Q.A, NX, [], [SOA], []),
    ("multi-port-headless-srv-nxm", "multi." + D, Q.SRV, OK,
     sorted([srv("multi." + D, 25, p, f"10-244-2-{i}.multi." + D)
             for p in (80, 9090) for i in (1, 2)]), [],
     sorted(A("10-244-2-1.multi." + D, "10.244.2.1")
            + A("10-244-2-2.multi." + D, "10.244.2.2"))),
    ("multi-port-headless-one-port", "_metrics._tcp.multi." + D, Q.SRV, OK,
     sorted([srv("_metrics._tcp.multi." + D, 50, 9090, f"10-244-2-{i}.multi." + D)
             for i in (1, 2)]), [],
     sorted(A("10-244-2-1.multi." + D, "10.244.2.1")
            + A("10-244-2-2.multi." + D, "10.244.2.2"))),
    ("headless-no-ready-endpoint-nxdomain", "unready." + D, Q.A, NX, [], [SOA], []),
    ("headless-no-ready-port-nxdomain", "_http._tcp.unready." + D, Q.SRV, NX, [], [SOA],
     []),
    ("headless-no-ready-proto-ent-nxdomain", "_tcp.unready." + D, Q.SRV, NX, [], [SOA],
     []),
    ("publish-not-ready", "pub." + D, Q.A, OK, A("pub." + D, "10.244.2.9"), [], []),
    ("portless-headless-a", "noports." + D, Q.A, OK, A("noports." + D, "10.244.2.20"),
     [], []),
    ("portless-headless-srv-nodata", "noports." + D, Q.SRV, OK, [], [SOA], []),
    ("headless-ipv6-endpoint-name", "fd00-10-244--5.dual." + D, Q.AAAA, OK,
     A("fd00-10-244--5.dual." + D, "fd00:10:244::5"), [], []),
    # --- case preservation (handler_case_test.go)
    ("case-a", "SvC1.TeStNs.SvC.cLuStEr.LoCaL.".replace("SvC1.TeStNs", "WeB.DeFaUlT"),
     Q.A, OK, A("WeB.DeFaUlT.SvC.cLuStEr.LoCaL.", "10.96.0.20"), [], []),
    ("case-srv-target-keeps-zone-case", "_HtTp._TcP.wEb.DeFaUlT.SvC.cLuStEr.LoCaL.",
     Q.SRV, OK,
     [srv("_HtTp._TcP.wEb.DeFaUlT.SvC.cLuStEr.LoCaL.", 100, 80,
          "web.default.svc.cLuStEr.LoCaL.")], [],
     A("web.default.svc.cLuStEr.LoCaL.", "10.96.0.20")),
    ("case-nxdomain-soa", "not-a-service.default.svc.ClUsTeR.lOcAl.", Q.A, NX, [],
     ["ClUsTeR.lOcAl. 5 SOA ns.dns.ClUsTeR.lOcAl. hostmaster.ClUsTeR.lOcAl. "
      f"{SERIAL} 7200 1800 86400 5"], []),
    ("case-soa-apex", "Cluster.local.", Q.SOA, OK,
     ["Cluster.local. 5 SOA ns.dns.Cluster.local. hostmaster.Cluster.local. "
      f"{SERIAL} 7200 1800 86400 5"], [], []),
    # --- apex, empty non-terminals, NXDOMAIN vs NODATA
    ("apex-soa", "cluster.local.", Q.SOA, OK, [SOA], [], []),
    ("apex-ns", "cluster.local.", Q.NS, OK,
     ["cluster.local. 5 NS kube-dns.kube-system.svc.cluster.local."], [],
     A("kube-dns.kube-system.svc.cluster.local.", "10.96.0.10")),
    ("apex-a-nodata", "cluster.local.", Q.A, OK, [], [SOA], []),
    ("ns-below-apex-nodata", "svc.cluster.local.", Q.NS, OK, [], [SOA], []),
    ("soa-below-apex-nodata", "web." + D, Q.SOA, OK, [], [SOA], []),
    ("svc-ent-nodata", "svc.cluster.local.", Q.A, OK, [], [SOA], []),
    ("svc-ent-txt-nodata", "svc.cluster.local.", Q.TXT, OK, [], [SOA], []),
    ("pod-ent-nodata", "pod.cluster.local.", Q.A, OK, [], [SOA], []),
    ("namespace-ent-nodata", D, Q.A, OK, [], [SOA], []),
    ("namespace-without-services-nodata", "other.svc.cluster.local.", Q.A, OK, [], [SOA],
     []),
    ("unknown-namespace-nxdomain", "nons.svc.cluster.local.", Q.A, NX, [], [SOA], []),
    ("service-in-unknown-namespace-nxdomain", "web.nons.svc.cluster.local.", Q.A, NX, [],
     [SOA], []),
    ("not-svc-or-pod-nxdomain", "foo.cluster.local.", Q.A, NX, [], [SOA], []),
    ("wildcard-not-supported", "*." + D, Q.A, NX, [], [SOA], []),
    ("dns-version-txt", "dns-version.cluster.local.", Q.TXT, OK,
     ['dns-version.cluster.local. 28800 TXT "1.1.0"'], [], []),
    ("dns-version-a-nodata", "dns-version.cluster.local.", Q.A, OK, [], [SOA], []),
    ("ns-dns-a", "ns.dns.cluster.local.", Q.A, OK,
     A("ns.dns.cluster.local.", "10.96.0.10"), [], []),
    ("kube-dns-service", "kube-dns.kube-system.svc.cluster.local.", Q.A, OK,
     A("kube-dns.kube-system.svc.cluster.local.", "10.96.0.10"), [], []),
    ("pods-disabled-nxdomain", "10-244-1-5.default.pod.cluster.local.", Q.A, NX, [],
     [SOA], []),
    ("pods-disabled-namespace-nxdomain", "default.pod.cluster.local.", Q.A, NX, [],
     [SOA], []),
    # --- ExternalName (spec 2.5)
    ("externalname-cname", "ext." + D, Q.CNAME, OK,
     [f"ext.{D} 5 CNAME example.com."], [], []),
    ("externalname-in-zone-followed", "ext-in." + D, Q.A, OK,
     [f"ext-in.{D} 5 CNAME web.default.svc.cluster.local."]
     + A("web." + D, "10.96.0.20"), [], []),
    ("externalname-in-zone-srv-nodata-target", "ext-in." + D, Q.AAAA, OK,
     [f"ext-in.{D} 5 CNAME web.default.svc.cluster.local."], [SOA], []),
    ("externalname-missing-target", "ext-missing." + D, Q.A, NX,
     [f"ext-missing.{D} 5 CNAME nothere.default.svc.cluster.local."], [SOA], []),
    ("externalname-ip-nxdomain", "ext-ip." + D, Q.A, NX, [], [SOA], []),
    ("externalname-loop-stops", "ext-loop." + D, Q.A, OK,
     [f"ext-loop.{D} 5 CNAME ext-loop.default.svc.cluster.local."], [], []),
    ("externalname-no-port-names", "_http._tcp.ext." + D, Q.SRV, NX, [], [SOA], []),
    # --- reverse zones (reverse.go)
    ("ptr-cluster-ip", "20.0.96.10.in-addr.arpa.", Q.PTR, OK,
     ["20.0.96.10.in-addr.arpa. 5 PTR web.default.svc.cluster.local."], [], []),
    ("ptr-case-preserved", "20.0.96.10.IN-ADDR.ARPA.", Q.PTR, OK,
     ["20.0.96.10.IN-ADDR.ARPA. 5 PTR web.default.svc.cluster.local."], [], []),
    ("ptr-headless-hostname", "10.1.244.10.in-addr.arpa.", Q.PTR, OK,
     ["10.1.244.10.in-addr.arpa. 5 PTR web-0.nginx.default.svc.cluster.local."], [], []),
    ("ptr-endpoint-dashed", "12.1.244.10.in-addr.arpa.", Q.PTR, OK,
     ["12.1.244.10.in-addr.arpa. 5 PTR 10-244-1-12.nginx.default.svc.cluster.local."],
     [], []),
    ("ptr-clusterip-service-endpoint", "5.1.244.10.in-addr.arpa.", Q.PTR, OK,
     ["5.1.244.10.in-addr.arpa. 5 PTR 10-244-1-5.web.default.svc.cluster.local."], [],
     []),
    ("ptr-ipv6-cluster-ip",
     "0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa.", Q.PTR,
     OK, ["0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa. 5 PTR "
          "v6.default.svc.cluster.local."], [], []),
    ("ptr-unknown-in-pod-cidr", "99.9.244.10.in-addr.arpa.", Q.PTR, NX, [],
     ["244.10.in-addr.arpa. 5 SOA ns.dns.244.10.in-addr.arpa. "
      f"hostmaster.244.10.in-addr.arpa. {SERIAL} 7200 1800 86400 5"], []),
    ("ptr-unknown-in-service-cidr", "99.9.100.10.in-addr.arpa.", Q.PTR, NX, [],
     ["100.10.in-addr.arpa. 5 SOA ns.dns.100.10.in-addr.arpa. "
      f"hostmaster.100.10.in-addr.arpa. {SERIAL} 7200 1800 86400 5"], []),
    ("reverse-ent-nodata", "1.244.10.in-addr.arpa.", Q.PTR, OK, [],
     ["244.10.in-addr.arpa. 5 SOA ns.dns.244.10.in-addr.arpa. "
      f"hostmaster.244.10.in-addr.arpa. {SERIAL} 7200 1800 86400 5"], []),
    ("reverse-apex-soa", "96.10.in-addr.arpa.", Q.SOA, OK,
     ["96.10.in-addr.arpa. 5 SOA ns.dns.96.10.in-addr.arpa. "
      f"hostmaster.96.10.in-addr.arpa. {SERIAL} 7200 1800 86400 5"], [], []),
    ("reverse-ptr-a-nodata", "20.0.96.10.in-addr.arpa.", Q.A, OK, [],
     ["96.10.in-addr.arpa. 5 SOA ns.dns.96.10.in-addr.arpa. "
      f"hostmaster.96.10.in-addr.arpa. {SERIAL} 7200 1800 86400 5"], []),
    ("axfr-refused", "cluster.local.", Q.AXFR, RCODE.REFUSED, [], [], []),
]


@pytest.mark.parametrize("qname,qtype,rcode,answer,authority,additional",
                         [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_resolve(qname: str, qtype: int, rcode: int, answer: list[str],
                 authority: list[str], additional: list[str]) -> None:
    ans = resolve(INDEX, qname, qtype)
    assert ans is not None
    assert ans.authoritative
    assert (RCODE[ans.rcode], fmts(ans.answer), fmts(ans.authority),
            fmts(ans.additional)) == (RCODE[rcode], sorted(answer), sorted(authority),
                                      sorted(additional))
    assert ans.chase is None


def test_row_count() -> None:
    assert len(ROWS) >= 60


def test_answer_order_keeps_cname_first() -> None:
    ans = resolve(INDEX, "ext-in." + D, Q.A)
    assert ans is not None and QTYPE[ans.answer[0].rtype] == "CNAME"


@pytest.mark.parametrize("qname,qtype,chain", [
    ("ext." + D, Q.A, [f"ext.{D} 5 CNAME example.com."]),
    ("ext." + D, Q.AAAA, [f"ext.{D} 5 CNAME example.com."]),
    ("ext." + D, Q.MX, [f"ext.{D} 5 CNAME example.com."]),
    ("ext-chain." + D, Q.A, [f"ext-chain.{D} 5 CNAME ext.default.svc.cluster.local.",
                             "ext.default.svc.cluster.local. 5 CNAME example.com."]),
], ids=["a", "aaaa", "mx", "chain-in-zone-then-out"])
def test_externalname_out_of_zone_is_chased_by_the_server(qname: str, qtype: int,
                                                          chain: list[str]) -> None:
    ans = resolve(INDEX, qname, qtype)
    assert ans is not None
    assert ans.rcode == OK and [fmt(r) for r in ans.answer] == chain
    assert ans.chase == "example.com" and ans.authority == []


@pytest.mark.parametrize("qname", [
    "example.com.", "kubernetes.io", "cluster.local.example.com.", "local.",
    "4.3.2.1.in-addr.arpa.", "10.in-addr.arpa.", "0.0.11.10.in-addr.arpa.",
    "9.9.9.172.in-addr.arpa.", "arpa.", "xcluster.local.",
], ids=["name", "no-dot", "zone-as-prefix", "parent", "foreign-ptr", "parent-of-rev",
        "outside-service-cidr", "node-net", "arpa", "suffix-lookalike"])
def test_outside_is_none(qname: str) -> None:
    assert resolve(INDEX, qname, Q.A) is None
    assert resolve(INDEX, qname, Q.PTR) is None


def test_ptr_for_known_endpoint_outside_the_cidrs() -> None:
    """An EndpointSlice pointing at a node address: CoreDNS answers its PTR too."""
    idx = build(services=[svc("node-exporter", ["None"])],
                slices=[eps("node-exporter", [ep("172.18.0.2", "node-1")], HTTP)])
    ans = resolve(idx, "2.0.18.172.in-addr.arpa.", Q.PTR)
    assert ans is not None and fmts(ans.answer) == [
        "2.0.18.172.in-addr.arpa. 5 PTR node-1.node-exporter.default.svc.cluster.local."]
    assert resolve(idx, "2.0.18.172.in-addr.arpa.", Q.A) is None


def test_ptr_for_an_endpoint_of_two_services() -> None:
    idx = build(services=[svc("a", ["None"]), svc("b", ["None"])],
                slices=[eps("a", [ep("10.244.5.5")], HTTP),
                        eps("b", [ep("10.244.5.5", "h")], HTTP)])
    ans = resolve(idx, "5.5.244.10.in-addr.arpa", Q.PTR)
    assert ans is not None and fmts(ans.answer) == sorted([
        "5.5.244.10.in-addr.arpa. 5 PTR 10-244-5-5.a.default.svc.cluster.local.",
        "5.5.244.10.in-addr.arpa. 5 PTR h.b.default.svc.cluster.local."])


def test_duplicate_cluster_ip_first_service_wins() -> None:
    idx = build(services=[svc("first", ["10.96.5.5"]), svc("second", ["10.96.5.5"])],
                slices=[])
    ans = resolve(idx, "5.5.96.10.in-addr.arpa.", Q.PTR)
    assert ans is not None and fmts(ans.answer) == [
        "5.5.96.10.in-addr.arpa. 5 PTR first.default.svc.cluster.local."]


def test_ttl_configurable() -> None:
    idx = build(DnsConfig(ttl=30, service_cidr=CFG.service_cidr))
    ans = resolve(idx, "web." + D, Q.A)
    assert ans is not None and fmts(ans.answer) == A("web." + D, "10.96.0.20", ttl=30)
    nx = resolve(idx, "nope." + D, Q.A)
    assert nx is not None and fmts(nx.authority) == [
        f"cluster.local. 30 SOA ns.dns.cluster.local. hostmaster.cluster.local. {SERIAL} "
        "7200 1800 86400 30"]
    big = resolve(build(DnsConfig(ttl=3600)), "nope." + D, Q.A)
    assert big is not None and big.authority[0].ttl == 300  # SOA TTL min(ttl, 300)


def test_other_domain() -> None:
    idx = build(DnsConfig(domain="Corp.Example", service_cidr=CFG.service_cidr))
    ans = resolve(idx, "web.default.svc.corp.example.", Q.A)
    assert ans is not None and fmts(ans.answer) == A("web.default.svc.corp.example.",
                                                     "10.96.0.20")
    assert resolve(idx, "web." + D, Q.A) is None
    ptr = resolve(idx, "20.0.96.10.in-addr.arpa", Q.PTR)
    assert ptr is not None and fmts(ptr.answer) == [
        "20.0.96.10.in-addr.arpa. 5 PTR web.default.svc.corp.example."]


def test_ns_without_dns_service_falls_back_to_ns_dns() -> None:
    idx = build(services=[s for s in SERVICES if s["metadata"]["name"] != "kube-dns"])
    ans = resolve(idx, "cluster.local", Q.NS)
    assert ans is not None and fmts(ans.answer) == [
        "cluster.local. 5 NS ns.dns.cluster.local."] and ans.additional == []
    nx = resolve(idx, "ns.dns.cluster.local", Q.A)
    assert nx is not None and nx.rcode == NX


def test_srv_weight_floor_and_minimum() -> None:
    ports = [{"name": f"p{i}", "port": 1000 + i, "protocol": "TCP"} for i in range(3)]
    idx = build(services=[svc("many", ["None"], ports)],
                slices=[eps("many", [ep(f"10.244.9.{i}") for i in range(1, 40)], ports)])
    ans = resolve(idx, "many." + D, Q.SRV)
    assert ans is not None and len(ans.answer) == 117
    assert {r.rdata.weight for r in ans.answer} == {1}       # floor(100/117) → 1
    ans = resolve(idx, "_p0._tcp.many." + D, Q.SRV)
    assert ans is not None and {r.rdata.weight for r in ans.answer} == {2}  # 100//39


# ---- pod records (handler_pod_{disabled,insecure,verified}_test.go) -----------------

POD_ROWS: list[tuple[str, str, str, int, int, list[str]]] = [
    ("insecure-existing", "insecure", "10-244-1-5.default.pod.cluster.local.", Q.A, OK,
     A("10-244-1-5.default.pod.cluster.local.", "10.244.1.5")),
    ("insecure-any-ip", "insecure", "1-2-3-4.default.pod.cluster.local.", Q.A, OK,
     A("1-2-3-4.default.pod.cluster.local.", "1.2.3.4")),
    ("insecure-case", "insecure", "1-2-3-4.DeFault.POD.cluster.local.", Q.A, OK,
     A("1-2-3-4.DeFault.POD.cluster.local.", "1.2.3.4")),
    ("insecure-aaaa-nodata", "insecure", "1-2-3-4.default.pod.cluster.local.", Q.AAAA,
     OK, []),
    ("insecure-ipv6", "insecure", "fd00--5.default.pod.cluster.local.", Q.AAAA, OK,
     A("fd00--5.default.pod.cluster.local.", "fd00::5")),
    ("insecure-malformed", "insecure", "1-2-3-400.default.pod.cluster.local.", Q.A, NX,
     []),
    ("insecure-not-an-ip", "insecure", "podname.default.pod.cluster.local.", Q.A, NX, []),
    ("insecure-unknown-namespace", "insecure", "1-2-3-4.nons.pod.cluster.local.", Q.A,
     NX, []),
    ("insecure-namespace-nodata", "insecure", "default.pod.cluster.local.", Q.A, OK, []),
    ("insecure-too-deep", "insecure", "x.1-2-3-4.default.pod.cluster.local.", Q.A, NX,
     []),
    ("verified-existing", "verified", "10-244-1-5.default.pod.cluster.local.", Q.A, OK,
     A("10-244-1-5.default.pod.cluster.local.", "10.244.1.5")),
    ("verified-wrong-namespace", "verified", "10-244-1-5.other.pod.cluster.local.", Q.A,
     NX, []),
    ("verified-other-namespace", "verified", "10-244-3-3.other.pod.cluster.local.", Q.A,
     OK, A("10-244-3-3.other.pod.cluster.local.", "10.244.3.3")),
    ("verified-unknown-ip", "verified", "1-2-3-4.default.pod.cluster.local.", Q.A, NX,
     []),
    ("verified-ipv6", "verified", "fd00-10-244--5.default.pod.cluster.local.", Q.AAAA, OK,
     A("fd00-10-244--5.default.pod.cluster.local.", "fd00:10:244::5")),
    ("verified-namespace-nodata", "verified", "other.pod.cluster.local.", Q.A, OK, []),
    ("disabled-existing-pod", "disabled", "10-244-1-5.default.pod.cluster.local.", Q.A,
     NX, []),
]


@pytest.mark.parametrize("mode,qname,qtype,rcode,answer", [r[1:] for r in POD_ROWS],
                         ids=[r[0] for r in POD_ROWS])
def test_pod_records(mode: str, qname: str, qtype: int, rcode: int,
                     answer: list[str]) -> None:
    idx = build(DnsConfig(pod_mode=mode, service_cidr=CFG.service_cidr))
    ans = resolve(idx, qname, qtype)
    assert ans is not None
    assert (ans.rcode, fmts(ans.answer)) == (rcode, sorted(answer))
    zone = qname.rstrip(".")[-len("cluster.local"):]
    assert [fmt(r).split(" SOA ")[0] for r in ans.authority] == (
        [] if answer else [f"{zone}. 5"])


def test_verified_skips_terminating_pods() -> None:
    idx = build(DnsConfig(pod_mode="verified"),
                pods=[pod("gone", "10.244.7.7", deletionTimestamp="2024-01-01T00:00:00Z")])
    ans = resolve(idx, "10-244-7-7.default.pod.cluster.local", Q.A)
    assert ans is not None and ans.rcode == NX


def test_answer_is_frozen() -> None:
    ans = resolve(INDEX, "web." + D, Q.A)
    assert isinstance(ans, Answer)
    with pytest.raises(AttributeError):
        ans.rcode = 2  # type: ignore[misc]
