"""Cascading deletion through controllers' ownership chains, and namespace deletion."""
from __future__ import annotations

import json

import pytest

from tests.e2e.cluster import Cluster, wait_for

pytestmark = pytest.mark.e2e


def names(cluster: Cluster, kind: str, selector: str, ns: str = "default") -> list[str]:
    out = cluster.kubectl("get", kind, "-n", ns, "-l", selector, "-o", "name").stdout
    return out.split()


@pytest.mark.parametrize("mode", ["background", "foreground", "orphan"])
def test_deployment_cascade(cluster: Cluster, mode: str) -> None:
    app = f"casc-{mode}"
    cluster.kubectl("create", "deployment", app, "--image=nginx:1.25", "--replicas=2")
    wait_for(lambda: len(names(cluster, "pods", f"app={app}")) == 2, 30,
             what="the deployment's pods")
    rs = names(cluster, "rs", f"app={app}")
    assert len(rs) == 1
    cluster.kubectl("delete", "deployment", app, f"--cascade={mode}")
    if mode == "orphan":
        # The ReplicaSet and its pods stay, the ReplicaSet without an owner.
        got = json.loads(cluster.kubectl("get", rs[0], "-o", "json").stdout)
        assert "ownerReferences" not in got["metadata"]
        assert len(names(cluster, "pods", f"app={app}")) == 2
        cluster.kubectl("delete", rs[0])
    wait_for(lambda: not names(cluster, "rs", f"app={app}")
             and not names(cluster, "pods", f"app={app}"), 30,
             what=f"{mode} deletion to remove the ReplicaSet and pods")


def test_namespace_deletion_removes_everything(cluster: Cluster) -> None:
    cluster.kubectl("create", "namespace", "doomed")
    cluster.kubectl("create", "deployment", "d", "--image=nginx", "-n", "doomed")
    cluster.kubectl("create", "configmap", "c", "-n", "doomed")
    wait_for(lambda: names(cluster, "pods", "app=d", "doomed"), 30, what="a pod")
    cluster.kubectl("delete", "namespace", "doomed", "--wait=false")
    phase = cluster.kubectl("get", "ns", "doomed", "-o", "jsonpath={.status.phase}",
                            check=False).stdout
    assert phase in ("Terminating", "")
    refused = cluster.kubectl("create", "configmap", "late", "-n", "doomed", check=False)
    assert refused.returncode != 0
    wait_for(lambda: cluster.kubectl("get", "ns", "doomed", check=False).returncode != 0, 30,
             what="the namespace to go")
    assert cluster.kubectl("get", "configmaps", "-n", "doomed", "-o", "name").stdout == ""
