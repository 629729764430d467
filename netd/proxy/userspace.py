"""The userspace proxy mode (`proxy: {mode: userspace}`): works where nftables does not.

Per node namespace (the host itself in host mode):
- every ClusterIP and externalIP (except the DNS ClusterIP, answered on lo by netd's
  node-local DNS) is a /32 on a dummy link `svc0`, so sockets can bind it and the
  kernel delivers to them (kube-proxy's IPVS mode does the same with kube-ipvs0); in
  host mode the cluster's `<cluster>-svc` link, which already carries the service route;
- the rest of the service CIDR is `unreachable` in the node, so a deleted service's
  address fails at once instead of bouncing node <-> host until its TTL runs out;
- one listener per (protocol, address, port): clusterIP:port, externalIP:port and
  0.0.0.0:nodePort, made inside the node namespace by a namespace worker thread and
  served by the daemon's event loop. A port with no usable endpoint has no listener:
  the kernel refuses (RST / ICMP port unreachable) at once.

Sync = plan (pure, userspace_lb.plan_node) + one swap of the node's table reference;
listeners and addresses are opened/closed only where the plan changed. Outgoing
sockets are created in the node namespace in batches (a pool), so a new connection
does not wait for a thread hop.

Source IP is lost in this mode (endpoints see the node's address), exactly as with
kube-proxy's userspace mode; externalTrafficPolicy Local still restricts NodePorts and
externalIPs to local endpoints, but cannot preserve the client address.
"""
from __future__ import annotations

import asyncio
import logging
import socket
from collections import deque
from typing import TYPE_CHECKING, Any

from netd.node import names, nl, nsexec
from netd.node.cluster_net import ClusterNetwork, NodeNet
from netd.proxy.model import Snapshot
from netd.proxy.userspace_lb import (Balancer, BalancerKey, ListenerKey, NodePlan,
                                     carry_balancers, plan_node)
from netd.proxy.userspace_tcp import Relay, TcpListener
from netd.proxy.userspace_udp import DEFAULT_IDLE_TIMEOUT, UdpListener

if TYPE_CHECKING:
    from netd.controllers.manager import ControllerContext

log = logging.getLogger("netd.proxy.userspace")

SVC_LINK = "svc0"
RTN_UNREACHABLE = 7
POOL_BATCH = 64
POOL_LOW = 16

Table = tuple[dict[ListenerKey, BalancerKey], dict[BalancerKey, Balancer]]


def _unreachable(cidr: str, add: bool) -> nl.Request:
    # nl.route_add knows unicast and blackhole only; unreachable answers ICMP at once.
    body = nl._route_body(cidr, via=None, oif=None, kind=RTN_UNREACHABLE,
                          scope=nl.SCOPE_UNIVERSE if add else 255, metric=None,
                          proto=nl.RTPROT_STATIC if add else 0)
    if add:
        return nl.Request(nl.RTM_NEWROUTE, nl.F_CREATE | nl.F_REPLACE, body, nl.ADD_OK)
    return nl.Request(nl.RTM_DELROUTE, 0, body, nl.DEL_ROUTE_OK)


