"""Services really forward, in both proxy modes, driven by the real kubectl (root):
ClusterIP from the host and from a pod, spreading over the endpoints, NodePort on every
node address, a scaled Deployment keeping its Service IP, DNS name to ClusterIP."""
from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from tests.e2e.cluster import Cluster, new_cluster, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (real namespaces)")]

APP = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo}
spec:
  replicas: 3
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      containers:
      - name: netexec
        image: registry.k8s.io/e2e-test-images/agnhost:2.39
        args: [netexec, --http-port=8080]
        ports: [{containerPort: 8080, name: http}]
---
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  type: NodePort
  selector: {app: echo}
  ports: [{name: http, port: 80, targetPort: http}]
"""


@pytest.fixture(scope="module", params=["nftables", "userspace"])
def proxied(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp(request.param)
    c = new_cluster(tmp, config={"node_mode": "netns", "nodes": ["node-1", "node-2"],
                                 "proxy": {"mode": request.param}})
    c.start()
    try:
        c.kubectl("apply", "-f", "-", input=APP)
        wait_for(lambda: _ready_endpoints(c) == 3, 90, what="3 ready endpoints")
        yield c
    finally:
        code = c.stop()
        c.down()
        assert code == 0, c.logs()


def _ready_endpoints(c: Cluster) -> int:
    got = c.kubectl("get", "endpoints", "echo", "-o", "json", check=False)
    if got.returncode != 0:
        return 0
    return sum(len(s.get("addresses") or []) for s in json.loads(got.stdout).get("subsets") or [])


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


def _svc(c: Cluster) -> dict:
    return json.loads(c.kubectl("get", "svc", "echo", "-o", "json").stdout)


def test_cluster_ip_from_host_spreads_over_endpoints(proxied: Cluster) -> None:
    ip = _svc(proxied)["spec"]["clusterIP"]
    seen = {_get(f"http://{ip}/hostname") for _ in range(40)}
    pods = set(proxied.kubectl("get", "pods", "-l", "app=echo", "-o",
                               "jsonpath={.items[*].metadata.name}").stdout.split())
    assert seen == pods


def test_node_port_on_every_node(proxied: Cluster) -> None:
    port = _svc(proxied)["spec"]["ports"][0]["nodePort"]
    nodes = json.loads(proxied.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    for node in nodes:
        addr = next(a["address"] for a in node["status"]["addresses"]
                    if a["type"] == "InternalIP")
        assert _get(f"http://{addr}:{port}/hostname").startswith("echo-")


def test_pod_reaches_service_by_dns_name(proxied: Cluster) -> None:
    pod = proxied.kubectl("get", "pods", "-l", "app=echo", "-o",
                          "jsonpath={.items[0].metadata.name}").stdout
    ns = f"{proxied.name}_default_{pod}"
    out = subprocess.run(["ip", "netns", "exec", ns, "curl", "-s", "--max-time", "5",
                          "http://echo.default.svc.cluster.local/hostname"],
                         capture_output=True, text=True)
    assert out.stdout.startswith("echo-"), out.stderr


def test_scaling_keeps_the_service_ip_and_spreads_to_new_pods(proxied: Cluster) -> None:
    before = _svc(proxied)["spec"]["clusterIP"]
    proxied.kubectl("scale", "deployment", "echo", "--replicas=5")
    wait_for(lambda: _ready_endpoints(proxied) == 5, 90, what="5 ready endpoints")
    assert _svc(proxied)["spec"]["clusterIP"] == before

    def all_seen() -> bool:
        seen = {_get(f"http://{before}/hostname") for _ in range(60)}
        return len(seen) == 5
    wait_for(all_seen, 30, what="traffic to spread over all 5 pods")
    proxied.kubectl("scale", "deployment", "echo", "--replicas=3")
    wait_for(lambda: _ready_endpoints(proxied) == 3, 90, what="back to 3 endpoints")
