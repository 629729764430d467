"""Controller benchmark (issue 3, Performance): a whole cluster in-process, wired as
netd/daemon.py wires it (SQLiteStore on a temp file, the daemon's admission plugins,
system objects, GC + namespace controllers, every workload controller, simulated
nodes), with a baseline measured in the same run because only ratios compare.

    .venv/bin/python bench/controllers_bench.py [--replicas 1000] [--deployments 100]
        [--per-deployment 100] [--flips 200] [--parts abc] [--profile a|b|c]

(a) a Deployment scaled 0 -> N: time until status.availableReplicas == N, with the
    milestones (last pod created / bound / Running+Ready); baseline: N pods created
    through ObjectAPI and marked Running/Ready with update_status (the raw writes).
    Target: <= 5 s for N = 1,000.
(b) a Service over 1,000 ready pods: flip one pod's Ready condition `flips` times
    (alternating pods and directions), time from the status write to the Endpoints
    (and EndpointSlice) reflecting it; baseline: the same write seen on a store watch.
    Target: p99 <= 100 ms.
(c) D Deployments x R replicas: time to all available, max queue depth per controller
    (sampled every 20 ms), reconcile p99 per controller, RSS.

Everything is bounded by timeouts; the temp directory is removed on exit.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import logging
import math
import pstats
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from netd.daemon import tune_gc  # noqa: E402
from netd.api.kinds import REGISTRY, ResourceType
from netd.client.controller import DURATION_BUCKETS, Controller
from netd.config import Config, NodeConfig, validate
from netd.controllers import manager
from netd.controllers.gc import GarbageCollector
from netd.controllers.graph import ObjectGraph
from netd.controllers.namespace import NamespaceController
from netd.controllers.volumes import DefaultStorageClass, ensure_default_storage_class
from netd.node import simulated
from netd.node.simpod import running_status
from netd.registry import allocators
from netd.registry.bootstrap import ensure_api_endpoints, ensure_system_objects
from netd.registry.objectapi import ObjectAPI
from netd.registry.scale import update_scale
from netd.store.base import WatchEvent, copy_obj
from netd.store.sqlite import SQLiteStore
from netd.supervise import Supervisor

Obj = dict[str, Any]
PODS_PER_NODE = 110


def _rt(group: str, plural: str) -> ResourceType:
    rt = REGISTRY.by_plural(group, plural)
    assert rt is not None
    return rt


POD, NS, SVC = _rt("", "pods"), _rt("", "namespaces"), _rt("", "services")
DEPLOY = _rt("apps", "deployments")


def pct(samples: list[float], p: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * p))] if s else float("nan")


def rss_mb() -> tuple[float, float]:
    """(current VmRSS, peak VmHWM) of this process in MiB."""
    vals = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            k, v = line.split(":", 1)
            vals[k] = int(v.split()[0]) / 1024
    return vals.get("VmRSS", 0.0), vals.get("VmHWM", 0.0)


class LogCounter(logging.Handler):
    """Counts warnings/errors per logger: a controller that keeps failing shows here."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[f"{record.levelname} {record.name}"] += 1


def busy(c: Controller) -> int:
    """Keys queued or in progress. Keys parked with add_after do not count: every node
    agent keeps its heartbeat key parked forever, so WorkQueue.is_idle never holds."""
    return len(c.queue) + len(c.queue.processing)


# ---- the cluster, wired like Daemon.start (minus HTTP, lock and pid file) --------------

