"""Pod lifecycle on real pods (issue 4 §4 and §6), driven by the real kubectl against a
real netd in netns mode (root): port-forward to built-in servers, command containers,
closed ports and Services; init containers (order, shared emptyDir, Init:Error /
Init:CrashLoopBackOff); preStop / postStart hooks and SIGKILL after the grace period;
startupProbe holding off liveness, restarting when it never succeeds; readiness
taking a pod out of its Service's Endpoints.

One cluster for the module: every test uses its own pod names and cleans them up."""
from __future__ import annotations

import json
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from tests.e2e.cluster import Cluster, alive, container_pid, new_cluster, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (real namespaces)")]

PY = sys.executable      # containers run host binaries: the interpreter running pytest
# The default ranges are the same for every netd cluster on the host: clusters of other
# test runs going on at the same time would take over the host routes to them (a pod IP
# then hits this cluster's blackhole: EINVAL). Ranges of its own keep this module apart.
RANGES = {"pod_cidr": "10.150.0.0/16", "service_cidr": "10.151.0.0/16",
          "dns_ip": "10.151.0.10", "node_network": "172.29.0.0/16"}


@pytest.fixture(scope="module")
def lc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = new_cluster(tmp_path_factory.mktemp("podlc"),
                    config={"node_mode": "netns", **RANGES}).start()
    try:
        yield c
    finally:
        code = c.stop()
        c.down()
        left = [ln for ln in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                            text=True).stdout.splitlines()
                if ln.startswith(c.name + "_")]
        assert not left, f"netd down left namespaces: {left}"
        assert code == 0, c.logs()


# ---- helpers ------------------------------------------------------------------------------

def apply(c: Cluster, *docs: dict[str, Any]) -> None:
    c.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))


def get(c: Cluster, kind: str, name: str) -> dict[str, Any] | None:
    r = c.kubectl("get", kind, name, "-o", "json", check=False)
    return json.loads(r.stdout) if r.returncode == 0 else None


def pod(c: Cluster, name: str) -> dict[str, Any]:
    p = get(c, "pod", name)
    assert p is not None, f"pod {name} not found"
    return p


def condition(p: dict[str, Any], type_: str) -> str:
    return next((x["status"] for x in p.get("status", {}).get("conditions", [])
                 if x["type"] == type_), "")


def ready(c: Cluster, name: str) -> bool:
    p = get(c, "pod", name)
    return p is not None and condition(p, "Ready") == "True"


def wait_ready(c: Cluster, *names: str, timeout: float = 60) -> None:
    """Wait for every pod to be Ready; on timeout, say what their status was."""
    try:
        wait_for(lambda: all(ready(c, n) for n in names), timeout,
                 what=f"{', '.join(names)} Ready")
    except AssertionError as exc:
        states = {n: (get(c, "pod", n) or {}).get("status") for n in names}
        raise AssertionError(f"{exc}\nstatus: {json.dumps(states, indent=1)}\n"
                             f"daemon log tail:\n{c.logs()[-3000:]}") from None


def cstatus(p: dict[str, Any], name: str, init: bool = False) -> dict[str, Any]:
    key = "initContainerStatuses" if init else "containerStatuses"
    return next((s for s in p.get("status", {}).get(key) or [] if s["name"] == name), {})


def status_column(c: Cluster, name: str) -> str:
    """The STATUS column `kubectl get pod` prints (server-side table)."""
    out = c.kubectl("get", "pod", name, "--no-headers").stdout.split()
    return out[2] if len(out) > 2 else ""


def delete_pods(c: Cluster, *names: str) -> None:
    c.kubectl("delete", "pod", *names, "--grace-period=0", "--ignore-not-found",
              "--wait=false")
    wait_for(lambda: all(get(c, "pod", n) is None for n in names), 60,
             what=f"pods {names} deleted")


def http_get(url: str, timeout: float = 5) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def builtin(name: str, port: int, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": "nginx", "ports": [{"containerPort": port}], **extra}


def pod_doc(name: str, containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"containers": containers, **spec}}


def events(c: Cluster, name: str) -> list[dict[str, Any]]:
    items = json.loads(c.kubectl("get", "events", "-o", "json").stdout)["items"]
    return [e for e in items if e["involvedObject"].get("name") == name]


def event_count(c: Cluster, name: str, reason: str, text: str) -> int:
    return sum(int(e.get("count") or 1) for e in events(c, name)
               if e.get("reason") == reason and text in e.get("message", ""))


