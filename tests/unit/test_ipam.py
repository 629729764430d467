from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from netd.config import Config
from netd.node.ipam import PodIPAllocator, host_bridge_ip, pod_gateway


def test_allocation_skips_network_and_gateway_and_rotates() -> None:
    ipam = PodIPAllocator("10.244.1.0/29")          # .2 .. .6
    got = [ipam.allocate(f"p{i}") for i in range(5)]
    assert got == [f"10.244.1.{i}" for i in range(2, 7)]
    assert ipam.allocate("p5") is None                # exhausted
    ipam.release("p0")
    assert ipam.allocate("p6") == "10.244.1.2"
    ipam.release("p3")                                 # frees .5
    ipam.release("p6")                                 # frees .2 (the cursor)
    # next after the last handed out (.2) is .5: a recreated pod gets a new address
    assert ipam.allocate("p7") == "10.244.1.5"


@pytest.mark.parametrize("ip,ok", [("10.244.1.0", False), ("10.244.1.1", False),
                                   ("10.244.1.7", False), ("10.244.1.4", True),
                                   ("nonsense", False), ("10.9.9.9", False)],
                         ids=["network", "gateway", "broadcast", "inside", "garbage", "outside"])
def test_reserve_bounds(ip: str, ok: bool) -> None:
    assert PodIPAllocator("10.244.1.0/29").reserve("x", ip) is ok


def test_reserve_conflict_and_owner() -> None:
    ipam = PodIPAllocator("10.244.1.0/29")
    assert ipam.reserve("a", "10.244.1.4")
    assert not ipam.reserve("b", "10.244.1.4")
    assert ipam.owner("10.244.1.4") == "a"
    assert ipam.allocate("c") == "10.244.1.5"         # continues after the adopted one


def test_persistence_round_trip(tmp_path: Path) -> None:
    ipam = PodIPAllocator("10.244.0.0/24")
    for i in range(3):
        ipam.allocate(f"uid{i}")
    ipam.release("uid1")
    path = tmp_path / "ipam" / "node-1.json"
    ipam.save(path)
    back = PodIPAllocator.load(path, "10.244.0.0/24")
    assert back.get("uid0") == "10.244.0.2" and back.get("uid2") == "10.244.0.4"
    assert back.get("uid1") is None
    assert back.allocate("new") == "10.244.0.5"       # never reuses right away
    assert len(PodIPAllocator.load(path, "10.244.1.0/24")) == 0   # other range: ignored
    assert len(PodIPAllocator.load(tmp_path / "missing.json", "10.244.0.0/24")) == 0


def test_gateway_and_bridge_addresses() -> None:
    assert pod_gateway("10.244.3.0/24") == "10.244.3.1"
    assert host_bridge_ip(replace(Config(), node_network="192.168.50.0/24")) == "192.168.50.1"
