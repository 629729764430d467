"""A small synchronous client for netd's Kubernetes-compatible API.

Stdlib only (http.client) so that `netd get` starts fast: no aiohttp, no asyncio.
The Unix socket (`<state-dir>/<cluster>/api.sock`) is preferred because it needs no
token and works whatever port the daemon bound; when it is missing or not ours to
open (mode 0600, owned by root) the kubeconfig's server and token are used instead,
exactly what kubectl would use.
"""
from __future__ import annotations

import errno
import http.client
import json
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlencode, urlsplit

DEFAULT_STATE_DIR = "/var/lib/netd"
DEFAULT_CLUSTER = "netd"
TABLE_ACCEPT = ("application/json;as=Table;v=v1;g=meta.k8s.io,"
                "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")
JSON = "application/json"
USER_AGENT = "netd-cli/0.1 (linux) kubernetes/v1.32"


class Unreachable(Exception):
    """The daemon could not be contacted at all (nothing listens, no kubeconfig)."""


class ApiError(Exception):
    """The server answered with a failure Status (or a non-2xx without one)."""

    def __init__(self, code: int, reason: str, message: str,
                 status: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.status = status or {}

    def kubectl_text(self) -> str:
        """`Error from server (NotFound): pods "x" not found`, as kubectl prints it."""
        return f"Error from server ({self.reason}): {self.message}"


# kubectl's fallback reasons when a response carries no Status (apimachinery
# errors.NewGenericServerResponse).
_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
            405: "MethodNotAllowed", 406: "NotAcceptable", 409: "Conflict", 410: "Expired",
            415: "UnsupportedMediaType", 422: "Invalid", 429: "TooManyRequests",
            500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}
_GENERIC = {404: "the server could not find the requested resource",
            401: "the server has asked for the client to provide credentials",
            405: "the server does not allow this method on the requested resource"}


def error_from_response(code: int, body: bytes) -> ApiError:
    try:
        doc = json.loads(body) if body else None
    except ValueError:
        doc = None
    if isinstance(doc, dict) and doc.get("kind") == "Status":
        reason = str(doc.get("reason") or _REASONS.get(code, "Unknown"))
        message = str(doc.get("message") or _GENERIC.get(code, f"unknown (status {code})"))
        return ApiError(code, reason, message, doc)
    text = body.decode("utf-8", "replace").strip()
    message = _GENERIC.get(code) or (f"an error on the server ({text!r}) has prevented "
                                     f"the request from succeeding" if text else
                                     f"unknown (status {code})")
    return ApiError(code, _REASONS.get(code, "Unknown"), message)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            if self.timeout is not None:
                sock.settimeout(self.timeout)
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


@dataclass(frozen=True)
class Target:
    """Where the cluster is: its socket, kubeconfig and (optionally) an explicit URL."""

    cluster: str
    state_dir: str
    server: str | None = None

    @property
    def root(self) -> Path:
        return Path(self.state_dir) / self.cluster

    @property
    def socket(self) -> Path:
        return self.root / "api.sock"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"


@dataclass(frozen=True)
class KubeconfigInfo:
    server: str
    token: str | None
    namespace: str


def read_kubeconfig(path: Path) -> KubeconfigInfo:
    """The current context's server, token and namespace (raises OSError/ValueError)."""
    import yaml  # deferred: only the fallback path needs it

    doc = yaml.safe_load(path.read_text())
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: not a kubeconfig")
    contexts = {c.get("name"): c.get("context") or {} for c in doc.get("contexts") or []}
    ctx = contexts.get(doc.get("current-context")) or {}
    clusters = {c.get("name"): c.get("cluster") or {} for c in doc.get("clusters") or []}
    users = {u.get("name"): u.get("user") or {} for u in doc.get("users") or []}
    server = str((clusters.get(ctx.get("cluster")) or {}).get("server") or "")
    if not server:
        raise ValueError(f"{path}: the current context has no server")
    token = (users.get(ctx.get("user")) or {}).get("token")
    return KubeconfigInfo(server, str(token) if token else None,
                          str(ctx.get("namespace") or "default"))


def _describe_oserror(exc: OSError, where: str) -> str:
    if exc.errno == errno.ENOENT:
        return f"{where}: no such file"
    if exc.errno == errno.ECONNREFUSED:
        return f"{where}: connection refused"
    if exc.errno == errno.EACCES:
        return f"{where}: permission denied"
    return f"{where}: {exc.strerror or exc}"


