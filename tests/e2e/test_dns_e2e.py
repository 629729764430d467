"""Cluster DNS end to end (root): `netd up` in netns mode, seed 004 (headless nginx +
StatefulSet web), then the real `nslookup` and `dig` inside a pod's network namespace
against the node-local DNS on the cluster's DNS IP. Upstream forwarding is off (`none`), so no
query can leave the machine."""
from __future__ import annotations

import json
import os
import subprocess
from typing import Iterator

import pytest

from tests.e2e.cluster import EXAMPLES, Cluster, new_cluster, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (real namespaces)")]

@pytest.fixture(scope="module")
def dns_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("dns")
    c = new_cluster(tmp, config={"node_mode": "netns", "nodes": ["node-1", "node-2"],
                                 "dns": {"upstreams": ["none"]}})
    c.start()
    try:
        c.kubectl("apply", "-f", str(EXAMPLES / "seed004-web.yaml"))
        for name in ("web-0", "web-1"):
            wait_for(lambda name=name: ready(c, name), 90, what=f"{name} Ready")
        yield c
    finally:
        code = c.stop()
        c.down()
        assert code == 0, c.logs()


def pod(c: Cluster, name: str) -> dict:
    return json.loads(c.kubectl("get", "pod", name, "-o", "json").stdout)


def ready(c: Cluster, name: str) -> bool:
    p = pod(c, name)
    return any(cond["type"] == "Ready" and cond["status"] == "True"
               for cond in p.get("status", {}).get("conditions", []))


def in_pod(c: Cluster, pod_name: str, *argv: str) -> subprocess.CompletedProcess[str]:
    # `ip netns exec` bind-mounts /etc/netns/<ns>/resolv.conf over /etc/resolv.conf, so
    # the pod's search path and nameserver apply.
    return subprocess.run(["ip", "netns", "exec", f"{c.name}_default_{pod_name}", *argv],
                          capture_output=True, text=True, timeout=30)


def api_ip(c: Cluster) -> str:
    """default/kubernetes' ClusterIP: the first address of the service CIDR."""
    return c.kubectl("get", "service", "kubernetes", "-o",
                     "jsonpath={.spec.clusterIP}").stdout.strip()


def dig(c: Cluster, pod_name: str, *args: str) -> list[str]:
    out = in_pod(c, pod_name, "dig", "+time=2", "+tries=1", f"@{c.dns_ip}", *args)
    return out.stdout.split()


def test_nslookup_short_name_via_search_path(dns_cluster: Cluster) -> None:
    c = dns_cluster
    ip0 = pod(c, "web-0")["status"]["podIP"]
    out = wait_for(lambda: (r := in_pod(c, "web-1", "nslookup", "web-0.nginx")).returncode == 0
                   and ip0 in r.stdout and r, 30, what="nslookup web-0.nginx")
    assert "web-0.nginx.default.svc.cluster.local" in out.stdout


def test_dig_fqdn_udp_and_tcp(dns_cluster: Cluster) -> None:
    c = dns_cluster
    ip0 = pod(c, "web-0")["status"]["podIP"]
    assert dig(c, "web-1", "+short", "web-0.nginx.default.svc.cluster.local") == [ip0]
    assert dig(c, "web-1", "+short", "+tcp", "web-0.nginx.default.svc.cluster.local") == [ip0]


def test_headless_a_and_srv(dns_cluster: Cluster) -> None:
    c = dns_cluster
    ips = {pod(c, n)["status"]["podIP"] for n in ("web-0", "web-1")}
    assert set(dig(c, "web-0", "+short", "nginx.default.svc.cluster.local")) == ips
    srv = dig(c, "web-0", "+short", "SRV", "_web._tcp.nginx.default.svc.cluster.local")
    targets = {srv[i + 3] for i in range(0, len(srv), 4)}
    assert targets == {"web-0.nginx.default.svc.cluster.local.",
                       "web-1.nginx.default.svc.cluster.local."}


def test_kubernetes_service_and_nxdomain(dns_cluster: Cluster) -> None:
    c = dns_cluster
    assert dig(c, "web-0", "+short", "kubernetes.default.svc.cluster.local")
    out = in_pod(c, "web-0", "dig", "+time=2", "+tries=1", f"@{c.dns_ip}",
                 "nope.default.svc.cluster.local").stdout
    assert "status: NXDOMAIN" in out and "flags: qr aa rd;" in out


def test_outside_names_refused_with_upstreams_none(dns_cluster: Cluster) -> None:
    out = in_pod(dns_cluster, "web-0", "dig", "+time=2", "+tries=1", f"@{dns_cluster.dns_ip}",
                 "example.com").stdout
    assert "status: REFUSED" in out


