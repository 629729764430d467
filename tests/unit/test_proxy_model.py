"""The proxy's snapshot: which services and endpoints each node forwards to."""
from __future__ import annotations

from typing import Any

import pytest

from netd.proxy.model import (Endpoint, LogEntry, ServicePort, Snapshot, SvcKey,
                              build_snapshot, cluster_endpoints,
                              external_endpoints, internal_endpoints, local_endpoints)

DNS = "10.96.0.10"


def svc(name: str = "web", ns: str = "default", **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20"],
                            "type": "ClusterIP",
                            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
    base.update(spec)
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns}, "spec": base}


def ep(ip: str, node: str = "node-1", **cond: Any) -> dict[str, Any]:
    return {"addresses": [ip], "nodeName": node, "conditions": cond}


def eps(name: str, *endpoints: dict[str, Any], svc_name: str = "web", ns: str = "default",
        ports: list[dict[str, Any]] | None = None, family: str = "IPv4") -> dict[str, Any]:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": ns,
                         "labels": {"kubernetes.io/service-name": svc_name}},
            "addressType": family, "endpoints": list(endpoints),
            "ports": ports if ports is not None else
            [{"name": "http", "port": 8080, "protocol": "TCP"}]}


def one(services: list[dict[str, Any]], slices: list[dict[str, Any]]) -> ServicePort:
    snap = build_snapshot(services, slices, DNS, 7)
    assert snap.generation == 7
    assert len(snap.ports) == 1, snap.ports
    return snap.ports[0]


def test_basic_clusterip_port() -> None:
    sp = one([svc()], [eps("web-a", ep("10.244.0.3"), ep("10.244.0.2", node="node-2"))])
    assert sp.key == "default/web:http"
    assert (sp.cluster_ips, sp.port, sp.protocol, sp.node_port) == (("10.96.0.20",), 80,
                                                                   "TCP", 0)
    assert [(e.ip, e.port, e.node) for e in sp.endpoints] == [
        ("10.244.0.2", 8080, "node-2"), ("10.244.0.3", 8080, "node-1")]
    assert sp.affinity_timeout == 0 and not sp.external_local and not sp.internal_local


@pytest.mark.parametrize("spec,expected", [
    ({"clusterIP": "None", "clusterIPs": ["None"]}, 0),
    ({"type": "ExternalName", "externalName": "example.com"}, 0),
    ({"clusterIP": DNS, "clusterIPs": [DNS]}, 0),
    ({"clusterIP": "fd00::1", "clusterIPs": ["fd00::1"]}, 0),
    ({}, 1),
], ids=["headless", "external-name", "dns-service", "ipv6-only", "plain"])
def test_which_services_are_proxied(spec: dict[str, Any], expected: int) -> None:
    assert len(build_snapshot([svc(**spec)], [], DNS, 1).ports) == expected


