"""DnsIndexer: keeps a ZoneIndex current from the shared informers.

Data planes watch, they don't poll (DESIGN rule 3): informer handlers only mark the
index dirty; one coalescing task rebuilds it — a burst of events delivered in one
loop iteration costs one build — and hands the new immutable snapshot to every
registered callback (the DNS server swaps its reference and drops the cached answers
for the names the new index reports changed, ZoneIndex.changed_names).
Rebuilds pass the previous index, so only Services whose objects changed are
re-derived (netd.dns.fragment), merged into a copy of the previous index (netd.dns.delta).
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

from netd.api.kinds import REGISTRY, ResourceType
from netd.dns.index import DnsConfig, ZoneIndex

log = logging.getLogger("netd.dns")

IndexCallback = Callable[[ZoneIndex], None]

# After a failed build, retry after this long (a full rebuild from the caches).
RETRY_DELAY = 0.5


def _rt(group: str, plural: str) -> ResourceType:
    rt = REGISTRY.by_plural(group, plural)
    assert rt is not None
    return rt


SERVICES = _rt("", "services")
ENDPOINT_SLICES = _rt("discovery.k8s.io", "endpointslices")
PODS = _rt("", "pods")
NAMESPACES = _rt("", "namespaces")


class DnsIndexer:
    """Build the index from ctx.factory's informers (Services, EndpointSlices, Pods,
    Namespaces). Create it before the factory's informers are started (the controller
    manager starts every informer the factory holds), then run `run()` as a
    supervised task. `synced` is set after the first build; until then the server
    answers SERVFAIL."""

    def __init__(self, ctx: Any, cfg: DnsConfig | None = None, *,
                 min_interval: float = 0.0) -> None:
        self.cfg = cfg if cfg is not None else DnsConfig.from_config(ctx.config)
        # Spacing between builds: 0 rebuilds as soon as the loop is free (coalescing
        # still happens, since handlers run synchronously within the informer's batch).
        self.min_interval = min_interval
        factory = ctx.factory
        self.services = factory.informer(SERVICES)
        self.slices = factory.informer(ENDPOINT_SLICES)
        self.pods = factory.informer(PODS)
        self.namespaces = factory.informer(NAMESPACES)
        self.informers = (self.services, self.slices, self.pods, self.namespaces)
        self.index: ZoneIndex | None = None
        self.synced = asyncio.Event()
        self._dirty = asyncio.Event()
        self._callbacks: list[IndexCallback] = []
        self._generation = 0
        self._last_serial = 0
        # False after a failed build: the next one derives everything afresh.
        self._reuse = True
        # Figures for metrics, tests and the bench.
        self.builds = 0
        self.build_errors = 0
        self.last_build_seconds = 0.0
        self.max_build_seconds = 0.0
        for inf in self.informers:
            inf.add_handler(self._on_add, self._on_update, self._on_delete)

    # ---- subscription -----------------------------------------------------------------

    def register(self, on_index: IndexCallback) -> None:
        """Call `on_index(index)` after every build; at once if an index exists."""
        self._callbacks.append(on_index)
        if self.index is not None:
            self._notify(on_index, self.index)

    add_callback = register

    # ---- informer handlers (cheap: mark dirty) -------------------------------------

    def _on_add(self, obj: dict[str, Any]) -> None:
        self._dirty.set()

    def _on_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self._dirty.set()

    def _on_delete(self, obj: dict[str, Any]) -> None:
        self._dirty.set()

    # ---- the loop ---------------------------------------------------------------------

    async def run(self) -> None:
        await asyncio.gather(*(inf.wait_synced() for inf in self.informers))
        self._dirty.set()
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            started = time.monotonic()
            try:
                self.rebuild()
            except Exception:
                # Keep serving the last good snapshot; retry with a full rebuild.
                self.build_errors += 1
                log.exception("dns: index build failed; keeping generation %d",
                              self._generation)
                self._reuse = False
                await asyncio.sleep(RETRY_DELAY)
                self._dirty.set()
                continue
            if self.min_interval > 0:
                wait = self.min_interval - (time.monotonic() - started)
                if wait > 0:
                    await asyncio.sleep(wait)

    def rebuild(self) -> ZoneIndex:
        """One full build from the informer caches (synchronous, on the loop)."""
        t0 = time.perf_counter()
        self._generation += 1
        # SOA serial: Unix time like CoreDNS (Modified()), kept strictly increasing so
        # a secondary comparing serials always sees a change.
        serial = max(int(time.time()), self._last_serial + 1) & 0xFFFFFFFF
        self._last_serial = serial
        previous = self.index if self._reuse else None
        index = ZoneIndex.build(self.services.list(), self.slices.list(), self.pods.list(),
                                self.cfg, namespaces=self.namespaces.list(),
                                generation=self._generation, serial=serial,
                                previous=previous)
        self._reuse = True
        self.index = index
        elapsed = time.perf_counter() - t0
        self.builds += 1
        self.last_build_seconds = elapsed
        self.max_build_seconds = max(self.max_build_seconds, elapsed)
        log.debug("dns: index generation %d built in %.1f ms (%s)", self._generation,
                  elapsed * 1e3, index.counts)
        for cb in list(self._callbacks):
            self._notify(cb, index)
        if not self.synced.is_set():
            log.info("dns: first index built: %s", index.counts)
            self.synced.set()
        return index

    def _notify(self, cb: IndexCallback, index: ZoneIndex) -> None:
        try:
            cb(index)
        except Exception:
            log.exception("dns: index callback %r failed", cb)
