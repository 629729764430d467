"""The node agent on real namespaces (root): pods with built-in servers and processes,
reachable from the host and from each other, status as a kubelet reports it, logs,
restarts, deletion leaving nothing, and re-adoption by a fresh agent."""
from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import pytest

import netd.config
from netd.client.informer import key_of
from netd.config import NodeConfig
from netd.controllers.manager import ControllerContext, build_context
from netd.node import nsexec
from netd.node.agent import NodeAgent
from netd.node.cluster_net import ClusterNetwork
from netd.node.workloads import Timing
from netd.registry.bootstrap import ensure_system_objects
from netd.registry.objectapi import ObjectAPI
from netd.store.sqlite import SQLiteStore

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]
Obj = dict[str, Any]
DEADLINE = 20.0
FAST = Timing(backoff_base=0.2, backoff_max=0.8, backoff_reset=600)


def netns_of(cluster: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines()
            if line.startswith(cluster + "_") or line.startswith(cluster + "-")]


class Env:
    def __init__(self, ctx: ControllerContext, network: ClusterNetwork) -> None:
        self.ctx = ctx
        self.network = network
        self.agents: list[NodeAgent] = []
        self.tasks: list[asyncio.Task[Any]] = []

    async def start_agents(self) -> list[NodeAgent]:
        nodes = await self.network.ensure()
        self.agents = [NodeAgent(self.ctx, self.network, n, timing=FAST) for n in nodes]
        for inf in self.ctx.factory.informers:
            if not inf.running:
                self.tasks.append(asyncio.create_task(inf.run()))
        for a in self.agents:
            self.tasks.append(asyncio.create_task(a.run()))
        return self.agents

    async def stop_agents(self) -> None:
        for a in self.agents:
            await a.shutdown()
        self.agents = []

    async def create(self, pod: Obj) -> Obj:
        return await self.ctx.client.create("Pod", pod)

    async def wait(self, ns: str, name: str, pred: Callable[[Obj], bool],
                   deadline: float = DEADLINE) -> Obj:
        async def poll() -> Obj:
            while True:
                p = self.ctx.client.get_or_none("Pod", ns, name)
                if p is not None and pred(p):
                    return p
                await asyncio.sleep(0.02)
        return await asyncio.wait_for(poll(), deadline)


@pytest.fixture
async def agent_env(tmp_path: Path) -> AsyncIterator[Env]:
    cluster = "it" + secrets.token_hex(3)
    store = SQLiteStore(":memory:")
    api = ObjectAPI(store)
    await ensure_system_objects(api)
    cfg = replace(netd.config.load(None), cluster_name=cluster, state_dir=str(tmp_path),
                  node_network="172.29.0.0/24", pod_cidr="10.250.0.0/16",
                  nodes=[NodeConfig("node-1"), NodeConfig("node-2")])
    ctx = build_context(api, cfg)
    network = ClusterNetwork(cfg)
    env = Env(ctx, network)
    try:
        yield env
    finally:
        await env.stop_agents()
        ctx.factory.stop()
        for t in env.tasks:
            t.cancel()
        await asyncio.gather(*env.tasks, return_exceptions=True)
        for ns in netns_of(cluster):   # pod sandboxes left by a failed test
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        await network.teardown()
        await store.close()
        leftover = netns_of(cluster)
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        assert leftover == [] and f" {cluster}-" not in links


def pod(name: str, containers: list[Obj], node: str = "node-1", **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node, "containers": containers, **spec}}


def ready(p: Obj) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in (p.get("status") or {}).get("conditions") or [])


async def http(ip: str, port: int, path: str) -> tuple[int, bytes]:
    r, w = await asyncio.wait_for(asyncio.open_connection(ip, port), 5)
    w.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    data = await asyncio.wait_for(r.read(), 5)
    w.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def in_pod(cluster: str, podname: str, *argv: str) -> str:
    # Async: the built-in servers run on this very loop, a blocking call would starve them.
    proc = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", f"{cluster}_default_{podname}", *argv,
        stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), 10)
    return out.decode()


