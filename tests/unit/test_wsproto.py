"""Streaming protocols without root: channel framing, Status of an exit, the client
WebSocket codec, SPDY/3.1 framing and header compression, CRI log rendering, and the
exec / log / port-forward endpoints in-process with plain local processes."""
from __future__ import annotations

import asyncio
import os
import types
import zlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator

import orjson
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer

from netd.api.kinds import REGISTRY
from netd.apiserver import podlogs, spdy, streaming, wsproto
from netd.apiserver.app import ApiServerApp
from netd.apiserver.portforward import PortForwardSession
from netd.apiserver.routes import parse_resource_path
from netd.registry.bootstrap import ensure_system_objects
from netd.registry.objectapi import ObjectAPI
from netd.store.sqlite import SQLiteStore

# ---- channel framing and Status --------------------------------------------------------


@pytest.mark.parametrize("channel,data", [(0, b"in"), (1, b""), (2, b"\x00\xff"),
                                          (255, b"\x00")], ids=["stdin", "empty", "binary",
                                                                 "close"])
def test_channel_roundtrip(channel: int, data: bytes) -> None:
    assert wsproto.decode(wsproto.encode(channel, data)) == (channel, data)


def test_channel_errors() -> None:
    with pytest.raises(wsproto.ProtocolError):
        wsproto.decode(b"")
    with pytest.raises(wsproto.ProtocolError):
        wsproto.encode(256, b"")
    with pytest.raises(wsproto.ProtocolError):
        wsproto.closed_channel(b"")


@pytest.mark.parametrize("payload,want", [
    (b'{"Width":80,"Height":24}', wsproto.Size(80, 24)),
    (b'{"Width":0,"Height":0}', wsproto.Size(0, 0)),
], ids=["normal", "zero"])
def test_resize(payload: bytes, want: wsproto.Size) -> None:
    assert wsproto.decode_resize(payload) == want
    assert wsproto.decode_resize(wsproto.encode_resize(want)) == want


@pytest.mark.parametrize("payload", [b"nope", b"[]", b'{"Width":-1,"Height":2}'],
                         ids=["not-json", "not-object", "negative"])
def test_resize_bad(payload: bytes) -> None:
    with pytest.raises(wsproto.ProtocolError):
        wsproto.decode_resize(payload)


@pytest.mark.parametrize("code,want", [(0, 0), (3, 3), (-9, 137), (-15, 143)],
                         ids=["zero", "three", "sigkill", "sigterm"])
def test_exit_code_of(code: int, want: int) -> None:
    assert wsproto.exit_code_of(code) == want


def test_exit_status_shapes() -> None:
    assert wsproto.exit_status(0, ["true"]) == {"metadata": {}, "status": "Success"}
    st = wsproto.exit_status(3, ["sh", "-c", "exit 3"])
    assert st["reason"] == "NonZeroExitCode"
    assert st["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    assert st["message"] == ("command terminated with non-zero exit code: error executing "
                             "command [sh -c exit 3], exit code 3")
    assert wsproto.status_exit_code(st) == 3
    assert wsproto.status_exit_code(wsproto.exit_status(0, [])) == 0
    assert wsproto.status_exit_code(wsproto.error_status("boom")) is None


# ---- client WebSocket codec ------------------------------------------------------------

def test_ws_accept_rfc_example() -> None:
    # RFC 6455 §1.3's worked example.
    assert wsproto.ws_accept("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.mark.parametrize("size", [0, 5, 125, 126, 65535, 65536, 200_000],
                         ids=["0", "5", "125", "126", "64k-1", "64k", "200k"])
@pytest.mark.parametrize("masked", [False, True], ids=["server", "client"])
def test_ws_frame_roundtrip(size: int, masked: bool) -> None:
    payload = os.urandom(size)
    frame = wsproto.ws_frame(wsproto.OP_BINARY, payload, os.urandom(4) if masked else None)
    reader = wsproto.FrameReader()
    got: list[tuple[int, bytes]] = []
    for i in range(0, len(frame), 7000):        # split arbitrarily
        got += reader.feed(frame[i:i + 7000])
    assert got == [(wsproto.OP_BINARY, payload)]


