"""ReplicaSet and ReplicationController controllers: keep `spec.replicas` pods alive.

One implementation for both kinds, as kube-controller-manager does (its RC controller
wraps the ReplicaSet one through a conversion); only the selector type (a map for RC,
a LabelSelector for RS), the owner kind and the event source differ.

What upstream behaviour is reproduced, and why:
- pods are created from the template with generateName `<owner>-` and a controller
  ownerReference (blockOwnerDeletion), in slow-start batches 1, 2, 4, … that stop at
  the first failure — a quota or webhook that rejects pods costs one failed create,
  not hundreds (pkg/controller/replicaset slowStartBatch); at most 500 per sync
  (burstReplicas);
- matching orphans are adopted and owned pods that stop matching are released, both
  by strategic-merge patches of ownerReferences (ControllerRefManager);
- scale-down deletes the cheapest pods first (replicaset_util.sort_for_deletion);
- a reconcile waits until the pod informer has seen this controller's own last
  writes (expectations.WriteExpectations) so it never double-creates;
- status counts the claimed active pods, and minReadySeconds is honoured by
  re-queueing when the next pod becomes available.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

from netd.api import errors
from netd.api.kinds import REGISTRY, ResourceType
from netd.api.selectors import LabelSelector, selector_from_dict, selector_from_set
from netd.client.controller import Controller
from netd.client.informer import index_by_controller_uid, \
    index_by_namespace, key_of
from netd.controllers.events import NORMAL, WARNING
from netd.controllers.expectations import WriteExpectations
from netd.controllers.manager import ControllerContext
from netd.controllers.owners import ensure_index, owner_keys
from netd.controllers.podutil import controller_ref, is_pod_active, new_controller_ref, \
    pod_from_template
from netd.controllers.replicaset_util import calculate_status, next_availability_check, \
    pods_to_delete
from netd.registry.objectapi import STRATEGIC_PATCH
from netd.store.base import copy_obj

log = logging.getLogger("netd.controllers.replicaset")

Obj = dict[str, Any]

_PODS = REGISTRY.by_plural("", "pods")
_RS = REGISTRY.by_plural("apps", "replicasets")
_RC = REGISTRY.by_plural("", "replicationcontrollers")
assert _PODS is not None and _RS is not None and _RC is not None
PODS, REPLICASETS, REPLICATIONCONTROLLERS = _PODS, _RS, _RC

# Most pods one sync creates or deletes (upstream's burstReplicas).
BURST_REPLICAS = 500
SLOW_START_INITIAL_BATCH = 1

# Index names on shared informers (prefixed: other controllers share them).
CONTROLLER_INDEX = "netd.controller-uid"
ORPHAN_INDEX = "netd.orphans-by-namespace"
NAMESPACE_INDEX = "netd.namespace"


def index_orphans_by_namespace(obj: Obj) -> list[str]:
    if controller_ref(obj) is not None:
        return []
    return index_by_namespace(obj)


def api_group(api_version: str) -> str:
    return api_version.rpartition("/")[0] if "/" in api_version else ""


def is_deleting(obj: Obj) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def namespace_terminating(err: errors.APIError) -> bool:
    """kube-apiserver marks this with the NamespaceTerminating status cause; netd's
    NamespaceLifecycle admission says it in the message."""
    return isinstance(err, errors.Forbidden) and "being terminated" in err.message


async def slow_start_batch(count: int, initial: int,
                           fn: Callable[[], Awaitable[None]]) -> tuple[int, Exception | None]:
    """Call fn `count` times in batches of initial, 2*initial, …; stop after the first
    batch with a failure. Returns (successes, first error)."""
    remaining, successes = count, 0
    batch = min(remaining, initial)
    while batch > 0:
        results = await asyncio.gather(*(fn() for _ in range(batch)), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        for r in failures:
            if not isinstance(r, Exception):
                raise r  # cancellation and the like are not create failures
        successes += batch - len(failures)
        if failures:
            return successes, failures[0]  # type: ignore[return-value]
        remaining -= batch
        batch = min(2 * batch, remaining)
    return successes, None


class ReplicaManager(Controller):
    """The shared implementation; see the module docstring."""

    def __init__(self, ctx: ControllerContext, name: str, rt: ResourceType,
                 component: str, *, workers: int = 5) -> None:
        super().__init__(name, workers=workers)
        self.ctx = ctx
        self.client = ctx.client
        self.rt = rt
        self.component = component
        self.owners = self.watch(ctx.factory.informer(rt))
        ensure_index(self.owners, NAMESPACE_INDEX, index_by_namespace)
        ensure_index(self.owners, CONTROLLER_INDEX, index_by_controller_uid)
        self.pods = self.watch(ctx.factory.informer(PODS), keys_for=self.pod_keys)
        ensure_index(self.pods, CONTROLLER_INDEX, index_by_controller_uid)
        ensure_index(self.pods, ORPHAN_INDEX, index_orphans_by_namespace)
        self.expectations = WriteExpectations(lambda: self.clock.now())
        self._selectors: dict[str, tuple[int, LabelSelector]] = {}

    # ---- kind specifics -------------------------------------------------------------

    def selector(self, owner: Obj) -> LabelSelector:
        """The owner's pod selector (raises errors.BadRequest when unparsable)."""
        meta = owner.get("metadata") or {}
        uid, gen = meta.get("uid") or "", int(meta.get("generation") or 0)
        cached = self._selectors.get(uid)
        if cached is not None and cached[0] == gen:
            return cached[1]
        raw = (owner.get("spec") or {}).get("selector")
        sel = self._parse_selector(raw)
        if len(self._selectors) > 100_000:
            self._selectors.clear()
        self._selectors[uid] = (gen, sel)
        return sel

    def _parse_selector(self, raw: Any) -> LabelSelector:
        return selector_from_dict(raw)

    def _owns(self, ref: Obj) -> bool:
        return ref.get("kind") == self.rt.kind and \
            api_group(str(ref.get("apiVersion") or "")) == self.rt.group

    # ---- event mapping ----------------------------------------------------------------

    def pod_keys(self, pod: Obj) -> list[str]:
        if controller_ref(pod) is None and is_deleting(pod):
            return []
        ns = pod["metadata"].get("namespace") or ""
        return owner_keys(pod, self._owns, self.owners.by_index(NAMESPACE_INDEX, ns),
                          lambda owner, p: self.selector(owner).matches(
                              p["metadata"].get("labels") or {}))

    # ---- reconcile --------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        owner = self.owners.get(key)
        if owner is None:
            self.expectations.forget(key)
            return
        if not self.expectations.satisfied(key):
            # The event of our own last write re-queues the key; this is a safety net.
            self.enqueue_after(key, self.expectations.remaining_ttl(key))
            return
        try:
            selector = self.selector(owner)
        except errors.BadRequest as exc:
            log.warning("%s %s: invalid selector: %s", self.rt.kind, key, exc.message)
            return
        now = self.ctx.now()
        pods = await self._claim(key, owner, selector)
        manage_error: Exception | None = None
        if not is_deleting(owner):
            try:
                await self._manage(key, owner, pods)
            except errors.APIError as exc:
                manage_error = exc
        status = calculate_status(owner, pods, manage_error, now)
        if status != (owner.get("status") or {}):
            body = copy_obj(owner)
            body["status"] = status
            stored = await self.client.update_status(self.rt, body)
            self.expectations.expect(key, self.owners, stored)
        if manage_error is not None:
            raise manage_error
        spec = owner.get("spec") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        if min_ready > 0 and status.get("readyReplicas", 0) != status.get("availableReplicas", 0):
            delay = next_availability_check(pods, min_ready, now)
            if delay is not None:
                self.enqueue_after(key, delay)

    # ---- ownership -----------------------------------------------------------------

    async def _claim(self, key: str, owner: Obj, selector: LabelSelector) -> list[Obj]:
        """The active pods this owner controls after adopting matching orphans and
        releasing owned pods that stopped matching (ClaimPods)."""
        meta = owner["metadata"]
        uid, ns = meta["uid"], meta.get("namespace") or ""
        candidates: dict[str, Obj] = {}
        for pod in self.pods.by_index(CONTROLLER_INDEX, uid):
            candidates[key_of(pod)] = pod
        for pod in self.pods.by_index(ORPHAN_INDEX, ns):
            candidates.setdefault(key_of(pod), pod)
        claimed: list[Obj] = []
        failures: list[errors.APIError] = []
        can_adopt: bool | None = None
        for pod in candidates.values():
            if not is_pod_active(pod):
                continue
            ref = controller_ref(pod)
            labels = (pod.get("metadata") or {}).get("labels") or {}
            try:
                if ref is not None:
                    if ref.get("uid") != uid:
                        continue
                    if selector.matches(labels):
                        claimed.append(pod)
                    elif not is_deleting(owner):
                        await self._patch_pod(key, pod, {"ownerReferences": [
                            {"$patch": "delete", "uid": uid}]})
                    continue
                if is_deleting(owner) or not selector.matches(labels):
                    continue
                if can_adopt is None:
                    can_adopt = self._can_adopt(owner)
                if can_adopt:
                    claimed.append(await self._patch_pod(key, pod, {
                        "ownerReferences": [new_controller_ref(owner)]}))
            except errors.NotFound:
                continue
            except errors.APIError as exc:
                failures.append(exc)
        if failures:
            raise failures[0]
        return claimed

    def _can_adopt(self, owner: Obj) -> bool:
        """Re-read the owner: never adopt on behalf of one deleted meanwhile
        (RecheckDeletionTimestamp)."""
        meta = owner["metadata"]
        fresh = self.client.get_or_none(self.rt, meta.get("namespace") or "", meta["name"])
        return fresh is not None and fresh["metadata"].get("uid") == meta["uid"] and \
            not is_deleting(fresh)

    async def _patch_pod(self, key: str, pod: Obj, meta_patch: Obj) -> Obj:
        meta = pod["metadata"]
        # The uid pins the patch to this incarnation of the pod, as ControllerRefManager does.
        patch = {"metadata": {**meta_patch, "uid": meta.get("uid")}}
        patched = await self.client.patch(PODS, meta.get("namespace") or "", meta["name"],
                                          patch, STRATEGIC_PATCH)
        self.expectations.expect(key, self.pods, patched)
        return patched

    # ---- replicas ------------------------------------------------------------------

    async def _manage(self, key: str, owner: Obj, pods: list[Obj]) -> None:
        spec = owner.get("spec") or {}
        diff = len(pods) - int(spec.get("replicas", 1))
        if diff < 0:
            await self._create_pods(key, owner, min(-diff, BURST_REPLICAS))
        elif diff > 0:
            victims = pods_to_delete(pods, self._related_pods(owner, pods),
                                     min(diff, BURST_REPLICAS), self.ctx.now())
            await self._delete_pods(key, owner, victims)

    async def _create_pods(self, key: str, owner: Obj, count: int) -> None:
        meta = owner["metadata"]
        ns, name = meta.get("namespace") or "", meta["name"]
        template = (owner.get("spec") or {}).get("template") or {}

        async def create_one() -> None:
            body = pod_from_template(template, owner, generate_name=f"{name}-")
            try:
                created = await self.client.create(PODS, body, ns)
            except errors.APIError as exc:
                if namespace_terminating(exc):
                    return  # every create will fail; the namespace controller cleans up
                self.ctx.recorder.record(owner, WARNING, "FailedCreate",
                                         f"Error creating: {exc.message}",
                                         component=self.component)
                raise
            self.expectations.expect(key, self.pods, created)
            self.ctx.recorder.record(owner, NORMAL, "SuccessfulCreate",
                                     f"Created pod: {created['metadata']['name']}",
                                     component=self.component)

        created, err = await slow_start_batch(count, SLOW_START_INITIAL_BATCH, create_one)
        if created:
            log.info("%s %s: created %d pod(s)", self.rt.kind, key, created)
        if err is not None:
            raise err

    async def _delete_pods(self, key: str, owner: Obj, victims: list[Obj]) -> None:
        async def delete_one(pod: Obj) -> None:
            pmeta = pod["metadata"]
            try:
                gone = await self.client.delete(PODS, pmeta.get("namespace") or "",
                                                pmeta["name"])
            except errors.NotFound:
                return
            except errors.APIError as exc:
                self.ctx.recorder.record(owner, WARNING, "FailedDelete",
                                         f"Error deleting: {exc.message}",
                                         component=self.component)
                raise
            self.expectations.expect(key, self.pods, gone)
            self.ctx.recorder.record(owner, NORMAL, "SuccessfulDelete",
                                     f"Deleted pod: {pmeta['name']}", component=self.component)

        results = await asyncio.gather(*(delete_one(p) for p in victims),
                                       return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, Exception):
                raise r
        failures = [r for r in results if isinstance(r, Exception)]
        if victims:
            log.info("%s %s: deleted %d pod(s)", self.rt.kind, key,
                     len(victims) - len(failures))
        if failures:
            raise failures[0]

    def _related_pods(self, owner: Obj, pods: list[Obj]) -> list[Obj]:
        """Pods of every sibling under the same controller (a Deployment's old and new
        ReplicaSets): scale-down prefers nodes where they are doubled up."""
        ref = controller_ref(owner)
        if ref is None or not ref.get("uid"):
            return pods
        related: list[Obj] = []
        for sibling in self.owners.by_index(CONTROLLER_INDEX, ref["uid"]):
            related.extend(self.pods.by_index(CONTROLLER_INDEX, sibling["metadata"]["uid"]))
        return related


class ReplicaSetController(ReplicaManager):
    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx, "replicaset", REPLICASETS, "replicaset-controller")


class ReplicationControllerController(ReplicaManager):
    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx, "replicationcontroller", REPLICATIONCONTROLLERS,
                         "replication-controller")

    def _parse_selector(self, raw: Any) -> LabelSelector:
        # An RC selects with a plain map (labels.SelectorFromSet).
        return selector_from_set(raw if isinstance(raw, dict) else None)


__all__ = ["ReplicaSetController", "ReplicationControllerController", "ReplicaManager",
           "slow_start_batch"]
