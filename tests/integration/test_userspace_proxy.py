"""The userspace proxy on real namespaces (root): two nodes, pods with TCP/UDP echo
servers (SandboxManager + sockets opened inside the pods), snapshots fed straight to
UserspaceProxy.sync. Every server answers with its pod name so spreading is visible.
Affinity expiry uses a fake monotonic clock patched into the proxy modules."""
from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import subprocess
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from netd.config import Config
from netd.node import nsexec
from netd.node.cluster_net import ClusterNetwork, NodeNet
from netd.node.sandbox import Sandbox, SandboxManager
from netd.proxy import userspace_tcp, userspace_udp
from netd.proxy.model import Endpoint, ServicePort, Snapshot
from netd.proxy.userspace import UserspaceProxy

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]

TCP_PORT, UDP_PORT = 8080, 5353
NODE_PORT = 30080


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@dataclass
class Pod:
    name: str
    sb: Sandbox
    node: str


@dataclass
class Env:
    cfg: Config
    network: ClusterNetwork
    nodes: list[NodeNet]
    proxy: UserspaceProxy
    managers: dict[str, SandboxManager]
    pods: dict[str, Pod] = field(default_factory=dict)
    servers: list[Any] = field(default_factory=list)
    generation: int = 0

    def svc_ip(self, n: int) -> str:
        net = ipaddress.IPv4Network(self.cfg.service_cidr)
        return str(net.network_address + n)

    async def add_pod(self, name: str, node_index: int) -> Pod:
        node = self.nodes[node_index]
        ip = str(ipaddress.IPv4Network(node.pod_cidr).network_address + 10 + len(self.pods))
        sb = await self.managers[node.name].create("default", name, ip, name)
        mgr = self.managers[node.name]
        tcp = mgr.open_socket(sb, socket.AF_INET, socket.SOCK_STREAM, TCP_PORT)
        udp = mgr.open_socket(sb, socket.AF_INET, socket.SOCK_DGRAM, UDP_PORT)

        async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            w.write(f"{name}\n".encode())
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
            w.close()

        self.servers.append(await asyncio.start_server(serve, sock=tcp))

        class Udp(asyncio.DatagramProtocol):
            def connection_made(self, transport: Any) -> None:
                self.t = transport

            def datagram_received(self, data: bytes, addr: Any) -> None:
                self.t.sendto(f"{name}:".encode() + data, addr)

        t, _ = await asyncio.get_running_loop().create_datagram_endpoint(Udp, sock=udp)
        self.servers.append(t)
        pod = Pod(name, sb, node.name)
        self.pods[name] = pod
        return pod

    def endpoints(self, *names: str, port: int = TCP_PORT,
                  unready: tuple[str, ...] = ()) -> tuple[Endpoint, ...]:
        return tuple(Endpoint(self.pods[n].sb.ip, port, n not in unready, n not in unready,
                              False, self.pods[n].node) for n in names)

    async def sync(self, *ports: ServicePort) -> None:
        self.generation += 1
        await self.proxy.sync(Snapshot(tuple(ports), self.generation))


def service(ip: str, eps: tuple[Endpoint, ...], *, name: str = "web", protocol: str = "TCP",
            port: int = 80, node_port: int = 0, affinity: int = 0,
            ext_local: bool = False) -> ServicePort:
    return ServicePort("default", name, "", protocol, (ip,), port, node_port, (), affinity,
                       ext_local, False, eps)


@pytest.fixture
async def env(cluster_config: Config) -> AsyncIterator[Env]:
    network = ClusterNetwork(cluster_config)
    proxy: UserspaceProxy | None = None
    e: Env | None = None
    try:
        nodes = await network.ensure()
        managers = {n.name: SandboxManager(cluster_config, n) for n in nodes}
        proxy = UserspaceProxy(SimpleNamespace(config=cluster_config),  # type: ignore[arg-type]
                               network, udp_idle_timeout=5.0)
        await proxy.start()
        e = Env(cluster_config, network, nodes, proxy, managers)
        yield e
    finally:
        if proxy is not None:
            await proxy.stop()
        if e is not None:
            for s in e.servers:
                s.close()
            for m in e.managers.values():
                m.close()
        await network.teardown()


# ---- clients --------------------------------------------------------------------------------

async def _socket(src: Pod | None, kind: int) -> socket.socket:
    def make() -> socket.socket:
        if src is not None:
            nsexec.enter(src.sb.netns_path, nsexec.CLONE_NEWNET)
        s = socket.socket(socket.AF_INET, kind)
        s.setblocking(False)
        return s
    return await nsexec.workers().run(make)