def test_ws_fragments_and_control_between() -> None:
    first = bytes((wsproto.OP_BINARY, 3)) + b"abc"           # FIN clear
    ping = bytes((0x80 | wsproto.OP_PING, 1)) + b"p"
    last = bytes((0x80 | wsproto.OP_CONT, 2)) + b"de"
    assert wsproto.FrameReader().feed(first + ping + last) == [
        (wsproto.OP_PING, b"p"), (wsproto.OP_BINARY, b"abcde")]


# ---- SPDY ------------------------------------------------------------------------------

def test_spdy_dictionary_is_the_spec_constant() -> None:
    # Peers check the dictionary by its Adler-32 (zlib FDICT); kubectl accepted this one.
    assert len(spdy.DICTIONARY) == 1423
    assert zlib.adler32(spdy.DICTIONARY) == 3821447106
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert spdy.DICTIONARY.endswith(b",*,enq=0.")


def test_spdy_header_context_spans_frames() -> None:
    comp, dec = spdy.Compressor(), spdy.Decompressor()
    for i in range(3):     # the same zlib stream across blocks, as SPDY requires
        h = {"streamtype": ["data"], "port": ["80"], "requestid": [str(i)]}
        assert dec.block(comp.block(h)) == h


def test_spdy_frames_parse_in_pieces() -> None:
    comp = spdy.Compressor()
    wire = (spdy.encode_syn_stream(comp, 1, {"streamtype": ["error"], "port": ["80"]},
                                   fin=True)
            + spdy.encode_data(3, b"hello", fin=True) + spdy.encode_ping(7)
            + spdy.encode_rst(5, spdy.RST_CANCEL) + spdy.encode_goaway(3))
    parser, frames = spdy.FrameParser(), []
    for byte in range(len(wire)):
        frames += parser.feed(wire[byte:byte + 1])
    assert [f.type for f in frames] == [spdy.SYN_STREAM, spdy.DATA, spdy.PING,
                                        spdy.RST_STREAM, spdy.GOAWAY]
    syn, data, ping, rst, goaway = frames
    assert (syn.stream_id, syn.fin, syn.header("StreamType")) == (1, True, "error")
    assert (data.stream_id, data.data, data.fin) == (3, b"hello", True)
    assert ping.ping_id == 7 and rst.status == spdy.RST_CANCEL and goaway.last_good == 3


def test_spdy_rejects_other_versions() -> None:
    with pytest.raises(spdy.SpdyError):
        spdy.FrameParser().feed(b"\x80\x02\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01")


