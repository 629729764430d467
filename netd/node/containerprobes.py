"""A container's probes wired to its pod worker: startup gates liveness/readiness (as
kubelet runs them), readiness drives `ready`, a failed liveness or startup probe kills
the instance for a restart; each failure is an `Unhealthy` event."""
from __future__ import annotations

from typing import TYPE_CHECKING, Awaitable, Callable

from netd.node.containers import Container
from netd.node.probes import LIVENESS, READINESS, STARTUP, ProbeWorker, container_probes

if TYPE_CHECKING:
    from netd.node.workloads import PodWorker


def start(w: PodWorker, c: Container) -> None:
    """Start the probes of `c`'s new instance and set its initial started/ready."""
    specs = container_probes(c.spec)
    has_startup = any(s.kind == STARTUP for s in specs)
    has_ready = any(s.kind == READINESS for s in specs)
    c.cs.started = not has_startup
    c.cs.ready = not has_ready and not has_startup and not c.init or \
        (c.sidecar and not has_ready and not has_startup)
    ip = w.sandbox.ip if w.sandbox else ""
    for s in specs:
        pw = ProbeWorker(s, ip, _exec_for(w, c), _changed(w, c), clock=w.host.clock,
                         on_fail=_failed(w, c))
        c.probes.append(pw)
        if s.kind == STARTUP or not has_startup:
            pw.start(f"probe:{w.key}/{c.name}/{s.kind}")


def stop(c: Container) -> None:
    for pw in c.probes:
        pw.stop()
    c.probes = []


def _changed(w: PodWorker, c: Container) -> Callable[[ProbeWorker, bool, str], None]:
    def changed(pw: ProbeWorker, ok: bool, message: str) -> None:
        if pw.spec.kind == READINESS:
            c.cs.ready = ok and c.cs.started
        elif pw.spec.kind == STARTUP and ok:
            c.cs.started = True
            pw.stop()
            if not any(p.spec.kind == READINESS for p in c.probes):
                c.cs.ready = True
            for other in c.probes:
                if other.spec.kind != STARTUP:
                    other.start(f"probe:{w.key}/{c.name}/{other.spec.kind}")
        elif not ok:   # liveness or startup failed past the threshold
            w.host.event(w.pod, "Normal", "Killing",
                         f"Container {c.name} failed {pw.spec.kind} probe, will be "
                         f"restarted")
            w.kill(c, grace=0.0)
        w.host.changed(w.key)
    return changed


def _failed(w: PodWorker, c: Container) -> Callable[[ProbeWorker, str], None]:
    def failed(pw: ProbeWorker, message: str) -> None:
        kind = {READINESS: "Readiness", LIVENESS: "Liveness", STARTUP: "Startup"}[pw.spec.kind]
        w.host.event(w.pod, "Warning", "Unhealthy", f"{kind} probe failed: {message}")
    return failed


def _exec_for(w: PodWorker, c: Container
              ) -> Callable[[list[str], float], Awaitable[tuple[int, str]]]:
    async def run(argv: list[str], timeout: float) -> tuple[int, str]:
        return await w.exec(c, argv, timeout)
    return run
