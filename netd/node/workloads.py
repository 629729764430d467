"""A pod's containers on the node: processes and emulated images, restarts with
CrashLoopBackOff, probes, graceful stop, and the record that lets a restarted daemon
re-adopt running processes.

One PodWorker per pod; one supervising task per container (init containers in turn,
then the app containers together). Everything the worker knows of a container is its
CState (netd.node.podstatus), which the agent turns into the pod's status whenever
the worker says something changed.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import signal
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Protocol

from netd.client.clock import Clock
from netd.config import Config
from netd.node import containerlog, nsexec
from netd.node.builtin import BuiltinServers, PodView, plan, process_argv
from netd.node.containerenv import EnvError, container_env, expand_argv
from netd.node.podstatus import CState
from netd.node.probes import LIVENESS, READINESS, STARTUP, ProbeWorker, container_probes
from netd.node.sandbox import Sandbox
from netd.node.volumes import Mount, container_mounts, pod_dir

log = logging.getLogger("netd.node.workloads")

Obj = dict[str, Any]


@dataclass(frozen=True)
class Timing:
    """kubelet's container restart back-off: 10 s doubling to 300 s, forgotten once a
    container ran 10 minutes. Tests shrink these."""
    backoff_base: float = 10.0
    backoff_max: float = 300.0
    backoff_reset: float = 600.0


def backoff_delay(crashes: int, t: Timing) -> float:
    """The wait before restart number `crashes`+1 in a row: none for the first (kubelet
    starts a back-off entry then), then base, doubling up to max."""
    if crashes <= 0:
        return 0.0
    return min(t.backoff_base * 2 ** (crashes - 1), t.backoff_max)


class Host(Protocol):
    """What a worker needs from its node agent."""
    config: Config
    clock: Clock
    timing: Timing
    node_name: str
    node_ip: str

    def now_ts(self) -> str: ...
    def changed(self, key: str) -> None: ...
    def event(self, pod: Obj, type_: str, reason: str, message: str) -> None: ...
    def open_socket(self, sb: Sandbox, family: int, type_: int, port: int) -> socket.socket: ...
    def services(self, namespace: str) -> list[Obj]: ...
    def configmap(self, namespace: str, name: str) -> Obj | None: ...


def container_id(uid: str, name: str, restart: int) -> str:
    return "netd://" + hashlib.sha256(f"{uid}/{name}/{restart}".encode()).hexdigest()


class Container:
    def __init__(self, spec: Obj, init: bool) -> None:
        self.spec = spec
        self.name = str(spec.get("name") or "")
        self.cs = CState(self.name, str(spec.get("image") or ""), init=init,
                         sidecar=init and spec.get("restartPolicy") == "Always")
        self.init = init
        self.sidecar = self.cs.sidecar
        self.argv = process_argv(spec)
        self.proc: asyncio.subprocess.Process | None = None
        self.pid = 0
        self.pid_start: int | None = None
        self.servers: BuiltinServers | None = None
        self.exit: asyncio.Future[int] | None = None
        self.probes: list[ProbeWorker] = []
        self.kill_reason = ""
        self.crashes = 0            # restarts in a row (back-off)
        self.started_mono = 0.0
        self.mounts: list[Mount] = []
        self.env: dict[str, str] = {}


class PodWorker:
    def __init__(self, host: Host, pod: Obj, sandbox: Sandbox,
                 volumes: dict[str, Path], hostname: str) -> None:
        self.host = host
        self.pod = pod
        meta = pod["metadata"]
        self.key = f"{meta['namespace']}/{meta['name']}"
        self.uid = str(meta.get("uid") or "")
        self.sandbox: Sandbox | None = sandbox
        self.volumes = volumes
        self.hostname = hostname
        spec = pod.get("spec") or {}
        self.restart_policy = spec.get("restartPolicy") or "Always"
        self.inits = [Container(c, True) for c in spec.get("initContainers") or []]
        self.containers = [Container(c, False) for c in spec.get("containers") or []]
        self.init_failed = False
        self.stopping = False
        self.task: asyncio.Task[None] | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        self.dir = pod_dir(host.config, self.uid)
        for c in self.inits + self.containers:
            c.mounts = container_mounts(c.spec, volumes)
            if c.init or self.inits:
                c.cs.state = {"waiting": {"reason": "PodInitializing"}}

    # ---- public ------------------------------------------------------------------------

    def all(self) -> list[Container]:
        return self.inits + self.containers

    def container_names(self) -> list[str]:
        return [c.name for c in self.all()]

    def find(self, name: str) -> Container | None:
        return next((c for c in self.all() if c.name == name), None)

    def exec_context(self, name: str) -> tuple[dict[str, str], list[Mount], str | None] | None:
        c = self.find(name)
        if c is None:
            return None
        env = c.env or self._env(c)
        return env, list(c.mounts), c.spec.get("workingDir") or None

    def log_path(self, name: str, previous: bool = False) -> Path | None:
        c = self.find(name)
        if c is None:
            return None
        n = c.cs.restart_count - (1 if previous else 0)
        if n < 0:
            return None
        path = containerlog.log_file(self.dir, name, n)
        return path if path.exists() else None

    def start(self, adopted: Obj | None = None) -> None:
        if adopted:
            self._restore(adopted)
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"pod:{self.key}")

    # ---- running -----------------------------------------------------------------------

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        t = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)
        return t

    def _changed(self) -> None:
        self.host.changed(self.key)
        self.save_state()

    async def _run(self) -> None:
        for c in self.inits:
            if c.cs.succeeded and not c.sidecar:
                continue
            if c.sidecar:
                self._spawn(self._supervise(c), f"sidecar:{self.key}/{c.name}")
                continue
            code = await self._supervise(c)
            if self.stopping:
                return
            if code != 0:
                self.init_failed = True
                for app in self.containers:
                    app.cs.state = {"waiting": {"reason": "PodInitializing"}}
                self._changed()
                return
        for c in self.containers:
            if "waiting" in c.cs.state and c.cs.state["waiting"].get("reason") == "PodInitializing":
                c.cs.state = {"waiting": {"reason": "ContainerCreating"}}
        self._changed()
        runs = [self._spawn(self._supervise(c), f"container:{self.key}/{c.name}")
                for c in self.containers if not self._finished(c)]
        await asyncio.gather(*runs, return_exceptions=True)

    def _finished(self, c: Container) -> bool:
        term = c.cs.state.get("terminated")
        if not term:
            return False
        return not self._restarts(c, int(term.get("exitCode") or 0))

    def _restarts(self, c: Container, code: int) -> bool:
        if c.sidecar:
            return True
        if c.init:
            return code != 0 and self.restart_policy != "Never"
        return self.restart_policy == "Always" or \
            (self.restart_policy == "OnFailure" and code != 0)

    async def _supervise(self, c: Container) -> int:
        """Run `c` until it stays down; returns its last exit code."""
        clock = self.host.clock
        while True:
            if c.pid or c.exit is not None:
                code = await self._wait(c)         # adopted, still running
            else:
                code = await self._run_once(c)
            if self.stopping:
                return code
            if not self._restarts(c, code):
                return code
            if clock.now() - c.started_mono >= self.host.timing.backoff_reset:
                c.crashes = 0          # it ran long enough: the back-off starts over
            delay = backoff_delay(c.crashes, self.host.timing)
            c.crashes += 1
            if delay > 0:
                meta = self.pod["metadata"]
                c.cs.state = {"waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off {_dur(delay)} restarting failed container="
                               f"{c.name} pod={meta['name']}_{meta['namespace']}({self.uid})"}}
                self.host.event(self.pod, "Warning", "BackOff",
                                "Back-off restarting failed container "
                                f"{c.name} in pod {meta['name']}_{meta['namespace']}({self.uid})")
                self._changed()
                await clock.sleep(delay)
                if self.stopping:
                    return code
            c.cs.restart_count += 1

    def _env(self, c: Container) -> dict[str, str]:
        sb = self.sandbox
        return container_env(self.pod, c.spec,
                             services=self.host.services(self.pod["metadata"]["namespace"]),
                             configmaps=self.host.configmap, node_name=self.host.node_name,
                             pod_ip=sb.ip if sb else "", host_ip=self.host.node_ip)

    async def _run_once(self, c: Container) -> int:
        sb = self.sandbox
        assert sb is not None
        try:
            c.env = self._env(c)
        except EnvError as exc:
            c.cs.state = {"waiting": {"reason": "CreateContainerConfigError",
                                      "message": str(exc)}}
            self._changed()
            await self.host.clock.sleep(self.host.timing.backoff_base)
            return 1
        c.cs.container_id = container_id(self.uid, c.name, c.cs.restart_count)
        c.kill_reason = ""
        started = self.host.now_ts()
        c.started_mono = self.host.clock.now()
        logpath = containerlog.rotate(self.dir, c.name, c.cs.restart_count)
        out = open(logpath, "ab")
        pumps: list[asyncio.Task[None]] = []
        try:
            try:
                if c.argv is not None:
                    argv = expand_argv(c.argv, c.env)
                    proc = await nsexec.spawn(
                        sb, argv, env=c.env, cwd=c.spec.get("workingDir") or None,
                        mounts=c.mounts, stdin=asyncio.subprocess.DEVNULL,
                        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
                    c.proc, c.pid = proc, proc.pid or 0
                    c.pid_start = containerlog.proc_start_time(c.pid)
                    assert proc.stdout is not None and proc.stderr is not None
                    pumps = [self._spawn(containerlog.pump(proc.stdout, "stdout", out), "log"),
                             self._spawn(containerlog.pump(proc.stderr, "stderr", out), "log")]
                else:
                    await self._start_builtin(c)
            except (FileNotFoundError, PermissionError, OSError) as exc:
                what = c.argv[0] if c.argv else c.name
                msg = (f"failed to create containerd task: failed to create shim task: OCI "
                       f"runtime create failed: runc create failed: unable to start container "
                       f"process: exec: \"{what}\": executable file not found in $PATH: unknown"
                       if isinstance(exc, FileNotFoundError) else
                       f"failed to start container: {exc}")
                c.cs.state = {"terminated": {
                    "exitCode": 128, "reason": "StartError", "message": msg,
                    "startedAt": "1970-01-01T00:00:00Z", "finishedAt": self.host.now_ts(),
                    "containerID": c.cs.container_id}}
                c.cs.ready = c.cs.started = False
                self.host.event(self.pod, "Warning", "Failed", f"Error: {msg}")
                if self._restarts(c, 128):
                    self._shift_last(c)
                self._changed()
                return 128
            c.cs.state = {"running": {"startedAt": started}}
            self.host.event(self.pod, "Normal", "Started", f"Started container {c.name}")
            self._start_probes(c)
            self._changed()
            code = await self._wait(c)
            if pumps:
                await asyncio.gather(*pumps, return_exceptions=True)
            return code
        finally:
            out.close()

    async def _start_builtin(self, c: Container) -> None:
        sb = self.sandbox
        assert sb is not None
        p = plan(c.spec)
        loop = asyncio.get_running_loop()
        c.exit = loop.create_future()

        def on_exit(code: int) -> None:
            if c.exit is not None and not c.exit.done():
                c.exit.set_result(code)

        c.servers = BuiltinServers(PodView(self.hostname, self.key, p.mode, c.mounts, on_exit))
        await c.servers.start(p, lambda f, t, port: self.host.open_socket(sb, f, t, port))

    async def _wait(self, c: Container) -> int:
        """Wait for the running instance to end; record its terminated state."""
        started = (c.cs.state.get("running") or {}).get("startedAt") or self.host.now_ts()
        reason = ""
        if c.proc is not None:
            rc = await c.proc.wait()
            code = 128 - rc if rc < 0 else rc
        elif c.exit is not None:
            code = await c.exit
            if c.servers is not None:
                c.servers.close()
        else:
            await containerlog.wait_pid(c.pid)
            # Not our child (adopted after a restart): its exit status is lost, which
            # kubelet reports the same way.
            code, reason = 137, "ContainerStatusUnknown"
        self._stop_probes(c)
        c.proc, c.pid, c.pid_start, c.exit, c.servers = None, 0, None, None, None
        term: Obj = {"exitCode": code,
                     "reason": reason or c.kill_reason or ("Completed" if code == 0 else "Error"),
                     "startedAt": started, "finishedAt": self.host.now_ts(),
                     "containerID": c.cs.container_id}
        if reason:
            term["message"] = "The container could not be located when the pod was " \
                              "terminated"
        c.cs.state = {"terminated": term}
        c.cs.ready = c.cs.started = False
        if not self.stopping:
            if self._restarts(c, code):
                self._shift_last(c)
            self._changed()
        return code

    def _shift_last(self, c: Container) -> None:
        """The instance that ended becomes lastState (kubelet shows it there while the
        next one waits or runs)."""
        c.cs.last_state = dict(c.cs.state)
        c.cs.state = {"waiting": {"reason": "ContainerCreating"}}

    # ---- probes ------------------------------------------------------------------------

    def _start_probes(self, c: Container) -> None:
        specs = container_probes(c.spec)
        has_startup = any(s.kind == STARTUP for s in specs)
        has_ready = any(s.kind == READINESS for s in specs)
        c.cs.started = not has_startup
        c.cs.ready = not has_ready and not has_startup and not c.init or \
            (c.sidecar and not has_ready and not has_startup)
        sb = self.sandbox
        ip = sb.ip if sb else ""
        for s in specs:
            w = ProbeWorker(s, ip, self._exec_for(c), self._probe_changed(c),
                            clock=self.host.clock,
                            on_fail=self._probe_failed(c))
            c.probes.append(w)
            if s.kind == STARTUP or not has_startup:
                w.start(f"probe:{self.key}/{c.name}/{s.kind}")

    def _probe_changed(self, c: Container) -> Callable[[ProbeWorker, bool, str], None]:
        def changed(w: ProbeWorker, ok: bool, message: str) -> None:
            if w.spec.kind == READINESS:
                c.cs.ready = ok and c.cs.started
            elif w.spec.kind == STARTUP and ok:
                c.cs.started = True
                w.stop()
                if not any(p.spec.kind == READINESS for p in c.probes):
                    c.cs.ready = True
                for other in c.probes:
                    if other.spec.kind != STARTUP:
                        other.start(f"probe:{self.key}/{c.name}/{other.spec.kind}")
            elif not ok:   # liveness or startup failed past the threshold
                self.host.event(self.pod, "Normal", "Killing",
                                f"Container {c.name} failed {w.spec.kind} probe, will be "
                                f"restarted")
                self._kill(c, grace=0.0)
            self.host.changed(self.key)
        return changed

    def _probe_failed(self, c: Container) -> Callable[[ProbeWorker, str], None]:
        def failed(w: ProbeWorker, message: str) -> None:
            kind = {READINESS: "Readiness", LIVENESS: "Liveness", STARTUP: "Startup"}[w.spec.kind]
            self.host.event(self.pod, "Warning", "Unhealthy", f"{kind} probe failed: {message}")
        return failed

    def _stop_probes(self, c: Container) -> None:
        for w in c.probes:
            w.stop()
        c.probes = []

    def _exec_for(self, c: Container) -> Callable[[list[str], float],
                                                  Awaitable[tuple[int, str]]]:
        async def run(argv: list[str], timeout: float) -> tuple[int, str]:
            return await self._exec(c, argv, timeout)
        return run

    async def _exec(self, c: Container, argv: list[str], timeout: float) -> tuple[int, str]:
        sb = self.sandbox
        assert sb is not None
        proc = await nsexec.spawn(sb, argv, env=c.env or self._env(c), mounts=c.mounts,
                                  cwd=c.spec.get("workingDir") or None,
                                  stdin=asyncio.subprocess.DEVNULL,
                                  stdout=asyncio.subprocess.PIPE,
                                  stderr=asyncio.subprocess.STDOUT)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except asyncio.TimeoutError:
            _signal_group(proc.pid, signal.SIGKILL)
            await proc.wait()
            raise
        return proc.returncode or 0, out.decode(errors="replace")

    # ---- stopping ----------------------------------------------------------------------

    def _kill(self, c: Container, grace: float, reason: str = "Error") -> None:
        c.kill_reason = reason
        if c.exit is not None and not c.exit.done():
            c.exit.set_result(137)
        if c.pid:
            _signal_group(c.pid, signal.SIGTERM if grace > 0 else signal.SIGKILL)

    async def stop(self, grace: float) -> None:
        """preStop hooks, SIGTERM, wait up to `grace` seconds, SIGKILL; then nothing of
        the pod runs any more."""
        self.stopping = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, grace)
        running = [c for c in self.all() if c.pid or c.exit is not None]
        hooks = [self._pre_stop(c) for c in running if (c.spec.get("lifecycle") or {})
                 .get("preStop")]
        if hooks:
            try:
                await asyncio.wait_for(asyncio.gather(*hooks, return_exceptions=True),
                                       max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                pass
        for c in running:
            self._stop_probes(c)
            if c.servers is not None:
                c.servers.close()
            if c.exit is not None and not c.exit.done():
                c.exit.set_result(0)
            if c.pid:
                _signal_group(c.pid, signal.SIGTERM)
        procs = [c for c in running if c.pid]

        async def gone() -> None:
            while any(containerlog.proc_start_time(c.pid) is not None and c.pid for c in procs):
                await asyncio.sleep(0.02)

        if procs:
            try:
                await asyncio.wait_for(gone(), max(0.05, deadline - loop.time()))
            except asyncio.TimeoutError:
                for c in procs:
                    if c.pid:
                        _signal_group(c.pid, signal.SIGKILL)
        for c in procs:
            if c.proc is not None:
                try:
                    await asyncio.wait_for(c.proc.wait(), 5)
                except asyncio.TimeoutError:
                    log.warning("pod %s: container %s did not die", self.key, c.name)
        if self.task is not None:
            self.task.cancel()
        for t in list(self.tasks):
            t.cancel()
        await asyncio.gather(*([self.task] if self.task else []), *self.tasks,
                             return_exceptions=True)

    async def _pre_stop(self, c: Container) -> None:
        hook = (c.spec.get("lifecycle") or {}).get("preStop") or {}
        try:
            if isinstance(hook.get("exec"), dict):
                await self._exec(c, [str(a) for a in hook["exec"].get("command") or []], 3600)
            elif isinstance(hook.get("httpGet"), dict):
                from netd.node.probes import http_probe, probe_spec
                spec = probe_spec(READINESS, {"httpGet": hook["httpGet"],
                                              "timeoutSeconds": 3600}, c.spec)
                await http_probe(spec, spec.host or (self.sandbox.ip if self.sandbox else ""))
            elif isinstance(hook.get("sleep"), dict):
                await asyncio.sleep(float(hook["sleep"].get("seconds") or 0))
        except (OSError, asyncio.TimeoutError) as exc:
            self.host.event(self.pod, "Warning", "FailedPreStopHook",
                            f"PreStopHook failed: {exc}")

    # ---- state for adoption ------------------------------------------------------------

    def save_state(self) -> None:
        doc = {"uid": self.uid, "ip": self.sandbox.ip if self.sandbox else "",
               "containers": {c.name: {
                   "pid": c.pid, "start": c.pid_start, "state": c.cs.state,
                   "lastState": c.cs.last_state, "restartCount": c.cs.restart_count,
                   "containerID": c.cs.container_id, "builtin": c.argv is None}
                   for c in self.all()}}
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            tmp = self.dir / "state.json.tmp"
            tmp.write_text(json.dumps(doc))
            os.replace(tmp, self.dir / "state.json")
        except OSError as exc:
            log.warning("pod %s: cannot record state: %s", self.key, exc)

    def _restore(self, doc: Obj) -> None:
        for c in self.all():
            rec = (doc.get("containers") or {}).get(c.name)
            if not isinstance(rec, dict):
                continue
            c.cs.restart_count = int(rec.get("restartCount") or 0)
            c.cs.last_state = rec.get("lastState") or {}
            c.cs.container_id = str(rec.get("containerID") or "")
            state = rec.get("state") or {}
            if "terminated" in state:
                c.cs.state = state
            elif "running" in state and rec.get("builtin"):
                # The daemon itself was this container's process: re-open its servers
                # as the same instance (same restartCount and startedAt).
                c.cs.state = state
                c.started_mono = self.host.clock.now()
                self._spawn(self._readopt_builtin(c), f"adopt:{self.key}/{c.name}")
            elif "running" in state and containerlog.alive(int(rec.get("pid") or 0),
                                                           rec.get("start")):
                c.pid, c.pid_start = int(rec["pid"]), rec.get("start")
                c.cs.state = state
                c.started_mono = self.host.clock.now()
                c.env = self._env(c)
                self._start_probes(c)
            elif "running" in state:
                c.cs.state = {"terminated": {
                    "exitCode": 137, "reason": "ContainerStatusUnknown",
                    "message": "The container could not be located when the pod was "
                               "terminated",
                    "startedAt": state["running"].get("startedAt"),
                    "finishedAt": self.host.now_ts(), "containerID": c.cs.container_id}}

    async def _readopt_builtin(self, c: Container) -> None:
        c.exit = asyncio.get_running_loop().create_future()
        exit_future = c.exit
        try:
            await self._start_builtin(c)
            c.exit = exit_future if c.exit is None else c.exit
            self._start_probes(c)
            self._changed()
        except OSError as exc:
            log.warning("pod %s: container %s: cannot re-open servers: %s", self.key,
                        c.name, exc)
            if not exit_future.done():
                exit_future.set_result(1)


def _signal_group(pid: int, sig: int) -> None:
    # Containers start in their own session (spawn's start_new_session), so the group
    # holds everything the container forked, as killing a container's cgroup would.
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _dur(seconds: float) -> str:
    """Go's time.Duration String for whole seconds/minutes (10s, 5m0s, 2m40s)."""
    s = int(seconds) if seconds >= 1 else seconds
    if isinstance(s, float):
        return f"{int(seconds * 1000)}ms"
    if s < 60:
        return f"{s}s"
    return f"{s // 60}m{s % 60}s"

