"""Simulated node agent: addressing (pure), Node/Lease registration and heartbeat, pods
made Running with unique IPs (kept across a restart), graceful deletion completed."""
from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator

import pytest

import netd.config
from netd.client.informer import key_of
from netd.config import Config, ConfigError, NodeConfig
from netd.controllers.manager import ControllerContext, build_context
from netd.node.simulated import (
    LEASE_RENEW, STATUS_REPORT, PodIPAllocator, SimulatedNodeAgent, agents, image_ref,
    node_internal_ip, node_pod_cidr, running_status)
from netd.registry.bootstrap import ensure_system_objects
from netd.registry.objectapi import ObjectAPI
from netd.store.sqlite import SQLiteStore

Obj = dict[str, Any]
T0 = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
DEADLINE = 5.0


# ---- pure parts ------------------------------------------------------------------------

def test_allocator_skips_network_gateway_broadcast_and_round_robins() -> None:
    ipam = PodIPAllocator("10.244.1.0/29")   # .2 .. .6 usable
    got = [ipam.allocate(f"u{i}") for i in range(5)]
    assert got == [f"10.244.1.{i}" for i in range(2, 7)]
    assert ipam.allocate("u5") is None                   # exhausted
    assert ipam.allocate("u0") == "10.244.1.2"           # idempotent per owner
    ipam.release("u1")
    ipam.release("u3")
    # host-local continues after the last address handed out: .3 before .5 (wrap).
    assert ipam.allocate("new1") == "10.244.1.3"
    assert ipam.allocate("new2") == "10.244.1.5"


def test_allocator_reserve_after_restart() -> None:
    ipam = PodIPAllocator("10.244.0.0/24")
    assert ipam.reserve("a", "10.244.0.7")
    assert not ipam.reserve("b", "10.244.0.7")            # taken by a
    assert not ipam.reserve("c", "10.244.0.1")            # the gateway
    assert not ipam.reserve("c", "10.244.0.255")          # broadcast
    assert not ipam.reserve("c", "10.245.0.9")            # outside
    assert ipam.allocate("b") == "10.244.0.8"             # continues after the adopted one
    assert len(ipam) == 2


CIDR_CASES = [
    ("first", {}, 0, "10.244.0.0/24", "172.18.0.2"),
    ("third", {}, 2, "10.244.2.0/24", "172.18.0.4"),
    ("bigger-blocks", {"node_cidr_size": 23}, 1, "10.244.2.0/23", "172.18.0.3"),
    ("other-ranges", {"pod_cidr": "10.32.0.0/12", "node_network": "192.168.50.0/24"}, 5,
     "10.32.5.0/24", "192.168.50.7"),
]


@pytest.mark.parametrize("overrides,index,cidr,ip", [c[1:] for c in CIDR_CASES],
                         ids=[c[0] for c in CIDR_CASES])
def test_node_addressing(overrides: dict[str, Any], index: int, cidr: str, ip: str) -> None:
    cfg = replace(Config(), **overrides)
    assert node_pod_cidr(cfg, index) == cidr
    assert node_internal_ip(cfg, index) == ip


def test_node_addressing_out_of_room() -> None:
    cfg = replace(Config(), pod_cidr="10.244.0.0/23")
    with pytest.raises(ConfigError):
        node_pod_cidr(cfg, 2)


@pytest.mark.parametrize("image,want", [
    ("nginx", "docker.io/library/nginx"),
    ("nginx:1.25", "docker.io/library/nginx"),
    ("ikubernetes/myapp:v1", "docker.io/ikubernetes/myapp"),
    ("registry.k8s.io/pause:3.9", "registry.k8s.io/pause"),
    ("localhost:5000/app@sha256:abc", "localhost:5000/app"),
], ids=["bare", "tag", "user", "registry", "port-digest"])
def test_image_ref(image: str, want: str) -> None:
    assert image_ref(image) == want