# ---- port-forward -------------------------------------------------------------------------

FORWARD = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)")


class PortForward:
    """`kubectl port-forward --address 127.0.0.1 TARGET :P …` as a subprocess; local
    ports chosen by kubectl (port 0) and read back from its output."""

    def __init__(self, c: Cluster, target: str, *remote: int) -> None:
        self.proc = subprocess.Popen(
            [str(Path("/usr/bin/kubectl")), "port-forward", "--address", "127.0.0.1", target,
             *[f":{p}" for p in remote]],
            env=c.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out = b""
        self.err = b""
        self.sel = selectors.DefaultSelector()
        assert self.proc.stdout is not None and self.proc.stderr is not None
        for f in (self.proc.stdout, self.proc.stderr):
            os.set_blocking(f.fileno(), False)
            self.sel.register(f, selectors.EVENT_READ)
        self.local: dict[int, int] = {}
        wait_for(lambda: self._collect(len(remote)), 30, interval=0,
                 what=f"port-forward {target} to listen")

    def pump(self, wait: float = 0.1) -> None:
        for key, _ in self.sel.select(wait):
            data = key.fileobj.read()     # type: ignore[union-attr]
            if not data:
                self.sel.unregister(key.fileobj)
                continue
            if key.fileobj is self.proc.stdout:
                self.out += data
            else:
                self.err += data

    def _collect(self, n: int) -> bool:
        if self.proc.poll() is not None:
            self.pump(0)
            raise AssertionError(f"port-forward exited {self.proc.returncode}: "
                                 f"{self.out!r} {self.err!r}")
        self.pump()
        self.local = {int(r): int(lp) for lp, r in FORWARD.findall(self.out.decode())}
        return len(self.local) >= n

    def url(self, remote: int, path: str) -> str:
        return f"http://127.0.0.1:{self.local[remote]}{path}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        self.sel.close()
        for f in (self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()


FILE_SERVER = ("import http.server, functools, sys\n"
               "h = functools.partial(http.server.SimpleHTTPRequestHandler, directory='/srv')\n"
               "http.server.ThreadingHTTPServer(('', 9000), h).serve_forever()\n")


def test_port_forward_pod_and_service(lc: Cluster) -> None:
    c = lc
    apply(c, pod_doc("pf", [
        builtin("web", 8080),
        {"name": "files", "image": "python",
         "command": ["sh", "-c", f"echo served-by-process > /srv/f.txt; exec {PY} -c \"$0\"",
                     FILE_SERVER],
         "ports": [{"containerPort": 9000}],
         "readinessProbe": {"tcpSocket": {"port": 9000}, "periodSeconds": 1},
         "volumeMounts": [{"name": "srv", "mountPath": "/srv"}]}],
        volumes=[{"name": "srv", "emptyDir": {}}]),
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "pf"},
         "spec": {"selector": {"app": "pf"}, "ports": [{"port": 80, "targetPort": 8080}]}})
    try:
        wait_ready(c, "pf")
        pf = PortForward(c, "pod/pf", 8080, 9000, 9999)
        try:
            assert http_get(pf.url(8080, "/hostname")) == "pf"
            assert http_get(pf.url(9000, "/f.txt")) == "served-by-process\n"
            # Two connections at once: one held open mid-request while another is
            # served, then the first completes.
            with socket.create_connection(("127.0.0.1", pf.local[9000]), timeout=10) as s:
                s.sendall(b"GET /f.txt HTTP/1.0\r\n")
                with ThreadPoolExecutor(2) as pool:
                    got = list(pool.map(http_get, [pf.url(8080, "/echo?msg=a"),
                                                   pf.url(8080, "/hostname")]))
                assert got == ["a", "pf"]
                s.sendall(b"\r\n")
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
            assert data.startswith(b"HTTP/1.0 200") and data.endswith(b"\nserved-by-process\n")
            # Nothing listens on 9999 in the pod: that connection fails with the
            # kubelet's error text. kubectl >= 1.31 then closes its whole connection and
            # exits ("lost connection to pod", client-go portforward.handleConnection), so
            # this runs last; the forwards before it were unaffected.
            with pytest.raises(OSError):
                http_get(pf.url(9999, "/"), timeout=10)
            wait_for(lambda: (pf.pump(), pf.proc.poll() is not None)[1], 20,
                     what="kubectl to report the closed port")
            pf.pump(0)
            assert b"an error occurred forwarding" in pf.err.lower(), pf.err
            assert b"error forwarding port 9999 to pod pf" in pf.err, pf.err
            assert b"connect: connection refused" in pf.err, pf.err
            assert b"lost connection to pod" in pf.err, pf.err
        finally:
            pf.stop()
        # kubectl resolves the Service to one of its pods and the port to targetPort.
        sf = PortForward(c, "svc/pf", 80)
        try:
            assert sf.local, sf.out
            assert b"-> 8080" in sf.out
            assert http_get(f"http://127.0.0.1:{sf.local[8080]}/hostname") == "pf"
        finally:
            sf.stop()
    finally:
        c.kubectl("delete", "service", "pf", "--ignore-not-found")
        delete_pods(c, "pf")