@dataclass
class Cluster:
    config: Config
    store: SQLiteStore
    api: ObjectAPI
    ctx: manager.ControllerContext
    controllers: list[Controller]
    sup: Supervisor

    @classmethod
    async def start(cls, root: Path, nodes: int) -> "Cluster":
        config = validate(Config(
            cluster_name="bench", state_dir=str(root), node_mode="simulated",
            nodes=[NodeConfig(f"node-{i}") for i in range(nodes)]))
        config.cluster_state_dir.mkdir(parents=True, exist_ok=True)
        store = SQLiteStore(str(config.cluster_state_dir / "store.db"),
                            history_size=config.store.history_size)
        plugins = allocators.plugins(config, store) + [DefaultStorageClass(store)]
        api = ObjectAPI(store, plugins=plugins)
        await ensure_system_objects(api, config)
        await ensure_api_endpoints(api, "172.18.0.1", 6443)
        await ensure_default_storage_class(api)
        sup = Supervisor()
        graph = ObjectGraph(store)
        collector = GarbageCollector(api, graph)
        namespaces = NamespaceController(api, graph)
        sup.start("object-graph", graph.run)
        sup.start("garbage-collector", collector.run)
        sup.start("namespace-controller", namespaces.run)
        ctx = manager.build_context(api, config)
        controllers = manager.build_controllers(ctx)
        controllers.extend(simulated.agents(ctx))
        manager.start(ctx, controllers, sup)
        self = cls(config, store, api, ctx, [collector, namespaces, *controllers], sup)
        await asyncio.wait_for(self._until(lambda: manager.synced(ctx) and graph.synced.is_set()
                                           and len(store.list("nodes")[0]) == nodes), 30)
        tune_gc()   # as the daemon does once started
        await self.settle(30)
        return self

    async def _until(self, pred: Callable[[], bool], step: float = 0.005) -> None:
        while not pred():
            await asyncio.sleep(step)

    async def settle(self, timeout: float) -> float:
        """Wait until every controller is idle and no write happened for a few polls;
        returns the seconds it took (nan if that did not happen within timeout)."""
        t = time.perf_counter()

        async def quiet() -> None:
            stable, rev = 0, -1
            while stable < 5:
                await asyncio.sleep(0.01)
                now_rev = self.store.revision
                ok = now_rev == rev and all(busy(c) == 0 for c in self.controllers)
                stable, rev = (stable + 1 if ok else 0), now_rev
        try:
            await asyncio.wait_for(quiet(), timeout)
        except asyncio.TimeoutError:
            return float("nan")   # reported as "nan s": the controllers never went quiet
        return time.perf_counter() - t

    async def namespace(self, name: str) -> None:
        await self.api.create(NS, "", {"apiVersion": "v1", "kind": "Namespace",
                                       "metadata": {"name": name}})

    async def stop(self) -> None:
        await self.sup.stop()
        await self.store.close()


# ---- objects --------------------------------------------------------------------------

def container() -> Obj:
    return {"name": "web", "image": "nginx:1.25",
            "ports": [{"containerPort": 80, "name": "http"}],
            "resources": {"requests": {"cpu": "1m", "memory": "4Mi"}}}


def deployment(ns: str, name: str, replicas: int) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [container()]}}}}


def status_of(ev: WatchEvent) -> Obj:
    return ev.obj.get("status") or {}


def watch_until(store: SQLiteStore, resource: str, ns: str | None,
                on_event: Callable[[WatchEvent, float], bool],
                timeout: float) -> asyncio.Task[None]:
    """Feed every event (with its arrival time) to on_event until it returns True. The
    watch is registered before this returns, so no write made after it is missed."""
    watcher = store.watch(resource, ns, store.revision)

    async def run() -> None:
        try:
            async for batch in watcher:
                now = time.perf_counter()
                for ev in batch:
                    if on_event(ev, now):
                        return
        finally:
            watcher.close()
    return asyncio.create_task(asyncio.wait_for(run(), timeout))


# ---- (a) scale 0 -> N, and the raw-write baseline ----------------------------------------

