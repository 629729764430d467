"""The StatefulSet seeds end to end: `netd up` with simulated nodes, driven by the real
kubectl exactly as the sessions drive a cluster.

- seed 001 ("Statefulset 和 Operator"): PVs + headless Service + StatefulSet myapp with a
  volumeClaimTemplate; `kubectl get pods -w` sees myapp-0 Running before myapp-1 appears;
  scale to 4 (scale and patch), to 1, back to 3 with the PVCs kept; the partition canary
  (partition 2 + set image → only ordinals ≥ 2 on v2), partition 0 → all; rollout
  status/history/undo.
- seed 004 (headless Service nginx + StatefulSet web): web-1 stays absent/Pending until
  web-0 is Running and Ready.
- a DaemonSet on the 3-node configuration: one pod per node, rolling update, history, undo.

Needs `netd up` to run the workload controllers (netd.controllers.manager.CONTROLLERS),
the simulated node agents and the default StorageClass.
"""
from __future__ import annotations

import subprocess
import threading
from typing import Iterator

import pytest

from tests.e2e.cluster import EXAMPLES, Cluster, new_cluster, wait_for

IMAGE_PATH = "{range .items[*]}{.metadata.name}={.spec.containers[0].image}{\"\\n\"}{end}"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    state = tmp_path_factory.mktemp("netd-sts")
    config = state / "netd.yaml"
    config.write_text("node_mode: simulated\nnodes: [node-1, node-2, node-3]\n")
    c = new_cluster(state, "--config", str(config)).start()
    try:
        wait_for(lambda: len(c.kubectl("get", "nodes", "-o", "name").stdout.split()) == 3, 30,
                 what="the simulated nodes to register")
        yield c
    finally:
        code = c.stop()
        assert code == 0, f"netd up exited with {code} on SIGTERM:\n{c.logs()}"


class Watch:
    """`kubectl get pods -w` in the background, its lines collected as they come."""

    def __init__(self, cluster: Cluster, *args: str) -> None:
        import shutil
        kubectl = shutil.which("kubectl")
        assert kubectl
        self.proc = subprocess.Popen([kubectl, "get", "pods", "-w", *args], env=cluster.env(),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def rows(self) -> list[list[str]]:
        return [line.split() for line in list(self.lines) if line and not line.startswith("NAME")]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._reader.join(timeout=10)


def first_row(rows: list[list[str]], pred: object) -> int:
    for i, row in enumerate(rows):
        if pred(row):  # type: ignore[operator]
            return i
    return -1


def assert_ordered(watch: Watch, first: str, second: str) -> None:
    """`second` shows up only after `first` was seen Running and Ready (1/1)."""
    rows = watch.rows()
    ready = first_row(rows, lambda r: r[0] == first and r[1] == "1/1" and r[2] == "Running")
    appears = first_row(rows, lambda r: r[0] == second)
    assert ready >= 0 and appears >= 0, "\n".join(watch.lines)
    assert ready < appears, "\n".join(watch.lines)


def images(c: Cluster, selector: str) -> dict[str, str]:
    out = c.kubectl("get", "pods", "-l", selector, "-o", f"jsonpath={IMAGE_PATH}").stdout
    return dict(line.split("=", 1) for line in out.split())


def running(c: Cluster, selector: str) -> list[str]:
    out = c.kubectl("get", "pods", "-l", selector, "-o",
                    "jsonpath={range .items[*]}{.metadata.name}:{.status.phase}:"
                    "{.metadata.deletionTimestamp}{\"\\n\"}{end}").stdout
    names = []
    for line in out.split():
        name, phase, deleting = (line.split(":", 2) + [""])[:3]
        if phase == "Running" and not deleting:
            names.append(name)
    return sorted(names)


def pvc_uids(c: Cluster) -> dict[str, str]:
    out = c.kubectl("get", "pvc", "-o",
                    "jsonpath={range .items[*]}{.metadata.name}={.metadata.uid}{\"\\n\"}{end}"
                    ).stdout
    return dict(line.split("=", 1) for line in out.split())


def test_seed001_statefulset_myapp(sim: Cluster) -> None:
    c = sim
    c.kubectl("apply", "-f", str(EXAMPLES / "seed001-pv.yaml"))
    watch = Watch(c)
    try:
        c.kubectl("apply", "-f", str(EXAMPLES / "seed001-statefulset.yaml"))
        c.kubectl("rollout", "status", "sts/myapp", "--timeout=60s", timeout=90)
        wait_for(lambda: any(r[0] == "myapp-2" and r[2] == "Running" for r in watch.rows()),
                 30, what="the watch to see myapp-2 Running")
    finally:
        watch.stop()
    assert_ordered(watch, "myapp-0", "myapp-1")
    assert_ordered(watch, "myapp-1", "myapp-2")
    assert c.kubectl("get", "sts", "myapp", "--no-headers").stdout.split()[1] == "3/3"
    svc = c.kubectl("get", "svc", "myapp").stdout
    assert "None" in svc
    claims = pvc_uids(c)
    assert set(claims) == {f"myappdata-myapp-{i}" for i in range(3)}
    hostname = c.kubectl("get", "pod", "myapp-1", "-o",
                         "jsonpath={.spec.hostname}.{.spec.subdomain}").stdout
    assert hostname == "myapp-1.myapp"

    # Scale up twice as the seed does (the second is a no-op), down to 1, back to 3.
    c.kubectl("scale", "sts", "myapp", "--replicas=4")
    c.kubectl("patch", "sts", "myapp", "-p", '{"spec":{"replicas":4}}')
    wait_for(lambda: running(c, "app=myapp-pod") == [f"myapp-{i}" for i in range(4)], 60,
             what="4 running replicas")
    claims = pvc_uids(c)
    assert len(claims) == 4
    c.kubectl("scale", "sts", "myapp", "--replicas=1")
    wait_for(lambda: c.kubectl("get", "pods", "-l", "app=myapp-pod", "-o", "name").stdout.split()
             == ["pod/myapp-0"], 60, what="scale down to myapp-0")
    assert pvc_uids(c) == claims, "scale-down keeps the claims"
    c.kubectl("scale", "sts", "myapp", "--replicas=3")
    wait_for(lambda: running(c, "app=myapp-pod") == [f"myapp-{i}" for i in range(3)], 60,
             what="back to 3 replicas")
    assert pvc_uids(c) == claims, "scale-up reuses the same claims"
    claim = c.kubectl("get", "pod", "myapp-2", "-o",
                      "jsonpath={.spec.volumes[?(@.name=='myappdata')].persistentVolumeClaim"
                      ".claimName}").stdout
    assert claim == "myappdata-myapp-2"

    # The canary: partition 2 keeps ordinals 0 and 1 on v1.
    c.kubectl("scale", "sts", "myapp", "--replicas=4")
    c.kubectl("rollout", "status", "sts/myapp", "--timeout=60s", timeout=90)
    assert "Update Strategy:    RollingUpdate" in c.kubectl("describe", "sts", "myapp").stdout
    c.kubectl("patch", "sts", "myapp", "-p",
              '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":2}}}}')
    c.kubectl("set", "image", "sts/myapp", "myapp=ikubernetes/myapp:v2")
    status = c.kubectl("rollout", "status", "sts/myapp", "--timeout=60s", timeout=90).stdout
    assert "partitioned roll out complete: 2 new pods have been updated" in status
    assert images(c, "app=myapp-pod") == {
        "myapp-0": "ikubernetes/myapp:v1", "myapp-1": "ikubernetes/myapp:v1",
        "myapp-2": "ikubernetes/myapp:v2", "myapp-3": "ikubernetes/myapp:v2"}
    wide = c.kubectl("get", "sts", "-o", "wide").stdout
    assert "ikubernetes/myapp:v2" in wide and "4/4" in wide

    c.kubectl("patch", "sts", "myapp", "-p",
              '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}')
    c.kubectl("rollout", "status", "sts/myapp", "--timeout=60s", timeout=90)
    wait_for(lambda: set(images(c, "app=myapp-pod").values()) == {"ikubernetes/myapp:v2"}, 60,
             what="every pod on v2")

    history = c.kubectl("rollout", "history", "sts/myapp").stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]
    c.kubectl("rollout", "undo", "sts/myapp")
    wait_for(lambda: set(images(c, "app=myapp-pod").values()) == {"ikubernetes/myapp:v1"}
             and len(running(c, "app=myapp-pod")) == 4, 90, what="the rollback to v1")
    events = c.kubectl("get", "events", "--field-selector", "involvedObject.name=myapp").stdout
    assert "create Pod myapp-0 in StatefulSet myapp successful" in events
    assert "create Claim myappdata-myapp-0 Pod myapp-0 in StatefulSet myapp success" in events


