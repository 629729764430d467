"""Emulated images: the servers a container without a command gets, served by the
daemon's own event loop from sockets opened inside the pod's namespace (no process
per pod, a few hundred bytes per socket).

What runs (plan()):
- `args: [netexec, --http-port=N, --udp-port=M]` (agnhost): HTTP on N (default 8080),
  UDP on M (default 8081, -1 = none), exactly agnhost's ports;
- `args: [serve-hostname, --port=P, --udp]` (agnhost): the hostname over HTTP (and UDP);
- `args: [pause]`: nothing;
- anything else without a command (nginx, httpd, …): HTTP on every declared TCP
  containerPort, the UDP replies on every UDP one.

HTTP endpoints follow agnhost netexec: /hostname, /clientip (the peer as ip:port),
/echo?msg=, /healthz, /shutdown (exit 0), /exit?code=N; `/` serves index.html from a
volume mounted at the container's web root (nginx, httpd, php/apache paths) or else a
page naming the pod. UDP: `hostname`, `echo X`, `clientip`.
"""
from __future__ import annotations

import asyncio
import email.utils
import logging
import mimetypes
import socket
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable, cast
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger("netd.node.builtin")

Obj = dict[str, Any]

WEB_ROOTS = ("/usr/share/nginx/html", "/usr/local/apache2/htdocs", "/var/www/html")
AGNHOST_SUBCOMMANDS = ("netexec", "serve-hostname", "pause")
MAX_HEADER = 64 * 1024


# ---- what a container runs ----------------------------------------------------------

def process_argv(container: Obj) -> list[str] | None:
    """The argv of a container that runs a real process, or None for an emulated image.

    `command` replaces the image's entrypoint, so it always means a process. `args`
    alone replaces only the image's CMD: agnhost subcommands and flag-only args keep
    the (emulated) entrypoint; anything else (`args: [sh, -c, …]` on busybox) is a
    process."""
    command = [str(c) for c in container.get("command") or []]
    args = [str(a) for a in container.get("args") or []]
    if command:
        return command + args
    if args and args[0] not in AGNHOST_SUBCOMMANDS and not args[0].startswith("-"):
        return args
    return None


@dataclass(frozen=True)
class BuiltinPlan:
    mode: str                       # "web" | "netexec" | "serve-hostname" | "pause"
    tcp: tuple[int, ...] = ()
    udp: tuple[int, ...] = ()


BOOL_FLAGS = ("udp", "tcp", "http", "close", "sctp")


def _flags(args: list[str]) -> dict[str, str]:
    """Go `flag` parsing: --name=value, or --name value for non-boolean flags."""
    out: dict[str, str] = {}
    i = 0
    while i < len(args):
        a = args[i]
        i += 1
        if not a.startswith("-"):
            continue
        name, sep, value = a.lstrip("-").partition("=")
        if sep:
            out[name] = value
        elif name in BOOL_FLAGS or i >= len(args):
            out[name] = "true"
        else:
            out[name] = args[i]
            i += 1
    return out


def _port(value: str | None, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default


def plan(container: Obj) -> BuiltinPlan:
    args = [str(a) for a in container.get("args") or []]
    sub = args[0] if args and args[0] in AGNHOST_SUBCOMMANDS else ""
    flags = _flags(args[1:] if sub else args)
    if sub == "netexec":
        http = _port(flags.get("http-port"), 8080)
        udp = _port(flags.get("udp-port"), 8081)
        return BuiltinPlan("netexec", (http,) if http > 0 else (),
                           (udp,) if udp > 0 else ())
    if sub == "serve-hostname":
        port = _port(flags.get("port"), 9376)
        udp = flags.get("udp") == "true"
        return BuiltinPlan("serve-hostname", (port,), (port,) if udp else ())
    if sub == "pause":
        return BuiltinPlan("pause")
    tcp: list[int] = []
    udp_ports: list[int] = []
    for p in container.get("ports") or []:
        if not isinstance(p, dict) or not isinstance(p.get("containerPort"), int):
            continue
        proto = (p.get("protocol") or "TCP").upper()
        target = udp_ports if proto == "UDP" else tcp if proto == "TCP" else None
        if target is not None and p["containerPort"] not in target:
            target.append(p["containerPort"])
    return BuiltinPlan("web", tuple(tcp), tuple(udp_ports))


# ---- per-container view the handlers answer from --------------------------------------

class PodView:
    """What the built-in servers of one container know; small on purpose."""
    __slots__ = ("hostname", "pod", "mode", "mounts", "on_exit", "conns")

    def __init__(self, hostname: str, pod: str, mode: str,
                 mounts: list[tuple[str, str, bool]],
                 on_exit: Callable[[int], None]) -> None:
        self.hostname = hostname
        self.pod = pod              # "ns/name", named on the default page
        self.mode = mode
        self.mounts = mounts        # (host dir, path in container, read-only)
        self.on_exit = on_exit
        # Open connections, closed when the container stops (a stopped container's
        # established connections die with it; asyncio's Server.close keeps them).
        self.conns: set[asyncio.Transport] = set()

    def web_root(self) -> Path | None:
        """The host directory behind the container's web root, if a volume is there
        (or a volume mounted above it)."""
        for src, dst, _ in self.mounts:
            d = PurePosixPath(dst)
            for root in WEB_ROOTS:
                r = PurePosixPath(root)
                if d == r:
                    return Path(src)
                if d in r.parents:
                    return Path(src) / r.relative_to(d)
        return None


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    exit_code: int | None = None     # the container exits after answering


REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           412: "Precondition Failed", 500: "Internal Server Error"}


