"""CoreDNS's metrics port (9153) on every node's InternalIP: GET /metrics answers the
DNS server's Prometheus metrics (netd.dns.metrics), as CoreDNS's `prometheus :9153`
does, so the kube-dns Service's `metrics` port and the per-node endpoints the mirror
pods give it (netd.node.mirror) lead somewhere true. Anything else: 404. One request
per connection (Connection: close), which Prometheus and curl handle.
"""
from __future__ import annotations

import asyncio
import socket
from typing import Callable

MAX_HEAD = 8192
TIMEOUT = 10.0
PORT = 9153


def _response(status: str, body: bytes, ctype: str = "text/plain; charset=utf-8") -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n").encode() + body


def handle_head(head: bytes, render: Callable[[], str]) -> bytes:
    """The response to one request head (pure, for tests)."""
    line = head.split(b"\r\n", 1)[0].split()
    if len(line) != 3 or not line[2].startswith(b"HTTP/"):
        return _response("400 Bad Request", b"bad request\n")
    method, target = line[0], line[1].split(b"?", 1)[0]
    if target != b"/metrics":
        return _response("404 Not Found", b"404 page not found\n")
    if method not in (b"GET", b"HEAD"):
        return _response("405 Method Not Allowed", b"method not allowed\n")
    resp = _response("200 OK", render().encode(), "text/plain; version=0.0.4; charset=utf-8")
    return resp.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n" if method == b"HEAD" else resp


async def serve_metrics(sock: socket.socket, render: Callable[[], str]
                        ) -> asyncio.AbstractServer:
    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
            writer.write(handle_head(head, render))
            await writer.drain()
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(client, sock=sock, limit=MAX_HEAD)
