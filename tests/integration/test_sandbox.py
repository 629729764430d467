"""Pod sandboxes on real namespaces (root): connectivity, hostname, files, sockets,
restart adoption, deletion."""
from __future__ import annotations

import asyncio
import os
import socket
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import pytest

from netd.config import Config
from netd.node import handles, names, nsexec, sandboxhelper
from netd.node.cluster_net import ClusterNetwork, NodeNet
from netd.node.nsexec import spawn
from netd.node.sandbox import Sandbox, SandboxManager

from .conftest import wait_for

pytestmark = pytest.mark.root


def sh(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=20)


def ip_in(node: NodeNet, host: int) -> str:
    return node.gateway.rsplit(".", 1)[0] + f".{host}"


@pytest.fixture
async def net(cluster_config: Config) -> AsyncIterator[tuple[Config, list[NodeNet]]]:
    cn = ClusterNetwork(cluster_config)
    try:
        yield cluster_config, await cn.ensure()
    finally:
        await cn.teardown()


@pytest.fixture
async def pods(net: tuple[Config, list[NodeNet]]) -> dict[str, Any]:
    cfg, (n1, n2) = net
    m1, m2 = SandboxManager(cfg, n1), SandboxManager(cfg, n2)
    return {"cfg": cfg, "m1": m1, "m2": m2, "n1": n1, "n2": n2,
            "a": await m1.create("default", "web-0", ip_in(n1, 2), "web-0"),
            "b": await m1.create("default", "web-1", ip_in(n1, 3), "web-1"),
            "c": await m2.create("other", "db-0", ip_in(n2, 2), "db-0")}


@pytest.mark.parametrize("src,dst", [("a", "b"), ("a", "c"), ("c", "b"), ("host", "a"),
                                     ("host", "c")],
                         ids=["same-node", "cross-node", "cross-node-back", "host-to-pod",
                              "host-to-pod-node2"])
async def test_ping(pods: dict[str, Any], src: str, dst: str) -> None:
    target: Sandbox = pods[dst]
    argv = ["ping", "-c1", "-W2", target.ip]
    if src != "host":
        argv = ["ip", "netns", "exec", pods[src].netns] + argv
    assert sh(*argv).returncode == 0


async def test_names_and_routes(pods: dict[str, Any]) -> None:
    cfg, a, n1 = pods["cfg"], pods["a"], pods["n1"]
    assert a.netns == f"{cfg.cluster_name}_default_web-0"
    assert a.node_ifname == names.pod_node_veth("default", "web-0")
    routes = sh("ip", "-n", a.netns, "route").stdout
    assert f"default via {n1.gateway} dev eth0" in routes
    assert any(line.startswith(f"{n1.gateway} dev eth0") and "scope link" in line
               for line in routes.splitlines())
    assert f"{a.ip}/32" in sh("ip", "-n", a.netns, "addr", "show", "eth0").stdout
    assert f"{a.ip} dev {a.node_ifname}" in sh("ip", "-n", n1.netns, "route").stdout
    assert "UP" in sh("ip", "-n", a.netns, "-br", "link", "show", "lo").stdout
    # IPv4 only: eth0 has no IPv6 address, not even a link-local one (no DAD, no RS).
    assert sh("ip", "-n", a.netns, "-6", "addr", "show", "dev", "eth0").stdout.strip() == ""
    assert "::1/128" in sh("ip", "-n", a.netns, "-6", "addr", "show", "dev", "lo").stdout


