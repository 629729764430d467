"""netd.cli.http: Status decoding, kubeconfig reading, the socket-first transport
with its kubeconfig fallback, and watch streams — against stdlib test servers on a
Unix socket and on 127.0.0.1 (no daemon, no root)."""
from __future__ import annotations

import json
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from netd.cli.http import (
    ApiError, Client, Target, Unreachable, error_from_response, read_kubeconfig,
)


@pytest.mark.parametrize("code,body,reason,message", [
    (404, b'{"kind":"Status","status":"Failure","reason":"NotFound",'
          b'"message":"pods \\"x\\" not found","code":404}', "NotFound", 'pods "x" not found'),
    (422, b'{"kind":"Status","reason":"Invalid","message":"bad"}', "Invalid", "bad"),
    (404, b"404 page not found", "NotFound", "the server could not find the requested resource"),
    (500, b"boom", "InternalError",
     "an error on the server ('boom') has prevented the request from succeeding"),
    (503, b"", "ServiceUnavailable", "unknown (status 503)"),
], ids=["status", "invalid", "plain-404", "plain-500", "empty"])
def test_error_from_response(code: int, body: bytes, reason: str, message: str) -> None:
    err = error_from_response(code, body)
    assert (err.code, err.reason, err.message) == (code, reason, message)
    assert err.kubectl_text() == f"Error from server ({reason}): {message}"


def _kubeconfig(path: Path, server: str, token: str | None, ns: str | None = None) -> None:
    ctx: dict[str, Any] = {"cluster": "c", "user": "u"}
    if ns:
        ctx["namespace"] = ns
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": "x",
           "clusters": [{"name": "c", "cluster": {"server": server}}],
           "users": [{"name": "u", "user": {"token": token} if token else {}}],
           "contexts": [{"name": "x", "context": ctx}]}
    path.write_text(json.dumps(doc))


def test_read_kubeconfig(tmp_path: Path) -> None:
    _kubeconfig(tmp_path / "k", "http://127.0.0.1:1", "tok", "prod")
    info = read_kubeconfig(tmp_path / "k")
    assert (info.server, info.token, info.namespace) == ("http://127.0.0.1:1", "tok", "prod")
    _kubeconfig(tmp_path / "k2", "http://h:2", None)
    assert read_kubeconfig(tmp_path / "k2").namespace == "default"
    (tmp_path / "bad").write_text("- 1\n")
    with pytest.raises(ValueError):
        read_kubeconfig(tmp_path / "bad")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str, str, bytes]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def address_string(self) -> str:
        return "unix"

    def _reply(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.seen.append(("GET", self.path, self.headers.get("Authorization", ""), b""))
        if self.path.startswith("/watch"):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for line in (b'{"type":"ADDED","object":{"n":1}}\n',
                         b'{"type":"DELETED","object":{"n":2}}\n{"type":"MODIFIED",',
                         b'"object":{"n":3}}\n'):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.write(b"0\r\n\r\n")
            return
        if self.path.startswith("/missing"):
            self._reply(404, b'{"kind":"Status","reason":"NotFound","message":"gone"}')
            return
        self._reply(200, json.dumps({"path": self.path}).encode())

    def do_PATCH(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append(("PATCH", self.path, self.headers["Content-Type"], body))
        self._reply(200, body)


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def handler() -> Iterator[type[_Handler]]:
    _Handler.seen = []
    yield _Handler


def _serve(server: socketserver.BaseServer) -> threading.Thread:
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    return t


def test_socket_is_preferred_and_needs_no_token(tmp_path: Path,
                                                handler: type[_Handler]) -> None:
    root = tmp_path / "c1"
    root.mkdir()
    server = _UnixServer(str(root / "api.sock"), handler)
    _serve(server)
    try:
        _kubeconfig(root / "kubeconfig", "http://127.0.0.1:9", "secret", "team")
        client = Client(Target("c1", str(tmp_path)))
        assert client.default_namespace == "team"
        assert client.get("/api/v1/pods", {"labelSelector": "a=b", "x": ""}) == {
            "path": "/api/v1/pods?labelSelector=a%3Db"}
        assert handler.seen[-1][2] == ""          # no token over the socket
        assert client.address == str(root / "api.sock")
        out = client.json("PATCH", "/p", body={"spec": {"replicas": 3}},
                          content_type="application/merge-patch+json")
        assert out == {"spec": {"replicas": 3}}
        assert handler.seen[-1][2] == "application/merge-patch+json"
        with pytest.raises(ApiError) as exc:
            client.get("/missing")
        assert exc.value.kubectl_text() == "Error from server (NotFound): gone"
        events = list(client.stream("/watch"))
        assert [(e["type"], e["object"]["n"]) for e in events] == [
            ("ADDED", 1), ("DELETED", 2), ("MODIFIED", 3)]
    finally:
        server.shutdown()
        server.server_close()


def test_falls_back_to_kubeconfig_server_with_token(tmp_path: Path,
                                                    handler: type[_Handler]) -> None:
    server = HTTPServer(("127.0.0.1", 0), handler)
    _serve(server)
    try:
        root = tmp_path / "c2"
        root.mkdir()
        url = f"http://127.0.0.1:{server.server_address[1]}"
        _kubeconfig(root / "kubeconfig", url, "secret")
        client = Client(Target("c2", str(tmp_path)))
        assert client.get("/x") == {"path": "/x"}
        assert handler.seen[-1][2] == "Bearer secret"
        assert client.address == url
        explicit = Client(Target("nope", str(tmp_path), server=url))
        assert explicit.get("/y") == {"path": "/y"}
    finally:
        server.shutdown()
        server.server_close()


def test_unreachable_names_what_was_tried(tmp_path: Path) -> None:
    with pytest.raises(Unreachable) as exc:
        Client(Target("c3", str(tmp_path))).get("/x")
    sock = tmp_path / "c3" / "api.sock"
    assert str(exc.value) == (f"{sock}: no such file; "
                              f"{tmp_path / 'c3' / 'kubeconfig'}: no such file")
    # A stale socket file with nobody listening: connection refused.
    import socket
    (tmp_path / "c4").mkdir()
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(tmp_path / "c4" / "api.sock"))
    s.close()
    with pytest.raises(Unreachable) as exc:
        Client(Target("c4", str(tmp_path))).get("/x")
    assert "api.sock: connection refused" in str(exc.value)


@pytest.mark.parametrize("argv", [
    ["get", "pods"], ["status"], ["apply", "-f", "-"], ["describe", "nodes", "n"],
    ["scale", "deploy/web", "--replicas", "2"], ["delete", "pod", "x"],
], ids=["get", "status", "apply", "describe", "scale", "delete"])
def test_commands_report_a_cluster_that_is_not_running(
        argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from netd.cli.main import main

    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"))
    code = main([*argv, "--name", "gone", "--state-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith('netd: cannot reach cluster "gone": is `netd up` running? (')
    assert "api.sock: no such file" in err


def test_usage_errors_print_like_kubectl(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from netd.cli.main import main

    code = main(["get", "bogus", "--state-dir", str(tmp_path)])
    assert code == 1
    assert capsys.readouterr().err == 'error: the server doesn\'t have a resource type "bogus"\n'
    (tmp_path / "bad.yaml").write_text("kind: X\n")
    assert main(["apply", "-f", str(tmp_path / "bad.yaml"), "--state-dir", str(tmp_path)]) == 1
    assert capsys.readouterr().err.startswith(
        f'error: error validating "{tmp_path / "bad.yaml"}": error validating data: '
        "apiVersion not set")