async def part_a(cl: Cluster, n: int) -> tuple[list[str], str]:
    ns = "bench-a"
    await cl.namespace(ns)
    await cl.api.create(DEPLOY, ns, deployment(ns, "scale", 0))
    await cl.settle(30)
    marks: dict[str, float] = {}
    created: set[str] = set()
    bound: set[str] = set()
    ready: set[str] = set()

    def on_pod(ev: WatchEvent, now: float) -> bool:
        if ev.type == "DELETED":
            return False
        created.add(ev.name)
        if (ev.obj.get("spec") or {}).get("nodeName"):
            bound.add(ev.name)
        if any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in status_of(ev).get("conditions") or []):
            ready.add(ev.name)
        for tag, s in (("created", created), ("bound", bound), ("ready", ready)):
            if len(s) == n and tag not in marks:
                marks[tag] = now
        return len(ready) == n

    def on_deploy(ev: WatchEvent, now: float) -> bool:
        avail = status_of(ev).get("availableReplicas") or 0
        for frac in (0.1, 0.5, 0.9):
            if avail >= frac * n and f"{frac:.0%}" not in marks:
                marks[f"{frac:.0%}"] = now
        return ev.name == "scale" and avail == n

    rev0, t0 = cl.store.revision, time.perf_counter()
    pods_task = watch_until(cl.store, "pods", ns, on_pod, 120)
    dep_task = watch_until(cl.store, "deployments.apps", ns, on_deploy, 120)
    t0 = time.perf_counter()
    await update_scale(cl.api, DEPLOY, ns, "scale", {"spec": {"replicas": n}})
    await asyncio.gather(dep_task, pods_task)
    total = time.perf_counter() - t0
    writes = cl.store.revision - rev0
    drain = await cl.settle(60)

    # Baseline: the same pods written directly (create + Running/Ready status), bound to
    # a node no agent serves, so they stay exactly as written (part b flips them).
    base_ns = "bench-base"
    await cl.namespace(base_ns)
    ipam = simulated.PodIPAllocator("10.244.248.0/21")
    now = datetime.now(timezone.utc)
    rev1 = cl.store.revision
    tb = time.perf_counter()
    for i in range(n):
        body = {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": f"base-{i}", "labels": {"app": "base"}},
                "spec": {"nodeName": "bench-kubelet", "containers": [container()]}}
        pod = copy_obj((await cl.api.create(POD, base_ns, body)).obj)
        ip = ipam.allocate(pod["metadata"]["uid"])
        assert ip is not None
        pod["status"] = running_status(pod, ip, "172.18.0.250", now)
        await cl.api.update(POD, base_ns, pod["metadata"]["name"], pod, subresource="status")
    base = time.perf_counter() - tb
    base_writes = cl.store.revision - rev1
    await cl.settle(60)

    lines = [f"(a) Deployment scaled 0 -> {n} with {len(cl.config.nodes)} simulated nodes",
             f"    all {n} available:            {total:7.2f} s   (target <= 5 s: "
             f"{'met' if total <= 5 else 'MISSED'})"]
    for tag in ("created", "bound", "ready", "10%", "50%", "90%"):
        if tag in marks:
            label = f"last pod {tag}" if tag in ("created", "bound", "ready") \
                else f"{tag} available"
            lines.append(f"      {label + ':':28s}{marks[tag] - t0:7.2f} s")
    lines += [f"    store writes during the scale: {writes} ({writes / n:.1f} per pod, "
              f"{writes / total:.0f}/s); controllers idle {drain:.2f} s later",
              f"    baseline: {n} pods created + made Running/Ready via ObjectAPI: "
              f"{base:.2f} s ({base_writes} writes, {base_writes / base:.0f}/s)",
              f"    ratio controllers / baseline: {total / base:.1f}x"]
    return lines, base_ns


# ---- (b) readiness flip -> Endpoints -------------------------------------------------------

