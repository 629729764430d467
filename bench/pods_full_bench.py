"""Full pod benchmark (root): pods created through the API until all are Running and
Ready with a built-in server, on real network namespaces, one node and three nodes;
with the `ip` CLI creating the same kernel objects in the same run as the baseline.

    sudo .venv/bin/python bench/pods_full_bench.py [--pods 1000] [--nodes 1 3]

Prints pods/s, daemon RSS per pod, the teardown time (all pods deleted until every
sandbox is gone), and the ratio to the `ip` CLI (bench/pods_bench.run_ip).
Targets (issue 4): >= 300 pods/s, <= 50 KB daemon memory per pod, teardown of 1,000
pods <= 5 s.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.pods_bench import config as bench_config  # noqa: E402
from bench.pods_bench import run_ip  # noqa: E402
from netd.api.kinds import REGISTRY  # noqa: E402
from netd.controllers import manager  # noqa: E402
from netd.controllers.scheduler import Scheduler  # noqa: E402
from netd.node import agents as node_agents  # noqa: E402
from netd.node.cluster_net import ClusterNetwork, teardown_sync  # noqa: E402
from netd.registry import allocators  # noqa: E402
from netd.registry.bootstrap import ensure_system_objects  # noqa: E402
from netd.registry.objectapi import ObjectAPI  # noqa: E402
from netd.store.sqlite import SQLiteStore  # noqa: E402
from netd.supervise import Supervisor  # noqa: E402

PODS = REGISTRY.by_plural("", "pods")
assert PODS is not None


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def ready(obj: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


async def wait(pred, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark condition not reached")
        await asyncio.sleep(0.02)


async def run_full(nodes: int, pods: int, tmp: Path) -> dict[str, float]:
    cfg = replace(bench_config("f", nodes, pods), state_dir=str(tmp), node_mode="netns",
                  max_pods=pods)
    store = SQLiteStore(str(tmp / "store.db"))
    api = ObjectAPI(store, plugins=allocators.plugins(cfg, store))
    await ensure_system_objects(api, cfg)
    ctx = manager.build_context(api, cfg)
    network = ClusterNetwork(cfg)
    await network.ensure()
    agents = node_agents(ctx, network)
    sup = Supervisor()
    manager.start(ctx, [Scheduler(ctx), *agents], sup)
    try:
        await ctx.factory.wait_synced()
        await wait(lambda: len(store.list("nodes")[0]) == nodes, 30)
        gc.collect()
        rss0 = rss_kb()
        t0 = time.perf_counter()
        for i in range(pods):
            await api.create(PODS, "default", {
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i}"},
                "spec": {"containers": [{"name": "web", "image": "nginx",
                                         "ports": [{"containerPort": 80}]}]}})
        await wait(lambda: sum(ready(o.obj) for o in store.list("pods", "default")[0])
                   == pods, 600)
        up = time.perf_counter() - t0
        gc.collect()
        rss1 = rss_kb()
        t1 = time.perf_counter()
        for i in range(pods):
            await api.delete(PODS, "default", f"p{i}", {"gracePeriodSeconds": 0})
        run = Path("/run/netns")
        prefix = cfg.cluster_name + "_default_"
        await wait(lambda: not any(p.name.startswith(prefix) for p in run.iterdir()), 300)
        down = time.perf_counter() - t1
        return {"pods_per_s": pods / up, "up_s": up, "kb_per_pod": (rss1 - rss0) / pods,
                "teardown_s": down}
    finally:
        await sup.stop()
        for a in agents:
            await a.shutdown()
        teardown_sync(cfg)
        await store.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=1000)
    ap.add_argument("--nodes", type=int, nargs="+", default=[1, 3])
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (real network namespaces)")
    for n in args.nodes:
        with tempfile.TemporaryDirectory() as d:
            r = asyncio.run(run_full(n, args.pods, Path(d)))
        ip_rate, ip_down = run_ip(n, args.pods)
        print(f"nodes={n} pods={args.pods}: netd {r['pods_per_s']:.0f} pods/s Running+Ready "
              f"({r['up_s']:.1f} s), {r['kb_per_pod']:.1f} KB RSS/pod, teardown "
              f"{r['teardown_s']:.2f} s | ip CLI {ip_rate:.0f} sandboxes/s, teardown "
              f"{ip_down:.2f} s | ratio {r['pods_per_s'] / ip_rate:.2f}")


if __name__ == "__main__":
    main()
