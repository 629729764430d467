"""Nodes removed from a running cluster (issue 4 §1: "Nodes can be added or removed
(config at restart, or deleting a Node object evicts its pods)"), with the real kubectl
against a real netd in netns mode (root).

What Kubernetes does, and netd with it:
- `kubectl delete node X` while X's kubelet runs: the pods bound to X are deleted (PodGC
  on a real cluster; X's agent here), their controllers recreate them on the other
  nodes, X's sandboxes are torn down. A running kubelet does not register again
  (kubelet only registers at start, kubernetes/kubernetes#71398), so X stays absent
  until its kubelet restarts — the daemon restart here — and then registers anew.
- A restart with a node dropped from the config: the node's kernel objects go
  (namespace, uplink, routes, its pods' sandboxes and processes), and its Node object
  and pods are deleted, as the cloud node lifecycle controller deletes the Node of an
  instance that vanished."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.cluster import Cluster, alive, new_cluster, wait_for
from netd.node import names

pytestmark = [pytest.mark.e2e, pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (real namespaces)")]


# Ranges of this module's own: the defaults are shared by every netd cluster on the host,
# and clusters of other test runs at the same time would take over their host routes.
RANGES = {"pod_cidr": "10.152.0.0/16", "service_cidr": "10.153.0.0/16",
          "dns_ip": "10.153.0.10", "node_network": "172.30.0.0/16"}


def get(c: Cluster, kind: str, name: str, ns: str = "default") -> dict[str, Any] | None:
    r = c.kubectl("get", kind, name, "-n", ns, "-o", "json", check=False)
    return json.loads(r.stdout) if r.returncode == 0 else None


def pods(c: Cluster, selector: str) -> list[dict[str, Any]]:
    return list(json.loads(c.kubectl("get", "pods", "-l", selector, "-o", "json").stdout)
                ["items"])


def is_ready(p: dict[str, Any]) -> bool:
    return any(x["type"] == "Ready" and x["status"] == "True"
               for x in p.get("status", {}).get("conditions", []))


def node_names(c: Cluster) -> list[str]:
    return c.kubectl("get", "nodes", "-o", "name").stdout.split()


def netns(c: Cluster) -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {ln.split()[0] for ln in out.splitlines() if ln.startswith(c.name + "_")}


def links(c: Cluster) -> set[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return {ln.split(":")[1].strip().split("@")[0] for ln in out.splitlines()
            if c.name in ln}


def finish(c: Cluster) -> None:
    code = c.stop()
    c.down()
    assert not netns(c), f"netd down left namespaces: {netns(c)}"
    assert code == 0, c.logs()


DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "spread"},
    "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "spread"}},
             "template": {"metadata": {"labels": {"app": "spread"}},
                          "spec": {"containers": [{"name": "web", "image": "nginx",
                                                   "ports": [{"containerPort": 80}]}]}}}}


def test_deleted_node_evicts_pods_until_its_kubelet_restarts(tmp_path: Path) -> None:
    c = new_cluster(tmp_path, config={"node_mode": "netns", "nodes": ["node-1", "node-2"],
                                      **RANGES}).start()
    try:
        c.kubectl("apply", "-f", "-", input=yaml.safe_dump(DEPLOYMENT))

        def all_ready() -> list[dict[str, Any]] | None:
            got = pods(c, "app=spread")
            live = [p for p in got if not p["metadata"].get("deletionTimestamp")]
            return live if len(live) == 4 and all(is_ready(p) for p in live) else None
        before = wait_for(all_ready, 60, what="4 replicas Ready")
        on_2 = {p["metadata"]["name"] for p in before if p["spec"]["nodeName"] == "node-2"}
        assert on_2, "the scheduler spreads replicas over both nodes"
        sandboxes = {f"{c.name}_default_{n}" for n in on_2}
        assert sandboxes <= netns(c)

        c.kubectl("delete", "node", "node-2")

        def moved() -> bool:
            live = all_ready()
            return live is not None and all(p["spec"]["nodeName"] == "node-1" for p in live)
        wait_for(moved, 60, what="the Deployment's pods recreated on node-1")
        names_now = {p["metadata"]["name"] for p in pods(c, "app=spread")}
        assert not names_now & on_2, "node-2's pods must be deleted"
        wait_for(lambda: not sandboxes & netns(c), 30, what="node-2's sandboxes torn down")
        # Its kubelet keeps running but does not register again (as kubelet 1.32)...
        assert "node/node-2" not in node_names(c)
        # ...until it restarts.
        assert c.stop() == 0, c.logs()
        c.start()
        wait_for(lambda: node_names(c) == ["node/node-1", "node/node-2"], 30,
                 what="node-2 registered again after the restart")
        node2 = get(c, "node", "node-2")
        assert node2 is not None
        assert next(x for x in node2["status"]["conditions"]
                    if x["type"] == "Ready")["status"] == "True"
        assert all(p["spec"]["nodeName"] == "node-1" for p in pods(c, "app=spread"))
    finally:
        finish(c)


POD_ON_3 = """\
apiVersion: v1
kind: Pod
metadata: {name: sleeper3}
spec:
  nodeName: node-3
  containers:
  - {name: main, image: busybox, command: [sleep, "3600"]}
