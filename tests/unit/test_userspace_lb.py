"""The userspace proxy's pure core: listener planning per node and the round-robin /
ClientIP-affinity balancer (kube-proxy pkg/proxy/userspace/roundrobin.go semantics)."""
from __future__ import annotations

from dataclasses import replace

import pytest

from netd.proxy.model import Endpoint, ServicePort
from netd.proxy.userspace_lb import (AFFINITY_SWEEP_AT, Balancer, BalancerKey, BalancerSpec,
                                     ListenerKey, carry_balancers, plan_node)

DNS = "10.96.0.10"


def ep(ip: str, node: str = "n1", ready: bool = True, serving: bool | None = None,
       terminating: bool = False, port: int = 8080) -> Endpoint:
    return Endpoint(ip, port, ready, ready if serving is None else serving, terminating, node)


def sp(name: str = "web", *, ip: str = "10.96.0.20", port: int = 80, protocol: str = "TCP",
       node_port: int = 0, external_ips: tuple[str, ...] = (), affinity: int = 0,
       ext_local: bool = False, int_local: bool = False, port_name: str = "",
       endpoints: tuple[Endpoint, ...] = (ep("10.244.1.5"),)) -> ServicePort:
    return ServicePort("default", name, port_name, protocol, (ip,), port, node_port,
                       external_ips, affinity, ext_local, int_local, endpoints)


def no_shuffle(_: list[tuple[str, int]]) -> None:
    pass


TCP80 = ListenerKey("TCP", "10.96.0.20", 80)
B = BalancerKey("default/web:", False)
BL = BalancerKey("default/web:", True)

PLAN_CASES = [
    ("clusterip", [sp()], "n1",
     {"10.96.0.20"}, {TCP80: B}, {B: ((("10.244.1.5", 8080),), 0)}),
    ("dns-ip-left-alone", [sp(ip=DNS)], "n1", set(), {}, {}),
    ("no-endpoints-no-listener-but-address", [sp(endpoints=())], "n1",
     {"10.96.0.20"}, {}, {}),
    ("nodeport-and-externalip", [sp(node_port=30080, external_ips=("192.0.2.7",))], "n1",
     {"10.96.0.20", "192.0.2.7"},
     {TCP80: B, ListenerKey("TCP", "0.0.0.0", 30080): B,
      ListenerKey("TCP", "192.0.2.7", 80): B}, {B: ((("10.244.1.5", 8080),), 0)}),
    ("etp-local-remote-node-refuses-nodeport",
     [sp(node_port=30080, ext_local=True)], "n2",
     {"10.96.0.20"}, {TCP80: B}, {B: ((("10.244.1.5", 8080),), 0)}),
    ("etp-local-local-node",
     [sp(node_port=30080, ext_local=True,
         endpoints=(ep("10.244.1.5"), ep("10.244.2.5", node="n2")))], "n2",
     {"10.96.0.20"}, {TCP80: B, ListenerKey("TCP", "0.0.0.0", 30080): BL},
     {B: ((("10.244.1.5", 8080), ("10.244.2.5", 8080)), 0),
      BL: ((("10.244.2.5", 8080),), 0)}),
    ("itp-local", [sp(int_local=True, endpoints=(ep("10.244.1.5"), ep("10.244.2.5", "n2")))],
     "n1", {"10.96.0.20"}, {TCP80: BL}, {BL: ((("10.244.1.5", 8080),), 0)}),
    ("unready-skipped", [sp(endpoints=(ep("10.244.1.5"), ep("10.244.1.6", ready=False)))],
     "n1", {"10.96.0.20"}, {TCP80: B}, {B: ((("10.244.1.5", 8080),), 0)}),
    ("terminating-fallback",
     [sp(endpoints=(ep("10.244.1.5", ready=False, serving=True, terminating=True),
                    ep("10.244.1.6", ready=False)))],
     "n1", {"10.96.0.20"}, {TCP80: B}, {B: ((("10.244.1.5", 8080),), 0)}),
    ("udp-and-affinity", [sp(protocol="UDP", port=53, affinity=30)], "n1",
     {"10.96.0.20"}, {ListenerKey("UDP", "10.96.0.20", 53): B},
     {B: ((("10.244.1.5", 8080),), 30)}),
    ("sctp-not-proxied", [sp(protocol="SCTP")], "n1", set(), {}, {}),
    ("externalip-conflict-first-wins",
     [sp("a", external_ips=("192.0.2.7",)), sp("b", ip="10.96.0.21", external_ips=("192.0.2.7",))],
     "n1", {"10.96.0.20", "10.96.0.21", "192.0.2.7"},
     {TCP80: BalancerKey("default/a:", False),
      ListenerKey("TCP", "192.0.2.7", 80): BalancerKey("default/a:", False),
      ListenerKey("TCP", "10.96.0.21", 80): BalancerKey("default/b:", False)},
     {BalancerKey("default/a:", False): ((("10.244.1.5", 8080),), 0),
      BalancerKey("default/b:", False): ((("10.244.1.5", 8080),), 0)}),
]


@pytest.mark.parametrize("ports,node,addresses,listeners,balancers",
                         [c[1:] for c in PLAN_CASES], ids=[c[0] for c in PLAN_CASES])
