"""Deployment controller: rolls a Deployment's pod template out through ReplicaSets.

Level-triggered like kube-controller-manager's (pkg/controller/deployment): each
reconcile claims the ReplicaSets the Deployment's selector matches (adopting orphans,
releasing strays), then takes one step — a resize of the active ReplicaSets, a
RollingUpdate or Recreate step, or nothing while paused — and writes the status and
conditions `kubectl rollout status` reads. The steps themselves are in
deployment_rollout.py, the arithmetic in deployment_util.py.

Rollback needs no server part: kubectl 1.32 `rollout undo` reads the ReplicaSets this
controller owns (their `deployment.kubernetes.io/revision` annotations and controller
ownerReferences) and patches the Deployment's template back; the old ReplicaSet then
becomes the new one again and gets the next revision (its earlier ones are kept in
`deployment.kubernetes.io/revision-history`).
"""
from __future__ import annotations

import logging
from typing import Any

from netd.api import errors
from netd.api.kinds import REGISTRY
from netd.api.selectors import LabelSelector, selector_from_dict
from netd.client.controller import Controller
from netd.client.informer import index_by_controller_uid, index_by_namespace, key_of
from netd.controllers.deployment_rollout import Rollout
from netd.controllers.events import WARNING
from netd.controllers.expectations import WriteExpectations
from netd.controllers.manager import ControllerContext
from netd.controllers.owners import ensure_index
from netd.controllers.podutil import controller_ref, new_controller_ref
from netd.controllers.replicaset import CONTROLLER_INDEX, NAMESPACE_INDEX, ORPHAN_INDEX, \
    PODS, REPLICASETS, api_group, index_orphans_by_namespace, is_deleting
from netd.registry.objectapi import STRATEGIC_PATCH
from netd.store.base import copy_obj

log = logging.getLogger("netd.controllers.deployment")

Obj = dict[str, Any]

_DEPLOYMENTS = REGISTRY.by_plural("apps", "deployments")
assert _DEPLOYMENTS is not None
DEPLOYMENTS = _DEPLOYMENTS