def default_page(view: PodView) -> bytes:
    return (f"<!DOCTYPE html>\n<html>\n<head><title>{view.pod}</title></head>\n"
            f"<body>\n<h1>{view.pod}</h1>\n<p>Served by netd for pod {view.pod} "
            f"(hostname {view.hostname}).</p>\n</body>\n</html>\n").encode()


def _static(view: PodView, path: str) -> Response | None:
    root = view.web_root()
    if root is None:
        return None
    rel = [p for p in PurePosixPath(unquote(path)).parts if p not in ("/", ".", "..")]
    target = root.joinpath(*rel) if rel else root
    if target.is_dir():
        target = target / "index.html"
    try:
        body = target.read_bytes()
    except OSError:
        return Response(404, b"404 page not found\n") if rel else None
    ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    if ctype.startswith("text/"):
        ctype += "; charset=utf-8"
    return Response(200, body, ctype)


def http_response(view: PodView, method: str, target: str, peer: tuple[str, int]) -> Response:
    """The answer to one request (pure apart from reading the web root)."""
    url = urlsplit(target)
    query = parse_qs(url.query, keep_blank_values=True)
    path = url.path or "/"
    if view.mode == "serve-hostname":
        return Response(200, view.hostname.encode())
    if path == "/hostname":
        return Response(200, view.hostname.encode())
    if path == "/clientip":
        return Response(200, f"{peer[0]}:{peer[1]}".encode())
    if path == "/echo":
        return Response(200, (query.get("msg") or [""])[0].encode())
    if path == "/healthz":
        return Response(200, b"ok")
    if path == "/shutdown":
        return Response(200, b"", exit_code=0)
    if path == "/exit":
        raw = (query.get("code") or ["0"])[0]
        try:
            code = int(raw)
        except ValueError:
            return Response(400, f"bad exit code: {raw}\n".encode())
        if not 0 <= code <= 127:
            return Response(400, f"bad exit code: {code}\n".encode())
        return Response(200, b"", exit_code=code)
    found = _static(view, path)
    if found is not None:
        return found
    if path in ("/", "/index.html"):
        if view.mode == "netexec":
            return Response(200, f"NOW: {email.utils.formatdate(usegmt=True)}".encode())
        return Response(200, default_page(view), "text/html; charset=utf-8")
    return Response(404, b"404 page not found\n")


def udp_reply(view: PodView, data: bytes, peer: tuple[str, int]) -> bytes | None:
    text = data.decode(errors="replace").strip()
    if view.mode == "serve-hostname":
        return view.hostname.encode()
    if text == "hostname":
        return view.hostname.encode()
    if text == "clientip":
        return f"{peer[0]}:{peer[1]}".encode()
    if text.startswith("echo "):
        return text[5:].encode()
    return None


# ---- asyncio protocols ---------------------------------------------------------------

