"""ClusterIP / NodePort allocation in the write path, and the system Services."""
from __future__ import annotations

import random
from typing import Any, AsyncIterator

import pytest

import netd.config
from netd.api import errors
from netd.api.kinds import REGISTRY
from netd.registry import allocators
from netd.registry.allocators import (AllocationError, ClusterIPAllocator, NodePortAllocator,
                                      RangeFull, ServiceAllocation)
from netd.registry.bootstrap import ensure_api_endpoints, ensure_system_objects
from netd.registry.objectapi import ObjectAPI
from netd.store.sqlite import SQLiteStore

_SVC = REGISTRY.by_plural("", "services")
_EP = REGISTRY.by_plural("", "endpoints")
_EPS = REGISTRY.by_plural("discovery.k8s.io", "endpointslices")
assert _SVC is not None and _EP is not None and _EPS is not None
SVC, EP, EPS = _SVC, _EP, _EPS
Obj = dict[str, Any]


# ---- pure allocators ---------------------------------------------------------------------

@pytest.mark.parametrize("cidr,band", [
    ("10.96.0.0/12", 256), ("10.96.0.0/20", 256), ("10.96.0.0/22", 64),
    ("10.96.0.0/24", 16), ("10.96.0.0/28", 0),
], ids=["slash12", "slash20", "slash22", "slash24", "slash28-too-small"])
def test_static_band_size(cidr: str, band: int) -> None:
    assert ClusterIPAllocator(cidr).static_band == band


@pytest.mark.parametrize("rng,band", [("30000-32767", 86), ("30000-30099", 16),
                                      ("1-10000", 128), ("30000-30009", 0)],
                         ids=["default", "small", "capped", "tiny"])
def test_node_port_band(rng: str, band: int) -> None:
    assert NodePortAllocator(rng).static_band == band


def test_random_ips_prefer_upper_band_then_lower() -> None:
    a = ClusterIPAllocator("10.0.0.0/26", rng=random.Random(1))  # 62 usable, band 16
    upper = [a.allocate_next("x") for _ in range(62 - 16)]
    offsets = sorted(int(ip.rsplit(".", 1)[1]) - 1 for ip in upper)
    assert offsets == list(range(16, 62))
    lower = [a.allocate_next("x") for _ in range(16)]
    assert sorted(int(ip.rsplit(".", 1)[1]) for ip in lower) == list(range(1, 17))
    with pytest.raises(RangeFull):
        a.allocate_next("x")


@pytest.mark.parametrize("ip,message", [
    ("10.96.0.0", "the provided IP (10.96.0.0) is not in the valid range. The range of "
                  "valid IPs is 10.96.0.0/12"),
    ("10.111.255.255", "the provided IP (10.111.255.255) is not in the valid range. The "
                       "range of valid IPs is 10.96.0.0/12"),
    ("192.168.0.1", "the provided IP (192.168.0.1) is not in the valid range. The range of "
                    "valid IPs is 10.96.0.0/12"),
    ("10.96.0.7", "provided IP is already allocated"),
], ids=["network", "broadcast", "outside", "taken"])
def test_requested_ip_errors(ip: str, message: str) -> None:
    a = ClusterIPAllocator("10.96.0.0/12")
    a.allocate("10.96.0.7", "a/b")
    with pytest.raises(AllocationError) as exc:
        a.allocate(ip, "c/d")
    assert str(exc.value) == message


@pytest.mark.parametrize("port,message", [
    (29999, "provided port is not in the valid range. The range of valid ports is "
            "30000-32767"),
    (32768, "provided port is not in the valid range. The range of valid ports is "
            "30000-32767"),
    (30080, "provided port is already allocated"),
], ids=["below", "above", "taken"])
def test_requested_port_errors(port: int, message: str) -> None:
    a = NodePortAllocator("30000-32767")
    a.allocate(30080, "a/b")
    with pytest.raises(AllocationError) as exc:
        a.allocate(port, "c/d")
    assert str(exc.value) == message


def test_reserved_ip_is_never_handed_out() -> None:
    a = ClusterIPAllocator("10.0.0.0/29", reserved=["10.0.0.3"], rng=random.Random(3))
    got = {a.allocate_next("x") for _ in range(5)}
    assert "10.0.0.3" not in got and len(got) == 5
    with pytest.raises(AllocationError):
        a.allocate("10.0.0.3")


# ---- through the write path -----------------------------------------------------------

@pytest.fixture
async def api() -> AsyncIterator[ObjectAPI]:
    store = SQLiteStore(":memory:")
    cfg = netd.config.load(None)
    a = ObjectAPI(store, plugins=allocators.plugins(cfg, store, rng=random.Random(7)))
    await ensure_system_objects(a)
    yield a
    await store.close()


