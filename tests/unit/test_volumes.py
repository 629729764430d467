"""PV/PVC binding: matching rules (pure, table-driven), where volume data lives, the
default class admission, and the binder running against a real in-memory store
(binding, provisioning with its directory, reclaim Retain/Delete, Lost claims, the
seed's pv001-003 with a StatefulSet's claims)."""
from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import pytest
import yaml

import netd.config
from netd.config import Config
from netd.controllers.manager import ControllerContext, build_context
from netd.controllers.volumebinding import default_class, find_best_match, volume_dir
from netd.controllers.volumes import (
    DefaultStorageClass, PersistentVolumeBinder, ensure_default_storage_class)
from netd.registry.bootstrap import ensure_system_objects
from netd.registry.objectapi import ObjectAPI
from netd.store.sqlite import SQLiteStore

Obj = dict[str, Any]
NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
DEADLINE = 5.0
SEED_PVS = Path(__file__).resolve().parents[2] / "configs/examples/seed001-pv.yaml"


def pv(name: str, size: str = "2Gi", modes: tuple[str, ...] = ("ReadWriteOnce",),
       cls: str = "", labels: dict[str, str] | None = None, phase: str = "Available",
       claim_ref: Obj | None = None, mode: str = "Filesystem",
       policy: str = "Retain") -> Obj:
    spec: Obj = {"capacity": {"storage": size}, "accessModes": list(modes),
                 "nfs": {"server": "nfs1", "path": f"/data/{name}"}, "volumeMode": mode,
                 "persistentVolumeReclaimPolicy": policy}
    if cls:
        spec["storageClassName"] = cls
    if claim_ref:
        spec["claimRef"] = claim_ref
    return {"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": spec, "status": {"phase": phase}}


def pvc(name: str, size: str = "1Gi", modes: tuple[str, ...] = ("ReadWriteOnce",),
        cls: str | None = "", selector: Obj | None = None, volume: str = "",
        mode: str = "", uid: str = "uid-1") -> Obj:
    spec: Obj = {"accessModes": list(modes), "resources": {"requests": {"storage": size}}}
    if cls is not None:
        spec["storageClassName"] = cls
    if selector is not None:
        spec["selector"] = selector
    if volume:
        spec["volumeName"] = volume
    if mode:
        spec["volumeMode"] = mode
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": "default", "uid": uid}, "spec": spec}


REF = {"kind": "PersistentVolumeClaim", "namespace": "default", "name": "c", "uid": "uid-1"}

MATCH_CASES: list[tuple[str, Obj, list[Obj], str | None]] = [
    ("smallest-that-fits", pvc("c", "1Gi"), [pv("big", "10Gi"), pv("small", "512Mi"),
                                             pv("fit", "2Gi"), pv("fit2", "5Gi")], "fit"),
    ("tie-first-name", pvc("c"), [pv("b"), pv("a")], "a"),
    ("exact-size", pvc("c", "2Gi"), [pv("a", "2Gi")], "a"),
    ("too-small", pvc("c", "3Gi"), [pv("a", "2Gi")], None),
    ("modes-subset", pvc("c", modes=("ReadWriteOnce",)),
     [pv("rwx", modes=("ReadWriteMany",)), pv("both", modes=("ReadWriteMany",
                                                              "ReadWriteOnce"))], "both"),
    ("modes-not-subset", pvc("c", modes=("ReadWriteOnce", "ReadOnlyMany")),
     [pv("rwo", modes=("ReadWriteOnce",))], None),
    ("empty-class-only-classless", pvc("c", cls=""), [pv("fast", cls="fast"), pv("none")],
     "none"),
    ("class-equal", pvc("c", cls="fast"), [pv("none"), pv("fast", cls="fast")], "fast"),
    ("class-mismatch", pvc("c", cls="fast"), [pv("slow", cls="slow")], None),
    ("selector-labels", pvc("c", selector={"matchLabels": {"name": "pv003"}}),
     [pv("pv001", labels={"name": "pv001"}), pv("pv003", labels={"name": "pv003"})], "pv003"),
    ("selector-expressions", pvc("c", selector={"matchExpressions": [
        {"key": "tier", "operator": "NotIn", "values": ["gold"]}]}),
     [pv("a", labels={"tier": "gold"}), pv("b", labels={"tier": "bronze"})], "b"),
    ("volume-mode", pvc("c", mode="Block"), [pv("fs"), pv("blk", mode="Block")], "blk"),
    ("not-available-skipped", pvc("c"), [pv("a", phase="Released"), pv("b", phase="Pending")],
     None),
    ("claimed-elsewhere", pvc("c"), [pv("a", claim_ref=dict(REF, name="other", uid="u9"))],
     None),
    ("prebound-wins-over-smaller", pvc("c"), [pv("small", "1Gi"),
                                              pv("pre", "5Gi", claim_ref=REF, phase="Pending")],
     "pre"),
    ("prebound-by-name-only", pvc("c"), [pv("pre", claim_ref={"namespace": "default",
                                                               "name": "c"})], "pre"),
    ("prebound-must-fit", pvc("c", "10Gi"), [pv("pre", "1Gi", claim_ref=REF)], None),
]


