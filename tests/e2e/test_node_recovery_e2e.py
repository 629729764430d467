"""Cleanup and recovery of real pods (issue 4, section 7), as a user would hit them:
a daemon killed with SIGKILL and restarted, a pod namespace deleted behind netd's back,
and `netd down` leaving nothing (root)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.cluster import (Cluster, alive, container_pid, new_cluster,
                               sandbox_helpers, wait_for)

pytestmark = [pytest.mark.e2e, pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (real namespaces)")]

PODS = """\
apiVersion: v1
kind: Pod
metadata: {name: sleeper}
spec:
  containers:
  - {name: main, image: busybox, command: [sleep, "3600"]}
---
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  containers:
  - name: nginx
    image: nginx
    ports: [{containerPort: 80}]
"""


def pod(c: Cluster, name: str) -> dict:
    return json.loads(c.kubectl("get", "pod", name, "-o", "json").stdout)


def ready(c: Cluster, name: str) -> bool:
    got = c.kubectl("get", "pod", name, "-o", "json", check=False)
    if got.returncode != 0:
        return False
    return any(x["type"] == "Ready" and x["status"] == "True"
               for x in json.loads(got.stdout).get("status", {}).get("conditions", []))


def cluster_netns(c: Cluster) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [ln.split()[0] for ln in out.splitlines() if ln.startswith(c.name + "_")]


def test_sigkill_restart_adopts_then_down_removes_everything(tmp_path: Path) -> None:
    c = new_cluster(tmp_path, config={"node_mode": "netns"}).start()
    try:
        c.kubectl("apply", "-f", "-", input=PODS)
        wait_for(lambda: ready(c, "sleeper") and ready(c, "web"), 60, what="pods Ready")
        before = {n: pod(c, n) for n in ("sleeper", "web")}
        pid = container_pid(c, before["sleeper"]["metadata"]["uid"], "main")
        assert alive(pid)
        assert c.proc is not None
        [helper] = sandbox_helpers(c.proc.pid)
        os.kill(c.proc.pid, signal.SIGKILL)
        c.proc.wait(timeout=10)
        c.proc = None
        assert alive(pid), "a daemon crash must not take the pods' processes with it"
        wait_for(lambda: not alive(helper), 10, what="the sandbox helper gone with the daemon")
        # A process in the pod that no record names (as one started the moment before
        # the crash would be): adoption must not leave it running beside the container.
        stray = subprocess.Popen(["ip", "netns", "exec", f"{c.name}_default_sleeper",
                                  "sleep", "3600"], start_new_session=True)
        c.start()
        wait_for(lambda: ready(c, "sleeper") and ready(c, "web"), 60, what="pods adopted")
        wait_for(lambda: stray.poll() is not None, 30, what="the unrecorded process killed")
        after = {n: pod(c, n) for n in ("sleeper", "web")}
        for n in ("sleeper", "web"):
            assert after[n]["status"]["podIP"] == before[n]["status"]["podIP"], n
        main = after["sleeper"]["status"]["containerStatuses"][0]
        assert main["restartCount"] == 0
        assert container_pid(c, after["sleeper"]["metadata"]["uid"], "main") == pid
        with urllib.request.urlopen(f"http://{after['web']['status']['podIP']}/hostname",
                                    timeout=5) as r:
            assert r.read() == b"web"
        late = subprocess.Popen(["ip", "netns", "exec", f"{c.name}_default_web",
                                 "sleep", "3600"], start_new_session=True)
        # Adoption makes no sandbox; a new pod starts a new helper.
        c.kubectl("run", "extra", "--image=nginx", "--port=80")
        wait_for(lambda: ready(c, "extra"), 60, what="a pod made after the restart")
        assert c.proc is not None
        helpers = sandbox_helpers(c.proc.pid)
        assert len(helpers) == 1 and helper not in helpers
    finally:
        c.stop()
        c.down()
    assert not any(alive(h) for h in helpers), "a stopped daemon leaves no sandbox helper"
    assert not cluster_netns(c)
    assert not alive(pid), "netd down must stop the pods' processes"
    assert late.wait(timeout=10) == -signal.SIGKILL, "netd down must stop what no record names"


def test_pod_namespace_deleted_behind_netds_back_is_rebuilt(tmp_path: Path) -> None:
    c = new_cluster(tmp_path, config={"node_mode": "netns"}).start()
    try:
        c.kubectl("apply", "-f", "-", input=PODS)
        wait_for(lambda: ready(c, "web"), 60, what="web Ready")
        subprocess.run(["ip", "netns", "delete", f"{c.name}_default_web"], check=True)

        def rebuilt() -> bool:
            p = pod(c, "web")
            statuses = p["status"].get("containerStatuses") or [{}]
            return ready(c, "web") and statuses[0].get("restartCount", 0) >= 1
        wait_for(rebuilt, 60, what="the sandbox to be rebuilt and the pod restarted")
        ip = pod(c, "web")["status"]["podIP"]
        with urllib.request.urlopen(f"http://{ip}/hostname", timeout=5) as r:
            assert r.read() == b"web"
    finally:
        c.stop()
        c.down()
    assert not cluster_netns(c)
