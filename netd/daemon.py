"""Wiring only: start the components in order, stop them in reverse, supervise."""
from __future__ import annotations

import asyncio
import fcntl
import ipaddress
import gc
import logging
import os
import secrets
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from netd.api import errors
from netd.apiserver.app import ApiServerApp
from netd.config import Config
from netd.controllers import manager
from netd.controllers.gc import GarbageCollector
from netd.controllers.volumes import DefaultStorageClass, ensure_default_storage_class
from netd.controllers.graph import ObjectGraph
from netd.controllers.namespace import NamespaceController
from netd.dns.service import DnsService
from netd.proxy.service import ProxyService
from netd.proxy.userspace_service import UserspaceProxyService
from netd.node import agents as node_agents
from netd.node import sandboxhelper
from netd.node import simulated
from netd.node.agent import NodeAgent
from netd.node.cluster_net import ClusterNetwork
from netd.registry import allocators
from netd.registry.bootstrap import ensure_api_endpoints, ensure_system_objects
from netd.registry.objectapi import ObjectAPI
from netd.store.sqlite import SQLiteStore
from netd.supervise import Supervisor

log = logging.getLogger("netd.daemon")


class AlreadyRunning(RuntimeError):
    pass


@dataclass
class Paths:
    root: Path

    @property
    def store(self) -> Path:
        return self.root / "store.db"

    @property
    def socket(self) -> Path:
        return self.root / "api.sock"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def lock(self) -> Path:
        return self.root / "netd.lock"

    @property
    def pid(self) -> Path:
        return self.root / "netd.pid"

    @property
    def token(self) -> Path:
        return self.root / "token"


