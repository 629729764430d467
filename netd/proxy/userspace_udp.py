"""UDP side of the userspace proxy: per-client sessions, as kube-proxy's userspace
proxysocket.go did (a client address maps to one connected upstream socket until it
has been idle for `idle_timeout`).

- No endpoint for a new client: the datagram is dropped (with no endpoints at all
  there is no listener and the kernel answers ICMP port unreachable itself).
- An ICMP error from the endpoint (ECONNREFUSED on the connected socket) ends the
  session, so the client's next datagram picks an endpoint again.
- A sync that removes an endpoint closes the sessions pointing at it (the nftables
  mode flushes those conntrack entries for the same reason).
- NodePort listeners are bound to 0.0.0.0: replies must leave from the address the
  client wrote to, so IP_PKTINFO tells which one it was and sendmsg uses it as source.
"""
from __future__ import annotations

import asyncio
import logging
import socket
import struct
import time
from collections.abc import Awaitable, Callable

from netd.proxy.userspace_lb import Addr, Balancer, ListenerKey

log = logging.getLogger("netd.proxy.userspace")

IP_PKTINFO = 8                  # linux/in.h; the socket module does not export it
_PKTINFO = struct.Struct("=I4s4s")
MAX_DATAGRAM = 65535
BATCH = 64
MAX_QUEUED = 64                 # datagrams held while a new session's socket is made
DEFAULT_IDLE_TIMEOUT = 30.0     # conntrack's unreplied-UDP default

BalancerLookup = Callable[[], "Balancer | None"]
SocketSource = Callable[[], Awaitable[socket.socket]]


class UdpSession:
    def __init__(self, listener: UdpListener, client: Addr, endpoint: Addr,
                 local_ip: bytes | None) -> None:
        self.listener = listener
        self.client = client
        self.endpoint = endpoint
        self.local_ip = local_ip
        self.sock: socket.socket | None = None
        self.queue: list[bytes] = []
        self.last = time.monotonic()
        self.closed = False

    async def open(self) -> None:
        try:
            s = await self.listener.new_socket()
        except OSError as exc:
            log.warning("%s: no upstream socket: %s", self.listener.key, exc)
            self.close()
            return
        if self.closed:
            s.close()
            return
        try:
            s.connect(self.endpoint)        # UDP connect: immediate, filters replies
        except OSError as exc:
            log.debug("%s: connect %s failed: %s", self.listener.key, self.endpoint, exc)
            s.close()
            self.close()
            return
        self.sock = s
        self.listener.loop.add_reader(s.fileno(), self._reply)
        queued, self.queue = self.queue, []
        for data in queued:
            self.send(data)

    def send(self, data: bytes) -> None:
        self.last = time.monotonic()
        if self.sock is None:
            if len(self.queue) < MAX_QUEUED:
                self.queue.append(data)
            return
        try:
            self.sock.send(data)
        except BlockingIOError:
            pass                            # UDP: a full buffer drops, as the kernel would
        except OSError:
            self.close()                    # ICMP unreachable from the endpoint

    def _reply(self) -> None:
        assert self.sock is not None
        for _ in range(BATCH):
            try:
                data = self.sock.recv(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.close()
                return
            self.last = time.monotonic()
            self.listener.reply(data, self.client, self.local_ip)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.sock is not None:
            self.listener.loop.remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None
        if self.listener.sessions.get(self.client) is self:
            del self.listener.sessions[self.client]


class UdpListener:
    def __init__(self, key: ListenerKey, sock: socket.socket, balancer: BalancerLookup,
                 new_socket: SocketSource,
                 idle_timeout: float = DEFAULT_IDLE_TIMEOUT) -> None:
        self.key = key
        self.sock = sock
        self.balancer = balancer
        self.new_socket = new_socket
        self.idle_timeout = idle_timeout
        self.loop = asyncio.get_running_loop()
        self.sessions: dict[Addr, UdpSession] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.wildcard = key.ip == "0.0.0.0"
        self.dropped = 0
        if self.wildcard:
            sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        self.loop.add_reader(sock.fileno(), self._readable)
        self._sweeper = self.loop.call_later(self._sweep_every(), self._sweep)

    def _sweep_every(self) -> float:
        return max(0.05, self.idle_timeout / 4)

    def _readable(self) -> None:
        cmsg_space = socket.CMSG_SPACE(_PKTINFO.size)
        for _ in range(BATCH):
            local: bytes | None = None
            try:
                if self.wildcard:
                    data, anc, _, addr = self.sock.recvmsg(MAX_DATAGRAM, cmsg_space)
                    for level, kind, payload in anc:
                        if level == socket.IPPROTO_IP and kind == IP_PKTINFO:
                            local = _PKTINFO.unpack(payload[:_PKTINFO.size])[1]
                else:
                    data, addr = self.sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue        # a queued ICMP error from an earlier reply
            client: Addr = (addr[0], addr[1])
            session = self.sessions.get(client)
            if session is None:
                balancer = self.balancer()
                endpoint = balancer.next(client[0], time.monotonic()) if balancer else None
                if endpoint is None:
                    self.dropped += 1
                    continue
                session = UdpSession(self, client, endpoint, local)
                self.sessions[client] = session
                task = self.loop.create_task(session.open())
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            session.send(data)

    def reply(self, data: bytes, client: Addr, local_ip: bytes | None) -> None:
        try:
            if local_ip is None:
                self.sock.sendto(data, client)
            else:
                info = _PKTINFO.pack(0, local_ip, b"\0\0\0\0")
                self.sock.sendmsg([data], [(socket.IPPROTO_IP, IP_PKTINFO, info)], 0, client)
        except OSError:
            self.dropped += 1

    def _sweep(self) -> None:
        cutoff = time.monotonic() - self.idle_timeout
        for session in [s for s in self.sessions.values() if s.last < cutoff]:
            session.close()
        self._sweeper = self.loop.call_later(self._sweep_every(), self._sweep)

    def keep_endpoints(self, alive: set[Addr]) -> int:
        """Close sessions whose endpoint is no longer usable; returns how many."""
        doomed = [s for s in self.sessions.values() if s.endpoint not in alive]
        for s in doomed:
            s.close()
        return len(doomed)

    def close(self) -> None:
        self._sweeper.cancel()
        self.loop.remove_reader(self.sock.fileno())
        self.sock.close()
        for task in list(self.tasks):
            task.cancel()
        for s in list(self.sessions.values()):
            s.close()
