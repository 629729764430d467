"""nftables proxy benchmark (root), issue 6 Performance (d) through the real pipeline:

 (e) with N Services x 5 endpoints (default 10,000) created through the in-process API
     (ObjectAPI on SQLiteStore, the daemon's admission plugins: the real ClusterIP
     allocator) and one EndpointSlice each, the real ProxyService on one real node
     namespace: the time from an EndpointSlice write (one endpoint moved) to the
     transaction containing it being committed by the kernel, p50 / p99 / max over
     `--changes` writes, with the breakdown
        write   ObjectAPI.update returned (validation, store commit)
        event   the tracker's handler saw it (watch -> informer -> ProxyTracker)
        sync    NodeProxy.sync started (BoundedFrequencyRunner, min interval 0)
        live    libnftables returned from the transaction that carries the new
                endpoint (nftapply.apply; the kernel commits before it returns)
     and the daemon's own kubeproxy_network_programming_duration_seconds for those
     changes (the slices carry endpoints.kubernetes.io/last-change-trigger-time set to
     the write time, as the EndpointSlice controller would).
     A few extra samples check "live" with real traffic: a probe Service's only
     endpoint is moved to another port of a server pod, and a client pod connects to
     the ClusterIP (a thread, 1 ms apart) until the new port answers.

Usage: sudo .venv/bin/python bench/proxy_pipeline_bench.py [--services N]
           [--changes 50] [--probes 5] [--profile FILE]
It creates its own cluster network (random name and ranges) and store (a temp
directory) and removes both at the end.
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import random
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from netd.api.kinds import REGISTRY, ResourceType  # noqa: E402
from netd.config import Config, NodeConfig  # noqa: E402
from netd.controllers.endpoints import format_time  # noqa: E402
from netd.daemon import tune_gc  # noqa: E402
from netd.node import nsexec  # noqa: E402
from netd.node.cluster_net import ClusterNetwork  # noqa: E402
from netd.node.sandbox import Sandbox, SandboxManager  # noqa: E402
from netd.proxy import nftapply  # noqa: E402
from netd.proxy.metrics import metrics  # noqa: E402
from netd.proxy.service import ProxyService  # noqa: E402
from netd.registry import allocators  # noqa: E402
from netd.registry.bootstrap import ensure_system_objects  # noqa: E402
from netd.registry.objectapi import ObjectAPI  # noqa: E402
from netd.store.sqlite import SQLiteStore  # noqa: E402

Obj = dict[str, Any]
NS = "bench"


def _rt(group: str, plural: str) -> ResourceType:
    rt = REGISTRY.by_plural(group, plural)
    assert rt is not None
    return rt


SVC, SLICE, NAMESPACE = (_rt("", "services"), _rt("discovery.k8s.io", "endpointslices"),
                         _rt("", "namespaces"))


@dataclass
class Ctx:
    api: ObjectAPI
    config: Config


def service(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NS},
            "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}


def endpoint_slice(name: str, addrs: list[tuple[str, int]], node: str) -> Obj:
    """One slice; endpoints share one port number per slice in Kubernetes, so moving an
    endpoint means moving it to another address (the port is the slice's)."""
    port = addrs[0][1]
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{name}-x1", "namespace": NS,
                         "labels": {"kubernetes.io/service-name": name,
                                    "endpointslice.kubernetes.io/managed-by": "bench"},
                         "annotations": {"endpoints.kubernetes.io/last-change-trigger-time":
                                         format_time(datetime.now(timezone.utc))}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}, "nodeName": node}
                          for ip, _ in addrs]}


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, int(round(len(s) * p)) - 1))]


def fmt(xs: list[float]) -> str:
    return (f"p50 {pct(xs, 0.5) * 1000:6.1f}  p99 {pct(xs, 0.99) * 1000:6.1f}  "
            f"max {max(xs) * 1000:6.1f} ms")


class Probe:
    """Every timestamp the pipeline passes, for the change being measured."""

    def __init__(self) -> None:
        self.marker = ""            # text the transaction carrying the change contains
        self.event = self.sync = self.live = 0.0
        self.done = asyncio.Event()

    def arm(self, marker: str) -> None:
        self.marker, self.event, self.sync, self.live = marker, 0.0, 0.0, 0.0
        self.done.clear()


