"""pods/attach: a client joined to a running container's own stdio, with the session
rules of the kubelet's runtime (containerd's CRI ContainerIO.Attach, docker's
StdinOnce):

- the client gets the instance's output from now on (no history): stdout and stderr on
  their channels, everything on stdout for a TTY container;
- its stdin goes to the container's when both have one; a container started without
  `stdin: true` ignores it (attach is still allowed, output only);
- the client's stdin ending (v5 close of channel 0): with `stdinOnce` and no TTY the
  container's stdin closes and output keeps streaming until the container exits;
  otherwise the session ends there (a detach: the container runs on);
- a session that had stdin on a `stdinOnce` container closes the container's stdin when
  it ends, however it ends (the first attach owns stdin);
- the session ends with Success when the container exits, or when the client goes.

The container's side is `PodRuntime.attach` (netd.node.containerio.ContainerIO); a
runtime without it gets the log followed read-only (`attach_via_log`).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import WSMsgType, web

from netd.api import errors
from netd.apiserver import podlogs, wsproto

log = logging.getLogger("netd.apiserver.streaming")

GONE, STDIN_EOF = "gone", "stdin-eof"


def attach_handle(rt: Any, ns: str, pod: str, container: str) -> Any:
    """The container's attach handle, None to fall back to the log; a container that
    does not run is refused before the upgrade, as the runtime refuses it."""
    attach = getattr(rt, "attach", None)
    if attach is None:
        return None
    try:
        return attach(ns, pod, container)
    except LookupError as exc:
        raise errors.BadRequest(str(exc).strip("'\"")) from None


async def run_attach(ws: web.WebSocketResponse, handle: Any, *, stdin: bool, stdout: bool,
                     stderr: bool, v5: bool) -> dict[str, Any]:
    use_stdin = stdin and bool(handle.stdin)
    tty = bool(handle.tty)
    wanted = {wsproto.STDOUT: stdout or tty, wsproto.STDERR: stderr}
    queue = handle.subscribe()
    inbound = asyncio.create_task(_attach_in(ws, handle, use_stdin, eof=use_stdin and v5),
                                  name="attach in")
    getter: asyncio.Future[Any] | None = None
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getter, inbound},
                                         return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                item = getter.result()
                if item is None:
                    return dict(wsproto.STATUS_SUCCESS)
                channel, data = item
                channel = wsproto.STDOUT if tty else channel
                if wanted.get(channel):
                    await ws.send_bytes(wsproto.encode(channel, data))
                continue
            getter.cancel()
            if inbound.result() == STDIN_EOF and handle.stdin_once and not tty:
                handle.close_stdin()
                inbound = asyncio.create_task(_attach_in(ws, handle, False, eof=False),
                                              name="attach in")
                continue
            return dict(wsproto.STATUS_SUCCESS)
    finally:
        if getter is not None:
            getter.cancel()
        inbound.cancel()
        handle.unsubscribe(queue)
        if use_stdin and handle.stdin_once:
            handle.close_stdin()


async def _attach_in(ws: web.WebSocketResponse, handle: Any, stdin: bool, *, eof: bool
                     ) -> str:
    """Client messages to the container until the client goes (GONE) or, when `eof`,
    half-closes its stdin (STDIN_EOF; v5 only: v4 cannot say it)."""
    async for msg in ws:
        if msg.type != WSMsgType.BINARY:
            if msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                break
            continue
        try:
            channel, payload = wsproto.decode(msg.data)
            if channel == wsproto.STDIN and stdin:
                await handle.write_stdin(payload)
            elif channel == wsproto.RESIZE:
                size = wsproto.decode_resize(payload)
                handle.resize(size.width, size.height)
            elif channel == wsproto.CLOSE and eof and \
                    wsproto.closed_channel(payload) == wsproto.STDIN:
                return STDIN_EOF
        except wsproto.ProtocolError as exc:
            log.info("attach: ignoring bad message: %s", exc)
    return GONE


async def attach_via_log(ws: web.WebSocketResponse, rt: Any, ns: str, pod: str,
                         container: str) -> dict[str, Any]:
    """Read-only attach for a runtime without stdio to join: the log, followed."""
    path = rt.log_path(ns, pod, container)
    if path is None:
        return wsproto.error_status(f"container {container} has no output to attach to",
                                    "BadRequest", 400)
    opts = podlogs.LogOptions(follow=True, tail_lines=0)
    _, offset = podlogs.read_all(path, opts)

    async def write(data: bytes) -> None:
        await ws.send_bytes(wsproto.encode(wsproto.STDOUT, data))

    def running() -> bool:
        return not ws.closed and rt.log_path(ns, pod, container) == path and \
            _is_running(rt, ns, pod, container)

    await podlogs.follow(path, offset, opts, write, running, podlogs.Limit(None))
    return dict(wsproto.STATUS_SUCCESS)


def _is_running(rt: Any, ns: str, pod: str, container: str) -> bool:
    check = getattr(rt, "container_running", None)
    return bool(check(ns, pod, container)) if check is not None else True
