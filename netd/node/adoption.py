"""The record that lets a restarted daemon re-adopt a pod's running containers:
/run/netd/<cluster>/state/<uid>.json (names.state_path; on the cluster's run tmpfs:
it matters only while the pod's sandbox exists, which a reboot ends too) with, per
container, the pid and its start time (together they
name a process across pid reuse), the container's state, lastState and restartCount.

Adoption: a process still alive is waited on again (its exit code is then unknown, as
kubelet reports for a container it lost track of) and its output resumes from the
FIFOs it still writes to (netd.node.containerio); built-in servers, which lived in the
old daemon, are re-opened as the same instance; a process that is gone is reported
terminated with reason ContainerStatusUnknown."""
from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Any

import orjson

from netd.node import containerio, containerlog, containerprobes, filewriter
from netd.node.containers import Container, start_builtin

if TYPE_CHECKING:
    from netd.node.workloads import PodWorker

log = logging.getLogger("netd.node.adoption")

Obj = dict[str, Any]


def save(w: PodWorker) -> None:
    """Queue the pod's record on the ordered file writer (latest wins per pod). The
    document is encoded here, on the loop, so it is the state of this moment."""
    doc = {"uid": w.uid, "ip": w.sandbox.ip if w.sandbox else "",
           "containers": {c.name: {
               "pid": c.pid, "start": c.pid_start, "state": c.cs.state,
               "lastState": c.cs.last_state, "restartCount": c.cs.restart_count,
               "containerID": c.cs.container_id, "builtin": c.argv is None}
               for c in w.all()}}
    data = orjson.dumps(doc)
    path, key = w.state_path, w.key
    filewriter.writer().submit(("state", path), lambda: write_state(path, data, key))


def write_state(path: str, data: bytes, key: str = "") -> None:
    """Atomically replace the record at `path` (on the writer thread: bare os calls,
    the directory made only when missing)."""
    tmp = f"{path}.tmp"
    try:
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("pod %s: cannot record state: %s", key, exc)


def restore(w: PodWorker, doc: Obj) -> None:
    keep: set[Any] = set()
    for c in w.all():
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
            c.started_mono = w.host.clock.now()
            w.spawn(_readopt_builtin(w, c), f"adopt:{w.key}/{c.name}")
        elif "running" in state and containerlog.alive(int(rec.get("pid") or 0),
                                                       rec.get("start")):
            c.pid, c.pid_start = int(rec["pid"]), rec.get("start")
            c.cs.state = state
            c.started_mono = w.host.clock.now()
            c.env = w.env_of(c)
            n = c.cs.restart_count
            log_path = containerlog.log_file(w.dir, c.name, n)
            log_path.parent.mkdir(parents=True, exist_ok=True)
            c.io = containerio.adopt_output(w.dir, c.name, n, log_path)
            if c.io is not None:
                keep.update(c.io.fifos)
            containerprobes.start(w, c)
        elif "running" in state:
            c.cs.state = {"terminated": {
                "exitCode": 137, "reason": "ContainerStatusUnknown",
                "message": "The container could not be located when the pod was "
                           "terminated",
                "startedAt": state["running"].get("startedAt"),
                "finishedAt": w.host.now_ts(), "containerID": c.cs.container_id}}
    # FIFOs of instances that ended while no daemon ran.
    containerio.remove_fifos(w.dir, frozenset(keep))


async def _readopt_builtin(w: PodWorker, c: Container) -> None:
    c.exit = asyncio.get_running_loop().create_future()
    exit_future = c.exit
    sb = w.sandbox
    assert sb is not None
    try:
        await start_builtin(c, w.hostname, w.key,
                            lambda f, t, port: w.host.open_socket(sb, f, t, port))
        c.exit = exit_future if c.exit is None else c.exit
        containerprobes.start(w, c)
        w.changed()
    except OSError as exc:
        log.warning("pod %s: container %s: cannot re-open servers: %s", w.key,
                    c.name, exc)
        if not exit_future.done():
            exit_future.set_result(1)
