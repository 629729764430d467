"""Full pod benchmark (root): pods created through the API until all are Running and
Ready with a built-in server, on real network namespaces, one node and three nodes;
with the `ip` CLI creating the same kernel objects in the same run as the baseline.

    sudo .venv/bin/python bench/pods_full_bench.py [--pods 1000] [--nodes 1 3]
                                                   [--profile FILE]

Prints pods/s, the daemon's CPU time per pod and the event loop thread's share of it
(steadier than the rate on a shared machine), daemon RSS per pod, the teardown time
(all pods deleted until every sandbox is gone), and the ratio to the `ip` CLI
(bench/pods_bench.run_ip). Each node count runs in a fresh process, so the RSS growth
of one run is not hidden by memory an earlier run left to the allocator. `--profile
FILE` wraps the event loop's thread in cProfile (FILE.<nodes> for pstats; the namespace
worker threads are not in it).
Targets (issue 4): >= 300 pods/s, <= 50 KB daemon memory per pod, teardown of 1,000
pods <= 5 s.
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.pods_bench import config as bench_config  # noqa: E402
from bench.pods_bench import run_ip  # noqa: E402
from netd.api.kinds import resource as api_resource  # noqa: E402
from netd.controllers import manager  # noqa: E402
from netd.controllers.scheduler import Scheduler  # noqa: E402
from netd.daemon import tune_gc  # noqa: E402
from netd.node import agents as node_agents  # noqa: E402
from netd.node import sandboxhelper  # noqa: E402
from netd.node.cluster_net import ClusterNetwork, teardown_sync  # noqa: E402
from netd.registry import allocators  # noqa: E402
from netd.registry.bootstrap import ensure_system_objects  # noqa: E402
from netd.registry.objectapi import ObjectAPI  # noqa: E402
from netd.store.sqlite import SQLiteStore  # noqa: E402
from netd.supervise import Supervisor  # noqa: E402

PODS = api_resource("", "pods")


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_s() -> float:
    """CPU time of the whole daemon (event loop and namespace threads, user + kernel,
    and its sandbox helper process): on a shared machine this varies less than the
    wall-clock rate."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime + helper_cpu_s()


def helper_cpu_s() -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in sandboxhelper.helper_pids():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs (/proc/stat): with the kernel's own work
    for the namespaces (kworkers, softirqs) and anything else running."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]        # idle + iowait
    return sum(fields) - idle, sum(fields)


