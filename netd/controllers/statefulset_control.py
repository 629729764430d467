"""The StatefulSet update algorithm (upstream's stateful_set_control.go): one pass of
updateStatefulSet over a snapshot of the set's pods — replicas in ordinal order,
condemned pods from the top, then the rolling update — and the status it leaves.
The writes themselves (pods, claims, events) are the controller's (statefulset.py,
upstream's stateful_pod_control.go)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from netd.controllers import statefulset_pods as sp
from netd.controllers.controllerhistory import apply_revision

if TYPE_CHECKING:
    from netd.controllers.statefulset import StatefulSetController

Obj = dict[str, Any]


def int_or_percent(value: Any, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent."""
    if value is None:
        return 0
    if isinstance(value, str) and value.endswith("%"):
        pct = int(value[:-1])
        scaled = pct * total
        return -(-scaled // 100) if round_up else scaled // 100
    return int(value)


class StatefulSetSync:
    """One pass of updateStatefulSet; `run()` acts, `status_only()` just counts."""

    def __init__(self, ctl: StatefulSetController, sts: Obj, current: Obj, update: Obj,
                 pods: list[Obj]) -> None:
        self.ctl = ctl
        self.sts = sts
        self.current = current
        self.update = update
        self.current_name = current["metadata"]["name"]
        self.update_name = update["metadata"]["name"]
        self.current_set = apply_revision(sts, current)
        self.update_set = apply_revision(sts, update)
        spec = sts.get("spec") or {}
        self.min_ready = int(spec.get("minReadySeconds") or 0)
        self.monotonic = spec.get("podManagementPolicy") != "Parallel"
        self.now = ctl.ctx.now()
        start, count = sp.start_ordinal(sts), max(0, sp.replicas_of(sts))
        self.replicas: list[Obj] = []
        slots: dict[int, Obj] = {}
        self.condemned: list[Obj] = []
        for pod in pods:
            o = sp.ordinal_of(pod)
            if start <= o < start + count:
                slots[o] = pod
            elif o >= 0:
                self.condemned.append(pod)
        for o in range(start, start + count):
            self.replicas.append(slots.get(o) or self._versioned_pod(o))
        self.condemned.sort(key=sp.ordinal_of, reverse=True)
        self.current_delta = 0

    def _versioned_pod(self, ordinal: int) -> Obj:
        """newVersionedStatefulSetPod: below the partition (or, without one, among the
        pods still at the current revision) a recreated pod keeps the current revision."""
        strategy = (self.sts.get("spec") or {}).get("updateStrategy") or {}
        ru = strategy.get("rollingUpdate")
        start = sp.start_ordinal(self.sts)
        if strategy.get("type", "RollingUpdate") == "RollingUpdate":
            current_replicas = int((self.sts.get("status") or {}).get("currentReplicas") or 0)
            if ru is None and ordinal < start + current_replicas:
                return sp.new_pod(self.current_set, ordinal, self.current_name)
        if isinstance(ru, dict) and ordinal < start + int(ru.get("partition") or 0):
            return sp.new_pod(self.current_set, ordinal, self.current_name)
        return sp.new_pod(self.update_set, ordinal, self.update_name)

    def status_only(self) -> Obj:
        counts = sp.replica_status(self.replicas + self.condemned, self.min_ready, self.now,
                                   self.current_name, self.update_name)
        counts["currentReplicas"] = max(0, counts["currentReplicas"] + self.current_delta)
        status: Obj = {"observedGeneration": self.sts["metadata"].get("generation", 1),
                       **counts, "currentRevision": self.current_name,
                       "updateRevision": self.update_name}
        strategy = (self.sts.get("spec") or {}).get("updateStrategy") or {}
        # completeRollingUpdate: once every pod is updated and ready, update is current.
        if strategy.get("type", "RollingUpdate") == "RollingUpdate" and \
                status["updatedReplicas"] == status["replicas"] and \
                status["readyReplicas"] == status["replicas"]:
            status["currentReplicas"] = status["updatedReplicas"]
            status["currentRevision"] = status["updateRevision"]
        return status

    async def run(self) -> Obj:
        if self.sts["metadata"].get("deletionTimestamp"):
            return self.status_only()
        if not await self._replicas():
            return self.status_only()
        for pod in self.condemned:
            if not self.ctl.claims_match_policy(self.sts, pod):
                await self.ctl.update_claims_for_policy(self.sts, pod)
        if not await self._condemned():
            return self.status_only()
        strategy = (self.sts.get("spec") or {}).get("updateStrategy") or {}
        if strategy.get("type") == "OnDelete":
            return self.status_only()
        await self._rolling_update(strategy.get("rollingUpdate") or {})
        return self.status_only()

    async def _replicas(self) -> bool:
        """processReplica for each replica; False when the pass must stop here."""
        blocked = False
        for i, pod in enumerate(self.replicas):
            if await self._process_replica(i, pod):
                if self.monotonic:
                    return False
                blocked = True
        return not blocked

    async def _process_replica(self, i: int, pod: Obj) -> bool:
        ctl, sts = self.ctl, self.sts
        if sp.is_created(pod) and sp.is_finished(pod):
            # A pod that ran to completion (or failed) is replaced under the same name.
            if not sp.is_terminating(pod):
                await ctl.delete_pod(sts, pod)
            return True
        if not sp.is_created(pod):
            if ctl.claim_is_stale(sts, pod):
                return True
            await ctl.create_pod(sts, pod)
            return self.monotonic
        if sp.phase(pod) == "Pending":
            await ctl.create_claims(sts, pod)
        if self.monotonic and (sp.is_terminating(pod) or not sp.is_running_and_ready(pod) or
                               not sp.is_running_and_available(pod, self.min_ready, self.now)):
            return True
        if not ctl.claims_match_policy(self.update_set, pod):
            await ctl.update_claims_for_policy(self.update_set, pod)
        if not (sp.identity_matches(sts, pod) and sp.storage_matches(sts, pod)):
            await ctl.update_pod_identity(self.update_set, pod)
        return False

    def _first_unhealthy(self) -> Obj | None:
        for pod in self.replicas + self.condemned:
            if not sp.is_healthy(pod):
                return pod
        return None

    async def _condemned(self) -> bool:
        """processCondemned, highest ordinal first; with OrderedReady one per pass and
        never past an unhealthy pod other than the first unhealthy one."""
        first_unhealthy = self._first_unhealthy()
        for pod in self.condemned:
            if sp.is_terminating(pod):
                if self.monotonic:
                    return False
                continue
            if self.monotonic and pod is not first_unhealthy and (
                    not sp.is_running_and_ready(pod) or
                    not sp.is_running_and_available(pod, self.min_ready, self.now)):
                return False
            await self.ctl.delete_pod(self.sts, pod)
            if self.monotonic:
                return False
        return True

    async def _rolling_update(self, ru: Obj) -> None:
        partition = int(ru.get("partition") or 0)
        if ru.get("maxUnavailable") is not None:
            await self._rolling_update_max_unavailable(partition, ru["maxUnavailable"])
            return
        for target in range(len(self.replicas) - 1, partition - 1, -1):
            pod = self.replicas[target]
            if not sp.is_created(pod):
                return
            if sp.pod_revision(pod) != self.update_name and not sp.is_terminating(pod):
                await self.ctl.delete_pod(self.sts, pod)
                self.current_delta -= 1
                return
            if not sp.is_healthy(pod):
                return  # wait for the updated pod before touching the next one

    async def _rolling_update_max_unavailable(self, partition: int, value: Any) -> None:
        """updateStatefulSetAfterInvariantEstablished (maxUnavailable, beta upstream)."""
        allowed = max(1, int_or_percent(value, len(self.replicas), False))
        unavailable = sum(1 for p in self.replicas if not sp.is_healthy(p))
        budget = allowed - unavailable
        for target in range(len(self.replicas) - 1, partition - 1, -1):
            if budget <= 0:
                return
            pod = self.replicas[target]
            if sp.is_created(pod) and sp.pod_revision(pod) != self.update_name and \
                    not sp.is_terminating(pod):
                await self.ctl.delete_pod(self.sts, pod)
                self.current_delta -= 1
                budget -= 1

