"""The node agent: netd's kubelet for one emulated node.

A Controller keyed by pod ("ns/name") over the shared pod informer, restricted to pods
with spec.nodeName = this node, plus the "@node" key for registration (netd.node.
registration). reconcile(pod):
- gone from the store (or moved) → stop its containers, delete the sandbox, release IP;
- deletionTimestamp → (in the background, so workers stay free) preStop, SIGTERM, grace,
  SIGKILL, sandbox deleted, IP released, then the pod deleted with grace 0 (kubelet's
  final delete);
- otherwise: IP (host-local, rebuilt on start from the store's pods and the sandboxes
  found in the kernel), sandbox, resolv.conf/hosts, volumes, a PodWorker; then the
  status the worker's containers give, written only when it changed.
A sandbox whose netns vanished behind netd's back is rebuilt and the pod's containers
restart (restartCount grows), as kubelet does when the pod sandbox dies.
The Node object deleted → every pod on this node is torn down and deleted.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

from netd.api import errors
from netd.client.clock import Clock, RealClock
from netd.client.controller import Controller
from netd.client.informer import index_by_node, key_of, split_key
from netd.config import Config
from netd.controllers.manager import ControllerContext
from netd.api.kinds import resource
from netd.node import dnsfiles, filewriter, names
from netd.node.cleanup import kill_unrecorded, netns_processes
from netd.node.cluster_net import ClusterNetwork, NodeNet
from netd.node.ipam import PodIPAllocator
from netd.node.mirror import DnsMirrorPod
from netd.node.podstatus import pod_status
from netd.node.registration import LEASE_RENEW, NODE_KEY, NodeRegistration
from netd.node.runtime import RUNTIMES, PodRuntime
from netd.node.sandbox import Sandbox, SandboxManager
from netd.node.volumes import (VolumeError, pod_dir, pod_log_dirs, prepare,
                               remove_orphan_pod_dirs)
from netd.node.workloads import PodWorker, Timing
from netd.registry.objectapi import timestamp

log = logging.getLogger("netd.node.agent")

Obj = dict[str, Any]
POD_INDEX = "spec.nodeName"


# Like NODE_KEY, not a valid "ns/name": never collides with a pod key.
SANDBOX_CHECK_KEY = "@sandbox-check"
SANDBOX_CHECK_PERIOD = 2.0
STATUS_COALESCE = 0.05     # seconds a new pod's first status write waits for its containers

POD = resource("", "pods")
NODE = resource("", "nodes")
SERVICE = resource("", "services")
CONFIGMAP = resource("", "configmaps")
PVC = resource("", "persistentvolumeclaims")
PV = resource("", "persistentvolumes")


class NodeAgent(Controller):
    def __init__(self, ctx: ControllerContext, network: ClusterNetwork, node: NodeNet, *,
                 timing: Timing | None = None, clock: Clock | None = None,
                 labels: dict[str, str] | None = None,
                 taints: list[dict[str, str]] | None = None) -> None:
        super().__init__(f"kubelet:{node.name}", workers=4)
        self.ctx = ctx
        self.config: Config = ctx.config
        self.network = network
        self.node = node
        self.node_name = node.name
        self.node_ip = node.ip
        self.clock = clock or RealClock()
        self.timing = timing or Timing()
        self.sandboxes = SandboxManager(ctx.config, node)
        self.ipam = PodIPAllocator(node.pod_cidr)
        self.registration = NodeRegistration(ctx, node.name, labels or {}, taints or [],
                                             node.pod_cidr, node.ip,
                                             os_image="netd node (network namespace)",
                                             runtime_version="netd://1.0")
        self.runtime = PodRuntime(node.name)
        self.mirror = DnsMirrorPod(ctx, node.name, node.ip)   # kube-dns endpoint: not run
        self.workers_by_key: dict[str, PodWorker] = self.runtime.workers
        self.pods = self.watch(ctx.factory.informer(POD), keys_for=self._pod_keys)
        self.watch(ctx.factory.informer(NODE), keys_for=self._node_keys)
        self.services_inf = ctx.factory.informer(SERVICE)
        self.configmaps_inf = ctx.factory.informer(CONFIGMAP)
        self.pvcs_inf = ctx.factory.informer(PVC)
        self.pvs_inf = ctx.factory.informer(PV)
        for inf in (self.services_inf, self.configmaps_inf, self.pvcs_inf, self.pvs_inf):
            if inf not in self.informers:
                self.informers.append(inf)
        try:
            self.pods.add_index(POD_INDEX, index_by_node)
        except ValueError:
            pass   # another agent on the shared informer added it
        self._adopt: dict[str, Sandbox] = {}
        # key -> uid of a torn-down pod whose directory (logs, volumes, state) waits
        # for the object to go: `kubectl logs` of a finished or terminating pod reads it.
        self._dirs: dict[str, str] = {}
        self._created = time.time()
        self._stray: dict[str, list[int]] = {}
        self._started = False
        self._stopping: dict[str, asyncio.Task[None]] = {}
        self._last_status: dict[str, Obj] = {}
        self._host_resolv = ""

    # ---- Host protocol for workers ------------------------------------------------------

    def now_ts(self) -> str:
        return timestamp(self.ctx.now())

    def changed(self, key: str) -> None:
        self.enqueue(key)

    def event(self, pod: Obj, type_: str, reason: str, message: str) -> None:
        self.ctx.recorder.record(pod, type_, reason, message, component="kubelet",
                                 host=self.node_name)

    def open_socket(self, sb: Sandbox, family: int, type_: int, port: int) -> socket.socket:
        return self.sandboxes.open_socket(sb, family, type_, port)

    def services(self, namespace: str) -> list[Obj]:
        return [s for s in self.services_inf.list()
                if s["metadata"].get("namespace") in (namespace, "default")]

    def configmap(self, namespace: str, name: str) -> Obj | None:
        return self.configmaps_inf.get(f"{namespace}/{name}")

    # ---- keys ---------------------------------------------------------------------------

    def _pod_keys(self, pod: Obj) -> list[str]:
        if (pod.get("spec") or {}).get("nodeName") == self.node_name:
            return [key_of(pod)]
        return []

    def _node_keys(self, node: Obj) -> list[str]:
        return [NODE_KEY] if node["metadata"].get("name") == self.node_name else []

    async def wait_synced(self) -> None:
        await super().wait_synced()
        await self._startup()
        self.enqueue(NODE_KEY)
        self.enqueue(SANDBOX_CHECK_KEY)

    async def _startup(self) -> None:
        """Adopt: IPs from the store's pods and the kernel's sandboxes; sandboxes of
        pods that no longer exist are removed."""
        RUNTIMES[self.node_name] = self.runtime
        try:
            self._host_resolv = Path("/etc/resolv.conf").read_text()
        except OSError:
            self._host_resolv = ""
        pods = {key_of(p): p for p in self.pods.by_index(POD_INDEX, self.node_name)}
        existing = self.sandboxes.existing()
        for key, sb in existing.items():
            pod = pods.get(key)
            if pod is None or pod["metadata"].get("deletionTimestamp") is None and \
                    (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                ns, name = split_key(key)
                log.info("node %s: removing sandbox of %s (no such pod)", self.node_name, key)
                await self.sandboxes.delete(ns, name)
                continue
            uid = pod["metadata"].get("uid", "")
            if self.ipam.reserve(uid, sb.ip):
                self._adopt[key] = sb
        # Processes in an adopted sandbox that no record names (started the moment
        # before a crash, exec sessions of the old daemon) would run beside the
        # container restarted for them: found here, killed when the pod is adopted.
        self._stray = await asyncio.get_running_loop().run_in_executor(
            None, netns_processes, [sb.netns_path for sb in self._adopt.values()])
        for key, pod in pods.items():
            ip = (pod.get("status") or {}).get("podIP")
            if ip and key not in self._adopt:
                self.ipam.reserve(pod["metadata"].get("uid", ""), ip)
        # Directories of pods deleted while no daemon ran (kubelet's
        # cleanupOrphanedPodDirs); only ones older than this agent, so a pod another
        # agent is starting right now is never touched.
        known = {str(p["metadata"].get("uid")) for p in self.pods.list()}
        await asyncio.get_running_loop().run_in_executor(
            None, remove_orphan_pod_dirs, self.config, known, self._created)
        self._started = True

    # ---- reconcile -----------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        if key == SANDBOX_CHECK_KEY:
            # A pod namespace deleted behind netd's back changes no object: look for it.
            self.enqueue_after(SANDBOX_CHECK_KEY, SANDBOX_CHECK_PERIOD)
            for pod_key, w in list(self.workers_by_key.items()):
                if w.sandbox is not None and not os.path.exists(w.sandbox.netns_path):
                    self.enqueue(pod_key)
            return
        if key == NODE_KEY:
            self.enqueue_after(NODE_KEY, LEASE_RENEW)
            node = await self.registration.sync()
            if node is None and self.registration.lost:
                await self._evict_all()
            else:
                await self.mirror.sync()
            return
        if self.mirror.owns(key):
            await self.mirror.sync()
            return
        if self.registration.lost:
            return
        pod = self.pods.get(key)
        if pod is None or (pod.get("spec") or {}).get("nodeName") != self.node_name:
            await self._teardown(key)
            return
        meta = pod["metadata"]
        worker = self.workers_by_key.get(key)
        if worker is not None and worker.uid != meta.get("uid"):
            await self._teardown(key)       # a new pod under an old name
            worker = None
        if meta.get("deletionTimestamp"):
            if key not in self._stopping:
                grace = float(meta.get("deletionGracePeriodSeconds") or 0)
                self._stopping[key] = asyncio.get_running_loop().create_task(
                    self._terminate(key, pod, grace), name=f"terminate:{key}")
            return
        phase = (pod.get("status") or {}).get("phase")
        if worker is None and phase in ("Succeeded", "Failed"):
            return
        if worker is None:
            worker = await self._start_pod(key, pod)
            if worker is not None:
                # As kubelet's status manager writes a pod's latest status rather than
                # every step, the first write waits a moment: containers that start at
                # once (the worker enqueues the key) make Pending -> Running one write.
                self.enqueue_after(key, STATUS_COALESCE)
            return
        elif worker.sandbox is not None and not os.path.exists(worker.sandbox.netns_path):
            log.warning("pod %s: sandbox network namespace vanished; recreating", key)
            await self._rebuild(key, pod, worker)
            return
        await self._write_status(key, pod, worker)

    async def _start_pod(self, key: str, pod: Obj) -> PodWorker | None:
        meta = pod["metadata"]
        uid = str(meta.get("uid") or "")
        ns, name = split_key(key)
        adopted = self._adopt.pop(key, None)
        ip = adopted.ip if adopted is not None else self.ipam.get(uid)
        if ip is None:
            have = (pod.get("status") or {}).get("podIP")
            ip = have if have and self.ipam.reserve(uid, have) else self.ipam.allocate(uid)
        if ip is None:
            self.event(pod, "Warning", "FailedCreatePodSandBox",
                       "Failed to create pod sandbox: failed to allocate for range 0: no IP "
                       f"addresses available in range set: {self.ipam.range_text()}")
            self.enqueue_after(key, 10.0)
            return None
        hostname = dnsfiles.uts_hostname(pod, self.config.domain)
        try:
            volumes = prepare(self.config, pod, configmaps=self.configmap,
                              pvcs=lambda n, c: self.pvcs_inf.get(f"{n}/{c}"),
                              pvs=lambda n: self.pvs_inf.get(n))
        except VolumeError as exc:
            self.event(pod, "Warning", "FailedMount", f"MountVolume.SetUp failed: {exc}")
            self.enqueue_after(key, 2.0)
            return None
        sb = await self.sandboxes.create(ns, name, ip, hostname, files=self._files(pod, ip),
                                         dirs=pod_log_dirs(self.config, pod))
        worker = PodWorker(self, pod, sb, volumes, hostname)
        self.workers_by_key[key] = worker
        state = self._load_state(uid) if adopted is not None else None
        if adopted is not None:
            recorded = {int(c.get("pid") or 0) for c in
                        ((state or {}).get("containers") or {}).values() if isinstance(c, dict)}
            stray = self._stray.pop(adopted.netns_path, [])
            if stray and kill_unrecorded(stray, recorded - {0}):
                log.info("pod %s: killed processes no record names", key)
        worker.start(state)
        return worker

    def _files(self, pod: Obj, ip: str) -> tuple[str, str]:
        resolv = dnsfiles.resolv_conf(pod, dns_ip=self.config.dns_ip, domain=self.config.domain,
                                      host_resolv=self._host_resolv)
        return resolv, dnsfiles.hosts_file(pod, [ip], self.config.domain)

    def _load_state(self, uid: str) -> Obj | None:
        try:
            doc = json.loads(Path(names.state_path(self.config.cluster_name, uid)).read_text())
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) and doc.get("uid") == uid else None

    async def _rebuild(self, key: str, pod: Obj, worker: PodWorker) -> None:
        await worker.stop(0)
        counts = {c.name: c.cs.restart_count + 1 for c in worker.all()}
        last = {c.name: c.cs.state for c in worker.all()}
        ns, name = split_key(key)
        await self.sandboxes.delete(ns, name)
        self.workers_by_key.pop(key, None)
        new = await self._start_pod(key, pod)
        if new is not None:
            for c in new.all():
                c.cs.restart_count = counts.get(c.name, 0)
                if "terminated" in last.get(c.name, {}):
                    c.cs.last_state = last[c.name]
            self.enqueue(key)

    async def _write_status(self, key: str, pod: Obj, worker: PodWorker) -> None:
        status = pod_status(pod, sandbox_ready=worker.sandbox is not None,
                            inits=[c.cs for c in worker.inits],
                            containers=[c.cs for c in worker.containers],
                            init_failed=worker.init_failed,
                            pod_ip=worker.sandbox.ip if worker.sandbox else "",
                            host_ip=self.node_ip, now=self.ctx.now())
        if status == pod.get("status"):
            return
        updated = dict(pod)
        updated["status"] = status
        try:
            await self.ctx.client.update_status(POD, updated)
        except errors.NotFound:
            return
        if status.get("phase") in ("Succeeded", "Failed") and \
                (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
            # kubelet tears down the sandbox of a finished pod; the status keeps podIP.
            await self._teardown(key, keep_worker_state=True)

    # ---- teardown ------------------------------------------------------------------------

    async def _terminate(self, key: str, pod: Obj, grace: float) -> None:
        try:
            await self._teardown(key, grace=grace)
            meta = pod["metadata"]
            try:
                await self.ctx.client.delete(POD, meta["namespace"], meta["name"], grace=0,
                                             uid=meta.get("uid"))
            except (errors.NotFound, errors.Conflict):
                pass
        finally:
            self._stopping.pop(key, None)

    async def _teardown(self, key: str, grace: float = 0.0,
                        keep_worker_state: bool = False) -> None:
        worker = self.workers_by_key.pop(key, None)
        ns, name = split_key(key)
        uid = ""
        if worker is not None:
            uid = worker.uid
            await worker.stop(grace)
            await self.sandboxes.delete(ns, name)
            self.ipam.release(uid)
        elif key in self._adopt:
            self._adopt.pop(key)
            await self.sandboxes.delete(ns, name)
        if uid:
            self._dirs[key] = uid
        await self._remove_dir(key)

    async def _remove_dir(self, key: str, force: bool = False) -> None:
        uid = self._dirs.get(key)
        if uid is None:
            return
        pod = self.pods.get(key)
        if not force and pod is not None and pod["metadata"].get("uid") == uid:
            return
        del self._dirs[key]
        # Off the event loop (a few ms of file system work per pod here stalled every
        # other pod while 1,000 were deleted), on the ordered file writer: after the
        # pod's last queued state record, which would otherwise re-create the directory.
        d = pod_dir(self.config, uid)
        state = names.state_path(self.config.cluster_name, uid)
        await filewriter.writer().run(lambda: _remove_pod_files(d, state))

    async def _evict_all(self) -> None:
        for pod in list(self.pods.by_index(POD_INDEX, self.node_name)):
            key = key_of(pod)
            await self._teardown(key)
            meta = pod["metadata"]
            try:
                await self.ctx.client.delete(POD, meta["namespace"], meta["name"], grace=0)
            except (errors.NotFound, errors.Conflict):
                pass
            await self._remove_dir(key, force=True)

    async def shutdown(self) -> None:
        """Stop serving built-in sockets and watching processes; processes keep running
        (a daemon restart re-adopts them), sandboxes stay."""
        self.stop()
        for w in list(self.workers_by_key.values()):
            for c in w.all():
                if c.servers is not None:
                    c.servers.close()
            if w.task is not None:
                w.task.cancel()
            for t in list(w.tasks):
                t.cancel()
        RUNTIMES.pop(self.node_name, None)
        self.sandboxes.close()
        # The queued state records and log files reach the disk before the daemon goes.
        files = filewriter.writer()
        if not await asyncio.get_running_loop().run_in_executor(None, files.flush, 10.0):
            log.warning("file writer: %d jobs not flushed at shutdown", files.pending())


def _remove_pod_files(d: Path, state: str) -> None:
    shutil.rmtree(d, ignore_errors=True)
    try:
        os.unlink(state)
    except FileNotFoundError:
        pass
