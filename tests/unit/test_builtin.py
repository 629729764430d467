"""Emulated images: what a container runs, the agnhost-style answers, and the servers
over real loopback sockets (no root)."""
from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest

from netd.node.builtin import BuiltinPlan, BuiltinServers, PodView, http_response, plan, \
    process_argv, udp_reply

Obj = dict[str, Any]

ARGV_CASES = [
    ("no-command", {"image": "nginx"}, None),
    ("command", {"command": ["sh", "-c"], "args": ["echo hi"]}, ["sh", "-c", "echo hi"]),
    ("args-only-process", {"args": ["sleep", "10"]}, ["sleep", "10"]),
    ("agnhost-netexec", {"args": ["netexec", "--http-port=80"]}, None),
    ("flags-only", {"args": ["--port=80"]}, None),
    ("pause", {"args": ["pause"]}, None),
]


@pytest.mark.parametrize("container,want", [c[1:] for c in ARGV_CASES],
                         ids=[c[0] for c in ARGV_CASES])
def test_process_argv(container: Obj, want: list[str] | None) -> None:
    assert process_argv(container) == want


PLAN_CASES = [
    ("ports", {"ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"},
                         {"containerPort": 132, "protocol": "SCTP"}, {"containerPort": 80}]},
     BuiltinPlan("web", (80,), (53,))),
    ("no-ports", {}, BuiltinPlan("web")),
    ("netexec-default", {"args": ["netexec"]}, BuiltinPlan("netexec", (8080,), (8081,))),
    ("netexec-ports", {"args": ["netexec", "--http-port=9000", "--udp-port", "-1"],
                       "ports": [{"containerPort": 80}]}, BuiltinPlan("netexec", (9000,), ())),
    ("netexec-udp", {"args": ["netexec", "--http-port=81", "--udp-port=91"]},
     BuiltinPlan("netexec", (81,), (91,))),
    ("serve-hostname", {"args": ["serve-hostname", "--udp", "--port=9000"]},
     BuiltinPlan("serve-hostname", (9000,), (9000,))),
    ("pause", {"args": ["pause"], "ports": [{"containerPort": 80}]}, BuiltinPlan("pause")),
]


@pytest.mark.parametrize("container,want", [c[1:] for c in PLAN_CASES],
                         ids=[c[0] for c in PLAN_CASES])
def test_plan(container: Obj, want: BuiltinPlan) -> None:
    assert plan(container) == want


def view(mounts: list[tuple[str, str, bool]] | None = None, mode: str = "web",
         exits: list[int] | None = None) -> PodView:
    return PodView("web-0", "default/web-0", mode, mounts or [],
                   (exits if exits is not None else []).append)


PEER = ("10.244.0.9", 40000)
HTTP_CASES = [
    ("hostname", "/hostname", 200, b"web-0", None),
    ("clientip", "/clientip", 200, b"10.244.0.9:40000", None),
    ("echo", "/echo?msg=hello%20there", 200, b"hello there", None),
    ("echo-empty", "/echo", 200, b"", None),
    ("healthz", "/healthz", 200, b"ok", None),
    ("shutdown", "/shutdown", 200, b"", 0),
    ("exit", "/exit?code=3", 200, b"", 3),
    ("exit-bad", "/exit?code=x", 400, b"bad exit code: x\n", None),
    ("exit-range", "/exit?code=300", 400, b"bad exit code: 300\n", None),
    ("missing", "/nope", 404, b"404 page not found\n", None),
]


@pytest.mark.parametrize("target,status,body,exit_code", [c[1:] for c in HTTP_CASES],
                         ids=[c[0] for c in HTTP_CASES])
def test_http_endpoints(target: str, status: int, body: bytes, exit_code: int | None) -> None:
    r = http_response(view(), "GET", target, PEER)
    assert (r.status, r.body, r.exit_code) == (status, body, exit_code)


