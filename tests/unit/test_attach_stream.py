"""pods/attach over WebSocket with the kubelet's session rules (netd.apiserver.
streamattach), against real container stdio (netd.node.containerio) of plain local
processes: stdin to the container, detach on stdin EOF, stdinOnce, a container without
stdin, a TTY with resize, the session ending with the container, refusal of a container
that does not run."""
from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, AsyncIterator

import orjson
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from netd.apiserver import streaming, wsproto
from netd.node.containerio import ContainerIO
from tests.unit.test_attach_io import DEADLINE, start
from tests.unit.test_wsproto import FakeRuntime, make_server

ATTACH = "/api/v1/namespaces/default/pods/web/attach"


class AttachRuntime(FakeRuntime):
    def __init__(self, logdir: Path) -> None:
        super().__init__(logdir)
        self.io: ContainerIO | None = None
        self.refuse = ""

    def attach(self, ns: str, pod: str, c: str) -> ContainerIO | None:
        if self.refuse:
            raise LookupError(self.refuse)
        return self.io


@pytest.fixture
async def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                 ) -> AsyncIterator[tuple[TestClient, AttachRuntime, Path]]:
    client, _, store = await make_server(tmp_path, monkeypatch)
    rt = AttachRuntime(tmp_path)
    monkeypatch.setattr(streaming, "BACKEND", streaming.Backend(
        lambda node: rt if node == "n1" else None, streaming.BACKEND.spawn,
        streaming.BACKEND.connect))
    yield client, rt, tmp_path
    if rt.io is not None:
        rt.io.finish()
    await client.close()
    await store.close()


def params(stdin: bool = True, tty: bool = False) -> list[tuple[str, str]]:
    return [("container", "c"), ("stdout", "true"), ("stderr", "false" if tty else "true"),
            ("stdin", "true" if stdin else "false"), ("tty", "true" if tty else "false")]


class Session:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.chans: dict[int, bytes] = {1: b"", 2: b"", 3: b""}
        self.closed = False

    async def send(self, channel: int, data: bytes) -> None:
        await self.ws.send_bytes(wsproto.encode(channel, data))

    async def until(self, channel: int, want: bytes) -> None:
        async def run() -> None:
            while want not in self.chans[channel]:
                msg = await self.ws.receive()
                if msg.type != WSMsgType.BINARY:
                    raise AssertionError(f"session ended before {want!r}: {self.chans}")
                ch, data = wsproto.decode(msg.data)
                self.chans[ch] += data
        await asyncio.wait_for(run(), DEADLINE)

    async def end(self) -> dict[str, Any]:
        """Read to the end of the session: its Status."""
        async def run() -> None:
            async for msg in self.ws:
                ch, data = wsproto.decode(msg.data)
                self.chans[ch] += data
        await asyncio.wait_for(run(), DEADLINE)
        return dict(orjson.loads(self.chans[3]))


async def connect(client: TestClient, **kw: Any) -> Session:
    return Session(await client.ws_connect(ATTACH, params=params(**kw),
                                           protocols=(wsproto.V5,)))


async def test_stdin_round_trip_then_detach_on_stdin_eof(served: Any) -> None:
    client, rt, tmp = served
    proc, rt.io, _ = await start(tmp, ["cat"], stdin=True)
    s = await connect(client)
    await s.send(wsproto.STDIN, b"one\n")
    await s.until(1, b"one\n")
    await s.send(wsproto.STDIN, b"two\n")
    await s.until(1, b"one\ntwo\n")
    await s.send(wsproto.CLOSE, bytes((wsproto.STDIN,)))
    assert (await s.end())["status"] == "Success"
    assert proc.returncode is None and rt.io.stdin   # detached: cat runs on, stdin open
    s2 = await connect(client)                        # and a second session gets it
    await s2.send(wsproto.STDIN, b"three\n")
    await s2.until(1, b"three\n")
    assert s2.chans[1] == b"three\n"                  # no history from before
    rt.io.close_stdin()
    assert await asyncio.wait_for(proc.wait(), DEADLINE) == 0
    await rt.io.drain(DEADLINE)
    rt.io.finish()                                    # the container ended: so does s2
    assert (await s2.end())["status"] == "Success"