def alloc(api: ObjectAPI) -> ServiceAllocation:
    found = allocators.find_allocation(api.plugins)
    assert found is not None
    return found


def svc(name: str, type_: str = "ClusterIP", ports: list[Obj] | None = None,
        **spec: Any) -> Obj:
    body: Obj = {"type": type_, "selector": {"app": name},
                 "ports": ports if ports is not None else [{"port": 80}]}
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default"}, "spec": body}


async def create(api: ObjectAPI, body: Obj, dry_run: bool = False) -> Obj:
    return (await api.create(SVC, "default", body, dry_run=dry_run)).obj


async def test_cluster_ip_allocated_from_upper_band_with_families(api: ObjectAPI) -> None:
    spec = (await create(api, svc("web")))["spec"]
    ip = spec["clusterIP"]
    assert spec["clusterIPs"] == [ip]
    assert spec["ipFamilies"] == ["IPv4"] and spec["ipFamilyPolicy"] == "SingleStack"
    offset = int.from_bytes(bytes(int(x) for x in ip.split(".")), "big") - \
        int.from_bytes(bytes([10, 96, 0, 1]), "big")
    assert offset >= 256


@pytest.mark.parametrize("extra,field,expect", [
    ({"clusterIP": "10.96.0.50"}, "clusterIPs", ["10.96.0.50"]),
    ({"clusterIPs": ["10.96.0.51"]}, "clusterIP", "10.96.0.51"),
    ({"clusterIP": "None"}, "clusterIPs", ["None"]),
    ({"ipFamilyPolicy": "PreferDualStack"}, "ipFamilies", ["IPv4"]),
], ids=["requested-ip", "requested-ips-only", "headless", "prefer-dual-stack"])
async def test_requested_and_headless(api: ObjectAPI, extra: Obj, field: str,
                                      expect: Any) -> None:
    spec = (await create(api, svc("web", **extra)))["spec"]
    assert spec[field] == expect


async def test_headless_without_selector_gets_both_families_unless_single(
        api: ObjectAPI) -> None:
    body = svc("hl", clusterIP="None", ipFamilyPolicy="PreferDualStack")
    del body["spec"]["selector"]
    assert (await create(api, body))["spec"]["ipFamilies"] == ["IPv4", "IPv6"]


async def test_external_name_gets_nothing(api: ObjectAPI) -> None:
    body = svc("ext", "ExternalName", externalName="example.com")
    spec = (await create(api, body))["spec"]
    for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
        assert key not in spec


@pytest.mark.parametrize("first,second,message", [
    ({"clusterIP": "10.96.0.5"}, {"clusterIP": "10.96.0.5"},
     'Service "b" is invalid: spec.clusterIPs: Invalid value: []string{"10.96.0.5"}: failed '
     'to allocate IP 10.96.0.5: provided IP is already allocated'),
    ({}, {"clusterIP": "192.168.1.1"},
     'Service "b" is invalid: spec.clusterIPs: Invalid value: []string{"192.168.1.1"}: failed '
     'to allocate IP 192.168.1.1: the provided IP (192.168.1.1) is not in the valid range. '
     'The range of valid IPs is 10.96.0.0/12'),
    ({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]},
     {"type": "NodePort", "ports": [{"port": 81, "nodePort": 30080}]},
     'Service "b" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is '
     'already allocated'),
    ({}, {"type": "NodePort", "ports": [{"port": 81, "nodePort": 40000}]},
     'Service "b" is invalid: spec.ports[0].nodePort: Invalid value: 40000: provided port is '
     'not in the valid range. The range of valid ports is 30000-32767'),
    ({}, {"clusterIPs": ["fd00::1"], "clusterIP": "fd00::1"},
     'Service "b" is invalid: spec.clusterIPs[0]: Invalid value: []string{"fd00::1"}: IPv6 '
     'is not configured on this cluster'),
    ({}, {"ipFamilyPolicy": "RequireDualStack"},
     'Service "b" is invalid: spec.ipFamilyPolicy: Invalid value: "RequireDualStack": this '
     'cluster is not configured for dual-stack services'),
], ids=["ip-taken", "ip-out-of-range", "port-taken", "port-out-of-range", "ipv6",
        "require-dual-stack"])
async def test_rejections(api: ObjectAPI, first: Obj, second: Obj, message: str) -> None:
    await create(api, svc("a", **first))
    used = (alloc(api).ips.used, alloc(api).ports.used)
    with pytest.raises(errors.Invalid) as exc:
        await create(api, svc("b", **second))
    assert exc.value.message == message
    # A rejected request holds nothing.
    assert (alloc(api).ips.used, alloc(api).ports.used) == used


