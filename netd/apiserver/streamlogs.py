"""pods/log: the container's CRI log file as kubectl expects it (tailLines, timestamps,
sinceSeconds/sinceTime, limitBytes, previous, follow until the instance ends or the pod
goes); parsing and rendering are netd.apiserver.podlogs."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

from aiohttp import web

from netd.api import errors
from netd.apiserver import podlogs, streaming
from netd.apiserver.routes import Target
from netd.registry.objectapi import ObjectAPI


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
    return podlogs.LogOptions(tail_lines=num("tailLines"), timestamps=streaming.flag(q, "timestamps"),
                              since=since, limit_bytes=num("limitBytes"),
                              follow=streaming.flag(q, "follow"))


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
    pod = streaming.pod_of(api, t)
    container = streaming.container_of(pod, q.get("container", ""))
    opts = _log_options(q)
    previous = streaming.flag(q, "previous")
    rt = streaming.runtime_of(pod)
    ns, name = pod["metadata"].get("namespace", ""), pod["metadata"]["name"]
    path = rt.log_path(ns, name, container, previous)
    if path is None:
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
                    current = streaming.pod_of(api, t)
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