async def test_stdin_once_closes_stdin_and_streams_to_exit(served: Any) -> None:
    client, rt, tmp = served
    proc, rt.io, _ = await start(tmp, ["sh", "-c", "read x; echo got:$x; cat; echo done >&2"],
                                 stdin=True, stdin_once=True)
    s = await connect(client)
    await s.send(wsproto.STDIN, b"hello\n")
    await s.until(1, b"got:hello\n")
    await s.send(wsproto.STDIN, b"rest\n")
    await s.send(wsproto.CLOSE, bytes((wsproto.STDIN,)))
    await s.until(2, b"done\n")                       # cat saw EOF: stdin really closed
    assert await asyncio.wait_for(proc.wait(), DEADLINE) == 0
    await rt.io.drain(DEADLINE)
    rt.io.finish()                                    # what the worker does at exit
    assert (await s.end())["status"] == "Success"
    assert s.chans[1] == b"got:hello\nrest\n"


async def test_stdin_once_session_gone_closes_stdin(served: Any) -> None:
    client, rt, tmp = served
    proc, rt.io, _ = await start(tmp, ["cat"], stdin=True, stdin_once=True)
    s = await connect(client)
    await s.send(wsproto.STDIN, b"x\n")
    await s.until(1, b"x\n")
    await s.ws.close()                                # the client goes without a close
    assert await asyncio.wait_for(proc.wait(), DEADLINE) == 0
    assert not rt.io.stdin


async def test_container_without_stdin_ignores_client_stdin(served: Any) -> None:
    client, rt, tmp = served
    gate = tmp / "gate"
    os.mkfifo(gate)
    proc, rt.io, _ = await start(tmp, ["sh", "-c", f"read x < {gate}; cat; echo end"])
    s = await connect(client)
    await s.send(wsproto.STDIN, b"ignored\n")
    await s.send(wsproto.CLOSE, bytes((wsproto.STDIN,)))   # no stdin: not a detach
    await asyncio.to_thread(gate.write_text, "\n")
    await s.until(1, b"end\n")
    assert await asyncio.wait_for(proc.wait(), DEADLINE) == 0
    await rt.io.drain(DEADLINE)
    rt.io.finish()
    assert (await s.end())["status"] == "Success"
    assert s.chans[1] == b"end\n"                     # cat read /dev/null


async def test_tty_resize_reaches_the_process(served: Any) -> None:
    client, rt, tmp = served
    proc, rt.io, _ = await start(tmp, ["sh", "-c", "read x; stty size; read y"], stdin=True,
                                 tty=True)
    s = await connect(client, tty=True)
    await s.send(wsproto.RESIZE, b'{"Width":97,"Height":31}')
    await s.send(wsproto.STDIN, b"go\n")
    await s.until(1, b"31 97")
    assert b"go" in s.chans[1] and s.chans[2] == b""  # the terminal's echo, one channel
    await s.send(wsproto.STDIN, b"bye\n")
    assert await asyncio.wait_for(proc.wait(), DEADLINE) == 0


@pytest.mark.parametrize("refuse,status,message", [
    ("container c is in CONTAINER_EXITED state", 400,
     "container c is in CONTAINER_EXITED state"),
], ids=["exited"])
async def test_not_running_is_refused_before_upgrade(served: Any, refuse: str, status: int,
                                                     message: str) -> None:
    client, rt, _ = served
    rt.refuse = refuse
    r = await client.get(ATTACH, params=params(),
                         headers={"Connection": "Upgrade", "Upgrade": "websocket",
                                  "Sec-WebSocket-Version": "13",
                                  "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                                  "Sec-WebSocket-Protocol": wsproto.V5})
    assert r.status == status and (await r.json())["message"] == message
