"""nftables proxy benchmark (root), issue 6 Performance (a)-(d), with the direct
pod -> pod path measured in the same run as the baseline:

 (a) TCP throughput (iperf3, 3 s): pod -> pod direct, pod -> ClusterIP, pod -> NodePort
 (b) new TCP connections/s (asyncio client, 32 in flight): direct vs ClusterIP
 (c) first-packet latency (TCP connect time, median of 300) with 10 / 1,000 / 10,000
     services present
 (d) with 10,000 services x 5 endpoints: full sync time; change-to-live time
     (endpoint change -> partial transaction applied) p50 / p99 over 50 changes

Usage: sudo .venv/bin/python bench/proxy_bench.py [--quick]
It creates its own cluster (random name and ranges) and removes it at the end.
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from netd.config import Config, NodeConfig  # noqa: E402
from netd.daemon import tune_gc  # noqa: E402
from netd.node import nsexec  # noqa: E402
from netd.node.cluster_net import ClusterNetwork, NodeNet  # noqa: E402
from netd.node.sandbox import Sandbox, SandboxManager  # noqa: E402
from netd.proxy.metrics import ProxyMetrics  # noqa: E402
from netd.proxy.model import Endpoint, LogEntry, ServicePort, Snapshot, SvcKey  # noqa: E402
from netd.proxy.service import NodeProxy, render_config  # noqa: E402


class Tracker:
    """Hands NodeProxy the snapshots the bench makes. Like ProxyTracker's, they carry a
    change log when the bench says which Services changed (a partial sync then looks
    at those only); without one, every port is compared."""

    def __init__(self) -> None:
        self.snap = Snapshot((), 0)
        self.log: tuple[LogEntry, ...] = ()

    def set(self, ports: list[ServicePort], changed: set[SvcKey] | None) -> None:
        gen = self.snap.generation + 1
        if changed is None:
            self.log = ()
            self.snap = Snapshot(tuple(ports), gen)
            return
        self.log = (self.log + ((self.snap.generation, gen, frozenset(changed)),))[-64:]
        services: dict[SvcKey, tuple[ServicePort, ...]] = {}
        for p in ports:
            key = (p.namespace, p.name)
            services[key] = services.get(key, ()) + (p,)
        self.snap = Snapshot.of_services(services, sorted(services), gen, self.log)

    def snapshot(self) -> Snapshot:
        return self.snap

    def take_triggers(self) -> list[float]:
        return []

    def requeue_triggers(self, triggers: list[float]) -> None:
        pass


def sp(name: str, ip: str, eps: tuple[Endpoint, ...], port: int = 80,
       node_port: int = 0) -> ServicePort:
    return ServicePort("bench", name, "", "TCP", (ip,), port, node_port, (), 0, False, False,
                       eps)


def svc_ip(cfg: Config, i: int) -> str:
    a, b = cfg.service_cidr.split(".")[:2]
    return f"{a}.{b}.{(i >> 8) & 255}.{(i & 255)}"


async def program(proxies: list[NodeProxy], tracker: Tracker, ports: list[ServicePort],
                  full: bool = False, changed: set[SvcKey] | None = None) -> float:
    tracker.set(ports, changed)
    start = time.perf_counter()
    for p in proxies:
        p.runner.run_full = full or p.applied is None
        await p.sync()
    return time.perf_counter() - start


def client_socket(sb: Sandbox) -> socket.socket:
    return nsexec.in_netns(sb.netns_path, lambda: socket.socket(
        socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK))


async def conn_rate(sb: Sandbox, ip: str, port: int, total: int) -> float:
    loop = asyncio.get_running_loop()
    socks = [client_socket(sb) for _ in range(total)]     # sockets made up front
    it = iter(socks)

    async def worker() -> None:
        for s in it:
            await loop.sock_connect(s, (ip, port))
            await loop.sock_recv(s, 16)
            s.close()
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(32)))
    return total / (time.perf_counter() - start)


async def connect_latency(sb: Sandbox, ip: str, port: int, n: int) -> float:
    loop = asyncio.get_running_loop()
    out = []
    for _ in range(n):
        s = client_socket(sb)
        t = time.perf_counter()
        await loop.sock_connect(s, (ip, port))
        out.append(time.perf_counter() - t)
        s.close()
    return statistics.median(out) * 1e6


def iperf(client: Sandbox, ip: str, port: int, seconds: int) -> float:
    out = subprocess.run(["ip", "netns", "exec", client.netns, "iperf3", "-c", ip, "-p",
                          str(port), "-t", str(seconds), "-J"], capture_output=True,
                         text=True, timeout=seconds + 30)
    doc = json.loads(out.stdout)
    return float(doc["end"]["sum_received"]["bits_per_second"]) / 1e9


async def part_d(node1: list[NodeProxy], tracker: Tracker, cfg: Config, n2: NodeNet,
                 big: int, profile: str) -> None:
    gw = lambda n, h: n.gateway.rsplit(".", 1)[0] + f".{h}"  # noqa: E731
    print(f"(d) {big} services x 5 endpoints")
    ports = [sp(f"s{i}", svc_ip(cfg, 1000 + i), tuple(
        Endpoint(gw(n2, 10 + (i * 5 + j) % 240), 8080 + j, True, True, False, "node-2")
        for j in range(5))) for i in range(big)]
    prof = cProfile.Profile() if profile else None
    if prof:
        prof.enable()
    full_t = await program(node1, tracker, ports, full=True)
    full_t2 = await program(node1, tracker, ports, full=True)
    if prof:
        prof.disable()
        prof.dump_stats(profile + ".full")
        prof = cProfile.Profile()
        prof.enable()
    print(f"    full sync (one node, render + nft): first {full_t * 1000:.0f} ms, "
          f"again {full_t2 * 1000:.0f} ms")
    changes: list[float] = []
    for k in range(50):
        i = random.randrange(big)
        old = ports[i]
        eps = old.endpoints[1:] + (Endpoint(gw(n2, 250), 9000 + k, True, True, False,
                                            "node-2"),)
        ports[i] = replace(old, endpoints=eps)
        changes.append(await program(node1, tracker, ports,
                                     changed={(old.namespace, old.name)}))
    if prof:
        prof.disable()
        prof.dump_stats(profile)
    changes.sort()
    p50, p99 = changes[len(changes) // 2], changes[int(len(changes) * 0.99) - 1]
    print(f"    endpoint change -> live (partial sync, one node): p50 {p50 * 1000:.1f} ms "
          f"p99 {p99 * 1000:.1f} ms max {changes[-1] * 1000:.1f} ms")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--parts", default="abcd", help="which of (a)-(d) to run")
    ap.add_argument("--services", type=int, default=0,
                    help="the big scale of (c) and (d) (default 10,000; 2,000 with --quick)")
    ap.add_argument("--profile", default="", help="cProfile (d)'s syncs into this file")
    ap.add_argument("--rounds", type=int, default=3,
                    help="alternating direct/proxied rounds of (a) and (b)")
    args = ap.parse_args()
    big = args.services or (2000 if args.quick else 10000)
    a, b, c = random.sample(range(100, 250), 3)
    name = "pb" + os.urandom(2).hex()
    cfg = replace(Config(), cluster_name=name, pod_cidr=f"10.{a}.0.0/16",
                  service_cidr=f"10.{b}.0.0/16", dns_ip=f"10.{b}.0.10",
                  node_network=f"10.{c}.0.0/24", state_dir=f"/tmp/netd-bench/{name}",
                  nodes=[NodeConfig("node-1"), NodeConfig("node-2")])
    net = ClusterNetwork(cfg)
    tune_gc()       # the daemon's garbage-collector settings, as in its process
    iperf_proc = None
    managers: list[SandboxManager] = []
    servers: list[asyncio.AbstractServer] = []
    proxies: list[NodeProxy] = []
    try:
        n1, n2 = await net.ensure()
        m1, m2 = SandboxManager(cfg, n1), SandboxManager(cfg, n2)
        managers = [m1, m2]
        gw = lambda n, h: n.gateway.rsplit(".", 1)[0] + f".{h}"  # noqa: E731
        client = await m1.create("bench", "client", gw(n1, 2), "client")
        server = await m2.create("bench", "server", gw(n2, 2), "server")
        lsock = m2.open_socket(server, socket.AF_INET, socket.SOCK_STREAM, 8080)

        async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            w.write(b"x")
            await w.drain()
            w.close()
        servers.append(await asyncio.start_server(on_conn, sock=lsock, backlog=4096))
        iperf_proc = subprocess.Popen(["ip", "netns", "exec", server.netns, "iperf3", "-s",
                                       "-p", "5201"], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
        tracker = Tracker()
        rc = render_config(cfg)
        proxies = [NodeProxy(tracker, n, rc, 0.0, 0.0, ProxyMetrics())  # type: ignore[arg-type]
                   for n in (n1, n2)]
        ep_http = Endpoint(server.ip, 8080, True, True, False, "node-2")
        ep_iperf = Endpoint(server.ip, 5201, True, True, False, "node-2")
        web = sp("web", svc_ip(cfg, 20), (ep_http,))
        perf = sp("iperf", svc_ip(cfg, 21), (ep_iperf,), 5201, node_port=30521)
        await program(proxies, tracker, [web, perf], full=True)
        # wait for iperf3's listener
        for _ in range(100):
            if subprocess.run(["ip", "netns", "exec", server.netns, "ss", "-ltn",
                               "sport = :5201"], capture_output=True,
                              text=True).stdout.count("LISTEN"):
                break
            await asyncio.sleep(0.05)

        # (a) and (b) alternate direct and proxied runs and report the median of each
        # round's ratio: on a shared 2-core machine a single pair mostly measures load.
        if "a" in args.parts:
            secs = 2 if args.quick else 3
            print("(a) TCP throughput, iperf3 %ds, Gbit/s, %d rounds" % (secs, args.rounds))
            r_cip, r_np = [], []
            for _ in range(args.rounds):
                direct = iperf(client, server.ip, 5201, secs)
                cip = iperf(client, perf.cluster_ips[0], 5201, secs)
                nport = iperf(client, n2.ip, 30521, secs)
                r_cip.append(cip / direct)
                r_np.append(nport / direct)
                print(f"    direct {direct:.2f}  ClusterIP {cip:.2f} ({cip / direct:.2f}x)  "
                      f"NodePort {nport:.2f} ({nport / direct:.2f}x)")
            print(f"    median ratio: ClusterIP {statistics.median(r_cip):.2f}x  "
                  f"NodePort {statistics.median(r_np):.2f}x")

        if "b" in args.parts:
            total = 1000 if args.quick else 3000
            print(f"(b) new connections/s ({total}, 32 in flight), {args.rounds} rounds")
            ratios = []
            for _ in range(args.rounds):
                d = await conn_rate(client, server.ip, 8080, total)
                v = await conn_rate(client, web.cluster_ips[0], 80, total)
                ratios.append(v / d)
                print(f"    direct {d:.0f}/s  ClusterIP {v:.0f}/s ({v / d:.2f}x)")
            print(f"    median ratio: ClusterIP {statistics.median(ratios):.2f}x")

        if "c" in args.parts:
            print("(c) first-packet latency (TCP connect, median of 300), us")
            base = None
            for count in (10, 1000, big):
                filler = [sp(f"f{i}", svc_ip(cfg, 1000 + i),
                             (Endpoint(gw(n2, 100 + i % 100), 80, True, True, False, "node-2"),))
                          for i in range(count - 2)]
                await program(proxies, tracker, [web, perf] + filler, full=True)
                lat = await connect_latency(client, web.cluster_ips[0], 80, 300)
                base = base or lat
                print(f"    {count:6d} services: {lat:.0f} us ({lat / base:.2f}x of 10)")

        if "d" in args.parts:
            await part_d(proxies[:1], tracker, cfg, n2, big, args.profile)
    finally:
        for p in proxies:
            p.close()
        for s in servers:
            s.close()
        if iperf_proc is not None:
            iperf_proc.terminate()
            iperf_proc.wait()
        for m in managers:
            m.close()
        await net.teardown()


if __name__ == "__main__":
    asyncio.run(main())
