"""PersistentVolume binding, provisioning and reclaiming (kube-controller-manager's
persistentvolume-binder), the default StorageClass, and its admission plugin.

One queue serves both kinds: keys are "pvc:<ns>/<name>" and "pv:<name>". The claim
sync binds (volume first: claimRef + bound-by-controller; then the claim: volumeName
+ bind-completed; then both statuses, each write with the resourceVersion it read),
provisions a hostPath directory when nothing matches and the claim's class is
netd's, and marks claims Lost when their volume disappears. The volume sync keeps
phases (Available / Bound / Released / Failed) and reclaims released volumes:
Retain keeps them Released, Delete removes the PV (and the directory when netd
provisioned it), Recycle scrubs the directory and makes the volume Available.

Objects this controller wrote are remembered until the informer catches up, so the
next sync does not act on (and fail with a Conflict over) a stale cached copy.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from netd.api import errors
from netd.api.kinds import ResourceType, resource
from netd.client.controller import Controller
from netd.client.informer import key_of
from netd.controllers.events import NORMAL, WARNING
from netd.controllers.manager import ControllerContext
from netd.controllers.volumebinding import (
    ANN_BETA_CLASS, ANN_BETA_STORAGE_PROVISIONER, ANN_BIND_COMPLETED, ANN_BOUND_BY_CONTROLLER,
    ANN_DEFAULT_CLASS, ANN_PROVISIONED_BY, ANN_SELECTED_NODE, ANN_STORAGE_PROVISIONER,
    DEFAULT_CLASS, PROVISIONER, claim_class, default_class, find_best_match,
    is_bound_to_claim, provisioned_dir, volume_dir, volume_mismatch)
from netd.registry.admission import PluginBase, Undo
from netd.registry.objectapi import ObjectAPI, timestamp
from netd.store.base import Store

log = logging.getLogger("netd.controllers.volumes")

Obj = dict[str, Any]
COMPONENT = "persistentvolume-controller"

__all__ = ["PersistentVolumeBinder", "DefaultStorageClass", "ensure_default_storage_class",
           "volume_dir", "PROVISIONER", "DEFAULT_CLASS"]


PV = resource("", "persistentvolumes")
PVC = resource("", "persistentvolumeclaims")
SC = resource("storage.k8s.io", "storageclasses")

MSG_NO_CLASS = "no persistent volumes available for this claim and no storage class is set"
MSG_WAIT_CONSUMER = "waiting for first consumer to be created before binding"


def _rv(obj: Obj | None) -> int:
    try:
        return int(((obj or {}).get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


class PersistentVolumeBinder(Controller):
    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__("persistentvolume-binder", workers=1)
        self.ctx = ctx
        self.pvs = self.watch(ctx.factory.informer(PV), keys_for=self._pv_keys)
        self.pvcs = self.watch(ctx.factory.informer(PVC), keys_for=self._pvc_keys)
        self.classes = self.watch(ctx.factory.informer(SC), keys_for=self._class_keys)
        self._written: dict[str, Obj] = {}

    # ---- keys ---------------------------------------------------------------------------

    def _pv_keys(self, pv: Obj) -> list[str]:
        keys = ["pv:" + pv["metadata"]["name"]]
        ref = (pv.get("spec") or {}).get("claimRef")
        if ref and ref.get("name"):
            keys.append(f"pvc:{ref.get('namespace', '')}/{ref['name']}")
        elif (pv.get("status") or {}).get("phase") == "Available":
            keys.extend(self._pending_claims())   # a volume freed up: retry waiting claims
        return keys

    def _pvc_keys(self, pvc: Obj) -> list[str]:
        keys = ["pvc:" + key_of(pvc)]
        volume = (pvc.get("spec") or {}).get("volumeName")
        if volume:
            keys.append("pv:" + volume)
        return keys

    def _class_keys(self, sc: Obj) -> list[str]:
        return self._pending_claims()

    def _pending_claims(self) -> list[str]:
        return ["pvc:" + key_of(c) for c in self.pvcs.list()
                if not (c.get("spec") or {}).get("volumeName")]

    async def reconcile(self, key: str) -> None:
        kind, _, name = key.partition(":")
        if kind == "pvc":
            await self.sync_claim(name)
        elif kind == "pv":
            await self.sync_volume(name)

    # ---- freshest view ------------------------------------------------------------------

    def _fresh(self, tag: str, cached: Obj | None) -> Obj | None:
        written = self._written.get(tag)
        if written is None:
            return cached
        if cached is None or _rv(cached) >= _rv(written):
            self._written.pop(tag, None)
            return cached
        return written

    def _pv(self, name: str) -> Obj | None:
        return self._fresh("pv:" + name, self.pvs.get(name))

    def _pvc(self, key: str) -> Obj | None:
        return self._fresh("pvc:" + key, self.pvcs.get(key))

    def _volumes(self) -> list[Obj]:
        out = []
        for pv in self.pvs.list():
            fresh = self._pv(pv["metadata"]["name"])
            if fresh is not None:
                out.append(fresh)
        return out

    def _remember(self, tag: str, obj: Obj) -> Obj:
        self._written[tag] = obj
        return obj

    async def _write_pv(self, pv: Obj, status: bool = False) -> Obj:
        client = self.ctx.client
        out = await (client.update_status(PV, pv) if status else client.update(PV, pv))
        return self._remember("pv:" + out["metadata"]["name"], out)

    async def _write_pvc(self, pvc: Obj, status: bool = False) -> Obj:
        client = self.ctx.client
        out = await (client.update_status(PVC, pvc) if status else client.update(PVC, pvc))
        return self._remember("pvc:" + key_of(out), out)

    def _event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        self.ctx.recorder.record(obj, type_, reason, message, component=COMPONENT)

    # ---- claims -------------------------------------------------------------------------

    async def sync_claim(self, key: str) -> None:
        claim = self._pvc(key)
        if claim is None or claim["metadata"].get("deletionTimestamp"):
            return
        annotations = claim["metadata"].get("annotations") or {}
        if annotations.get(ANN_BIND_COMPLETED):
            await self._sync_bound_claim(claim)
        else:
            await self._sync_unbound_claim(claim)

    async def _sync_unbound_claim(self, claim: Obj) -> None:
        volume_name = (claim.get("spec") or {}).get("volumeName") or ""
        if not volume_name:
            volume = find_best_match(claim, self._volumes())
            if volume is not None:
                await self._bind(volume, claim)
                return
            sc_name = claim_class(claim)
            sc = self.classes.get(sc_name) if sc_name else None
            annotations = claim["metadata"].get("annotations") or {}
            if sc is not None and sc.get("volumeBindingMode") == "WaitForFirstConsumer" \
                    and not annotations.get(ANN_SELECTED_NODE):
                self._event(claim, NORMAL, "WaitForFirstConsumer", MSG_WAIT_CONSUMER)
            elif not sc_name:
                self._event(claim, NORMAL, "FailedBinding", MSG_NO_CLASS)
            else:
                claim = await self._provision(claim, sc_name, sc)
            await self._claim_phase(claim, "Pending")
            return
        volume = self._pv(volume_name)
        if volume is None:
            await self._claim_phase(claim, "Pending")   # waits for the named volume
            return
        ref = (volume.get("spec") or {}).get("claimRef")
        if not ref:
            why = volume_mismatch(volume, claim)
            if why:
                self._event(claim, WARNING, "VolumeMismatch",
                            f'Cannot bind to requested volume "{volume_name}": {why}')
                await self._claim_phase(claim, "Pending")
                return
            await self._bind(volume, claim)
        elif is_bound_to_claim(volume, claim):
            await self._bind(volume, claim)
        else:
            await self._claim_phase(claim, "Pending")   # the volume serves another claim

    async def _sync_bound_claim(self, claim: Obj) -> None:
        volume_name = (claim.get("spec") or {}).get("volumeName") or ""
        if not volume_name:
            await self._claim_lost(claim, "ClaimLost", "Bound claim has lost reference to "
                                   "PersistentVolume. Data on the volume is lost!")
            return
        volume = self._pv(volume_name)
        if volume is None:
            await self._claim_lost(claim, "ClaimLost", "Bound claim has lost its "
                                   "PersistentVolume. Data on the volume is lost!")
            return
        ref = (volume.get("spec") or {}).get("claimRef")
        if not ref or ref.get("uid") == claim["metadata"].get("uid"):
            await self._bind(volume, claim)
        else:
            await self._claim_lost(claim, "ClaimMisbound", "Two claims are bound to the same "
                                   "volume, this one is bound incorrectly")

    async def _claim_lost(self, claim: Obj, reason: str, message: str) -> None:
        if (claim.get("status") or {}).get("phase") != "Lost":
            self._event(claim, WARNING, reason, message)
        await self._claim_phase(claim, "Lost")

    async def _claim_phase(self, claim: Obj, phase: str) -> Obj:
        status = claim.get("status") or {}
        if status.get("phase") == phase:
            return claim
        new_status = dict(status, phase=phase)
        if phase != "Bound":
            new_status.pop("capacity", None)
            new_status.pop("accessModes", None)
        return await self._write_pvc(dict(claim, status=new_status), status=True)

    async def _bind(self, volume: Obj, claim: Obj) -> None:
        """bindVolumeToClaim, then bindClaimToVolume, then both statuses."""
        cmeta = claim["metadata"]
        name = volume["metadata"]["name"]
        ref = (volume.get("spec") or {}).get("claimRef") or {}
        wanted_ref = {"kind": "PersistentVolumeClaim", "namespace": cmeta["namespace"],
                      "name": cmeta["name"], "uid": cmeta["uid"], "apiVersion": "v1",
                      "resourceVersion": cmeta.get("resourceVersion", "")}
        if {k: ref.get(k) for k in ("namespace", "name", "uid")} != \
                {k: wanted_ref[k] for k in ("namespace", "name", "uid")}:
            annotations = dict(volume["metadata"].get("annotations") or {})
            if not is_bound_to_claim(volume, claim):
                annotations[ANN_BOUND_BY_CONTROLLER] = "yes"
            volume = dict(volume, metadata=dict(volume["metadata"], annotations=annotations),
                          spec=dict(volume.get("spec") or {}, claimRef=wanted_ref))
            volume = await self._write_pv(volume)
        volume = await self._volume_phase(volume, "Bound")
        cspec = claim.get("spec") or {}
        annotations = dict(cmeta.get("annotations") or {})
        if cspec.get("volumeName") != name or annotations.get(ANN_BIND_COMPLETED) != "yes":
            if cspec.get("volumeName") != name:
                annotations[ANN_BOUND_BY_CONTROLLER] = "yes"
            annotations[ANN_BIND_COMPLETED] = "yes"
            claim = dict(claim, metadata=dict(cmeta, annotations=annotations),
                         spec=dict(cspec, volumeName=name))
            claim = await self._write_pvc(claim)
        vspec = volume.get("spec") or {}
        status = claim.get("status") or {}
        new_status = dict(status, phase="Bound",
                          accessModes=list(vspec.get("accessModes") or []),
                          capacity=dict(vspec.get("capacity") or {}))
        if new_status != status:
            await self._write_pvc(dict(claim, status=new_status), status=True)
            log.info("bound claim %s to volume %s", key_of(claim), name)

    # ---- provisioning -------------------------------------------------------------------

    async def _provision(self, claim: Obj, sc_name: str, sc: Obj | None) -> Obj:
        if sc is None:
            self._event(claim, WARNING, "ProvisioningFailed",
                        f'storageclass.storage.k8s.io "{sc_name}" not found')
            return claim
        provisioner = str(sc.get("provisioner") or "")
        if provisioner != PROVISIONER:
            if provisioner == "kubernetes.io/no-provisioner":
                self._event(claim, WARNING, "ProvisioningFailed",
                            "no volume plugin matched name: kubernetes.io/no-provisioner")
            else:
                self._event(claim, NORMAL, "ExternalProvisioning",
                            f"Waiting for a volume to be created either by the external "
                            f"provisioner '{provisioner}' or manually by the system "
                            "administrator. If volume creation is delayed, please verify that "
                            "the provisioner is running and correctly registered.")
            return claim
        cmeta = claim["metadata"]
        spec = claim.get("spec") or {}
        if spec.get("selector") is not None:
            self._event(claim, WARNING, "ProvisioningFailed",
                        f'Failed to provision volume with StorageClass "{sc_name}": '
                        "claim.Spec.Selector is not supported for dynamic provisioning")
            return claim
        annotations = cmeta.get("annotations") or {}
        if annotations.get(ANN_STORAGE_PROVISIONER) != PROVISIONER:
            claim = await self._write_pvc(dict(claim, metadata=dict(cmeta, annotations=dict(
                annotations, **{ANN_STORAGE_PROVISIONER: PROVISIONER,
                                ANN_BETA_STORAGE_PROVISIONER: PROVISIONER}))))
            cmeta = claim["metadata"]
        pv_name = f"pvc-{cmeta['uid']}"
        if self._pv(pv_name) is not None or \
                self.ctx.client.get_or_none(PV, "", pv_name) is not None:
            return claim   # provisioned already; its event brings the claim back
        path = provisioned_dir(self.ctx.config, pv_name)
        path.mkdir(parents=True, exist_ok=True)
        # Containers run as any user: the directory is world-writable, as
        # rancher's local-path provisioner (kind's default class) makes it.
        path.chmod(0o777)
        pv_spec: Obj = {
            "accessModes": list(spec.get("accessModes") or []),
            "capacity": {"storage": ((spec.get("resources") or {}).get("requests") or {})
                         .get("storage", "0")},
            "claimRef": {"kind": "PersistentVolumeClaim", "namespace": cmeta["namespace"],
                         "name": cmeta["name"], "uid": cmeta["uid"], "apiVersion": "v1",
                         "resourceVersion": cmeta.get("resourceVersion", "")},
            "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy") or "Delete",
            "storageClassName": sc_name,
            "volumeMode": spec.get("volumeMode") or "Filesystem",
            "hostPath": {"path": str(path), "type": ""}}
        if sc.get("mountOptions"):
            pv_spec["mountOptions"] = list(sc["mountOptions"])
        body = {"apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": pv_name, "annotations": {
                    ANN_PROVISIONED_BY: PROVISIONER, ANN_BOUND_BY_CONTROLLER: "yes"}},
                "spec": pv_spec}
        try:
            created = await self.ctx.client.create(PV, body)
        except errors.AlreadyExists:
            return claim
        self._remember("pv:" + pv_name, created)
        log.info("provisioned volume %s for claim %s at %s", pv_name, key_of(claim), path)
        self._event(claim, NORMAL, "ProvisioningSucceeded",
                    f"Successfully provisioned volume {pv_name} using {PROVISIONER}")
        return claim

    # ---- volumes ------------------------------------------------------------------------

    async def sync_volume(self, name: str) -> None:
        volume = self._pv(name)
        if volume is None or volume["metadata"].get("deletionTimestamp"):
            return
        ref = (volume.get("spec") or {}).get("claimRef")
        if not ref:
            await self._volume_phase(volume, "Available")
            return
        claim_key = f"{ref.get('namespace', '')}/{ref.get('name', '')}"
        if not ref.get("uid"):
            # Pre-bound by the user to a claim name: wait for that claim.
            await self._volume_phase(volume, "Available")
            self.enqueue("pvc:" + claim_key)
            return
        claim = self._pvc(claim_key)
        if claim is not None and claim["metadata"].get("uid") != ref.get("uid"):
            claim = None   # deleted and created again: not the claim this volume served
        if claim is None:
            phase = (volume.get("status") or {}).get("phase")
            if phase not in ("Released", "Failed"):
                volume = await self._volume_phase(volume, "Released")
                await self._reclaim(volume)
            return
        bound_to = (claim.get("spec") or {}).get("volumeName") or ""
        if not bound_to:
            self.enqueue("pvc:" + claim_key)   # the claim sync finishes the binding
        elif bound_to == name:
            await self._volume_phase(volume, "Bound")
        else:
            # The claim went to another volume: free this one (keep a user's pre-binding).
            spec = dict(volume.get("spec") or {})
            annotations = volume["metadata"].get("annotations") or {}
            if annotations.get(ANN_BOUND_BY_CONTROLLER):
                spec.pop("claimRef", None)
            else:
                spec["claimRef"] = {k: v for k, v in ref.items()
                                    if k not in ("uid", "resourceVersion")}
            volume = await self._write_pv(dict(volume, spec=spec))
            await self._volume_phase(volume, "Available")

    async def _volume_phase(self, volume: Obj, phase: str, message: str = "") -> Obj:
        status = volume.get("status") or {}
        if status.get("phase") == phase and (status.get("message") or "") == message:
            return volume
        new_status = dict(status, phase=phase)
        if status.get("phase") != phase:
            new_status["lastPhaseTransitionTime"] = timestamp(self.ctx.now())
        if message:
            new_status["message"] = message
        else:
            new_status.pop("message", None)
        return await self._write_pv(dict(volume, status=new_status), status=True)

    async def _reclaim(self, volume: Obj) -> None:
        name = volume["metadata"]["name"]
        policy = (volume.get("spec") or {}).get("persistentVolumeReclaimPolicy") or "Retain"
        if policy == "Retain":
            log.info("volume %s released; reclaim policy Retain keeps it", name)
            return
        if policy == "Recycle":
            _scrub(volume_dir(self.ctx.config, volume))
            spec = dict(volume.get("spec") or {})
            spec.pop("claimRef", None)
            volume = await self._write_pv(dict(volume, spec=spec))
            await self._volume_phase(volume, "Available")
            self._event(volume, NORMAL, "VolumeRecycled", f'Volume "{name}" recycled')
            return
        annotations = volume["metadata"].get("annotations") or {}
        if annotations.get(ANN_PROVISIONED_BY) != PROVISIONER:
            message = (f'error getting deleter volume plugin for volume "{name}": no deletable '
                       "volume plugin matched")
            await self._volume_phase(volume, "Failed", message)
            self._event(volume, WARNING, "VolumeFailedDelete", message)
            return
        path = volume_dir(self.ctx.config, volume)
        if path.parent == provisioned_dir(self.ctx.config, "x").parent:
            shutil.rmtree(path, ignore_errors=True)
        try:
            await self.ctx.client.delete(PV, "", name, uid=volume["metadata"].get("uid"))
        except errors.NotFound:
            pass
        self._written.pop("pv:" + name, None)
        log.info("deleted volume %s (reclaim policy Delete)", name)


def _scrub(path: Path) -> None:
    """The recycler's `rm -rf <volume>/*`, keeping the directory itself."""
    if not path.is_dir():
        return
    for child in path.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