async def test_node_ports_allocated_and_shared_by_port_number(api: ObjectAPI) -> None:
    ports = [{"name": "dns", "port": 53, "protocol": "UDP"},
             {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
             {"name": "metrics", "port": 9153, "nodePort": 30153}]
    spec = (await create(api, svc("dns", "NodePort", ports)))["spec"]
    np = [p["nodePort"] for p in spec["ports"]]
    assert np[0] == np[1] and np[2] == 30153 and 30000 <= np[0] <= 32767
    assert alloc(api).ports.used == 2


@pytest.mark.parametrize("spec,hc", [
    ({"externalTrafficPolicy": "Local"}, True),
    ({"externalTrafficPolicy": "Cluster"}, False),
    ({"externalTrafficPolicy": "Local", "healthCheckNodePort": 31999}, True),
], ids=["local", "cluster", "requested-hc"])
async def test_load_balancer_health_check_port(api: ObjectAPI, spec: Obj, hc: bool) -> None:
    got = (await create(api, svc("lb", "LoadBalancer", **spec)))["spec"]
    assert ("healthCheckNodePort" in got) == hc
    assert got["ports"][0]["nodePort"]
    if spec.get("healthCheckNodePort"):
        assert got["healthCheckNodePort"] == 31999
    assert alloc(api).ports.used == (2 if hc else 1)


async def test_load_balancer_without_node_ports(api: ObjectAPI) -> None:
    got = (await create(api, svc("lb", "LoadBalancer",
                                 allocateLoadBalancerNodePorts=False)))["spec"]
    assert "nodePort" not in got["ports"][0]


async def test_dry_run_does_not_leak(api: ObjectAPI) -> None:
    before = (alloc(api).ips.used, alloc(api).ports.used)
    await create(api, svc("a", "NodePort", clusterIP="10.96.0.9",
                          ports=[{"port": 80, "nodePort": 30009}]), dry_run=True)
    assert (alloc(api).ips.used, alloc(api).ports.used) == before
    spec = (await create(api, svc("a", "NodePort", clusterIP="10.96.0.9",
                                  ports=[{"port": 80, "nodePort": 30009}])))["spec"]
    assert spec["clusterIP"] == "10.96.0.9"


async def test_delete_releases(api: ObjectAPI) -> None:
    await create(api, svc("a", "NodePort", clusterIP="10.96.0.9",
                          ports=[{"port": 80, "nodePort": 30009}]))
    await api.delete(SVC, "default", "a")
    assert alloc(api).ips.used == 0 and alloc(api).ports.used == 0
    await create(api, svc("b", "NodePort", clusterIP="10.96.0.9",
                          ports=[{"port": 80, "nodePort": 30009}]))


async def test_update_keeps_allocations_when_omitted(api: ObjectAPI) -> None:
    obj = await create(api, svc("a", "NodePort"))
    ip, np = obj["spec"]["clusterIP"], obj["spec"]["ports"][0]["nodePort"]
    body = svc("a", "NodePort", ports=[{"port": 80}])
    body["spec"]["externalTrafficPolicy"] = "Cluster"
    updated = (await api.update(SVC, "default", "a", body)).obj["spec"]
    assert updated["clusterIP"] == ip and updated["ports"][0]["nodePort"] == np
    assert alloc(api).ports.used == 1 and alloc(api).ips.used == 1


async def test_type_changes_allocate_and_release(api: ObjectAPI) -> None:
    obj = await create(api, svc("a", clusterIP="10.96.0.20"))
    # ClusterIP → NodePort allocates a node port, keeps the IP.
    body = svc("a", "NodePort", clusterIP="10.96.0.20")
    np_spec = (await api.update(SVC, "default", "a", body)).obj["spec"]
    np = np_spec["ports"][0]["nodePort"]
    assert np_spec["clusterIP"] == "10.96.0.20" and alloc(api).ports.owner_of(np) == \
        "default/a"
    # NodePort → ClusterIP (the client drops what no longer applies) releases it.
    body = svc("a", clusterIP="10.96.0.20")
    await api.update(SVC, "default", "a", body)
    await create(api, svc("b", "NodePort", ports=[{"port": 1, "nodePort": np}]))
    # ClusterIP → ExternalName releases the IP once the update is stored.
    ext = svc("a", "ExternalName", externalName="example.com")
    del ext["spec"]["selector"]
    spec = (await api.update(SVC, "default", "a", ext)).obj["spec"]
    assert "clusterIP" not in spec
    await create(api, svc("c", clusterIP="10.96.0.20"))
    # ExternalName → ClusterIP allocates again.
    spec = (await api.update(SVC, "default", "a", svc("a"))).obj["spec"]
    assert spec["clusterIP"] not in ("", "10.96.0.20") and spec["ipFamilies"] == ["IPv4"]
    assert obj["metadata"]["uid"]


async def test_release_waits_for_the_update_to_commit(api: ObjectAPI) -> None:
    old = await create(api, svc("a", clusterIP="10.96.0.30"))
    new = svc("a", "ExternalName", externalName="example.com")
    plugin = alloc(api)
    undo = await plugin.on_update(SVC, new, old, False)
    # Not committed yet: the address is still the old Service's.
    with pytest.raises(errors.Invalid):
        await create(api, svc("b", clusterIP="10.96.0.30"))
    assert undo is not None
    undo()  # the update failed: nothing was given up
    with pytest.raises(errors.Invalid):
        await create(api, svc("b", clusterIP="10.96.0.30"))
    assert plugin.pending_ips == {}


async def test_rebuild_from_store(api: ObjectAPI) -> None:
    await create(api, svc("a", "NodePort", clusterIP="10.96.0.40",
                          ports=[{"port": 80, "nodePort": 30040}]))
    await create(api, svc("b", "LoadBalancer", externalTrafficPolicy="Local"))
    fresh = allocators.plugins(netd.config.load(None), api.store)
    plugin = allocators.find_allocation(fresh)
    assert plugin is not None
    assert plugin.ips.used == 2 and plugin.ports.used == 3
    assert plugin.ips.owner_of("10.96.0.40") == "default/a"
    with pytest.raises(AllocationError):
        plugin.ports.allocate(30040)


@pytest.mark.parametrize("new_type,extra,expect_gone", [
    ("ClusterIP", {}, ["nodePort", "externalTrafficPolicy"]),
    ("ExternalName", {"externalName": "x.example"},
     ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy", "nodePort"]),
], ids=["to-clusterip", "to-externalname"])
def test_drop_type_dependent_fields(new_type: str, extra: Obj, expect_gone: list[str]) -> None:
    old = {"type": "NodePort", "clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"],
           "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
           "externalTrafficPolicy": "Cluster", "ports": [{"port": 80, "nodePort": 30001}]}
    new = {**old, "type": new_type, **extra, "ports": [{"port": 80, "nodePort": 30001}]}
    allocators.drop_type_dependent_fields(new, old)
    ports: list[Obj] = new["ports"]  # type: ignore[assignment]
    present = set(new) | set(ports[0])
    assert not present & set(expect_gone)


def test_drop_keeps_user_changes() -> None:
    old: Obj = {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30001}]}
    new: Obj = {"type": "ClusterIP", "ports": [{"port": 80, "nodePort": 30002}]}
    allocators.drop_type_dependent_fields(new, old)
    assert new["ports"][0]["nodePort"] == 30002  # validation will say why