async def who(src: Pod | None, ip: str, port: int, timeout: float = 3.0) -> str:
    """Connect (from a pod, or the host when src is None) and read the server's name."""
    loop = asyncio.get_running_loop()
    s = await _socket(src, socket.SOCK_STREAM)
    try:
        async with asyncio.timeout(timeout):
            await loop.sock_connect(s, (ip, port))
            data = b""
            while not data.endswith(b"\n"):
                chunk = await loop.sock_recv(s, 100)
                if not chunk:
                    raise ConnectionResetError("closed before the greeting")
                data += chunk
        return data.decode().strip()
    finally:
        s.close()


async def udp_ask(s: socket.socket, ip: str, port: int, payload: bytes = b"ping",
                  timeout: float = 3.0) -> str:
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout):
        if not _connected(s):
            s.connect((ip, port))
        await loop.sock_sendall(s, payload)
        data = await loop.sock_recv(s, 2048)
    name, _, echoed = data.decode().partition(":")
    assert echoed == payload.decode()
    return name


def _connected(s: socket.socket) -> bool:
    try:
        s.getpeername()
    except OSError:
        return False
    return True


# ---- tests --------------------------------------------------------------------------------

async def test_clusterip_spreads_from_pods_and_host_and_nodeport_everywhere(env: Env) -> None:
    a1, a2 = await env.add_pod("a1", 0), await env.add_pod("a2", 0)
    b1 = await env.add_pod("b1", 1)
    vip = env.svc_ip(20)
    await env.sync(service(vip, env.endpoints("a1", "a2", "b1"), node_port=NODE_PORT))
    for src in (a1, b1, None):
        seen = Counter([await who(src, vip, 80) for _ in range(9)])
        assert seen == {"a1": 3, "a2": 3, "b1": 3}, (src and src.name, seen)
    for node in env.nodes:
        assert await who(None, node.ip, NODE_PORT) in {"a1", "a2", "b1"}
        assert await who(a2, node.ip, NODE_PORT) in {"a1", "a2", "b1"}
    # hairpin: a pod reaching itself through its service
    await env.sync(service(vip, env.endpoints("a1")))
    assert await who(a1, vip, 80) == "a1"
    dump = env.proxy.dump()
    assert dump[env.nodes[0].name][0]["endpoints"] == [f"{a1.sb.ip}:{TCP_PORT}"]


async def test_dns_ip_is_left_alone(env: Env) -> None:
    await env.add_pod("a1", 0)
    await env.sync(service(env.cfg.dns_ip, env.endpoints("a1")))
    out = subprocess.run(["ip", "-n", env.nodes[0].netns or "", "-o", "addr", "show"],
                         capture_output=True, text=True).stdout
    assert env.cfg.dns_ip not in out
    assert env.proxy.dump()[env.nodes[0].name] == []