def test_running_status_is_stable_and_honours_readiness_gates() -> None:
    pod: Obj = {"metadata": {"uid": "u1"}, "spec": {
        "containers": [{"name": "c", "image": "nginx"}],
        "readinessGates": [{"conditionType": "example.com/lb"}]},
        "status": {"phase": "Pending", "qosClass": "BestEffort"}}
    s1 = running_status(pod, "10.244.0.2", "172.18.0.2", T0)
    conds = {c["type"]: c for c in s1["conditions"]}
    assert conds["ContainersReady"]["status"] == "True"
    assert (conds["Ready"]["status"], conds["Ready"]["reason"]) == ("False",
                                                                    "ReadinessGatesNotReady")
    assert s1["qosClass"] == "BestEffort"
    pod["status"] = dict(s1, conditions=s1["conditions"] + [
        {"type": "example.com/lb", "status": "True"}])
    s2 = running_status(pod, "10.244.0.2", "172.18.0.2", T0 + timedelta(seconds=30))
    conds = {c["type"]: c for c in s2["conditions"]}
    assert conds["Ready"]["status"] == "True"
    assert conds["Ready"]["lastTransitionTime"] == "2025-01-02T03:04:35Z"
    assert conds["Initialized"]["lastTransitionTime"] == "2025-01-02T03:04:05Z"
    assert s2["containerStatuses"][0]["state"]["running"]["startedAt"] == "2025-01-02T03:04:05Z"
    pod["status"] = s2
    assert running_status(pod, "10.244.0.2", "172.18.0.2", T0 + timedelta(hours=1)) == s2


# ---- the agent against a store ------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> datetime:
        return self.t


@pytest.fixture
async def env(tmp_path: Any) -> AsyncIterator[tuple[ControllerContext, Clock]]:
    store = SQLiteStore(":memory:")
    clock = Clock()
    api = ObjectAPI(store, clock=clock)
    await ensure_system_objects(api)
    cfg = replace(netd.config.load(None), state_dir=str(tmp_path), node_mode="simulated",
                  nodes=[NodeConfig("node-1", labels={"disk": "ssd"},
                                    taints=[{"key": "k", "value": "v",
                                             "effect": "NoSchedule"}]),
                         NodeConfig("node-2"), NodeConfig("node-3")])
    ctx = build_context(api, cfg)
    ctx.now = clock
    yield ctx, clock
    ctx.factory.stop()
    await store.close()


async def start(ctx: ControllerContext, agent: SimulatedNodeAgent) -> list[asyncio.Task[None]]:
    tasks = [asyncio.create_task(inf.run()) for inf in ctx.factory.informers if not inf.running]
    await ctx.factory.wait_synced()
    return tasks


async def stop(tasks: list[asyncio.Task[None]]) -> None:
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def caught_up(ctx: ControllerContext) -> None:
    def in_step() -> bool:
        for inf in ctx.factory.informers:
            items, _ = ctx.api.store.list(inf.rt.group_resource)
            want = {key_of(i.obj): i.rv for i in items}
            have = {k: int((inf.get(k) or {})["metadata"]["resourceVersion"])
                    for k in inf.keys()}
            if want != have:
                return False
        return True

    async def poll() -> None:
        while not in_step():
            await asyncio.sleep(0.001)
    await asyncio.wait_for(poll(), DEADLINE)


def bound_pod(name: str, node: str = "node-1") -> Obj:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node, "containers": [{"name": "web", "image": "nginx:1.25"}]}}


async def test_agents_from_config(env: tuple[ControllerContext, Clock]) -> None:
    ctx, _ = env
    made = agents(ctx)
    assert [(a.node_name, a.pod_cidr, a.internal_ip) for a in made] == [
        ("node-1", "10.244.0.0/24", "172.18.0.2"), ("node-2", "10.244.1.0/24", "172.18.0.3"),
        ("node-3", "10.244.2.0/24", "172.18.0.4")]
    assert made[0].labels == {"disk": "ssd"}


