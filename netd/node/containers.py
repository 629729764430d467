"""One container of a pod and the lifecycle of its instances: start (a process with
FIFO stdio, netd.node.containerio, or the built-in servers of an emulated image), wait
for the end and its exit code, signal, run a command beside it (exec probes, preStop).

The decisions around an instance — restart policy, back-off, status, probes — are the
pod worker's (netd.node.workloads); this module only runs things.
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from netd.node import containerio, containerlog, nsexec
from netd.node.builtin import BuiltinServers, PodView, plan, process_argv
from netd.node.containerenv import expand_argv
from netd.node.containerio import ContainerIO
from netd.node.podstatus import CState
from netd.node.probes import ProbeWorker
from netd.node.sandbox import Sandbox
from netd.node.volumes import Mount

Obj = dict[str, Any]
# Seconds an ended instance's output may still flow (a background child holding
# stdout); then the pumps stop and the FIFOs go.
OUTPUT_DRAIN = 2.0


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
        # stdin/tty as the kubelet passes them to the runtime; stdinOnce only means
        # something with stdin.
        self.stdin = spec.get("stdin") is True
        self.stdin_once = self.stdin and spec.get("stdinOnce") is True
        self.tty = spec.get("tty") is True
        self.proc: asyncio.subprocess.Process | None = None
        self.pid = 0
        self.pid_start: int | None = None
        self.io: ContainerIO | None = None
        self.servers: BuiltinServers | None = None
        self.exit: asyncio.Future[int] | None = None
        self.probes: list[ProbeWorker] = []
        self.kill_reason = ""
        self.crashes = 0            # restarts in a row (back-off)
        self.started_mono = 0.0
        self.mounts: list[Mount] = []
        self.env: dict[str, str] = {}

    @property
    def running(self) -> bool:
        return bool(self.pid) or self.exit is not None


# ---- starting an instance -----------------------------------------------------------

async def start_process(c: Container, sb: Sandbox, pod_dir: Path, log_path: Path) -> None:
    """Start the container's command in the sandbox (FileNotFoundError/OSError when it
    cannot start)."""
    assert c.argv is not None
    argv = expand_argv(c.argv, c.env)

    async def spawn(args: list[str], **kw: Any) -> asyncio.subprocess.Process:
        return await nsexec.spawn(sb, args, **kw)

    proc, io = await containerio.start_process(
        spawn, argv, pod_dir=pod_dir, container=c.name, restart=c.cs.restart_count,
        log_path=log_path, stdin=c.stdin, stdin_once=c.stdin_once, tty=c.tty,
        env=c.env, cwd=c.spec.get("workingDir") or None, mounts=c.mounts)
    c.proc, c.pid, c.io = proc, proc.pid or 0, io
    c.pid_start = containerlog.proc_start_time(c.pid)


async def start_builtin(c: Container, hostname: str, key: str,
                        open_socket: Callable[[int, int, int], socket.socket]) -> None:
    """Open the emulated image's servers (sockets in the pod, served by the daemon)."""
    p = plan(c.spec)
    loop = asyncio.get_running_loop()
    c.exit = loop.create_future()

    def on_exit(code: int) -> None:
        if c.exit is not None and not c.exit.done():
            c.exit.set_result(code)

    c.servers = BuiltinServers(PodView(hostname, key, p.mode, c.mounts, on_exit))
    await c.servers.start(p, open_socket)


def start_error(c: Container, exc: Exception) -> str:
    """The message kubelet shows for a container that could not start."""
    if isinstance(exc, FileNotFoundError):
        what = c.argv[0] if c.argv else c.name
        return (f"failed to create containerd task: failed to create shim task: OCI "
                f"runtime create failed: runc create failed: unable to start container "
                f"process: exec: \"{what}\": executable file not found in $PATH: unknown")
    return f"failed to start container: {exc}"


def attach_point(c: Container) -> ContainerIO | None:
    """The running instance's stdio for attach; built-in servers get an output-less one
    (created on demand: most pods are never attached to)."""
    if not c.running:
        return None
    if c.io is None and c.exit is not None:
        c.io = ContainerIO()
    return c.io


# ---- the end of an instance ---------------------------------------------------------

async def wait_instance(c: Container) -> tuple[int, str]:
    """Wait for the running instance to end: (exit code, reason when not known). Its
    output is drained and its handles cleared."""
    reason = ""
    try:
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
        if c.io is not None:
            await c.io.drain(OUTPUT_DRAIN)
    except asyncio.CancelledError:
        # The daemon lets go (shutdown; or stop(), which removes the FIFOs after): the
        # process and its FIFOs stay for the next daemon to adopt.
        if c.io is not None:
            c.io.finish(remove=False)
        raise
    release(c)
    return code, reason


def release(c: Container, remove: bool = True) -> None:
    """Forget the running instance (its attach clients get their end)."""
    if c.io is not None:
        c.io.finish(remove=remove)
    if c.servers is not None:
        c.servers.close()
    c.proc, c.pid, c.pid_start, c.exit, c.servers, c.io = None, 0, None, None, None, None


def signal_group(pid: int, sig: int) -> None:
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


async def exec_in(sb: Sandbox, c: Container, env: dict[str, str], argv: list[str],
                  timeout: float) -> tuple[int, str]:
    """Run argv beside the container (exec probes, preStop hooks): (exit code, output)."""
    proc = await nsexec.spawn(sb, argv, env=env, mounts=c.mounts,
                              cwd=c.spec.get("workingDir") or None,
                              stdin=asyncio.subprocess.DEVNULL,
                              stdout=asyncio.subprocess.PIPE,
                              stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        signal_group(proc.pid, signal.SIGKILL)
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode(errors="replace")


def dur(seconds: float) -> str:
    """Go's time.Duration String for whole seconds/minutes (10s, 5m0s, 2m40s)."""
    s = int(seconds) if seconds >= 1 else seconds
    if isinstance(s, float):
        return f"{int(seconds * 1000)}ms"
    if s < 60:
        return f"{s}s"
    return f"{s // 60}m{s % 60}s"