# ---- system objects ------------------------------------------------------------------------

async def test_system_services_and_api_endpoints(api: ObjectAPI) -> None:
    cfg = netd.config.load(None)
    await ensure_system_objects(api, cfg, ("172.18.0.1", 6443))
    k = api.get(SVC, "default", "kubernetes").obj
    assert k["spec"]["clusterIP"] == "10.96.0.1" and "selector" not in k["spec"]
    assert k["spec"]["ports"] == [{"name": "https", "port": 443, "protocol": "TCP",
                                   "targetPort": 6443}]
    dns = api.get(SVC, "kube-system", "kube-dns").obj
    assert dns["spec"]["clusterIP"] == "10.96.0.10"
    assert dns["spec"]["selector"] == {"k8s-app": "kube-dns"}
    assert dns["metadata"]["labels"]["kubernetes.io/name"] == "CoreDNS"
    assert [(p["name"], p["port"], p["protocol"]) for p in dns["spec"]["ports"]] == [
        ("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP")]
    ep = api.get(EP, "default", "kubernetes").obj
    assert ep["subsets"] == [{"addresses": [{"ip": "172.18.0.1"}],
                              "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}]
    sl = api.get(EPS, "default", "kubernetes").obj
    assert sl["endpoints"][0]["addresses"] == ["172.18.0.1"]
    assert alloc(api).ips.owner_of("10.96.0.10") == "kube-system/kube-dns"
    # Idempotent: nothing is written again.
    rev = api.store.revision
    await ensure_system_objects(api, cfg, ("172.18.0.1", 6443))
    assert api.store.revision == rev
    # The API server moved: its endpoints follow.
    await ensure_api_endpoints(api, "172.18.0.1", 7443)
    assert api.get(EP, "default", "kubernetes").obj["subsets"][0]["ports"][0]["port"] == 7443
    assert api.get(EPS, "default", "kubernetes").obj["ports"][0]["port"] == 7443


async def test_loopback_api_endpoint_is_skipped(api: ObjectAPI) -> None:
    await ensure_system_objects(api, netd.config.load(None), ("127.0.0.1", 6443))
    assert api.store.get("endpoints", "default", "kubernetes") is None
    assert api.store.get("services", "default", "kubernetes") is not None
