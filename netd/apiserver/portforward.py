"""The server side of `kubectl port-forward` (protocol `portforward.k8s.io` over SPDY/3.1),
as the kubelet serves it, with the connection made inside the pod's network namespace.

Per forwarded connection the client opens two SPDY streams carrying the headers
`streamtype: error|data`, `port: <n>` and `requestid: <id>`; the server replies to both,
connects to 127.0.0.1:<port> in the pod's netns once it has the pair, then copies bytes:
data-stream DATA → socket, socket → data-stream DATA; EOF each way is a FIN. A failure
to connect is written as text on the error stream (kubelet's wording), which kubectl
prints and survives (the next connection is tried afresh).
"""
from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from netd.apiserver import spdy

log = logging.getLogger("netd.apiserver.portforward")

CLONE_NEWNET = 0x40000000
Send = Callable[[bytes], Awaitable[None]]
Connect = Callable[[int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]

# setns() changes only the calling thread, so namespace hops happen on one dedicated
# thread that always returns to the daemon's namespace before taking the next job.
_NETNS_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="netd-netns")
_libc: ctypes.CDLL | None = None
_pool_broken = threading.Event()


def _setns(fd: int, nstype: int) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def _socket_in_netns(netns_path: str, family: int) -> socket.socket:
    if _pool_broken.is_set():
        raise OSError("the netns worker could not return to the daemon's namespace")
    target = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(target, CLONE_NEWNET)
        try:
            return socket.socket(family, socket.SOCK_STREAM)
        finally:
            try:
                _setns(home, CLONE_NEWNET)
            except OSError:
                _pool_broken.set()
                raise
    finally:
        os.close(target)
        os.close(home)


