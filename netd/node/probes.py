"""Container probes as the kubelet runs them (pkg/kubelet/prober).

- ProbeSpec: a probe's settings with the API defaults (period 10 s, timeout 1 s,
  success 1, failure 3), its handler and a resolved port (named ports looked up in the
  container's ports).
- ResultTracker: the kubelet worker's counting — a result flips only after
  successThreshold consecutive successes or failureThreshold consecutive failures;
  readiness starts as failure, liveness as success, startup as failure.
- http_probe / tcp_probe: the checks (HTTP: any status 200–399 succeeds; redirects are
  not followed to other hosts — netd follows none, a 3xx is a success as kubelet counts
  it; TLS is not verified, like kubelet's insecure probe transport).
- ProbeWorker: the loop (initial delay, period, timeout) reporting result changes.
  The clock is injected so tests drive it without sleeping.
"""
from __future__ import annotations

import asyncio
import logging
import os
import ssl
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from netd.client.clock import Clock, RealClock

log = logging.getLogger("netd.node.probes")

Obj = dict[str, Any]

READINESS, LIVENESS, STARTUP = "readiness", "liveness", "startup"
USER_AGENT = "kube-probe/1.32"


@dataclass(frozen=True)
class ProbeSpec:
    kind: str                     # readiness | liveness | startup
    handler: str                  # httpGet | tcpSocket | exec | grpc
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3
    port: int = 0
    host: str = ""                # httpGet/tcpSocket host; "" = the pod IP
    path: str = "/"
    scheme: str = "HTTP"
    headers: tuple[tuple[str, str], ...] = ()
    command: tuple[str, ...] = ()
    termination_grace: float | None = None   # probe-level terminationGracePeriodSeconds

    @property
    def initial_result(self) -> bool:
        return self.kind == LIVENESS