# ---- the default StorageClass and its admission plugin -----------------------------------

async def ensure_default_storage_class(api: ObjectAPI) -> None:
    """Create StorageClass `standard` (default, netd.io/hostpath, Immediate) unless a
    class of that name exists. Called once at start."""
    if api.store.get(SC.group_resource, "", DEFAULT_CLASS) is not None:
        return
    body = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": DEFAULT_CLASS, "annotations": {ANN_DEFAULT_CLASS: "true"}},
            "provisioner": PROVISIONER, "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate"}
    try:
        await api.create(SC, "", body)
        log.info("created default StorageClass %s", DEFAULT_CLASS)
    except errors.AlreadyExists:
        pass


class DefaultStorageClass(PluginBase):
    """Admission: a claim created without storageClassName gets the default class
    (an explicit "" asks for no class and is left alone), as kube-apiserver's
    DefaultStorageClass plugin does."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def on_create(self, rt: ResourceType, obj: dict[str, Any],
                        dry_run: bool) -> Undo | None:
        if rt.kind != "PersistentVolumeClaim":
            return None
        spec = obj.setdefault("spec", {})
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if spec.get("storageClassName") is not None or ANN_BETA_CLASS in annotations:
            return None
        items, _ = self._store.list(SC.group_resource)
        chosen = default_class(item.obj for item in items)
        if chosen is not None:
            spec["storageClassName"] = chosen["metadata"]["name"]
        return None

