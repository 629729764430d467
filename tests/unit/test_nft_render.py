"""nftables rendering (pure): golden text for a full sync, and the partial
transactions that follow changes. Regenerate the golden file with
`NETD_UPDATE_GOLDEN=1 pytest tests/unit/test_nft_render.py` and review the diff."""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from netd.proxy.model import Endpoint, ServicePort, Snapshot
from netd.proxy.nftables import (LOCAL_OFFSET, PORTS_PER_MAP, SLOT_SHIFT, NodeView,
                                 RenderConfig, RuleSet, affinity_set, desired,
                                 endpoint_chain, endpoint_map, external_chain, local_chain,
                                 parse_names, render, render_diff, service_chain)

GOLDEN = Path(__file__).parent / "fixtures" / "nft"
CFG = RenderConfig(pod_cidr="10.244.0.0/16", service_cidr="10.96.0.0/12", dns_ip="10.96.0.10")
NODE = NodeView("node-1", ("172.18.0.2",))
A = Endpoint("10.244.0.2", 8080, True, True, False, "node-1")
B = Endpoint("10.244.1.2", 8080, True, True, False, "node-2")
C = Endpoint("10.244.1.3", 8080, True, True, False, "node-2")


def port(name: str, **kw: object) -> ServicePort:
    base = dict(namespace="default", name=name, port_name="", protocol="TCP",
                cluster_ips=("10.96.0.20",), port=80, node_port=0, external_ips=(),
                affinity_timeout=0, external_local=False, internal_local=False,
                endpoints=(A, B))
    base.update(kw)
    return ServicePort(**base)  # type: ignore[arg-type]


WEB = port("web", port_name="http", node_port=30080, external_ips=("192.0.2.7",))
STICKY = port("sticky", protocol="UDP", cluster_ips=("10.96.0.21",), port=53,
              affinity_timeout=15)
EMPTY = port("empty", cluster_ips=("10.96.0.22",), node_port=30081, endpoints=())
LOCAL = port("local", cluster_ips=("10.96.0.23",), node_port=30082, external_local=True,
             endpoints=(B, C))