def thread_cpu() -> dict[str, float]:
    """CPU seconds (user + kernel) per live thread, keyed by Python thread name (the
    event loop is MainThread): where the non-loop share of a pod goes."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for t in threading.enumerate():
        try:
            stat = Path(f"/proc/self/task/{t.native_id}/stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        name = t.name.split("-")[0] if t.name.startswith("Thread-") else t.name
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    out["sandbox-helper"] = helper_cpu_s()
    return out


def helper_rss_kb() -> int:
    """The sandbox helper process's RSS (netd.node.sandboxhelper): daemon memory too."""
    total = 0
    for pid in sandboxhelper.helper_pids():
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def ready(obj: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


async def wait(pred, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark condition not reached")
        await asyncio.sleep(0.02)


class ReadyCount:
    """How many of the benchmark's pods are Running and Ready, without re-reading all
    of them every poll (that alone cost the event loop ~2 s of 1,000 pods): pods turn
    Ready roughly in creation order, so each poll walks the not-yet-ready ones in order
    and stops after a few that are not there yet."""

    def __init__(self, store: SQLiteStore, pods: int, lookahead: int = 64) -> None:
        self.store = store
        self.pending = [f"p{i}" for i in range(pods)]
        self.lookahead = lookahead

    def done(self) -> bool:
        still: list[str] = []
        misses = 0
        for i, name in enumerate(self.pending):
            o = self.store.get("pods", "default", name)
            if o is not None and ready(o.obj):
                continue
            still.append(name)
            misses += 1
            if misses >= self.lookahead:
                still.extend(self.pending[i + 1:])
                break
        self.pending = still
        return not still


async def run_full(nodes: int, pods: int, tmp: Path) -> dict[str, Any]:
    cfg = replace(bench_config("f", nodes, pods), state_dir=str(tmp), node_mode="netns",
                  max_pods=pods + 8)   # room for system pods (the kube-dns mirror pod)
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
        # The helper starts with the first sandbox: one throwaway pod before measuring.
        await api.create(PODS, "default", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "warmup"},
            "spec": {"containers": [{"name": "web", "image": "nginx"}]}})
        await wait(lambda: (o := store.get("pods", "default", "warmup")) is not None
                   and ready(o.obj), 60)
        gc.collect()
        rss0, helper0 = rss_kb(), helper_rss_kb()
        cpu0, loop0, threads0 = cpu_s(), time.thread_time(), thread_cpu()
        busy0, total0 = machine_ticks()
        rev0 = store.revision
        t0 = time.perf_counter()
        for i in range(pods):
            await api.create(PODS, "default", {
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i}"},
                "spec": {"containers": [{"name": "web", "image": "nginx",
                                         "ports": [{"containerPort": 80}]}]}})
        await wait(ReadyCount(store, pods).done, 600)
        up = time.perf_counter() - t0
        cpu, loop_cpu = cpu_s() - cpu0, time.thread_time() - loop0
        busy1, total1 = machine_ticks()
        writes = (store.revision - rev0) / pods
        threads = {k: (v - threads0.get(k, 0.0)) * 1000 / pods for k, v in thread_cpu().items()}
        gc.collect()
        rss1, helper1 = rss_kb(), helper_rss_kb()
        t1 = time.perf_counter()
        for name in [f"p{i}" for i in range(pods)] + ["warmup"]:
            await api.delete(PODS, "default", name, {"gracePeriodSeconds": 0})
        run = Path("/run/netns")
        prefix = cfg.cluster_name + "_default_"
        await wait(lambda: not any(p.name.startswith(prefix) for p in run.iterdir()), 300)
        down = time.perf_counter() - t1
        return {"pods_per_s": pods / up, "up_s": up,
                "kb_per_pod": (rss1 - rss0 + helper1 - helper0) / pods, "helper_kb": helper1,
                "teardown_s": down, "cpu_ms_per_pod": cpu * 1000 / pods,
                "machine_busy": (busy1 - busy0) / max(1, total1 - total0),
                "writes_per_pod": writes,
                "loop_ms_per_pod": loop_cpu * 1000 / pods,
                "threads_ms_per_pod": {k: round(v, 2) for k, v in threads.items() if v >= 0.05}}
    finally:
        await sup.stop()
        for a in agents:
            await a.shutdown()
        teardown_sync(cfg)
        await store.close()


def child(nodes: int, pods: int, profile: str | None) -> dict[str, Any]:
    prof = cProfile.Profile() if profile else None
    # The daemon's runtime, as `netd up` sets it: uvloop and its GC settings.
    import uvloop
    uvloop.install()
    tune_gc()
    with tempfile.TemporaryDirectory() as d:
        if prof is not None:
            prof.enable()
        try:
            return asyncio.run(run_full(nodes, pods, Path(d)))
        finally:
            if prof is not None:
                prof.disable()
                prof.dump_stats(f"{profile}.{nodes}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=1000)
    ap.add_argument("--nodes", type=int, nargs="+", default=[1, 3])
    ap.add_argument("--profile", metavar="FILE")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (real network namespaces)")
    if args.child:
        print(json.dumps(child(args.nodes[0], args.pods, args.profile)))
        return
    for n in args.nodes:
        cmd = [sys.executable, __file__, "--child", "--pods", str(args.pods), "--nodes", str(n)]
        if args.profile:
            cmd += ["--profile", args.profile]
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        ip_rate, ip_down = run_ip(n, args.pods)
        print(f"nodes={n} pods={args.pods}: netd {r['pods_per_s']:.0f} pods/s Running+Ready "
              f"({r['up_s']:.1f} s; CPU/pod {r['cpu_ms_per_pod']:.1f} ms, event loop "
              f"{r['loop_ms_per_pod']:.1f} ms), "
              f"{r['kb_per_pod']:.1f} KB RSS/pod, teardown "
              f"{r['teardown_s']:.2f} s | ip CLI {ip_rate:.0f} sandboxes/s, teardown "
              f"{ip_down:.2f} s | ratio {r['pods_per_s'] / ip_rate:.2f}", flush=True)
        print(f"  machine CPU busy while pods started: {r['machine_busy']:.0%} of "
              f"{os.cpu_count()} CPUs; store writes per pod {r['writes_per_pod']:.1f} "
              "(create, binding, status, events)", flush=True)
        print(f"  CPU ms/pod by thread: {r['threads_ms_per_pod']}; sandbox helper process "
              f"RSS {r['helper_kb'] / 1024:.1f} MiB (its growth is in RSS/pod)", flush=True)


if __name__ == "__main__":
    main()
