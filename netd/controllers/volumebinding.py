"""Which PersistentVolume a claim may bind to, and where a volume's data lives. Pure.

The matching rules are pkg/controller/volume/persistentvolume's findMatchingVolume and
checkVolumeSatisfyClaim: a volume pre-bound to the claim (claimRef) wins if it fits;
otherwise the smallest Available, unclaimed volume whose access modes include the
claim's, whose capacity covers the request, whose class equals the claim's ("" matches
only volumes without a class), whose labels match the claim's selector and whose
volumeMode agrees. Ties go to the first name, where Kubernetes takes whichever its
index yields first.
"""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

from netd.api.quantity import parse_quantity
from netd.api.selectors import EVERYTHING, selector_from_dict
from netd.config import Config

Obj = dict[str, Any]

PROVISIONER = "netd.io/hostpath"
DEFAULT_CLASS = "standard"
ANN_DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
ANN_BETA_DEFAULT_CLASS = "storageclass.beta.kubernetes.io/is-default-class"
ANN_BETA_CLASS = "volume.beta.kubernetes.io/storage-class"
ANN_BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
ANN_BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
ANN_PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
ANN_STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
ANN_BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
ANN_SELECTED_NODE = "volume.kubernetes.io/selected-node"


def _size(value: Any) -> Decimal:
    try:
        return parse_quantity(value if value is not None else 0)
    except ValueError:
        return Decimal(0)


def claim_class(claim: Obj) -> str:
    """GetPersistentVolumeClaimClass: the beta annotation wins over the field."""
    ann = (claim.get("metadata") or {}).get("annotations") or {}
    if ANN_BETA_CLASS in ann:
        return str(ann[ANN_BETA_CLASS])
    return str((claim.get("spec") or {}).get("storageClassName") or "")


def volume_class(volume: Obj) -> str:
    ann = (volume.get("metadata") or {}).get("annotations") or {}
    if ANN_BETA_CLASS in ann:
        return str(ann[ANN_BETA_CLASS])
    return str((volume.get("spec") or {}).get("storageClassName") or "")


def claim_request(claim: Obj) -> Decimal:
    return _size((((claim.get("spec") or {}).get("resources") or {}).get("requests") or {})
                 .get("storage"))


def volume_capacity(volume: Obj) -> Decimal:
    return _size(((volume.get("spec") or {}).get("capacity") or {}).get("storage"))


def _modes_ok(volume: Obj, claim: Obj) -> bool:
    have = set((volume.get("spec") or {}).get("accessModes") or [])
    return set((claim.get("spec") or {}).get("accessModes") or []) <= have


def _volume_mode(obj: Obj) -> str:
    return str((obj.get("spec") or {}).get("volumeMode") or "Filesystem")


def is_bound_to_claim(volume: Obj, claim: Obj) -> bool:
    """IsVolumeBoundToClaim: claimRef names the claim (uid empty or equal)."""
    ref = (volume.get("spec") or {}).get("claimRef")
    if not ref:
        return False
    meta = claim.get("metadata") or {}
    if ref.get("name") != meta.get("name") or ref.get("namespace") != meta.get("namespace"):
        return False
    return not ref.get("uid") or ref.get("uid") == meta.get("uid")


def volume_mismatch(volume: Obj, claim: Obj) -> str:
    """checkVolumeSatisfyClaim: why a volume the claim names cannot serve it ('' = ok)."""
    if volume_capacity(volume) < claim_request(claim):
        return "requested PV is too small"
    if volume_class(volume) != claim_class(claim):
        return "storageClassName does not match"
    if _volume_mode(volume) != _volume_mode(claim):
        return "incompatible volumeMode"
    if not _modes_ok(volume, claim):
        return "incompatible accessMode"
    return ""


def find_best_match(claim: Obj, volumes: Iterable[Obj]) -> Obj | None:
    requested = claim_request(claim)
    wanted_class = claim_class(claim)
    sel_spec = (claim.get("spec") or {}).get("selector")
    selector = selector_from_dict(sel_spec) if sel_spec is not None else EVERYTHING
    best: Obj | None = None
    best_size = Decimal(0)
    for volume in sorted(volumes, key=lambda v: v["metadata"]["name"]):
        if volume["metadata"].get("deletionTimestamp") or not _modes_ok(volume, claim):
            continue
        if _volume_mode(volume) != _volume_mode(claim):
            continue
        size = volume_capacity(volume)
        if is_bound_to_claim(volume, claim):
            if size >= requested and volume_class(volume) == wanted_class:
                return volume
            continue
        spec = volume.get("spec") or {}
        if spec.get("claimRef"):
            continue
        # Kubernetes skips volumes not yet Available: binding them now would only
        # race with the sync that makes them so.
        if (volume.get("status") or {}).get("phase") != "Available":
            continue
        if not selector.matches((volume["metadata"].get("labels")) or {}):
            continue
        if volume_class(volume) != wanted_class:
            continue
        if size >= requested and (best is None or size < best_size):
            best, best_size = volume, size
    return best


def default_class(classes: Iterable[Obj]) -> Obj | None:
    """The default StorageClass; with several, the newest (then the first by name),
    as the DefaultStorageClass admission plugin chooses since 1.26."""
    defaults = [c for c in classes
                if ((c.get("metadata") or {}).get("annotations") or {}).get(ANN_DEFAULT_CLASS)
                == "true" or ((c.get("metadata") or {}).get("annotations") or {})
                .get(ANN_BETA_DEFAULT_CLASS) == "true"]
    if not defaults:
        return None
    newest = max(c["metadata"].get("creationTimestamp") or "" for c in defaults)
    return min((c for c in defaults if (c["metadata"].get("creationTimestamp") or "") == newest),
               key=lambda c: c["metadata"]["name"])


def _relative(path: str) -> PurePosixPath:
    """A path made safe to hang under a directory (no root, no '..')."""
    parts = [p for p in PurePosixPath(path).parts if p not in ("/", ".", "..")]
    return PurePosixPath(*parts) if parts else PurePosixPath("_")


def provisioned_dir(config: Config, name: str) -> Path:
    return config.cluster_state_dir / "volumes" / name


def volume_dir(config: Config, pv: Obj) -> Path:
    """Where the data of `pv` lives on this host, so every pod that mounts the volume
    (on any emulated node) sees the same files:
    - nfs: <state>/<cluster>/nfs/<server>/<path> (an NFS export is keyed by both);
    - hostPath: the path itself when the provisioner made it under the cluster's
      volumes directory, else <state>/<cluster>/hostpath/<path> — emulated nodes
      share one host, and netd writes only under its own state directory;
    - local: <state>/<cluster>/local/<path>;
    - anything else (csi, iscsi, ...): <state>/<cluster>/volumes/<pv name>."""
    spec = pv.get("spec") or {}
    root = config.cluster_state_dir
    name = str((pv.get("metadata") or {}).get("name") or "_")
    nfs = spec.get("nfs")
    if isinstance(nfs, dict):
        return root / "nfs" / _relative(str(nfs.get("server") or "_")) / \
            _relative(str(nfs.get("path") or "/"))
    host = spec.get("hostPath")
    if isinstance(host, dict):
        path = Path(str(host.get("path") or "/"))
        volumes = root / "volumes"
        if path.is_absolute() and ".." not in path.parts and volumes in path.parents:
            return path
        return root / "hostpath" / _relative(str(path))
    local = spec.get("local")
    if isinstance(local, dict):
        return root / "local" / _relative(str(local.get("path") or "/"))
    return root / "volumes" / _relative(name)
