"""The real kubectl v1.32 against netd's streaming endpoints: exec (exit codes, stdin,
TTY size), logs (-f, --tail), port-forward over both transports kubectl uses
(SPDY-over-WebSocket, and plain SPDY when KUBECTL_PORT_FORWARD_WEBSOCKETS=false).

The API server runs in-process with a node runtime that starts plain local processes
(no root, no namespaces); what is under test is the wire protocol kubectl speaks.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import socket
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from tests.unit.test_wsproto import LOG, _echo_server, make_server, running_status, set_status

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")


@pytest.fixture
async def kube(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
               ) -> AsyncIterator[tuple[Any, Path, dict[str, str]]]:
    client, api, store = await make_server(tmp_path, monkeypatch)
    cfg = tmp_path / "kubeconfig"
    cfg.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "http://127.0.0.1:{client.server.port}"}}}}]
users: [{{name: u, user: {{}}}}]
contexts: [{{name: x, context: {{cluster: c, user: u, namespace: default}}}}]
current-context: x
""")
    env = dict(os.environ, KUBECONFIG=str(cfg), HOME=str(tmp_path))
    yield api, tmp_path, env
    await client.close()
    await store.close()


async def kubectl(env: dict[str, str], *args: str, stdin: bytes | None = None,
                  timeout: float = 30) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        KUBECTL or "kubectl", *args, env=env, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    return proc.returncode or 0, out, err


@pytest.mark.parametrize("argv,out,code,err", [
    (["sh", "-c", "echo hi; exit 3"], b"hi\n", 3, b"command terminated with exit code 3"),
    (["sh", "-c", "echo fine"], b"fine\n", 0, b""),
    (["no-such-binary"], b"", 1, b'exec: "no-such-binary": executable file not found'),
], ids=["exit3", "ok", "missing"])
async def test_kubectl_exec(kube: Any, argv: list[str], out: bytes, code: int,
                            err: bytes) -> None:
    _, _, env = kube
    rc, got, stderr = await kubectl(env, "exec", "web", "--", *argv)
    assert (rc, got) == (code, out), stderr
    assert err in stderr


async def test_kubectl_exec_stdin(kube: Any) -> None:
    _, _, env = kube
    data = b"line\n" * 5000
    rc, out, err = await kubectl(env, "exec", "-i", "web", "--", "cat", stdin=data)
    assert rc == 0 and out == data, err


async def test_kubectl_exec_tty_size(kube: Any) -> None:
    _, _, env = kube
    if shutil.which("script") is None:
        pytest.skip("script(1) not installed")
    cmd = f"stty rows 31 cols 97; {KUBECTL} exec -it web -- sh -c 'stty size'"
    proc = await asyncio.create_subprocess_exec(
        "script", "-qec", cmd, "/dev/null", env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert b"31 97" in out


async def test_kubectl_logs(kube: Any) -> None:
    api, tmp, env = kube
    (tmp / "c.log").write_bytes(LOG)
    rc, out, _ = await kubectl(env, "logs", "web")
    assert (rc, out) == (0, b"one\ntwo\npartial\n")
    rc, out, _ = await kubectl(env, "logs", "web", "--tail=1", "--timestamps")
    assert out == b"2026-01-02T03:04:07.500000001Z tial\n"
    rc, _, err = await kubectl(env, "logs", "web", "--previous")
    assert rc == 1 and b'previous terminated container "c" in pod "web" not found' in err
    follow = await asyncio.create_subprocess_exec(
        KUBECTL or "kubectl", "logs", "-f", "web", env=env, stdout=asyncio.subprocess.PIPE)
    assert follow.stdout is not None
    assert await asyncio.wait_for(follow.stdout.readline(), 20) == b"one\n"
    with (tmp / "c.log").open("ab") as fh:
        fh.write(b"2026-01-02T03:04:09Z stdout F later\n")
    seen = b""
    while b"later\n" not in seen:
        seen += await asyncio.wait_for(follow.stdout.readline(), 20)
    done = dict(running_status(), state={"terminated": {"exitCode": 0, "reason": "Completed"}})
    await set_status(api, {"phase": "Succeeded", "containerStatuses": [done]})
    assert await asyncio.wait_for(follow.wait(), 20) == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _through(local: int, payload: bytes, deadline: float = 20) -> bytes:
    r, w = await asyncio.open_connection("127.0.0.1", local)
    w.write(payload)
    await w.drain()
    w.write_eof()
    got = await asyncio.wait_for(r.read(), deadline)
    w.close()
    return got


@pytest.mark.parametrize("websockets", ["true", "false"], ids=["ws-tunnel", "spdy"])
async def test_kubectl_port_forward(kube: Any, websockets: str) -> None:
    _, _, env = kube
    server, port = await _echo_server()
    local = _free_port()
    pf = await asyncio.create_subprocess_exec(
        KUBECTL or "kubectl", "port-forward", "pod/web", f"{local}:{port}",
        env=dict(env, KUBECTL_PORT_FORWARD_WEBSOCKETS=websockets),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert pf.stdout is not None
        line = await asyncio.wait_for(pf.stdout.readline(), 20)   # listening now
        assert line.startswith(f"Forwarding from 127.0.0.1:{local}".encode()), line
        payload = os.urandom(500_000)
        assert await _through(local, payload) == payload
        assert await _through(local, b"again") == b"again"
    finally:
        pf.terminate()
        await pf.wait()
        server.close()
        await server.wait_closed()
