"""The kube-dns mirror pod a node agent publishes (netd.node.mirror): the object, and
when its status needs writing."""
from __future__ import annotations

from typing import Any

import pytest

from netd.node.mirror import is_mirror, mirror_name, mirror_pod, wants_status

NODE = {"metadata": {"name": "node-1", "uid": "u-1"}}


def test_mirror_pod_object() -> None:
    p = mirror_pod(NODE)
    meta, spec = p["metadata"], p["spec"]
    assert (meta["name"], meta["namespace"]) == ("coredns-node-1", "kube-system")
    assert meta["labels"] == {"k8s-app": "kube-dns"}     # the kube-dns Service selector
    assert is_mirror(p) and meta["annotations"]["kubernetes.io/config.source"] == "file"
    assert meta["ownerReferences"] == [{"apiVersion": "v1", "kind": "Node", "name": "node-1",
                                        "uid": "u-1", "controller": True}]
    assert spec["nodeName"] == "node-1" and spec["hostNetwork"] is True
    ports = {(x["name"], x["containerPort"], x["protocol"]) for x in
             spec["containers"][0]["ports"]}
    assert ports == {("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP")}
    assert all(x["hostPort"] == x["containerPort"] for x in spec["containers"][0]["ports"])
    assert mirror_name("n2") == "coredns-n2" and not is_mirror({"metadata": {}})


def _status(phase: str, ready: str, ip: str) -> dict[str, Any]:
    return {"status": {"phase": phase, "podIP": ip,
                       "conditions": [{"type": "Ready", "status": ready}]}}


@pytest.mark.parametrize("pod,want", [
    ({"metadata": {}}, True),
    (_status("Pending", "False", ""), True),
    (_status("Running", "True", "172.18.0.9"), True),
    (_status("Running", "False", "172.18.0.2"), True),
    (_status("Running", "True", "172.18.0.2"), False),
], ids=["no-status", "pending", "other-ip", "not-ready", "current"])
def test_wants_status(pod: dict[str, Any], want: bool) -> None:
    assert wants_status(pod, "172.18.0.2") is want