def instrument(proxy: ProxyService, probe: Probe) -> None:
    assert proxy.tracker is not None and len(proxy.nodes) == 1
    node = proxy.nodes[0]

    def on_change() -> None:          # ProxyTracker calls it for every event (synced)
        if probe.marker and not probe.event:
            probe.event = time.perf_counter()
    proxy.tracker.subscribe(on_change)
    inner_fn = node.runner.fn

    async def sync() -> None:
        if probe.marker and probe.event and not probe.sync:
            probe.sync = time.perf_counter()
        await inner_fn()
    node.runner.fn = sync
    inner_apply = nftapply.apply

    async def apply(netns_path: str | None, text: str) -> None:
        await inner_apply(netns_path, text)
        if probe.marker and probe.marker in text and not probe.live:
            probe.live = time.perf_counter()
            probe.done.set()
    nftapply.apply = apply            # type: ignore[assignment]


def connect_until(sb: Sandbox, ip: str, want: bytes, stop: threading.Event,
                  out: list[float]) -> None:
    """(thread) Connect to ip:80 from the client pod until the answer is `want`."""
    nsexec.enter(sb.netns_path, nsexec.CLONE_NEWNET)
    while not stop.is_set():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(1.0)
        try:
            s.connect((ip, 80))
            got = s.recv(16)
        except OSError:
            got = b""
        finally:
            s.close()
        if got == want:
            out.append(time.perf_counter())
            return
        time.sleep(0.001)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--changes", type=int, default=50)
    ap.add_argument("--probes", type=int, default=5)
    ap.add_argument("--profile", default="", help="cProfile the changes into this file")
    args = ap.parse_args()
    a, b, c = random.sample(range(100, 250), 3)
    name = "pp" + os.urandom(2).hex()
    tmp = tempfile.TemporaryDirectory(prefix="netd-pipeline-")
    cfg = replace(Config(), cluster_name=name, pod_cidr=f"10.{a}.0.0/16",
                  service_cidr=f"10.{b}.0.0/16", dns_ip=f"10.{b}.0.10",
                  node_network=f"10.{c}.0.0/24", state_dir=tmp.name,
                  nodes=[NodeConfig("node-1")])
    net = ClusterNetwork(cfg)
    store = SQLiteStore(os.path.join(tmp.name, "store.db"),
                        history_size=cfg.store.history_size)
    api = ObjectAPI(store, plugins=allocators.plugins(cfg, store))
    proxy: ProxyService | None = None
    manager: SandboxManager | None = None
    server: asyncio.AbstractServer | None = None
    servers: list[asyncio.AbstractServer] = []
    try:
        (n1,) = await net.ensure()
        host = lambda h: n1.gateway.rsplit(".", 1)[0] + f".{h}"  # noqa: E731
        manager = SandboxManager(cfg, n1)
        client = await manager.create(NS, "client", host(2), "client")
        srv = await manager.create(NS, "server", host(3), "server")
        for port in range(9000, 9000 + args.probes + 1):
            lsock = manager.open_socket(srv, socket.AF_INET, socket.SOCK_STREAM, port)

            async def answer(r: asyncio.StreamReader, w: asyncio.StreamWriter,
                             tag: bytes = str(port).encode()) -> None:
                w.write(tag)
                await w.drain()
                w.close()
            servers.append(await asyncio.start_server(answer, sock=lsock, backlog=1024))

        await ensure_system_objects(api, cfg)
        await api.create(NAMESPACE, "", {"apiVersion": "v1", "kind": "Namespace",
                                         "metadata": {"name": NS}})
        n = args.services
        t = time.perf_counter()
        addrs = [[(host(10 + (i * 5 + j) % 240), 8080) for j in range(5)] for i in range(n)]
        for i in range(n):
            await api.create(SVC, NS, service(f"s{i}"))
            await api.create(SLICE, NS, endpoint_slice(f"s{i}", addrs[i], "node-1"))
        svc = await api.create(SVC, NS, service("probe"))
        probe_ip = svc.obj["spec"]["clusterIP"]
        await api.create(SLICE, NS, endpoint_slice("probe", [(srv.ip, 9000)], "node-1"))
        print(f"(e) {n} services x 5 endpoints through the API, one node "
              f"(created in {time.perf_counter() - t:.1f} s)")

        tune_gc()      # as the daemon does once its store is open
        proxy = ProxyService(Ctx(api, cfg), net)
        t = time.perf_counter()
        await proxy.start()
        await proxy.wait_synced(300)
        print(f"    proxy start -> first full sync applied: {time.perf_counter() - t:.2f} s")
        probe = Probe()
        instrument(proxy, probe)
        hist = metrics().network_programming
        before_counts, before_n, before_sum = list(hist.counts), hist.count, hist.sum

        write, event, sync, live = [], [], [], []
        prof = cProfile.Profile() if args.profile else None
        for k in range(args.changes):
            i = random.randrange(n)
            new_ip = host(250 + k % 5)
            addrs[i] = addrs[i][1:] + [(new_ip, 8080)]
            cur = api.get(SLICE, NS, f"s{i}-x1").obj
            body = endpoint_slice(f"s{i}", addrs[i], "node-1")
            body["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
            probe.arm(f"{new_ip} . 8080")
            if prof:
                prof.enable()
            t0 = time.perf_counter()
            await api.update(SLICE, NS, f"s{i}-x1", body)
            t1 = time.perf_counter()
            await asyncio.wait_for(probe.done.wait(), 30)
            if prof:
                prof.disable()
            write.append(t1 - t0)
            event.append(probe.event - t0)
            sync.append(probe.sync - t0)
            live.append(probe.live - t0)
        print(f"    change -> live over {args.changes} slice updates (from the write):")
        print(f"      write returned   {fmt(write)}")
        print(f"      tracker event    {fmt(event)}")
        print(f"      sync started     {fmt(sync)}")
        print(f"      live (committed) {fmt(live)}")
        d = [a - b for a, b in zip(live, sync)]
        print(f"      sync -> live     {fmt(d)}")
        counts = [x - y for x, y in zip(hist.counts, before_counts)]
        got = hist.count - before_n
        cum, buckets = 0, []
        for le, c_ in zip(hist.buckets, counts):
            cum += c_
            if le <= 0.25:
                buckets.append(f"<={le * 1000:g}ms:{cum}")
        print(f"    kubeproxy_network_programming_duration_seconds for them: {got} "
              f"observations, mean {(hist.sum - before_sum) / max(1, got) * 1000:.1f} ms, "
              f"cumulative {' '.join(buckets)}")
        if prof:
            prof.dump_stats(args.profile)

        if args.probes:
            seen: list[float] = []
            for k in range(args.probes):
                port = 9001 + k
                cur = api.get(SLICE, NS, "probe-x1").obj
                body = endpoint_slice("probe", [(srv.ip, port)], "node-1")
                body["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
                probe.arm(f"{srv.ip} . {port}")
                stop, out = threading.Event(), []  # type: ignore[var-annotated]
                t0 = time.perf_counter()
                await api.update(SLICE, NS, "probe-x1", body)
                th = threading.Thread(target=connect_until, args=(
                    client, probe_ip, str(port).encode(), stop, out), daemon=True)
                th.start()
                try:
                    await asyncio.wait_for(probe.done.wait(), 30)
                    for _ in range(3000):
                        if out:
                            break
                        await asyncio.sleep(0.001)
                finally:
                    stop.set()
                    th.join(5)
                if out:
                    seen.append(out[0] - t0)
                    print(f"      probe {k}: applied {(probe.live - t0) * 1000:.1f} ms, "
                          f"first connection to the new endpoint {seen[-1] * 1000:.1f} ms")
                else:
                    print(f"      probe {k}: the new endpoint never answered")
            if seen:
                print(f"    real connection through the ClusterIP: {fmt(seen)}")
    finally:
        if proxy is not None:
            await proxy.stop()
        for s in servers:
            s.close()
        if manager is not None:
            manager.close()
        await net.teardown()
        await store.close()
        tmp.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
