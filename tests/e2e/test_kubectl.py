"""The real kubectl drives netd unchanged (issue 2, section 7)."""
from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pytest
import yaml

from tests.e2e.cluster import EXAMPLES, Cluster, wait_for

pytestmark = pytest.mark.e2e

DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        ports: [{{containerPort: 80, name: http}}]
"""


def write(tmp: Path, name: str, text: str) -> str:
    p = tmp / name
    p.write_text(text)
    return str(p)


def test_create_and_get_seed_pvs(cluster: Cluster) -> None:
    out = cluster.kubectl("create", "-f", str(EXAMPLES / "seed001-pv.yaml")).stdout
    assert out.split("\n")[:3] == ["persistentvolume/pv001 created",
                                   "persistentvolume/pv002 created",
                                   "persistentvolume/pv003 created"]
    table = cluster.kubectl("get", "pv").stdout.splitlines()
    assert table[0].split()[:4] == ["NAME", "CAPACITY", "ACCESS", "MODES"]
    assert [line.split()[0] for line in table[1:]] == ["pv001", "pv002", "pv003"]
    assert "RWO,RWX" in table[1] and "Retain" in table[1]
    again = cluster.kubectl("create", "-f", str(EXAMPLES / "seed001-pv.yaml"), check=False)
    assert again.returncode != 0
    assert 'persistentvolumes "pv001" already exists' in again.stderr


def test_apply_twice_is_unchanged_then_configured(cluster: Cluster, tmp_path: Path) -> None:
    f = write(tmp_path, "d.yaml", DEPLOY.format(name="applied"))
    assert cluster.kubectl("apply", "-f", f).stdout.strip() == \
        "deployment.apps/applied created"
    assert cluster.kubectl("apply", "-f", f).stdout.strip() == \
        "deployment.apps/applied unchanged"
    f2 = write(tmp_path, "d2.yaml", DEPLOY.format(name="applied").replace("replicas: 2",
                                                                         "replicas: 3"))
    assert cluster.kubectl("apply", "-f", f2).stdout.strip() == \
        "deployment.apps/applied configured"
    got = json.loads(cluster.kubectl("get", "deploy", "applied", "-o", "json").stdout)
    assert got["spec"]["replicas"] == 3
    assert got["metadata"]["generation"] == 2
    # Fields netd does not interpret round-trip, defaults are filled in.
    c = got["spec"]["template"]["spec"]["containers"][0]
    assert c["ports"] == [{"containerPort": 80, "name": "http", "protocol": "TCP"}]
    assert got["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%",
                                                        "maxUnavailable": "25%"}


def test_get_output_formats_and_selectors(cluster: Cluster, tmp_path: Path) -> None:
    cluster.kubectl("create", "namespace", "fmt")
    for name, app in (("a1", "a"), ("a2", "a"), ("b1", "b")):
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": "fmt", "labels": {"app": app}},
               "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
        cluster.kubectl("create", "-f", "-", input=json.dumps(pod))
    lines = cluster.kubectl("get", "pods", "-n", "fmt").stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    # Simulated nodes run them (wait for it: scheduling and status are asynchronous).
    wait_for(lambda: all(ln.split()[1:3] == ["1/1", "Running"] for ln in cluster.kubectl(
        "get", "pods", "-n", "fmt", "--no-headers").stdout.splitlines()), 30,
        what="the pods to run")
    lines = cluster.kubectl("get", "pods", "-n", "fmt").stdout.splitlines()
    assert [ln.split()[:4] for ln in lines[1:]] == [["a1", "1/1", "Running", "0"],
                                                    ["a2", "1/1", "Running", "0"],
                                                    ["b1", "1/1", "Running", "0"]]
    wide = cluster.kubectl("get", "pods", "-n", "fmt", "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE",
                               "NOMINATED", "NODE", "READINESS", "GATES"]
    sel = cluster.kubectl("get", "pods", "-n", "fmt", "-l", "app=a", "-o", "name").stdout
    assert sel.split() == ["pod/a1", "pod/a2"]
    setsel = cluster.kubectl("get", "pods", "-n", "fmt", "-l", "app in (b),app!=a",
                             "-o", "name").stdout
    assert setsel.split() == ["pod/b1"]
    doc = yaml.safe_load(cluster.kubectl("get", "pod", "a1", "-n", "fmt", "-o", "yaml").stdout)
    assert doc["kind"] == "Pod" and doc["spec"]["dnsPolicy"] == "ClusterFirst"
    assert doc["status"]["phase"] == "Running" and doc["spec"]["nodeName"] == "node-1"
    all_ns = cluster.kubectl("get", "pods", "-A").stdout.splitlines()
    assert all_ns[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert any(ln.split()[:2] == ["fmt", "b1"] for ln in all_ns)
    js = json.loads(cluster.kubectl("get", "pods", "-n", "fmt", "-o", "json").stdout)
    assert js["kind"] == "List" and len(js["items"]) == 3
    fs = cluster.kubectl("get", "pods", "-A", "--field-selector", "metadata.name=b1",
                         "-o", "name").stdout
    assert fs.split() == ["pod/b1"]


def test_get_watch_sees_a_change(cluster: Cluster, tmp_path: Path) -> None:
    cluster.kubectl("create", "configmap", "watched", "--from-literal=k=v1")
    proc = subprocess.Popen(["kubectl", "get", "configmaps", "-w", "--field-selector",
                             "metadata.name=watched", "-o", "name"], env=cluster.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.strip())
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_for(lambda: len(lines) >= 1, 20, what="the initial list line")
        cluster.kubectl("patch", "configmap", "watched", "--type=merge", "-p",
                        '{"data":{"k":"v2"}}')
        wait_for(lambda: len(lines) >= 2, 20, what="the watch event line")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert lines[:2] == ["configmap/watched", "configmap/watched"]


def test_describe_scale_patch_set_image(cluster: Cluster, tmp_path: Path) -> None:
    cluster.kubectl("create", "-f", write(tmp_path, "d.yaml", DEPLOY.format(name="web")))
    assert cluster.kubectl("scale", "deployment", "web", "--replicas=4").stdout.strip() == \
        "deployment.apps/web scaled"
    assert cluster.kubectl("get", "deploy", "web", "-o",
                           "jsonpath={.spec.replicas}").stdout == "4"
    cluster.kubectl("patch", "deployment", "web", "-p", '{"spec":{"replicas":5}}')
    cluster.kubectl("patch", "deployment", "web", "--type=merge", "-p",
                    '{"metadata":{"labels":{"tier":"front"}}}')
    out = cluster.kubectl("set", "image", "deployment/web", "web=nginx:1.26").stdout
    assert out.strip() == "deployment.apps/web image updated"
    got = json.loads(cluster.kubectl("get", "deploy", "web", "-o", "json").stdout)
    assert got["spec"]["replicas"] == 5
    assert got["metadata"]["labels"] == {"app": "web", "tier": "front"}
    (c,) = got["spec"]["template"]["spec"]["containers"]
    assert c["image"] == "nginx:1.26" and c["ports"][0]["containerPort"] == 80
    desc = cluster.kubectl("describe", "deployment", "web").stdout
    assert "Name:" in desc and "web" in desc
    assert "Replicas:" in desc and "5 desired" in desc
    assert "nginx:1.26" in desc
    table = cluster.kubectl("get", "deploy", "web").stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]


def test_delete_cascade_orphan_and_background(cluster: Cluster, tmp_path: Path) -> None:
    for name in ("orph", "bg"):
        cluster.kubectl("create", "configmap", name)
        uid = cluster.kubectl("get", "configmap", name, "-o",
                              "jsonpath={.metadata.uid}").stdout
        child = {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": f"{name}-child", "ownerReferences": [
                     {"apiVersion": "v1", "kind": "ConfigMap", "name": name, "uid": uid,
                      "controller": True, "blockOwnerDeletion": True}]}}
        cluster.kubectl("create", "-f", "-", input=json.dumps(child))
    out = cluster.kubectl("delete", "configmap", "orph", "--cascade=orphan").stdout
    assert out.strip() == 'configmap "orph" deleted'
    child = json.loads(cluster.kubectl("get", "configmap", "orph-child", "-o", "json").stdout)
    assert "ownerReferences" not in child["metadata"]
    cluster.kubectl("delete", "configmap", "bg", "--cascade=background")
    wait_for(lambda: cluster.kubectl("get", "configmap", "bg-child", check=False).returncode
             != 0, 20, what="the background cascade to delete bg-child")


def test_discovery_explain_and_raw(cluster: Cluster) -> None:
    res = cluster.kubectl("api-resources").stdout.splitlines()
    rows = {ln.split()[0]: ln.split() for ln in res[1:]}
    assert rows["pods"][1] == "po" and rows["statefulsets"][1] == "sts"
    assert rows["deployments"][2] == "apps/v1"
    explain = cluster.kubectl("explain", "pod.spec").stdout
    assert "KIND:" in explain and "Pod" in explain and "containers" in explain
    assert cluster.kubectl("get", "--raw", "/readyz").stdout == "ok"
    assert "v1" in cluster.kubectl("api-versions").stdout.split()


@pytest.mark.parametrize("patch_fn,expected", [
    (lambda d: d["spec"]["template"]["spec"]["containers"][0]["ports"][0].update(
        containerPort=70000),
     "spec.template.spec.containers[0].ports[0].containerPort: Invalid value: 70000: "
     "must be between 1 and 65535, inclusive"),
    (lambda d: d["metadata"].update(name="Bad.Name"), 'metadata.name: Invalid value: '
     '"Bad.Name"'),
    (lambda d: d["spec"].update(bogus=1), 'unknown field "spec.bogus"'),
    (lambda d: d["spec"]["selector"]["matchExpressions"].append(
        {"key": "app", "operator": "Like", "values": ["x"]}), "operator"),
], ids=["port-range", "bad-name", "unknown-field", "bad-operator"])
def test_bad_manifests_are_rejected_clearly(cluster: Cluster, tmp_path: Path, patch_fn: object,
                                            expected: str) -> None:
    doc = yaml.safe_load(DEPLOY.format(name="bad"))
    doc["spec"]["selector"]["matchExpressions"] = []
    patch_fn(doc)  # type: ignore[operator]
    proc = cluster.kubectl("create", "-f", write(tmp_path, "bad.yaml", yaml.safe_dump(doc)),
                           check=False)
    assert proc.returncode != 0
    assert expected in proc.stderr, proc.stderr
    assert cluster.kubectl("get", "deploy", "bad", check=False).returncode != 0


def test_immutable_field_and_stale_update(cluster: Cluster, tmp_path: Path) -> None:
    cluster.kubectl("create", "-f", write(tmp_path, "d.yaml", DEPLOY.format(name="imm")))
    proc = cluster.kubectl("patch", "deploy", "imm", "--type=merge", "-p",
                           '{"spec":{"selector":{"matchLabels":{"app":"x"}},"template":'
                           '{"metadata":{"labels":{"app":"x"}}}}}', check=False)
    assert proc.returncode != 0 and "field is immutable" in proc.stderr
    doc = json.loads(cluster.kubectl("get", "deploy", "imm", "-o", "json").stdout)
    cluster.kubectl("scale", "deploy", "imm", "--replicas=3")
    doc["spec"]["replicas"] = 7
    proc = cluster.kubectl("replace", "-f", "-", input=json.dumps(doc), check=False)
    assert proc.returncode != 0
    assert "the object has been modified" in proc.stderr
    assert cluster.kubectl("get", "deploy", "imm", "-o",
                           "jsonpath={.spec.replicas}").stdout == "3"


def test_python_client_lists_and_creates(cluster: Cluster) -> None:
    from kubernetes import client, config

    api_client = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    core = client.CoreV1Api(api_client)
    names = [n.metadata.name for n in core.list_namespace().items]
    assert {"default", "kube-system", "kube-public"} <= set(names)
    body = client.V1Service(metadata=client.V1ObjectMeta(name="pysvc"),
                             spec=client.V1ServiceSpec(selector={"app": "x"}, ports=[
                                 client.V1ServicePort(port=80, target_port=8080)]))
    created = core.create_namespaced_service("default", body)
    assert created.spec.ports[0].protocol == "TCP"
    assert created.spec.session_affinity == "None"
    svcs = core.list_namespaced_service("default", label_selector="")
    assert "pysvc" in [s.metadata.name for s in svcs.items]
    apps = client.AppsV1Api(api_client)
    assert isinstance(apps.list_deployment_for_all_namespaces().items, list)
    api_client.close()


def test_restart_brings_back_the_same_cluster(tmp_path: Path) -> None:
    from tests.e2e.cluster import new_cluster

    c = new_cluster(tmp_path).start()
    try:
        c.kubectl("create", "configmap", "persist", "--from-literal=a=b")
        uid = c.kubectl("get", "cm", "persist", "-o", "jsonpath={.metadata.uid}").stdout
        assert c.stop() == 0
        c.start()
        assert c.kubectl("get", "cm", "persist", "-o",
                         "jsonpath={.metadata.uid}").stdout == uid
    finally:
        c.stop()
