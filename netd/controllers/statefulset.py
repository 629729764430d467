"""StatefulSet controller (k8s.io/kubernetes pkg/controller/statefulset).

One reconcile is upstream's updateStatefulSet:
1. claim the set's pods (adopt matching orphans named `<set>-<n>`, release the rest);
2. find the current and update ControllerRevisions (create / renumber as upstream);
3. split pods into `replicas` (ordinals start..start+replicas-1) and `condemned`;
4. each replica in ordinal order: recreate finished pods, create missing ones (their
   PVCs first), and with OrderedReady stop at the first that is not Running+Ready
   (so web-1 waits for web-0); Parallel does them all;
5. condemned pods go from the highest ordinal, one at a time with OrderedReady;
6. RollingUpdate: delete the highest-ordinal pod not at the update revision, down to
   the partition, one at a time waiting for health (or up to maxUnavailable); OnDelete
   stops after 5 — users delete pods and the recreated ones get the update revision;
7. status, and history beyond revisionHistoryLimit is deleted.
"""
from __future__ import annotations

import logging
from typing import Any

from netd.api import errors
from netd.api.kinds import resource
from netd.api.selectors import LabelSelector, format_label_selector, selector_from_dict
from netd.client.controller import Controller
from netd.client.informer import index_by_controller_uid, index_by_namespace, key_of
from netd.controllers import statefulset_pods as sp
from netd.controllers.controllerhistory import (CONTROLLER_REVISION, RevisionWriter,
                                                equal_revision,
                                                find_equal_revisions, history_to_delete,
                                                new_revision, next_revision, sort_revisions,
                                                template_patch)
from netd.controllers.events import NORMAL, WARNING
from netd.controllers.manager import ControllerContext
from netd.controllers.owners import ensure_index, owner_keys
from netd.controllers.podexpectations import PodExpectations
from netd.controllers.statefulset_control import StatefulSetSync
from netd.controllers.podutil import controller_ref, is_controlled_by, new_controller_ref
from netd.store.base import copy_obj

log = logging.getLogger("netd.controllers.statefulset")

Obj = dict[str, Any]
COMPONENT = "statefulset-controller"
BY_CONTROLLER = "controller-uid"
BY_NAMESPACE = "namespace"


STS = resource("apps", "statefulsets")
POD = resource("", "pods")
PVC = resource("", "persistentvolumeclaims")


