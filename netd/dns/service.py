"""The DNS component the daemon starts: one DnsServer (index, wire cache, forwarder)
answering on the DNS service IP inside every node namespace, like NodeLocal DNSCache:
a pod's query to 10.96.0.10 never leaves its node. It also answers on each node's
InternalIP:53 (and serves CoreDNS's metrics port 9153 there): the addresses the node
agents' mirror pods give the kube-dns Service's endpoints (netd.node.mirror).

Per node namespace: dns_ip/32 on the namespace's `lo` (the address is then local, so the
kernel delivers packets from pods to our sockets), and UDP + TCP sockets bound to
dns_ip:53 opened by a namespace worker thread *inside* that namespace. A socket keeps
the namespace it was created in, so this daemon's event loop serves all of them.
In host mode the single node is the host: dns_ip/32 goes on the cluster's service dummy
link (removed with it at teardown). `dns.host_address`, when set, is an extra listener
in the host namespace (the address must already be local there).
"""
from __future__ import annotations

import asyncio
import errno
import logging
import socket
from typing import TYPE_CHECKING, Any, Callable

from netd.dns import forward, metrics, metricshttp
from netd.dns.server import DnsServer, serve_tcp, serve_udp

if TYPE_CHECKING:
    from netd.controllers.manager import ControllerContext
    from netd.node.cluster_net import ClusterNetwork, NodeNet

log = logging.getLogger("netd.dns")

RCVBUF = 4 << 20    # absorbs bursts while the loop is busy rebuilding an index


def open_sockets(ip: str, port: int) -> tuple[socket.socket, socket.socket]:
    """UDP and TCP sockets bound to ip:port in the calling thread's namespace."""
    fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
    udp = socket.socket(fam, socket.SOCK_DGRAM)
    tcp = socket.socket(fam, socket.SOCK_STREAM)
    try:
        for s in (udp, tcp):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        except OSError:
            pass
        udp.bind((ip, port))
        tcp.bind((ip, port))
        tcp.listen(1024)
        udp.setblocking(False)
        tcp.setblocking(False)
    except OSError:
        udp.close()
        tcp.close()
        raise
    return udp, tcp


async def serve(server: DnsServer, udp: socket.socket, tcp: socket.socket, name: str
                ) -> list[Callable[[], None]]:
    """Start one listener pair (what every node gets; bench/dns_bench.py runs this
    same code); returns the functions that stop it."""
    listener = await serve_udp(server, udp, name)
    srv = await serve_tcp(server, tcp, name)
    return [listener.close, srv.close]


def _ensure_address(link: str, ip: str) -> None:
    from netd.node import nl
    with nl.Netlink() as sock:
        dev = nl.get_link(sock, link)
        if dev is None:
            raise OSError(errno.ENODEV, f"no link {link}")
        try:
            sock.run([nl.addr_add(dev.index, f"{ip}/32"), nl.link_set(link, up=True)])
        except nl.NetlinkError as exc:
            if exc.errno != errno.EEXIST:
                raise


def _node_ip_job(node: NodeNet, port: int
                 ) -> Callable[[], tuple[socket.socket, socket.socket, socket.socket]]:
    """DNS (UDP+TCP) and the metrics port on the node's own InternalIP, which the
    node's interface already carries: the addresses the kube-dns endpoints list."""
    from netd.node import nsexec

    def job() -> tuple[socket.socket, socket.socket, socket.socket]:
        if node.netns_path is not None:
            nsexec.enter(node.netns_path, nsexec.CLONE_NEWNET)
        udp, tcp = open_sockets(node.ip, port)
        web = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            web.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            web.bind((node.ip, metricshttp.PORT))
            web.listen(64)
            web.setblocking(False)
        except OSError:
            for s in (udp, tcp, web):
                s.close()
            raise
        return udp, tcp, web
    return job


def _node_job(node: NodeNet, link: str, ip: str, port: int
              ) -> Callable[[], tuple[socket.socket, socket.socket]]:
    from netd.node import nsexec

    def job() -> tuple[socket.socket, socket.socket]:
        if node.netns_path is not None:
            nsexec.enter(node.netns_path, nsexec.CLONE_NEWNET)
        _ensure_address(link, ip)
        return open_sockets(ip, port)
    return job


class DnsService:
    def __init__(self, ctx: ControllerContext, network: ClusterNetwork | None, *,
                 supervisor: Any = None, port: int = 53) -> None:
        self.ctx = ctx
        self.network = network
        self.supervisor = supervisor
        self.port = port
        cfg = ctx.config
        upstreams = forward.parse_upstreams(list(cfg.dns.upstreams), exclude={cfg.dns_ip})
        self.forwarder = forward.Forwarder(upstreams, metrics=metrics.METRICS)
        self.server = DnsServer(forwarder=self.forwarder, metrics=metrics.METRICS,
                                query_log=cfg.dns.query_log)
        # The indexer adds its informers to ctx.factory: it must exist before the
        # controller manager starts the factory's informers (construct DnsService
        # before manager.start; call start() once the node network exists).
        from netd.dns.watch import DnsIndexer
        self.indexer = DnsIndexer(ctx)
        self.indexer.add_callback(self.server.set_index)
        self._closers: list[Callable[[], None]] = []
        self._sockets: list[socket.socket] = []
        self._task: asyncio.Future[None] | None = None

    async def start(self) -> None:
        if self.supervisor is not None:
            self.supervisor.start("dns-indexer", self.indexer.run)
        else:
            self._task = asyncio.ensure_future(self.indexer.run())
        cfg = self.ctx.config
        if self.network is not None and cfg.node_mode in ("netns", "host"):
            from netd.node import names, nsexec
            for node in self.network.node_nets():
                link = "lo" if node.netns is not None else names.service_dummy(cfg.cluster_name)
                udp, tcp = await nsexec.workers().run(_node_job(node, link, cfg.dns_ip,
                                                                self.port))
                await self._serve(udp, tcp, f"dns://{cfg.dns_ip}:{self.port}")
                log.info("node %s: DNS on %s:%d", node.name, cfg.dns_ip, self.port)
                await self._serve_node_ip(node)
        if cfg.dns.host_address:
            udp, tcp = open_sockets(cfg.dns.host_address, self.port)
            await self._serve(udp, tcp, f"dns://{cfg.dns.host_address}:{self.port}")
            log.info("DNS on host address %s:%d", cfg.dns.host_address, self.port)

    async def _serve_node_ip(self, node: NodeNet) -> None:
        from netd.node import nsexec
        try:
            udp, tcp, web = await nsexec.workers().run(_node_ip_job(node, self.port))
        except OSError as exc:
            # Host mode: the host's own resolver may hold :53. The DNS IP still works;
            # the kube-dns endpoint for this node is then not answering.
            log.warning("node %s: no DNS on its address %s:%d: %s", node.name, node.ip,
                        self.port, exc)
            return
        await self._serve(udp, tcp, f"dns://{node.ip}:{self.port}")
        self._sockets.append(web)
        srv = await metricshttp.serve_metrics(web, metrics.render)
        self._closers.append(srv.close)
        log.info("node %s: DNS on %s:%d, metrics on :%d", node.name, node.ip, self.port,
                 metricshttp.PORT)

    async def _serve(self, udp: socket.socket, tcp: socket.socket, name: str) -> None:
        self._sockets += [udp, tcp]
        self._closers += await serve(self.server, udp, tcp, name)

    async def stop(self) -> None:
        for close in self._closers:
            close()
        self._closers = []
        for s in self._sockets:
            s.close()
        self._sockets = []
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