async def open_in_netns(netns_path: str | None, port: int, host: str = "127.0.0.1"
                        ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP connection to host:port as seen from inside the network namespace
    (None: the daemon's own namespace, for host-mode nodes)."""
    if netns_path is None:
        return await asyncio.open_connection(host, port)
    loop = asyncio.get_running_loop()
    sock = await loop.run_in_executor(_NETNS_POOL, _socket_in_netns, netns_path,
                                      socket.AF_INET)
    try:
        sock.setblocking(False)
        await loop.sock_connect(sock, (host, port))
    except BaseException:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock)


@dataclass
class _Pair:
    port: int
    error: int = 0               # stream ids
    data: int = 0
    started: bool = False
    pending: list[bytes] = field(default_factory=list)   # data before the socket is up
    pending_eof: bool = False
    writer: asyncio.StreamWriter | None = None
    task: asyncio.Task[None] | None = None


class PortForwardSession:
    """One SPDY connection: feed it the client's bytes; it answers through `send`."""

    def __init__(self, send: Send, connect: Connect, pod_desc: str) -> None:
        self._send = send
        self._connect = connect
        self._pod_desc = pod_desc      # "<name>, uid <uid>" for error messages
        self._parser = spdy.FrameParser()
        self._comp = spdy.Compressor()
        self._lock = asyncio.Lock()
        self._pairs: dict[str, _Pair] = {}
        self._by_stream: dict[int, str] = {}
        self._closed = False

    async def _write(self, *frames: bytes) -> None:
        if self._closed:
            return
        async with self._lock:
            await self._send(b"".join(frames))

    async def feed(self, data: bytes) -> None:
        for frame in self._parser.feed(data):
            await self._handle(frame)

    async def _handle(self, f: spdy.Frame) -> None:
        if f.type == spdy.SYN_STREAM:
            await self._syn_stream(f)
        elif f.type == spdy.DATA:
            await self._data(f)
        elif f.type == spdy.RST_STREAM:
            self._reset(f.stream_id)
        elif f.type == spdy.PING:
            if f.ping_id & 1:          # client-initiated (odd): echo; ours are even
                await self._write(spdy.encode_ping(f.ping_id))
        elif f.type == spdy.GOAWAY:
            await self.close()

    async def _syn_stream(self, f: spdy.Frame) -> None:
        kind = f.header("streamtype")
        raw_port = f.header("port")
        # Clients without requestID pair a data stream with the error stream before it.
        request = f.header("requestid") or str(f.stream_id if kind == "error"
                                               else f.stream_id - 2)
        try:
            port = int(raw_port)
            if not 0 < port < 65536:
                raise ValueError
        except ValueError:
            async with self._lock:
                await self._send(spdy.encode_rst(f.stream_id, spdy.RST_REFUSED_STREAM))
            log.info("port-forward %s: invalid port %r", self._pod_desc, raw_port)
            return
        if kind not in ("error", "data"):
            async with self._lock:
                await self._send(spdy.encode_rst(f.stream_id, spdy.RST_REFUSED_STREAM))
            return
        pair = self._pairs.setdefault(request, _Pair(port))
        setattr(pair, kind, f.stream_id)
        self._by_stream[f.stream_id] = request
        async with self._lock:
            await self._send(spdy.encode_syn_reply(self._comp, f.stream_id))
        if kind == "data" and f.fin:
            pair.pending_eof = True
        if pair.error and pair.data and not pair.started:
            pair.started = True
            pair.task = asyncio.create_task(self._forward(request, pair),
                                            name=f"portforward {self._pod_desc}:{port}")

    async def _data(self, f: spdy.Frame) -> None:
        request = self._by_stream.get(f.stream_id)
        pair = self._pairs.get(request) if request is not None else None
        if pair is None or f.stream_id != pair.data:
            return                     # the error stream's FIN (kubectl closes it at once)
        if pair.writer is None:
            if f.data:
                pair.pending.append(f.data)
            pair.pending_eof = pair.pending_eof or f.fin
            return
        try:
            if f.data:
                pair.writer.write(f.data)
                await pair.writer.drain()
            if f.fin and pair.writer.can_write_eof():
                pair.writer.write_eof()
        except OSError:
            self._reset(f.stream_id)

    async def _forward(self, request: str, pair: _Pair) -> None:
        try:
            reader, writer = await self._connect(pair.port)
        except OSError as exc:
            why = os.strerror(exc.errno).lower() if exc.errno else str(exc)
            msg = (f"error forwarding port {pair.port} to pod {self._pod_desc}: "
                   f"failed to connect to localhost:{pair.port} inside namespace: "
                   f"dial tcp4 127.0.0.1:{pair.port}: connect: {why}")
            await self._write(spdy.encode_data(pair.error, msg.encode(), fin=True),
                              spdy.encode_data(pair.data, b"", fin=True))
            self._forget(request)
            return
        pair.writer = writer
        try:
            for chunk in pair.pending:
                writer.write(chunk)
            pair.pending.clear()
            if pair.pending_eof and writer.can_write_eof():
                writer.write_eof()
            await writer.drain()
            while True:
                chunk = await reader.read(spdy.MAX_DATA)
                if not chunk:
                    break
                await self._write(spdy.encode_data(pair.data, chunk))
            await self._write(spdy.encode_data(pair.data, b"", fin=True),
                              spdy.encode_data(pair.error, b"", fin=True))
        except (OSError, asyncio.IncompleteReadError):
            await self._write(spdy.encode_rst(pair.data, spdy.RST_CANCEL))
        finally:
            writer.close()
            self._forget(request)

    def _reset(self, stream_id: int) -> None:
        request = self._by_stream.get(stream_id)
        pair = self._pairs.get(request) if request is not None else None
        if pair is None:
            return
        if pair.writer is not None:
            pair.writer.close()
        elif pair.task is not None:
            pair.task.cancel()
        self._forget(request or "")

    def _forget(self, request: str) -> None:
        pair = self._pairs.pop(request, None)
        if pair is not None:
            self._by_stream.pop(pair.error, None)
            self._by_stream.pop(pair.data, None)

    async def close(self) -> None:
        """The client went away: drop every forwarded connection."""
        self._closed = True
        for pair in list(self._pairs.values()):
            if pair.writer is not None:
                pair.writer.close()
            if pair.task is not None:
                pair.task.cancel()
        tasks = [p.task for p in self._pairs.values() if p.task is not None]
        self._pairs.clear()
        self._by_stream.clear()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
