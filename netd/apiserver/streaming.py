"""pods/exec, pods/attach, pods/log and pods/portforward: the kubelet's streaming
endpoints, served by the daemon itself (there is no separate kubelet to proxy to).

- exec/attach: WebSocket with `v5.channel.k8s.io` or `v4.channel.k8s.io` (netd.apiserver.
  wsproto). SPDY is not served for them: kubectl 1.32 tries WebSocket first and only
  falls back on an upgrade failure, so a clear 400 reaches users of older clients.
- log: plain text from the container's CRI log file (netd.apiserver.podlogs).
- portforward: SPDY/3.1 tunnelled over WebSocket (`SPDY/3.1+portforward.k8s.io`, what
  kubectl 1.32 tries first) or a plain `Upgrade: SPDY/3.1` (its fallback), both driving
  netd.apiserver.portforward.

The node side is reached through netd.node.runtime.RUNTIMES[spec.nodeName] (the node
agent registers there) and commands start with netd.node.nsexec.spawn; both are looked up
through BACKEND so the protocol can be tested with plain local processes.
"""
from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable

from aiohttp import WSMsgType, web

from netd.api import errors
from netd.apiserver import podlogs, wsproto
from netd.apiserver.execproc import ExecProcess, start_exec
from netd.apiserver.portforward import PortForwardSession, open_in_netns
from netd.apiserver.routes import Target
from netd.registry.objectapi import ObjectAPI

log = logging.getLogger("netd.apiserver.streaming")

SUBRESOURCES = ("exec", "attach", "log", "portforward")
# Seconds a TTY exec waits for the client's first resize: kubectl sends it at once, but a
# loaded machine may delay it, and `stty size` would read 0 0 without it.
TTY_SIZE_WAIT = 2.0


def _default_runtime(node: str) -> Any:
    try:
        from netd.node.runtime import RUNTIMES
    except ImportError:
        return None
    return RUNTIMES.get(node)


async def _default_spawn(sb: Any, argv: list[str], **kw: Any) -> asyncio.subprocess.Process:
    from netd.node.nsexec import spawn
    return await spawn(sb, argv, **kw)


@dataclass
class Backend:
    runtime_for: Callable[[str], Any]                 # node name -> PodRuntime | None
    spawn: Callable[..., Awaitable[asyncio.subprocess.Process]]
    connect: Callable[[Any, int], Awaitable[tuple[asyncio.StreamReader,
                                                  asyncio.StreamWriter]]]


