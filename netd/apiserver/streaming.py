"""pods/exec, pods/attach, pods/log and pods/portforward: the kubelet's streaming
endpoints, served by the daemon itself (there is no separate kubelet to proxy to).
This module dispatches and holds what the endpoints share (pod, container and node
lookups; BACKEND); each endpoint has its own module:

- netd.apiserver.streamexec: exec and attach over WebSocket (`v5.channel.k8s.io` or
  `v4.channel.k8s.io`, netd.apiserver.wsproto); attach's session rules are in
  netd.apiserver.streamattach. SPDY is not served for them: kubectl 1.32 tries
  WebSocket first and only falls back on an upgrade failure, so a clear 400 reaches
  users of older clients.
- netd.apiserver.streamlogs: plain text from the container's CRI log file
  (netd.apiserver.podlogs).
- netd.apiserver.streamportforward: SPDY/3.1 tunnelled over WebSocket
  (`SPDY/3.1+portforward.k8s.io`, what kubectl 1.32 tries first) or a plain
  `Upgrade: SPDY/3.1` (its fallback), both driving netd.apiserver.portforward.

The node side is reached through netd.node.runtime.RUNTIMES[spec.nodeName] (the node
agent registers there) and commands start with netd.node.nsexec.spawn; both are looked
up through BACKEND, read at call time, so the protocols can be tested with plain local
processes.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from aiohttp import web

from netd.api import errors
from netd.apiserver import streamexec, streamlogs, streamportforward
from netd.apiserver.portforward import open_in_netns
from netd.apiserver.routes import Target
from netd.registry.objectapi import ObjectAPI

SUBRESOURCES = ("exec", "attach", "log", "portforward")


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
        return await streamlogs.serve_log(request, api, target)
    if request.method not in ("GET", "POST"):
        raise errors.MethodNotAllowed("the server does not allow this method on the "
                                      "requested resource")
    if sub == "portforward":
        return await streamportforward.serve_portforward(request, api, target)
    return await streamexec.serve_exec(request, api, target, attach=(sub == "attach"))


# ---- shared lookups ----------------------------------------------------------------

def pod_of(api: ObjectAPI, t: Target) -> dict[str, Any]:
    return api.get(t.rt, t.namespace or "", t.name or "").obj


def _containers(pod: dict[str, Any]) -> list[str]:
    spec = pod.get("spec") or {}
    return [c.get("name", "") for key in ("containers", "initContainers",
                                          "ephemeralContainers")
            for c in spec.get(key) or []]


def container_of(pod: dict[str, Any], requested: str) -> str:
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


def runtime_of(pod: dict[str, Any]) -> Any:
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


def sandbox_of(rt: Any, pod: dict[str, Any]) -> Any:
    ns, name = pod["metadata"].get("namespace", ""), pod["metadata"]["name"]
    sb = rt.sandbox(ns, name)
    if sb is None:
        raise errors.BadRequest(f"pod {name} has no sandbox yet (phase "
                                f"{(pod.get('status') or {}).get('phase', 'Pending')})")
    return sb


def flag(q: Any, key: str) -> bool:
    return str(q.get(key, "")).lower() in ("1", "true", "yes")


def is_websocket(request: web.Request) -> bool:
    return "websocket" in request.headers.get("Upgrade", "").lower()
