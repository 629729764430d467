"""ProxyService: the nftables proxy of every node — one tracker, one coalescing
runner per node, each sync rendering that node's rules (a partial sync patches the
applied state with the changed ports: nftdelta.py) and applying them in one nft
transaction inside the node's namespace (libnftables: nftlib.py).

Started by the daemon after the cluster network exists. In simulated mode (no kernel)
and in userspace mode (netd/proxy/userspace.py) it does nothing.
Rules stay in place when the daemon stops (like kube-proxy: traffic keeps flowing
across a restart; the next start's first sync is a full one that adopts the table);
`netd down` removes them with the node namespaces (host mode: `remove_host_table`).
"""
from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Any

from netd import cleanup
from netd.config import Config
from netd.node.cluster_net import ClusterNetwork, NodeNet
from netd.node import nsexec
from netd.proxy import conntrack, nftapply, nftdelta
from netd.proxy.metrics import ProxyMetrics, metrics
from netd.proxy.model import ServicePort, Snapshot, cluster_endpoints, local_endpoints
from netd.proxy.nftables import (NodeView, RenderConfig, RuleSet, desired, partial_text,
                                 render_diff)
from netd.proxy.runner import BoundedFrequencyRunner
from netd.proxy.tracker import ProxyTracker

log = logging.getLogger("netd.proxy")


def table_name(config: Config) -> str:
    # Host mode shares the host's nftables with everything else: the table carries the
    # cluster's name so two clusters (and `netd down`) each see only their own.
    return f"netd-{config.cluster_name}" if config.node_mode == "host" else "netd"


def render_config(config: Config) -> RenderConfig:
    return RenderConfig(pod_cidr=config.pod_cidr, service_cidr=config.service_cidr,
                        dns_ip=config.dns_ip, table=table_name(config))


def udp_targets(snapshot: Snapshot, node: str) -> dict[tuple[str, int], set[int]]:
    """(endpoint ip, port) -> service ports a UDP flow to it may have been sent to."""
    out: dict[tuple[str, int], set[int]] = {}
    for sp in snapshot.ports:
        if sp.protocol != "UDP":
            continue
        ports = {sp.port} | ({sp.node_port} if sp.node_port else set())
        for ep in set(cluster_endpoints(sp)) | set(local_endpoints(sp, node)):
            out.setdefault((ep.ip, ep.port), set()).update(ports)
    return out


def udp_served(snapshot: Snapshot, node: NodeView) -> set[tuple[str, int]]:
    out: set[tuple[str, int]] = set()
    for sp in snapshot.ports:
        if sp.protocol != "UDP" or not cluster_endpoints(sp):
            continue
        for ip in sp.cluster_ips + sp.external_ips:
            out.add((ip, sp.port))
        if sp.node_port:
            out.update((ip, sp.node_port) for ip in node.node_ips)
    return out


def conntrack_flush(old: Snapshot | None, new: Snapshot, node: NodeView,
                    changed: list[ServicePort] | None = None) -> conntrack.Flush:
    """UDP conntrack entries to delete after `old` -> `new`; `changed` (the ports a
    partial sync touched, old and new values) lets a change without UDP skip the
    comparison of every port."""
    if old is None:
        return conntrack.Flush()
    if changed is not None and all(sp.protocol != "UDP" for sp in changed):
        return conntrack.Flush()
    before, after = udp_targets(old, node.name), udp_targets(new, node.name)
    stale = tuple((ip, port, frozenset(ports)) for (ip, port), ports in before.items()
                  if (ip, port) not in after)
    served = tuple(udp_served(new, node) - udp_served(old, node))
    return conntrack.Flush(stale, served)


