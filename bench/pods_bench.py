"""Pod sandbox benchmark (root): netd's SandboxManager against the `ip` CLI creating
the same kernel objects, in the same run (these machines are noisy: compare ratios).

    sudo .venv/bin/python bench/pods_bench.py [--pods 1000] [--nodes 1 3] [--full]

Per node count it prints sandboxes/s, the teardown time (handles removed until the
kernel destroyed every pod veth), and the baseline: `ip -batch` for netns + veth
(peer created in the node namespace), one `ip -n <pod> -batch` per pod for its
addresses and routes, one `ip -n <node> -batch` per node for the node ends.
`--full` runs bench/pods_full_bench.py's path instead (API, scheduler, node agent).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from netd.config import Config, NodeConfig  # noqa: E402
from netd.node import names  # noqa: E402
from netd.node.cluster_net import ClusterNetwork, NodeNet, teardown_sync  # noqa: E402
from netd.node.sandbox import SandboxManager  # noqa: E402


def config(tag: str, nodes: int, pods: int) -> Config:
    size = 24 if pods // nodes < 250 else 20
    return replace(Config(), cluster_name=f"bn{tag}{os.getpid() % 1000}",
                   pod_cidr="10.230.0.0/16", service_cidr="10.231.0.0/16",
                   dns_ip="10.231.0.10", node_network="10.232.0.0/24", node_cidr_size=size,
                   nodes=[NodeConfig(f"n{i}") for i in range(nodes)])


def pod_ip(node: NodeNet, i: int) -> str:
    base = int.from_bytes(bytes(int(x) for x in node.gateway.split(".")), "big")
    v = base + 1 + i
    return ".".join(str((v >> s) & 255) for s in (24, 16, 8, 0))


def wait_veths_gone(node: NodeNet, timeout: float = 60.0) -> None:
    """Namespace destruction is asynchronous: wait until the node holds no pod veth."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["ip", "-n", node.netns or "", "-o", "link"], capture_output=True,
                             text=True).stdout
        if not any(line.split(":")[1].strip().startswith("v") for line in out.splitlines()):
            return
        time.sleep(0.05)
    raise SystemExit("pod veths did not vanish")


async def run_netd(nodes: int, pods: int) -> tuple[float, float]:
    cfg = config("a", nodes, pods)
    cn = ClusterNetwork(cfg)
    nets = await cn.ensure()
    try:
        mgrs = [SandboxManager(cfg, n) for n in nets]
        jobs = [(mgrs[i % nodes], f"p{i}", pod_ip(nets[i % nodes], i // nodes))
                for i in range(pods)]
        t0 = time.perf_counter()
        await asyncio.gather(*[m.create("bench", name, ip, name) for m, name, ip in jobs])
        created = time.perf_counter() - t0
        assert sum(len(m.existing()) for m in mgrs) == pods
        t0 = time.perf_counter()
        await asyncio.gather(*[m.delete("bench", name) for m, name, _ in jobs])
        for n in nets:
            wait_veths_gone(n)
        teardown = time.perf_counter() - t0
        for m in mgrs:
            m.close()
    finally:
        await cn.teardown()
    return pods / created, teardown


def run_ip(nodes: int, pods: int) -> tuple[float, float]:
    """The same objects with iproute2; the cluster network itself comes from netd."""
    cfg = config("b", nodes, pods)
    nets = asyncio.run(ClusterNetwork(cfg).ensure())
    try:
        per = [(nets[i % nodes], f"{cfg.cluster_name}_bench_p{i}",
                names.pod_node_veth("bench", f"p{i}"), pod_ip(nets[i % nodes], i // nodes))
               for i in range(pods)]
        t0 = time.perf_counter()
        batch = []
        for node, ns, veth, _ in per:
            batch += [f"netns add {ns}",
                      f"link add eth0 netns {ns} type veth peer name {veth} netns {node.netns}"]
        subprocess.run(["ip", "-batch", "-"], input="\n".join(batch), text=True, check=True)
        # Inside each pod namespace: one `ip -n <pod> -batch` per pod (ip cannot switch
        # namespaces within a batch; `-n` costs a mount namespace per call, which is the
        # baseline's real per-pod price). The node ends of all pods of a node share one
        # namespace, so they are one `ip -n <node> -batch`, as a script would do it.
        for node, ns, veth, ip in per:
            subprocess.run(["ip", "-n", ns, "-batch", "-"], check=True, text=True, input="\n".join([
                "link set lo up", f"addr add {ip}/32 dev eth0", "link set eth0 up",
                f"route add {node.gateway} dev eth0 scope link",
                f"route add default via {node.gateway} dev eth0"]))
        for n in nets:
            subprocess.run(["ip", "-n", n.netns or "", "-batch", "-"], check=True, text=True,
                           input="\n".join(line for node, _, veth, ip in per if node is n
                                           for line in (f"link set {veth} up",
                                                        f"addr add {n.gateway}/32 dev {veth}",
                                                        f"route add {ip}/32 dev {veth}")))
        created = time.perf_counter() - t0
        t0 = time.perf_counter()
        subprocess.run(["ip", "-batch", "-"], check=True, text=True,
                       input="\n".join(f"netns delete {ns}" for _, ns, _, _ in per))
        for n in nets:
            wait_veths_gone(n)
        teardown = time.perf_counter() - t0
    finally:
        teardown_sync(cfg)
    return pods / created, teardown


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pods", type=int, default=1000)
    ap.add_argument("--nodes", type=int, nargs="+", default=[1, 3])
    ap.add_argument("--full", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root")
    if args.full:
        os.execv(sys.executable, [sys.executable, str(Path(__file__).with_name(
            "pods_full_bench.py")), "--pods", str(args.pods), "--nodes",
            *map(str, args.nodes)])
    for nodes in args.nodes:
        ip_rate, ip_down = run_ip(nodes, args.pods)
        rate, down = asyncio.run(run_netd(nodes, args.pods))
        print(f"{args.pods} sandboxes on {nodes} node(s): netd {rate:7.1f}/s "
              f"teardown {down:5.2f}s | ip CLI {ip_rate:7.1f}/s teardown {ip_down:5.2f}s | "
              f"ratio {rate / ip_rate:4.2f}x", flush=True)


if __name__ == "__main__":
    main()