def test_record_follows_scale_down_and_up(dns_cluster: Cluster) -> None:
    c = dns_cluster
    name = "web-1.nginx.default.svc.cluster.local"
    c.kubectl("scale", "sts", "web", "--replicas=1")
    wait_for(lambda: dig(c, "web-0", "+short", name) == [], 60, interval=0.1,
             what="web-1's record to go")
    c.kubectl("scale", "sts", "web", "--replicas=2")
    wait_for(lambda: ready(c, "web-1"), 90, what="web-1 back")
    ip1 = pod(c, "web-1")["status"]["podIP"]
    wait_for(lambda: dig(c, "web-0", "+short", name) == [ip1], 30, interval=0.1,
             what="web-1's record to come back")


def node_ips(c: Cluster) -> dict[str, str]:
    nodes = json.loads(c.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    return {n["metadata"]["name"]: next(a["address"] for a in n["status"]["addresses"]
                                        if a["type"] == "InternalIP") for n in nodes}


def kube_dns_endpoints(c: Cluster) -> tuple[set[str], set[tuple[str, int, str]]]:
    eps = json.loads(c.kubectl("get", "endpoints", "-n", "kube-system", "kube-dns",
                               "-o", "json").stdout)
    addrs = {a["ip"] for s in eps.get("subsets") or [] for a in s.get("addresses") or []}
    ports = {(p["name"], p["port"], p["protocol"]) for s in eps.get("subsets") or []
             for p in s.get("ports") or []}
    return addrs, ports


def test_kube_dns_endpoints_list_every_node(dns_cluster: Cluster) -> None:
    c = dns_cluster
    ips = set(node_ips(c).values())
    assert len(ips) == 2
    wait_for(lambda: kube_dns_endpoints(c)[0] == ips, 30, what="kube-dns endpoints")
    assert kube_dns_endpoints(c)[1] == {("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"),
                                        ("metrics", 9153, "TCP")}
    slices = json.loads(c.kubectl("get", "endpointslices", "-n", "kube-system", "-l",
                                  "kubernetes.io/service-name=kube-dns", "-o",
                                  "json").stdout)["items"]
    assert {a for s in slices for e in s["endpoints"] for a in e["addresses"]} == ips
    wide = c.kubectl("get", "pods", "-n", "kube-system", "-o", "wide").stdout
    for node, ip in node_ips(c).items():
        assert f"coredns-{node}" in wide and ip in wide


def test_dig_node_ip_from_a_pod(dns_cluster: Cluster) -> None:
    c = dns_cluster
    for ip in node_ips(c).values():
        out = in_pod(c, "web-0", "dig", "+time=2", "+tries=1", f"@{ip}", "+short",
                     "kubernetes.default.svc.cluster.local").stdout.split()
        assert out == [api_ip(c)], (ip, out)
        tcp = in_pod(c, "web-0", "dig", "+time=2", "+tries=1", "+tcp", f"@{ip}", "+short",
                     "kubernetes.default.svc.cluster.local").stdout.split()
        assert tcp == [api_ip(c)]
    ip = next(iter(node_ips(c).values()))
    metrics = in_pod(c, "web-0", "curl", "-s", "--max-time", "5",
                     f"http://{ip}:9153/metrics")
    if metrics.returncode != 127:     # curl present
        assert "coredns_dns_requests_total" in metrics.stdout


def test_mirror_pod_recreated_after_delete(dns_cluster: Cluster) -> None:
    c = dns_cluster
    node = sorted(node_ips(c))[0]
    name = f"coredns-{node}"
    uid = json.loads(c.kubectl("get", "pod", "-n", "kube-system", name, "-o",
                               "json").stdout)["metadata"]["uid"]
    c.kubectl("delete", "pod", "-n", "kube-system", name, "--wait=false")

    def back() -> bool:
        r = c.kubectl("get", "pod", "-n", "kube-system", name, "-o", "json", check=False)
        if r.returncode:
            return False
        p = json.loads(r.stdout)
        return p["metadata"]["uid"] != uid and p["status"].get("phase") == "Running"
    wait_for(back, 30, what="mirror pod recreated")
    p = json.loads(c.kubectl("get", "pod", "-n", "kube-system", name, "-o", "json").stdout)
    assert "kubernetes.io/config.mirror" in p["metadata"]["annotations"]
    assert p["spec"]["hostNetwork"] is True and p["spec"]["nodeName"] == node
    assert p["status"]["podIP"] == node_ips(c)[node]
    wait_for(lambda: len(kube_dns_endpoints(c)[0]) == 2, 30, what="endpoint back")