class StatefulSetController(Controller):
    def __init__(self, ctx: ControllerContext, workers: int = 4) -> None:
        super().__init__("statefulset", workers=workers)
        self.ctx = ctx
        self.client = ctx.client
        self.sets = self.watch(ctx.factory.informer(STS))
        ensure_index(self.sets, BY_NAMESPACE, index_by_namespace)
        self.pods = self.watch(ctx.factory.informer(POD), keys_for=self._pod_keys)
        ensure_index(self.pods, BY_CONTROLLER, index_by_controller_uid)
        ensure_index(self.pods, BY_NAMESPACE, index_by_namespace)
        self.expectations = PodExpectations(self.clock.now)
        self.revisions = RevisionWriter(ctx.client)

    # ---- event mapping -------------------------------------------------------------

    def _pod_keys(self, pod: Obj) -> list[str]:
        ns = pod["metadata"].get("namespace") or ""
        return owner_keys(pod, lambda ref: ref.get("kind") == "StatefulSet",
                          self.sets.by_index(BY_NAMESPACE, ns),
                          lambda sts, p: sp.is_member_of(sts, p) and _selector(sts).matches(
                              p["metadata"].get("labels") or {}))

    # ---- reconcile -----------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        sts = self.sets.get(key)
        if sts is None:
            self.expectations.forget(key)
            return
        pods = await self._claim_pods(sts)
        revisions = self._list_revisions(sts)
        current, update, collision = await self._get_revisions(sts, revisions)
        if self.expectations.satisfied(key, self.pods.get):
            status = await StatefulSetSync(self, sts, current, update, pods).run()
        else:
            # Our last writes are not in the cache yet; their events bring us back.
            status = StatefulSetSync(self, sts, current, update, pods).status_only()
        status["collisionCount"] = collision
        await self._write_status(sts, status)
        min_ready = int((sts.get("spec") or {}).get("minReadySeconds") or 0)
        if min_ready > 0 and status.get("readyReplicas", 0) != status.get("availableReplicas", 0):
            self.enqueue_after(key, float(min_ready))
        await self._truncate_history(sts, pods, revisions, current, update)

    # ---- pods ----------------------------------------------------------------------

    async def _claim_pods(self, sts: Obj) -> list[Obj]:
        """ClaimPods with the isMemberOf filter: owned and matching stays, owned and not
        matching is released, matching orphans are adopted (unless the set is going)."""
        meta = sts["metadata"]
        selector = _selector(sts)
        out: list[Obj] = []
        for pod in self.pods.by_index(BY_CONTROLLER, meta["uid"]):
            if not is_controlled_by(pod, sts):
                continue
            labels = pod["metadata"].get("labels") or {}
            if selector.matches(labels) and sp.is_member_of(sts, pod):
                out.append(pod)
            elif not meta.get("deletionTimestamp"):
                await self._release(pod, sts)
        if meta.get("deletionTimestamp") or selector.empty():
            return out
        for pod in self.pods.by_index(BY_NAMESPACE, meta["namespace"]):
            if controller_ref(pod) is not None or sp.is_terminating(pod):
                continue
            if sp.is_member_of(sts, pod) and selector.matches(pod["metadata"].get("labels")):
                adopted = await self._adopt(pod, sts)
                if adopted is not None:
                    out.append(adopted)
        return out

    async def _adopt(self, pod: Obj, sts: Obj) -> Obj | None:
        body = copy_obj(pod)
        body["metadata"].setdefault("ownerReferences", []).append(new_controller_ref(sts))
        try:
            return await self.client.update(POD, body)
        except (errors.NotFound, errors.Conflict):
            return None  # changed meanwhile: its event brings us back

    async def _release(self, pod: Obj, sts: Obj) -> None:
        body = copy_obj(pod)
        uid = sts["metadata"]["uid"]
        body["metadata"]["ownerReferences"] = [
            r for r in body["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
        try:
            await self.client.update(POD, body)
        except (errors.NotFound, errors.Conflict):
            pass

    async def create_pod(self, sts: Obj, pod: Obj) -> None:
        """CreateStatefulPod: PVCs first, then the pod, then the claims' owner refs."""
        ns = sts["metadata"]["namespace"]
        name = pod["metadata"]["name"]
        try:
            await self.create_claims(sts, pod)
            created = await self.client.create(POD, pod, ns)
        except errors.APIError as err:
            if not isinstance(err, errors.AlreadyExists):
                self._event(sts, WARNING, "FailedCreate",
                            f"create Pod {name} in StatefulSet {sts['metadata']['name']} "
                            f"failed error: {err.message}")
            raise
        self.expectations.expect_create(key_of(sts), f"{ns}/{name}")
        self._event(sts, NORMAL, "SuccessfulCreate",
                    f"create Pod {name} in StatefulSet {sts['metadata']['name']} successful")
        await self.update_claims_for_policy(sts, created)

    async def create_claims(self, sts: Obj, pod: Obj) -> None:
        """createPersistentVolumeClaims: missing claims are created; existing ones are
        reused as they are (which is what keeps data across scale-down/up)."""
        failures: list[str] = []
        set_name, pod_name = sts["metadata"]["name"], pod["metadata"]["name"]
        for claim in sp.claims_for(sts, sp.ordinal_of(pod)).values():
            cname = claim["metadata"]["name"]
            existing = self.client.get_or_none(PVC, claim["metadata"]["namespace"], cname)
            if existing is not None:
                if existing["metadata"].get("deletionTimestamp"):
                    failures.append(f"pvc {cname} is being deleted")
                continue
            try:
                await self.client.create(PVC, claim)
            except errors.AlreadyExists:
                continue
            except errors.APIError as err:
                self._event(sts, WARNING, "FailedCreate",
                            f"create Claim {cname} for Pod {pod_name} in StatefulSet "
                            f"{set_name} failed error: {err.message}")
                failures.append(f"failed to create PVC {cname}: {err.message}")
                continue
            self._event(sts, NORMAL, "SuccessfulCreate",
                        f"create Claim {cname} Pod {pod_name} in StatefulSet {set_name} "
                        "success")
        if failures:
            raise errors.InternalError("; ".join(failures))

    async def delete_pod(self, sts: Obj, pod: Obj) -> None:
        meta = pod["metadata"]
        try:
            await self.client.delete(POD, meta["namespace"], meta["name"], uid=meta.get("uid"))
        except errors.NotFound:
            return
        except errors.APIError as err:
            self._event(sts, WARNING, "FailedDelete",
                        f"delete Pod {meta['name']} in StatefulSet {sts['metadata']['name']} "
                        f"failed error: {err.message}")
            raise
        self.expectations.expect_delete(key_of(sts), f"{meta['namespace']}/{meta['name']}",
                                        meta.get("uid") or "")
        self._event(sts, NORMAL, "SuccessfulDelete",
                    f"delete Pod {meta['name']} in StatefulSet {sts['metadata']['name']} "
                    "successful")

    async def update_pod_identity(self, sts: Obj, pod: Obj) -> None:
        """UpdateStatefulPod: restore identity labels and create missing claims (pod
        volumes are immutable, so a pod with other claim volumes is left as it is)."""
        if not sp.storage_matches(sts, pod):
            await self.create_claims(sts, pod)
        if sp.identity_matches(sts, pod):
            return
        body = copy_obj(pod)
        sp.update_identity(sts, body, sp.ordinal_of(body))
        try:
            await self.client.update(POD, body)
        except errors.NotFound:
            pass

    def claims_match_policy(self, sts: Obj, pod: Obj) -> bool:
        for claim in sp.claims_for(sts, sp.ordinal_of(pod)).values():
            existing = self.client.get_or_none(PVC, claim["metadata"]["namespace"],
                                               claim["metadata"]["name"])
            if existing is not None and not sp.claim_owner_matches(existing, sts, pod):
                return False
        return True

    async def update_claims_for_policy(self, sts: Obj, pod: Obj) -> None:
        """UpdatePodClaimForRetentionPolicy: owner references that make the garbage
        collector delete claims with the set (whenDeleted) or the scaled-down pod
        (whenScaled) — Retain leaves no reference."""
        for claim in sp.claims_for(sts, sp.ordinal_of(pod)).values():
            existing = self.client.get_or_none(PVC, claim["metadata"]["namespace"],
                                               claim["metadata"]["name"])
            if existing is None or sp.claim_owner_matches(existing, sts, pod):
                continue
            existing["metadata"]["ownerReferences"] = sp.claim_refs_for_policy(existing, sts, pod)
            if not existing["metadata"]["ownerReferences"]:
                del existing["metadata"]["ownerReferences"]
            await self.client.update(PVC, existing)

    def claim_is_stale(self, sts: Obj, pod: Obj) -> bool:
        """PodClaimIsStale: with whenScaled=Delete a claim still owned by the previous pod
        of this name is about to be deleted; wait rather than mount it."""
        if sp.retention_policy(sts)[1] != sp.DELETE:
            return False
        for claim in sp.claims_for(sts, sp.ordinal_of(pod)).values():
            existing = self.client.get_or_none(PVC, claim["metadata"]["namespace"],
                                               claim["metadata"]["name"])
            if existing is not None and sp.has_stale_owner_ref(existing, pod):
                return True
        return False

    def _event(self, sts: Obj, type_: str, reason: str, message: str) -> None:
        self.ctx.recorder.record(sts, type_, reason, message, component=COMPONENT)

    # ---- revisions -----------------------------------------------------------------

    def _list_revisions(self, sts: Obj) -> list[Obj]:
        # Read from the store, not an informer: a revision created a moment ago must be
        # seen by the next reconcile, or it would be created (and renumbered) twice.
        selector = format_label_selector((sts.get("spec") or {}).get("selector"))
        revs = self.client.list(CONTROLLER_REVISION, sts["metadata"]["namespace"],
                                label_selector=selector)
        return [r for r in revs if is_controlled_by(r, sts)]

    async def _get_revisions(self, sts: Obj, revisions: list[Obj]) -> tuple[Obj, Obj, int]:
        """getStatefulSetRevisions."""
        revisions = sort_revisions(revisions)
        collision = int((sts.get("status") or {}).get("collisionCount") or 0)
        labels = (((sts.get("spec") or {}).get("template") or {}).get("metadata") or {}) \
            .get("labels")
        candidate = new_revision(sts, labels, template_patch(sts), next_revision(revisions))
        equal = find_equal_revisions(revisions, candidate)
        if equal and equal_revision(revisions[-1], equal[-1]):
            update = revisions[-1]          # the template did not change
        elif equal:
            # A rollback to an older template: that revision becomes the newest again.
            update = await self.revisions.renumber(equal[-1], candidate["revision"])
        else:
            update, collision = await self.revisions.create(sts, candidate, collision)
        current_name = (sts.get("status") or {}).get("currentRevision")
        current = next((r for r in revisions if r["metadata"]["name"] == current_name), update)
        return current, update, collision

    async def _truncate_history(self, sts: Obj, pods: list[Obj], revisions: list[Obj],
                                current: Obj, update: Obj) -> None:
        live = {current["metadata"]["name"], update["metadata"]["name"]}
        live.update(sp.pod_revision(p) for p in pods)
        limit = int((sts.get("spec") or {}).get("revisionHistoryLimit", 10) or 0)
        for rev in history_to_delete(revisions, live, limit):
            try:
                await self.revisions.delete(rev)
            except errors.Conflict:
                pass

    # ---- status --------------------------------------------------------------------

    async def _write_status(self, sts: Obj, computed: Obj) -> None:
        status = copy_obj(sts.get("status") or {})
        status.update(computed)
        # Go's omitempty: zero counters are absent, as a cluster shows them.
        for fld in ("readyReplicas", "currentReplicas", "updatedReplicas"):
            if not status.get(fld):
                status.pop(fld, None)
        if status == (sts.get("status") or {}):
            return
        body = copy_obj(sts)
        body["status"] = status
        try:
            await self.client.update_status(STS, body)
        except errors.NotFound:
            pass


def _selector(sts: Obj) -> LabelSelector:
    try:
        return selector_from_dict((sts.get("spec") or {}).get("selector"))
    except errors.APIError:
        return selector_from_dict(None)