def resolve_port(port: Any, container: Obj) -> int:
    """A probe's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    if isinstance(port, str):
        if port.isdigit():
            return int(port)
        for p in container.get("ports") or []:
            if isinstance(p, dict) and p.get("name") == port:
                return int(p.get("containerPort") or 0)
    return 0


def probe_spec(kind: str, probe: Obj, container: Obj) -> ProbeSpec:
    base: Obj = dict(
        kind=kind, handler="exec",
        initial_delay=float(probe.get("initialDelaySeconds") or 0),
        period=float(probe.get("periodSeconds") or 10),
        timeout=float(probe.get("timeoutSeconds") or 1),
        # Liveness and startup must have successThreshold 1 (validation enforces it).
        success_threshold=int(probe.get("successThreshold") or 1)
        if kind == READINESS else 1,
        failure_threshold=int(probe.get("failureThreshold") or 3),
        termination_grace=float(probe["terminationGracePeriodSeconds"])
        if isinstance(probe.get("terminationGracePeriodSeconds"), int) else None)
    if isinstance(probe.get("httpGet"), dict):
        h = probe["httpGet"]
        path = str(h.get("path") or "/")
        base.update(handler="httpGet", port=resolve_port(h.get("port"), container),
                    host=str(h.get("host") or ""),
                    path=path if path.startswith("/") else "/" + path,
                    scheme=str(h.get("scheme") or "HTTP").upper(),
                    headers=tuple((str(x.get("name", "")), str(x.get("value", "")))
                                  for x in h.get("httpHeaders") or [] if isinstance(x, dict)))
    elif isinstance(probe.get("tcpSocket"), dict):
        t = probe["tcpSocket"]
        base.update(handler="tcpSocket", port=resolve_port(t.get("port"), container),
                    host=str(t.get("host") or ""))
    elif isinstance(probe.get("grpc"), dict):
        base.update(handler="grpc", port=int(probe["grpc"].get("port") or 0))
    else:
        base.update(command=tuple(str(c) for c in
                                  (probe.get("exec") or {}).get("command") or []))
    return ProbeSpec(**base)


def container_probes(container: Obj) -> list[ProbeSpec]:
    out = []
    for kind, key in ((STARTUP, "startupProbe"), (LIVENESS, "livenessProbe"),
                      (READINESS, "readinessProbe")):
        if isinstance(container.get(key), dict):
            out.append(probe_spec(kind, container[key], container))
    return out


@dataclass
class ResultTracker:
    spec: ProbeSpec
    result: bool = field(init=False)
    _run: int = field(init=False, default=0)     # consecutive same outcomes
    _last: bool | None = field(init=False, default=None)
    # kubelet's startup worker starts at results.Unknown, not Failure: reaching the
    # failure threshold is a change it reports (and the container is killed), even
    # though `result` already read False. Without this a startup probe that never
    # succeeds would never restart its container.
    _known: bool = field(init=False, default=True)

    def __post_init__(self) -> None:
        self.reset()

    def record(self, ok: bool) -> bool:
        """Count one outcome; True when the result flipped (or, for a startup probe,
        first became known)."""
        self._run = self._run + 1 if ok == self._last else 1
        self._last = ok
        threshold = self.spec.success_threshold if ok else self.spec.failure_threshold
        if (ok != self.result or not self._known) and self._run >= threshold:
            self.result = ok
            self._known = True
            return True
        return False

    def reset(self) -> None:
        self.result = self.spec.initial_result
        self._known = self.spec.kind != STARTUP
        self._run = 0
        self._last = None


# ---- checks -------------------------------------------------------------------------

def _reason(exc: OSError) -> str:
    # Go prints the errno text ("connection refused"); asyncio wraps it in its own words.
    if exc.errno:
        return os.strerror(exc.errno).lower()
    return str(exc).lower()


async def tcp_probe(host: str, port: int, timeout: float) -> tuple[bool, str]:
    try:
        _, w = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except asyncio.TimeoutError:
        return False, f"dial tcp {host}:{port}: i/o timeout"
    except OSError as exc:
        return False, f"dial tcp {host}:{port}: connect: {_reason(exc)}"
    w.close()
    return True, ""


async def http_probe(spec: ProbeSpec, host: str) -> tuple[bool, str]:
    scheme = "https" if spec.scheme == "HTTPS" else "http"
    url = f"{scheme}://{host}:{spec.port}{spec.path}"

    async def run() -> tuple[bool, str]:
        ctx: ssl.SSLContext | None = None
        if scheme == "https":
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        r, w = await asyncio.open_connection(host, spec.port, ssl=ctx)
        try:
            names = {k.lower() for k, _ in spec.headers}
            lines = [f"GET {spec.path} HTTP/1.1"]
            if "host" not in names:
                lines.append(f"Host: {host}:{spec.port}")
            if "user-agent" not in names:
                lines.append(f"User-Agent: {USER_AGENT}")
            if "accept" not in names:
                lines.append("Accept: */*")
            lines += [f"{k}: {v}" for k, v in spec.headers]
            lines.append("Connection: close")
            w.write(("\r\n".join(lines) + "\r\n\r\n").encode())
            status_line = await r.readline()
        finally:
            w.close()
        parts = status_line.decode("latin-1").split()
        if len(parts) < 2 or not parts[1].isdigit():
            return False, f"Get \"{url}\": malformed HTTP response"
        code = int(parts[1])
        if 200 <= code < 400:
            return True, ""
        return False, f"HTTP probe failed with statuscode: {code}"

    try:
        return await asyncio.wait_for(run(), spec.timeout)
    except asyncio.TimeoutError:
        return False, (f"Get \"{url}\": context deadline exceeded (Client.Timeout exceeded "
                       f"while awaiting headers)")
    except OSError as exc:
        return False, f"Get \"{url}\": dial tcp {host}:{spec.port}: connect: {_reason(exc)}"


ExecFunc = Callable[[list[str], float], Awaitable[tuple[int, str]]]   # argv, timeout


async def run_probe(spec: ProbeSpec, pod_ip: str, exec_func: ExecFunc | None) -> tuple[bool, str]:
    host = spec.host or pod_ip
    if spec.handler == "httpGet":
        return await http_probe(spec, host)
    if spec.handler in ("tcpSocket", "grpc"):
        # grpc: a connection is the best netd can tell without a gRPC client.
        return await tcp_probe(host, spec.port, spec.timeout)
    if exec_func is None:
        return False, "exec probes are not available"
    try:
        code, output = await exec_func(list(spec.command), spec.timeout)
    except asyncio.TimeoutError:
        return False, f"command {list(spec.command)!r} timed out"
    except FileNotFoundError as exc:
        return False, f"OCI runtime exec failed: exec failed: unable to start container " \
            f"process: exec: \"{spec.command[0] if spec.command else ''}\": executable " \
            f"file not found in $PATH: {exc}"
    if code == 0:
        return True, ""
    return False, output or f"command {list(spec.command)!r} exited with {code}"


async def run_hook(hook: Obj, container: Obj, pod_ip: str, exec_func: ExecFunc | None,
                   pod_desc: str, timeout: float = 3600.0) -> str | None:
    """Run a lifecycle handler (postStart / preStop) as kubelet's HandlerRunner does;
    None on success, else the message kubelet puts in its FailedPostStartHook /
    FailedPreStopHook event. `pod_desc` is kubelet's format.Pod: name_namespace(uid)."""
    name = str(container.get("name") or "")
    if isinstance(hook.get("exec"), dict):
        argv = [str(a) for a in hook["exec"].get("command") or []]
        if exec_func is None:
            return "exec hooks are not available"
        try:
            code, output = await exec_func(argv, timeout)
        except asyncio.TimeoutError:
            err, code, output = f"command '{' '.join(argv)}' timed out", -1, ""
        except OSError as exc:
            err, code, output = str(exc), -1, ""
        else:
            err = f"command '{' '.join(argv)}' exited with {code}: {output}"
        if code == 0:
            return None
        return (f"Exec lifecycle hook ([{' '.join(argv)}]) for Container \"{name}\" in Pod "
                f"\"{pod_desc}\" failed - error: {err}, message: \"{output}\"")
    if isinstance(hook.get("httpGet"), dict):
        spec = probe_spec(READINESS, {"httpGet": hook["httpGet"],
                                      "timeoutSeconds": int(timeout)}, container)
        ok, message = await http_probe(spec, spec.host or pod_ip)
        # kubelet's hook client checks only that a response came: any status passes.
        if ok or message.startswith("HTTP probe failed with statuscode"):
            return None
        return (f"HTTP lifecycle hook ({spec.path}) for Container \"{name}\" in Pod "
                f"\"{pod_desc}\" failed - error: {message}")
    if isinstance(hook.get("sleep"), dict):
        await asyncio.sleep(float(hook["sleep"].get("seconds") or 0))
        return None
    if isinstance(hook.get("tcpSocket"), dict):
        # Deprecated and never run by kubelet (it only logs): accept it as a no-op.
        return None
    return f"Cannot run handler: invalid handler: {hook}"


