"""Drives the userspace proxy from the tracker: every coalesced change (or the periodic
full resync) hands the newest snapshot to UserspaceProxy.sync, which swaps its tables."""
from __future__ import annotations

from netd.controllers.manager import ControllerContext
from netd.node.cluster_net import ClusterNetwork
from netd.proxy.runner import BoundedFrequencyRunner
from netd.proxy.tracker import ProxyTracker
from netd.proxy.userspace import UserspaceProxy


class UserspaceProxyService:
    def __init__(self, ctx: ControllerContext, network: ClusterNetwork) -> None:
        self.ctx = ctx
        self.proxy = UserspaceProxy(ctx, network)
        self.tracker: ProxyTracker | None = None
        self.runner: BoundedFrequencyRunner | None = None

    async def _sync(self) -> None:
        assert self.tracker is not None
        await self.proxy.sync(self.tracker.snapshot())

    async def start(self) -> None:
        pc = self.ctx.config.proxy
        self.tracker = ProxyTracker(self.ctx)
        self.runner = BoundedFrequencyRunner("userspace-proxy", self._sync,
                                             pc.min_sync_interval, pc.full_sync_period)
        self.tracker.subscribe(self.runner.request)
        await self.proxy.start()
        # As in nftables mode: nothing is served before the caches are complete.
        await self.tracker.start()
        self.runner.start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.stop()
        if self.tracker is not None:
            await self.tracker.stop()
        await self.proxy.stop()
