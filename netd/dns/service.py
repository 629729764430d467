"""The DNS component the daemon starts: one DnsServer (index, wire cache, forwarder)
answering on the DNS service IP inside every node namespace, like NodeLocal DNSCache:
a pod's query to 10.96.0.10 never leaves its node.

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

from netd.dns import forward, metrics
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
        if cfg.dns.host_address:
            udp, tcp = open_sockets(cfg.dns.host_address, self.port)
            await self._serve(udp, tcp, f"dns://{cfg.dns.host_address}:{self.port}")
            log.info("DNS on host address %s:%d", cfg.dns.host_address, self.port)

    async def _serve(self, udp: socket.socket, tcp: socket.socket, name: str) -> None:
        self._sockets += [udp, tcp]
        transport = await serve_udp(self.server, udp, name)
        srv = await serve_tcp(self.server, tcp, name)
        self._closers += [transport.close, srv.close]

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
