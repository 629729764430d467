"""The cluster network on real namespaces (root)."""
from __future__ import annotations

import os
import subprocess

import pytest

from netd.config import Config
from netd.node import names, sandboxhelper
from netd.node.cluster_net import ClusterNetwork
from netd.node.sandbox import SandboxManager

from .conftest import wait_for

pytestmark = pytest.mark.root


def sh(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=20)


def uplinks() -> set[str]:
    out = sh("ip", "-o", "route", "show", "default").stdout.split()
    return {out[i + 1] for i, w in enumerate(out) if w == "dev"}


async def test_ensure_is_idempotent_and_routes_nodes(cluster_config: Config) -> None:
    cn = ClusterNetwork(cluster_config)
    try:
        nodes = await cn.ensure()
        assert [n.netns for n in await cn.ensure()] == [n.netns for n in nodes]
        br = names.bridge(cluster_config.cluster_name)
        assert "UP" in sh("ip", "-br", "link", "show", br).stdout
        for node in nodes:
            assert node.netns is not None
            assert sh("ping", "-c1", "-W2", node.ip).returncode == 0
            sysctl = sh("ip", "netns", "exec", node.netns, "sysctl", "-n",
                        "net.ipv4.ip_forward", "net.ipv4.conf.all.rp_filter").stdout.split()
            assert sysctl == ["1", "2"]
            route = sh("ip", "route", "get", node.gateway).stdout
            assert f"via {node.ip} dev {br}" in route
        # node-1 reaches node-2's pod CIDR over the node network
        n1, n2 = nodes
        assert n1.netns is not None
        assert f"via {n2.ip}" in sh("ip", "-n", n1.netns, "route", "get", n2.gateway).stdout
    finally:
        await cn.teardown()


@pytest.mark.parametrize("which", ["service", "unowned-pod", "service-far"])
async def test_cluster_ranges_never_take_the_uplink(cluster_config: Config, which: str) -> None:
    cn = ClusterNetwork(cluster_config)
    try:
        nodes = await cn.ensure()
        svc_base = cluster_config.service_cidr.rsplit(".", 2)[0]
        pod_base = cluster_config.pod_cidr.rsplit(".", 2)[0]
        addr = {"service": f"{svc_base}.0.50", "service-far": f"{svc_base}.200.7",
                "unowned-pod": f"{pod_base}.99.9"}[which]
        got = sh("ip", "route", "get", addr)
        for dev in uplinks():
            assert f"dev {dev}" not in got.stdout
        if which == "unowned-pod":
            assert got.returncode != 0          # blackholed
        else:
            assert f"via {nodes[0].ip} dev {names.bridge(cluster_config.cluster_name)}" \
                in got.stdout
    finally:
        await cn.teardown()


async def test_remove_node(cluster_config: Config) -> None:
    cn = ClusterNetwork(cluster_config)
    try:
        n1, n2 = await cn.ensure()
        sb = await SandboxManager(cluster_config, n2).create("default", "gone",
                                                            n2.gateway[:-1] + "9", "gone")
        assert n2.netns_path is not None
        st = os.stat(n2.netns_path)
        ns = (st.st_dev, st.st_ino)
        assert any(ns in _fd_files(pid) for pid in sandboxhelper.helper_pids())
        await cn.remove_node(n2.name)
        # Nothing of ours keeps the node's namespace alive (the sandbox helper held it
        # open for its socket there): the kernel destroys it.
        wait_for(lambda: not any(ns in _fd_files(pid) for pid in sandboxhelper.helper_pids()),
                 10, "the helper to let go of the node's namespace")
        assert n2.netns not in sh("ip", "netns", "list").stdout
        assert sb.netns not in sh("ip", "netns", "list").stdout
        assert n1.netns is not None
        assert n2.pod_cidr not in sh("ip", "-n", n1.netns, "route").stdout
        assert f"via {n2.ip}" not in sh("ip", "route", "get", n2.gateway).stdout
    finally:
        await cn.teardown()


def _fd_files(pid: int) -> set[tuple[int, int]]:
    """(st_dev, st_ino) of what the process has open (a namespace: its nsfs inode)."""
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            st = os.stat(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        out.add((st.st_dev, st.st_ino))
    return out


async def test_host_mode_restores_ip_forward(host_config: Config) -> None:
    before = open("/proc/sys/net/ipv4/ip_forward").read().strip()
    cn = ClusterNetwork(host_config)
    try:
        (node,) = await cn.ensure()
        assert node.netns is None
        assert open("/proc/sys/net/ipv4/ip_forward").read().strip() == "1"
        mgr = SandboxManager(host_config, node)
        a = await mgr.create("default", "a", node.gateway[:-1] + "2", "a")
        b = await mgr.create("default", "b", node.gateway[:-1] + "3", "b")
        assert sh("ping", "-c1", "-W2", a.ip).returncode == 0
        assert sh("ip", "netns", "exec", a.netns, "ping", "-c1", "-W2", b.ip).returncode == 0
        svc = host_config.service_cidr.rsplit(".", 2)[0] + ".0.50"
        assert f"dev {names.service_dummy(host_config.cluster_name)}" in \
            sh("ip", "route", "get", svc).stdout
        await mgr.delete("default", "a")
        assert f"netd:{host_config.cluster_name}:default/a" not in sh("ip", "-o", "link").stdout
    finally:
        await cn.teardown()
    assert open("/proc/sys/net/ipv4/ip_forward").read().strip() == before
