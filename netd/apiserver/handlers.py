"""REST handlers for resources: decode the request, call ObjectAPI, encode the answer.

Thin by design: every rule lives in netd.registry, shared with in-process callers.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

import orjson
from aiohttp import web

from netd.api import errors
from netd.apiserver import encoding, streaming
from netd.apiserver.routes import Target
from netd.registry import binding, scale
from netd.registry.objectapi import ObjectAPI

log = logging.getLogger("netd.apiserver")

_FIELD_VALIDATION = ("Strict", "Warn", "Ignore")


def _bool(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true", "yes")


def _int(query: Any, key: str, default: int = 0) -> int:
    raw = query.get(key)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise errors.BadRequest(f"invalid {key}: {raw!r} is not an integer") from None


def _dry_run(query: Any) -> bool:
    values = query.getall("dryRun", [])
    for v in values:
        if v != "All":
            raise errors.BadRequest(f'unsupported dryRun value "{v}": only "All" is supported')
    return bool(values)


def _field_validation(query: Any) -> str:
    mode = query.get("fieldValidation") or "Warn"
    if mode not in _FIELD_VALIDATION:
        raise errors.BadRequest(f'fieldValidation must be one of "Ignore", "Warn", or '
                                f'"Strict", got "{mode}"')
    return mode


def _json(body: bytes, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    resp = web.Response(body=body, status=status, content_type="application/json")
    for w in warnings or []:
        resp.headers.add("Warning", f'299 - "{w}"')
    return resp


class ResourceHandlers:
    def __init__(self, api: ObjectAPI, clock: Callable[[], Any],
                 bookmark_interval: float = 60.0) -> None:
        self.api = api
        self.clock = clock
        self.bookmark_interval = bookmark_interval
        self._watches: set[Any] = set()

    def close_watches(self) -> None:
        """End every open watch stream (at shutdown), so no handler outlives the server."""
        for stream in list(self._watches):
            stream.close()

    async def handle(self, request: web.Request, target: Target) -> web.StreamResponse:
        method = request.method
        q = request.query
        if target.name is None:
            if method == "GET":
                if _bool(q.get("watch")):
                    return await self.watch(request, target)
                return self.list(request, target)
            if method == "POST":
                return await self.create(request, target)
            if method == "DELETE":
                return await self.delete_collection(request, target)
            raise errors.MethodNotAllowed(f"the server does not allow this method on the "
                                          f"requested resource")
        if target.subresource == "scale":
            return await self.scale(request, target)
        if target.subresource in ("binding", "eviction") and method == "POST":
            return await self.pod_action(request, target)
        if target.subresource in ("exec", "attach", "log", "portforward"):
            resp = await streaming.handle(request, self.api, target)
            if resp is not None:
                return resp
        if target.subresource not in (None, "status", "finalize"):
            raise errors.NotFound(f"the server could not find the requested resource "
                                  f"({target.rt.plural}/{target.subresource} is served by the "
                                  "node agent, which is not running)")
        if method == "GET":
            return self.get(request, target)
        if method == "PUT":
            return await self.update(request, target)
        if method == "PATCH":
            return await self.patch(request, target)
        if method == "DELETE" and target.subresource is None:
            return await self.delete(request, target)
        raise errors.MethodNotAllowed("the server does not allow this method on the requested "
                                      "resource")

    # ---- reads -------------------------------------------------------------------

    def get(self, request: web.Request, t: Target) -> web.Response:
        stored = self.api.get(t.rt, t.namespace or "", t.name or "")
        want = encoding.negotiate(request.headers.get("Accept", ""),
                                  request.query.get("includeObject"))
        return _json(encoding.object_body(t.rt, stored, want, self.clock()))

    def list(self, request: web.Request, t: Target) -> web.Response:
        q = request.query
        if _bool(q.get("sendInitialEvents")):
            raise errors.Invalid("ListOptions", "", [errors.forbidden(
                "sendInitialEvents", "sendInitialEvents is forbidden for list")])
        result = self.api.list(t.rt, t.namespace, label_selector=q.get("labelSelector", ""),
                               field_selector=q.get("fieldSelector", ""),
                               limit=_int(q, "limit"), continue_token=q.get("continue", ""))
        want = encoding.negotiate(request.headers.get("Accept", ""), q.get("includeObject"))
        return _json(encoding.list_body(t.rt, result.items, result.resource_version,
                                        result.continue_token, result.remaining, want,
                                        self.clock()))

    async def watch(self, request: web.Request, t: Target) -> web.StreamResponse:
        q = request.query
        if q.get("sendInitialEvents") is not None:
            # Clients fall back to list+watch on this answer (WatchList is not served).
            raise errors.Invalid("ListOptions", "", [errors.forbidden(
                "sendInitialEvents", "sendInitialEvents is forbidden for watch unless the "
                "WatchList feature gate is enabled")])
        want = encoding.negotiate(request.headers.get("Accept", ""), q.get("includeObject"))
        timeout = _int(q, "timeoutSeconds", 1800)
        bookmarks = _bool(q.get("allowWatchBookmarks"))
        resp = web.StreamResponse(headers={"Content-Type": "application/json",
                                           "Transfer-Encoding": "chunked"})
        try:
            stream = self.api.watch(t.rt, t.namespace,
                                    resource_version=q.get("resourceVersion", ""),
                                    label_selector=q.get("labelSelector", ""),
                                    field_selector=q.get("fieldSelector", ""))
        except errors.Gone as exc:
            # kube-apiserver answers 200 and an ERROR event; reflectors re-list on it.
            await resp.prepare(request)
            await resp.write(b'{"type":"ERROR","object":' + orjson.dumps(exc.status()) + b"}\n")
            return resp
        self._watches.add(stream)
        await resp.prepare(request)
        headers = True
        last_rv = stream.start_rv
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        it = stream.batches().__aiter__()
        # One pending read outlives the bookmark timeouts: cancelling it (wait_for)
        # would close the stream's generator and end the watch at the first bookmark.
        pending: asyncio.Future[list[tuple[str, Any]]] | None = None
        try:
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                wait = min(remaining, self.bookmark_interval) if bookmarks else remaining
                if pending is None:
                    pending = asyncio.ensure_future(it.__anext__())
                done, _ = await asyncio.wait((pending,), timeout=wait)
                if not done:
                    if bookmarks and loop.time() < deadline:
                        await resp.write(self._bookmark(t, last_rv))
                    continue
                nxt, pending = pending, None
                try:
                    batch = nxt.result()
                except StopAsyncIteration:
                    break
                chunk = []
                now = self.clock()
                for typ, ev in batch:
                    chunk.append(encoding.event_line(t.rt, typ, ev.obj, ev.raw, want, now,
                                                     headers))
                    headers = False
                    last_rv = max(last_rv, ev.rv)
                await resp.write(b"".join(chunk))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            if pending is not None:
                pending.cancel()
            stream.close()
            self._watches.discard(stream)
        return resp

    def _bookmark(self, t: Target, rv: int) -> bytes:
        obj = {"kind": t.rt.kind, "apiVersion": t.rt.api_version,
               "metadata": {"resourceVersion": str(rv),
                            "annotations": {"k8s.io/initial-events-end": "false"}}}
        return b'{"type":"BOOKMARK","object":' + orjson.dumps(obj) + b"}\n"

    # ---- writes ------------------------------------------------------------------

    async def create(self, request: web.Request, t: Target) -> web.Response:
        q = request.query
        body = encoding.decode_body(await request.read(), request.content_type)
        warnings: list[str] = []
        stored = await self.api.create(t.rt, t.namespace or "", body, dry_run=_dry_run(q),
                                       field_validation=_field_validation(q),
                                       warnings=warnings)
        want = encoding.negotiate(request.headers.get("Accept", ""), q.get("includeObject"))
        return _json(encoding.object_body(t.rt, stored, want, self.clock()), 201, warnings)

    async def update(self, request: web.Request, t: Target) -> web.Response:
        q = request.query
        body = encoding.decode_body(await request.read(), request.content_type)
        warnings: list[str] = []
        stored = await self.api.update(t.rt, t.namespace or "", t.name or "", body,
                                       subresource=t.subresource, dry_run=_dry_run(q),
                                       field_validation=_field_validation(q),
                                       warnings=warnings)
        return _json(stored.raw, 200, warnings)

    async def patch(self, request: web.Request, t: Target) -> web.Response:
        q = request.query
        ctype = request.content_type
        body = encoding.decode_body(await request.read(), "application/json"
                                    if ctype != "application/apply-patch+yaml" else ctype)
        warnings: list[str] = []
        stored = await self.api.patch(t.rt, t.namespace or "", t.name or "", ctype, body,
                                      subresource=t.subresource, dry_run=_dry_run(q),
                                      field_validation=_field_validation(q), warnings=warnings)
        want = encoding.negotiate(request.headers.get("Accept", ""), q.get("includeObject"))
        return _json(encoding.object_body(t.rt, stored, want, self.clock()), 200, warnings)

    async def _delete_options(self, request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        options: dict[str, Any] = {}
        if raw.strip():
            decoded = encoding.decode_body(raw, request.content_type)
            if not isinstance(decoded, dict):
                raise errors.BadRequest("DeleteOptions must be a JSON object")
            options = decoded
        q = request.query
        if "gracePeriodSeconds" in q:
            options["gracePeriodSeconds"] = _int(q, "gracePeriodSeconds")
        if "propagationPolicy" in q:
            options["propagationPolicy"] = q["propagationPolicy"]
        if "orphanDependents" in q:
            options["orphanDependents"] = _bool(q["orphanDependents"])
        return options

    async def delete(self, request: web.Request, t: Target) -> web.Response:
        options = await self._delete_options(request)
        stored, gone = await self.api.delete(t.rt, t.namespace or "", t.name or "", options,
                                             dry_run=_dry_run(request.query))
        return _json(stored.raw, 200 if gone else 202)

    async def delete_collection(self, request: web.Request, t: Target) -> web.Response:
        options = await self._delete_options(request)
        q = request.query
        items = await self.api.delete_collection(
            t.rt, t.namespace, options, label_selector=q.get("labelSelector", ""),
            field_selector=q.get("fieldSelector", ""), dry_run=_dry_run(q))
        rv = self.api.store.revision
        return _json(encoding.list_body(t.rt, items, rv, "", None, encoding.Want(),
                                        self.clock()))

    async def pod_action(self, request: web.Request, t: Target) -> web.Response:
        """pods/binding (the scheduler's write) and pods/eviction (kubectl drain;
        PodDisruptionBudgets are not served, so an eviction is a delete)."""
        body = encoding.decode_body(await request.read(), request.content_type)
        if not isinstance(body, dict):
            raise errors.BadRequest("the body of the request must be a JSON object")
        ns, name = t.namespace or "", t.name or ""
        if t.subresource == "binding":
            status = await binding.create_binding(self.api, ns, name, body,
                                                  dry_run=_dry_run(request.query))
            return _json(encoding.encode(status), 201)
        await self.api.delete(t.rt, ns, name, body.get("deleteOptions") or {},
                              dry_run=_dry_run(request.query))
        return _json(encoding.encode({"kind": "Status", "apiVersion": "v1", "metadata": {},
                                      "status": "Success", "code": 201}), 201)

    async def scale(self, request: web.Request, t: Target) -> web.Response:
        ns, name, q = t.namespace or "", t.name or "", request.query
        if request.method == "GET":
            return _json(encoding.encode(scale.get_scale(self.api, t.rt, ns, name)))
        body = encoding.decode_body(await request.read(), "application/json")
        if request.method == "PUT":
            out = await scale.update_scale(self.api, t.rt, ns, name, body, dry_run=_dry_run(q))
        elif request.method == "PATCH":
            out = await scale.patch_scale(self.api, t.rt, ns, name, request.content_type, body,
                                          dry_run=_dry_run(q))
        else:
            raise errors.MethodNotAllowed("the server does not allow this method on scale")
        return _json(encoding.encode(out))