# ---- init containers ----------------------------------------------------------------------

def test_init_containers_run_in_order_then_app_serves_their_file(lc: Cluster) -> None:
    c = lc
    mount = [{"name": "html", "mountPath": "/work"}]
    apply(c, pod_doc("init-ok", [
        builtin("web", 80, volumeMounts=[{"name": "html",
                                          "mountPath": "/usr/share/nginx/html"}])],
        initContainers=[
            {"name": "first", "image": "busybox", "volumeMounts": mount,
             "command": ["sh", "-c", "test ! -e /work/index.html && echo first > /work/order"]},
            {"name": "second", "image": "busybox", "volumeMounts": mount,
             "command": ["sh", "-c", "grep -q first /work/order && echo second >> /work/order"
                         " && cp /work/order /work/index.html"]}],
        volumes=[{"name": "html", "emptyDir": {}}]))
    try:
        wait_ready(c, "init-ok")
        p = pod(c, "init-ok")
        assert condition(p, "Initialized") == "True"
        first, second = (cstatus(p, n, init=True)["state"]["terminated"]
                         for n in ("first", "second"))
        assert (first["exitCode"], first["reason"]) == (0, "Completed")
        assert (second["exitCode"], second["reason"]) == (0, "Completed")
        assert second["startedAt"] >= first["finishedAt"]
        app = cstatus(p, "web")["state"]["running"]
        assert app["startedAt"] >= second["finishedAt"]
        assert http_get(f"http://{p['status']['podIP']}/") == "first\nsecond\n"
    finally:
        delete_pods(c, "init-ok")


def test_failing_init_container_backs_off(lc: Cluster) -> None:
    c = lc
    failing = {"name": "setup", "image": "busybox", "command": ["sh", "-c", "exit 3"]}
    apply(c, pod_doc("init-loop", [builtin("web", 80)], initContainers=[failing]),
          pod_doc("init-never", [builtin("web", 80)], initContainers=[failing],
                  restartPolicy="Never"))
    try:
        seen: set[str] = set()

        def looping() -> bool:
            seen.add(status_column(c, "init-loop"))
            return "Init:CrashLoopBackOff" in seen
        wait_for(looping, 60, interval=0.02, what="Init:CrashLoopBackOff")
        p = pod(c, "init-loop")
        assert p["status"]["phase"] == "Pending"
        assert condition(p, "Initialized") == "False"
        setup = cstatus(p, "setup", init=True)
        assert setup["restartCount"] >= 1
        assert setup["lastState"]["terminated"]["exitCode"] == 3
        assert setup["lastState"]["terminated"]["reason"] == "Error"
        assert setup["state"]["waiting"]["reason"] == "CrashLoopBackOff"
        assert cstatus(p, "web")["state"]["waiting"]["reason"] == "PodInitializing"
        assert seen <= {"Init:0/1", "Init:Error", "Init:CrashLoopBackOff", "PodInitializing"}, seen
        # restartPolicy Never: one try, the pod fails.
        wait_for(lambda: pod(c, "init-never")["status"]["phase"] == "Failed", 60,
                 what="init-never Failed")
        assert status_column(c, "init-never") == "Init:Error"
        never = cstatus(pod(c, "init-never"), "setup", init=True)
        assert never["restartCount"] == 0
        assert never["state"]["terminated"]["exitCode"] == 3
    finally:
        delete_pods(c, "init-loop", "init-never")


# ---- hooks and termination ----------------------------------------------------------------