async def test_spawn_sees_hostname_and_files(pods: dict[str, Any]) -> None:
    a: Sandbox = pods["a"]
    m1: SandboxManager = pods["m1"]
    m1.write_files(a, "nameserver 10.96.0.10\nsearch default.svc.cluster.local\n",
                   "127.0.0.1\tlocalhost\n10.1.2.3\tweb-0.sub.default.svc.cluster.local\n")
    env = {"PATH": "/usr/bin:/bin"}

    async def run(argv: list[str]) -> str:
        proc = await spawn(a, argv, env=env, stdin=None, stdout=asyncio.subprocess.PIPE,
                           stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        assert proc.returncode == 0, err
        return out.decode()

    assert (await run(["hostname"])).strip() == "web-0"
    assert "search default.svc.cluster.local" in await run(["cat", "/etc/resolv.conf"])
    assert "web-0.sub.default" in await run(["cat", "/etc/hosts"])
    assert f"{a.ip}/32" in await run(["ip", "-o", "addr", "show", "eth0"])
    # `ip netns exec` (iproute2's convention) sees the same files
    assert "nameserver 10.96.0.10" in sh("ip", "netns", "exec", a.netns, "cat",
                                         "/etc/resolv.conf").stdout
    # the host's own hostname is untouched
    assert socket.gethostname() != "web-0"


async def test_spawn_mounts_and_missing_binary(pods: dict[str, Any], tmp_path: Any) -> None:
    a: Sandbox = pods["a"]
    (tmp_path / "index.html").write_text("1324\n")
    target = f"/tmp/netd-it-mnt-{a.netns}"
    proc = await spawn(a, ["cat", f"{target}/index.html"], env={"PATH": "/usr/bin:/bin"},
                       mounts=[(str(tmp_path), target, True)], stdin=None,
                       stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    os.rmdir(target)
    assert (proc.returncode, out) == (0, b"1324\n"), err
    with pytest.raises(FileNotFoundError):
        await spawn(a, ["no-such-binary-xyz"], env={"PATH": "/usr/bin:/bin"}, stdin=None,
                    stdout=None, stderr=None)


async def test_open_socket_echo_across_nodes(pods: dict[str, Any]) -> None:
    a: Sandbox = pods["a"]
    m1: SandboxManager = pods["m1"]
    lsock = m1.open_socket(a, socket.AF_INET, socket.SOCK_STREAM, 8080)

    async def echo(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(await r.readline())
        await w.drain()
        w.close()

    server = await asyncio.start_server(echo, sock=lsock)
    try:
        proc = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", pods["c"].netns, "python3", "-c",
            "import socket,sys; s=socket.create_connection((sys.argv[1], 8080), 5); "
            "s.sendall(b'hi\\n'); print(s.recv(100).decode(), end='')", a.ip,
            stdout=asyncio.subprocess.PIPE)
        out, _ = await asyncio.wait_for(proc.communicate(), 20)
        assert out == b"hi\n"
    finally:
        server.close()
        await server.wait_closed()


async def test_uts_made_by_the_first_process_and_shared(pods: dict[str, Any]) -> None:
    """A pod without processes has no UTS namespace yet; the first process makes it and
    every later one joins the same one (containers of a pod share it)."""
    b: Sandbox = pods["b"]
    assert not nsexec.is_ns_handle(b.uts_path)

    async def uts_of_child() -> str:
        proc = await spawn(b, ["readlink", "/proc/self/ns/uts"], env={"PATH": "/usr/bin:/bin"},
                           stdin=None, stdout=asyncio.subprocess.PIPE, stderr=None)
        return (await proc.communicate())[0].decode().strip()

    first, second = await asyncio.gather(uts_of_child(), uts_of_child())
    assert nsexec.is_ns_handle(b.uts_path)
    assert first == second == f"uts:[{os.stat(b.uts_path).st_ino}]"
    assert first != os.readlink("/proc/self/ns/uts")


async def test_handles_cost_no_new_inodes_on_disk(pods: dict[str, Any]) -> None:
    """The netns handles' mount points are links of one inode; /etc/netns/<name> is a
    link into the cluster's run tmpfs (netd/node/handles.py)."""
    cfg, a, b = pods["cfg"], pods["a"], pods["b"]
    run = names.cluster_run_dir(cfg.cluster_name)
    assert nsexec.mount_fstype(run) == "tmpfs"
    pods["m1"].write_files(a, "nameserver 10.96.0.10\n", "127.0.0.1\tlocalhost\n")
    assert os.path.islink(names.etc_dir(a.netns))
    assert os.path.realpath(names.etc_dir(a.netns)).startswith(run + "/")
    # the mount points under the handles are names of one template inode: the node
    # handles of this process's, the pods' of the sandbox helper's
    tpl = handles._templates[names.NETNS_DIR]
    assert tpl.fd is not None and os.fstat(tpl.fd).st_nlink >= 2
    [helper] = sandboxhelper.helper_pids()
    links = [os.stat(f"/proc/{helper}/fd/{fd}").st_nlink
             for fd in os.listdir(f"/proc/{helper}/fd")
             if os.readlink(f"/proc/{helper}/fd/{fd}").startswith(f"{names.NETNS_DIR}/#")]
    assert links and max(links) >= 3      # web-0, web-1, db-0
    assert sh("ip", "netns", "list").stdout.count(cfg.cluster_name + "_default_") >= 2


async def test_restart_adopts_and_delete_removes(pods: dict[str, Any]) -> None:
    cfg, n1 = pods["cfg"], pods["n1"]
    a: Sandbox = pods["a"]
    fresh = SandboxManager(cfg, n1)
    found = fresh.existing()
    assert set(found) == {"default/web-0", "default/web-1"}
    assert found["default/web-0"].ip == a.ip
    assert fresh.incomplete() == []
    # create() with the same IP adopts instead of rebuilding
    again = await fresh.create("default", "web-0", a.ip, "web-0")
    assert again == a
    await fresh.delete("default", "web-0")
    assert not os.path.exists(a.netns_path)
    assert not os.path.exists(a.uts_path)
    assert not os.path.exists(names.etc_dir(a.netns))
    wait_for(lambda: a.node_ifname not in sh("ip", "-n", n1.netns, "link").stdout,
             what="the veth to go with the namespace")
    assert set(fresh.existing()) == {"default/web-1"}
    # recreated at once under the same name with a new IP
    b = await fresh.create("default", "web-0", ip_in(n1, 7), "web-0")
    assert sh("ping", "-c1", "-W2", b.ip).returncode == 0


async def test_namespace_deleted_behind_our_back_is_incomplete(pods: dict[str, Any]) -> None:
    a: Sandbox = pods["a"]
    assert sh("ip", "netns", "delete", a.netns).returncode == 0
    m1: SandboxManager = pods["m1"]
    assert "default/web-0" in m1.incomplete()
    rebuilt = await m1.create("default", "web-0", a.ip, "web-0")
    proc = await spawn(rebuilt, ["hostname"], env={"PATH": "/usr/bin:/bin"}, stdin=None,
                       stdout=asyncio.subprocess.PIPE, stderr=None)
    assert (await proc.communicate())[0] == b"web-0\n"
    assert sh("ping", "-c1", "-W2", rebuilt.ip).returncode == 0


def test_mount_points_survive_a_remounted_directory(tmp_path: Any) -> None:
    # A cluster's run tmpfs mounted again (a cluster of the same name after a
    # teardown): the cached template inode is on the old mount, where linkat fails
    # with EXDEV; a fresh one takes over.
    d = str(tmp_path / "run")
    os.mkdir(d)
    nsexec.mount("tmpfs", d, "tmpfs", 0, "mode=0755")
    try:
        handles.mount_point(f"{d}/a")
        nsexec.umount(d)
        nsexec.mount("tmpfs", d, "tmpfs", 0, "mode=0755")
        handles.mount_point(f"{d}/b")
        assert os.listdir(d) == ["b"]
    finally:
        nsexec.unmount_all(d)
        handles.forget(d)
    assert d not in handles._templates
