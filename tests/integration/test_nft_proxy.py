"""The nftables proxy on real namespaces (root): two nodes, pods with TCP/UDP echo
servers served from this test's loop, rules rendered from snapshots and applied with
`nft` inside each node namespace, traffic from pods, nodes and the host."""
from __future__ import annotations

import asyncio
import socket
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from netd.config import Config
from netd.node import nsexec
from netd.node.cluster_net import ClusterNetwork, NodeNet
from netd.node.sandbox import Sandbox, SandboxManager
from netd.proxy.metrics import ProxyMetrics
from netd.proxy.model import Endpoint, ServicePort, Snapshot
from netd.proxy.service import NodeProxy, render_config

pytestmark = pytest.mark.root

PORT = 8080


class FakeTracker:
    """Stands in for ProxyTracker: the test sets the snapshot."""

    def __init__(self) -> None:
        self.snap = Snapshot((), 0)

    def snapshot(self) -> Snapshot:
        return self.snap

    def take_triggers(self) -> list[float]:
        return []

    def requeue_triggers(self, triggers: list[float]) -> None:
        pass


@dataclass
class Env:
    cfg: Config
    net: ClusterNetwork
    nodes: list[NodeNet]
    pods: dict[str, Sandbox]
    tracker: FakeTracker
    proxies: list[NodeProxy]
    servers: list[Any] = field(default_factory=list)
    generation: int = 0

    def svc_ip(self, n: int) -> str:
        return self.cfg.service_cidr.rsplit(".", 2)[0] + f".0.{n}"

    def ep(self, pod: str, port: int = PORT, **kw: Any) -> Endpoint:
        sb = self.pods[pod]
        return Endpoint(sb.ip, port, kw.get("ready", True), True, False, sb.node.name)

    async def program(self, *ports: ServicePort, full: bool = False) -> None:
        self.generation += 1
        self.tracker.snap = Snapshot(tuple(ports), self.generation)
        for p in self.proxies:
            p.runner.run_full = full or p.applied is None
            await p.sync()


def port(name: str, ip: str, eps: tuple[Endpoint, ...], **kw: Any) -> ServicePort:
    base: dict[str, Any] = dict(namespace="default", name=name, port_name="", protocol="TCP",
                                cluster_ips=(ip,), port=80, node_port=0, external_ips=(),
                                affinity_timeout=0, external_local=False,
                                internal_local=False, endpoints=eps)
    base.update(kw)
    return ServicePort(**base)


def ip_in(node: NodeNet, host: int) -> str:
    return node.gateway.rsplit(".", 1)[0] + f".{host}"


def sh(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=20)


async def serve(env: Env, m: SandboxManager, sb: Sandbox, name: str) -> None:
    """TCP: answer every connection with "<name> <peer ip>"; UDP: every datagram."""
    tcp = m.open_socket(sb, socket.AF_INET, socket.SOCK_STREAM, PORT)

    async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(f"{name} {w.get_extra_info('peername')[0]}\n".encode())
        await w.drain()
        w.close()

    env.servers.append(await asyncio.start_server(on_conn, sock=tcp))
    udp = m.open_socket(sb, socket.AF_INET, socket.SOCK_DGRAM, PORT)

    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, transport: Any) -> None:
            self.t = transport

        def datagram_received(self, data: bytes, addr: Any) -> None:
            self.t.sendto(f"{name} {addr[0]}\n".encode(), addr)

    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(Echo, sock=udp)
    env.servers.append(transport)


def _client_socket(netns: str | None, typ: int) -> socket.socket:
    make = (lambda: socket.socket(socket.AF_INET, typ | socket.SOCK_NONBLOCK))
    return make() if netns is None else nsexec.in_netns(netns, make)


async def tcp_get(netns: str | None, ip: str, port: int = 80,
                  timeout: float = 3.0) -> tuple[str, str]:
    """(responder name, source address it saw)."""
    s = _client_socket(netns, socket.SOCK_STREAM)
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(loop.sock_connect(s, (ip, port)), timeout)
        data = await asyncio.wait_for(loop.sock_recv(s, 200), timeout)
    finally:
        s.close()
    name, peer = data.decode().split()
    return name, peer


class UdpClient:
    def __init__(self, netns: str | None, ip: str, port: int) -> None:
        self.s = _client_socket(netns, socket.SOCK_DGRAM)
        self.s.connect((ip, port))

    async def ask(self, timeout: float = 2.0) -> str:
        loop = asyncio.get_running_loop()
        self.s.send(b"?")
        data = await asyncio.wait_for(loop.sock_recv(self.s, 200), timeout)
        return data.decode().split()[0]

    def close(self) -> None:
        self.s.close()