@pytest.mark.parametrize("claim,volumes,want", [c[1:] for c in MATCH_CASES],
                         ids=[c[0] for c in MATCH_CASES])
def test_find_best_match(claim: Obj, volumes: list[Obj], want: str | None) -> None:
    got = find_best_match(claim, volumes)
    assert (got["metadata"]["name"] if got else None) == want


def _cfg(tmp: str = "/st") -> Config:
    return replace(Config(), state_dir=tmp, cluster_name="c1")


DIR_CASES = [
    ("nfs", {"nfs": {"server": "nfs1", "path": "/data/volumes/v1"}}, "/st/c1/nfs/nfs1/data/volumes/v1"),
    ("nfs-dotdot", {"nfs": {"server": "..", "path": "/../../etc"}}, "/st/c1/nfs/_/etc"),
    ("hostpath-provisioned", {"hostPath": {"path": "/st/c1/volumes/pvc-1"}},
     "/st/c1/volumes/pvc-1"),
    ("hostpath-elsewhere", {"hostPath": {"path": "/mnt/data"}}, "/st/c1/hostpath/mnt/data"),
    ("hostpath-escape", {"hostPath": {"path": "/st/c1/volumes/../../../etc"}},
     "/st/c1/hostpath/st/c1/volumes/etc"),
    ("local", {"local": {"path": "/disks/a"}}, "/st/c1/local/disks/a"),
    ("csi", {"csi": {"driver": "x", "volumeHandle": "h"}}, "/st/c1/volumes/vol"),
]


@pytest.mark.parametrize("spec,want", [c[1:] for c in DIR_CASES], ids=[c[0] for c in DIR_CASES])
def test_volume_dir(spec: Obj, want: str) -> None:
    assert str(volume_dir(_cfg(), {"metadata": {"name": "vol"}, "spec": spec})) == want


def test_default_class_newest_wins() -> None:
    def sc(name: str, ts: str, default: bool = True) -> Obj:
        ann = {"storageclass.kubernetes.io/is-default-class": "true"} if default else {}
        return {"metadata": {"name": name, "creationTimestamp": ts, "annotations": ann}}
    chosen = default_class([sc("a", "2025-01-01T00:00:00Z"), sc("b", "2025-01-02T00:00:00Z"),
                            sc("c", "2025-01-03T00:00:00Z", default=False)])
    assert chosen is not None and chosen["metadata"]["name"] == "b"
    assert default_class([sc("x", "2025-01-01T00:00:00Z", default=False)]) is None


# ---- against a store --------------------------------------------------------------------

