"""The pod worker: the state machine of one pod's containers on the node — init
containers in turn, then the app containers together; restarts by restartPolicy with
CrashLoopBackOff; probes; graceful stop; the record that lets a restarted daemon
re-adopt running processes (netd.node.adoption).

One supervising task per container. Running an instance (process or built-in
servers, its stdio) is netd.node.containers'; everything the worker knows of a
container is its CState (netd.node.podstatus), which the agent turns into the pod's
status whenever the worker says something changed.
"""
from __future__ import annotations

import asyncio
import logging
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any, Protocol

from netd.client.clock import Clock
from netd.config import Config
from netd.node import (adoption, containerio, containerlog, containerprobes, filewriter,
                       names)
from netd.node.containerenv import EnvError, container_env
from netd.node.containerio import ContainerIO
from netd.node.containers import (Container, Timing, attach_point, backoff_delay,
                                  container_id, dur, exec_in, release, signal_group,
                                  start_builtin, start_error, start_process, wait_instance)
from netd.node.probes import READINESS
from netd.node.sandbox import Sandbox
from netd.node.volumes import Mount, container_mounts, pod_dir

log = logging.getLogger("netd.node.workloads")

Obj = dict[str, Any]

__all__ = ["Container", "Host", "PodWorker", "Timing"]


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
        self.state_path = names.state_path(host.config.cluster_name, self.uid)
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
        env = c.env or self.env_of(c)
        return env, list(c.mounts), c.spec.get("workingDir") or None

    def log_path(self, name: str, previous: bool = False) -> Path | None:
        c = self.find(name)
        if c is None:
            return None
        n = c.cs.restart_count - (1 if previous else 0)
        if n < 0:
            return None
        path = containerlog.log_file(self.dir, name, n)
        if c.argv is None:
            # An emulated image writes nothing, so no file is made for it (an inode on
            # the node's disk per pod); its log reads as empty once it has started.
            return path if previous or c.cs.container_id else None
        return path if path.exists() else None

    def attach(self, name: str) -> ContainerIO | None:
        """The running instance's stdio; LookupError when the container exists but does
        not run (containerd refuses to attach then, naming the state)."""
        c = self.find(name)
        if c is None:
            return None
        io = attach_point(c)
        if io is None:
            state = "CONTAINER_EXITED" if "terminated" in c.cs.state or c.cs.last_state \
                else "CONTAINER_CREATED"
            raise LookupError(f"container {c.name} is in {state} state")
        return io

    def running(self, name: str) -> bool:
        c = self.find(name)
        return c is not None and c.running

    def start(self, adopted: Obj | None = None) -> None:
        if adopted:
            adoption.restore(self, adopted)
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"pod:{self.key}")

    def spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        t = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)
        return t

    def changed(self) -> None:
        self.host.changed(self.key)
        self.save_state()

    def save_state(self) -> None:
        adoption.save(self)

    def env_of(self, c: Container) -> dict[str, str]:
        sb = self.sandbox
        return container_env(self.pod, c.spec,
                             services=self.host.services(self.pod["metadata"]["namespace"]),
                             configmaps=self.host.configmap, node_name=self.host.node_name,
                             pod_ip=sb.ip if sb else "", host_ip=self.host.node_ip)

    # ---- running -----------------------------------------------------------------------

    async def _run(self) -> None:
        for c in self.inits:
            if c.cs.succeeded and not c.sidecar:
                continue
            if c.sidecar:
                self.spawn(self._supervise(c), f"sidecar:{self.key}/{c.name}")
                continue
            code = await self._supervise(c)
            if self.stopping:
                return
            if code != 0:
                self.init_failed = True
                for app in self.containers:
                    app.cs.state = {"waiting": {"reason": "PodInitializing"}}
                self.changed()
                return
        for c in self.containers:
            if "waiting" in c.cs.state and c.cs.state["waiting"].get("reason") == "PodInitializing":
                c.cs.state = {"waiting": {"reason": "ContainerCreating"}}
        self.changed()
        runs = [self.spawn(self._supervise(c), f"container:{self.key}/{c.name}")
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
            if c.running:
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
                    "message": f"back-off {dur(delay)} restarting failed container="
                               f"{c.name} pod={meta['name']}_{meta['namespace']}({self.uid})"}}
                self.host.event(self.pod, "Warning", "BackOff",
                                "Back-off restarting failed container "
                                f"{c.name} in pod {meta['name']}_{meta['namespace']}({self.uid})")
                self.changed()
                await clock.sleep(delay)
                if self.stopping:
                    return code
            c.cs.restart_count += 1

    async def _run_once(self, c: Container) -> int:
        sb = self.sandbox
        assert sb is not None
        try:
            c.env = self.env_of(c)
        except EnvError as exc:
            c.cs.state = {"waiting": {"reason": "CreateContainerConfigError",
                                      "message": str(exc)}}
            self.changed()
            await self.host.clock.sleep(self.host.timing.backoff_base)
            return 1
        c.cs.container_id = container_id(self.uid, c.name, c.cs.restart_count)
        c.kill_reason = ""
        started = self.host.now_ts()
        c.started_mono = self.host.clock.now()
        pod_dir, name, n = self.dir, c.name, c.cs.restart_count
        try:
            if c.argv is not None:
                # On the file writer thread, awaited: the log file exists before the
                # process runs. (An emulated image has none: see log_path.)
                logpath = await filewriter.writer().run(
                    lambda: containerlog.rotate(pod_dir, name, n))
                await start_process(c, sb, self.dir, logpath)
            else:
                await start_builtin(c, self.hostname, self.key,
                                    lambda f, t, port: self.host.open_socket(sb, f, t, port))
        except (OSError, subprocess.SubprocessError) as exc:
            msg = start_error(c, exc)
            release(c)
            c.cs.state = {"terminated": {
                "exitCode": 128, "reason": "StartError", "message": msg,
                "startedAt": "1970-01-01T00:00:00Z", "finishedAt": self.host.now_ts(),
                "containerID": c.cs.container_id}}
            c.cs.ready = c.cs.started = False
            self.host.event(self.pod, "Warning", "Failed", f"Error: {msg}")
            if self._restarts(c, 128):
                self._shift_last(c)
            self.changed()
            return 128
        hook = (c.spec.get("lifecycle") or {}).get("postStart")
        if isinstance(hook, dict):
            # kubelet: not Running until postStart returned; a failed hook kills it.
            from netd.node.probes import run_hook
            meta = self.pod["metadata"]
            failed = await run_hook(hook, c.spec, sb.ip, lambda a, t: self.exec(c, a, t),
                                    f"{meta['name']}_{meta['namespace']}({self.uid})")
            if failed is not None:
                self.host.event(self.pod, "Warning", "FailedPostStartHook", failed)
                self.kill(c, grace=0.0)
                return await self._wait(c)
        c.cs.state = {"running": {"startedAt": started}}
        self.host.event(self.pod, "Normal", "Started", f"Started container {c.name}")
        containerprobes.start(self, c)
        self.changed()
        return await self._wait(c)

    async def _wait(self, c: Container) -> int:
        """Wait for the running instance to end; record its terminated state."""
        started = (c.cs.state.get("running") or {}).get("startedAt") or self.host.now_ts()
        code, reason = await wait_instance(c)
        containerprobes.stop(c)
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
            self.changed()
        return code

    def _shift_last(self, c: Container) -> None:
        """The instance that ended becomes lastState (kubelet shows it there while the
        next one waits or runs)."""
        c.cs.last_state = dict(c.cs.state)
        c.cs.state = {"waiting": {"reason": "ContainerCreating"}}

    async def exec(self, c: Container, argv: list[str], timeout: float) -> tuple[int, str]:
        sb = self.sandbox
        assert sb is not None
        return await exec_in(sb, c, c.env or self.env_of(c), argv, timeout)

    # ---- stopping ----------------------------------------------------------------------

    def kill(self, c: Container, grace: float, reason: str = "Error") -> None:
        c.kill_reason = reason
        if c.exit is not None and not c.exit.done():
            c.exit.set_result(137)
        if c.pid:
            signal_group(c.pid, signal.SIGTERM if grace > 0 else signal.SIGKILL)

    async def stop(self, grace: float) -> None:
        """preStop hooks, SIGTERM, wait up to `grace` seconds, SIGKILL; then nothing of
        the pod runs any more."""
        self.stopping = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, grace)
        running = [c for c in self.all() if c.running]
        hooks = [self._pre_stop(c) for c in running if (c.spec.get("lifecycle") or {})
                 .get("preStop")]
        if hooks:
            try:
                await asyncio.wait_for(asyncio.gather(*hooks, return_exceptions=True),
                                       max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                pass
        for c in running:
            containerprobes.stop(c)
            if c.servers is not None:
                c.servers.close()
            if c.exit is not None and not c.exit.done():
                c.exit.set_result(0)
            if c.pid:
                signal_group(c.pid, signal.SIGTERM)
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
                        signal_group(c.pid, signal.SIGKILL)
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
        for c in self.all():
            if c.io is not None:
                c.io.finish(remove=True)
        pod_dir = self.dir
        await filewriter.writer().run(lambda: containerio.remove_fifos(pod_dir))

    async def _pre_stop(self, c: Container) -> None:
        hook = (c.spec.get("lifecycle") or {}).get("preStop") or {}
        try:
            if isinstance(hook.get("exec"), dict):
                await self.exec(c, [str(a) for a in hook["exec"].get("command") or []], 3600)
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
