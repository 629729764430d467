"""Real pods (network namespaces on emulated nodes) driven by the real kubectl:
the seeds' StatefulSet scenarios end to end (root)."""
from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from tests.e2e.cluster import EXAMPLES, Cluster, new_cluster, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (real namespaces)")]


@pytest.fixture(scope="module")
def netns_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("netns")
    c = new_cluster(tmp, config={"node_mode": "netns", "nodes": ["node-1", "node-2"]})
    c.start()
    try:
        yield c
    finally:
        code = c.stop()
        c.down()
        leftovers = [ln for ln in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                  text=True).stdout.splitlines()
                     if ln.startswith(c.name + "_")]
        assert not leftovers, f"netd down left namespaces: {leftovers}"
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        assert f"{c.name}-br" not in links
        assert code == 0, c.logs()


def pod(c: Cluster, name: str) -> dict:
    return json.loads(c.kubectl("get", "pod", name, "-o", "json").stdout)


def ready(c: Cluster, name: str) -> bool:
    p = pod(c, name)
    return any(cond["type"] == "Ready" and cond["status"] == "True"
               for cond in p.get("status", {}).get("conditions", []))


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


def test_nodes_register_ready(netns_cluster: Cluster) -> None:
    c = netns_cluster
    wait_for(lambda: c.kubectl("get", "nodes", "-o", "name").stdout.split() ==
             ["node/node-1", "node/node-2"], 30, what="both nodes")
    nodes = json.loads(c.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    for n in nodes:
        assert n["spec"]["podCIDR"].startswith(c.pod_cidr.rsplit(".", 2)[0] + ".")
        assert {"type": "Ready", "status": "True"}.items() <= \
            next(x for x in n["status"]["conditions"] if x["type"] == "Ready").items()


def test_seed004_ordered_identity_and_reachability(netns_cluster: Cluster) -> None:
    c = netns_cluster
    c.kubectl("apply", "-f", str(EXAMPLES / "seed004-web.yaml"))
    wait_for(lambda: ready(c, "web-0"), 60, what="web-0 Ready")
    wait_for(lambda: ready(c, "web-1"), 60, what="web-1 Ready")
    assert c.kubectl("exec", "web-0", "--", "sh", "-c", "hostname").stdout.strip() == "web-0"
    ip0 = pod(c, "web-0")["status"]["podIP"]
    # From the host shell, straight to the pod IP.
    assert http_get(f"http://{ip0}/hostname") == "web-0"
    # Pod to pod, from inside web-1's network namespace (possibly another node).
    ns1 = f"{c.name}_default_web-1"
    out = subprocess.run(["ip", "netns", "exec", ns1, "curl", "-s", "--max-time", "5",
                          f"http://{ip0}/hostname"], capture_output=True, text=True)
    assert out.stdout == "web-0", out.stderr
    resolv = c.kubectl("exec", "web-1", "--", "cat", "/etc/resolv.conf").stdout
    assert "search default.svc.cluster.local svc.cluster.local cluster.local" in resolv
    assert f"nameserver {c.dns_ip}" in resolv


def test_seed001_volume_survives_scale_down_and_up(netns_cluster: Cluster) -> None:
    c = netns_cluster
    c.kubectl("apply", "-f", str(EXAMPLES / "seed001-pv.yaml"))
    c.kubectl("apply", "-f", str(EXAMPLES / "seed001-statefulset.yaml"))
    for i in range(3):
        wait_for(lambda i=i: ready(c, f"myapp-{i}"), 90, what=f"myapp-{i} Ready")
    c.kubectl("exec", "myapp-0", "--", "sh", "-c",
              "echo 1324 > /usr/share/nginx/html/index.html")
    ip = pod(c, "myapp-0")["status"]["podIP"]
    assert http_get(f"http://{ip}/").strip() == "1324"
    c.kubectl("scale", "sts", "myapp", "--replicas=1")
    wait_for(lambda: c.kubectl("get", "pod", "myapp-1", check=False).returncode != 0, 60,
             what="scale down to 1")
    c.kubectl("scale", "sts", "myapp", "--replicas=3")
    wait_for(lambda: ready(c, "myapp-2"), 90, what="scale back up to 3")
    old_uid = pod(c, "myapp-0")["metadata"]["uid"]
    # --wait=false: netd's StatefulSet recreates the pod within milliseconds, inside the
    # window between kubectl's GET and its LIST+watch, so kubectl's own deletion wait
    # would then watch the new pod. Wait on the identity change instead.
    c.kubectl("delete", "pod", "myapp-0", "--wait=false")
    wait_for(lambda: pod(c, "myapp-0")["metadata"]["uid"] != old_uid and ready(c, "myapp-0"),
             90, what="myapp-0 recreated with a new uid")
    ip = pod(c, "myapp-0")["status"]["podIP"]
    assert http_get(f"http://{ip}/").strip() == "1324"