async def test_registers_node_and_lease_and_heartbeats(
        env: tuple[ControllerContext, Clock]) -> None:
    ctx, clock = env
    agent = agents(ctx)[0]
    tasks = await start(ctx, agent)
    await agent.reconcile("@node")
    node = ctx.client.get("Node", "", "node-1")
    assert node["spec"]["podCIDR"] == "10.244.0.0/24"
    assert node["spec"]["podCIDRs"] == ["10.244.0.0/24"]
    assert node["spec"]["taints"] == [{"key": "k", "value": "v", "effect": "NoSchedule"}]
    labels = node["metadata"]["labels"]
    assert labels["disk"] == "ssd" and labels["kubernetes.io/hostname"] == "node-1"
    st = node["status"]
    assert st["addresses"] == [{"type": "InternalIP", "address": "172.18.0.2"},
                               {"type": "Hostname", "address": "node-1"}]
    assert {k: st["allocatable"][k] for k in ("cpu", "memory", "pods")} == {
        "cpu": "4", "memory": "8Gi", "pods": "110"}
    conds = {c["type"]: (c["status"], c["reason"]) for c in st["conditions"]}
    assert conds == {"Ready": ("True", "KubeletReady"),
                     "MemoryPressure": ("False", "KubeletHasSufficientMemory"),
                     "DiskPressure": ("False", "KubeletHasNoDiskPressure"),
                     "PIDPressure": ("False", "KubeletHasSufficientPID")}
    assert st["nodeInfo"]["kubeletVersion"] == "v1.32.0-netd"
    assert st["nodeInfo"]["containerRuntimeVersion"] == "netd://sim"
    lease = ctx.client.get("Lease", "kube-node-lease", "node-1")
    assert lease["spec"]["holderIdentity"] == "node-1"
    assert lease["spec"]["renewTime"] == "2025-01-02T03:04:05.000000Z"
    assert lease["metadata"]["ownerReferences"][0]["uid"] == node["metadata"]["uid"]

    clock.t += timedelta(seconds=LEASE_RENEW)
    await agent.reconcile("@node")
    assert ctx.client.get("Lease", "kube-node-lease", "node-1")["spec"]["renewTime"] == \
        "2025-01-02T03:04:15.000000Z"
    ready = next(c for c in ctx.client.get("Node", "", "node-1")["status"]["conditions"]
                 if c["type"] == "Ready")
    assert ready["lastHeartbeatTime"] == "2025-01-02T03:04:05Z"      # not due yet
    clock.t += timedelta(seconds=STATUS_REPORT)
    await agent.reconcile("@node")
    ready = next(c for c in ctx.client.get("Node", "", "node-1")["status"]["conditions"]
                 if c["type"] == "Ready")
    assert ready["lastHeartbeatTime"] == "2025-01-02T03:05:15Z"
    assert ready["lastTransitionTime"] == "2025-01-02T03:04:05Z"

    # A deleted Node is not registered again (as a running kubelet would not).
    await ctx.client.delete("Node", "", "node-1")
    clock.t += timedelta(seconds=STATUS_REPORT)
    await agent.reconcile("@node")
    assert ctx.client.get_or_none("Node", "", "node-1") is None
    await stop(tasks)


