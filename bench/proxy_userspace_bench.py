"""Userspace proxy throughput and connection rate vs the direct path, in one run (root).

A throwaway two-node cluster (its own name and ranges, torn down at the end): a server
pod on node-1, client pods on node-1 and node-2. iperf3 measures TCP throughput
pod -> pod directly, pod -> ClusterIP and pod -> NodePort (the proxy runs in this
process's event loop, as in the daemon); a small client process measures new
connections per second the same three ways. Prints figures and the ratio to direct.

    sudo .venv/bin/python bench/proxy_userspace_bench.py [--seconds 5]
"""
from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import random
import sys
from dataclasses import replace
from types import SimpleNamespace

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from netd.config import Config, NodeConfig  # noqa: E402
from netd.node.cluster_net import ClusterNetwork  # noqa: E402
from netd.node.sandbox import SandboxManager  # noqa: E402
from netd.proxy.model import Endpoint, ServicePort, Snapshot  # noqa: E402
from netd.proxy.userspace import UserspaceProxy  # noqa: E402

IPERF_PORT, ACCEPT_PORT, NODE_PORT, NODE_PORT2 = 5201, 7000, 30201, 30202

# A server that accepts, writes one byte and closes; and a client that opens connections
# one after another for `secs`, reading that byte each time. Both run as separate
# processes inside pod namespaces so they do not share the proxy's CPU time slice.
SERVER = """
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", %d)); s.listen(1024)
while True:
    c, _ = s.accept(); c.send(b"x"); c.close()
"""
CLIENT = """
import socket, sys, time
ip, port, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
n = 0; end = time.monotonic() + secs
while time.monotonic() < end:
    c = socket.create_connection((ip, port)); c.recv(1); c.close(); n += 1
print(n / secs)
"""


def config() -> Config:
    a, b, c = random.sample(range(100, 250), 3)
    name = "bu" + os.urandom(2).hex()
    return replace(Config(), cluster_name=name, pod_cidr=f"10.{a}.0.0/16",
                   service_cidr=f"10.{b}.0.0/16", dns_ip=f"10.{b}.0.10",
                   node_network=f"10.{c}.0.0/24", state_dir=f"/tmp/netd-bench/{name}",
                   nodes=[NodeConfig("node-1"), NodeConfig("node-2")])


async def run(argv: list[str], timeout: float = 60) -> str:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    if proc.returncode:
        raise RuntimeError(f"{argv}: {err.decode().strip()}")
    return out.decode()


async def iperf(netns: str, ip: str, port: int, secs: float) -> float:
    out = await run(["ip", "netns", "exec", netns, "iperf3", "-c", ip, "-p", str(port),
                     "-t", str(secs), "-J"], timeout=secs + 30)
    return float(json.loads(out)["end"]["sum_received"]["bits_per_second"]) / 1e9


async def conn_rate(netns: str, ip: str, port: int, secs: float) -> float:
    out = await run(["ip", "netns", "exec", netns, sys.executable, "-c", CLIENT, ip,
                     str(port), str(secs)], timeout=secs + 30)
    return float(out.strip())


async def main(secs: float) -> None:
    cfg = config()
    network = ClusterNetwork(cfg)
    procs: list[asyncio.subprocess.Process] = []
    proxy = UserspaceProxy(SimpleNamespace(config=cfg), network)  # type: ignore[arg-type]
    managers: list[SandboxManager] = []
    try:
        n1, n2 = await network.ensure()
        m1, m2 = SandboxManager(cfg, n1), SandboxManager(cfg, n2)
        managers += [m1, m2]
        base1 = ipaddress.IPv4Network(n1.pod_cidr).network_address
        base2 = ipaddress.IPv4Network(n2.pod_cidr).network_address
        server = await m1.create("default", "server", str(base1 + 10), "server")
        near = await m1.create("default", "near", str(base1 + 11), "near")
        far = await m2.create("default", "far", str(base2 + 10), "far")
        for argv in (["iperf3", "-s", "-p", str(IPERF_PORT)],
                     [sys.executable, "-c", SERVER % ACCEPT_PORT]):
            procs.append(await asyncio.create_subprocess_exec(
                "ip", "netns", "exec", server.netns, *argv,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL))
        await proxy.start()
        vip = str(ipaddress.IPv4Network(cfg.service_cidr).network_address + 20)

        def ep(port: int) -> tuple[Endpoint, ...]:
            return (Endpoint(server.ip, port, True, True, False, n1.name),)
        await proxy.sync(Snapshot((
            ServicePort("default", "iperf", "", "TCP", (vip,), 80, NODE_PORT, (), 0, False,
                        False, ep(IPERF_PORT)),
            ServicePort("default", "accept", "", "TCP", (vip,), 81, NODE_PORT2, (), 0, False,
                        False, ep(ACCEPT_PORT))), 1))
        await asyncio.sleep(0.5)        # the servers' listen() (bench only, not a test)
        paths = {"direct": (server.ip, IPERF_PORT, ACCEPT_PORT),
                 "clusterIP": (vip, 80, 81),
                 "nodePort": (n1.ip, NODE_PORT, NODE_PORT2)}
        print(f"cluster {cfg.cluster_name}; {secs:g} s per iperf3 run, "
              f"{os.cpu_count()} CPUs")
        for client, label in ((far, "pod on node-2 -> server on node-1"),
                              (near, "pod on node-1 -> server on node-1")):
            print(f"\n{label}")
            results: dict[str, tuple[float, float]] = {}
            for path, (ip, port, cport) in paths.items():
                gbps = await iperf(client.netns, ip, port, secs)
                rate = await conn_rate(client.netns, ip, cport, min(secs, 3.0))
                results[path] = (gbps, rate)
            d_gbps, d_rate = results["direct"]
            for path, (gbps, rate) in results.items():
                print(f"  {path:10s} {gbps:7.2f} Gbit/s ({gbps / d_gbps:4.2f}x)   "
                      f"{rate:8.0f} conn/s ({rate / d_rate:4.2f}x)")
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
                await p.wait()
        await proxy.stop()
        for m in managers:
            m.close()
        await network.teardown()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    asyncio.run(main(ap.parse_args().seconds))
