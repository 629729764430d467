"""Layered tables (netd.dns.layered) and indexes derived from changed keys
(ZoneIndex.update, netd.dns.delta): table semantics, snapshot isolation, and
property-style checks that a derived index equals a build from scratch for seeded
random change sequences (shared endpoint addresses, headless, ExternalName, slices
moving between Services, verified pod records, forced compactions)."""
from __future__ import annotations

import random
from typing import Any, Callable

import pytest

import netd.dns.layered as layered
from netd.dns.index import DnsConfig, SvcKey, ZoneIndex, pod_key, service_key, slice_key
from netd.dns.layered import Layered
from netd.dns.resolver import resolve
from tests.unit.test_dns_resolver import ep, eps, pod, svc

Obj = dict[str, Any]
Op = Callable[[Layered[str, int]], None]


# ---- the table ----------------------------------------------------------------------

def _put(k: str, v: int) -> Op:
    return lambda t: t.put(k, v)


def _rm(k: str) -> Op:
    return lambda t: t.remove(k) and None


@pytest.mark.parametrize("ops,expect", [
    ([], {"a": 1, "b": 2}),
    ([_put("c", 3)], {"a": 1, "b": 2, "c": 3}),
    ([_put("a", 9)], {"a": 9, "b": 2}),
    ([_rm("a")], {"b": 2}),
    ([_rm("a"), _put("a", 5)], {"a": 5, "b": 2}),
    ([_put("c", 3), _rm("c")], {"a": 1, "b": 2}),
    ([_rm("zz")], {"a": 1, "b": 2}),
    ([_rm("a"), _rm("a"), _rm("b")], {}),
], ids=["nothing", "add", "replace", "tombstone", "revive", "add-remove", "remove-missing",
        "remove-all"])
def test_layered_reads_equal_a_dict(ops: list[Op], expect: dict[str, int]) -> None:
    base = {"a": 1, "b": 2}
    parent: Layered[str, int] = Layered(base)
    t = parent.derive()
    for op in ops:
        op(t)
    assert dict(t.items()) == expect and t.flat() == expect and len(t) == len(expect)
    assert sorted(t) == sorted(expect)
    for k in ("a", "b", "c", "zz"):
        assert (k in t) == (k in expect)
        assert t.get(k) == expect.get(k)
    assert t == t.compacted() and t.compacted().over == {}
    # The parent (the previous snapshot) and the shared base never change.
    assert dict(parent.items()) == {"a": 1, "b": 2} and base == {"a": 1, "b": 2}


def test_remove_reports_presence_and_getitem_raises() -> None:
    t: Layered[str, int] = Layered({"a": 1}).derive()
    assert t.remove("a") is True and t.remove("a") is False
    with pytest.raises(KeyError):
        _ = t["a"]


def test_pressure_bound_grows_with_the_base(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layered, "COMPACT_MIN", 4)
    small: Layered[int, int] = Layered({i: i for i in range(8)})
    big: Layered[int, int] = Layered({i: i for i in range(800)})
    for t in (small, big):
        for i in range(10):
            t.put(1000 + i, i)
    assert small.pressure() > 1.0 and big.pressure() == 10 / 80   # sqrt(8 * 800)


def test_compaction_keeps_every_snapshot_and_reaps_only_released_bases(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layered, "COMPACT_MIN", 2)
    monkeypatch.setattr(layered, "GRAVEYARD", type(layered.GRAVEYARD)())
    root: Layered[int, list[int]] = Layered({i: [i] for i in range(10)})
    expect = dict(root.base)
    t, snapshots = root, []
    for step in range(40):
        t = t.derive()
        t.put(100 + step, [step])
        t.remove(step % 10)
        expect[100 + step] = [step]
        expect.pop(step % 10, None)
        if t.pressure() > 1.0:
            t = t.compacted()
            assert t.over == {}
        layered.reap(3)
        assert t.flat() == expect and len(t) == len(expect), step
        snapshots.append((t, dict(t.flat())))
    assert layered.GRAVEYARD, "compactions retired bases the snapshots still hold"
    for snap, content in snapshots:      # every published snapshot kept its contents
        assert snap.flat() == content
    del snap, snapshots, t, root
    while layered.reap(3):
        pass
    assert len(layered.GRAVEYARD) == 0


