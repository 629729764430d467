"""Pod volumes on the host, and each container's bind mounts.

Kubelet keeps a pod's volumes under /var/lib/kubelet/pods/<uid>/volumes/<plugin>/<name>;
netd uses <state>/<cluster>/pods/<uid>/volumes/<plugin>/<name> the same way:
- emptyDir: a directory there (gone with the pod);
- configMap: the keys (or `items`) written as files there, with defaultMode/mode;
- persistentVolumeClaim: the bound PV's directory from the storage controller
  (netd.controllers.volumes.volume_dir), shared by every pod and kept across pods;
- hostPath: the host path itself when it exists (users mount host files and
  directories); a path that does not exist is created under
  <state>/<cluster>/hostpath/<path> instead, so netd never creates directories all
  over the host (the same place the storage controller uses for hostPath PVs).
Unsupported sources (secret, projected, csi, …) get an empty directory, so the
container still starts.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from netd.config import Config
from netd.controllers.volumebinding import volume_dir
from netd.node import handles
from netd.node.containerlog import log_file

Obj = dict[str, Any]
Lookup = Callable[[str, str], Obj | None]     # (namespace, name) -> object or None
Mount = tuple[str, str, bool]                 # (host path, path in container, read-only)


class VolumeError(Exception):
    """The pod cannot start yet (kubelet reports FailedMount and retries)."""


def pod_dir(config: Config, uid: str) -> Path:
    return Path(f"{config.cluster_state_dir}/pods/{uid}")    # one Path, not two joins


def pod_log_dirs(config: Config, pod: Obj) -> list[str]:
    """kubelet's makePodDataDirs: a log directory per container that runs a process,
    made before any container starts. The node agent has them made with the sandbox,
    off the event loop: a directory costs 0.15-1 ms on the target's disk, and the log
    writers then find theirs in place. An emulated image writes no output, so its
    container gets none; the pod's directory itself comes with the first file put in
    it (a log, a volume)."""
    from netd.node.builtin import process_argv
    meta = pod.get("metadata") or {}
    base = pod_dir(config, str(meta.get("uid") or "_"))
    spec = pod.get("spec") or {}
    return [str(log_file(base, str(c["name"]), 0).parent)
            for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])
            if isinstance(c, dict) and c.get("name") and process_argv(c) is not None]


def make_pod_dirs(config: Config, pod: Obj) -> None:
    """What the sandbox job does with pod_log_dirs, for a caller without one."""
    handles.make_dirs(pod_log_dirs(config, pod))


def remove_orphan_pod_dirs(config: Config, known_uids: set[str], older_than: float) -> int:
    """Remove pod directories of uids no pod has any more, last changed before
    `older_than` (a directory a starting pod is filling right now is newer)."""
    removed = 0
    from netd.node.names import state_dir
    for rec in _entries(Path(state_dir(config.cluster_name))):
        # container records of such pods too (they name no process any more)
        try:
            if rec.stem not in known_uids and rec.stat().st_mtime < older_than:
                rec.unlink()
        except FileNotFoundError:
            pass
    for d in _entries(config.cluster_state_dir / "pods"):
        try:
            if d.name in known_uids or d.stat().st_mtime >= older_than:
                continue
        except FileNotFoundError:
            continue
        shutil.rmtree(d, ignore_errors=True)
        removed += 1
    return removed


def _entries(d: Path) -> list[Path]:
    try:
        return list(d.iterdir())
    except FileNotFoundError:
        return []


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-._" else "_" for ch in name) or "_"


def _write_configmap(target: Path, cm: Obj, source: Obj) -> None:
    target.mkdir(parents=True, exist_ok=True)
    data = {**{k: str(v) for k, v in (cm.get("data") or {}).items()}}
    items = source.get("items")
    mode = int(source.get("defaultMode") or 0o644)
    files: list[tuple[str, str, int]] = []
    if items:
        for it in items:
            key = str(it.get("key") or "")
            if key in data:
                files.append((str(it.get("path") or key), data[key], int(it.get("mode") or mode)))
            elif not source.get("optional"):
                raise VolumeError(f'configmap "{cm["metadata"]["name"]}" has no key {key}')
    else:
        files = [(k, v, mode) for k, v in data.items()]
    wanted = set()
    for rel, text, fmode in files:
        parts = [p for p in PurePosixPath(rel).parts if p not in ("/", ".", "..")]
        if not parts:
            continue
        path = target.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".netd-tmp")
        tmp.write_text(text)
        os.chmod(tmp, fmode)
        os.replace(tmp, path)
        wanted.add(path)
    for old in target.rglob("*"):
        if old.is_file() and old not in wanted:
            old.unlink()


def prepare(config: Config, pod: Obj, *, configmaps: Lookup, pvcs: Lookup,
            pvs: Callable[[str], Obj | None]) -> dict[str, Path]:
    """Make every volume of `pod` exist on the host; volume name -> host path."""
    meta = pod.get("metadata") or {}
    ns = meta.get("namespace") or "default"
    base = pod_dir(config, str(meta.get("uid") or "_")) / "volumes"
    out: dict[str, Path] = {}
    for vol in (pod.get("spec") or {}).get("volumes") or []:
        if not isinstance(vol, dict) or not vol.get("name"):
            continue
        name = str(vol["name"])
        if isinstance(vol.get("configMap"), dict):
            src = vol["configMap"]
            cm = configmaps(ns, str(src.get("name") or ""))
            path = base / "kubernetes.io~configmap" / _safe(name)
            if cm is None:
                if not src.get("optional"):
                    raise VolumeError(f'configmap "{src.get("name")}" not found')
                path.mkdir(parents=True, exist_ok=True)
            else:
                _write_configmap(path, cm, src)
        elif isinstance(vol.get("persistentVolumeClaim"), dict):
            claim_name = str(vol["persistentVolumeClaim"].get("claimName") or "")
            claim = pvcs(ns, claim_name)
            if claim is None:
                raise VolumeError(f'persistentvolumeclaim "{claim_name}" not found')
            pv_name = (claim.get("spec") or {}).get("volumeName")
            pv = pvs(str(pv_name)) if pv_name else None
            if pv is None or (claim.get("status") or {}).get("phase") != "Bound":
                raise VolumeError(f'pod has unbound immediate PersistentVolumeClaims '
                                  f'(claim "{claim_name}")')
            path = volume_dir(config, pv)
            path.mkdir(parents=True, exist_ok=True)
        elif isinstance(vol.get("hostPath"), dict):
            host = str(vol["hostPath"].get("path") or "/")
            kind = str(vol["hostPath"].get("type") or "")
            real = Path(host)
            if real.is_absolute() and real.exists():
                path = real
            else:
                rel = [p for p in PurePosixPath(host).parts if p not in ("/", ".", "..")]
                path = config.cluster_state_dir / "hostpath" / Path(*rel) if rel else \
                    config.cluster_state_dir / "hostpath"
                if kind in ("Directory", "File", "Socket", "CharDevice", "BlockDevice") \
                        and not path.exists():
                    raise VolumeError(f"hostPath type check failed: {host} is not a "
                                      f"{kind.lower()}")
                if kind == "FileOrCreate":
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.touch(exist_ok=True)
                else:
                    path.mkdir(parents=True, exist_ok=True)
        else:
            plugin = "kubernetes.io~empty-dir" if "emptyDir" in vol or len(vol) == 1 \
                else "kubernetes.io~other"
            path = base / plugin / _safe(name)
            path.mkdir(parents=True, exist_ok=True)
        out[name] = path
    return out


def container_mounts(container: Obj, volumes: dict[str, Path]) -> list[Mount]:
    mounts: list[Mount] = []
    for m in container.get("volumeMounts") or []:
        if not isinstance(m, dict):
            continue
        src = volumes.get(str(m.get("name") or ""))
        if src is None or not m.get("mountPath"):
            continue
        sub = str(m.get("subPath") or "")
        if sub:
            parts = [p for p in PurePosixPath(sub).parts if p not in ("/", ".", "..")]
            src = src.joinpath(*parts)
            if not src.exists():
                src.mkdir(parents=True, exist_ok=True)   # kubelet creates missing subPaths
        mounts.append((str(src), str(m["mountPath"]), bool(m.get("readOnly"))))
    return mounts
