"""The aiohttp application: one catch-all route, dispatched by path to discovery,
OpenAPI, health, version or resource handlers; every error becomes a Status."""
from __future__ import annotations

import hmac
import logging
import platform
from typing import Any, Awaitable, Callable

import orjson
from aiohttp import web

from netd.api import errors
from netd.apiserver import discovery, openapi
from netd.apiserver.handlers import ResourceHandlers
from netd.apiserver.routes import parse_resource_path
from netd.metrics import metrics_text
from netd.registry.objectapi import ObjectAPI, utcnow

log = logging.getLogger("netd.apiserver")

KUBE_VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0-netd",
                "gitCommit": "netd", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
                "goVersion": "python" + platform.python_version(), "compiler": "cpython",
                "platform": "linux/amd64"}

ReadyCheck = Callable[[], dict[str, bool]]
Extra = Callable[[web.Request], Awaitable[web.StreamResponse | None]]


def _status_response(err: errors.APIError) -> web.Response:
    return web.Response(body=orjson.dumps(err.status()), status=err.code,
                        content_type="application/json")


class ApiServerApp:
    """Builds the aiohttp Application around an ObjectAPI."""

    def __init__(self, api: ObjectAPI, *, token: str | None = None,
                 ready: ReadyCheck | None = None, extra: list[Extra] | None = None,
                 bookmark_interval: float = 60.0) -> None:
        self.api = api
        self.token = token
        self.ready = ready or (lambda: {})
        self.extra = extra or []
        self.handlers = ResourceHandlers(api, utcnow, bookmark_interval)

    def close_watches(self) -> None:
        self.handlers.close_watches()

    def build(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024,
                              middlewares=[self._errors])
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    @web.middleware
    async def _errors(self, request: web.Request,
                      handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                      ) -> web.StreamResponse:
        try:
            return await handler(request)
        except errors.APIError as err:
            if err.code >= 500:
                log.error("%s %s: %s", request.method, request.path, err.message)
            return _status_response(err)
        except web.HTTPException:
            raise
        except Exception as exc:  # one bad request must never take the server down
            log.exception("%s %s failed", request.method, request.path)
            return _status_response(errors.InternalError(f"internal error: {exc}"))

    def _authorize(self, request: web.Request) -> None:
        if self.token is None or request.path in ("/healthz", "/livez", "/readyz", "/version"):
            return
        header = request.headers.get("Authorization", "")
        if not (header.startswith("Bearer ") and
                hmac.compare_digest(header[7:].strip(), self.token)):
            raise errors.Unauthorized("Unauthorized")

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self._authorize(request)
        path = request.path.rstrip("/") or "/"
        for extra in self.extra:
            resp = await extra(request)
            if resp is not None:
                return resp
        if path in ("/healthz", "/livez", "/readyz"):
            return self._health(request, path)
        if path == "/version":
            return web.json_response(KUBE_VERSION)
        if path == "/metrics":
            return web.Response(text=metrics_text(), content_type="text/plain",
                                charset="utf-8")
        if path.startswith("/openapi/"):
            return self._openapi(request, path)
        target = parse_resource_path(path)
        if target is None:
            return self._discovery(request, path)
        return await self.handlers.handle(request, target)

    def _health(self, request: web.Request, path: str) -> web.Response:
        checks = {"ping": True, "store": True}
        if path == "/readyz":
            checks.update(self.ready())
        ok = all(checks.values())
        if "verbose" in request.query:
            lines = [f"[{'+' if v else '-'}]{k} {'ok' if v else 'failed'}"
                     for k, v in checks.items()]
            lines.append(f"{path[1:]} check {'passed' if ok else 'failed'}")
            text = "\n".join(lines) + "\n"
        else:
            text = "ok" if ok else "\n".join(
                f"[-]{k} failed: not synced" for k, v in checks.items() if not v) + \
                f"\n{path[1:]} check failed"
        return web.Response(text=text, status=200 if ok else 500, content_type="text/plain")

    def _discovery(self, request: web.Request, path: str) -> web.Response:
        if path in ("/api", "/apis"):
            version = discovery.negotiate(request.headers.get("Accept"))
            if version is not None:
                body = discovery.aggregated_discovery(core=(path == "/api"), version=version)
                resp = web.Response(body=orjson.dumps(body), status=200)
                resp.headers["Content-Type"] = discovery.content_type(version)
                return resp
        parts = [p for p in path.split("/") if p]
        doc: Any = None
        if path == "/api":
            doc = discovery.legacy_api_versions(request.host or "127.0.0.1")
        elif path == "/apis":
            doc = discovery.legacy_api_group_list()
        elif parts[0] == "api" and len(parts) == 2:
            doc = discovery.api_resource_list("", parts[1])
        elif parts[0] == "apis" and len(parts) == 2:
            doc = discovery.api_group(parts[1])
        elif parts[0] == "apis" and len(parts) == 3:
            doc = discovery.api_resource_list(parts[1], parts[2])
        if doc is None:
            raise errors.NotFound("the server could not find the requested resource")
        return web.Response(body=orjson.dumps(doc), content_type="application/json")

    def _openapi(self, request: web.Request, path: str) -> web.Response:
        if path == "/openapi/v2":
            accept = request.headers.get("Accept", "")
            if "protobuf" in accept:
                pb = openapi.openapi_v2_protobuf()
                if pb is not None:
                    resp = web.Response(body=pb)
                    resp.headers["Content-Type"] = \
                        "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
                    return resp
                if "json" not in accept:
                    raise errors.NotAcceptable("only application/json is served for /openapi/v2")
            return web.Response(body=openapi.openapi_v2_json(), content_type="application/json")
        if path == "/openapi/v3":
            return web.Response(body=orjson.dumps(openapi.openapi_v3_index()),
                                content_type="application/json")
        if path.startswith("/openapi/v3/"):
            doc = openapi.openapi_v3_group_version(path[len("/openapi/v3/"):])
            if doc is None:
                raise errors.NotFound("the server could not find the requested resource")
            resp = web.Response(body=doc, content_type="application/json")
            resp.headers["Cache-Control"] = "public, immutable"
            digest = openapi.openapi_v3_hash(path[len("/openapi/v3/"):])
            if digest:
                resp.headers["ETag"] = f'"{digest}"'
            return resp
        raise errors.NotFound("the server could not find the requested resource")
