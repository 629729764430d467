"""DaemonSet controller (k8s.io/kubernetes pkg/controller/daemon).

One reconcile is upstream's syncDaemonSet:
1. history: the ControllerRevision matching the template is current (created, or
   renumbered to the newest when the template went back to an old one); its hash is
   the pods' `controller-revision-hash`;
2. manage: every eligible node (nodeSelector, required node affinity, taints against
   the pod's tolerations plus the daemon defaults) gets one pod, pinned to the node by
   required node affinity `metadata.name In [node]` for the scheduler to bind; pods on
   nodes that no longer qualify, duplicates and finished pods are deleted;
3. rolling update (when manage had nothing to do): with maxSurge 0, delete old pods
   while fewer than maxUnavailable pods are unavailable (manage recreates them);
   with maxSurge, start new pods beside old ones and delete the old once the new is
   available. OnDelete: nothing — users delete pods;
4. status, and old history past revisionHistoryLimit is deleted.
"""
from __future__ import annotations

import logging
from typing import Any

from netd.api import errors
from netd.api.kinds import resource
from netd.api.selectors import LabelSelector, format_label_selector, selector_from_dict
from netd.client.controller import Controller
from netd.client.informer import index_by_controller_uid, index_by_namespace, key_of
from netd.controllers import daemonset_nodes as dn
from netd.controllers.controllerhistory import (CONTROLLER_REVISION, POD_REVISION_LABEL,
                                                RevisionWriter, new_revision, next_revision,
                                                sort_revisions, template_patch)
from netd.controllers.events import NORMAL, WARNING
from netd.controllers.manager import ControllerContext
from netd.controllers.podexpectations import PodExpectations
from netd.controllers.podutil import (controller_ref, is_controlled_by, new_controller_ref,
                                      template_hash)
from netd.controllers.owners import ensure_index, owner_keys
from netd.controllers.statefulset import BY_CONTROLLER, BY_NAMESPACE
from netd.store.base import copy_obj

log = logging.getLogger("netd.controllers.daemonset")

Obj = dict[str, Any]
COMPONENT = "daemonset-controller"


DS = resource("apps", "daemonsets")
POD = resource("", "pods")
NODE = resource("", "nodes")


def _selector(ds: Obj) -> LabelSelector:
    try:
        return selector_from_dict((ds.get("spec") or {}).get("selector"))
    except errors.APIError:
        return selector_from_dict(None)


def _phase(pod: Obj) -> str:
    return (pod.get("status") or {}).get("phase") or ""


