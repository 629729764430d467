"""Deployment rollouts driven by the real kubectl against `netd up` with simulated
nodes (pods become Running/Ready without kernel objects): rollout status, set image,
history, undo, scale, pause/resume and restart read as on a real cluster."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.e2e.cluster import Cluster, new_cluster, wait_for

pytestmark = pytest.mark.e2e

DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations: {kubernetes.io/change-cause: "first"}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  strategy:
    rollingUpdate: {maxSurge: 1, maxUnavailable: 1}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        ports: [{containerPort: 80}]
"""


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("netd")
    config = tmp / "netd.yaml"
    config.write_text("node_mode: simulated\n")
    c = new_cluster(tmp, "--config", str(config)).start()
    try:
        yield c
    finally:
        code = c.stop()
        assert code == 0, f"netd up exited with {code} on SIGTERM:\n{c.logs()}"


def rollout_status(c: Cluster) -> str:
    out = c.kubectl("rollout", "status", "deployment/web", "--timeout=90s", timeout=120).stdout
    assert out.strip().endswith('deployment "web" successfully rolled out'), out
    return out


def live_pods(c: Cluster) -> list[dict[str, Any]]:
    doc = json.loads(c.kubectl("get", "pods", "-l", "app=web", "-o", "json").stdout)
    return [p for p in doc["items"] if not p["metadata"].get("deletionTimestamp")]


def pod_images(c: Cluster) -> set[str]:
    return {p["spec"]["containers"][0]["image"] for p in live_pods(c)}


def replicasets(c: Cluster) -> list[dict[str, Any]]:
    doc = json.loads(c.kubectl("get", "rs", "-l", "app=web", "-o", "json").stdout)
    items: list[dict[str, Any]] = doc["items"]
    return sorted(items, key=lambda rs: int(
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]))


def history_revisions(c: Cluster) -> list[str]:
    out = c.kubectl("rollout", "history", "deployment/web").stdout.splitlines()
    # deployment.apps/web \n REVISION  CHANGE-CAUSE \n 1  first ...
    assert out[0].strip() == "deployment.apps/web", out
    assert out[1].split() == ["REVISION", "CHANGE-CAUSE"], out
    return [line.split()[0] for line in out[2:] if line.strip()]


def settled_on(c: Cluster, image: str, replicas: int) -> bool:
    pods = live_pods(c)
    return len(pods) == replicas and {p["spec"]["containers"][0]["image"]
                                      for p in pods} == {image}


def test_deployment_lifecycle(sim: Cluster, tmp_path: Path) -> None:
    manifest = tmp_path / "web.yaml"
    manifest.write_text(DEPLOY)
    assert sim.kubectl("apply", "-f", str(manifest)).stdout.strip() == \
        "deployment.apps/web created"
    rollout_status(sim)
    pods = live_pods(sim)
    assert len(pods) == 3
    assert all(p["status"]["phase"] == "Running" for p in pods)
    [rs1] = replicasets(sim)
    hash1 = rs1["metadata"]["labels"]["pod-template-hash"]
    assert rs1["metadata"]["name"] == f"web-{hash1}"
    assert all(p["metadata"]["name"].startswith(f"web-{hash1}-") for p in pods)

    # set image: a rolling update to revision 2.
    sim.kubectl("set", "image", "deployment/web", "web=nginx:1.26")
    rollout_status(sim)
    wait_for(lambda: settled_on(sim, "nginx:1.26", 3), 60, what="pods on nginx:1.26")
    assert history_revisions(sim) == ["1", "2"]
    d = json.loads(sim.kubectl("get", "deployment", "web", "-o", "json").stdout)
    st = d["status"]
    assert st["observedGeneration"] == d["metadata"]["generation"]
    assert st["updatedReplicas"] == st["replicas"] == st["availableReplicas"] == 3
    events = sim.kubectl("get", "events", "--field-selector",
                         "involvedObject.kind=Deployment", "-o", "json").stdout
    assert "ScalingReplicaSet" in events

    # undo: kubectl copies revision 1's template back; that ReplicaSet becomes revision 3.
    out = sim.kubectl("rollout", "undo", "deployment/web").stdout
    assert out.strip() == "deployment.apps/web rolled back"
    rollout_status(sim)
    wait_for(lambda: settled_on(sim, "nginx:1.25", 3), 60, what="pods back on nginx:1.25")
    assert history_revisions(sim) == ["2", "3"]
    assert replicasets(sim)[-1]["metadata"]["name"] == f"web-{hash1}"

    # scale
    sim.kubectl("scale", "deployment/web", "--replicas=5")
    rollout_status(sim)
    wait_for(lambda: settled_on(sim, "nginx:1.25", 5), 60, what="5 pods")

    # pause: a template change is recorded but not rolled out until resume.
    sim.kubectl("rollout", "pause", "deployment/web")
    sim.kubectl("set", "image", "deployment/web", "web=nginx:1.27")
    wait_for(lambda: json.loads(sim.kubectl("get", "deployment", "web", "-o", "json").stdout)
             ["status"].get("observedGeneration") ==
             json.loads(sim.kubectl("get", "deployment", "web", "-o", "json").stdout)
             ["metadata"]["generation"], 30, what="paused generation observed")
    assert len(replicasets(sim)) == 2
    assert pod_images(sim) == {"nginx:1.25"}
    sim.kubectl("rollout", "resume", "deployment/web")
    rollout_status(sim)
    wait_for(lambda: settled_on(sim, "nginx:1.27", 5), 60, what="pods on nginx:1.27")

    # restart: a template annotation, hence a new revision with the same image.
    before = {p["metadata"]["name"] for p in live_pods(sim)}
    sim.kubectl("rollout", "restart", "deployment/web")
    rollout_status(sim)
    wait_for(lambda: settled_on(sim, "nginx:1.27", 5) and
             not ({p["metadata"]["name"] for p in live_pods(sim)} & before),
             60, what="every pod replaced")
    assert history_revisions(sim)[-1] == "5"