async def _default_connect(sb: Any, port: int
                           ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await open_in_netns(getattr(sb, "netns_path", None), port)


BACKEND = Backend(_default_runtime, _default_spawn, _default_connect)


async def handle(request: web.Request, api: ObjectAPI, target: Target
                 ) -> web.StreamResponse | None:
    """Serve a pods/{exec,attach,log,portforward} request; None for anything else."""
    if target.rt.plural != "pods" or target.rt.group != "" or \
            target.subresource not in SUBRESOURCES or not target.name:
        return None
    sub = target.subresource
    if sub == "log":
        if request.method != "GET":
            raise errors.MethodNotAllowed("the server does not allow this method on the "
                                          "requested resource")
        return await serve_log(request, api, target)
    if request.method not in ("GET", "POST"):
        raise errors.MethodNotAllowed("the server does not allow this method on the "
                                      "requested resource")
    if sub == "portforward":
        return await serve_portforward(request, api, target)
    return await serve_exec(request, api, target, attach=(sub == "attach"))


# ---- shared lookups ----------------------------------------------------------------

def _pod(api: ObjectAPI, t: Target) -> dict[str, Any]:
    return api.get(t.rt, t.namespace or "", t.name or "").obj


def _containers(pod: dict[str, Any]) -> list[str]:
    spec = pod.get("spec") or {}
    return [c.get("name", "") for key in ("containers", "initContainers",
                                          "ephemeralContainers")
            for c in spec.get(key) or []]


def _container(pod: dict[str, Any], requested: str) -> str:
    """The container a request names; defaulted when the pod has exactly one, as
    kube-apiserver does (kubectl itself always sends one)."""
    name = pod["metadata"]["name"]
    names = _containers(pod)
    if not requested:
        main = [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or []]
        if len(main) == 1:
            return main[0]
        raise errors.BadRequest(f"a container name must be specified for pod {name}, "
                                f"choose one of: [{' '.join(main)}]")
    if requested not in names:
        raise errors.BadRequest(f"container {requested} is not valid for pod {name}")
    return requested


def _runtime(pod: dict[str, Any]) -> Any:
    node = (pod.get("spec") or {}).get("nodeName") or ""
    name = pod["metadata"]["name"]
    if not node:
        raise errors.BadRequest(f"pod {name} does not have a host assigned")
    rt = BACKEND.runtime_for(node)
    if rt is None:
        raise errors.BadRequest(f"node {node} has no node agent serving containers in this "
                                "daemon (node_mode simulated?): cannot stream to pod "
                                f"{name}")
    return rt


def _sandbox(rt: Any, pod: dict[str, Any]) -> Any:
    ns, name = pod["metadata"].get("namespace", ""), pod["metadata"]["name"]
    sb = rt.sandbox(ns, name)
    if sb is None:
        raise errors.BadRequest(f"pod {name} has no sandbox yet (phase "
                                f"{(pod.get('status') or {}).get('phase', 'Pending')})")
    return sb


def _bool(q: Any, key: str) -> bool:
    return str(q.get(key, "")).lower() in ("1", "true", "yes")


def _is_websocket(request: web.Request) -> bool:
    return "websocket" in request.headers.get("Upgrade", "").lower()


# ---- exec / attach -----------------------------------------------------------------

async def serve_exec(request: web.Request, api: ObjectAPI, t: Target, *, attach: bool
                     ) -> web.StreamResponse:
    q = request.query
    pod = _pod(api, t)
    container = _container(pod, q.get("container", ""))
    argv = q.getall("command", [])
    if not attach and not argv:
        raise errors.BadRequest("you must specify at least 1 command")
    stdin, stdout, stderr, tty = (_bool(q, "stdin"), _bool(q, "stdout"),
                                  _bool(q, "stderr"), _bool(q, "tty"))
    if not (stdin or stdout or stderr):
        raise errors.BadRequest("you must specify at least 1 of stdin, stdout, stderr")
    if not _is_websocket(request):
        raise errors.BadRequest(f"pods/{t.subresource} is served over WebSocket "
                                f"({', '.join(wsproto.EXEC_PROTOCOLS)}); SPDY is not "
                                "supported by netd")
    rt = _runtime(pod)
    ns, name = pod["metadata"].get("namespace", ""), pod["metadata"]["name"]
    ctx = None if attach else rt.exec_context(ns, name, container)
    if not attach and ctx is None:
        # kubectl prints "unable to upgrade connection: <message>", like the kubelet's.
        raise errors.NotFound(f'container not found ("{container}")')
    ws = web.WebSocketResponse(protocols=wsproto.EXEC_PROTOCOLS, autoping=True,
                               max_msg_size=0)
    if not ws.can_prepare(request).ok:
        raise errors.BadRequest("WebSocket upgrade failed")
    await ws.prepare(request)
    v5 = ws.ws_protocol == wsproto.V5
    try:
        if attach:
            status = await _run_attach(ws, rt, ns, name, container, stdin, tty)
        else:
            status = await _run_exec(ws, ctx, argv,
                                     stdin=stdin, stdout=stdout, stderr=stderr, tty=tty, v5=v5)
        if not ws.closed:
            await ws.send_bytes(wsproto.encode(wsproto.ERROR, _status_bytes(status)))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        if not ws.closed:
            await ws.close()
    return ws


def _status_bytes(status: dict[str, Any]) -> bytes:
    import orjson
    return orjson.dumps(status)


async def _run_exec(ws: web.WebSocketResponse, ctx: Any, argv: list[str], *, stdin: bool,
                    stdout: bool, stderr: bool, tty: bool, v5: bool) -> dict[str, Any]:
    sb, env, mounts, cwd = ctx
    size, early = (await _first_resize(ws)) if tty else (None, [])
    try:
        proc = await start_exec(BACKEND.spawn, sb, argv, env=env, mounts=mounts, cwd=cwd,
                                stdin=stdin, stdout=stdout, stderr=stderr, tty=tty, size=size)
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


async def _run_attach(ws: web.WebSocketResponse, rt: Any, ns: str, pod: str, container: str,
                      stdin: bool, tty: bool) -> dict[str, Any]:
    """Attach to the container's own stdio when the node agent offers it
    (`PodRuntime.attach`), else stream its log as stdout (read-only attach)."""
    attach = getattr(rt, "attach", None)
    handle = attach(ns, pod, container) if attach is not None else None
    if handle is None:
        return await _attach_via_log(ws, rt, ns, pod, container)
    queue = handle.subscribe()
    inbound = asyncio.create_task(_attach_in(ws, handle, stdin), name="attach in")
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getter, inbound}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                return dict(wsproto.STATUS_SUCCESS)
            item = getter.result()
            if item is None:
                return dict(wsproto.STATUS_SUCCESS)
            channel, data = item
            await ws.send_bytes(wsproto.encode(wsproto.STDOUT if tty else channel, data))
    finally:
        inbound.cancel()
        handle.unsubscribe(queue)


