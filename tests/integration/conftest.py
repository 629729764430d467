"""Root-only fixtures: every test gets its own cluster name and CIDRs, and afterwards
proves that no netns, link, route or file of that cluster is left (removing leftovers
so one failure does not cascade into the next test)."""
from __future__ import annotations

import os
import random
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from netd.config import Config, NodeConfig
from netd.node import names

ROOT = os.geteuid() == 0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("root") and not ROOT:
            item.add_marker(pytest.mark.skip(reason="needs root"))


def wait_for(cond: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll a condition until a deadline (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def make_config(nodes: int = 2, mode: str = "netns") -> Config:
    """A cluster with a random name and random 10.x ranges (parallel tests and other
    clusters on the machine must not share routes)."""
    a, b, c = random.sample(range(100, 250), 3)
    # 3 bytes: with 2, two of a session's ~50 clusters shared a name about once in 50 runs.
    name = "it" + os.urandom(3).hex()
    return replace(Config(), cluster_name=name, pod_cidr=f"10.{a}.0.0/16",
                   service_cidr=f"10.{b}.0.0/16", dns_ip=f"10.{b}.0.10",
                   node_network=f"10.{c}.0.0/24", node_mode=mode,
                   state_dir=f"/tmp/netd-it/{name}",
                   nodes=[NodeConfig(f"node-{i + 1}") for i in range(nodes)])


def leftovers(cfg: Config) -> list[str]:
    cluster = cfg.cluster_name
    found: list[str] = []
    try:
        found += [f"netns {e}" for e in os.listdir(names.NETNS_DIR)
                  if names.is_cluster_netns(cluster, e)]
    except FileNotFoundError:
        pass
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    for line in links.splitlines():
        ifname = line.split(":", 2)[1].strip().split("@")[0]
        if ifname.startswith(f"{cluster}-") or f"netd:{cluster}:" in line:
            found.append(f"link {ifname}")
    routes = subprocess.run(["ip", "-o", "route", "show", "table", "all"],
                            capture_output=True, text=True).stdout
    prefixes = [cfg.pod_cidr.rsplit(".", 2)[0] + ".", cfg.service_cidr.rsplit(".", 2)[0] + ".",
                cfg.node_network.rsplit(".", 1)[0] + "."]
    for line in routes.splitlines():
        dst = line.split()[1] if line.split()[0] in ("blackhole", "local", "broadcast") \
            else line.split()[0]
        if any(dst.startswith(p) for p in prefixes):
            found.append(f"route {line.strip()}")
    for path in (names.cluster_run_dir(cluster),):
        if os.path.exists(path):
            found.append(f"dir {path}")
    with open("/proc/self/mountinfo") as f:
        found += [f"mount {line.split()[4]}" for line in f
                  if line.split()[4].startswith(names.cluster_run_dir(cluster) + "/")
                  or line.split()[4] == names.cluster_run_dir(cluster)]
    if os.path.isdir(names.ETC_NETNS_DIR):
        found += [f"etc {e}" for e in os.listdir(names.ETC_NETNS_DIR)
                  if names.is_cluster_netns(cluster, e)]
    # A namespace the sandbox helper still holds open lives on without a handle.
    found += [f"sandbox helper holds namespace inode {ino}" for ino in _helper_orphans()]
    return found


def _helper_orphans() -> list[int]:
    """Namespaces the sandbox helper has open that no handle in /run/netns names (and
    that are not its own home namespaces): kept alive by it alone. Any cluster's: the
    helper outlives tests, so whichever test left one fails."""
    from netd.node import sandboxhelper
    home = {os.stat(f"/proc/self/ns/{t}") for t in ("net", "uts")}
    nsdev = next(iter(home)).st_dev
    keep = {(st.st_dev, st.st_ino) for st in home}
    try:
        keep |= {(st.st_dev, st.st_ino) for st in
                 (os.stat(f"{names.NETNS_DIR}/{e}") for e in os.listdir(names.NETNS_DIR))}
    except OSError:
        pass
    out = []
    for pid in sandboxhelper.helper_pids():
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                st = os.stat(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if st.st_dev == nsdev and (st.st_dev, st.st_ino) not in keep:
                out.append(st.st_ino)
    return out


@pytest.fixture
def cluster_config() -> Iterator[Config]:
    cfg = make_config()
    yield cfg
    _check_clean(cfg)
    shutil.rmtree(cfg.state_dir, ignore_errors=True)


@pytest.fixture
def host_config() -> Iterator[Config]:
    cfg = make_config(nodes=1, mode="host")
    yield cfg
    _check_clean(cfg)
    shutil.rmtree(cfg.state_dir, ignore_errors=True)


def _check_clean(cfg: Config) -> None:
    try:
        # Kernel namespace cleanup is asynchronous; links/routes inside dying
        # namespaces vanish on their own, so only the host view is checked, with a
        # deadline.
        wait_for(lambda: not leftovers(cfg), timeout=10, what="cluster objects to vanish")
    except AssertionError:
        left = leftovers(cfg)
        from netd.node.cluster_net import teardown_sync
        teardown_sync(cfg)
        pytest.fail(f"cluster {cfg.cluster_name} left kernel objects: {left}")