async def test_builtin_pod_reachable_from_host_and_other_node(agent_env: Env) -> None:
    env = agent_env
    cluster = env.ctx.config.cluster_name
    await env.start_agents()
    await env.create(pod("web", [{"name": "nginx", "image": "nginx",
                                  "ports": [{"containerPort": 80}]}]))
    await env.create(pod("client", [{"name": "c", "image": "agnhost",
                                     "args": ["netexec", "--http-port=8080"]}], node="node-2"))
    web = await env.wait("default", "web", ready)
    client = await env.wait("default", "client", ready)
    st = web["status"]
    assert st["phase"] == "Running" and st["podIP"].startswith("10.250.0.")
    assert client["status"]["podIP"].startswith("10.250.1.")
    cs = st["containerStatuses"][0]
    assert cs["ready"] and cs["started"] and cs["restartCount"] == 0 and "running" in cs["state"]
    assert [c["type"] for c in st["conditions"]] == [
        "PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]
    # host -> pod
    code, body = await http(st["podIP"], 80, "/hostname")
    assert (code, body) == (200, b"web")
    code, body = await http(st["podIP"], 80, "/")
    assert b"default/web" in body
    # pod on node-2 -> pod on node-1 (curl-less: python in the client's namespace)
    out = await in_pod(cluster, "client", "python3", "-c",
                 "import urllib.request,sys;"
                 f"print(urllib.request.urlopen('http://{st['podIP']}/clientip').read().decode())")
    assert out.strip().startswith(client["status"]["podIP"] + ":")
    sb = env.agents[0].runtime.sandbox("default", "web")
    assert sb is not None
    proc = await nsexec.spawn(sb, ["hostname"], env={}, stdin=None,
                              stdout=asyncio.subprocess.PIPE, stderr=None)
    assert (await proc.communicate())[0].decode().strip() == "web"
    resolv = Path(f"/etc/netns/{cluster}_default_web/resolv.conf").read_text()
    assert "search default.svc.cluster.local svc.cluster.local cluster.local" in resolv
    # deletion: graceful, then the pod is gone and the sandbox with it
    await env.ctx.client.delete("Pod", "default", "web")

    async def gone() -> None:
        while env.ctx.client.get_or_none("Pod", "default", "web") is not None:
            await asyncio.sleep(0.02)
    await asyncio.wait_for(gone(), DEADLINE)
    assert f"{cluster}_default_web" not in netns_of(cluster)


async def test_command_container_log_exit_and_backoff(agent_env: Env) -> None:
    env = agent_env
    await env.start_agents()
    await env.create(pod("job", [{"name": "c", "image": "busybox",
                                  "command": ["sh", "-c", "echo hello $(MSG); hostname; exit 3"],
                                  "env": [{"name": "MSG", "value": "world"}]}],
                         restartPolicy="OnFailure"))
    p = await env.wait("default", "job", lambda p: (p["status"].get("containerStatuses") or [
        {}])[0].get("restartCount", 0) >= 2)
    cs = p["status"]["containerStatuses"][0]
    assert cs["lastState"].get("terminated"), cs
    assert cs["lastState"]["terminated"]["exitCode"] == 3
    assert cs["lastState"]["terminated"]["reason"] == "Error"
    assert p["status"]["phase"] == "Running"
    rt = env.agents[0].runtime
    path = rt.log_path("default", "job", "c", previous=True)
    assert path is not None
    lines = path.read_text().splitlines()
    assert lines[0].split(" ", 3)[1:] == ["stdout", "F", "hello world"]
    assert lines[1].endswith(" stdout F job")
    await env.create(pod("once", [{"name": "c", "image": "busybox",
                                   "command": ["true"]}], restartPolicy="Never"))
    done = await env.wait("default", "once", lambda p: p["status"].get("phase") == "Succeeded")
    term = done["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (term["exitCode"], term["reason"]) == (0, "Completed")
    await env.create(pod("missing", [{"name": "c", "image": "x", "command": ["/no/such"]}],
                         restartPolicy="Never"))
    bad = await env.wait("default", "missing", lambda p: p["status"].get("phase") == "Failed")
    term = bad["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["reason"] == "StartError" and "/no/such" in term["message"]


async def test_readiness_gates_ready_and_liveness_restarts(agent_env: Env) -> None:
    env = agent_env
    await env.start_agents()
    probe = {"httpGet": {"path": "/ready.html", "port": 80}, "periodSeconds": 1}
    await env.create(pod("rp", [{"name": "web", "image": "nginx",
                                 "ports": [{"containerPort": 80}], "readinessProbe": probe,
                                 "volumeMounts": [{"name": "html",
                                                   "mountPath": "/usr/share/nginx/html"}]}],
                         volumes=[{"name": "html", "emptyDir": {}}]))
    p = await env.wait("default", "rp", lambda p: "running" in (
        (p["status"].get("containerStatuses") or [{}])[0].get("state") or {}))
    assert not ready(p)
    uid = p["metadata"]["uid"]
    vol = Path(env.ctx.config.cluster_state_dir, "pods", uid, "volumes",
               "kubernetes.io~empty-dir", "html")
    (vol / "ready.html").write_text("ok")
    p = await env.wait("default", "rp", ready)
    code, body = await http(p["status"]["podIP"], 80, "/ready.html")
    assert (code, body) == (200, b"ok")
    # liveness: /exit makes the built-in server exit; a liveness probe on a dead port
    await env.create(pod("lp", [{"name": "web", "image": "nginx",
                                 "ports": [{"containerPort": 80}],
                                 "livenessProbe": {"tcpSocket": {"port": 81},
                                                   "periodSeconds": 1,
                                                   "failureThreshold": 1}}]))
    p = await env.wait("default", "lp", lambda p: (p["status"].get("containerStatuses") or [
        {}])[0].get("restartCount", 0) >= 1)
    assert p["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 137


async def test_fresh_agent_adopts_pods(agent_env: Env) -> None:
    env = agent_env
    await env.start_agents()
    await env.create(pod("sleeper", [{"name": "c", "image": "busybox",
                                      "command": ["sleep", "300"]}]))
    await env.create(pod("web", [{"name": "nginx", "image": "nginx",
                                  "ports": [{"containerPort": 80}]}]))
    s1 = await env.wait("default", "sleeper", ready)
    w1 = await env.wait("default", "web", ready)
    pid = env.agents[0].workers_by_key["default/sleeper"].containers[0].pid
    await env.stop_agents()
    await env.start_agents()
    w2 = await env.wait("default", "web", lambda p: True)

    async def reopened() -> None:
        while True:
            try:
                if (await http(w2["status"]["podIP"], 80, "/hostname"))[1] == b"web":
                    return
            except OSError:
                await asyncio.sleep(0.05)
    await asyncio.wait_for(reopened(), DEADLINE)
    worker = env.agents[0].workers_by_key["default/sleeper"]
    assert worker.containers[0].pid == pid and worker.sandbox is not None
    assert worker.sandbox.ip == s1["status"]["podIP"]
    s2 = env.ctx.client.get("Pod", "default", "sleeper")
    assert s2["status"]["containerStatuses"][0]["restartCount"] == 0
    assert w2["status"]["podIP"] == w1["status"]["podIP"]
    await env.ctx.client.delete("Pod", "default", "sleeper", grace=1)

    async def dead() -> None:
        while os.path.exists(f"/proc/{pid}"):
            await asyncio.sleep(0.02)
    await asyncio.wait_for(dead(), DEADLINE)
