"""The sandbox helper process (netd.node.sandboxhelper) on real namespaces (root): a
helper killed mid-run fails only the calls in flight and the next call starts a new
one; calls from successive event loops are answered; shutdown ends the process."""
from __future__ import annotations

import asyncio
import errno
import os
import signal
from collections.abc import AsyncIterator

import pytest

from netd.config import Config
from netd.node import names, nsexec, sandboxhelper
from netd.node.cluster_net import ClusterNetwork, NodeNet
from netd.node.sandbox import SandboxManager

from .conftest import wait_for

pytestmark = pytest.mark.root


@pytest.fixture
async def node(cluster_config: Config) -> AsyncIterator[tuple[Config, NodeNet]]:
    cn = ClusterNetwork(cluster_config)
    try:
        yield cluster_config, (await cn.ensure())[0]
    finally:
        await cn.teardown()


def ip_in(node: NodeNet, host: int) -> str:
    return node.gateway.rsplit(".", 1)[0] + f".{host}"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_helper_death_fails_calls_in_flight_and_recovers(
        node: tuple[Config, NodeNet]) -> None:
    cfg, n1 = node
    mgr = SandboxManager(cfg, n1)
    sb = await mgr.create("default", "a", ip_in(n1, 2), "a")
    assert nsexec.is_ns_handle(sb.netns_path)
    [pid] = sandboxhelper.helper_pids()
    # Many creations queued, then the helper dies under them: every call ends (done
    # or EIO), none hangs.
    calls = [asyncio.ensure_future(mgr.create("default", f"p{i}", ip_in(n1, 10 + i), "x"))
             for i in range(40)]
    await asyncio.sleep(0)
    os.kill(pid, signal.SIGKILL)
    results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 30)
    failed = [r for r in results if isinstance(r, BaseException)]
    assert failed and all(isinstance(r, OSError) and r.errno == errno.EIO for r in failed)
    # The next call gets a new helper, which knows the node without being told again.
    sb2 = await mgr.create("default", "b", ip_in(n1, 3), "b")
    assert sandboxhelper.helper_pids() != [pid] and nsexec.is_ns_handle(sb2.netns_path)
    # What the dead helper left half made is what a crash leaves: reported, then removed.
    for key in mgr.incomplete():
        await mgr.delete(*key.split("/", 1))
    for i in range(40):
        await mgr.delete("default", f"p{i}")
    for name in ("a", "b"):
        await mgr.delete("default", name)
    assert not any(names.is_cluster_netns(cfg.cluster_name, e) and "_default_" in e
                   for e in os.listdir(names.NETNS_DIR))
    mgr.close()


def test_calls_from_successive_event_loops(node: tuple[Config, NodeNet]) -> None:
    # pytest-asyncio gives this sync test no loop: each asyncio.run is a new one.
    cfg, n1 = node
    mgr = SandboxManager(cfg, n1)
    for i in range(3):
        sb = asyncio.run(mgr.create("default", f"l{i}", ip_in(n1, 20 + i), f"l{i}"))
        assert nsexec.is_ns_handle(sb.netns_path)
    for i in range(3):
        asyncio.run(mgr.delete("default", f"l{i}"))
        assert not os.path.exists(names.netns_path(f"{cfg.cluster_name}_default_l{i}"))
    mgr.close()


async def test_shutdown_ends_the_helper(node: tuple[Config, NodeNet]) -> None:
    cfg, n1 = node
    mgr = SandboxManager(cfg, n1)
    sb = await mgr.create("default", "s", ip_in(n1, 4), "s")
    [pid] = sandboxhelper.helper_pids()
    await sandboxhelper.aclose()
    assert sandboxhelper.helper_pids() == []
    wait_for(lambda: not alive(pid), 10, "the helper to exit")
    await mgr.delete("default", "s")          # a new helper
    assert not os.path.exists(sb.netns_path)
    mgr.close()


async def test_without_the_helper(node: tuple[Config, NodeNet],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # NETD_SANDBOX_HELPER=0: the same work on the daemon's own namespace threads.
    cfg, n1 = node
    await sandboxhelper.aclose()
    monkeypatch.setenv("NETD_SANDBOX_HELPER", "0")
    mgr = SandboxManager(cfg, n1)
    sb = await mgr.create("default", "inproc", ip_in(n1, 5), "inproc",
                          files=("nameserver 10.96.0.10\n", "127.0.0.1 localhost\n"))
    assert sandboxhelper.helper_pids() == []
    assert nsexec.is_ns_handle(sb.netns_path)
    assert open(f"/etc/netns/{sb.netns}/resolv.conf").read() == "nameserver 10.96.0.10\n"
    await mgr.delete("default", "inproc")
    assert not os.path.exists(sb.netns_path)
    mgr.close()
