"""The `netd` client commands against a real daemon (`netd up` in a subprocess),
checked against what the real kubectl prints for the same cluster state."""
from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from tests.e2e.cluster import ROOT, Cluster, wait_for

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

MANIFESTS = {
    "10-config.yaml": """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: cli-config
  labels: {app: cli}
data:
  greeting: hello
  script: |
    echo one
    echo two
""",
    "20-app.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: cli-web
  labels: {app: cli-web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: cli-web}
  template:
    metadata:
      labels: {app: cli-web}
    spec:
      containers:
      - name: web
        image: netd/http-echo
        ports:
        - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: cli-web
spec:
  selector: {app: cli-web}
  ports:
  - port: 80
    targetPort: 8080
""",
}


def netd(cluster: Cluster, *args: str, input: str | None = None,
         check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "netd.cli.main", *args, "--name", cluster.name,
         "--state-dir", str(cluster.state_dir)],
        cwd=ROOT, capture_output=True, text=True, input=input, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"netd {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def manifests(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("manifests")
    for name, text in MANIFESTS.items():
        (d / name).write_text(text)
    (d / "README.md").write_text("not a manifest")
    return d


@pytest.fixture(scope="module")
def applied(cluster: Cluster, manifests: Path) -> Cluster:
    out = netd(cluster, "apply", "-f", str(manifests))
    assert out.stdout == ("configmap/cli-config created\n"
                          "deployment.apps/cli-web created\n"
                          "service/cli-web created\n")
    return cluster


def same_as_kubectl(cluster: Cluster, *args: str) -> tuple[str, str, int]:
    """netd's stdout, stderr and exit code equal kubectl's for the same arguments
    (retried while controllers are still moving the state both read)."""
    seen: dict[str, tuple[str, str, int]] = {}

    def run(proc: subprocess.CompletedProcess[str]) -> tuple[str, str, int]:
        return proc.stdout, proc.stderr, proc.returncode

    def equal() -> bool:
        seen["netd"] = run(netd(cluster, *args, check=False))
        seen["kubectl"] = run(cluster.kubectl(*args, check=False))
        return seen["netd"] == seen["kubectl"]

    try:
        wait_for(equal, 20, interval=0.2, what=f"netd and kubectl to agree on {args}")
    except AssertionError:
        assert seen["netd"] == seen["kubectl"]
    return seen["netd"]


def test_status_reports_ready(cluster: Cluster) -> None:
    out = netd(cluster, "status").stdout
    assert out.startswith(f"cluster {cluster.name}: ready")
    assert f"kubeconfig:  {cluster.kubeconfig}" in out
    assert str(cluster.root / "api.sock") in out


def test_not_running_cluster(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "netd.cli.main", "get", "pods", "--name",
                           "absent", "--state-dir", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.startswith('netd: cannot reach cluster "absent": is `netd up` running?')


def test_reapply_is_unchanged_for_netd_and_kubectl(applied: Cluster, manifests: Path) -> None:
    assert netd(applied, "apply", "-f", str(manifests)).stdout == (
        "configmap/cli-config unchanged\ndeployment.apps/cli-web unchanged\n"
        "service/cli-web unchanged\n")
    # kubectl reads netd's last-applied annotation and finds nothing to change.
    assert applied.kubectl("apply", "-f", str(manifests / "10-config.yaml")).stdout == \
        "configmap/cli-config unchanged\n"


def test_last_applied_annotation_is_byte_identical_to_kubectls(applied: Cluster,
                                                               tmp_path: Path) -> None:
    text = MANIFESTS["10-config.yaml"].replace("cli-config", "cli-config-k")
    (tmp_path / "k.yaml").write_text(text)
    applied.kubectl("apply", "-f", str(tmp_path / "k.yaml"))
    ours = json.loads(applied.kubectl("get", "cm", "cli-config", "-o", "json").stdout)
    theirs = json.loads(applied.kubectl("get", "cm", "cli-config-k", "-o", "json").stdout)
    assert ours["metadata"]["annotations"][LAST_APPLIED] == \
        theirs["metadata"]["annotations"][LAST_APPLIED].replace("cli-config-k", "cli-config")


def test_apply_configures_a_change_from_stdin(applied: Cluster) -> None:
    text = MANIFESTS["10-config.yaml"].replace("hello", "bonjour")
    assert netd(applied, "apply", "-f", "-", input=text).stdout == \
        "configmap/cli-config configured\n"
    data = json.loads(applied.kubectl("get", "cm", "cli-config", "-o", "json").stdout)["data"]
    assert data["greeting"] == "bonjour"
    netd(applied, "apply", "-f", "-", input=MANIFESTS["10-config.yaml"])


@pytest.mark.parametrize("args", [
    ("get", "configmaps"),
    ("get", "cm", "cli-config", "-o", "wide"),
    ("get", "deployments.apps", "--show-labels"),
    ("get", "svc", "-o", "wide"),
    ("get", "nodes", "-o", "wide"),
    ("get", "namespaces"),
    ("get", "configmaps", "-A"),
    ("get", "all"),
    ("get", "deploy,svc", "-l", "app=cli-web"),
    ("get", "cm", "-o", "name"),
    ("get", "cm", "cli-config", "-o", "json"),
    ("get", "cm", "-l", "app=cli", "-o", "json"),
    ("get", "deploy", "cli-web", "-o", "yaml"),
    ("get", "cm", "-o", "yaml"),
    ("get", "pods,cm", "-A"),
    ("describe", "configmap", "cli-config"),
    ("describe", "service", "cli-web"),
    ("describe", "deployment", "cli-web"),
    ("describe", "namespace", "default"),
], ids=lambda a: " ".join(a))
def test_output_matches_kubectl(applied: Cluster, args: tuple[str, ...]) -> None:
    out, err, code = same_as_kubectl(applied, *args)
    assert out or err


def test_yaml_output_is_the_same_object(applied: Cluster) -> None:
    ours = yaml.safe_load(netd(applied, "get", "cm", "cli-config", "-o", "yaml").stdout)
    theirs = yaml.safe_load(applied.kubectl("get", "cm", "cli-config", "-o", "yaml").stdout)
    assert ours == theirs
    assert ours["data"]["script"] == "echo one\necho two\n"


@pytest.mark.parametrize("args,stderr", [
    (("get", "pods", "-n", "nothing-here"), "No resources found in nothing-here namespace.\n"),
    (("get", "cm", "absent"), 'Error from server (NotFound): configmaps "absent" not found\n'),
], ids=["empty", "not-found"])
def test_messages_match_kubectl(applied: Cluster, args: tuple[str, ...], stderr: str) -> None:
    ours = netd(applied, *args, check=False)
    theirs = applied.kubectl(*args, check=False)
    assert ours.stderr == theirs.stderr == stderr
    assert ours.returncode == theirs.returncode


def test_scale(applied: Cluster) -> None:
    assert netd(applied, "scale", "deployment", "cli-web", "--replicas", "3").stdout == \
        "deployment.apps/cli-web scaled\n"
    spec = json.loads(applied.kubectl("get", "deploy", "cli-web", "-o", "json").stdout)["spec"]
    assert spec["replicas"] == 3
    proc = netd(applied, "scale", "deploy/cli-web", "--replicas", "1", "--current-replicas", "2",
                check=False)
    assert proc.returncode == 1 and "Expected replicas to be 2, was 3" in proc.stderr


def test_invalid_manifest_names_the_file(applied: Cluster, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: [\n")
    proc = netd(applied, "apply", "-f", str(bad), check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"error: error parsing {bad}: error converting YAML to JSON")
    invalid = tmp_path / "invalid.yaml"
    invalid.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: bad-svc}\n"
                       "spec: {ports: [{port: 70000}]}\n")
    proc = netd(applied, "apply", "-f", str(invalid), check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f'Error from server (Invalid): error when creating '
                                  f'"{invalid}": Service "bad-svc" is invalid: ')
    assert "spec.ports[0].port: Invalid value: 70000" in proc.stderr


def test_watch_prints_rows_as_they_change(applied: Cluster) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "netd.cli.main", "get", "configmaps", "-w", "-l", "watch=me",
         "--name", applied.name, "--state-dir", str(applied.state_dir)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for ln in proc.stdout or []:
            lines.put(ln)

    threading.Thread(target=pump, daemon=True).start()
    try:
        # An empty watch prints nothing; create objects until one shows up (the
        # first may be created before the watch is established).
        def row() -> str:
            name = f"watched-{row.n}"  # type: ignore[attr-defined]
            row.n += 1  # type: ignore[attr-defined]
            applied.kubectl("apply", "-f", "-", input=(
                f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"
                "  labels: {watch: me}\ndata: {a: b}\n"))
            return lines.get(timeout=5)
        row.n = 0  # type: ignore[attr-defined]
        header = wait_for(row, 30, what="the watch to print")
        assert header.split() == ["NAME", "DATA", "AGE"]
        first = lines.get(timeout=10)
        assert first.startswith("watched-")
    finally:
        proc.terminate()   # the process this test started, by its handle
        proc.wait(timeout=10)
        # One more event makes the server notice the closed watch and end its
        # handler (an abandoned watch otherwise holds up the daemon's shutdown).
        applied.kubectl("apply", "-f", "-", input=(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: watched-last\n"
            "  labels: {watch: me}\n"))


def test_delete_by_name_and_file(applied: Cluster, manifests: Path, tmp_path: Path) -> None:
    assert netd(applied, "create", "-f", "-", input=(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: doomed}\n")).stdout == \
        "configmap/doomed created\n"
    assert netd(applied, "delete", "configmap", "doomed").stdout == \
        'configmap "doomed" deleted\n'
    assert applied.kubectl("get", "cm", "doomed", check=False).returncode == 1
    one = tmp_path / "svc.yaml"
    one.write_text(MANIFESTS["20-app.yaml"].split("---\n")[1])
    assert netd(applied, "delete", "-f", str(one)).stdout == 'service "cli-web" deleted\n'
    proc = netd(applied, "delete", "-f", str(one), check=False)
    assert proc.returncode == 1
    assert proc.stderr == (f'Error from server (NotFound): error when deleting "{one}": '
                           'services "cli-web" not found\n')
    assert netd(applied, "delete", "-f", str(one), "--ignore-not-found").stdout == ""


NODE = """\
apiVersion: v1
kind: Node
metadata:
  name: cli-node
  labels: {kubernetes.io/hostname: cli-node, node-role.kubernetes.io/edge: ""}
spec:
  podCIDR: 10.244.200.0/24
  taints: [{key: dedicated, value: cli, effect: NoSchedule}]
"""


def test_describe_node_and_pod(applied: Cluster) -> None:
    assert netd(applied, "apply", "-f", "-", input=NODE).stdout == "node/cli-node created\n"
    text = netd(applied, "describe", "node", "cli-node").stdout
    assert text.startswith("Name:               cli-node\nRoles:              edge\n")
    assert "Taints:             dedicated=cli:NoSchedule\n" in text
    for section in ("Addresses:", "System Info:", "Non-terminated Pods:",
                    "Allocated resources:"):
        assert f"\n{section}" in text
    assert same_as_kubectl(applied, "get", "node", "cli-node", "-o", "wide")[0]
    pods = json.loads(applied.kubectl("get", "pods", "-l", "app=cli-web",
                                      "-o", "json").stdout)["items"]
    for pod in pods[:1]:
        name = pod["metadata"]["name"]
        ours = netd(applied, "describe", "pod", name).stdout
        theirs = applied.kubectl("describe", "pod", name).stdout
        # Column width depends on the longest label present, as with kubectl.
        assert ours.splitlines()[0] == theirs.splitlines()[0]
        assert ours.splitlines()[0].split() == ["Name:", name]
        assert "Controlled By:  ReplicaSet/cli-web-" in ours
    netd(applied, "delete", "node", "cli-node", "--wait=false")
