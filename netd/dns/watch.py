"""DnsIndexer: keeps a ZoneIndex current from the shared informers.

Data planes watch, they don't poll (DESIGN rule 3): informer handlers only record
which keys changed (the Service an object belongs to; a pod in verified pod mode; any
Namespace) and mark the index dirty; one coalescing task rebuilds it — a burst of events
delivered in one loop iteration costs one build — and hands the new immutable snapshot
to every registered callback (the DNS server swaps its reference and drops the cached
answers for the names the new index reports changed, ZoneIndex.changed_names).

A rebuild derives the next index from the previous one and the changed keys only
(ZoneIndex.update: the changed Services' objects are fetched from the informer caches
by key, their slices through an informer index), so a record change costs time
proportional to the change, not to the cluster. A full build (ZoneIndex.build from
the caches, reusing unchanged Services' records) runs first, after a failure, on a
Namespace change, and whenever update() declines.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

from netd.api.kinds import REGISTRY, ResourceType
from netd.dns.index import DnsConfig, SvcKey, ZoneIndex, pod_key, service_key, slice_key

log = logging.getLogger("netd.dns")

IndexCallback = Callable[[ZoneIndex], None]

# After a failed build, retry after this long (a full rebuild from the caches).
RETRY_DELAY = 0.5
# The EndpointSlices informer index the indexer adds: slices by "namespace/service".
SLICES_BY_SERVICE = "dns-service"


def _slice_service(sl: dict[str, Any]) -> list[str]:
    key = slice_key(sl)
    return [f"{key[0]}/{key[1]}"] if key is not None else []


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
        try:
            self.slices.add_index(SLICES_BY_SERVICE, _slice_service)
        except ValueError:
            pass    # another indexer on the same factory added it: same function
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
        self.full_builds = 0
        # What changed since the last build: Service keys (of Services and of the
        # slices' kubernetes.io/service-name), pod keys, whether any Namespace did.
        self._dirty_svcs: set[SvcKey] = set()
        self._dirty_pods: set[str] = set()
        self._full = True
        self.services.add_handler(self._svc_event, self._svc_update, self._svc_event)
        self.slices.add_handler(self._slice_event, self._slice_update, self._slice_event)
        self.namespaces.add_handler(self._ns_event, self._ns_update, self._ns_event)
        if self.cfg.pod_mode == "verified":
            # Pods give records in verified mode only; otherwise their (frequent)
            # status changes must not cost a build.
            self.pods.add_handler(self._pod_event, self._pod_update, self._pod_event)

    # ---- subscription -----------------------------------------------------------------

    def register(self, on_index: IndexCallback) -> None:
        """Call `on_index(index)` after every build; at once if an index exists."""
        self._callbacks.append(on_index)
        if self.index is not None:
            self._notify(on_index, self.index)

    add_callback = register

    # ---- informer handlers (cheap: mark dirty) -------------------------------------

    def _mark(self, key: SvcKey | None) -> None:
        if key is not None:
            self._dirty_svcs.add(key)
            self._dirty.set()

    def _svc_event(self, obj: dict[str, Any]) -> None:
        self._mark(service_key(obj))

    def _svc_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self._svc_event(new)

    def _slice_event(self, obj: dict[str, Any]) -> None:
        self._mark(slice_key(obj))

    def _slice_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self._slice_event(old)    # the slice may have moved to another Service
        self._slice_event(new)

    def _pod_event(self, obj: dict[str, Any]) -> None:
        self._dirty_pods.add(pod_key(obj))
        self._dirty.set()

    def _pod_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self._pod_event(new)

    def _ns_event(self, obj: dict[str, Any]) -> None:
        self._full = True
        self._dirty.set()

    def _ns_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self._ns_event(new)

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
        """The next index (synchronous, on the loop): derived from the previous one and
        the keys changed since, or a full build from the informer caches."""
        t0 = time.perf_counter()
        self._generation += 1
        # SOA serial: Unix time like CoreDNS (Modified()), kept strictly increasing so
        # a secondary comparing serials always sees a change.
        serial = max(int(time.time()), self._last_serial + 1) & 0xFFFFFFFF
        self._last_serial = serial
        previous = self.index if self._reuse else None
        dirty_svcs, dirty_pods, full = self._dirty_svcs, self._dirty_pods, self._full
        self._dirty_svcs, self._dirty_pods, self._full = set(), set(), False
        index: ZoneIndex | None = None
        if previous is not None and not full:
            index = ZoneIndex.update(previous, self._services_of(dirty_svcs),
                                     {pk: self.pods.get(pk) for pk in dirty_pods},
                                     generation=self._generation, serial=serial)
        if index is None:
            self.full_builds += 1
            index = ZoneIndex.build(self.services.list(), self.slices.list(),
                                    self.pods.list(), self.cfg,
                                    namespaces=self.namespaces.list(),
                                    generation=self._generation, serial=serial,
                                    previous=previous, derive=False)
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

    def _services_of(self, dirty: set[SvcKey]
                     ) -> dict[SvcKey, tuple[dict[str, Any] | None, list[dict[str, Any]]]]:
        # Service and Namespace names are lowercase DNS labels (API validation), so the
        # lowercased key is also the informer's cache key.
        return {key: (self.services.get_by_name(key[0], key[1]),
                      self.slices.by_index(SLICES_BY_SERVICE, f"{key[0]}/{key[1]}"))
                for key in dirty}

    def _notify(self, cb: IndexCallback, index: ZoneIndex) -> None:
        try:
            cb(index)
        except Exception:
            log.exception("dns: index callback %r failed", cb)
