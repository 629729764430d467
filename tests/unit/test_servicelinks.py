"""Service link environment variables, as kubelet computes them."""
from __future__ import annotations

from typing import Any

import pytest

from netd.api.servicelinks import env_name, service_env

Obj = dict[str, Any]


def svc(name: str, ns: str, ip: str, ports: list[Obj], type_: str = "ClusterIP") -> Obj:
    return {"metadata": {"name": name, "namespace": ns},
            "spec": {"type": type_, "clusterIP": ip, "ports": ports}}


KUBERNETES = svc("kubernetes", "default", "10.96.0.1",
                 [{"name": "https", "port": 443, "protocol": "TCP"}])
KUBE_ENV = [
    ("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
    ("KUBERNETES_SERVICE_PORT", "443"),
    ("KUBERNETES_SERVICE_PORT_HTTPS", "443"),
    ("KUBERNETES_PORT", "tcp://10.96.0.1:443"),
    ("KUBERNETES_PORT_443_TCP", "tcp://10.96.0.1:443"),
    ("KUBERNETES_PORT_443_TCP_PROTO", "tcp"),
    ("KUBERNETES_PORT_443_TCP_PORT", "443"),
    ("KUBERNETES_PORT_443_TCP_ADDR", "10.96.0.1"),
]


def pairs(env: list[Obj]) -> list[tuple[str, str]]:
    return [(e["name"], e["value"]) for e in env]


def test_multi_port_service_in_namespace() -> None:
    redis = svc("redis-master", "app", "10.96.5.5", [
        {"port": 6379, "protocol": "TCP"},
        {"name": "dns", "port": 53, "protocol": "UDP"}])
    got = pairs(service_env([KUBERNETES, redis], "app", True))
    assert got == KUBE_ENV + [
        ("REDIS_MASTER_SERVICE_HOST", "10.96.5.5"),
        ("REDIS_MASTER_SERVICE_PORT", "6379"),
        ("REDIS_MASTER_SERVICE_PORT_DNS", "53"),
        ("REDIS_MASTER_PORT", "tcp://10.96.5.5:6379"),
        ("REDIS_MASTER_PORT_6379_TCP", "tcp://10.96.5.5:6379"),
        ("REDIS_MASTER_PORT_6379_TCP_PROTO", "tcp"),
        ("REDIS_MASTER_PORT_6379_TCP_PORT", "6379"),
        ("REDIS_MASTER_PORT_6379_TCP_ADDR", "10.96.5.5"),
        ("REDIS_MASTER_PORT_53_UDP", "udp://10.96.5.5:53"),
        ("REDIS_MASTER_PORT_53_UDP_PROTO", "udp"),
        ("REDIS_MASTER_PORT_53_UDP_PORT", "53"),
        ("REDIS_MASTER_PORT_53_UDP_ADDR", "10.96.5.5"),
    ]


@pytest.mark.parametrize("services,ns,links,names", [
    ([svc("a", "x", "10.96.0.2", [{"port": 80}])], "x", False, ["KUBERNETES"]),
    ([svc("a", "y", "10.96.0.2", [{"port": 80}])], "x", True, ["KUBERNETES"]),
    ([svc("a", "x", "None", [{"port": 80}])], "x", True, ["KUBERNETES"]),
    ([svc("a", "x", "", [{"port": 80}], "ExternalName")], "x", True, ["KUBERNETES"]),
    ([svc("b", "x", "10.96.0.3", [{"port": 80}]), svc("a", "x", "10.96.0.2", [{"port": 80}])],
     "x", True, ["A", "B", "KUBERNETES"]),
], ids=["links-disabled-keeps-kubernetes", "other-namespace", "headless", "external-name",
        "sorted-by-name"])
def test_which_services(services: list[Obj], ns: str, links: bool, names: list[str]) -> None:
    got = service_env([KUBERNETES] + services, ns, links)
    hosts = [e["name"].removesuffix("_SERVICE_HOST") for e in got
             if e["name"].endswith("_SERVICE_HOST")]
    assert hosts == names


def test_own_kubernetes_service_wins() -> None:
    mine = svc("kubernetes", "x", "10.96.9.9", [{"port": 80}])
    for order in ([KUBERNETES, mine], [mine, KUBERNETES]):
        got = dict(pairs(service_env(order, "x", True)))
        assert got["KUBERNETES_SERVICE_HOST"] == "10.96.9.9"


def test_ipv6_addresses_are_bracketed() -> None:
    v6 = svc("v6", "x", "fd00::10", [{"port": 80}])
    got = dict(pairs(service_env([v6], "x", True)))
    assert got["V6_PORT"] == "tcp://[fd00::10]:80"


@pytest.mark.parametrize("name,expect", [("my-svc", "MY_SVC"), ("a1-b-c", "A1_B_C")],
                         ids=["dash", "digits"])
def test_env_name(name: str, expect: str) -> None:
    assert env_name(name) == expect
