"""One sync of one Deployment: find or create the new ReplicaSet, scale the
ReplicaSets one step (RollingUpdate, Recreate or a plain resize), prune history and
write the status — kube-controller-manager's pkg/controller/deployment (sync.go,
rolling.go, recreate.go, progress.go), over plain dicts.

A Rollout lives for one reconcile. It works on private copies of the Deployment and
of its claimed ReplicaSets and keeps them current after every write, so each step
sees what the previous one did, as the upstream code does with its updated objects.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Sequence

from netd.api import errors
from netd.controllers.deployment_util import (
    AVAILABLE, DESIRED_REPLICAS, FAILED_RS_CREATE_REASON, FOUND_NEW_RS_REASON, HASH_LABEL,
    MAX_REPLICAS, NEW_RS_AVAILABLE_REASON, NEW_RS_REASON, PAUSED_REASON, PROGRESSING,
    REPLICA_FAILURE, RESUMED_REASON, REVISION, RS_UPDATED_REASON, TIMED_OUT_REASON,
    annotations_of, by_creation, by_revision, calculate_status, deployment_complete,
    deployment_progressing, deployment_timed_out, equal_ignore_hash, filter_active,
    find_active_or_latest, find_new_rs, find_old_rss, get_condition, has_progress_deadline,
    is_rolling_update, is_saturated, max_revision, max_surge, max_unavailable, new_condition,
    new_rs_new_replicas, proportional_sizes, remove_condition, replicas,
    replicas_annotations_need_update, selector_with_hash, set_condition,
    set_deployment_revision, set_new_rs_annotations, status_int, total_replicas,
    total_status)
from netd.controllers.events import NORMAL, WARNING
from netd.controllers.podutil import is_controlled_by, new_controller_ref, parse_time, \
    template_hash
from netd.registry.objectapi import MERGE_PATCH
from netd.store.base import copy_obj

if TYPE_CHECKING:
    from netd.controllers.deployment import DeploymentController

log = logging.getLogger("netd.controllers.deployment")

Obj = dict[str, Any]
COMPONENT = "deployment-controller"


def _is_deleting(obj: Obj) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


class Rollout:
    def __init__(self, ctrl: "DeploymentController", key: str, d: Obj,
                 rss: list[Obj]) -> None:
        self.ctrl = ctrl
        self.client = ctrl.client
        self.key = key
        self.d = d
        self.d.setdefault("status", {})
        self.rss = rss
        self.now = ctrl.ctx.now()
        self.ns = d["metadata"].get("namespace") or ""
        self.name = d["metadata"]["name"]

    # ---- writes -------------------------------------------------------------------

    def event(self, type_: str, reason: str, message: str) -> None:
        self.ctrl.ctx.recorder.record(self.d, type_, reason, message, component=COMPONENT)

    async def update_status(self) -> None:
        # /status keeps metadata.annotations from the body (as kube-apiserver's
        # deployment status strategy does), which is how the revision annotation is
        # written together with the status, as upstream does.
        stored = await self.client.update_status(self.ctrl.rt, self.d)
        self.ctrl.expectations.expect(self.key, self.ctrl.deployments, stored)
        stored.setdefault("status", {})
        self.d = stored

    async def _patch_rs(self, rs: Obj, patch: Obj) -> None:
        meta = rs["metadata"]
        updated = await self.client.patch(self.ctrl.rs_rt, meta.get("namespace") or "",
                                          meta["name"], patch, MERGE_PATCH)
        self.ctrl.expectations.expect(self.key, self.ctrl.replicasets, updated)
        rs.clear()
        rs.update(updated)  # every list holding this ReplicaSet sees the new state

    async def scale_rs(self, rs: Obj, new_scale: int, operation: str) -> bool:
        """Set size and desired/max-replicas annotations; True if the size changed.
        A merge patch, not an update: the ReplicaSet controller writes the status of
        the same object all the time, and a resize must not lose to it."""
        want = replicas(self.d)
        most = want + max_surge(self.d)
        size_changes = replicas(rs) != new_scale
        if not size_changes and not replicas_annotations_need_update(rs, want, most):
            return False
        old = replicas(rs)
        await self._patch_rs(rs, {
            "metadata": {"annotations": {DESIRED_REPLICAS: str(want), MAX_REPLICAS: str(most)}},
            "spec": {"replicas": new_scale}})
        if size_changes:
            self.event(NORMAL, "ScalingReplicaSet",
                       f"Scaled {operation} replica set {rs['metadata']['name']} from {old} "
                       f"to {new_scale}")
        return size_changes

    async def scale_and_record(self, rs: Obj, new_scale: int) -> bool:
        if replicas(rs) == new_scale:
            return False
        return await self.scale_rs(rs, new_scale, "up" if replicas(rs) < new_scale else "down")

    # ---- the new ReplicaSet ---------------------------------------------------------

    async def new_and_old(self, create: bool) -> tuple[Obj | None, list[Obj]]:
        """getAllReplicaSetsAndSyncRevision."""
        _, all_old = find_old_rss(self.d, self.rss)
        return await self._new_rs(all_old, create), all_old

    async def _new_rs(self, olds: list[Obj], create: bool) -> Obj | None:
        d = self.d
        new_revision = str(max_revision(olds) + 1)
        existing = find_new_rs(d, self.rss)
        if existing is not None:
            scratch = copy_obj(existing)
            changed = set_new_rs_annotations(d, scratch, new_revision, True)
            min_ready = int(d["spec"].get("minReadySeconds") or 0)
            if changed or int(existing["spec"].get("minReadySeconds") or 0) != min_ready:
                await self._patch_rs(existing, {
                    "metadata": {"annotations": scratch["metadata"]["annotations"]},
                    "spec": {"minReadySeconds": min_ready}})
                return existing
            needs = set_deployment_revision(d, annotations_of(existing).get(REVISION, ""))
            if has_progress_deadline(d) and get_condition(d["status"], PROGRESSING) is None:
                set_condition(d["status"], new_condition(
                    PROGRESSING, "True", FOUND_NEW_RS_REASON,
                    f'Found new replica set "{existing["metadata"]["name"]}"', self.now))
                needs = True
            if needs:
                await self.update_status()
            return existing
        if not create:
            return None
        return await self._create_new_rs(olds, new_revision)

    async def _create_new_rs(self, olds: list[Obj], new_revision: str) -> Obj:
        d = self.d
        template = copy_obj(d["spec"].get("template") or {})
        hash_ = template_hash(template, int(d["status"].get("collisionCount") or 0))
        tmeta = template.setdefault("metadata", {})
        tmeta["labels"] = {**(tmeta.get("labels") or {}), HASH_LABEL: hash_}
        name = f"{self.name}-{hash_}"
        body: Obj = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": self.ns, "labels": dict(tmeta["labels"]),
                         "ownerReferences": [new_controller_ref(d)]},
            "spec": {"replicas": 0, "minReadySeconds": int(d["spec"].get("minReadySeconds") or 0),
                     "selector": selector_with_hash(d["spec"].get("selector") or {}, hash_),
                     "template": template}}
        count = new_rs_new_replicas(d, [*olds, body], body)
        body["spec"]["replicas"] = count
        set_new_rs_annotations(d, body, new_revision, False)
        already = False
        try:
            created = await self.client.create(self.ctrl.rs_rt, body, self.ns)
        except errors.AlreadyExists:
            already = True
            found = self.client.get_or_none(self.ctrl.rs_rt, self.ns, name)
            if found is None or not is_controlled_by(found, d) or not equal_ignore_hash(
                    (found.get("spec") or {}).get("template"), d["spec"].get("template")):
                # A different ReplicaSet owns the name: change the hash input and retry.
                d["status"]["collisionCount"] = int(d["status"].get("collisionCount") or 0) + 1
                await self.update_status()
                log.info("deployment %s: hash collision on %s; collisionCount now %d",
                         self.key, name, self.d["status"]["collisionCount"])
                raise
            created = found
        except errors.APIError as exc:
            if isinstance(exc, errors.Forbidden) and "being terminated" in exc.message:
                raise
            msg = f'Failed to create new replica set "{name}": {exc.message}'
            if has_progress_deadline(d):
                set_condition(d["status"], new_condition(PROGRESSING, "False",
                                                         FAILED_RS_CREATE_REASON, msg, self.now))
                await self.update_status()
            self.event(WARNING, FAILED_RS_CREATE_REASON, msg)
            raise
        self.ctrl.expectations.expect(self.key, self.ctrl.replicasets, created)
        uid = created["metadata"].get("uid")
        if not any(rs["metadata"].get("uid") == uid for rs in self.rss):
            self.rss.append(created)
        if not already and count > 0:
            self.event(NORMAL, "ScalingReplicaSet",
                       f"Scaled up replica set {name} from 0 to {count}")
        d = self.d
        needs = set_deployment_revision(d, new_revision)
        if not already and has_progress_deadline(d):
            set_condition(d["status"], new_condition(PROGRESSING, "True", NEW_RS_REASON,
                                                     f'Created new replica set "{name}"',
                                                     self.now))
            needs = True
        if needs:
            await self.update_status()
        return created

    # ---- strategies -------------------------------------------------------------------

    async def sync(self) -> None:
        """A resize or a paused Deployment: scale, never roll out."""
        new, olds = await self.new_and_old(False)
        await self.scale(new, olds)
        if (self.d.get("spec") or {}).get("paused"):
            await self.cleanup(olds)
        await self.sync_deployment_status([*olds, new], new)

    async def scale(self, new: Obj | None, olds: list[Obj]) -> None:
        d = self.d
        latest = find_active_or_latest(new, olds)
        if latest is not None:
            if replicas(latest) != replicas(d):
                await self.scale_and_record(latest, replicas(d))
            return
        if is_saturated(d, new):
            for old in filter_active(olds):
                await self.scale_and_record(old, 0)
            return
        if is_rolling_update(d):
            sizes, operation = proportional_sizes(d, [*olds, *([new] if new else [])])
            for rs, size in sizes:
                await self.scale_rs(rs, size, operation)

    async def is_scaling_event(self) -> bool:
        new, olds = await self.new_and_old(False)
        for rs in filter_active([*olds, new]):
            desired = annotations_of(rs).get(DESIRED_REPLICAS)
            if desired is not None and desired.isdigit() and int(desired) != replicas(self.d):
                return True
        return False

    async def rolling(self) -> None:
        new, olds = await self.new_and_old(True)
        assert new is not None
        all_rss = [*olds, new]
        if await self._reconcile_new(all_rss, new):
            await self.sync_rollout_status(all_rss, new)
            return
        if await self._reconcile_old(all_rss, filter_active(olds), new):
            await self.sync_rollout_status(all_rss, new)
            return
        if deployment_complete(self.d, self.d["status"]):
            await self.cleanup(olds)
        await self.sync_rollout_status(all_rss, new)

    async def _reconcile_new(self, all_rss: list[Obj], new: Obj) -> bool:
        want = replicas(self.d)
        if replicas(new) == want:
            return False
        if replicas(new) > want:
            return await self.scale_and_record(new, want)
        return await self.scale_and_record(new, new_rs_new_replicas(self.d, all_rss, new))

    async def _reconcile_old(self, all_rss: list[Obj], olds: list[Obj], new: Obj) -> bool:
        if total_replicas(olds) == 0:
            return False
        min_available = replicas(self.d) - max_unavailable(self.d)
        new_unavailable = replicas(new) - status_int(new, "availableReplicas")
        # Never go below minAvailable counting the new pods that are not up yet.
        most = total_replicas(all_rss) - min_available - new_unavailable
        if most <= 0:
            return False
        olds, cleaned = await self._cleanup_unhealthy(olds, most)
        scaled = await self._scale_down_old([*olds, new], olds)
        return cleaned + scaled > 0

    async def _cleanup_unhealthy(self, olds: list[Obj], most: int) -> tuple[list[Obj], int]:
        """Unavailable old pods go first: removing them costs no availability."""
        olds = by_creation(olds)
        total = 0
        for rs in olds:
            if total >= most:
                break
            unhealthy = replicas(rs) - status_int(rs, "availableReplicas")
            if replicas(rs) == 0 or unhealthy == 0:
                continue
            count = min(most - total, unhealthy)
            if count < 0:
                raise errors.InternalError(
                    f"when cleaning up unhealthy replicas, got invalid request to scale "
                    f"down {self.ns}/{rs['metadata']['name']} {replicas(rs)} -> "
                    f"{replicas(rs) - count}")
            await self.scale_and_record(rs, replicas(rs) - count)
            total += count
        return olds, total

    async def _scale_down_old(self, all_rss: list[Obj], olds: list[Obj]) -> int:
        min_available = replicas(self.d) - max_unavailable(self.d)
        available = total_status(all_rss, "availableReplicas")
        if available <= min_available:
            return 0
        budget = available - min_available
        total = 0
        for rs in by_creation(olds):
            if total >= budget:
                break
            if replicas(rs) == 0:
                continue
            count = min(replicas(rs), budget - total)
            await self.scale_and_record(rs, replicas(rs) - count)
            total += count
        return total

    async def recreate(self) -> None:
        new, olds = await self.new_and_old(False)
        all_rss: list[Obj | None] = [*olds, new]
        scaled_down = False
        for rs in filter_active(olds):
            scaled_down = await self.scale_and_record(rs, 0) or scaled_down
        if scaled_down or self._old_pods_running(new, olds):
            await self.sync_rollout_status(all_rss, new)
            return
        if new is None:
            new, olds = await self.new_and_old(True)
            assert new is not None
            all_rss = [*olds, new]
        await self.scale_and_record(new, replicas(self.d))
        if deployment_complete(self.d, self.d["status"]):
            await self.cleanup(olds)
        await self.sync_rollout_status(all_rss, new)

    def _old_pods_running(self, new: Obj | None, olds: list[Obj]) -> bool:
        """Recreate starts new pods only once every old pod is gone — including ones
        still terminating, which hold their (old-version) state until they stop."""
        if total_status(olds, "replicas") > 0:
            return True
        new_uid = (new or {}).get("metadata", {}).get("uid")
        for rs in self.rss:
            uid = rs["metadata"].get("uid")
            if uid == new_uid:
                continue
            for pod in self.ctrl.pods_of(uid):
                if (pod.get("status") or {}).get("phase") not in ("Failed", "Succeeded"):
                    return True
        return False

    # ---- history ----------------------------------------------------------------------

    async def cleanup(self, olds: list[Obj]) -> None:
        limit = (self.d.get("spec") or {}).get("revisionHistoryLimit")
        if limit is None:
            return
        alive = [rs for rs in olds if not _is_deleting(rs)]
        excess = len(alive) - int(limit)
        if excess <= 0:
            return
        for rs in by_revision(alive)[:excess]:
            meta = rs["metadata"]
            if status_int(rs, "replicas") != 0 or replicas(rs) != 0 or \
                    int(meta.get("generation") or 0) > status_int(rs, "observedGeneration"):
                continue
            try:
                gone = await self.client.delete(self.ctrl.rs_rt, self.ns, meta["name"])
            except errors.NotFound:
                continue
            self.ctrl.expectations.expect(self.key, self.ctrl.replicasets, gone)
            log.info("deployment %s: deleted old replica set %s (history limit %s)",
                     self.key, meta["name"], limit)

    # ---- status ------------------------------------------------------------------------

    async def check_paused_conditions(self) -> None:
        d = self.d
        if not has_progress_deadline(d):
            return
        cond = get_condition(d["status"], PROGRESSING)
        if cond is not None and cond.get("reason") == TIMED_OUT_REASON:
            return  # a failed rollout stays failed until the next one
        paused_recorded = cond is not None and cond.get("reason") == PAUSED_REASON
        paused = bool((d.get("spec") or {}).get("paused"))
        if paused and not paused_recorded:
            set_condition(d["status"], new_condition(PROGRESSING, "Unknown", PAUSED_REASON,
                                                     "Deployment is paused", self.now))
        elif not paused and paused_recorded:
            set_condition(d["status"], new_condition(PROGRESSING, "Unknown", RESUMED_REASON,
                                                     "Deployment is resumed", self.now))
        else:
            return
        await self.update_status()

    async def sync_deployment_status(self, all_rss: Sequence[Obj | None],
                                     new: Obj | None) -> None:
        status = calculate_status(all_rss, new, self.d, self.now)
        if status != self.d["status"]:
            self.d["status"] = status
            await self.update_status()

    async def sync_rollout_status(self, all_rss: Sequence[Obj | None], new: Obj | None) -> None:
        d = self.d
        status = calculate_status(all_rss, new, d, self.now)
        if not has_progress_deadline(d):
            remove_condition(status, PROGRESSING)
        current = get_condition(d["status"], PROGRESSING)
        complete = int(status.get("replicas") or 0) == int(status.get("updatedReplicas") or 0) \
            and current is not None and current.get("reason") == NEW_RS_AVAILABLE_REASON
        subject = f'ReplicaSet "{new["metadata"]["name"]}"' if new is not None \
            else f'Deployment "{self.name}"'
        if has_progress_deadline(d) and not complete:
            if deployment_complete(d, status):
                set_condition(status, new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE_REASON,
                                                    f"{subject} has successfully progressed.",
                                                    self.now))
            elif deployment_progressing(d, status):
                cond = new_condition(PROGRESSING, "True", RS_UPDATED_REASON,
                                     f"{subject} is progressing.", self.now)
                if current is not None:
                    if current.get("status") == "True":
                        cond["lastTransitionTime"] = current.get("lastTransitionTime")
                    remove_condition(status, PROGRESSING)
                set_condition(status, cond)
            elif deployment_timed_out(d, status, self.now):
                set_condition(status, new_condition(PROGRESSING, "False", TIMED_OUT_REASON,
                                                    f"{subject} has timed out progressing.",
                                                    self.now))
        failure = self._replica_failure(all_rss, new)
        if failure is not None:
            set_condition(status, failure)
        else:
            remove_condition(status, REPLICA_FAILURE)
        if status == d["status"]:
            self._requeue_stuck(status)
            return
        d["status"] = status
        await self.update_status()

    @staticmethod
    def _replica_failure(all_rss: Sequence[Obj | None], new: Obj | None) -> Obj | None:
        """A ReplicaFailure of the new ReplicaSet (preferred) or of any other."""
        for rs in [new, *all_rss]:
            if rs is None:
                continue
            for c in (rs.get("status") or {}).get("conditions") or []:
                if c.get("type") == REPLICA_FAILURE:
                    return {"type": REPLICA_FAILURE, "status": c.get("status"),
                            "lastUpdateTime": c.get("lastTransitionTime"),
                            "lastTransitionTime": c.get("lastTransitionTime"),
                            "reason": c.get("reason"), "message": c.get("message")}
        return None

    def _requeue_stuck(self, status: Obj) -> None:
        """Look again when the progress deadline passes, so a stuck rollout is marked
        ProgressDeadlineExceeded on time rather than at the next unrelated event."""
        d = self.d
        current = get_condition(d["status"], PROGRESSING)
        if not has_progress_deadline(d) or current is None:
            return
        if deployment_complete(d, status) or current.get("reason") == TIMED_OUT_REASON:
            return
        since = parse_time(current.get("lastUpdateTime"))
        if since is None:
            return
        deadline = since + timedelta(seconds=int(d["spec"]["progressDeadlineSeconds"]))
        after = (deadline - self.now).total_seconds()
        # The check is "deadline < now": look a moment after it.
        self.ctrl.enqueue_after(self.key, max(after, 0.0) + 0.1)


__all__ = ["Rollout", "AVAILABLE"]