@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[ControllerContext, PersistentVolumeBinder]]:
    store = SQLiteStore(":memory:")
    api = ObjectAPI(store, clock=lambda: NOW, plugins=[DefaultStorageClass(store)])
    await ensure_system_objects(api)
    cfg = replace(netd.config.load(None), state_dir=str(tmp_path))
    ctx = build_context(api, cfg)
    ctx.now = lambda: NOW
    binder = PersistentVolumeBinder(ctx)
    tasks = [asyncio.create_task(inf.run()) for inf in ctx.factory.informers]
    tasks.append(asyncio.create_task(ctx.recorder.run()))
    tasks.append(asyncio.create_task(binder.run()))
    await ctx.factory.wait_synced()
    yield ctx, binder
    binder.stop()
    ctx.factory.stop()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await store.close()


Env = tuple[ControllerContext, PersistentVolumeBinder]


async def eventually(pred: Callable[[], bool]) -> None:
    async def poll() -> None:
        while not pred():
            await asyncio.sleep(0.002)
    await asyncio.wait_for(poll(), DEADLINE)


def claim_phase(ctx: ControllerContext, name: str) -> tuple[str | None, str | None]:
    c = ctx.client.get_or_none("PersistentVolumeClaim", "default", name)
    if c is None:
        return None, None
    return c["status"].get("phase"), c["spec"].get("volumeName")


def volume_phase(ctx: ControllerContext, name: str) -> str | None:
    v = ctx.client.get_or_none("PersistentVolume", "", name)
    return None if v is None else v["status"].get("phase")


async def create_claim(ctx: ControllerContext, body: Obj) -> Obj:
    body = dict(body, metadata={k: v for k, v in body["metadata"].items() if k != "uid"})
    return await ctx.client.create("PersistentVolumeClaim", body)


async def create_volume(ctx: ControllerContext, body: Obj) -> Obj:
    return await ctx.client.create("PersistentVolume", {k: v for k, v in body.items()
                                                        if k != "status"})


async def events_of(ctx: ControllerContext, name: str) -> list[tuple[str, str, str]]:
    await ctx.recorder.flush()
    return [(e["type"], e["reason"], e["message"]) for e in ctx.client.list("Event")
            if e["involvedObject"]["name"] == name]


