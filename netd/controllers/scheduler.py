"""The scheduler: binds pending pods to nodes, as kube-scheduler's default profile does.

One pod at a time (one worker), like the scheduling cycle: filter every node
(netd.controllers.predicates, in kube-scheduler's plugin order), score the feasible
ones, bind through the pods/binding semantics (netd.registry.binding), and *assume*
the pod on its node at once so the next pod sees the capacity it took even before the
informer delivers the binding (the scheduler cache's AssumePod).

Scoring is lexicographic rather than kube-scheduler's weighted sum, because it is
easier to predict and gives the same placements in the cases that matter: preferred
node affinity, then fewest intolerable PreferNoSchedule taints, then fewest pods of the
same controller (spreading replicas), then least requested, then the node name (a
deterministic tie-break where kube-scheduler picks at random).

A pod that fits nowhere keeps phase Pending with condition PodScheduled=False reason
Unschedulable and the FitError text, plus a FailedScheduling event; it is retried when
a node appears or changes in a way that matters, when a pod leaves a node, when a
claim it waits for changes, and every RETRY_UNSCHEDULABLE seconds regardless.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from netd.api import errors
from netd.api.kinds import resource
from netd.client.informer import key_of, split_key
from netd.client.controller import Controller
from netd.controllers import predicates as pr
from netd.controllers.events import NORMAL, WARNING
from netd.controllers.manager import ControllerContext
from netd.controllers.podutil import controller_ref
from netd.registry.binding import bind
from netd.registry.objectapi import MERGE_PATCH, timestamp

log = logging.getLogger("netd.controllers.scheduler")

Obj = dict[str, Any]


POD = resource("", "pods")
NODE = resource("", "nodes")
PVC = resource("", "persistentvolumeclaims")
SC = resource("storage.k8s.io", "storageclasses")

SCHEDULER_NAME = "default-scheduler"
RETRY_UNSCHEDULABLE = 30.0
ANN_SELECTED_NODE = "volume.kubernetes.io/selected-node"
NO_NODES = "no nodes available to schedule pods"
UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"
NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"


@dataclass(frozen=True)
class _Share:
    """What one pod takes from its node."""
    uid: str
    node: str
    requests: tuple[tuple[str, int], ...]
    score_cpu: int
    score_memory: int
    owner: str
    ports: tuple[tuple[str, str, int], ...]
    assumed: bool = field(default=False, compare=False)


def _share(pod: Obj, node: str, assumed: bool = False) -> _Share:
    ref = controller_ref(pod)
    cpu, mem = pr.score_requests(pod)
    return _Share(uid=pod["metadata"].get("uid", ""), node=node,
                  requests=tuple(sorted(pr.pod_requests(pod).items())), score_cpu=cpu,
                  score_memory=mem, owner=(ref or {}).get("uid", ""),
                  ports=tuple(pr.host_ports(pod)), assumed=assumed)


def _terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def _schedulable_fields(node: Obj) -> tuple[Any, ...]:
    """What a node change must touch to make a pending pod fit (labels, taints,
    unschedulable, allocatable, readiness) — heartbeats alone do not requeue."""
    return ((node.get("metadata") or {}).get("labels"),
            (node.get("spec") or {}).get("taints"),
            (node.get("spec") or {}).get("unschedulable"),
            (node.get("status") or {}).get("allocatable"),
            pr.node_ready_status(node))


def fit_error_message(total: int, reasons: list[list[str]], prefilter: str = "",
                      preemption_never: bool = False) -> str:
    """FitError.Error() plus the PostFilter (preemption) diagnosis, e.g.
    `0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node
    affinity/selector. preemption: 0/3 nodes are available: 1 No preemption victims
    found for incoming pod, 2 Preemption is not helpful for scheduling.`"""
    if total == 0:
        return NO_NODES
    msg = f"0/{total} nodes are available:"
    post: Counter[str] = Counter()
    if prefilter:
        msg += f" {prefilter}."
        post[NOT_HELPFUL] = total
    else:
        hist: Counter[str] = Counter()
        for node_reasons in reasons:
            hist.update(node_reasons)
            resolvable = bool(node_reasons) and all(
                r == pr.ERR_TOO_MANY_PODS or r.startswith("Insufficient ") or r == pr.ERR_PORTS
                for r in node_reasons)
            post[NO_VICTIMS if resolvable else NOT_HELPFUL] += 1
        if hist:
            msg += " " + ", ".join(sorted(f"{n} {r}" for r, n in hist.items())) + "."
    if preemption_never:
        return msg + " preemption: not eligible due to preemptionPolicy=Never."
    return msg + f" preemption: 0/{total} nodes are available: " + \
        ", ".join(sorted(f"{n} {r}" for r, n in post.items())) + "."


class Scheduler(Controller):
    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__("scheduler", workers=1)
        self.ctx = ctx
        factory = ctx.factory
        self.pods = self.watch(factory.informer(POD), keys_for=lambda o: [])
        self.nodes = self.watch(factory.informer(NODE), keys_for=lambda o: [])
        self.pvcs = self.watch(factory.informer(PVC), keys_for=lambda o: [])
        self.classes = self.watch(factory.informer(SC), keys_for=lambda o: [])
        self.usage: dict[str, pr.NodeUsage] = {}
        self._shares: dict[str, _Share] = {}
        self.unschedulable: set[str] = set()
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)
        self.nodes.add_handler(lambda n: self._retry_unschedulable(), self._node_updated, None)
        self.pvcs.add_handler(self._pvc_changed, lambda o, n: self._pvc_changed(n),
                              self._pvc_changed)

    # ---- event handlers (cheap: accounting and enqueueing only) ------------------------

    def _wants(self, pod: Obj) -> bool:
        spec = pod.get("spec") or {}
        return not spec.get("nodeName") and \
            (spec.get("schedulerName") or SCHEDULER_NAME) == SCHEDULER_NAME and \
            not pod["metadata"].get("deletionTimestamp") and not _terminal(pod)

    def _pod_added(self, pod: Obj) -> None:
        self._account(pod)
        if self._wants(pod):
            self.enqueue(key_of(pod))

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        self._account(new)
        # Our own status writes (the Unschedulable condition) must not loop back.
        if self._wants(new) and ({k: v for k, v in old.items() if k not in ("status",
                                                                           "metadata")}
                                 != {k: v for k, v in new.items() if k not in ("status",
                                                                               "metadata")}
                                 or old["metadata"].get("labels") != new["metadata"].get("labels")
                                 or not self._wants(old)):
            self.enqueue(key_of(new))

    def _pod_deleted(self, pod: Obj) -> None:
        key = key_of(pod)
        self.unschedulable.discard(key)
        if self._unshare(key):
            self._retry_unschedulable()

    def _node_updated(self, old: Obj, new: Obj) -> None:
        if _schedulable_fields(old) != _schedulable_fields(new):
            self._retry_unschedulable()

    def _pvc_changed(self, pvc: Obj) -> None:
        ns = pvc["metadata"].get("namespace")
        for key in list(self.unschedulable):
            if split_key(key)[0] == ns:
                self.enqueue(key)

    def _retry_unschedulable(self) -> None:
        for key in list(self.unschedulable):
            self.enqueue(key)

    # ---- node accounting (the scheduler cache) ------------------------------------------

    def _account(self, pod: Obj) -> None:
        key = key_of(pod)
        node = (pod.get("spec") or {}).get("nodeName")
        current = self._shares.get(key)
        if not node or _terminal(pod):
            if current is None:
                return
            if current.assumed and not _terminal(pod) and \
                    current.uid == pod["metadata"].get("uid"):
                return  # bound by us; the informer has not caught up yet
            self._unshare(key)
            self._retry_unschedulable()
            return
        share = _share(pod, node)
        if current == share:
            if current.assumed:
                self._shares[key] = share   # confirmed
            return
        if current is not None:
            self._unshare(key)
        self._add_share(key, share)

    def _add_share(self, key: str, share: _Share) -> None:
        self._shares[key] = share
        u = self.usage.setdefault(share.node, pr.NodeUsage())
        for name, amount in share.requests:
            u.requested[name] = u.requested.get(name, 0) + amount
        u.score_cpu += share.score_cpu
        u.score_memory += share.score_memory
        u.pods += 1
        if share.owner:
            u.owners[share.owner] = u.owners.get(share.owner, 0) + 1
        u.ports.extend(share.ports)

    def _unshare(self, key: str) -> bool:
        share = self._shares.pop(key, None)
        if share is None:
            return False
        u = self.usage.get(share.node)
        if u is None:
            return True
        for name, amount in share.requests:
            u.requested[name] = u.requested.get(name, 0) - amount
        u.score_cpu -= share.score_cpu
        u.score_memory -= share.score_memory
        u.pods -= 1
        if share.owner:
            left = u.owners.get(share.owner, 0) - 1
            if left > 0:
                u.owners[share.owner] = left
            else:
                u.owners.pop(share.owner, None)
        for port in share.ports:
            if port in u.ports:
                u.ports.remove(port)
        return True

    # ---- the scheduling cycle -----------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        pod = self.pods.get(key)
        if pod is None or not self._wants(pod):
            self.unschedulable.discard(key)
            return
        share = self._shares.get(key)
        if share is not None and share.assumed and share.uid == pod["metadata"].get("uid"):
            return  # already bound; waiting for the informer
        spec = pod.get("spec") or {}
        if spec.get("schedulingGates"):
            await self._set_unscheduled(pod, "SchedulingGated",
                                        "Scheduling is blocked due to non-empty scheduling "
                                        "gates", event=False)
            return
        nodes = sorted(self.nodes.list(), key=lambda n: n["metadata"]["name"])
        prefilter, delayed = self._volume_prefilter(pod)
        never = spec.get("preemptionPolicy") == "Never"
        if not nodes or prefilter:
            await self._fail(pod, fit_error_message(len(nodes), [], prefilter, never))
            return
        requests = pr.pod_requests(pod)
        feasible: list[Obj] = []
        failures: list[list[str]] = []
        for node in nodes:
            usage = self.usage.get(node["metadata"]["name"]) or pr.NodeUsage()
            reasons = pr.fit_reasons(pod, node, usage, requests)
            if reasons:
                failures.append(reasons)
            else:
                feasible.append(node)
        if not feasible:
            await self._fail(pod, fit_error_message(len(nodes), failures, "", never))
            return
        best = min(feasible, key=lambda n: self._rank(pod, n))
        await self._bind(pod, best["metadata"]["name"], delayed)

    def _rank(self, pod: Obj, node: Obj) -> tuple[Any, ...]:
        name = node["metadata"]["name"]
        usage = self.usage.get(name) or pr.NodeUsage()
        ref = controller_ref(pod)
        same_owner = usage.owners.get(ref["uid"], 0) if ref and ref.get("uid") else 0
        cpu, mem = pr.score_requests(pod)
        return (-pr.preferred_affinity_score(pod, node),
                pr.intolerable_prefer_no_schedule(pod, node), same_owner,
                -pr.least_requested_score(node, usage, cpu, mem), name)

    def _volume_prefilter(self, pod: Obj) -> tuple[str, list[Obj]]:
        """VolumeBinding PreFilter: ('' or the rejection, claims waiting for a node)."""
        ns = pod["metadata"].get("namespace", "")
        delayed: list[Obj] = []
        for vol in (pod.get("spec") or {}).get("volumes") or []:
            if vol.get("persistentVolumeClaim"):
                claim = str(vol["persistentVolumeClaim"].get("claimName") or "")
            elif vol.get("ephemeral"):
                claim = f"{pod['metadata']['name']}-{vol.get('name', '')}"
            else:
                continue
            pvc = self.pvcs.get_by_name(ns, claim)
            if pvc is None:
                return f'persistentvolumeclaim "{claim}" not found', []
            if pvc["metadata"].get("deletionTimestamp"):
                return f'persistentvolumeclaim "{claim}" is being deleted', []
            if (pvc.get("spec") or {}).get("volumeName"):
                continue
            sc_name = (pvc.get("spec") or {}).get("storageClassName") or ""
            sc = self.classes.get_by_name("", sc_name) if sc_name else None
            if sc is not None and sc.get("volumeBindingMode") == "WaitForFirstConsumer":
                delayed.append(pvc)
                continue
            return UNBOUND_IMMEDIATE, []
        return "", delayed

    async def _bind(self, pod: Obj, node: str, delayed: list[Obj]) -> None:
        key = key_of(pod)
        meta = pod["metadata"]
        for pvc in delayed:
            # The binder provisions a WaitForFirstConsumer claim once a node is chosen.
            if (pvc["metadata"].get("annotations") or {}).get(ANN_SELECTED_NODE) != node:
                await self.ctx.client.patch(PVC, meta["namespace"], pvc["metadata"]["name"],
                                            {"metadata": {"annotations": {
                                                ANN_SELECTED_NODE: node}}}, MERGE_PATCH)
        self._unshare(key)
        self._add_share(key, _share(pod, node, assumed=True))
        try:
            await bind(self.ctx.api, meta["namespace"], meta["name"], node, uid=meta["uid"])
        except (errors.NotFound, errors.Conflict) as exc:
            # Gone, bound by someone else or being deleted: nothing left to schedule.
            self._unshare(key)
            self.unschedulable.discard(key)
            log.info("scheduler: not binding %s: %s", key, exc.message)
            return
        except BaseException:
            self._unshare(key)
            raise
        self.unschedulable.discard(key)
        log.info("scheduler: bound %s to %s", key, node)
        self.ctx.recorder.record(pod, NORMAL, "Scheduled",
                                 f"Successfully assigned {key} to {node}",
                                 component=SCHEDULER_NAME)

    async def _fail(self, pod: Obj, message: str) -> None:
        key = key_of(pod)
        self.unschedulable.add(key)
        self.enqueue_after(key, RETRY_UNSCHEDULABLE)
        await self._set_unscheduled(pod, "Unschedulable", message, event=True)

    async def _set_unscheduled(self, pod: Obj, reason: str, message: str, *,
                               event: bool) -> None:
        conditions = (pod.get("status") or {}).get("conditions") or []
        current = next((c for c in conditions if c.get("type") == "PodScheduled"), None)
        if event:
            self.ctx.recorder.record(pod, WARNING, "FailedScheduling", message,
                                     component=SCHEDULER_NAME)
        if current is not None and current.get("status") == "False" and \
                current.get("reason") == reason and current.get("message") == message:
            return
        log.info("scheduler: %s unschedulable: %s", key_of(pod), message)
        updated = {k: v for k, v in pod.items()}
        status = dict(pod.get("status") or {})
        since = current.get("lastTransitionTime") if current is not None and \
            current.get("status") == "False" else None
        cond = {"type": "PodScheduled", "status": "False", "lastProbeTime": None,
                "lastTransitionTime": since or timestamp(self.ctx.now()),
                "reason": reason, "message": message}
        status["conditions"] = [c for c in conditions if c.get("type") != "PodScheduled"] + \
            [cond]
        updated["status"] = status
        await self.ctx.client.update_status(POD, updated)