async def part_b(cl: Cluster, ns: str, n: int, flips: int) -> list[str]:
    await cl.api.create(SVC, ns, {"apiVersion": "v1", "kind": "Service",
                                  "metadata": {"name": "base"},
                                  "spec": {"selector": {"app": "base"},
                                           "ports": [{"port": 80, "targetPort": "http"}]}})

    def n_ready() -> int:
        eps = cl.store.get("endpoints", ns, "base")
        subsets = (eps.obj.get("subsets") or []) if eps else []
        return sum(len(s.get("addresses") or []) for s in subsets)
    tw = time.perf_counter()
    await asyncio.wait_for(cl._until(lambda: n_ready() == n), 60)
    initial = time.perf_counter() - tw
    await cl.settle(30)

    waits: dict[str, tuple[Callable[[Obj], bool], asyncio.Future[float]]] = {}

    def feed(kind: str) -> Callable[[WatchEvent, float], bool]:
        def on_event(ev: WatchEvent, now: float) -> bool:
            w = waits.get(kind)
            if w is not None and not w[1].done() and w[0](ev.obj):
                w[1].set_result(now)
            return False
        return on_event

    tasks = [watch_until(cl.store, res, ns, feed(kind), 600)
             for kind, res in (("pod", "pods"), ("endpoints", "endpoints"),
                               ("slice", "endpointslices.discovery.k8s.io"))]
    lat: dict[str, list[float]] = {"pod": [], "endpoints": [], "slice": []}
    missed: Counter[str] = Counter()
    try:
        for i in range(flips):
            name = f"base-{(i // 2) * 7 % n}"      # each pod goes not-ready, then ready
            want = i % 2 == 1                      # even flips: -> NotReady
            pod = copy_obj(cl.store.get("pods", ns, name).obj)  # type: ignore[union-attr]
            ip = pod["status"]["podIP"]
            flag = "True" if want else "False"
            for c in pod["status"]["conditions"]:
                if c["type"] in ("Ready", "ContainersReady"):
                    c["status"] = flag
            for cs in pod["status"].get("containerStatuses") or []:
                cs["ready"] = want

            def pod_ok(o: Obj, name: str = name, flag: str = flag) -> bool:
                return o["metadata"]["name"] == name and any(
                    c.get("type") == "Ready" and c.get("status") == flag
                    for c in (o.get("status") or {}).get("conditions") or [])

            def eps_ok(o: Obj, ip: str = ip, want: bool = want) -> bool:
                field_ = "addresses" if want else "notReadyAddresses"
                return o["metadata"]["name"] == "base" and any(
                    a.get("ip") == ip for s in o.get("subsets") or []
                    for a in s.get(field_) or [])

            def slice_ok(o: Obj, ip: str = ip, want: bool = want) -> bool:
                return any(ip in (e.get("addresses") or []) and
                           (e.get("conditions") or {}).get("ready") is want
                           for e in o.get("endpoints") or [])

            loop = asyncio.get_running_loop()
            waits = {k: (f, loop.create_future()) for k, f in
                     (("pod", pod_ok), ("endpoints", eps_ok), ("slice", slice_ok))}
            t = time.perf_counter()
            await cl.api.update(POD, ns, name, pod, subresource="status")
            for kind, (_, fut) in waits.items():
                try:
                    lat[kind].append(await asyncio.wait_for(fut, 5.0) - t)
                except asyncio.TimeoutError:
                    missed[kind] += 1
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    ms = {k: [x * 1000 for x in v] for k, v in lat.items()}
    p99 = pct(ms["endpoints"], 0.99)
    lines = [f"(b) Service over {n} ready pods ({initial:.2f} s until its Endpoints listed all)",
             f"    {flips} Ready flips; ms from the status write until seen "
             f"(p50 / p99 / max, misses > 5 s):"]
    for kind, label in (("endpoints", "Endpoints"), ("slice", "EndpointSlice"),
                        ("pod", "baseline: pod watch")):
        v = ms[kind]
        lines.append(f"      {label + ':':22s}{pct(v, 0.5):8.2f} {pct(v, 0.99):8.2f} "
                     f"{max(v) if v else float('nan'):8.2f}   misses {missed[kind]}")
    lines += [f"    target Endpoints p99 <= 100 ms: {'met' if p99 <= 100 else 'MISSED'}; "
              f"ratio to the pod-watch baseline p99: "
              f"{p99 / max(pct(ms['pod'], 0.99), 1e-9):.0f}x"]
    return lines


# ---- (c) D x R pods ------------------------------------------------------------------------