INTERNAL = port("internal", cluster_ips=("10.96.0.24",), internal_local=True)
DNS = port("kube-dns", cluster_ips=("10.96.0.10",), port=53)
SNAP = Snapshot((WEB, STICKY, EMPTY, LOCAL, INTERNAL, DNS), 1)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("NETD_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def test_full_sync_golden() -> None:
    check_golden("full.nft", render(SNAP, NODE, CFG, None))


def test_host_mode_table_name() -> None:
    text = render(SNAP, NODE, replace(CFG, table="netd-c1"), None)
    assert "add table ip netd-c1 " in text
    assert " ip netd " not in text


def test_no_change_renders_nothing() -> None:
    rs = desired(SNAP, NODE, CFG)
    assert render_diff(desired(SNAP, NODE, CFG), rs) == ""


def test_endpoint_removed_partial_sync() -> None:
    before = desired(SNAP, NODE, CFG)
    web = replace(WEB, endpoints=(A,))
    text = render(Snapshot((web,) + SNAP.ports[1:], SNAP.generation), NODE, CFG, before)
    svc = service_chain(web)
    # one endpoint left: a plain DNAT, its slot's elements go (B stays a hairpin
    # address: other services still use it)
    assert text == (
        f"flush chain ip netd {svc}\n"
        f"add rule ip netd {svc} meta l4proto tcp dnat to 10.244.0.2:8080\n"
        f"delete element ip netd endpoints-tcp-0 {{ 0, 1 }}\n")


def test_service_added_and_removed() -> None:
    before = desired(Snapshot((WEB,), 1), NODE, CFG)
    new = port("new", cluster_ips=("10.96.0.30",), endpoints=(A,))
    text = render(Snapshot((new,), 2), NODE, CFG, before)
    lines = text.splitlines()
    # new chains exist before anything refers to them; old ones go last. A
    # ClusterIP-only port has no chain of its own: the shared one for its count.
    assert lines[0] == "add chain ip netd pick-tcp-1"
    assert lines[1] == ("add map ip netd pick-tcp-1 { typeof ip daddr . tcp dport . "
                        "numgen random mod 1 : ip daddr . tcp dport ; }")
    assert "add element ip netd service-ips { 10.96.0.30 . tcp . 80 : goto " \
           "pick-tcp-1 }" in lines
    assert "add element ip netd pick-tcp-1 { 10.96.0.30 . 80 . 0 : 10.244.0.2 . 8080 }" \
        in lines
    assert "delete element ip netd service-ips { 10.96.0.20 . tcp . 80, " \
           "192.0.2.7 . tcp . 80 }" in lines
    assert "delete element ip netd service-nodeports { tcp . 30080 }" in lines
    assert "delete element ip netd hairpin-ips { 10.244.1.2 . 10.244.1.2 }" in lines
    # the last rule using the endpoint map is gone: so is the map, after it
    assert lines[-1] == "delete map ip netd endpoints-tcp-0"
    deletes = [i for i, l in enumerate(lines) if l.startswith("delete chain")]
    flushes = [i for i, l in enumerate(lines) if l.startswith("flush chain")]
    elements = [i for i, l in enumerate(lines) if "element" in l]
    assert deletes and min(deletes) > max(flushes + elements)
    assert {l.split()[-1] for l in lines if l.startswith("delete chain")} == {
        service_chain(WEB), external_chain(WEB)}


def test_changed_map_value_is_deleted_then_added() -> None:
    before = desired(Snapshot((WEB,), 1), NODE, CFG)
    text = render(Snapshot((replace(WEB, endpoints=()),), 2), NODE, CFG, before)
    assert "delete element ip netd service-nodeports { tcp . 30080 }" in text
    assert "add element ip netd no-endpoint-nodeports { tcp . 30080 : goto reject-chain }" \
        in text
    assert "add element ip netd no-endpoint-services { 10.96.0.20 . tcp . 80 : goto " \
           "reject-chain, 192.0.2.7 . tcp . 80 : goto reject-chain }" in text


def test_affinity_timeout_change_replaces_sets() -> None:
    before = desired(Snapshot((STICKY,), 1), NODE, CFG)
    longer = replace(STICKY, affinity_timeout=60)
    text = render(Snapshot((longer,), 2), NODE, CFG, before)
    old_set, new_set = affinity_set(STICKY, A), affinity_set(longer, A)
    assert old_set != new_set
    assert f"add set ip netd {new_set} {{ type ipv4_addr ; flags dynamic,timeout ; " \
           f"timeout 60s ; }}" in text
    assert text.rstrip().splitlines()[-2:] == sorted(
        [f"delete set ip netd {old_set}", f"delete set ip netd {affinity_set(STICKY, B)}"])


@pytest.mark.parametrize("sp,node,ips,no_ips", [
    (LOCAL, "node-1", {}, {}),
    (INTERNAL, "node-2", {"10.96.0.24 . tcp . 80": "goto pick-tcp-1"}, {}),
    (INTERNAL, "node-3", {}, {"10.96.0.24 . tcp . 80": "drop"}),
    (EMPTY, "node-1", {}, {"10.96.0.22 . tcp . 80": "goto reject-chain"}),
], ids=["etp-local-clusterip-unaffected", "itp-local-with-local", "itp-local-none-local",
        "no-endpoints-reject"])
def test_traffic_policies(sp: ServicePort, node: str, ips: dict[str, str],
                          no_ips: dict[str, str]) -> None:
    rs = desired(Snapshot((sp,), 1), NodeView(node, ("172.18.0.9",)), CFG)
    if sp is LOCAL:
        ips = {"10.96.0.23 . tcp . 80": "goto " + service_chain(sp)}
    assert rs.elements["service-ips"] == ips
    assert rs.elements["no-endpoint-services"] == no_ips


@pytest.mark.parametrize("node,last", [("node-1", "drop"), ("node-2", None)],
                         ids=["no-local-endpoint-drops", "local-endpoints"])
def test_external_local_chain(node: str, last: str | None) -> None:
    rs = desired(Snapshot((LOCAL,), 1), NodeView(node, ("172.18.0.9",)), CFG)
    rules = rs.chains[external_chain(LOCAL)]
    # pods and the node itself keep the cluster-wide behaviour; outside sources are
    # neither masqueraded nor sent to another node
    assert rules[:3] == (f"ip saddr 10.244.0.0/16 goto {service_chain(LOCAL)}",
                         "fib saddr type local jump mark-for-masquerade",
                         f"fib saddr type local goto {service_chain(LOCAL)}")
    assert rules[3] == (last or f"goto {local_chain(LOCAL)}")
    assert rs.elements["service-nodeports"] == {"tcp . 30082": f"goto {external_chain(LOCAL)}"}


def test_failure_recovery_full_sync_deletes_unknown_leftovers() -> None:
    listing = ("table ip netd {\n\tset affinity-XXXXXXXX-default/old/tcp/__10.1.1.1/80 {\n"
               "\t\ttype ipv4_addr\n\t}\n\tmap service-ips {\n\t}\n"
               "\tchain services {\n\t}\n\tchain service-endpoints-check {\n\t}\n"
               "\tchain service-YYYYYYYY-default/old/tcp/ {\n\t}\n}\n")
    known = parse_names(listing)
    assert not known.complete
    assert list(known.chains) == ["service-YYYYYYYY-default/old/tcp/"]
    assert list(known.affinity) == ["affinity-XXXXXXXX-default/old/tcp/__10.1.1.1/80"]
    text = render(Snapshot((WEB,), 1), NODE, CFG, known)
    assert text.startswith("add table ip netd")
    tail = text.rstrip().splitlines()
    assert tail[-2:] == ["delete chain ip netd service-YYYYYYYY-default/old/tcp/",
                         "delete set ip netd affinity-XXXXXXXX-default/old/tcp/__10.1.1.1/80"]
    assert "flush chain ip netd service-YYYYYYYY-default/old/tcp/" in tail


def test_base_change_forces_full_and_counts() -> None:
    before = desired(SNAP, NODE, CFG)
    # a node address is an element: partial
    other = NodeView("node-1", ("172.18.0.3",))
    assert render(SNAP, other, CFG, before) == (
        "delete element ip netd nodeport-ips { 172.18.0.2 }\n"
        "add element ip netd nodeport-ips { 172.18.0.3 }\n")
    # the static part changed (another service CIDR): full
    text = render(SNAP, NODE, replace(CFG, service_cidr="10.96.0.0/16"), before)
    assert text.startswith("add table ip netd")
    counts = before.counts()
    assert counts == {"chain": 8, "rule": 16, "element": 23, "set": 4}


def test_names_are_stable_and_distinct() -> None:
    assert service_chain(WEB) == service_chain(replace(WEB, endpoints=()))
    names = {service_chain(p) for p in SNAP.ports}
    assert len(names) == len(SNAP.ports)
    assert service_chain(WEB).startswith("service-") and service_chain(WEB).endswith(
        "-default/web/tcp/http")
    assert RuleSet().counts() == {"chain": 0, "rule": 0, "element": 0, "set": 0}


def test_random_pick_is_one_rule_on_a_shared_map() -> None:
    rs = desired(Snapshot((WEB, STICKY), 1), NODE, CFG)
    svc = rs.chains[service_chain(WEB)]
    assert svc[-1] == ("meta l4proto tcp dnat ip to numgen random mod 2 offset 0 "
                       "map @endpoints-tcp-0")
    assert rs.elements["endpoints-tcp-0"] == {"0": "10.244.0.2 . 8080",
                                              "1": "10.244.1.2 . 8080"}
    # no per-endpoint chains without affinity; affinity keeps them (and its sets)
    assert endpoint_chain(WEB, A) not in rs.chains
    assert endpoint_chain(STICKY, A) in rs.chains
    assert rs.elements["hairpin-ips"] == {"10.244.0.2 . 10.244.0.2": "",
                                          "10.244.1.2 . 10.244.1.2": ""}


@pytest.mark.parametrize("slot,proto,name", [
    (0, "tcp", "endpoints-tcp-0"), (PORTS_PER_MAP - 1, "udp", "endpoints-udp-0"),
    (PORTS_PER_MAP, "sctp", "endpoints-sctp-1")], ids=["first", "last-of-map", "next-map"])
def test_endpoint_map_names(slot: int, proto: str, name: str) -> None:
    assert endpoint_map(slot, proto) == name


def test_local_pick_uses_the_upper_half_of_the_slot() -> None:
    rs = desired(Snapshot((EMPTY, replace(LOCAL, endpoints=(A, B, C))), 1),
                 NodeView("node-2", ("172.18.0.9",)), CFG)
    key = (1 << SLOT_SHIFT) + LOCAL_OFFSET          # LOCAL has slot 1
    assert rs.chains[local_chain(LOCAL)] == (
        f"meta l4proto tcp dnat ip to numgen random mod 2 offset {key} map @endpoints-tcp-0",)
    assert rs.elements["endpoints-tcp-0"][str(key + 1)] == "10.244.1.3 . 8080"


def test_slots_are_kept_and_reused() -> None:
    internal = replace(INTERNAL, node_port=30090)       # NodePort: a chain and a slot
    first = desired(Snapshot((WEB, LOCAL, internal), 1), NODE, CFG)
    assert first.slots == {"default/web/tcp/http": 0, "default/local/tcp/": 1,
                           "default/internal/tcp/": 2}
    new = port("new", cluster_ips=("10.96.0.30",), node_port=30091, endpoints=(B, C))
    second = desired(Snapshot((new, internal, LOCAL), 2), NODE, CFG, first)
    # survivors keep theirs whatever the order; the newcomer takes the freed one
    assert second.slots == {"default/new/tcp/": 0, "default/local/tcp/": 1,
                            "default/internal/tcp/": 2}
    text = render_diff(second, first)
    assert service_chain(internal) not in text and service_chain(LOCAL) not in text
    assert "delete element ip netd endpoints-tcp-0 { 0, 1 }" in text
    assert "add element ip netd endpoints-tcp-0 { 0 : 10.244.1.2 . 8080, " \
           "1 : 10.244.1.3 . 8080 }" in text


def test_clusterip_only_ports_share_pick_chains_and_have_no_slot() -> None:
    one = port("one", cluster_ips=("10.96.0.31",), endpoints=(A, B))
    two = port("two", cluster_ips=("10.96.0.32",), protocol="UDP", port=53, endpoints=(B, C))
    three = port("three", cluster_ips=("10.96.0.33",), endpoints=(B, C))
    rs = desired(Snapshot((one, two, three), 1), NODE, CFG)
    assert rs.slots == {}
    assert rs.chains == {
        "pick-tcp-2": ("meta l4proto tcp dnat ip to ip daddr . tcp dport . numgen random "
                       "mod 2 map @pick-tcp-2",),
        "pick-udp-2": ("meta l4proto udp dnat ip to ip daddr . udp dport . numgen random "
                       "mod 2 map @pick-udp-2",)}
    assert rs.chain_refs == {"pick-tcp-2": 2, "pick-udp-2": 1}
    assert rs.elements["pick-tcp-2"] == {
        "10.96.0.31 . 80 . 0": "10.244.0.2 . 8080", "10.96.0.31 . 80 . 1": "10.244.1.2 . 8080",
        "10.96.0.33 . 80 . 0": "10.244.1.2 . 8080", "10.96.0.33 . 80 . 1": "10.244.1.3 . 8080"}
    assert rs.elements["service-ips"]["10.96.0.32 . udp . 53"] == "goto pick-udp-2"
    # masquerading of sources outside the pod CIDR is one rule before the dispatch
    assert ("add rule ip netd services ip daddr @cluster-ips ip saddr != 10.244.0.0/16 "
            "jump mark-for-masquerade\n") in rs.base


def test_partial_sync_declares_a_new_endpoint_map_first() -> None:
    before = desired(Snapshot((replace(WEB, endpoints=(A,)),), 1), NODE, CFG)
    assert "endpoints-tcp-0" not in before.elements
    lines = render(Snapshot((WEB,), 2), NODE, CFG, before).splitlines()
    assert lines[0] == ("add map ip netd endpoints-tcp-0 { typeof numgen random mod 1 : "
                        "ip daddr . tcp dport ; }")


def test_shared_set_element_stays_while_used() -> None:
    two = replace(WEB, port_name="https", port=443)       # same ClusterIP, another port
    before = desired(Snapshot((WEB, two), 1), NODE, CFG)
    text = render(Snapshot((two,), 2), NODE, CFG, before)
    assert "cluster-ips" not in text and "hairpin-ips" not in text
    assert "delete element ip netd service-ips { 10.96.0.20 . tcp . 80, " \
           "192.0.2.7 . tcp . 80 }" in text


def test_restart_deletes_unknown_endpoint_maps() -> None:
    known = parse_names("table ip netd {\n\tmap endpoints-tcp-3 {\n\t}\n"
                        "\tmap endpoints-tcp-0 {\n\t}\n\tmap service-ips {\n\t}\n}\n")
    assert known.elements == {"endpoints-tcp-3": {}, "endpoints-tcp-0": {}}
    lines = render(Snapshot((WEB,), 1), NODE, CFG, known).splitlines()
    assert "flush map ip netd endpoints-tcp-0" in lines
    assert lines[-1] == "delete map ip netd endpoints-tcp-3"


@pytest.mark.parametrize("line,kind", [
    ("\tchain pick-tcp-3 {", "chain"), ("\tmap pick-udp-2 {", "map"),
    ("\tchain pick-foo-1 {", None), ("\tchain pick-tcp-x {", None)],
    ids=["pick-chain", "pick-map", "bad-proto", "bad-count"])
def test_restart_knows_pick_names(line: str, kind: str | None) -> None:
    known = parse_names(f"table ip netd {{\n{line}\n\t}}\n}}\n")
    name = line.split()[1]
    assert (name in known.chains) == (kind == "chain")
    assert (name in known.elements) == (kind == "map")