---
apiVersion: v1
kind: Pod
metadata: {name: web3}
spec:
  nodeName: node-3
  containers:
  - {name: web, image: nginx, ports: [{containerPort: 80}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web1}
spec:
  nodeName: node-1
  containers:
  - {name: web, image: nginx, ports: [{containerPort: 80}]}
"""


def test_restart_without_a_node_removes_it(tmp_path: Path) -> None:
    nodes = ["node-1", "node-2", "node-3"]
    c = new_cluster(tmp_path, config={"node_mode": "netns", "nodes": nodes, **RANGES}).start()
    config = Path(c.extra_args[c.extra_args.index("--config") + 1])
    try:
        c.kubectl("apply", "-f", "-", input=POD_ON_3)

        def ready(name: str) -> bool:
            p = get(c, "pod", name)
            return p is not None and is_ready(p)
        wait_for(lambda: all(ready(n) for n in ("sleeper3", "web3", "web1")), 60,
                 what="pods Ready")
        sleeper = get(c, "pod", "sleeper3")
        assert sleeper is not None
        uid = sleeper["metadata"]["uid"]
        state = json.loads(Path(names.state_path(c.name, uid)).read_text())
        pid = int(state["containers"]["main"]["pid"])
        assert alive(pid)
        web1_ip = (get(c, "pod", "web1") or {})["status"]["podIP"]
        node3 = get(c, "node", "node-3")
        assert node3 is not None
        cidr3 = node3["spec"]["podCIDR"]
        node3_ns = f"{c.name}_node_node-3"
        gone_ns = {node3_ns, f"{c.name}_default_sleeper3", f"{c.name}_default_web3"}
        assert gone_ns <= netns(c)
        assert f"{c.name}-n2" in links(c)
        assert cidr3 in subprocess.run(["ip", "route", "show", cidr3], capture_output=True,
                                       text=True).stdout

        assert c.stop() == 0, c.logs()
        config.write_text(yaml.safe_dump({"node_mode": "netns", "nodes": nodes[:2], **RANGES}))
        c.start()

        wait_for(lambda: node_names(c) == ["node/node-1", "node/node-2"], 30,
                 what="node-3's Node deleted")
        wait_for(lambda: get(c, "pod", "sleeper3") is None and get(c, "pod", "web3") is None,
                 30, what="node-3's pods deleted")
        wait_for(lambda: get(c, "lease", "node-3", "kube-node-lease") is None, 30,
                 what="node-3's Lease collected with its Node")
        left = netns(c)
        assert not gone_ns & left, left
        assert f"{c.name}-n2" not in links(c)
        routes = subprocess.run(["ip", "route", "show", cidr3], capture_output=True,
                                text=True).stdout
        assert "via" not in routes, routes
        for ns in (f"{c.name}_node_node-1", f"{c.name}_node_node-2"):
            r = subprocess.run(["ip", "-n", ns, "route", "show", cidr3], capture_output=True,
                               text=True).stdout
            assert "via" not in r, (ns, r)
        assert not alive(pid), "node-3's container processes must be stopped"
        assert not (c.root / "pods" / uid).exists()
        # The rest of the cluster is untouched: node-1's pod kept its IP and answers.
        web1 = get(c, "pod", "web1")
        assert web1 is not None and web1["status"]["podIP"] == web1_ip
        # (its built-in server is re-opened by the restarted daemon: wait for it)
        wait_for(lambda: subprocess.run(
            ["curl", "-s", "--max-time", "5", f"http://{web1_ip}/hostname"],
            capture_output=True, text=True).stdout == "web1", 30, what="web1 answering")

        # Removing the FIRST node leaves node-2 its podCIDR and InternalIP (slots are
        # per name, not per position in the list).
        node2 = get(c, "node", "node-2")
        assert node2 is not None
        before = (node2["spec"]["podCIDR"], node2["status"]["addresses"])
        assert c.stop() == 0, c.logs()
        config.write_text(yaml.safe_dump({"node_mode": "netns", "nodes": ["node-2"],
                                          **RANGES}))
        c.start()
        wait_for(lambda: node_names(c) == ["node/node-2"], 30, what="node-1's Node deleted")
        node2 = get(c, "node", "node-2")
        assert node2 is not None
        assert (node2["spec"]["podCIDR"], node2["status"]["addresses"]) == before
        ip2 = next(a["address"] for a in before[1] if a["type"] == "InternalIP")
        addrs = subprocess.run(["ip", "-n", f"{c.name}_node_node-2", "-o", "addr"],
                               capture_output=True, text=True).stdout
        assert f" {ip2}/" in addrs, addrs
    finally:
        finish(c)