def test_seed004_web_waits_for_web0(sim: Cluster) -> None:
    c = sim
    watch = Watch(c, "-l", "app=nginx")
    try:
        c.kubectl("create", "-f", str(EXAMPLES / "seed004-web.yaml"))
        c.kubectl("rollout", "status", "sts/web", "--timeout=60s", timeout=90)
        wait_for(lambda: any(r[0] == "web-1" and r[2] == "Running" for r in watch.rows()), 30,
                 what="the watch to see web-1 Running")
    finally:
        watch.stop()
    assert_ordered(watch, "web-0", "web-1")
    for i in range(2):
        out = c.kubectl("get", "pod", f"web-{i}", "-o",
                        "jsonpath={.spec.hostname} {.spec.subdomain}").stdout
        assert out == f"web-{i} nginx"
    events = c.kubectl("describe", "sts", "web").stdout
    assert "create Pod web-0 in StatefulSet web successful" in events


DAEMONSET = """
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}
    spec:
      containers:
      - name: agent
        image: agent:1
"""


def test_daemonset_one_pod_per_node(sim: Cluster) -> None:
    c = sim
    c.kubectl("apply", "-f", "-", input=DAEMONSET)
    c.kubectl("rollout", "status", "ds/agent", "--timeout=60s", timeout=90)
    nodes = c.kubectl("get", "pods", "-l", "app=agent", "-o",
                      "jsonpath={range .items[*]}{.spec.nodeName}{\"\\n\"}{end}").stdout.split()
    assert sorted(nodes) == ["node-1", "node-2", "node-3"]
    row = c.kubectl("get", "ds", "agent", "--no-headers").stdout.split()
    assert row[1:6] == ["3", "3", "3", "3", "3"]  # DESIRED CURRENT READY UP-TO-DATE AVAILABLE
    c.kubectl("set", "image", "ds/agent", "agent=agent:2")
    out = c.kubectl("rollout", "status", "ds/agent", "--timeout=60s", timeout=90).stdout
    assert 'daemon set "agent" successfully rolled out' in out
    wait_for(lambda: set(images(c, "app=agent").values()) == {"agent:2"}
             and len(running(c, "app=agent")) == 3, 60, what="every daemon pod on agent:2")
    history = c.kubectl("rollout", "history", "ds/agent").stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]
    c.kubectl("rollout", "undo", "ds/agent")
    wait_for(lambda: set(images(c, "app=agent").values()) == {"agent:1"}
             and len(running(c, "app=agent")) == 3, 60, what="the rollback to agent:1")