async def test_affinity_sticky_then_expires_and_switches_live(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeTime()
    monkeypatch.setattr(userspace_tcp, "time", clock)
    a1 = await env.add_pod("a1", 0)
    await env.add_pod("a2", 0)
    await env.add_pod("b1", 1)
    vip = env.svc_ip(21)
    eps = env.endpoints("a1", "a2", "b1")
    await env.sync(service(vip, eps, affinity=10))
    for src in (a1, None):
        picks = []
        for _ in range(20):
            clock.now += 0.5            # sliding: each hit refreshes the 10 s window
            picks.append(await who(src, vip, 80))
        assert len(set(picks)) == 1, picks
    first = await who(a1, vip, 80)
    clock.now += 11                     # idle past timeoutSeconds: a fresh pick
    after = [await who(a1, vip, 80) for _ in range(3)]
    # the round robin moved on while a1 was stuck: the fresh pick differs, then sticks
    assert after[0] != first and len(set(after)) == 1
    # ClientIP -> None on the live service: spreads again
    await env.sync(service(vip, eps))
    assert len({await who(a1, vip, 80) for _ in range(6)}) == 3
    # None -> ClientIP: sticky again
    await env.sync(service(vip, eps, affinity=10))
    assert len({await who(a1, vip, 80) for _ in range(15)}) == 1


async def test_no_endpoints_refused_at_once(env: Env) -> None:
    a1 = await env.add_pod("a1", 0)
    vip = env.svc_ip(22)
    await env.sync(service(vip, (), node_port=NODE_PORT),
                   service(vip, (), name="dns", protocol="UDP", port=53))
    loop = asyncio.get_running_loop()
    for src, ip, port in ((a1, vip, 80), (None, vip, 80), (None, env.nodes[1].ip, NODE_PORT)):
        start = loop.time()
        with pytest.raises(ConnectionRefusedError):
            await who(src, ip, port, timeout=2)
        assert loop.time() - start < 1.0
    s = await _socket(a1, socket.SOCK_DGRAM)
    try:
        with pytest.raises(ConnectionRefusedError):
            await udp_ask(s, vip, 53, timeout=2)
            await udp_ask(s, vip, 53, timeout=2)    # the ICMP error lands on the next call
    finally:
        s.close()


async def test_endpoint_churn_no_new_connection_to_removed(env: Env) -> None:
    a1 = await env.add_pod("a1", 0)
    await env.add_pod("b1", 1)
    await env.add_pod("b2", 1)
    vip = env.svc_ip(23)
    await env.sync(service(vip, env.endpoints("a1", "b1", "b2")))
    assert {await who(a1, vip, 80) for _ in range(6)} == {"a1", "b1", "b2"}
    # b1 turns unready, a1 is removed
    await env.sync(service(vip, env.endpoints("b1", "b2", unready=("b1",))))
    assert {await who(a1, vip, 80) for _ in range(10)} == {"b2"}
    assert {await who(None, vip, 80) for _ in range(10)} == {"b2"}


async def test_etp_local_nodeport_only_local_endpoints(env: Env) -> None:
    await env.add_pod("a1", 0)
    await env.add_pod("b1", 1)
    vip = env.svc_ip(24)
    await env.sync(service(vip, env.endpoints("a1", "b1"), node_port=NODE_PORT,
                           ext_local=True))
    assert {await who(None, env.nodes[0].ip, NODE_PORT) for _ in range(4)} == {"a1"}
    assert {await who(None, env.nodes[1].ip, NODE_PORT) for _ in range(4)} == {"b1"}


async def test_udp_endpoint_change_and_sessions(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    a1 = await env.add_pod("a1", 0)
    await env.add_pod("b1", 1)
    vip = env.svc_ip(25)
    udp = dict(name="dns", protocol="UDP", port=53, node_port=NODE_PORT)
    await env.sync(service(vip, env.endpoints("a1", port=UDP_PORT), **udp))  # type: ignore[arg-type]
    s = await _socket(a1, socket.SOCK_DGRAM)
    try:
        assert [await udp_ask(s, vip, 53, b"q%d" % i) for i in range(3)] == ["a1"] * 3
        await env.sync(service(vip, env.endpoints("b1", port=UDP_PORT), **udp))  # type: ignore[arg-type]
        assert await udp_ask(s, vip, 53) == "b1"
    finally:
        s.close()
    # NodePort over UDP from the host: the reply must come from the address asked
    for node in env.nodes:
        h = await _socket(None, socket.SOCK_DGRAM)
        try:
            assert await udp_ask(h, node.ip, NODE_PORT) == "b1"
        finally:
            h.close()


async def test_udp_idle_sessions_expire(env: Env) -> None:
    a1 = await env.add_pod("a1", 0)
    vip = env.svc_ip(26)
    await env.sync(service(vip, env.endpoints("a1", port=UDP_PORT), name="u", protocol="UDP",
                           port=53))
    s = await _socket(a1, socket.SOCK_DGRAM)
    try:
        assert await udp_ask(s, vip, 53) == "a1"
    finally:
        s.close()
    listener = next(iter(env.proxy.nodes[env.nodes[0].name].listeners.values()))
    assert isinstance(listener, userspace_udp.UdpListener) and len(listener.sessions) == 1
    listener.idle_timeout = 0.0
    listener._sweep()
    assert listener.sessions == {}


async def test_deleted_service_stops_and_recreated_on_new_ip_works(env: Env) -> None:
    a1 = await env.add_pod("a1", 0)
    await env.add_pod("b1", 1)
    old, new = env.svc_ip(27), env.svc_ip(28)
    await env.sync(service(old, env.endpoints("b1")))
    assert await who(a1, old, 80) == "b1"
    await env.sync()
    for src in (a1, None):
        with pytest.raises(OSError):        # refused or unreachable, never a hang
            await who(src, old, 80, timeout=2)
    await env.sync(service(new, env.endpoints("b1")))
    assert await who(a1, new, 80) == "b1"
    assert await who(None, new, 80) == "b1"


async def test_bulk_transfer_and_half_close(env: Env) -> None:
    a1 = await env.add_pod("a1", 0)
    await env.add_pod("b1", 1)
    vip = env.svc_ip(29)
    await env.sync(service(vip, env.endpoints("b1")))
    loop = asyncio.get_running_loop()
    s = await _socket(a1, socket.SOCK_STREAM)
    payload = os.urandom(8 << 20)
    try:
        await loop.sock_connect(s, (vip, 80))

        async def send() -> None:
            await loop.sock_sendall(s, payload)
            s.shutdown(socket.SHUT_WR)

        sender = asyncio.create_task(send())
        got = bytearray()
        async with asyncio.timeout(20):
            while chunk := await loop.sock_recv(s, 1 << 20):
                got += chunk
        await sender
    finally:
        s.close()
    assert bytes(got) == b"b1\n" + payload