def tune_gc() -> None:
    """Garbage-collector settings for a long-running, allocation-heavy daemon.

    Controllers and watches allocate many short-lived dicts; with CPython's default
    thresholds (700, 10, 10) full collections over a large heap ran every few hundred
    ms and paused the loop for 65–230 ms (bench/controllers_bench.py part b: Endpoints
    p99 114 ms). Rarer young collections (50,000) and full ones (100) keep p99 at
    ~50 ms. What exists at start-up lives as long as the daemon: freeze it out of the
    collector's generations."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


@dataclass
class Daemon:
    config: Config
    paths: Paths = field(init=False)
    store: SQLiteStore | None = None
    api: ObjectAPI | None = None
    supervisor: Supervisor = field(default_factory=Supervisor)
    api_port: int = 0
    _runner: web.AppRunner | None = None
    _lock_fd: int | None = None
    _synced: dict[str, bool] = field(default_factory=dict)
    _graph: ObjectGraph | None = None
    _app: ApiServerApp | None = None
    _ctx: manager.ControllerContext | None = None
    _network: ClusterNetwork | None = None
    _dns: DnsService | None = None
    _proxy: ProxyService | UserspaceProxyService | None = None
    _agents: list[NodeAgent] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.paths = Paths(self.config.cluster_state_dir)

    # ---- start -------------------------------------------------------------------

    async def start(self) -> None:
        self.paths.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.paths.root, 0o700)
        self._take_lock()
        self.store = SQLiteStore(str(self.paths.store),
                                 history_size=self.config.store.history_size)
        plugins = allocators.plugins(self.config, self.store) + [
            DefaultStorageClass(self.store)]
        self.api = ObjectAPI(self.store, plugins=plugins)
        # HTTP first: the default/kubernetes Endpoints name the port it got. /readyz
        # stays false until the system objects exist and every cache has synced.
        await self._start_http()
        await ensure_system_objects(self.api, self.config)
        # Pods reach the API at the host's address on the node network (what
        # kube-apiserver calls its advertise address), as default/kubernetes says.
        await ensure_api_endpoints(self.api, self._advertise_address(), self.api_port)
        await ensure_default_storage_class(self.api)
        self._synced["store"] = True
        await self._start_controllers()
        self.paths.pid.write_text(f"{os.getpid()}\n")
        tune_gc()
        log.info("cluster %s ready: API http://%s:%d, kubeconfig %s", self.config.cluster_name,
                 self.config.api.address, self.api_port, self.paths.kubeconfig)

    async def _start_controllers(self) -> None:
        assert self.api is not None and self.store is not None
        graph = ObjectGraph(self.store)
        collector = GarbageCollector(self.api, graph)
        namespaces = NamespaceController(self.api, graph)
        self.supervisor.start("object-graph", graph.run)
        self.supervisor.start("garbage-collector", collector.run)
        self.supervisor.start("namespace-controller", namespaces.run)
        self._graph = graph
        ctx = manager.build_context(self.api, self.config)
        controllers = manager.build_controllers(ctx)
        if self.config.node_mode == "simulated":
            controllers.extend(simulated.agents(ctx))
        else:
            # Real nodes: the cluster network first (bridge, node namespaces, routes),
            # then one node agent (kubelet + CNI) per node.
            self._network = ClusterNetwork(self.config)
            await self._network.ensure()
            self._agents = node_agents(ctx, self._network)
            controllers.extend(self._agents)
        # Built before the informers start: the DNS indexer registers its own.
        self._dns = DnsService(ctx, self._network, supervisor=self.supervisor)
        manager.start(ctx, controllers, self.supervisor)
        if self._network is not None or self.config.dns.host_address:
            await self._dns.start()
        if self._network is not None:
            self._proxy = (UserspaceProxyService(ctx, self._network)
                           if self.config.proxy.mode == "userspace"
                           else ProxyService(ctx, self._network))
            await self._proxy.start()
        self._ctx = ctx

    def _advertise_address(self) -> str:
        return str(next(ipaddress.IPv4Network(self.config.node_network).hosts()))

    def _ready(self) -> dict[str, bool]:
        ready = dict(self._synced)
        ready["controllers"] = (self._graph is not None and self._graph.synced.is_set() and
                                self._ctx is not None and manager.synced(self._ctx))
        return ready

    def _take_lock(self) -> None:
        fd = os.open(self.paths.lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AlreadyRunning(f"cluster {self.config.cluster_name} is already running "
                                 f"(state directory {self.paths.root} is locked)") from None
        self._lock_fd = fd

    def _token(self) -> str | None:
        auth = self.config.api.auth
        loopback = self.config.api.address in ("127.0.0.1", "::1", "localhost")
        if auth == "none" or (auth == "auto" and loopback):
            return None
        if self.paths.token.exists():
            return self.paths.token.read_text().strip()
        token = secrets.token_urlsafe(32)
        fd = os.open(self.paths.token, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        return token

    async def _start_http(self) -> None:
        assert self.api is not None
        token = self._token()
        self._app = ApiServerApp(self.api, token=token, ready=self._ready)
        # handler_cancellation: a watch whose client went away is cancelled at once
        # instead of waiting for its timeout (aiohttp >= 3.9 leaves it off by default).
        runner = web.AppRunner(self._app.build(), access_log=None, handle_signals=False,
                               handler_cancellation=True, shutdown_timeout=5.0)
        await runner.setup()
        site = web.TCPSite(runner, self.config.api.address, self.config.api.port,
                           reuse_address=True)
        await site.start()
        server = site._server  # aiohttp exposes the bound sockets only here
        assert server is not None
        self.api_port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        sock = self.paths.socket
        if sock.exists() or sock.is_symlink():
            sock.unlink()
        old_umask = os.umask(0o177)
        try:
            await web.UnixSite(runner, str(sock)).start()
        finally:
            os.umask(old_umask)
        os.chmod(sock, 0o600)
        self._runner = runner
        self._write_kubeconfig(token)

    def _write_kubeconfig(self, token: str | None) -> None:
        name = f"netd-{self.config.cluster_name}"
        host = self.config.api.address
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        user: dict[str, Any] = {"token": token} if token else {}
        doc = {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": name, "cluster": {"server": f"http://{host}:{self.api_port}"}}],
            "users": [{"name": name, "user": user}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name,
                                                    "namespace": "default"}}],
            "current-context": name,
        }
        tmp = self.paths.kubeconfig.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump(doc, f, sort_keys=False)
        os.replace(tmp, self.paths.kubeconfig)

    # ---- run / stop --------------------------------------------------------------

    async def run_until_signalled(self) -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        failed = asyncio.create_task(self.supervisor.failed.wait())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({failed, stopped}, return_when=asyncio.FIRST_COMPLETED)
        for t in (failed, stopped):
            t.cancel()
        if self.supervisor.failed.is_set():
            log.error("stopping: %s", self.supervisor.failure)
            return 1
        log.info("stopping on signal")
        return 0

    async def stop(self) -> None:
        # Rules and listeners go with the daemon's tasks; nftables rules stay in the
        # kernel for the next start to adopt (as kube-proxy's do).
        if self._proxy is not None:
            await self._proxy.stop()
            self._proxy = None
        if self._dns is not None:
            await self._dns.stop()
            self._dns = None
        await self.supervisor.stop()
        # Pods keep running (sandboxes and processes stay, as when a kubelet
        # restarts): the next `netd up` adopts them, `netd down` removes them.
        for agent in self._agents:
            await agent.shutdown()
        if self._agents:
            # Its queued jobs finish first: a sandbox half made is still recorded.
            await sandboxhelper.aclose()
        self._agents = []
        if self._app is not None:
            self._app.close_watches()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.store is not None:
            await self.store.close()
            self.store = None
        for p in (self.paths.socket, self.paths.pid):
            try:
                p.unlink()
            except FileNotFoundError:
                pass
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


async def apply_manifests(api: ObjectAPI, docs: list[dict[str, Any]]) -> list[str]:
    """Create (or update) each manifest document in-process; returns kubectl-like lines."""
    from netd.registry.manifests import apply_document

    out = []
    for doc in docs:
        try:
            out.append(await apply_document(api, doc))
        except errors.APIError as err:
            out.append(f"error: {err.message}")
    return out
