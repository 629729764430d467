"""pods/portforward: SPDY/3.1 tunnelled over WebSocket (`SPDY/3.1+portforward.k8s.io`,
what kubectl 1.32 tries first) or a plain `Upgrade: SPDY/3.1` (its fallback), both
driving netd.apiserver.portforward's session into the pod's network namespace."""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import WSMsgType, web

from netd.api import errors
from netd.apiserver import streaming, wsproto
from netd.apiserver.portforward import PortForwardSession
from netd.apiserver.routes import Target
from netd.registry.objectapi import ObjectAPI

log = logging.getLogger("netd.apiserver.streaming")


async def serve_portforward(request: web.Request, api: ObjectAPI, t: Target
                            ) -> web.StreamResponse:
    pod = streaming.pod_of(api, t)
    phase = (pod.get("status") or {}).get("phase")
    if phase != "Running":
        raise errors.BadRequest(f"pod {pod['metadata']['name']} is not running "
                                f"(phase {phase})")
    rt = streaming.runtime_of(pod)
    ns, name = pod["metadata"].get("namespace", ""), pod["metadata"]["name"]
    sb = streaming.sandbox_of(rt, pod)
    desc = f"{name}, uid {pod['metadata'].get('uid', '')}"

    async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await streaming.BACKEND.connect(sb, port)

    if streaming.is_websocket(request):
        return await _portforward_ws(request, connect, desc)
    if request.headers.get("Upgrade", "").lower().startswith("spdy/3.1"):
        return await _portforward_spdy(request, connect, desc)
    raise errors.BadRequest("Upgrade request required")


async def _portforward_ws(request: web.Request, connect: Any, desc: str) -> web.StreamResponse:
    ws = web.WebSocketResponse(protocols=(wsproto.PORTFORWARD_TUNNEL,), autoping=True,
                               max_msg_size=0)
    await ws.prepare(request)
    session = PortForwardSession(ws.send_bytes, connect, desc)
    try:
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                await session.feed(msg.data)
            elif msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                break
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    except ValueError as exc:        # SpdyError: the stream is beyond repair
        log.info("port-forward %s: %s", desc, exc)
    finally:
        await session.close()
        if not ws.closed:
            await ws.close()
    return ws


async def _portforward_spdy(request: web.Request, connect: Any, desc: str
                            ) -> web.StreamResponse:
    """Plain `Upgrade: SPDY/3.1` (kubectl's fallback): answer 101, then the request's
    body stream carries the client's frames and the transport takes ours."""
    protocol = request.headers.get("X-Stream-Protocol-Version", "")
    resp = web.StreamResponse(status=101, headers={
        "Connection": "Upgrade", "Upgrade": "SPDY/3.1",
        "X-Stream-Protocol-Version": "portforward.k8s.io" if "portforward.k8s.io" in
        protocol else protocol})
    await resp.prepare(request)
    transport = request.transport
    if transport is None:
        return resp

    async def send(data: bytes) -> None:
        if transport.is_closing():
            raise ConnectionResetError("client gone")
        transport.write(data)

    session = PortForwardSession(send, connect, desc)
    inbox: asyncio.Queue[bytes] = asyncio.Queue()
    # After the 101 aiohttp parses no more HTTP: the upgraded bytes go to a payload
    # parser we install, the same hook its WebSocketResponse uses.
    request.protocol.set_parser(_RawStream(inbox))  # type: ignore[arg-type]
    try:
        while chunk := await inbox.get():
            await session.feed(chunk)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    except ValueError as exc:
        log.info("port-forward %s: %s", desc, exc)
    finally:
        await session.close()
        transport.close()
    return resp


class _RawStream:
    """The payload-parser interface aiohttp feeds upgraded bytes to; b"" marks EOF."""

    def __init__(self, inbox: asyncio.Queue[bytes]) -> None:
        self._inbox = inbox

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if data:
            self._inbox.put_nowait(bytes(data))
        return False, b""

    def feed_eof(self) -> None:
        self._inbox.put_nowait(b"")

    def set_exception(self, exc: BaseException, cause: BaseException | None = None) -> None:
        self._inbox.put_nowait(b"")
