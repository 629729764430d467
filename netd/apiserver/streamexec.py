"""pods/exec and pods/attach over WebSocket (`v5.channel.k8s.io`, `v4.channel.k8s.io`):
the request's checks (kubelet's, before the upgrade), then a command started for exec
(netd.apiserver.execproc) or the container's own stdio for attach
(netd.apiserver.streamattach), and the final Status on the error channel."""
from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from netd.api import errors
from netd.apiserver import streamattach, streaming, wsproto
from netd.apiserver.execproc import ExecProcess, start_exec
from netd.apiserver.routes import Target
from netd.registry.objectapi import ObjectAPI

log = logging.getLogger("netd.apiserver.streaming")

# Seconds a TTY exec waits for the client's first resize: kubectl sends it at once, but a
# loaded machine may delay it, and `stty size` would read 0 0 without it.
TTY_SIZE_WAIT = 2.0


async def serve_exec(request: web.Request, api: ObjectAPI, t: Target, *, attach: bool
                     ) -> web.StreamResponse:
    q = request.query
    pod = streaming.pod_of(api, t)
    container = streaming.container_of(pod, q.get("container", ""))
    argv = q.getall("command", [])
    if not attach and not argv:
        raise errors.BadRequest("you must specify at least 1 command")
    stdin, stdout, stderr, tty = (streaming.flag(q, "stdin"), streaming.flag(q, "stdout"),
                                  streaming.flag(q, "stderr"), streaming.flag(q, "tty"))
    if not (stdin or stdout or stderr):
        raise errors.BadRequest("you must specify at least 1 of stdin, stdout, stderr")
    if not streaming.is_websocket(request):
        raise errors.BadRequest(f"pods/{t.subresource} is served over WebSocket "
                                f"({', '.join(wsproto.EXEC_PROTOCOLS)}); SPDY is not "
                                "supported by netd")
    rt = streaming.runtime_of(pod)
    ns, name = pod["metadata"].get("namespace", ""), pod["metadata"]["name"]
    ctx = handle = None
    if attach:
        # Before the upgrade, as the runtime refuses a container that does not run.
        handle = streamattach.attach_handle(rt, ns, name, container)
    else:
        ctx = rt.exec_context(ns, name, container)
        if ctx is None:
            # kubectl prints "unable to upgrade connection: <message>", like the kubelet's.
            raise errors.NotFound(f'container not found ("{container}")')
    ws = web.WebSocketResponse(protocols=wsproto.EXEC_PROTOCOLS, autoping=True,
                               max_msg_size=0)
    if not ws.can_prepare(request).ok:
        raise errors.BadRequest("WebSocket upgrade failed")
    await ws.prepare(request)
    v5 = ws.ws_protocol == wsproto.V5
    try:
        if attach and handle is not None:
            status = await streamattach.run_attach(ws, handle, stdin=stdin, stdout=stdout,
                                                   stderr=stderr, v5=v5)
        elif attach:
            status = await streamattach.attach_via_log(ws, rt, ns, name, container)
        else:
            status = await _run_exec(ws, ctx, argv,
                                     stdin=stdin, stdout=stdout, stderr=stderr, tty=tty, v5=v5)
        if not ws.closed:
            await ws.send_bytes(wsproto.encode(wsproto.ERROR, orjson.dumps(status)))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        if not ws.closed:
            await ws.close()
    return ws


async def _run_exec(ws: web.WebSocketResponse, ctx: Any, argv: list[str], *, stdin: bool,
                    stdout: bool, stderr: bool, tty: bool, v5: bool) -> dict[str, Any]:
    sb, env, mounts, cwd = ctx
    size, early = (await _first_resize(ws)) if tty else (None, [])
    try:
        proc = await start_exec(streaming.BACKEND.spawn, sb, argv, env=env, mounts=mounts,
                                cwd=cwd, stdin=stdin, stdout=stdout, stderr=stderr, tty=tty,
                                size=size)
    except FileNotFoundError:
        return wsproto.error_status(
            "Internal error occurred: error executing command in container: failed to exec "
            f"in container: exec: \"{argv[0]}\": executable file not found in $PATH")
    except PermissionError:
        return wsproto.error_status(
            "Internal error occurred: error executing command in container: failed to exec "
            f"in container: exec: \"{argv[0]}\": permission denied")
    for data in early:
        await proc.write_stdin(data)
    return await pump(ws, proc, argv, v5=v5)


async def _first_resize(ws: web.WebSocketResponse) -> tuple[wsproto.Size | None, list[bytes]]:
    """kubectl sends the terminal size right after connecting; waiting a moment for it
    lets the command start with the right size instead of 0x0. Stdin that arrives
    first is kept for the command."""
    early: list[bytes] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TTY_SIZE_WAIT
    while (left := deadline - loop.time()) > 0:
        try:
            msg = await asyncio.wait_for(ws.receive(), left)
        except asyncio.TimeoutError:
            break
        if msg.type != WSMsgType.BINARY:
            break
        try:
            channel, payload = wsproto.decode(msg.data)
            if channel == wsproto.RESIZE:
                return wsproto.decode_resize(payload), early
        except wsproto.ProtocolError:
            continue
        if channel == wsproto.STDIN:
            early.append(payload)
    return None, early


async def pump(ws: web.WebSocketResponse, proc: ExecProcess, argv: list[str], *,
               v5: bool) -> dict[str, Any]:
    """Copy channels both ways until the process ends; its exit as a Status."""
    outputs = [asyncio.create_task(_copy_out(ws, ch, reader), name=f"exec out {ch}")
               for ch, reader in proc.outputs.items()]
    inbound = asyncio.create_task(_copy_in(ws, proc, v5), name="exec in")
    waiter = asyncio.create_task(proc.wait(), name="exec wait")
    try:
        done, _ = await asyncio.wait({waiter, inbound}, return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            # The client went away (or broke the protocol): the command goes too.
            proc.kill()
            return wsproto.error_status("client disconnected")
        # Output still in the pipes belongs to the command: send it before the status,
        # but do not hang on a background child that inherited the pipes.
        if outputs:
            await asyncio.wait(outputs, timeout=2.0)
        return wsproto.exit_status(wsproto.exit_code_of(waiter.result()), argv)
    finally:
        for task in (*outputs, inbound, waiter):
            task.cancel()
        await asyncio.gather(*outputs, inbound, waiter, return_exceptions=True)
        proc.close()


async def _copy_out(ws: web.WebSocketResponse, channel: int,
                    reader: asyncio.StreamReader) -> None:
    while True:
        try:
            data = await reader.read(32 * 1024)
        except OSError:             # EIO: the pty's last slave fd closed
            return
        if not data:
            return
        await ws.send_bytes(wsproto.encode(channel, data))


async def _copy_in(ws: web.WebSocketResponse, proc: ExecProcess, v5: bool) -> None:
    async for msg in ws:
        if msg.type != WSMsgType.BINARY:
            if msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                return
            continue
        try:
            channel, payload = wsproto.decode(msg.data)
            if channel == wsproto.STDIN:
                await proc.write_stdin(payload)
            elif channel == wsproto.RESIZE:
                proc.resize(wsproto.decode_resize(payload))
            elif channel == wsproto.CLOSE and v5:
                if wsproto.closed_channel(payload) == wsproto.STDIN:
                    proc.close_stdin()
        except wsproto.ProtocolError as exc:
            log.info("exec: ignoring bad message: %s", exc)
        except (BrokenPipeError, ConnectionResetError):
            proc.close_stdin()      # the command stopped reading; keep serving output
    # The socket closed: the loop ends only when the client is gone.