def test_plan_node(ports: list[ServicePort], node: str, addresses: set[str],
                   listeners: dict[ListenerKey, BalancerKey],
                   balancers: dict[BalancerKey, tuple[tuple[tuple[str, int], ...], int]]) -> None:
    plan = plan_node(ports, node, DNS)
    assert plan.addresses == addresses
    assert plan.listeners == listeners
    assert {k: (v.endpoints, v.affinity_timeout) for k, v in plan.balancers.items()} == balancers


EPS = (("10.0.0.1", 80), ("10.0.0.2", 80), ("10.0.0.3", 80))


def test_round_robin_spreads_evenly() -> None:
    b = Balancer.create(BalancerSpec(EPS, 0), no_shuffle)
    picks = [b.next("1.1.1.1", float(i)) for i in range(9)]
    assert picks == list(EPS) * 3


def test_no_endpoints_gives_none() -> None:
    assert Balancer.create(BalancerSpec((), 0)).next("1.1.1.1", 0.0) is None


AFFINITY_CASES = [
    # (hit times, ttl, expect all sticky)
    ("sticky-20-requests", [0.1 * i for i in range(20)], 10, True),
    ("sliding-window-keeps-it", [0, 9, 18, 27, 36], 10, True),
    ("expires-after-idle-timeout", [0, 10.5], 10, False),
    ("whole-seconds-like-kube-proxy", [0, 9.99], 10, True),
]


@pytest.mark.parametrize("times,ttl,sticky", [c[1:] for c in AFFINITY_CASES],
                         ids=[c[0] for c in AFFINITY_CASES])
def test_client_ip_affinity(times: list[float], ttl: int, sticky: bool) -> None:
    b = Balancer.create(BalancerSpec(EPS, ttl), no_shuffle)
    picks = [b.next("10.1.1.1", t) for t in times]
    assert (len(set(picks)) == 1) is sticky


def test_affinity_is_per_client() -> None:
    b = Balancer.create(BalancerSpec(EPS, 60), no_shuffle)
    first = {c: b.next(c, 0.0) for c in ("a", "b", "c")}
    assert len(set(first.values())) == 3
    assert all(b.next(c, 1.0) == first[c] for c in first)


def test_reset_skips_remembered_endpoint_and_rebinds() -> None:
    b = Balancer.create(BalancerSpec(EPS, 60), no_shuffle)
    first = b.next("a", 0.0)
    second = b.next("a", 1.0, reset=True)
    assert second != first
    assert b.next("a", 2.0) == second


CARRY_CASES = [
    ("same-set-keeps-position-and-affinity", EPS, 60, True, True),
    ("endpoint-removed-drops-its-affinity", EPS[1:], 60, False, False),
    ("affinity-switched-off", EPS, 0, False, True),
]


@pytest.mark.parametrize("new_eps,ttl,keeps_affinity,keeps_index",
                         [c[1:] for c in CARRY_CASES], ids=[c[0] for c in CARRY_CASES])
def test_carry(new_eps: tuple[tuple[str, int], ...], ttl: int, keeps_affinity: bool,
               keeps_index: bool) -> None:
    old = Balancer.create(BalancerSpec(EPS, 60), no_shuffle)
    assert old.next("client", 0.0) == EPS[0]
    new = old.carry(BalancerSpec(new_eps, ttl), no_shuffle)
    assert ("client" in new.affinity) is keeps_affinity
    assert (new.index == 1) is keeps_index
    assert set(new.endpoints) == set(new_eps)
    # a removed endpoint is never picked again
    picks = {new.next(f"c{i}", 1.0) for i in range(10)}
    assert picks <= set(new_eps)


def test_switch_none_to_client_ip_on_live_service() -> None:
    b = Balancer.create(BalancerSpec(EPS, 0), no_shuffle)
    assert len({b.next("a", 0.0) for _ in range(3)}) == 3
    b = b.carry(BalancerSpec(EPS, 30), no_shuffle)
    assert len({b.next("a", 1.0) for _ in range(15)}) == 1
    b = b.carry(BalancerSpec(EPS, 0), no_shuffle)
    assert len({b.next("a", 2.0) for _ in range(3)}) == 3


def test_new_endpoint_set_is_shuffled() -> None:
    calls: list[list[tuple[str, int]]] = []
    Balancer.create(BalancerSpec(EPS, 0), calls.append)
    assert calls == [list(EPS)]


def test_carry_balancers_creates_and_drops() -> None:
    k1, k2 = BalancerKey("a/x:", False), BalancerKey("a/y:", False)
    old = {k1: Balancer.create(BalancerSpec(EPS, 0), no_shuffle)}
    new = carry_balancers(old, {k2: BalancerSpec(EPS[:1], 0)}, no_shuffle)
    assert list(new) == [k2] and new[k2].endpoints == EPS[:1]


def test_expired_affinity_swept_when_map_is_large() -> None:
    b = Balancer.create(BalancerSpec(EPS, 5), no_shuffle)
    for i in range(AFFINITY_SWEEP_AT):
        b.next(f"c{i}", 0.0)
    b.next("late", 100.0)
    assert list(b.affinity) == ["late"]


def test_plan_is_independent_of_input_order() -> None:
    a, c = sp("a"), sp("c", ip="10.96.0.30", node_port=30001)
    assert plan_node([a, c], "n1", DNS) == plan_node([c, a], "n1", DNS)
    assert replace(a, name="a") == a