class DaemonSetController(Controller):
    def __init__(self, ctx: ControllerContext, workers: int = 2) -> None:
        super().__init__("daemonset", workers=workers)
        self.ctx = ctx
        self.client = ctx.client
        self.sets = self.watch(ctx.factory.informer(DS))
        self.pods = self.watch(ctx.factory.informer(POD), keys_for=self._pod_keys)
        self.nodes = ctx.factory.informer(NODE)
        self.nodes.add_handler(self._node_changed, self._node_updated, self._node_changed)
        self.informers.append(self.nodes)
        ensure_index(self.sets, BY_NAMESPACE, index_by_namespace)
        ensure_index(self.pods, BY_CONTROLLER, index_by_controller_uid)
        ensure_index(self.pods, BY_NAMESPACE, index_by_namespace)
        self.expectations = PodExpectations(self.clock.now)
        self.revisions = RevisionWriter(ctx.client)

    # ---- event mapping -------------------------------------------------------------

    def _pod_keys(self, pod: Obj) -> list[str]:
        ns = pod["metadata"].get("namespace") or ""
        return owner_keys(pod, lambda ref: ref.get("kind") == "DaemonSet",
                          self.sets.by_index(BY_NAMESPACE, ns),
                          lambda ds, p: _selector(ds).matches(
                              p["metadata"].get("labels") or {}))

    def _node_changed(self, node: Obj) -> None:
        # A node added or removed may change where any daemon runs.
        for key in self.sets.keys():
            self.queue.add(key)

    def _node_updated(self, old: Obj, new: Obj) -> None:
        # shouldIgnoreNodeUpdate: heartbeats (status conditions, resourceVersion) alone
        # change nothing for placement; labels, taints and the rest do.
        if _node_placement(old) != _node_placement(new):
            self._node_changed(new)

    # ---- reconcile -----------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        ds = self.sets.get(key)
        if ds is None:
            self.expectations.forget(key)
            return
        nodes = self.nodes.list()
        node_pods = await self._node_to_pods(ds)
        if ds["metadata"].get("deletionTimestamp"):
            await self._write_status(ds, nodes, node_pods, self._current_hash(ds))
            return
        current, old = await self._construct_history(ds)
        hash_ = (current["metadata"].get("labels") or {}).get(POD_REVISION_LABEL, "")
        if self.expectations.satisfied(key, self.pods.get):
            changed = await self._manage(ds, nodes, node_pods, hash_)
            strategy = (ds.get("spec") or {}).get("updateStrategy") or {}
            if not changed and strategy.get("type", "RollingUpdate") == "RollingUpdate":
                await self._rolling_update(ds, nodes, node_pods, hash_)
            await self._cleanup_history(ds, old, node_pods)
        await self._write_status(ds, nodes, node_pods, hash_)

    def _current_hash(self, ds: Obj) -> str:
        return template_hash((ds.get("spec") or {}).get("template") or {},
                             int((ds.get("status") or {}).get("collisionCount") or 0))

    async def _node_to_pods(self, ds: Obj) -> dict[str, list[Obj]]:
        """getNodesToDaemonPods after ClaimPods: owned pods that still match, plus
        matching orphans (adopted). Pods being deleted after they finished are left out."""
        meta = ds["metadata"]
        selector = _selector(ds)
        pods: list[Obj] = []
        for pod in self.pods.by_index(BY_CONTROLLER, meta["uid"]):
            if not is_controlled_by(pod, ds):
                continue
            if selector.matches(pod["metadata"].get("labels")):
                pods.append(pod)
            elif not meta.get("deletionTimestamp"):
                await self._set_owner(pod, ds, adopt=False)
        if not meta.get("deletionTimestamp") and not selector.empty():
            for pod in self.pods.by_index(BY_NAMESPACE, meta["namespace"]):
                if controller_ref(pod) is None and not pod["metadata"].get("deletionTimestamp") \
                        and selector.matches(pod["metadata"].get("labels")):
                    adopted = await self._set_owner(pod, ds, adopt=True)
                    if adopted is not None:
                        pods.append(adopted)
        out: dict[str, list[Obj]] = {}
        for pod in pods:
            if pod["metadata"].get("deletionTimestamp") and _phase(pod) in ("Failed", "Succeeded"):
                continue
            node = dn.target_node(pod)
            if node:
                out.setdefault(node, []).append(pod)
        return out

    async def _set_owner(self, pod: Obj, ds: Obj, *, adopt: bool) -> Obj | None:
        body = copy_obj(pod)
        refs = [r for r in body["metadata"].get("ownerReferences") or []
                if r.get("uid") != ds["metadata"]["uid"]]
        if adopt:
            refs.append(new_controller_ref(ds))
        body["metadata"]["ownerReferences"] = refs
        try:
            return await self.client.update(POD, body)
        except (errors.NotFound, errors.Conflict):
            return None

    # ---- manage --------------------------------------------------------------------

    async def _manage(self, ds: Obj, nodes: list[Obj], node_pods: dict[str, list[Obj]],
                      hash_: str) -> bool:
        """manage + podsShouldBeOnNode; True when it created or deleted anything."""
        create: list[str] = []
        delete: list[Obj] = []
        surge = self._max_surge_configured(ds)
        now = self.ctx.now()
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        names = set()
        for node in nodes:
            name = node["metadata"]["name"]
            names.add(name)
            run, keep = dn.should_run(node, ds)
            pods = node_pods.get(name) or []
            if run and not pods:
                create.append(name)
            elif keep:
                running = []
                for pod in pods:
                    if pod["metadata"].get("deletionTimestamp"):
                        continue
                    if _phase(pod) in ("Failed", "Succeeded"):
                        delete.append(pod)
                    else:
                        running.append(pod)
                running = dn.oldest_first(running)
                if not surge:
                    delete.extend(running[1:])
                    continue
                if not running:
                    if run:
                        create.append(name)
                    continue
                delete.extend(self._surge_excess(running, hash_, min_ready, now))
            elif pods:
                delete.extend(p for p in pods if not p["metadata"].get("deletionTimestamp"))
        # A node that is gone takes its daemon pods with it. Upstream leaves bound pods
        # to the pod garbage collector; netd has none, so the controller removes them
        # (at once: no kubelet remains to finish a graceful deletion).
        gone = [p for n, pods in node_pods.items() if n not in names for p in pods
                if not p["metadata"].get("deletionTimestamp")]
        await self._sync_nodes(ds, delete, create, hash_)
        for pod in gone:
            await self._delete_pod(ds, pod, grace=0)
        return bool(create or delete or gone)

    def _surge_excess(self, running: list[Obj], hash_: str, min_ready: int,
                      now: Any) -> list[Obj]:
        """With surge, one old and one new pod may share a node while the new one comes
        up; everything else goes, and the old one goes once the new one is available."""
        excess: list[Obj] = []
        oldest_new: Obj | None = None
        oldest_old: Obj | None = None
        for pod in running:
            if (pod["metadata"].get("labels") or {}).get(POD_REVISION_LABEL) == hash_:
                if oldest_new is None:
                    oldest_new = pod
                    continue
            elif oldest_old is None:
                oldest_old = pod
                continue
            excess.append(pod)
        if oldest_new is not None and oldest_old is not None:
            if not _ready(oldest_old) or dn.available(oldest_new, min_ready, now):
                excess.append(oldest_old)
        return excess

    def _max_surge_configured(self, ds: Obj) -> bool:
        strategy = (ds.get("spec") or {}).get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return False
        value = (strategy.get("rollingUpdate") or {}).get("maxSurge")
        return value not in (None, 0, "0", "0%")

    async def _sync_nodes(self, ds: Obj, delete: list[Obj], create: list[str],
                          hash_: str) -> None:
        for pod in delete:
            await self._delete_pod(ds, pod)
        for node in create:
            await self._create_pod(ds, node, hash_)

    async def _create_pod(self, ds: Obj, node: str, hash_: str) -> None:
        ns = ds["metadata"]["namespace"]
        pod = dn.new_daemon_pod(ds, node, hash_)
        try:
            created = await self.client.create(POD, pod, ns)
        except errors.APIError as err:
            self._event(ds, WARNING, "FailedCreate", f"Error creating: {err.message}")
            raise
        self.expectations.expect_create(key_of(ds), key_of(created))
        self._event(ds, NORMAL, "SuccessfulCreate",
                    f"Created pod: {created['metadata']['name']}")

    async def _delete_pod(self, ds: Obj, pod: Obj, grace: int | None = None) -> None:
        meta = pod["metadata"]
        try:
            await self.client.delete(POD, meta["namespace"], meta["name"], uid=meta.get("uid"),
                                     grace=grace)
        except errors.NotFound:
            return
        except errors.APIError as err:
            self._event(ds, WARNING, "FailedDelete", f"Error deleting: {err.message}")
            raise
        self.expectations.expect_delete(key_of(ds), key_of(pod), meta.get("uid") or "")
        self._event(ds, NORMAL, "SuccessfulDelete", f"Deleted pod: {meta['name']}")

    def _event(self, ds: Obj, type_: str, reason: str, message: str) -> None:
        self.ctx.recorder.record(ds, type_, reason, message, component=COMPONENT)

    # ---- rolling update ------------------------------------------------------------

    def _desired_counts(self, ds: Obj, nodes: list[Obj],
                        node_pods: dict[str, list[Obj]]) -> tuple[int, int, int,
                                                                   dict[str, list[Obj]]]:
        """updatedDesiredNodeCounts: (maxSurge, maxUnavailable, desired, node→pods with
        an empty entry for every eligible node still without a pod)."""
        desired = 0
        mapping = dict(node_pods)
        for node in nodes:
            if dn.should_run(node, ds)[0]:
                desired += 1
                mapping.setdefault(node["metadata"]["name"], [])
        ru = (((ds.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate")) or {}
        max_unavailable = dn.scaled_value(ru.get("maxUnavailable", 1), desired)
        max_surge = dn.scaled_value(ru.get("maxSurge", 0), desired)
        if desired > 0 and max_unavailable == 0 and max_surge == 0:
            max_unavailable = 1  # an impossible configuration: upstream allows one
        return max_surge, max_unavailable, desired, mapping

    def _split(self, ds: Obj, pods: list[Obj], hash_: str
               ) -> tuple[Obj | None, Obj | None, bool]:
        """findUpdatedPodsOnNode: (new pod, old pod, ok); not ok with duplicates."""
        new = old = None
        generation = dn.template_generation(ds)
        for pod in pods:
            if pod["metadata"].get("deletionTimestamp"):
                continue
            if dn.is_updated(pod, hash_, generation):
                if new is not None:
                    return None, None, False
                new = pod
            else:
                if old is not None:
                    return None, None, False
                old = pod
        return new, old, True

    async def _rolling_update(self, ds: Obj, nodes: list[Obj],
                              node_pods: dict[str, list[Obj]], hash_: str) -> None:
        max_surge, max_unavailable, desired, mapping = self._desired_counts(ds, nodes,
                                                                            node_pods)
        now = self.ctx.now()
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        if max_surge == 0:
            unavailable = 0
            replace: list[Obj] = []
            candidates: list[Obj] = []
            for name in sorted(mapping):
                new, old, ok = self._split(ds, mapping[name], hash_)
                if not ok or (new is None) == (old is None):
                    unavailable += 1  # manage will create or prune here
                elif new is not None:
                    if not dn.available(new, min_ready, now):
                        unavailable += 1
                elif old is not None:
                    if not dn.available(old, min_ready, now):
                        replace.append(old)
                        unavailable += 1
                    elif unavailable < max_unavailable:
                        candidates.append(old)
            budget = max(0, min(max_unavailable - unavailable, len(candidates)))
            await self._sync_nodes(ds, replace + candidates[:budget], [], hash_)
            return
        by_name = {n["metadata"]["name"]: n for n in nodes}
        to_delete: list[Obj] = []
        not_run_delete: list[Obj] = []
        allowed: list[str] = []
        candidate_nodes: list[str] = []
        surged = available_count = 0
        for name in sorted(mapping):
            new, old, ok = self._split(ds, mapping[name], hash_)
            if not ok:
                surged += 1
                continue
            if old is not None:
                available_count += dn.available(old, min_ready, now)
            elif new is not None:
                available_count += dn.available(new, min_ready, now)
            if old is None:
                continue
            node = by_name.get(name)
            runs = node is not None and dn.should_run(node, ds)[0]
            if new is None:
                if not dn.available(old, min_ready, now):
                    if not runs:
                        to_delete.append(old)
                    else:
                        allowed.append(name)
                elif not runs:
                    not_run_delete.append(old)
                elif surged < max_surge:
                    candidate_nodes.append(name)
            elif not dn.available(new, min_ready, now):
                surged += 1
            else:
                to_delete.append(old)
        # Only drop pods from nodes that stopped qualifying once enough are available.
        deletable = max(0, min(available_count - desired, len(not_run_delete)))
        to_delete.extend(not_run_delete[:deletable])
        room = max(0, min(max_surge - surged, len(candidate_nodes)))
        await self._sync_nodes(ds, to_delete, allowed + candidate_nodes[:room], hash_)

    # ---- history -------------------------------------------------------------------

    async def _construct_history(self, ds: Obj) -> tuple[Obj, list[Obj]]:
        selector = format_label_selector((ds.get("spec") or {}).get("selector"))
        revisions = [r for r in self.client.list(CONTROLLER_REVISION, ds["metadata"]["namespace"],
                                                 label_selector=selector)
                     if is_controlled_by(r, ds)]
        patch = template_patch(ds)
        current = [r for r in revisions if r.get("data") == patch]
        old = sort_revisions(r for r in revisions if r.get("data") != patch)
        number = next_revision(old)
        if not current:
            return await self._snapshot(ds, number), old
        *dups, cur = sort_revisions(current)
        for dup in dups:
            await self.revisions.delete(dup)
        if (cur["metadata"].get("labels") or {}).get(POD_REVISION_LABEL) is None:
            cur["metadata"].setdefault("labels", {})[POD_REVISION_LABEL] = cur["metadata"]["name"]
            cur = await self.client.update(CONTROLLER_REVISION, cur)
        if int(cur.get("revision") or 0) < number:
            cur = await self.revisions.renumber(cur, number)
        return cur, old

    async def _snapshot(self, ds: Obj, number: int) -> Obj:
        collision = int((ds.get("status") or {}).get("collisionCount") or 0)
        hash_ = template_hash((ds.get("spec") or {}).get("template") or {}, collision)
        labels = dict(((((ds.get("spec") or {}).get("template") or {}).get("metadata") or {})
                       .get("labels")) or {})
        labels[POD_REVISION_LABEL] = hash_
        body = new_revision(ds, labels, template_patch(ds), number,
                            name=f"{ds['metadata']['name']}-{hash_}")
        ns = ds["metadata"]["namespace"]
        try:
            return await self.client.create(CONTROLLER_REVISION, body, ns)
        except errors.AlreadyExists:
            existing = self.client.get_or_none(CONTROLLER_REVISION, ns, body["metadata"]["name"])
            if existing is not None and existing.get("data") == body["data"]:
                return existing
            # A hash collision with a different template: bump collisionCount and retry.
            fresh = self.client.get(DS, ns, ds["metadata"]["name"])
            status = fresh.setdefault("status", {})
            status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
            await self.client.update_status(DS, fresh)
            raise

    async def _cleanup_history(self, ds: Obj, old: list[Obj],
                               node_pods: dict[str, list[Obj]]) -> None:
        live = {(p["metadata"].get("labels") or {}).get(POD_REVISION_LABEL)
                for pods in node_pods.values() for p in pods}
        limit = int((ds.get("spec") or {}).get("revisionHistoryLimit", 10) or 0)
        excess = len(old) - limit
        for rev in old:
            if excess <= 0:
                break
            if (rev["metadata"].get("labels") or {}).get(POD_REVISION_LABEL) in live:
                continue
            await self.revisions.delete(rev)
            excess -= 1

    # ---- status --------------------------------------------------------------------

    async def _write_status(self, ds: Obj, nodes: list[Obj],
                            node_pods: dict[str, list[Obj]], hash_: str) -> None:
        now = self.ctx.now()
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        generation = dn.template_generation(ds)
        desired = current = misscheduled = ready = available = updated = 0
        for node in nodes:
            run, _ = dn.should_run(node, ds)
            pods = node_pods.get(node["metadata"]["name"]) or []
            if not run:
                misscheduled += bool(pods)
                continue
            desired += 1
            if not pods:
                continue
            current += 1
            pod = dn.oldest_first(pods)[0]
            if _ready(pod):
                ready += 1
                available += dn.available(pod, min_ready, now)
            updated += dn.is_updated(pod, hash_, generation)
        computed: Obj = {
            "currentNumberScheduled": current, "numberMisscheduled": misscheduled,
            "desiredNumberScheduled": desired, "numberReady": ready,
            "observedGeneration": ds["metadata"].get("generation", 1),
            "updatedNumberScheduled": updated, "numberAvailable": available,
            "numberUnavailable": desired - available}
        status = copy_obj(ds.get("status") or {})
        status.update(computed)
        # Go's omitempty on these four: zero is absent, as on a cluster.
        for fld in ("updatedNumberScheduled", "numberAvailable", "numberUnavailable"):
            if not status.get(fld):
                status.pop(fld, None)
        if min_ready > 0 and ready != available:
            self.enqueue_after(key_of(ds), float(min_ready))
        if status == (ds.get("status") or {}):
            return
        body = copy_obj(ds)
        body["status"] = status
        try:
            await self.client.update_status(DS, body)
        except errors.NotFound:
            pass


def _node_placement(node: Obj) -> tuple[Any, ...]:
    meta = node.get("metadata") or {}
    return (meta.get("labels"), node.get("spec"), meta.get("deletionTimestamp"))


def _ready(pod: Obj) -> bool:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return bool(c.get("status") == "True")
    return False