class HttpProtocol(asyncio.Protocol):
    """A minimal HTTP/1.1 server connection (keep-alive, bodies skipped)."""
    __slots__ = ("view", "transport", "buf", "peer", "skip")

    def __init__(self, view: PodView) -> None:
        self.view = view
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.peer: tuple[str, int] = ("", 0)
        self.skip = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername") or ("", 0)
        self.peer = (str(peer[0]), int(peer[1]))
        self.view.conns.add(self.transport)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while self.transport is not None and not self.transport.is_closing():
            if self.skip:
                n = min(self.skip, len(self.buf))
                self.buf = self.buf[n:]
                self.skip -= n
                if self.skip:
                    return
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEADER:
                    self._reply(Response(400, b"request too large\n"), close=True)
                return
            head, self.buf = self.buf[:end].decode("latin-1"), self.buf[end + 4:]
            self._handle(head)

    def _handle(self, head: str) -> None:
        lines = head.split("\r\n")
        parts = lines[0].split()
        if len(parts) != 3:
            self._reply(Response(400, b"bad request\n"), close=True)
            return
        method, target, version = parts
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        try:
            self.skip = max(0, int(headers.get("content-length", "0")))
        except ValueError:
            self.skip = 0
        conn = headers.get("connection", "").lower()
        close = conn == "close" or (version == "HTTP/1.0" and conn != "keep-alive")
        try:
            resp = http_response(self.view, method, target, self.peer)
        except Exception:   # a handler bug must not kill the loop's other pods
            log.exception("built-in server of %s", self.view.pod)
            resp = Response(500, b"internal error\n")
        self._reply(resp, close=close or resp.exit_code is not None,
                    head_only=method == "HEAD")
        if resp.exit_code is not None:
            code = resp.exit_code
            asyncio.get_running_loop().call_soon(self.view.on_exit, code)

    def _reply(self, resp: Response, *, close: bool, head_only: bool = False) -> None:
        assert self.transport is not None
        head = (f"HTTP/1.1 {resp.status} {REASONS.get(resp.status, 'OK')}\r\n"
                f"Content-Type: {resp.content_type}\r\n"
                f"Date: {email.utils.formatdate(usegmt=True)}\r\n"
                f"Content-Length: {len(resp.body)}\r\n"
                + ("Connection: close\r\n" if close else "") + "\r\n")
        self.transport.write(head.encode() + (b"" if head_only else resp.body))
        if close:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.view.conns.discard(self.transport)
        self.transport = None


class UdpProtocol(asyncio.DatagramProtocol):
    __slots__ = ("view", "transport")

    def __init__(self, view: PodView) -> None:
        self.view = view
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = udp_reply(self.view, data, addr)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


OpenSocket = Callable[[int, int, int], socket.socket]   # (family, type, port) -> bound socket


async def _opened(open_socket: OpenSocket, type_: int, port: int) -> socket.socket:
    """open_socket on an executor thread. If the caller is cancelled meanwhile (the pod
    is stopping), the socket still arrives and is closed: an open socket would keep
    the pod's network namespace alive after the sandbox is deleted."""
    fut = asyncio.get_running_loop().run_in_executor(None, open_socket, socket.AF_INET,
                                                     type_, port)
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        fut.add_done_callback(_close_result)
        raise


def _close_result(fut: asyncio.Future[socket.socket]) -> None:
    if not fut.cancelled() and fut.exception() is None:
        fut.result().close()


class BuiltinServers:
    """The running servers of one emulated container."""
    __slots__ = ("view", "servers", "transports")

    def __init__(self, view: PodView) -> None:
        self.view = view
        self.servers: list[asyncio.AbstractServer] = []
        self.transports: list[asyncio.BaseTransport] = []

    async def start(self, p: BuiltinPlan, open_socket: OpenSocket) -> None:
        loop = asyncio.get_running_loop()
        view = self.view
        try:
            # open_socket blocks until a namespace worker thread made the socket inside
            # the pod, behind whatever sandboxes are queued there: called from the loop
            # it stalled every other pod's progress (a third of the event loop's time
            # while 1,000 pods start).
            for port in p.tcp:
                sock = await _opened(open_socket, socket.SOCK_STREAM, port)
                self.servers.append(await loop.create_server(
                    lambda: HttpProtocol(view), sock=sock, backlog=128))
            for port in p.udp:
                sock = await _opened(open_socket, socket.SOCK_DGRAM, port)
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: UdpProtocol(view), sock=sock)
                self.transports.append(transport)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for srv in self.servers:
            srv.close()
        for t in self.transports:
            t.close()
        for c in list(self.view.conns):
            c.close()
        self.view.conns.clear()
        self.servers.clear()
        self.transports.clear()