class Client:
    """One connection per request (keeps the watch stream and simple calls apart)."""

    def __init__(self, target: Target, timeout: float = 30.0) -> None:
        self.target = target
        self.timeout = timeout
        self._via: tuple[str, str] | None = None   # ("unix", path) | ("tcp", url)
        self._token: str | None = None
        self.default_namespace = "default"
        self._kubeconfig: KubeconfigInfo | None = None
        self._load_kubeconfig()

    def _load_kubeconfig(self) -> None:
        try:
            self._kubeconfig = read_kubeconfig(self.target.kubeconfig)
        except (OSError, ValueError):
            self._kubeconfig = None
            return
        self.default_namespace = self._kubeconfig.namespace

    @property
    def kubeconfig_server(self) -> str:
        """The server URL the kubeconfig names ("" without a kubeconfig)."""
        return self._kubeconfig.server if self._kubeconfig else ""

    @property
    def address(self) -> str:
        """Where requests go (after the first one): the socket path or the URL."""
        if self._via is None:
            return str(self.target.socket)
        return self._via[1]

    def _connect(self, timeout: float | None) -> http.client.HTTPConnection:
        if self._via is not None:
            return self._open(self._via, timeout)
        attempts: list[tuple[str, str]] = []
        if self.target.server:
            attempts.append(("tcp", self.target.server))
        else:
            attempts.append(("unix", str(self.target.socket)))
            if self._kubeconfig is not None:
                attempts.append(("tcp", self._kubeconfig.server))
        reasons: list[str] = []
        for via in attempts:
            conn = self._open(via, timeout)
            try:
                conn.connect()
            except OSError as exc:
                conn.close()
                reasons.append(_describe_oserror(exc, via[1]))
                continue
            self._via = via
            if via[0] == "tcp" and self._kubeconfig is not None:
                self._token = self._kubeconfig.token
            return conn
        if not self.target.server and self._kubeconfig is None:
            reasons.append(f"{self.target.kubeconfig}: no such file")
        raise Unreachable("; ".join(reasons))

    def _open(self, via: tuple[str, str], timeout: float | None) -> http.client.HTTPConnection:
        kind, where = via
        if kind == "unix":
            return _UnixConnection(where, timeout)
        parts = urlsplit(where)
        if parts.scheme == "https":
            return http.client.HTTPSConnection(parts.hostname or "127.0.0.1", parts.port,
                                               timeout=timeout)
        return http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80,
                                          timeout=timeout)

    def _send(self, method: str, path: str, query: dict[str, Any] | None, body: Any,
              content_type: str, accept: str, timeout: float | None
              ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        url = path
        if query:
            clean = {k: v for k, v in query.items() if v not in (None, "")}
            if clean:
                url += "?" + urlencode(clean)
        headers = {"Accept": accept, "User-Agent": USER_AGENT}
        payload: bytes | None = None
        if body is not None:
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = content_type
        conn = self._connect(timeout)
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            conn.request(method, url, body=payload, headers=headers)
            resp = conn.getresponse()
        except OSError as exc:
            conn.close()
            raise Unreachable(_describe_oserror(exc, self.address)) from None
        except http.client.HTTPException as exc:
            conn.close()
            raise Unreachable(f"{self.address}: {exc.__class__.__name__}: {exc}") from None
        return conn, resp

    def request(self, method: str, path: str, *, query: dict[str, Any] | None = None,
                body: Any = None, content_type: str = JSON, accept: str = JSON) -> bytes:
        """Raw body of a 2xx answer; ApiError for any other status."""
        conn, resp = self._send(method, path, query, body, content_type, accept, self.timeout)
        try:
            data = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            raise Unreachable(f"{self.address}: {exc}") from None
        finally:
            conn.close()
        if not 200 <= resp.status < 300:
            raise error_from_response(resp.status, data)
        return data

    def json(self, method: str, path: str, **kw: Any) -> Any:
        data = self.request(method, path, **kw)
        return json.loads(data) if data.strip() else None

    def get(self, path: str, query: dict[str, Any] | None = None,
            accept: str = JSON) -> Any:
        return self.json("GET", path, query=query, accept=accept)

    def text(self, path: str, query: dict[str, Any] | None = None) -> tuple[int, str]:
        """Status and text of a plain-text endpoint (/readyz) without raising on 5xx."""
        conn, resp = self._send("GET", path, query, None, JSON, "text/plain, */*",
                                self.timeout)
        try:
            return resp.status, resp.read().decode("utf-8", "replace")
        finally:
            conn.close()

    def stream(self, path: str, query: dict[str, Any] | None = None,
               accept: str = JSON) -> Iterator[dict[str, Any]]:
        """Watch events, one decoded JSON line at a time, until the server ends it."""
        conn, resp = self._send("GET", path, query, None, JSON, accept, None)
        try:
            if not 200 <= resp.status < 300:
                raise error_from_response(resp.status, resp.read())
            while True:
                line = resp.readline()
                if not line:
                    return
                if line.strip():
                    yield json.loads(line)
        finally:
            conn.close()