HOOK_SERVER = (
    "import http.server, signal, sys\n"
    "log = open('/mark/http.log', 'a', buffering=1)\n"
    "def term(*_):\n"
    "    log.write('term\\n'); sys.exit(0)\n"
    "signal.signal(signal.SIGTERM, term)\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        log.write('get ' + self.path + '\\n')\n"
    "        self.send_response(200); self.end_headers(); self.wfile.write(b'ok')\n"
    "    def log_message(self, *a): pass\n"
    "http.server.HTTPServer(('', 9000), H).serve_forever()\n")


def lines(path: Path) -> list[str]:
    try:
        return path.read_text().split()
    except FileNotFoundError:
        return []


def test_prestop_and_poststart_hooks_run_around_sigterm(lc: Cluster, tmp_path: Path) -> None:
    c = lc
    mark = tmp_path / "mark"
    mark.mkdir()
    vol = [{"name": "mark", "hostPath": {"path": str(mark), "type": "Directory"}}]
    mount = [{"name": "mark", "mountPath": "/mark"}]
    trap = ("trap 'echo term >> /mark/exec.log; exit 0' TERM; "
            "while true; do sleep 0.1; done")
    apply(c, pod_doc("hook-exec", [{
        "name": "main", "image": "busybox", "command": ["sh", "-c", trap],
        "volumeMounts": mount,
        "lifecycle": {
            "postStart": {"exec": {"command": ["sh", "-c", "echo poststart >> /mark/exec.log"]}},
            "preStop": {"exec": {"command": ["sh", "-c", "echo prestop >> /mark/exec.log"]}}}}],
        volumes=vol),
        pod_doc("hook-http", [{
            "name": "main", "image": "python", "command": [PY, "-c", HOOK_SERVER],
            "ports": [{"containerPort": 9000}], "volumeMounts": mount,
            "readinessProbe": {"tcpSocket": {"port": 9000}, "periodSeconds": 1},
            "lifecycle": {"preStop": {"httpGet": {"path": "/prestop", "port": 9000}}}}],
            volumes=vol))
    try:
        wait_ready(c, "hook-exec", "hook-http")
        # postStart ran before the container was reported running.
        assert lines(mark / "exec.log") == ["poststart"]
        c.kubectl("delete", "pod", "hook-exec", "hook-http", "--grace-period=10")
        assert lines(mark / "exec.log") == ["poststart", "prestop", "term"]
        assert lines(mark / "http.log")[-3:] == ["get", "/prestop", "term"]
    finally:
        delete_pods(c, "hook-exec", "hook-http")


def test_failed_poststart_kills_the_container(lc: Cluster) -> None:
    c = lc
    apply(c, pod_doc("hook-fail", [{
        "name": "main", "image": "busybox", "command": ["sleep", "3600"],
        "lifecycle": {"postStart": {"exec": {"command": ["sh", "-c", "exit 7"]}}}}]))
    try:
        wait_for(lambda: cstatus(pod(c, "hook-fail"), "main").get("restartCount", 0) >= 1,
                 60, what="the container killed for its postStart hook and restarted")
        assert event_count(c, "hook-fail", "FailedPostStartHook", "") >= 1
        assert not ready(c, "hook-fail")
    finally:
        delete_pods(c, "hook-fail")


def test_sigterm_ignored_is_sigkilled_after_the_grace_period(lc: Cluster) -> None:
    c = lc
    apply(c, pod_doc("stubborn", [{
        "name": "main", "image": "busybox",
        "command": ["sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"]}],
        terminationGracePeriodSeconds=2))
    try:
        wait_ready(c, "stubborn")
        uid = pod(c, "stubborn")["metadata"]["uid"]
        pid = container_pid(c, uid, "main")
        assert alive(pid)
        assert (c.root / "pods" / uid).is_dir()
        t0 = time.monotonic()
        c.kubectl("delete", "pod", "stubborn", "--wait=false")
        # SIGTERM was ignored: the pod is still terminating, its process alive.
        p = get(c, "pod", "stubborn")
        assert p is not None and p["metadata"].get("deletionTimestamp")
        assert alive(pid)
        wait_for(lambda: get(c, "pod", "stubborn") is None, 30, what="stubborn deleted")
        assert time.monotonic() - t0 >= 1.5, "deleted before the grace period ran out"
        assert not alive(pid), "the process must be SIGKILLed after the grace period"
        # Its logs, volumes and state go with the object (kubelet's cleanupOrphanedPodDirs).
        wait_for(lambda: not (c.root / "pods" / uid).exists(), 10,
                 what="the pod directory removed")
    finally:
        delete_pods(c, "stubborn")