async def _attach_in(ws: web.WebSocketResponse, handle: Any, stdin: bool) -> None:
    async for msg in ws:
        if msg.type != WSMsgType.BINARY:
            continue
        channel, payload = wsproto.decode(msg.data)
        if channel == wsproto.STDIN and stdin:
            await handle.write_stdin(payload)
        elif channel == wsproto.RESIZE:
            size = wsproto.decode_resize(payload)
            handle.resize(size.width, size.height)
        elif channel == wsproto.CLOSE and wsproto.closed_channel(payload) == wsproto.STDIN:
            handle.close_stdin()


async def _attach_via_log(ws: web.WebSocketResponse, rt: Any, ns: str, pod: str,
                          container: str) -> dict[str, Any]:
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


# ---- logs ----------------------------------------------------------------------------

def _log_options(q: Any) -> podlogs.LogOptions:
    def num(key: str) -> int | None:
        raw = q.get(key)
        if raw in (None, ""):
            return None
        try:
            value = int(raw)
        except ValueError:
            raise errors.BadRequest(f"invalid {key}: {raw!r} is not an integer") from None
        if value < 0 or (key != "tailLines" and value == 0):
            raise errors.Invalid("PodLogOptions", "", [errors.invalid(
                key, value, "must be greater than 0" if key != "tailLines"
                else "must be greater than or equal to 0")])
        return value

    since: datetime | None = None
    secs = num("sinceSeconds")
    if secs is not None:
        since = datetime.now(timezone.utc) - timedelta(seconds=secs)
    elif q.get("sinceTime"):
        since = podlogs.parse_time(q["sinceTime"])
        if since is None:
            raise errors.BadRequest(f"invalid sinceTime: {q['sinceTime']!r}")
    return podlogs.LogOptions(tail_lines=num("tailLines"), timestamps=_bool(q, "timestamps"),
                              since=since, limit_bytes=num("limitBytes"),
                              follow=_bool(q, "follow"))


def _waiting_reason(pod: dict[str, Any], container: str) -> str:
    status = pod.get("status") or {}
    for key in ("containerStatuses", "initContainerStatuses"):
        for cs in status.get(key) or []:
            if cs.get("name") == container:
                waiting = (cs.get("state") or {}).get("waiting")
                if waiting:
                    return str(waiting.get("reason") or "ContainerCreating")
    return "ContainerCreating"


async def serve_log(request: web.Request, api: ObjectAPI, t: Target) -> web.StreamResponse:
    q = request.query
    pod = _pod(api, t)
    container = _container(pod, q.get("container", ""))
    opts = _log_options(q)
    previous = _bool(q, "previous")
    rt = _runtime(pod)
    ns, name = pod["metadata"].get("namespace", ""), pod["metadata"]["name"]
    path = rt.log_path(ns, name, container, previous)
    if path is None or (previous and not path.exists()):
        if previous:
            raise errors.BadRequest(f'previous terminated container "{container}" in pod '
                                    f'"{name}" not found')
        raise errors.BadRequest(f'container "{container}" in pod "{name}" is waiting to '
                                f"start: {_waiting_reason(pod, container)}")
    resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
    await resp.prepare(request)
    limit = podlogs.Limit(opts.limit_bytes)
    body, offset = await asyncio.get_running_loop().run_in_executor(
        None, podlogs.read_all, path, opts)
    body = limit.take(body)
    try:
        if body:
            await resp.write(body)
        if opts.follow and not previous and not limit.exhausted:
            uid = pod["metadata"].get("uid")

            def running() -> bool:
                try:
                    current = _pod(api, t)
                except errors.NotFound:
                    return False
                if current["metadata"].get("uid") != uid:
                    return False
                if rt.log_path(ns, name, container) != path:
                    return False       # the container restarted: this instance is over
                return _container_running(current, container)

            await podlogs.follow(path, offset, opts, resp.write, running, limit)
    except (ConnectionResetError, asyncio.CancelledError):
        return resp
    await resp.write_eof()
    return resp


def _container_running(pod: dict[str, Any], container: str) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return False
    for key in ("containerStatuses", "initContainerStatuses"):
        for cs in status.get(key) or []:
            if cs.get("name") == container:
                state = cs.get("state") or {}
                return "running" in state or "waiting" in state and not \
                    cs.get("lastState", {}).get("terminated")
    return True


# ---- port-forward --------------------------------------------------------------------

async def serve_portforward(request: web.Request, api: ObjectAPI, t: Target
                            ) -> web.StreamResponse:
    pod = _pod(api, t)
    phase = (pod.get("status") or {}).get("phase")
    if phase != "Running":
        raise errors.BadRequest(f"pod {pod['metadata']['name']} is not running "
                                f"(phase {phase})")
    rt = _runtime(pod)
    ns, name = pod["metadata"].get("namespace", ""), pod["metadata"]["name"]
    sb = _sandbox(rt, pod)
    desc = f"{name}, uid {pod['metadata'].get('uid', '')}"

    async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await BACKEND.connect(sb, port)

    if _is_websocket(request):
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