async def _echo_server() -> tuple[asyncio.AbstractServer, int]:
    async def echo(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
        w.close()
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


class _Client:
    """The kubectl side of a port-forward session, in frames."""

    def __init__(self) -> None:
        self.comp, self.parser = spdy.Compressor(), spdy.FrameParser()
        self.frames: list[spdy.Frame] = []

    def syn(self, sid: int, kind: str, port: int, req: str) -> bytes:
        return spdy.encode_syn_stream(self.comp, sid, {"streamtype": [kind],
                                                       "port": [str(port)],
                                                       "requestid": [req]})


async def test_portforward_session_echo_and_refused() -> None:
    server, port = await _echo_server()
    out: asyncio.Queue[spdy.Frame] = asyncio.Queue()
    client = _Client()

    async def send(data: bytes) -> None:
        for f in client.parser.feed(data):
            out.put_nowait(f)

    async def connect(p: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", p)

    session = PortForwardSession(send, connect, "web, uid u1")
    try:
        await session.feed(client.syn(1, "error", port, "0") + client.syn(3, "data", port, "0"))
        replies = [await out.get(), await out.get()]
        assert [(f.type, f.stream_id) for f in replies] == [(spdy.SYN_REPLY, 1),
                                                           (spdy.SYN_REPLY, 3)]
        big = os.urandom(100_000)
        await session.feed(spdy.encode_data(3, big) + spdy.encode_data(3, b"", fin=True))
        got = b""
        while True:
            f = await asyncio.wait_for(out.get(), 5)
            if f.stream_id == 3:
                got += f.data
                if f.fin:
                    break
        assert got == big
        await session.feed(spdy.encode_ping(5))
        f = await asyncio.wait_for(out.get(), 5)
        while f.type != spdy.PING:      # the error stream's closing FIN may come first
            f = await asyncio.wait_for(out.get(), 5)
        assert f.ping_id == 5
        server.close()
        await server.wait_closed()
        await session.feed(client.syn(5, "error", port, "1") + client.syn(7, "data", port, "1"))
        err = b""
        while True:
            f = await asyncio.wait_for(out.get(), 5)
            if f.type == spdy.DATA and f.stream_id == 5:
                err += f.data
                if f.fin:
                    break
        assert err.startswith(f"error forwarding port {port} to pod web, uid u1:".encode())
        assert b"connection refused" in err
    finally:
        await session.close()


# ---- CRI logs ----------------------------------------------------------------------------

LOG = (b"2026-01-02T03:04:05.000000001Z stdout F one\n"
       b"2026-01-02T03:04:06.000000001Z stderr F two\n"
       b"2026-01-02T03:04:07.000000001Z stdout P par\n"
       b"2026-01-02T03:04:07.500000001Z stdout F tial\n"
       b"garbage line\n")


@pytest.mark.parametrize("opts,want", [
    (podlogs.LogOptions(), b"one\ntwo\npartial\n"),
    (podlogs.LogOptions(tail_lines=1), b"tial\n"),
    (podlogs.LogOptions(tail_lines=0), b""),
    (podlogs.LogOptions(tail_lines=2, timestamps=True),
     b"2026-01-02T03:04:07.000000001Z par2026-01-02T03:04:07.500000001Z tial\n"),
    (podlogs.LogOptions(since=datetime(2026, 1, 2, 3, 4, 6, tzinfo=timezone.utc)),
     b"two\npartial\n"),
], ids=["all", "tail1", "tail0", "timestamps", "since"])
def test_render(opts: podlogs.LogOptions, want: bytes) -> None:
    entries, rest = podlogs.split_complete(LOG + b"2026-01-02T03:04:08Z stdout F unfinished")
    assert rest == b"2026-01-02T03:04:08Z stdout F unfinished"
    assert podlogs.render(entries, opts) == want


def test_parse_time_nanoseconds() -> None:
    assert podlogs.parse_time("2026-01-02T03:04:05.123456789Z") == \
        datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)
    assert podlogs.parse_time("nonsense") is None


# ---- the endpoints in-process, with local processes ----------------------------------

class FakeRuntime:
    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir

    def sandbox(self, ns: str, pod: str) -> Any:
        return types.SimpleNamespace(netns_path=None)

    def exec_context(self, ns: str, pod: str, c: str) -> Any:
        if c != "c":
            return None
        return self.sandbox(ns, pod), {"PATH": "/usr/bin:/bin"}, [], None

    def log_path(self, ns: str, pod: str, c: str, previous: bool = False) -> Path | None:
        p = self.logdir / f"{c}{'.prev' if previous else ''}.log"
        return p if (p.exists() or not previous) else None


async def local_spawn(sb: Any, argv: list[str], *, env: dict[str, str], cwd: str | None = None,
                      mounts: Any = (), stdin: Any, stdout: Any, stderr: Any,
                      start_new_session: bool = True, tty: bool = False
                      ) -> asyncio.subprocess.Process:
    if not os.path.exists(argv[0]) and not any(
            os.path.exists(os.path.join(d, argv[0])) for d in env["PATH"].split(":")):
        raise FileNotFoundError(argv[0])
    return await asyncio.create_subprocess_exec(*argv, stdin=stdin, stdout=stdout,
                                                stderr=stderr, env=env, cwd=cwd,
                                                start_new_session=True)


PODS = REGISTRY.by_plural("", "pods")


async def make_server(tmp: Path, monkeypatch: pytest.MonkeyPatch
                      ) -> tuple[TestClient, ObjectAPI, SQLiteStore]:
    rt = FakeRuntime(tmp)
    monkeypatch.setattr(streaming, "BACKEND", streaming.Backend(
        lambda node: rt if node == "n1" else None, local_spawn,
        lambda sb, port: asyncio.open_connection("127.0.0.1", port)))
    store = SQLiteStore(":memory:")
    api = ObjectAPI(store)
    await ensure_system_objects(api)
    assert PODS is not None
    await api.create(PODS, "default", {"apiVersion": "v1", "kind": "Pod",
                                       "metadata": {"name": "web"},
                                       "spec": {"nodeName": "n1", "containers": [
                                           {"name": "c", "image": "busybox"}]}})
    await set_status(api, {"phase": "Running", "containerStatuses": [running_status()]})

    async def extra(request: web.Request) -> web.StreamResponse | None:
        target = parse_resource_path(request.path.rstrip("/"))
        return await streaming.handle(request, api, target) if target else None

    client = TestClient(TestServer(ApiServerApp(api, extra=[extra]).build(),
                                   host="127.0.0.1"))
    await client.start_server()
    return client, api, store


def running_status() -> dict[str, Any]:
    return {"name": "c", "ready": True, "restartCount": 0, "image": "busybox",
            "imageID": "", "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}


async def set_status(api: ObjectAPI, status: dict[str, Any]) -> None:
    assert PODS is not None
    cur = dict(api.get(PODS, "default", "web").obj)
    cur["status"] = status
    await api.update(PODS, "default", "web", cur, subresource="status")


@pytest.fixture
async def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                 ) -> AsyncIterator[tuple[TestClient, ObjectAPI, Path]]:
    client, api, store = await make_server(tmp_path, monkeypatch)
    yield client, api, tmp_path
    await client.close()
    await store.close()


EXEC = "/api/v1/namespaces/default/pods/web/exec"


async def run_exec(client: TestClient, argv: list[str], stdin: bytes | None = None,
                   protocol: str = wsproto.V5) -> tuple[bytes, bytes, dict[str, Any]]:
    q = [("command", a) for a in argv] + [("container", "c"), ("stdout", "true"),
                                          ("stderr", "true"),
                                          ("stdin", "true" if stdin is not None else "false")]
    ws = await client.ws_connect(EXEC, params=q, protocols=(protocol,))
    assert ws.protocol == protocol
    if stdin is not None:
        await ws.send_bytes(wsproto.encode(wsproto.STDIN, stdin))
        await ws.send_bytes(wsproto.encode(wsproto.CLOSE, bytes((wsproto.STDIN,))))
    chans: dict[int, bytes] = {1: b"", 2: b"", 3: b""}
    async for msg in ws:
        assert msg.type == WSMsgType.BINARY
        ch, data = wsproto.decode(msg.data)
        chans[ch] += data
    return chans[1], chans[2], orjson.loads(chans[3])


@pytest.mark.parametrize("argv,out,err,code", [
    (["sh", "-c", "echo hi; echo oops >&2; exit 3"], b"hi\n", b"oops\n", 3),
    (["true"], b"", b"", 0),
    (["sh", "-c", "kill -9 $$"], b"", b"", 137),
], ids=["exit3", "success", "killed"])
async def test_exec_exit_codes(served: Any, argv: list[str], out: bytes, err: bytes,
                               code: int) -> None:
    client, _, _ = served
    got_out, got_err, status = await run_exec(client, argv)
    assert (got_out, got_err) == (out, err)
    assert wsproto.status_exit_code(status) == code


async def test_exec_stdin_closed_by_v5(served: Any) -> None:
    client, _, _ = served
    out, _, status = await run_exec(client, ["cat"], stdin=b"echo me\n" * 1000)
    assert out == b"echo me\n" * 1000 and status["status"] == "Success"


async def test_exec_missing_binary(served: Any) -> None:
    client, _, _ = served
    _, _, status = await run_exec(client, ["no-such-binary"])
    assert status["status"] == "Failure" and status["reason"] == "InternalError"
    assert 'exec: "no-such-binary": executable file not found in $PATH' in status["message"]


@pytest.mark.parametrize("query,code,message", [
    ([("command", "true"), ("container", "zz"), ("stdout", "true")], 400,
     "container zz is not valid for pod web"),
    ([("container", "c"), ("stdout", "true")], 400, "you must specify at least 1 command"),
], ids=["bad-container", "no-command"])
async def test_exec_rejected(served: Any, query: list[tuple[str, str]], code: int,
                             message: str) -> None:
    client, _, _ = served
    r = await client.get(EXEC, params=query)
    assert r.status == code and (await r.json())["message"] == message


async def test_exec_needs_websocket(served: Any) -> None:
    client, _, _ = served
    r = await client.post(EXEC, params=[("command", "true"), ("stdout", "true")],
                          headers={"Connection": "Upgrade", "Upgrade": "SPDY/3.1"})
    assert r.status == 400 and "WebSocket" in (await r.json())["message"]


LOGS = "/api/v1/namespaces/default/pods/web/log"


async def test_logs_plain_tail_and_previous(served: Any) -> None:
    client, _, tmp = served
    (tmp / "c.log").write_bytes(LOG)
    r = await client.get(LOGS)
    assert r.status == 200 and await r.read() == b"one\ntwo\npartial\n"
    r = await client.get(LOGS, params={"tailLines": "1", "limitBytes": "2"})
    assert await r.read() == b"ti"
    r = await client.get(LOGS, params={"previous": "true"})
    assert r.status == 400
    assert (await r.json())["message"] == \
        'previous terminated container "c" in pod "web" not found'


async def test_logs_follow_ends_with_container(served: Any) -> None:
    client, api, tmp = served
    path = tmp / "c.log"
    path.write_bytes(LOG)
    r = await client.get(LOGS, params={"follow": "true"})
    assert await r.content.readexactly(len(b"one\ntwo\npartial\n")) == b"one\ntwo\npartial\n"
    with path.open("ab") as fh:
        fh.write(b"2026-01-02T03:04:09Z stdout F later\n")
    assert await asyncio.wait_for(r.content.readline(), 5) == b"later\n"
    done = dict(running_status(), state={"terminated": {"exitCode": 0, "reason": "Completed"}})
    await set_status(api, {"phase": "Succeeded", "containerStatuses": [done]})
    assert await asyncio.wait_for(r.content.read(), 5) == b""     # the stream ended


async def test_portforward_over_websocket(served: Any) -> None:
    client, _, _ = served
    server, port = await _echo_server()
    try:
        ws = await client.ws_connect("/api/v1/namespaces/default/pods/web/portforward",
                                     protocols=(wsproto.PORTFORWARD_TUNNEL,))
        c = _Client()
        await ws.send_bytes(c.syn(1, "error", port, "0") + c.syn(3, "data", port, "0"))
        await ws.send_bytes(spdy.encode_data(3, b"ping over spdy"))
        got = b""
        while got != b"ping over spdy":
            msg = await asyncio.wait_for(ws.receive(), 5)
            for f in c.parser.feed(msg.data):
                if f.type == spdy.DATA and f.stream_id == 3:
                    got += f.data
        await ws.close()
    finally:
        server.close()
        await server.wait_closed()