# ---- probes -------------------------------------------------------------------------------

def exec_probe(path: str, **extra: Any) -> dict[str, Any]:
    return {"exec": {"command": ["test", "-f", path]}, "periodSeconds": 1, **extra}


def test_startup_probe_holds_off_liveness_then_liveness_restarts(lc: Cluster) -> None:
    c = lc
    apply(c, pod_doc("slow", [builtin(
        "web", 80, volumeMounts=[{"name": "d", "mountPath": "/d"}],
        startupProbe=exec_probe("/d/started", failureThreshold=60),
        livenessProbe=exec_probe("/d/alive", failureThreshold=1))],
        volumes=[{"name": "d", "emptyDir": {}}]))
    try:
        # Liveness (threshold 1, period 1) would fail at once: it must not run while
        # the startup probe has not succeeded.
        wait_for(lambda: event_count(c, "slow", "Unhealthy", "Startup probe failed") >= 3,
                 30, what="three startup probe failures")
        p = pod(c, "slow")
        web = cstatus(p, "web")
        assert web["restartCount"] == 0 and web["started"] is False, web
        assert condition(p, "Ready") == "False"
        assert event_count(c, "slow", "Unhealthy", "Liveness probe failed") == 0
        c.kubectl("exec", "slow", "--", "touch", "/d/alive", "/d/started")
        wait_for(lambda: ready(c, "slow"), 30, what="slow Ready after startup")
        assert cstatus(pod(c, "slow"), "web")["started"] is True
        c.kubectl("exec", "slow", "--", "rm", "/d/alive")
        wait_for(lambda: cstatus(pod(c, "slow"), "web")["restartCount"] >= 1, 30,
                 what="liveness failure to restart the container")
        assert event_count(c, "slow", "Killing", "failed liveness probe") >= 1
    finally:
        delete_pods(c, "slow")


def test_startup_probe_that_never_succeeds_restarts(lc: Cluster) -> None:
    c = lc
    apply(c, pod_doc("never-starts", [builtin(
        "web", 80, startupProbe={"exec": {"command": ["false"]}, "periodSeconds": 1,
                                 "failureThreshold": 2})]))
    try:
        wait_for(lambda: cstatus(pod(c, "never-starts"), "web").get("restartCount", 0) >= 1,
                 30, what="a restart after failureThreshold x periodSeconds")
        web = cstatus(pod(c, "never-starts"), "web")
        assert web["lastState"]["terminated"]["exitCode"] == 137
        assert not web["ready"]
        assert event_count(c, "never-starts", "Killing", "failed startup probe") >= 1
    finally:
        delete_pods(c, "never-starts")


def endpoint_ips(c: Cluster, name: str) -> list[str]:
    ep = get(c, "endpoints", name) or {}
    return sorted(a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or [])


def test_readiness_moves_pod_in_and_out_of_endpoints(lc: Cluster) -> None:
    c = lc
    apply(c, pod_doc("rdy", [builtin(
        "web", 80, volumeMounts=[{"name": "d", "mountPath": "/d"}],
        readinessProbe=exec_probe("/d/ready"))], volumes=[{"name": "d", "emptyDir": {}}]),
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "rdy"},
         "spec": {"selector": {"app": "rdy"}, "ports": [{"port": 80}]}})
    try:
        wait_for(lambda: pod(c, "rdy")["status"].get("phase") == "Running", 60,
                 what="rdy Running")
        ip = pod(c, "rdy")["status"]["podIP"]
        wait_for(lambda: event_count(c, "rdy", "Unhealthy", "Readiness probe failed") >= 1,
                 30, what="a readiness failure")
        assert endpoint_ips(c, "rdy") == []
        c.kubectl("exec", "rdy", "--", "touch", "/d/ready")
        wait_for(lambda: endpoint_ips(c, "rdy") == [ip], 30, what="rdy in the Endpoints")
        assert ready(c, "rdy")
        assert "1/1" in c.kubectl("get", "pod", "rdy", "--no-headers").stdout
        c.kubectl("exec", "rdy", "--", "rm", "/d/ready")
        wait_for(lambda: endpoint_ips(c, "rdy") == [], 30, what="rdy out of the Endpoints")
        assert condition(pod(c, "rdy"), "Ready") == "False"
        assert cstatus(pod(c, "rdy"), "web")["restartCount"] == 0
    finally:
        c.kubectl("delete", "service", "rdy", "--ignore-not-found")
        delete_pods(c, "rdy")