class DeploymentController(Controller):
    def __init__(self, ctx: ControllerContext, *, workers: int = 5) -> None:
        super().__init__("deployment", workers=workers)
        self.ctx = ctx
        self.client = ctx.client
        self.rt = DEPLOYMENTS
        self.rs_rt = REPLICASETS
        self.deployments = self.watch(ctx.factory.informer(DEPLOYMENTS))
        ensure_index(self.deployments, NAMESPACE_INDEX, index_by_namespace)
        self.replicasets = self.watch(ctx.factory.informer(REPLICASETS),
                                      keys_for=self.replicaset_keys)
        ensure_index(self.replicasets, CONTROLLER_INDEX, index_by_controller_uid)
        ensure_index(self.replicasets, ORPHAN_INDEX, index_orphans_by_namespace)
        ensure_index(self.replicasets, NAMESPACE_INDEX, index_by_namespace)
        # Pods matter only to Recreate (wait for the old ones to be gone): deletions.
        self.pods = ctx.factory.informer(PODS)
        ensure_index(self.pods, CONTROLLER_INDEX, index_by_controller_uid)
        self.pods.add_handler(on_delete=self._pod_deleted)
        self.informers.append(self.pods)
        self.expectations = WriteExpectations(lambda: self.clock.now())

    # ---- event mapping ----------------------------------------------------------------

    def _selector(self, d: Obj) -> LabelSelector | None:
        try:
            return selector_from_dict((d.get("spec") or {}).get("selector"))
        except errors.BadRequest:
            return None

    def replicaset_keys(self, rs: Obj) -> list[str]:
        meta = rs.get("metadata") or {}
        ns = meta.get("namespace") or ""
        ref = controller_ref(rs)
        if ref is not None:
            if ref.get("kind") == "Deployment" and \
                    api_group(str(ref.get("apiVersion") or "")) == "apps":
                return [f"{ns}/{ref.get('name')}"]
            return []
        labels = meta.get("labels") or {}
        keys = []
        for d in self.deployments.by_index(NAMESPACE_INDEX, ns):
            sel = self._selector(d)
            if sel is not None and not sel.empty() and sel.matches(labels):
                keys.append(key_of(d))
        return keys

    def _pod_deleted(self, pod: Obj) -> None:
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        ns = (pod.get("metadata") or {}).get("namespace") or ""
        rs = self.replicasets.get_by_name(ns, str(ref.get("name") or ""))
        if rs is None:
            return
        for key in self.replicaset_keys(rs):
            d = self.deployments.get(key)
            if d is not None and \
                    ((d.get("spec") or {}).get("strategy") or {}).get("type") == "Recreate":
                self.enqueue(key)

    def pods_of(self, rs_uid: str) -> list[Obj]:
        return self.pods.by_index(CONTROLLER_INDEX, rs_uid)

    # ---- reconcile --------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        cached = self.deployments.get(key)
        if cached is None:
            self.expectations.forget(key)
            return
        if not self.expectations.satisfied(key):
            self.enqueue_after(key, self.expectations.remaining_ttl(key))
            return
        d = copy_obj(cached)
        selector = self._selector(d)
        if selector is None:
            return
        if selector.empty():
            # An empty selector would claim every ReplicaSet in the namespace.
            self.ctx.recorder.record(d, WARNING, "SelectingAll",
                                     "This deployment is selecting all pods. A non-empty "
                                     "selector is required.", component="deployment-controller")
            status = d.setdefault("status", {})
            generation = int(d["metadata"].get("generation") or 0)
            if generation > int(status.get("observedGeneration") or 0):
                status["observedGeneration"] = generation
                stored = await self.client.update_status(DEPLOYMENTS, d)
                self.expectations.expect(key, self.deployments, stored)
            return
        rss = await self._claim_replicasets(key, d, selector)
        rollout = Rollout(self, key, d, rss)
        if is_deleting(d):
            new, olds = await rollout.new_and_old(False)
            await rollout.sync_deployment_status([*olds, new], new)
            return
        await rollout.check_paused_conditions()
        if (rollout.d.get("spec") or {}).get("paused"):
            await rollout.sync()
            return
        if await rollout.is_scaling_event():
            await rollout.sync()
            return
        strategy = ((rollout.d.get("spec") or {}).get("strategy") or {}).get("type")
        if strategy == "Recreate":
            await rollout.recreate()
        else:
            await rollout.rolling()

    async def _claim_replicasets(self, key: str, d: Obj, selector: LabelSelector) -> list[Obj]:
        """Private copies of the ReplicaSets this Deployment controls, after adopting
        orphans it selects and releasing owned ones it no longer selects."""
        meta = d["metadata"]
        uid, ns = meta["uid"], meta.get("namespace") or ""
        candidates: dict[str, Obj] = {}
        for rs in self.replicasets.by_index(CONTROLLER_INDEX, uid):
            candidates[key_of(rs)] = rs
        for rs in self.replicasets.by_index(ORPHAN_INDEX, ns):
            candidates.setdefault(key_of(rs), rs)
        claimed: list[Obj] = []
        can_adopt: bool | None = None
        for rs in candidates.values():
            ref = controller_ref(rs)
            labels = (rs.get("metadata") or {}).get("labels") or {}
            try:
                if ref is not None:
                    if ref.get("uid") != uid:
                        continue
                    if selector.matches(labels):
                        claimed.append(copy_obj(rs))
                    elif not is_deleting(d):
                        await self._patch_rs(key, rs, {"ownerReferences": [
                            {"$patch": "delete", "uid": uid}]})
                    continue
                if is_deleting(d) or is_deleting(rs) or not selector.matches(labels):
                    continue
                if can_adopt is None:
                    fresh = self.client.get_or_none(DEPLOYMENTS, ns, meta["name"])
                    can_adopt = fresh is not None and fresh["metadata"].get("uid") == uid \
                        and not is_deleting(fresh)
                if can_adopt:
                    claimed.append(await self._patch_rs(key, rs, {
                        "ownerReferences": [new_controller_ref(d)]}))
            except errors.NotFound:
                continue
        return claimed

    async def _patch_rs(self, key: str, rs: Obj, meta_patch: Obj) -> Obj:
        meta = rs["metadata"]
        patched = await self.client.patch(REPLICASETS, meta.get("namespace") or "",
                                          meta["name"],
                                          {"metadata": {**meta_patch, "uid": meta.get("uid")}},
                                          STRATEGIC_PATCH)
        self.expectations.expect(key, self.replicasets, patched)
        return patched