@pytest.mark.parametrize("spec,timeout", [
    ({"sessionAffinity": "ClientIP"}, 10800),
    ({"sessionAffinity": "ClientIP",
      "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 15}}}, 15),
    ({"sessionAffinity": "None"}, 0),
], ids=["default-timeout", "explicit-timeout", "none"])
def test_affinity(spec: dict[str, Any], timeout: int) -> None:
    assert one([svc(**spec)], []).affinity_timeout == timeout


@pytest.mark.parametrize("typ,policy,node_port,local", [
    ("NodePort", "Local", 30080, True),
    ("LoadBalancer", "Local", 30080, True),
    ("NodePort", "Cluster", 30080, False),
    ("ClusterIP", "Local", 0, False),     # policy only applies to externally reachable types
], ids=["nodeport-local", "lb-local", "nodeport-cluster", "clusterip-ignores-policy"])
def test_node_ports_and_external_policy(typ: str, policy: str, node_port: int,
                                        local: bool) -> None:
    ports = [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}]
    sp = one([svc(type=typ, ports=ports, externalTrafficPolicy=policy)], [])
    assert (sp.node_port, sp.external_local) == (node_port, local)


def test_conditions_defaults_and_fallback_to_terminating() -> None:
    sp = one([svc(internalTrafficPolicy="Local")], [eps("a",
        ep("10.244.0.2"),                                              # unset = ready
        ep("10.244.0.3", ready=False),                                 # not ready
        ep("10.244.0.4", ready=False, serving=True, terminating=True),
        ep("10.244.1.2", node="node-2", ready=True))])
    by_ip = {e.ip: e for e in sp.endpoints}
    assert by_ip["10.244.0.2"] == Endpoint("10.244.0.2", 8080, True, True, False, "node-1")
    assert by_ip["10.244.0.3"].serving is False
    assert [e.ip for e in cluster_endpoints(sp)] == ["10.244.0.2", "10.244.1.2"]
    assert [e.ip for e in local_endpoints(sp, "node-2")] == ["10.244.1.2"]
    assert [e.ip for e in internal_endpoints(sp, "node-2")] == ["10.244.1.2"]
    assert [e.ip for e in external_endpoints(sp, "node-2")] == ["10.244.0.2", "10.244.1.2"]
    # no ready endpoint at all: the serving+terminating ones are used
    sp2 = one([svc()], [eps("a", ep("10.244.0.3", ready=False),
                            ep("10.244.0.4", ready=False, serving=True, terminating=True))])
    assert [e.ip for e in cluster_endpoints(sp2)] == ["10.244.0.4"]


def test_named_ports_multi_port_and_protocols() -> None:
    ports = [{"name": "http", "port": 80, "protocol": "TCP"},
             {"name": "dns", "port": 53, "protocol": "UDP"}]
    slices = [eps("a", ep("10.244.0.2"), ports=[{"name": "http", "port": 8080,
                                                 "protocol": "TCP"},
                                                {"name": "dns", "port": 5353,
                                                 "protocol": "UDP"}]),
              # another pod resolves the named targetPort to a different number
              eps("b", ep("10.244.0.3"), ports=[{"name": "http", "port": 9090,
                                                 "protocol": "TCP"}])]
    snap = build_snapshot([svc(ports=ports)], slices, DNS, 1)
    got = {(p.port_name, p.protocol): [(e.ip, e.port) for e in p.endpoints]
           for p in snap.ports}
    assert got == {("http", "TCP"): [("10.244.0.2", 8080), ("10.244.0.3", 9090)],
                   ("dns", "UDP"): [("10.244.0.2", 5353)]}


@pytest.mark.parametrize("slices,expected", [
    ([eps("a", ep("10.244.0.2")), eps("b", ep("10.244.0.2"))], ["10.244.0.2"]),
    ([eps("a", ep("10.244.0.2"), svc_name="other")], []),
    ([eps("a", ep("10.244.0.2"), ns="elsewhere")], []),
    ([eps("a", {"addresses": ["fd00::2"]}, family="IPv6")], []),
    ([eps("a", ep("10.244.0.2"), ports=[{"name": "other", "port": 1, "protocol": "TCP"}])],
     []),
    ([eps("a", ep("10.244.0.2"), ports=[{"name": "http", "port": 8080,
                                          "protocol": "UDP"}])], []),
], ids=["duplicate-across-slices", "other-service", "other-namespace", "ipv6-slice",
        "other-port-name", "other-protocol"])
def test_slice_matching(slices: list[dict[str, Any]], expected: list[str]) -> None:
    assert [e.ip for e in one([svc()], slices).endpoints] == expected


def test_snapshot_is_sorted_and_keeps_external_ips() -> None:
    snap = build_snapshot([svc("b", externalIPs=["192.0.2.1", "bogus"]), svc("a")], [],
                          DNS, 3)
    assert [p.name for p in snap.ports] == ["a", "b"]
    assert snap.ports[1].external_ips == ("192.0.2.1",)
    assert set(snap.by_key()) == {"default/a:http", "default/b:http"}


# ---- Snapshot: lazily flattened, per-Service reads, change log ---------------------------

def _sp(name: str, port_name: str = "", ns: str = "default") -> ServicePort:
    return ServicePort(ns, name, port_name, "TCP", ("10.96.0.1",), 80, 0, (), 0, False,
                       False, ())


def test_snapshot_of_services_reads_like_a_flat_one() -> None:
    a1, a2, b = _sp("a", "x"), _sp("a", "y"), _sp("b")
    keyed = Snapshot.of_services({("default", "b"): (b,), ("default", "a"): (a1, a2)},
                                 [("default", "a"), ("default", "b")], 3)
    flat = Snapshot((a1, a2, b), 3)
    assert keyed.ports == (a1, a2, b) and keyed == flat and hash(keyed) == hash(flat)
    assert keyed != Snapshot((a1, a2, b), 4)
    for snap in (keyed, flat):
        assert snap.ports_of(("default", "a")) == (a1, a2)
        assert snap.ports_of(("default", "b")) == (b,)
        assert snap.ports_of(("other", "a")) == ()


A, B, C = ("default", "a"), ("default", "b"), ("default", "c")
LOG = ((-1, 3, frozenset({A, B, C})), (3, 5, frozenset({A})), (5, 6, frozenset()),
       (6, 9, frozenset({B})))


@pytest.mark.parametrize("log,since,expected", [
    (LOG, 9, frozenset()),                       # the same snapshot
    (LOG, 6, frozenset({B})),
    (LOG, 5, frozenset({B})),                    # through an entry with no Service
    (LOG, 3, frozenset({A, B})),
    (LOG, -1, frozenset({A, B, C})),
    (LOG[1:], -1, None),                         # the log does not reach back
    (LOG, 4, None),                              # not a generation the log knows
    (LOG, 10, None),                             # newer than the snapshot
    ((), 3, None),                               # no log
    (LOG[:-1], 6, None),                         # the log does not end at this snapshot
], ids=["same", "one-step", "empty-step", "three-steps", "from-the-start", "too-old",
        "unknown-generation", "newer", "no-log", "log-not-ending-here"])
def test_changed_since(log: tuple[LogEntry, ...], since: int,
                       expected: frozenset[SvcKey] | None) -> None:
    snap = Snapshot.of_services({}, [], 9, log)
    assert snap.changed_since(since) == expected


def test_plain_snapshot_cannot_tell_what_changed() -> None:
    assert Snapshot((_sp("a"),), 2).changed_since(1) is None