class SocketFactory:
    """Sockets born in one node's network namespace (a socket keeps the namespace it
    was created in, whichever thread later uses it)."""

    def __init__(self, netns_path: str | None) -> None:
        self.netns_path = netns_path
        self.workers = nsexec.workers()
        self.pools: dict[int, deque[socket.socket]] = {socket.SOCK_STREAM: deque(),
                                                       socket.SOCK_DGRAM: deque()}
        self.refills: dict[int, asyncio.Task[None]] = {}

    async def run(self, fn: Any, *args: Any) -> Any:
        if self.netns_path is None:
            return await self.workers.run(fn, *args)
        path = self.netns_path

        def job() -> Any:
            nsexec.enter(path, nsexec.CLONE_NEWNET)
            return fn(*args)
        return await self.workers.run(job)

    @staticmethod
    def _make(kind: int, n: int) -> list[socket.socket]:
        out = []
        for _ in range(n):
            s = socket.socket(socket.AF_INET, kind | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
            out.append(s)
        return out

    async def _refill(self, kind: int) -> None:
        self.pools[kind].extend(await self.run(self._make, kind, POOL_BATCH))

    async def get(self, kind: int) -> socket.socket:
        if self.netns_path is None:
            return socket.socket(socket.AF_INET,
                                 kind | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
        pool = self.pools[kind]
        while True:
            if len(pool) < POOL_LOW:
                task = self.refills.get(kind)
                if task is None or task.done():
                    task = asyncio.get_running_loop().create_task(self._refill(kind))
                    self.refills[kind] = task
                if not pool:
                    await asyncio.shield(task)
            if pool:
                return pool.popleft()

    async def tcp(self) -> socket.socket:
        return await self.get(socket.SOCK_STREAM)

    async def udp(self) -> socket.socket:
        return await self.get(socket.SOCK_DGRAM)

    @staticmethod
    def _bind(keys: list[ListenerKey]) -> list[socket.socket | OSError]:
        out: list[socket.socket | OSError] = []
        for key in keys:
            kind = socket.SOCK_STREAM if key.protocol == "TCP" else socket.SOCK_DGRAM
            s = socket.socket(socket.AF_INET, kind | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((key.ip, key.port))
                if kind == socket.SOCK_STREAM:
                    s.listen(socket.SOMAXCONN)
            except OSError as exc:
                s.close()
                out.append(exc)
                continue
            out.append(s)
        return out

    async def bind(self, keys: list[ListenerKey]) -> list[socket.socket | OSError]:
        return list(await self.run(self._bind, keys))

    def close(self) -> None:
        for task in self.refills.values():
            task.cancel()
        for pool in self.pools.values():
            while pool:
                pool.popleft().close()


class NodeProxy:
    def __init__(self, node: NodeNet, *, link: str, own_link: bool, service_cidr: str,
                 udp_idle_timeout: float) -> None:
        self.node = node
        self.link = link
        self.own_link = own_link
        self.service_cidr = service_cidr
        self.udp_idle_timeout = udp_idle_timeout
        self.sockets = SocketFactory(node.netns_path)
        self.table: Table = ({}, {})
        self.listeners: dict[ListenerKey, TcpListener | UdpListener] = {}
        self.relays: set[Relay] = set()
        self.addresses: set[str] | None = None      # None: read from the kernel first

    # ---- kernel side (runs on a namespace worker) --------------------------------------------

    def _ensure_link(self) -> set[str]:
        with nl.Netlink() as sock:
            if self.own_link:
                try:
                    sock.run([nl.link_dummy(self.link)])
                except nl.NetlinkError as exc:
                    log.debug("no dummy driver (%s); svc0 is an empty bridge", exc)
                    sock.run([nl.link_bridge(self.link)])
                sock.run([nl.link_set(self.link, up=True),
                          _unreachable(self.service_cidr, add=True)])
            link = nl.get_link(sock, self.link)
            if link is None:
                raise RuntimeError(f"node {self.node.name}: link {self.link} is missing")
            return {a.ip for a in sock.addrs() if a.index == link.index and a.prefixlen == 32}

    def _set_addresses(self, add: list[str], remove: list[str]) -> None:
        with nl.Netlink() as sock:
            link = nl.get_link(sock, self.link)
            if link is None:
                raise RuntimeError(f"node {self.node.name}: link {self.link} is missing")
            sock.run([nl.addr_add(link.index, f"{ip}/32") for ip in add] +
                     [nl.addr_del(link.index, f"{ip}/32") for ip in remove])

    def _remove_kernel(self, addresses: list[str]) -> None:
        with nl.Netlink() as sock:
            if self.own_link:
                sock.run([nl.link_del(self.link), _unreachable(self.service_cidr, add=False)])
                return
            link = nl.get_link(sock, self.link)
            if link is not None and addresses:
                sock.run([nl.addr_del(link.index, f"{ip}/32") for ip in addresses])

    # ---- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        self.addresses = await self.sockets.run(self._ensure_link)

    def lookup(self, key: ListenerKey) -> Balancer | None:
        routes, balancers = self.table
        bkey = routes.get(key)
        return balancers.get(bkey) if bkey is not None else None

    async def apply(self, plan: NodePlan) -> list[str]:
        """Converge on `plan`; returns the listeners that could not be opened."""
        if self.addresses is None:
            self.addresses = await self.sockets.run(self._ensure_link)
        # The swap: from here every new connection sees the new endpoints.
        self.table = (dict(plan.listeners), carry_balancers(self.table[1], plan.balancers))
        current = self.addresses
        add = sorted(plan.addresses - current)
        if add:
            self.addresses = None       # unknown until the kernel confirms
            await self.sockets.run(self._set_addresses, add, [])
            current = self.addresses = current | set(add)
        for key in [k for k in self.listeners if k not in plan.listeners]:
            self.listeners.pop(key).close()
            log.info("node %s: closed %s", self.node.name, key)
        failed: list[str] = []
        new = [k for k in plan.listeners if k not in self.listeners]
        if new:
            for key, result in zip(new, await self.sockets.bind(new)):
                if isinstance(result, OSError):
                    failed.append(f"{key}: {result.strerror or result}")
                    continue
                self.listeners[key] = self._listener(key, result)
                log.info("node %s: listening on %s for %s", self.node.name, key,
                         plan.listeners[key].service)
        for key, listener in self.listeners.items():
            if isinstance(listener, UdpListener):
                balancer = self.lookup(key)
                listener.keep_endpoints(set(balancer.endpoints) if balancer else set())
        remove = sorted(current - plan.addresses)
        if remove:
            self.addresses = None
            await self.sockets.run(self._set_addresses, [], remove)
            self.addresses = current - set(remove)
        return failed

    def _listener(self, key: ListenerKey, sock: socket.socket) -> TcpListener | UdpListener:
        def balancer() -> Balancer | None:
            return self.lookup(key)
        if key.protocol == "TCP":
            return TcpListener(key, sock, balancer, self.sockets.tcp, self.relays)
        return UdpListener(key, sock, balancer, self.sockets.udp, self.udp_idle_timeout)

    async def stop(self) -> None:
        for listener in self.listeners.values():
            listener.close()
        self.listeners.clear()
        for relay in list(self.relays):
            relay.abort()
        self.sockets.close()
        self.table = ({}, {})
        addresses = sorted(self.addresses or ())
        self.addresses = None
        await self.sockets.run(self._remove_kernel, addresses)

    def dump(self) -> list[dict[str, Any]]:
        routes, balancers = self.table
        out = []
        for key in sorted(routes, key=str):
            bkey = routes[key]
            b = balancers.get(bkey)
            out.append({"listen": str(key), "service": bkey.service,
                        "localOnly": bkey.local_only, "open": key in self.listeners,
                        "endpoints": [f"{ip}:{port}" for ip, port in (b.endpoints if b else ())],
                        "affinityTimeout": b.affinity_timeout if b else 0,
                        "affinityClients": len(b.affinity) if b else 0})
        return out


class UserspaceProxy:
    """The userspace data plane for every node of the cluster. The tracker/runner call
    `sync(snapshot)`; nothing is listened on before the first sync."""

    def __init__(self, ctx: ControllerContext, network: ClusterNetwork, *,
                 udp_idle_timeout: float = DEFAULT_IDLE_TIMEOUT) -> None:
        self.config = ctx.config
        self.network = network
        self.udp_idle_timeout = udp_idle_timeout
        self.nodes: dict[str, NodeProxy] = {}
        self.generation: int | None = None

    async def start(self) -> None:
        host_mode = self.network.host_mode
        for node in self.network.node_nets():
            np = NodeProxy(node, link=names.service_dummy(self.config.cluster_name)
                           if host_mode else SVC_LINK, own_link=not host_mode,
                           service_cidr=self.config.service_cidr,
                           udp_idle_timeout=self.udp_idle_timeout)
            await np.start()
            self.nodes[node.name] = np

    async def sync(self, snapshot: Snapshot) -> None:
        failures: list[str] = []
        first: BaseException | None = None
        for name, np in self.nodes.items():
            plan = plan_node(snapshot.ports, name, self.config.dns_ip)
            try:
                failures += [f"node {name}: {f}" for f in await np.apply(plan)]
            except (OSError, RuntimeError) as exc:
                # Keep going for the other nodes; this node re-reads the kernel next time.
                np.addresses = None
                first = first or exc
                log.error("node %s: userspace proxy sync failed: %s", name, exc)
        self.generation = snapshot.generation
        for f in failures:
            # A port taken by something else on the node: kube-proxy logs and goes on;
            # the listener is retried on every later sync.
            log.error("cannot listen on %s", f)
        if first is not None:
            raise first

    async def stop(self) -> None:
        for np in self.nodes.values():
            try:
                await np.stop()
            except (OSError, RuntimeError):
                log.warning("node %s: userspace proxy cleanup failed", np.node.name,
                            exc_info=True)
        self.nodes.clear()

    def dump(self) -> dict[str, list[dict[str, Any]]]:
        """What each node currently forwards, for `netd proxy dump`."""
        return {name: np.dump() for name, np in self.nodes.items()}