def test_reap_frees_superseded_values_only_when_unreferenced(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layered, "GRAVEYARD", type(layered.GRAVEYARD)())
    held: Layered[int, int] = Layered({i: i for i in range(100)})
    layered.GRAVEYARD.append((held.base, list(range(40))))
    layered.GRAVEYARD.append(({i: i for i in range(50)}, [1, 2, 3]))
    assert layered.reap(30) == 3 and len(layered.GRAVEYARD) == 1
    assert held.flat() == {i: i for i in range(100)}     # a live table: untouched
    del held
    assert layered.reap(30) == 30 and layered.reap(30) == 10
    assert len(layered.GRAVEYARD) == 0


# ---- derived indexes against builds from scratch ---------------------------------------

class World:
    """Objects keyed as informers key them; every mutation reports the keys it
    touched, as the indexer's handlers would see them."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.services: dict[str, Obj] = {}
        self.slices: dict[str, Obj] = {}
        self.pods: dict[str, Obj] = {}
        self.namespaces = [{"metadata": {"name": n}}
                           for n in ("default", "other", "kube-system")]
        self.next_ip = 30
        self.add_obj(svc("kube-dns", ["10.96.0.10"], ns="kube-system"))
        for i in range(10):
            self.new_service(f"s{i}")
        for i in range(8):
            self.set_pod(f"p{i}")

    # keys
    def add_obj(self, obj: Obj) -> set[SvcKey]:
        key = service_key(obj)
        assert key is not None
        self.services[f"{key[0]}/{key[1]}"] = obj
        return {key}

    def endpoint_ip(self) -> str:
        return f"10.244.{self.rng.randrange(2)}.{self.rng.randrange(1, 7)}"  # shared

    def new_service(self, name: str) -> set[SvcKey]:
        ns = self.rng.choice(["default", "other"])
        kind = self.rng.choice(["cluster", "cluster", "headless", "external"])
        if kind == "external":
            obj = svc(name, None, [], ns=ns, type="ExternalName",
                      externalName=self.rng.choice(["example.com", f"s1.{ns}.svc.cluster.local"]))
        else:
            self.next_ip += 1
            obj = svc(name, ["None"] if kind == "headless" else [f"10.96.1.{self.next_ip}"],
                      ns=ns)
        touched = self.add_obj(obj)
        if kind != "external":
            touched |= self.set_slice(obj, f"{name}-a")
        return touched

    def set_slice(self, owner: Obj, name: str, service: str | None = None) -> set[SvcKey]:
        ns = owner["metadata"]["namespace"]
        service = service or owner["metadata"]["name"]
        endpoints = [ep(self.endpoint_ip(), self.rng.choice([None, f"h{i}"]),
                        ready=self.rng.choice([True, True, False, None]))
                     for i in range(self.rng.randrange(0, 4))]
        new = eps(service, endpoints, [{"name": "http", "port": 80, "protocol": "TCP"}],
                  name=name)
        new["metadata"]["namespace"] = ns
        old = self.slices.get(f"{ns}/{name}")
        self.slices[f"{ns}/{name}"] = new
        return {k for k in (slice_key(new), slice_key(old) if old else None) if k}

    def set_pod(self, name: str) -> None:
        extra: dict[str, Any] = {}
        if self.rng.random() < 0.15:
            extra["deletionTimestamp"] = "2024-01-01T00:00:00Z"
        self.pods[f"default/{name}"] = pod(name, self.endpoint_ip(), **extra)

    def step(self) -> tuple[str, set[SvcKey], set[str]]:
        rng = self.rng
        action = rng.choice(["slice", "slice", "svc-ip", "delete-svc", "add-svc",
                             "move-slice", "delete-slice", "pod", "delete-pod", "ports"])
        keys = [k for k in self.services if not k.startswith("kube-system/")]
        pods: set[str] = set()
        touched: set[SvcKey] = set()
        if action == "slice" and keys:
            owner = self.services[rng.choice(keys)]
            touched = self.set_slice(owner, f"{owner['metadata']['name']}-{rng.choice('ab')}")
        elif action == "svc-ip" and keys:
            old = self.services[rng.choice(keys)]
            self.next_ip += 1
            ips = old["spec"].get("clusterIPs") or []
            if ips and ips != ["None"]:
                touched = self.add_obj(dict(old, spec=dict(
                    old["spec"], clusterIP=f"10.96.1.{self.next_ip}",
                    clusterIPs=[f"10.96.1.{self.next_ip}"])))
        elif action == "delete-svc" and keys:
            old = self.services.pop(rng.choice(keys))
            touched = {k for k in (service_key(old),) if k}
        elif action == "add-svc":
            touched = self.new_service(f"n{rng.randrange(30)}")
        elif action == "move-slice" and self.slices and keys:
            key = rng.choice(sorted(self.slices))
            old = self.slices[key]
            target = self.services[rng.choice(keys)]["metadata"]["name"]
            labels = {"kubernetes.io/service-name": target}
            new = dict(old, metadata=dict(old["metadata"], labels=labels))
            self.slices[key] = new
            touched = {k for k in (slice_key(old), slice_key(new)) if k}
        elif action == "delete-slice" and self.slices:
            old = self.slices.pop(rng.choice(sorted(self.slices)))
            touched = {k for k in (slice_key(old),) if k}
        elif action == "pod":
            name = f"p{rng.randrange(12)}"
            self.set_pod(name)
            pods = {f"default/{name}"}
        elif action == "delete-pod" and self.pods:
            pk = rng.choice(sorted(self.pods))
            del self.pods[pk]
            pods = {pk}
        elif action == "ports" and keys:
            old = self.services[rng.choice(keys)]
            if old["spec"].get("type") != "ExternalName":
                ports = [{"name": rng.choice(["http", "x", ""]), "port": rng.randrange(1, 9),
                          "protocol": rng.choice(["TCP", "UDP"])}]
                touched = self.add_obj(dict(old, spec=dict(old["spec"], ports=ports)))
        return action, touched, pods

    def lists(self) -> tuple[list[Obj], list[Obj], list[Obj]]:
        # A shuffled listing: the result must not depend on the order objects come in.
        out = [list(d.values()) for d in (self.services, self.slices, self.pods)]
        for lst in out:
            self.rng.shuffle(lst)
        return out[0], out[1], out[2]

    def changes(self, touched: set[SvcKey], pods: set[str]
                ) -> tuple[dict[SvcKey, tuple[Obj | None, list[Obj]]], dict[str, Obj | None]]:
        svcs = {key: (self.services.get(f"{key[0]}/{key[1]}"),
                      [s for s in self.slices.values() if slice_key(s) == key])
                for key in touched}
        return svcs, {pk: self.pods.get(pk) for pk in pods}


def _tables(idx: ZoneIndex) -> tuple[Any, ...]:
    return (idx.addrs.flat(), idx.srvs.flat(), idx.ptrs.flat(), idx.cnames.flat(),
            idx.txts.flat(), set(idx.ents.flat()), idx.namespaces, idx.dns_ips,
            {k: v for k, v in idx.counts.items()})


def _frozen(idx: ZoneIndex) -> tuple[Any, ...]:
    return tuple(dict(t) if isinstance(t, dict) else t for t in _tables(idx))


def _probe_names(idx: ZoneIndex) -> set[str]:
    names: set[str] = set()
    for t in (idx.addrs, idx.srvs, idx.ptrs, idx.cnames, idx.ents):
        for name in t:
            names.add(name)
            names.add("x." + name)      # below every name: NXDOMAIN
    return names


@pytest.mark.parametrize("compact_min,budget", [(2, 1), (2, 64), (256, 64)],
                         ids=["compacting-reaping-slowly", "compacting", "layered"])
@pytest.mark.parametrize("mode", ["disabled", "verified", "insecure"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_update_equals_build_from_scratch(seed: int, mode: str, compact_min: int,
                                          budget: int,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layered, "COMPACT_MIN", compact_min)
    monkeypatch.setattr(layered, "REAP_BUDGET", budget)
    rng = random.Random(seed)
    world = World(rng)
    cfg = DnsConfig(pod_mode=mode)
    s, sl, p = world.lists()
    idx = ZoneIndex.build(s, sl, p, cfg, namespaces=world.namespaces)
    prev_full = idx
    derived = 0
    for step in range(120):
        action, touched, pods = world.step()
        before = _frozen(idx)
        svcs, pod_changes = world.changes(touched, pods)
        new = ZoneIndex.update(idx, svcs, pod_changes, generation=step + 1)
        s, sl, p = world.lists()
        full = ZoneIndex.build(s, sl, p, cfg, namespaces=world.namespaces,
                               generation=step + 1)
        if new is None:
            new = ZoneIndex.build(s, sl, p, cfg, namespaces=world.namespaces,
                                  generation=step + 1, previous=idx, derive=False)
        else:
            derived += 1
            truth = full.changed_names(prev_full)
            got = new.changed_names(idx)
            assert truth is not None and got is not None and truth <= got, (step, action)
        assert _frozen(idx) == before, "the previous snapshot changed"
        assert _tables(new) == _tables(full), (step, action)
        if step % 20 == 0:
            for name in sorted(_probe_names(full)):
                for qtype in (1, 33, 12, 16):
                    assert resolve(new, name, qtype) == resolve(full, name, qtype), name
        idx, prev_full = new, full
    assert derived > 100, f"only {derived} of 120 changes were derived"


@pytest.mark.parametrize("mode", ["disabled", "verified"])
def test_list_build_with_previous_equals_scratch(mode: str) -> None:
    """The list API (ZoneIndex.build with previous) detects the changes itself."""
    rng = random.Random(9)
    world = World(rng)
    cfg = DnsConfig(pod_mode=mode)
    idx = ZoneIndex.build(*world.lists(), cfg, namespaces=world.namespaces)
    merged = 0
    for step in range(60):
        world.step()
        lists = world.lists()
        idx = ZoneIndex.build(*lists, cfg, namespaces=world.namespaces, previous=idx,
                              generation=step)
        merged += idx._delta is not None
        full = ZoneIndex.build(*lists, cfg, namespaces=world.namespaces, generation=step)
        assert _tables(idx) == _tables(full), step
    assert merged > 45


def test_dns_service_address_change_declines() -> None:
    world = World(random.Random(4))
    idx = ZoneIndex.build(*world.lists(), DnsConfig(), namespaces=world.namespaces)
    moved = svc("kube-dns", ["10.96.0.11"], ns="kube-system")
    assert ZoneIndex.update(idx, {("kube-system", "kube-dns"): (moved, [])}) is None
    # Its slices changing (not its addresses) is an ordinary change.
    same = svc("kube-dns", ["10.96.0.10"], ns="kube-system")
    new = ZoneIndex.update(idx, {("kube-system", "kube-dns"): (same, [])})
    assert new is not None and new.dns_ips == ("10.96.0.10",)


def test_shared_cluster_ip_declines_and_pod_key_shape() -> None:
    a = svc("a", ["10.96.5.5"])
    idx = ZoneIndex.build([a], [], [], DnsConfig())
    b = svc("b", ["10.96.5.5"])
    assert ZoneIndex.update(idx, {("default", "b"): (b, [])}) is None
    assert pod_key(pod("x", "10.244.0.1", ns="other")) == "other/x"