def test_default_page_names_pod() -> None:
    r = http_response(view(), "GET", "/", PEER)
    assert r.status == 200 and b"default/web-0" in r.body and r.content_type.startswith(
        "text/html")


@pytest.mark.parametrize("dst,sub", [("/usr/share/nginx/html", ""),
                                     ("/usr/local/apache2/htdocs", ""),
                                     ("/var/www", "html")],
                         ids=["nginx", "httpd", "parent-mount"])
def test_web_root_from_volume(tmp_path: Path, dst: str, sub: str) -> None:
    root = tmp_path / sub if sub else tmp_path
    root.mkdir(exist_ok=True)
    (root / "index.html").write_text("1324\n")
    (root / "a.txt").write_text("A")
    v = view([(str(tmp_path), dst, False)])
    assert http_response(v, "GET", "/", PEER).body == b"1324\n"
    assert http_response(v, "GET", "/a.txt", PEER).body == b"A"
    assert http_response(v, "GET", "/../../etc/passwd", PEER).status == 404


def test_web_root_without_index_falls_back(tmp_path: Path) -> None:
    v = view([(str(tmp_path), "/usr/share/nginx/html", False)])
    assert b"default/web-0" in http_response(v, "GET", "/", PEER).body


def test_serve_hostname_answers_every_path() -> None:
    assert http_response(view(mode="serve-hostname"), "GET", "/x", PEER).body == b"web-0"


UDP_CASES = [("hostname", b"hostname\n", b"web-0"), ("echo", b"echo hi there", b"hi there"),
             ("clientip", b"clientip", b"10.244.0.9:40000"), ("unknown", b"what", None)]


@pytest.mark.parametrize("data,want", [c[1:] for c in UDP_CASES], ids=[c[0] for c in UDP_CASES])
def test_udp_reply(data: bytes, want: bytes | None) -> None:
    assert udp_reply(view(), data, PEER) == want


# ---- servers over loopback --------------------------------------------------------------

def loopback_socket(family: int, type_: int, port: int) -> socket.socket:
    s = socket.socket(family, type_)
    s.bind(("127.0.0.1", 0))
    if type_ == socket.SOCK_STREAM:
        s.listen(128)
    s.setblocking(False)
    return s


async def http_get(port: int, path: str, keep: bool = False) -> tuple[bytes, bytes]:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    data = await asyncio.wait_for(r.read(), 5)
    w.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return head, body


async def test_servers_over_loopback() -> None:
    exits: list[int] = []
    srv = BuiltinServers(view(exits=exits))
    await srv.start(BuiltinPlan("web", (0,), (0,)), loopback_socket)
    port = srv.servers[0].sockets[0].getsockname()[1]
    head, body = await http_get(port, "/hostname")
    assert head.startswith(b"HTTP/1.1 200 OK") and body == b"web-0"
    # keep-alive: two requests on one connection, with a request body to skip
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"POST /echo?msg=a HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz"
            b"GET /echo?msg=b HTTP/1.1\r\n\r\n")
    got = b""
    while got.count(b"Content-Length: 1\r\n\r\n") < 2 or not got.endswith(b"b"):
        chunk = await asyncio.wait_for(r.read(4096), 5)
        assert chunk
        got += chunk
    assert got.endswith(b"\r\n\r\nb") and b"\r\n\r\na" in got
    w.close()
    # UDP
    uport = srv.transports[0].get_extra_info("sockname")[1]
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[bytes] = loop.create_future()

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            fut.set_result(data)

    t, _ = await loop.create_datagram_endpoint(Client, remote_addr=("127.0.0.1", uport))
    t.sendto(b"echo udp")
    assert await asyncio.wait_for(fut, 5) == b"udp"
    t.close()
    # /exit tells the container, after answering
    head, _ = await http_get(port, "/exit?code=4")
    assert head.startswith(b"HTTP/1.1 200")
    assert exits == [4]
    srv.close()
    with pytest.raises(OSError):
        await http_get(port, "/hostname")