@dataclass
class Snap:
    """A controller group's reconcile histogram at one moment (to diff a phase)."""
    counts: list[int]
    count: int
    total: float
    errors: int

    @classmethod
    def of(cls, group: list[Controller]) -> "Snap":
        counts = [0] * (len(DURATION_BUCKETS) + 1)
        for c in group:
            counts = [x + y for x, y in zip(counts, c.metrics.duration.counts)]
        return cls(counts, sum(c.metrics.duration.count for c in group),
                   sum(c.metrics.duration.total for c in group),
                   sum(c.metrics.errors_total for c in group))

    def minus(self, before: "Snap") -> "Snap":
        return Snap([a - b for a, b in zip(self.counts, before.counts)],
                    self.count - before.count, self.total - before.total,
                    self.errors - before.errors)

    def quantile(self, p: float) -> str:
        """The upper bound of the bucket holding the p-quantile (all a Histogram keeps)."""
        seen = 0
        for i, c in enumerate(self.counts):
            seen += c
            if self.count and seen >= p * self.count:
                return f"<={DURATION_BUCKETS[i] * 1000:g}ms" if i < len(DURATION_BUCKETS) \
                    else f">{DURATION_BUCKETS[-1]:g}s"
        return "-"


def service(ns: str, name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": "http"}]}}


async def part_c(cl: Cluster, deployments: int, per: int) -> list[str]:
    ns = "bench-c"
    await cl.namespace(ns)
    # One group per controller; the node agents (one per node) as one row.
    groups: dict[str, list[Controller]] = {}
    for c in cl.controllers:
        groups.setdefault("node:*" if c.name.startswith("node:") else c.name, []).append(c)
    before = {g: Snap.of(cs) for g, cs in groups.items()}
    depth: Counter[str] = Counter()         # max over time of the group's summed depth
    single: Counter[str] = Counter()        # max over time of one member's depth
    backlog_until: dict[str, float] = {}    # last sample with a non-empty queue
    stop = asyncio.Event()
    t0 = time.perf_counter()

    async def sample() -> None:
        while not stop.is_set():
            now = time.perf_counter() - t0
            for g, cs in groups.items():
                ds = [c.queue_depth for c in cs]
                depth[g] = max(depth[g], sum(ds))
                single[g] = max(single[g], max(ds))
                if sum(ds):
                    backlog_until[g] = now
            await asyncio.sleep(0.02)

    available: dict[str, int] = {}
    done_at: list[float] = []

    def on_deploy(ev: WatchEvent, now: float) -> bool:
        available[ev.name] = status_of(ev).get("availableReplicas") or 0
        if sum(1 for v in available.values() if v == per) == deployments:
            done_at.append(now)
            return True
        return False

    sampler = asyncio.create_task(sample())
    watch = watch_until(cl.store, "deployments.apps", ns, on_deploy, 240)
    rev0, t0 = cl.store.revision, time.perf_counter()
    try:
        for i in range(deployments):
            await cl.api.create(SVC, ns, service(ns, f"d{i:03d}"))
            await cl.api.create(DEPLOY, ns, deployment(ns, f"d{i:03d}", per))
        t_created = time.perf_counter() - t0
        try:
            await watch
            total = done_at[0] - t0
        except asyncio.TimeoutError:
            total = float("nan")
        writes = cl.store.revision - rev0
        drain = await cl.settle(60)
    finally:
        stop.set()
        await sampler
    gc.collect()
    rss, peak = rss_mb()
    pods = len(cl.store.list("pods", ns)[0])
    eps = sum(len(s.get("addresses") or []) for e in cl.store.list("endpoints", ns)[0]
              for s in e.obj.get("subsets") or [])
    relists = sum(max(0, inf.lists - 1) for inf in cl.ctx.factory.informers)
    done = sum(1 for v in available.values() if v == per)
    lines = [f"(c) {deployments} Deployments x {per} replicas (+ a Service each) on "
             f"{len(cl.config.nodes)} simulated nodes: {pods} pods, {eps} ready endpoint "
             f"addresses",
             f"    creating the {deployments} Deployments + Services took {t_created:.2f} s; "
             f"all available after {total:.2f} s ({done}/{deployments}); queues empty "
             f"{drain:.2f} s later",
             f"    store writes: {writes} ({writes / max(pods, 1):.1f} per pod, "
             f"{writes / max(total, 1e-9):.0f}/s); informer re-lists: {relists}",
             f"    {'controller':24s}{'max queue':>10s}{'backlog until':>14s}"
             f"{'reconciles':>11s}{'p50':>10s}{'p99':>10s}{'mean ms':>9s}{'errors':>7s}"]
    for g, cs in groups.items():
        d = Snap.of(cs).minus(before[g])
        if not d.count and not depth[g]:
            continue
        name = f"node:* ({len(cs)} agents)" if g == "node:*" else g
        q = f"{depth[g]}" if len(cs) == 1 else f"{depth[g]} (1:{single[g]})"
        until = f"{backlog_until[g]:.2f} s" if g in backlog_until else "-"
        mean = 1000 * d.total / d.count if d.count else 0.0
        lines.append(f"    {name:24s}{q:>10s}{until:>14s}{d.count:11d}{d.quantile(0.5):>10s}"
                     f"{d.quantile(0.99):>10s}{mean:9.2f}{d.errors:7d}")
    lines += [f"    RSS after settling: {rss:.0f} MiB (peak {peak:.0f} MiB over the whole "
              f"bench)"]
    return lines


# ---- driver ------------------------------------------------------------------------------

@dataclass
class Profiler:
    part: str
    out: str = ""
    prof: cProfile.Profile = field(default_factory=cProfile.Profile)

    @contextlib.contextmanager
    def section(self, part: str) -> Iterator[None]:
        """Profile the body when it is the chosen part; report even if it fails."""
        if part != self.part:
            yield
            return
        self.prof.enable()
        try:
            yield
        finally:
            self.prof.disable()
            if self.out:
                self.prof.dump_stats(self.out)   # for pstats: sort by cumulative, callers…
            print(f"\n--- cProfile of part ({part}), top 30 by own time ---")
            pstats.Stats(self.prof, stream=sys.stdout).sort_stats("tottime").print_stats(30)


async def main(args: argparse.Namespace) -> None:
    counter = LogCounter()
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger().addHandler(counter)
    prof = Profiler(args.profile or "", args.profile_out)
    out: list[str] = []
    with tempfile.TemporaryDirectory(prefix="netd-ctlbench-") as tmp:
        if "a" in args.parts or "b" in args.parts:
            nodes = max(10, math.ceil(args.replicas * 1.1 / PODS_PER_NODE))
            t = time.perf_counter()
            cl = await Cluster.start(Path(tmp) / "ab", nodes)
            out.append(f"cluster with {nodes} simulated nodes up in "
                       f"{time.perf_counter() - t:.2f} s")
            try:
                with prof.section("a"):
                    lines, base_ns = await part_a(cl, args.replicas)
                out += lines
                print("\n".join(lines), flush=True)
                if "b" in args.parts:
                    with prof.section("b"):
                        lines = await part_b(cl, base_ns, args.replicas, args.flips)
                    out += lines
                    print("\n".join(lines), flush=True)
            finally:
                await cl.stop()
                del cl
                gc.unfreeze()
                gc.collect()
        if "c" in args.parts:
            pods = args.deployments * args.per_deployment
            nodes = max(2, math.ceil(pods / (PODS_PER_NODE - 10)))
            cl = await Cluster.start(Path(tmp) / "c", nodes)
            try:
                with prof.section("c"):
                    lines = await part_c(cl, args.deployments, args.per_deployment)
                out += lines
                print("\n".join(lines), flush=True)
            finally:
                await cl.stop()
    print("\n=== summary ===")
    print("\n".join(out))
    if counter.counts:
        print("warnings/errors logged: " + ", ".join(
            f"{k}: {v}" for k, v in counter.counts.most_common()))


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--replicas", type=int, default=1000, help="(a)/(b) pod count")
    ap.add_argument("--flips", type=int, default=200, help="(b) readiness flips")
    ap.add_argument("--deployments", type=int, default=100, help="(c) deployments")
    ap.add_argument("--per-deployment", type=int, default=100, help="(c) replicas each")
    ap.add_argument("--parts", default="abc", help="which parts to run (subset of abc)")
    ap.add_argument("--profile", choices=["a", "b", "c"], help="cProfile one part")
    ap.add_argument("--profile-out", default="", help="also dump that profile to this file")
    return ap.parse_args()


if __name__ == "__main__":
    t_all = time.perf_counter()
    asyncio.run(main(parse()))
    print(f"bench finished in {time.perf_counter() - t_all:.1f} s")