class NodeProxy:
    """The rules of one node."""

    def __init__(self, tracker: ProxyTracker, node: NodeNet, cfg: RenderConfig,
                 min_interval: float, full_period: float,
                 stats: ProxyMetrics | None = None) -> None:
        self.tracker = tracker
        self.node = node
        self.view = NodeView(node.name, (node.ip,))
        self.cfg = cfg
        self.metrics = stats or metrics()
        self.applied: RuleSet | None = None
        self.applied_snapshot: Snapshot | None = None
        self.syncs = 0
        self.runner = BoundedFrequencyRunner(f"proxy:{node.name}", self.sync, min_interval,
                                             full_period)

    async def sync(self) -> None:
        start = time.monotonic()
        full = self.runner.run_full
        triggers = self.tracker.take_triggers()
        snap = self.tracker.snapshot()
        previous = self.applied
        changed: list[ServicePort] | None = None
        try:
            if not full and previous is not None and previous.complete:
                # Partial: patch what was applied (in place: a failure below drops it).
                new = previous
                update = nftdelta.update(new, snap, self.view, self.cfg,
                                         self.applied_snapshot)
                changed = update.old_ports + update.new_ports
                text = partial_text(update.change, self.cfg.table)
            else:
                # Rendering every service takes seconds at 10,000: on a thread, so the
                # loop (API, DNS, other nodes' partial syncs) keeps running meanwhile
                # (the GIL is shared in slices, not held for the whole render).
                loop = asyncio.get_running_loop()
                new = await loop.run_in_executor(None, desired, snap, self.view, self.cfg,
                                                 previous)
                if full and (previous is None or not previous.complete):
                    previous = await nftapply.existing(self.node.netns_path, self.cfg.table)
                text = await loop.run_in_executor(
                    None, functools.partial(render_diff, new, previous, self.cfg.table,
                                            full=full))
            if text:
                await nftapply.apply(self.node.netns_path, text)
                log.debug("node %s: applied %s sync:\n%s", self.node.name,
                          "full" if full else "partial", text)
        except Exception:
            # The kernel has the old rules or, if we cannot tell, something else: the
            # retry is a full sync that reads back what is there.
            self.applied = None
            self.metrics.failures.inc()
            self.tracker.requeue_triggers(triggers)
            raise
        self.applied = new
        flush = conntrack_flush(self.applied_snapshot, snap, self.view, changed)
        self.applied_snapshot = snap
        now = time.time()
        self.syncs += 1
        self.metrics.observe_sync(time.monotonic() - start, full, now)
        self.metrics.observe_programming(triggers, now)
        counts = new.counts()
        for kind, n in counts.items():
            self.metrics.objects.set(n, node=self.node.name, kind=kind)
        if text:
            log.info("node %s: %s sync applied (%d chains, %d elements) in %.1f ms",
                     self.node.name, "full" if full else "partial", len(new.chains),
                     counts["element"], (time.monotonic() - start) * 1000)
        if flush:
            try:
                deleted = await self._flush_conntrack(flush)
                self.metrics.conntrack_deleted.inc(deleted, node=self.node.name)
            except OSError:
                log.warning("node %s: conntrack flush failed", self.node.name, exc_info=True)

    def close(self) -> None:
        """Let go of the node's nft context: its socket and thread keep the namespace
        (and its links) alive."""
        nftapply.release(self.node.netns_path)

    async def _flush_conntrack(self, flush: conntrack.Flush) -> int:
        path = self.node.netns_path

        def job() -> int:
            if path is not None:
                nsexec.enter(path, nsexec.CLONE_NEWNET)
            return conntrack.flush_udp(flush)
        return await nsexec.workers().run(job)


class ProxyService:
    def __init__(self, ctx: Any, network: ClusterNetwork | None) -> None:
        self.ctx = ctx
        self.config: Config = ctx.config
        self.network = network
        self.tracker: ProxyTracker | None = None
        self.nodes: list[NodeProxy] = []

    @property
    def enabled(self) -> bool:
        return (self.network is not None and self.config.node_mode != "simulated"
                and self.config.proxy.mode == "nftables")

    async def start(self) -> None:
        if not self.enabled:
            return
        assert self.network is not None
        self.tracker = ProxyTracker(self.ctx)
        cfg = render_config(self.config)
        pc = self.config.proxy
        self.nodes = [NodeProxy(self.tracker, n, cfg, pc.min_sync_interval,
                                pc.full_sync_period) for n in self.network.node_nets()]
        for n in self.nodes:
            self.tracker.subscribe(n.runner.request)
        # Nothing is applied before the caches are complete: a sync from a partial
        # view would delete the rules of services not listed yet.
        await self.tracker.start()
        for n in self.nodes:
            n.runner.start()

    async def wait_synced(self, timeout: float = 30.0) -> None:
        """Until every node applied the state the tracker has now (tests, readiness)."""
        assert self.tracker is not None
        gen = self.tracker.generation

        async def done() -> None:
            while any(n.applied_snapshot is None or n.applied_snapshot.generation < gen
                      for n in self.nodes):
                await asyncio.sleep(0.002)
        await asyncio.wait_for(done(), timeout)

    async def stop(self) -> None:
        for n in self.nodes:
            await n.runner.stop()
            n.close()
        if self.tracker is not None:
            await self.tracker.stop()


def remove_host_table(config: Config) -> None:
    """`netd down` in host mode: the cluster's table in the host namespace (node
    namespaces take their tables with them)."""
    import os
    if config.node_mode != "host" or os.geteuid() != 0:
        return
    nftapply.delete_table_sync(None, table_name(config))


cleanup.register(remove_host_table)