@pytest.fixture
async def env(cluster_config: Config) -> AsyncIterator[Env]:
    net = ClusterNetwork(cluster_config)
    managers: list[SandboxManager] = []
    e: Env | None = None
    try:
        n1, n2 = await net.ensure()
        m1, m2 = SandboxManager(cluster_config, n1), SandboxManager(cluster_config, n2)
        managers = [m1, m2]
        pods = {"a": await m1.create("default", "a", ip_in(n1, 2), "a"),
                "b": await m1.create("default", "b", ip_in(n1, 3), "b"),
                "c": await m2.create("default", "c", ip_in(n2, 2), "c"),
                "d": await m2.create("default", "d", ip_in(n2, 3), "d")}
        tracker = FakeTracker()
        rc = render_config(cluster_config)
        proxies = [NodeProxy(tracker, n, rc, 0.0, 0.0, ProxyMetrics())  # type: ignore[arg-type]
                   for n in (n1, n2)]
        e = Env(cluster_config, net, [n1, n2], pods, tracker, proxies)
        for name in ("a", "b", "c"):
            await serve(e, m1 if pods[name].node is n1 else m2, pods[name], name)
        yield e
    finally:
        if e is not None:
            for srv in e.servers:
                srv.close()
            for p in e.proxies:
                p.close()
        for m in managers:
            m.close()
        await net.teardown()


def netns(env: Env, pod: str) -> str:
    return env.pods[pod].netns_path


async def responders(env: Env, src: str | None, ip: str, port: int = 80,
                     n: int = 30) -> list[tuple[str, str]]:
    return [await tcp_get(netns(env, src) if src else None, ip, port) for _ in range(n)]


async def test_clusterip_spreads_from_pods_and_host(env: Env) -> None:
    ip = env.svc_ip(20)
    await env.program(port("web", ip, (env.ep("a"), env.ep("b"), env.ep("c"))))
    from_pod = await responders(env, "d", ip)
    assert {name for name, _ in from_pod} == {"a", "b", "c"}
    # pod -> ClusterIP keeps the pod's address as source
    assert {peer for _, peer in from_pod} == {env.pods["d"].ip}
    from_host = await responders(env, None, ip)
    assert {name for name, _ in from_host} == {"a", "b", "c"}
    # the host is outside the pod CIDR: masqueraded to a node-side address
    assert env.net.host_ip not in {peer for _, peer in from_host}


async def test_nodeport_from_every_node_and_host(env: Env) -> None:
    ip = env.svc_ip(21)
    await env.program(port("np", ip, (env.ep("a"), env.ep("c")), node_port=30080))
    for node in env.nodes:
        got = await responders(env, None, node.ip, 30080, n=20)
        assert {name for name, _ in got} == {"a", "c"}, node.name
        got = await responders(env, "d", node.ip, 30080, n=4)
        assert {name for name, _ in got} <= {"a", "c"}


async def test_session_affinity_sticks_then_expires(env: Env) -> None:
    ip = env.svc_ip(22)
    await env.program(port("sticky", ip, (env.ep("a"), env.ep("b"), env.ep("c")),
                           affinity_timeout=1))
    got = await responders(env, "d", ip, n=20)
    assert len({name for name, _ in got}) == 1, got
    # expiry: wait (deadline, no fixed sleep) until the affinity entries are gone
    node2 = env.nodes[1]
    deadline = asyncio.get_running_loop().time() + 10

    def aff_elements() -> bool:
        out = sh("ip", "netns", "exec", node2.netns or "", "nft", "list", "sets", "ip").stdout
        in_affinity = False
        for line in out.splitlines():
            if line.strip().startswith("set "):
                in_affinity = line.strip().startswith("set affinity-")
            elif in_affinity and "elements" in line:
                return True
        return False
    while aff_elements():
        assert asyncio.get_running_loop().time() < deadline, "affinity never expired"
        await asyncio.sleep(0.1)
    # after expiry the pick is random again (each first connection after an expiry
    # may land elsewhere); every connection refreshes the entry, so wait for each expiry
    firsts = set()
    for _ in range(12):
        while aff_elements():
            await asyncio.sleep(0.1)
        firsts.add((await tcp_get(netns(env, "d"), ip))[0])
        if len(firsts) > 1:
            break
    assert len(firsts) > 1