async def test_pods_run_with_unique_ips_kept_across_restart(
        env: tuple[ControllerContext, Clock]) -> None:
    ctx, _ = env
    agent = agents(ctx)[0]
    tasks = await start(ctx, agent)
    await agent.reconcile("@node")
    names = [f"web-{i}" for i in range(5)]
    for n in names:
        await ctx.client.create("Pod", bound_pod(n))
    await ctx.client.create("Pod", bound_pod("elsewhere", node="node-2"))
    await caught_up(ctx)
    for n in names + ["elsewhere"]:
        await agent.reconcile(f"default/{n}")
    pods = {n: ctx.client.get("Pod", "default", n) for n in names}
    net = ipaddress.IPv4Network("10.244.0.0/24")
    ips = [p["status"]["podIP"] for p in pods.values()]
    assert len(set(ips)) == 5
    assert all(ipaddress.IPv4Address(ip) in net and not ip.endswith((".0", ".1"))
               for ip in ips)
    p = pods["web-0"]
    st = p["status"]
    assert st["phase"] == "Running"
    assert st["podIPs"] == [{"ip": st["podIP"]}]
    assert st["hostIP"] == "172.18.0.2" and st["hostIPs"] == [{"ip": "172.18.0.2"}]
    assert {c["type"]: c["status"] for c in st["conditions"]} == {
        "PodReadyToStartContainers": "True", "Initialized": "True", "Ready": "True",
        "ContainersReady": "True", "PodScheduled": "True"}
    cs = st["containerStatuses"][0]
    assert (cs["ready"], cs["started"], cs["restartCount"]) == (True, True, 0)
    assert cs["containerID"].startswith("netd://")
    assert cs["imageID"].startswith("docker.io/library/nginx@sha256:")
    assert "podIP" not in ctx.client.get("Pod", "default", "elsewhere")["status"]
    # Reporting again changes nothing (no write).
    rv = p["metadata"]["resourceVersion"]
    await caught_up(ctx)
    await agent.reconcile("default/web-0")
    assert ctx.client.get("Pod", "default", "web-0")["metadata"]["resourceVersion"] == rv

    # Restart: a fresh agent rebuilds its addresses from the pods and never hands one
    # of them out again.
    agent.stop()
    fresh = agents(ctx)[0]
    await ctx.client.create("Pod", bound_pod("web-new"))
    await caught_up(ctx)
    await fresh.reconcile("default/web-new")
    new_ip = ctx.client.get("Pod", "default", "web-new")["status"]["podIP"]
    assert new_ip not in ips
    for n in names:
        await fresh.reconcile(f"default/{n}")
        assert ctx.client.get("Pod", "default", n)["status"]["podIP"] == \
            pods[n]["status"]["podIP"]
    await stop(tasks)


async def test_graceful_deletion_completes_and_frees_the_address(
        env: tuple[ControllerContext, Clock]) -> None:
    ctx, _ = env
    agent = agents(ctx)[0]
    tasks = await start(ctx, agent)
    await ctx.client.create("Pod", bound_pod("web-0"))
    await caught_up(ctx)
    await agent.reconcile("default/web-0")
    ip = ctx.client.get("Pod", "default", "web-0")["status"]["podIP"]
    pending = await ctx.client.delete("Pod", "default", "web-0")
    assert pending["metadata"].get("deletionTimestamp")       # graceful: kubelet must confirm
    await caught_up(ctx)
    await agent.reconcile("default/web-0")
    assert ctx.client.get_or_none("Pod", "default", "web-0") is None
    assert ip and len(agent.ipam) == 0
    await stop(tasks)


async def test_agent_runs_as_a_controller(env: tuple[ControllerContext, Clock]) -> None:
    ctx, _ = env
    agent = agents(ctx)[1]
    tasks = await start(ctx, agent)
    runner = asyncio.create_task(agent.run())
    await ctx.client.create("Pod", bound_pod("p", node="node-2"))

    async def running() -> None:
        while True:
            p = ctx.client.get_or_none("Pod", "default", "p")
            node = ctx.client.get_or_none("Node", "", "node-2")
            if p and p["status"].get("phase") == "Running" and node is not None:
                return
            await asyncio.sleep(0.002)
    await asyncio.wait_for(running(), DEADLINE)
    assert ctx.client.get("Pod", "default", "p")["status"]["podIP"].startswith("10.244.1.")
    agent.stop()
    await runner
    await stop(tasks)
