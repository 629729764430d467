from __future__ import annotations

import hashlib

import pytest

from netd.node import names

CASES = [
    ("bridge", lambda: names.bridge("netd"), "netd-br"),
    ("node-netns", lambda: names.node_netns("netd", "node-1"), "netd_node_node-1"),
    ("node-veth", lambda: names.node_host_veth("netd", 3), "netd-n3"),
    ("pod-netns", lambda: names.pod_netns("netd", "default", "web-0"), "netd_default_web-0"),
    ("pod-veth", lambda: names.pod_node_veth("default", "web-0"),
     "v" + hashlib.sha1(b"default/web-0").hexdigest()[:10]),
    ("netns-path", lambda: names.netns_path("netd_default_web-0"), "/run/netns/netd_default_web-0"),
    ("etc", lambda: names.etc_dir("netd_default_web-0"), "/etc/netns/netd_default_web-0"),
    ("uts", lambda: names.uts_path("netd", "netd_default_web-0"),
     "/run/netd/netd/uts/netd_default_web-0"),
    ("alias", lambda: names.pod_alias("netd", "ns", "p"), "netd:netd:ns/p"),
    ("svc-dummy", lambda: names.service_dummy("abcdefghijk"), "abcdefghijk-svc"),
]


@pytest.mark.parametrize("fn,want", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_names(fn, want) -> None:  # type: ignore[no-untyped-def]
    assert fn() == want


@pytest.mark.parametrize("cluster,name,want", [
    ("netd", "netd_default_web-0", ("default", "web-0")),
    ("netd", "netd_node_node-1", None),
    ("netd", "other_default_web-0", None),
    ("netd", "netd2_default_web-0", None),
    ("netd", "netd_default", None),
    ("netd", "netd_a_b_c", None),
    ("netd", "netd_x_" + "p" * 240 + "~0123456789abcdef", None),
], ids=["pod", "node", "other-cluster", "prefix-cluster", "no-pod", "extra", "shortened"])
def test_parse_pod_netns(cluster: str, name: str, want: tuple[str, str] | None) -> None:
    assert names.parse_pod_netns(cluster, name) == want


def test_long_names_are_shortened_uniquely() -> None:
    a = names.pod_netns("netd", "n" * 63, "a" * 253)
    b = names.pod_netns("netd", "n" * 63, "a" * 252 + "b")
    assert len(a.encode()) <= 255 and len(b.encode()) <= 255
    assert a != b and "~" in a


def test_interface_names_fit_ifnamsiz() -> None:
    assert len(names.node_host_veth("abcdefghijk", 99)) == 15
    with pytest.raises(ValueError):
        names.node_host_veth("abcdefghijk", 100)
    assert len(names.pod_node_veth("x" * 63, "y" * 253)) == 11


@pytest.mark.parametrize("alias,want", [
    ("netd:c1:default/web", "default/web"), ("netd:c2:default/web", None),
    ("netd:c1:bad", None), ("", None)], ids=["ours", "other", "malformed", "empty"])
def test_parse_alias(alias: str, want: str | None) -> None:
    assert names.parse_alias("c1", alias) == want


@pytest.mark.parametrize("name,want", [("c1-n0", True), ("c1-n12", True), ("c1-br", False),
                                       ("c1-nx", False), ("c10-n1", False)],
                         ids=["n0", "n12", "bridge", "not-digit", "other-cluster"])
def test_is_node_host_veth(name: str, want: bool) -> None:
    assert names.is_node_host_veth("c1", name) is want