async def test_no_endpoints_refused_at_once_and_unknown_port(env: Env) -> None:
    ip = env.svc_ip(23)
    other = env.svc_ip(24)
    await env.program(port("empty", ip, (), node_port=30081),
                      port("web", other, (env.ep("a"),)),
                      port("udp-empty", ip, (), protocol="UDP", port=53))
    loop = asyncio.get_running_loop()
    for src, target, p in (("d", ip, 80), (None, ip, 80), (None, env.nodes[0].ip, 30081),
                           ("d", other, 81)):
        start = loop.time()
        with pytest.raises(ConnectionRefusedError):
            await tcp_get(netns(env, src) if src else None, target, p)
        assert loop.time() - start < 1.0
    u = UdpClient(netns(env, "d"), ip, 53)
    try:
        with pytest.raises(ConnectionRefusedError):
            await u.ask()
            await u.ask()
    finally:
        u.close()


async def test_hairpin(env: Env) -> None:
    ip = env.svc_ip(25)
    await env.program(port("self", ip, (env.ep("a"),)))
    name, peer = await tcp_get(netns(env, "a"), ip)
    assert name == "a"
    assert peer == env.nodes[0].gateway      # masqueraded to the node side of its veth


async def test_endpoint_removal_takes_effect_at_sync(env: Env) -> None:
    ip = env.svc_ip(26)
    await env.program(port("web", ip, (env.ep("a"), env.ep("c"))))
    assert {n for n, _ in await responders(env, "d", ip, n=20)} == {"a", "c"}
    await env.program(port("web", ip, (env.ep("a"),)))
    assert {n for n, _ in await responders(env, "d", ip, n=20)} == {"a"}
    # the partial sync touched only what changed, in one transaction
    assert env.proxies[1].syncs == 2


async def test_udp_endpoint_change_flushes_conntrack(env: Env) -> None:
    ip = env.svc_ip(27)
    await env.program(port("dns", ip, (env.ep("a"),), protocol="UDP"))
    u = UdpClient(netns(env, "d"), ip, 80)
    try:
        assert await u.ask() == "a"
        assert await u.ask() == "a"
        await env.program(port("dns", ip, (env.ep("c"),), protocol="UDP"))
        # same socket, same 5-tuple: without the flush it would still go to a
        assert await u.ask() == "c"
    finally:
        u.close()
    assert env.proxies[1].metrics.conntrack_deleted.get(node=env.nodes[1].name) >= 1


async def test_external_traffic_policy_local(env: Env) -> None:
    ip = env.svc_ip(28)
    await env.program(port("local", ip, (env.ep("a"),), node_port=30082,
                           external_local=True))
    n1, n2 = env.nodes
    got = await responders(env, None, n1.ip, 30082, n=5)
    # source preserved: the pod sees the host's own address
    assert got == [("a", env.net.host_ip)] * 5
    # a node without a local endpoint drops (no reply, not refused)
    with pytest.raises(asyncio.TimeoutError):
        await tcp_get(None, n2.ip, 30082, timeout=0.5)
    # pods still reach it through that node (cluster-wide fallback)
    assert (await tcp_get(netns(env, "d"), n2.ip, 30082))[0] == "a"


async def test_internal_traffic_policy_local(env: Env) -> None:
    ip = env.svc_ip(29)
    await env.program(port("itp", ip, (env.ep("a"), env.ep("b"), env.ep("c")),
                           internal_local=True))
    assert {n for n, _ in await responders(env, "d", ip, n=10)} == {"c"}


async def test_restart_full_sync_adopts_table(env: Env) -> None:
    ip = env.svc_ip(30)
    await env.program(port("old", ip, (env.ep("a"), env.ep("c"))))
    # a "restarted" proxy knows nothing about what is in the kernel
    for p in env.proxies:
        p.close()            # a new process: new nft contexts
    fresh = [NodeProxy(env.tracker, p.node, p.cfg, 0.0, 0.0, ProxyMetrics())  # type: ignore[arg-type]
             for p in env.proxies]
    env.proxies = fresh
    await env.program(port("new", env.svc_ip(31), (env.ep("b"),)))
    listing = sh("ip", "netns", "exec", env.nodes[0].netns or "", "nft", "list", "table",
                 "ip", "netd").stdout
    # old's ClusterIP and its pick chain for two endpoints are gone, new's are there
    assert f"{ip} . 80" not in listing and "pick-tcp-2" not in listing
    assert f"{env.svc_ip(31)} . 80 . 0 : {env.pods['b'].ip} . {PORT}" in listing
    assert (await tcp_get(netns(env, "d"), env.svc_ip(31)))[0] == "b"
    # an address no service has any more is dropped (it must not bounce around)
    with pytest.raises(asyncio.TimeoutError):
        await tcp_get(netns(env, "d"), ip, timeout=0.5)