def sts_claim(i: int) -> Obj:
    # What the StatefulSet controller makes of the seed's volumeClaimTemplates.
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": f"myappdata-myapp-{i}", "namespace": "default",
                         "labels": {"app": "myapp-pod"}},
            "spec": {"accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "2Gi"}}}}


async def seed_pvs(ctx: ControllerContext) -> None:
    for doc in yaml.safe_load_all(SEED_PVS.read_text()):
        await ctx.client.create("PersistentVolume", doc)


async def test_seed_without_default_class_binds_rwo_volumes(env: Env) -> None:
    """No default class (the seed's cluster): the claims get no class, so they match
    the class-less PVs: myapp-0 -> pv001, myapp-1 -> pv003 (pv002 is RWX only), and
    myapp-2 waits, as on the seed's kubeadm cluster without more volumes."""
    ctx, _ = env
    await seed_pvs(ctx)
    await eventually(lambda: all(volume_phase(ctx, f"pv00{i}") == "Available"
                                 for i in (1, 2, 3)))
    for i in range(3):
        created = await ctx.client.create("PersistentVolumeClaim", sts_claim(i))
        assert "storageClassName" not in created["spec"]
        if i < 2:
            await eventually(lambda: claim_phase(ctx, f"myappdata-myapp-{i}")[0] == "Bound")
    assert claim_phase(ctx, "myappdata-myapp-0") == ("Bound", "pv001")
    assert claim_phase(ctx, "myappdata-myapp-1") == ("Bound", "pv003")
    await eventually(lambda: any(e["reason"] == "FailedBinding" and
                                 e["involvedObject"]["name"] == "myappdata-myapp-2"
                                 for e in ctx.client.list("Event")))
    assert claim_phase(ctx, "myappdata-myapp-2") == ("Pending", None)
    assert volume_phase(ctx, "pv002") == "Available"
    v1 = ctx.client.get("PersistentVolume", "", "pv001")
    assert v1["status"]["phase"] == "Bound"
    assert v1["spec"]["claimRef"]["name"] == "myappdata-myapp-0"
    assert v1["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"
    c0 = ctx.client.get("PersistentVolumeClaim", "default", "myappdata-myapp-0")
    assert c0["metadata"]["annotations"] == {"pv.kubernetes.io/bind-completed": "yes",
                                             "pv.kubernetes.io/bound-by-controller": "yes"}
    assert c0["status"] == {"phase": "Bound", "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
                            "capacity": {"storage": "2Gi"}}
    assert ("Normal", "FailedBinding", "no persistent volumes available for this claim and no "
            "storage class is set") in await events_of(ctx, "myappdata-myapp-2")


async def test_seed_with_default_class_provisions(env: Env, tmp_path: Path) -> None:
    """With netd's default class the claims get storageClassName "standard", which
    class-less PVs never match (as on kind/minikube): all three are provisioned."""
    ctx, _ = env
    await ensure_default_storage_class(ctx.api)
    await ensure_default_storage_class(ctx.api)   # idempotent
    await seed_pvs(ctx)
    for i in range(3):
        created = await ctx.client.create("PersistentVolumeClaim", sts_claim(i))
        assert created["spec"]["storageClassName"] == "standard"
    await eventually(lambda: all(claim_phase(ctx, f"myappdata-myapp-{i}")[0] == "Bound"
                                 for i in range(3)))
    for i in range(3):
        c = ctx.client.get("PersistentVolumeClaim", "default", f"myappdata-myapp-{i}")
        name = f"pvc-{c['metadata']['uid']}"
        assert c["spec"]["volumeName"] == name
        assert c["metadata"]["annotations"]["volume.kubernetes.io/storage-provisioner"] == \
            "netd.io/hostpath"
        v = ctx.client.get("PersistentVolume", "", name)
        assert v["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"] == \
            "netd.io/hostpath"
        assert v["spec"]["storageClassName"] == "standard"
        assert v["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
        assert v["spec"]["capacity"] == {"storage": "2Gi"}
        path = tmp_path / "netd" / "volumes" / name
        assert v["spec"]["hostPath"]["path"] == str(path) and path.is_dir()
        assert ("Normal", "ProvisioningSucceeded",
                f"Successfully provisioned volume {name} using netd.io/hostpath") in \
            await events_of(ctx, f"myappdata-myapp-{i}")
    assert {volume_phase(ctx, f"pv00{i}") for i in (1, 2, 3)} == {"Available"}

    # Reclaim Delete: the claim goes, so do the PV and its directory.
    c0 = ctx.client.get("PersistentVolumeClaim", "default", "myappdata-myapp-0")
    name = c0["spec"]["volumeName"]
    (tmp_path / "netd" / "volumes" / name / "index.html").write_text("1324")
    await ctx.client.delete("PersistentVolumeClaim", "default", "myappdata-myapp-0")
    await eventually(lambda: volume_phase(ctx, name) is None)
    assert not (tmp_path / "netd" / "volumes" / name).exists()


async def test_explicit_class_choices(env: Env) -> None:
    ctx, _ = env
    await ensure_default_storage_class(ctx.api)
    empty = await create_claim(ctx, pvc("empty", cls=""))
    assert empty["spec"]["storageClassName"] == ""
    await ctx.client.create("StorageClass", {
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": "ext"}, "provisioner": "example.com/nfs"})
    await create_claim(ctx, pvc("ext", cls="ext"))
    await create_claim(ctx, pvc("missing", cls="nope"))
    await eventually(lambda: any(e["reason"] == "ProvisioningFailed"
                                 for e in ctx.client.list("Event")))
    await eventually(lambda: any(e["reason"] == "ExternalProvisioning"
                                 for e in ctx.client.list("Event")))
    assert ("Warning", "ProvisioningFailed", 'storageclass.storage.k8s.io "nope" not found') in \
        await events_of(ctx, "missing")
    assert claim_phase(ctx, "ext") == ("Pending", None)
    assert ctx.client.list("PersistentVolume") == []


async def test_retain_releases_and_is_not_rebound(env: Env) -> None:
    ctx, _ = env
    await create_volume(ctx, pv("keep", policy="Retain"))
    await create_claim(ctx, pvc("data"))
    await eventually(lambda: claim_phase(ctx, "data") == ("Bound", "keep"))
    await eventually(lambda: volume_phase(ctx, "keep") == "Bound")
    await ctx.client.delete("PersistentVolumeClaim", "default", "data")
    await eventually(lambda: volume_phase(ctx, "keep") == "Released")
    await create_claim(ctx, pvc("data"))       # same name, new uid
    await eventually(lambda: any(e["reason"] == "FailedBinding" and
                                 e["involvedObject"]["name"] == "data"
                                 for e in ctx.client.list("Event")))
    assert claim_phase(ctx, "data") == ("Pending", None)
    assert volume_phase(ctx, "keep") == "Released"


async def test_delete_policy_on_foreign_volume_fails(env: Env) -> None:
    ctx, _ = env
    await create_volume(ctx, pv("nfsdel", policy="Delete"))
    await create_claim(ctx, pvc("data"))
    await eventually(lambda: claim_phase(ctx, "data") == ("Bound", "nfsdel"))
    await ctx.client.delete("PersistentVolumeClaim", "default", "data")
    await eventually(lambda: volume_phase(ctx, "nfsdel") == "Failed")
    v = ctx.client.get("PersistentVolume", "", "nfsdel")
    assert v["status"]["message"].startswith('error getting deleter volume plugin for volume '
                                             '"nfsdel"')


async def test_prebound_claim_and_volume(env: Env) -> None:
    ctx, _ = env
    await create_volume(ctx, pv("small", "1Gi"))
    await create_volume(ctx, pv("wanted", "5Gi"))
    await create_volume(ctx, pv("tiny", "100Mi"))
    await create_volume(ctx, pv("reserved", "3Gi", claim_ref={"namespace": "default",
                                                             "name": "later"}))
    await create_claim(ctx, pvc("named", volume="wanted"))
    await create_claim(ctx, pvc("toobig", volume="tiny"))
    await create_claim(ctx, pvc("later"))
    await eventually(lambda: claim_phase(ctx, "named") == ("Bound", "wanted"))
    await eventually(lambda: claim_phase(ctx, "later") == ("Bound", "reserved"))
    v = ctx.client.get("PersistentVolume", "", "reserved")
    # The user bound the volume, not the controller.
    assert "pv.kubernetes.io/bound-by-controller" not in (v["metadata"].get("annotations") or {})
    await eventually(lambda: any(e["reason"] == "VolumeMismatch"
                                 for e in ctx.client.list("Event")))
    assert ("Warning", "VolumeMismatch", 'Cannot bind to requested volume "tiny": requested PV '
            "is too small") in await events_of(ctx, "toobig")
    assert volume_phase(ctx, "small") == "Available"


async def test_claim_lost_when_volume_deleted(env: Env) -> None:
    ctx, _ = env
    await create_volume(ctx, pv("v"))
    await create_claim(ctx, pvc("data"))
    await eventually(lambda: claim_phase(ctx, "data") == ("Bound", "v"))
    await ctx.client.delete("PersistentVolume", "", "v")
    await eventually(lambda: claim_phase(ctx, "data")[0] == "Lost")
    assert ("Warning", "ClaimLost", "Bound claim has lost its PersistentVolume. Data on the "
            "volume is lost!") in await events_of(ctx, "data")


async def test_volume_freed_later_binds_waiting_claim(env: Env) -> None:
    ctx, _ = env
    await create_claim(ctx, pvc("waiting", "1Gi"))
    await eventually(lambda: any(e["reason"] == "FailedBinding"
                                 for e in ctx.client.list("Event")))
    await create_volume(ctx, pv("late"))
    await eventually(lambda: claim_phase(ctx, "waiting") == ("Bound", "late"))