OnChange = Callable[["ProbeWorker", bool, str], None]


class ProbeWorker:
    """Runs one probe of one container until stopped; calls on_change(worker, result,
    message) whenever the result flips (and on_failure-style events are the caller's)."""

    def __init__(self, spec: ProbeSpec, pod_ip: str, exec_func: ExecFunc | None,
                 on_change: OnChange, *, clock: Clock | None = None,
                 on_fail: Callable[["ProbeWorker", str], None] | None = None) -> None:
        self.spec = spec
        self.pod_ip = pod_ip
        self.exec_func = exec_func
        self.on_change = on_change
        self.on_fail = on_fail
        self.clock = clock or RealClock()
        self.tracker = ResultTracker(spec)
        self.task: asyncio.Task[None] | None = None
        self.last_message = ""

    @property
    def result(self) -> bool:
        return self.tracker.result

    def start(self, name: str = "") -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(
                self._loop(), name=name or f"probe:{self.spec.kind}")

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None

    async def probe_once(self) -> None:
        ok, message = await run_probe(self.spec, self.pod_ip, self.exec_func)
        self.last_message = message
        if not ok and self.on_fail is not None:
            self.on_fail(self, message)
        if self.tracker.record(ok):
            self.on_change(self, ok, message)

    async def _loop(self) -> None:
        await self.clock.sleep(self.spec.initial_delay)
        while True:
            try:
                await self.probe_once()
            except asyncio.CancelledError:
                raise
            except Exception:   # a broken probe must not end the container's watch
                log.exception("probe %s failed to run", self.spec.kind)
            await self.clock.sleep(self.spec.period)
