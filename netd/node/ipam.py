"""Addressing of nodes and pods (pure): which pod CIDR and node IP each configured
node gets, and host-local IPAM over one node's pod CIDR.

The allocator behaves like the CNI host-local plugin: the network address and the
gateway (.1) are never handed out, allocation continues after the last address given
(so a recreated pod gets a new IP, as in Kubernetes), and a restarted daemon first
`reserve`s what running pods hold so no address is ever handed out twice. Persistence
is a small JSON document (`to_json`/`from_json`, `save`/`load`) the agent keeps in its
state directory; the pods' status.podIP in the store is the other source on restart.
"""
from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from typing import Any

from netd.config import Config, ConfigError


def node_pod_cidr(config: Config, index: int) -> str:
    """The index-th /node_cidr_size block of pod_cidr (node-ipam's range allocator
    hands them out in order too)."""
    net = ipaddress.IPv4Network(config.pod_cidr)
    count = 2 ** (config.node_cidr_size - net.prefixlen)
    if index >= count:
        raise ConfigError(f"nodes: pod_cidr {config.pod_cidr} has room for only {count} "
                          f"nodes of /{config.node_cidr_size}")
    size = 2 ** (32 - config.node_cidr_size)
    base = ipaddress.IPv4Address(int(net.network_address) + index * size)
    return f"{base}/{config.node_cidr_size}"


def node_internal_ip(config: Config, index: int) -> str:
    """Node i is .(i+2) of the node network (the host bridge is .1)."""
    net = ipaddress.IPv4Network(config.node_network)
    if index + 2 >= net.num_addresses - 1:
        raise ConfigError(f"nodes: node_network {config.node_network} is too small")
    return str(net.network_address + index + 2)


def host_bridge_ip(config: Config) -> str:
    """The host's address on the node network (first host address)."""
    return str(ipaddress.IPv4Network(config.node_network).network_address + 1)


def pod_gateway(pod_cidr: str) -> str:
    """The first address of a node's pod CIDR: what the CNI ptp plugin puts on the
    node side of every pod's veth and what pods route through."""
    return str(ipaddress.IPv4Network(pod_cidr).network_address + 1)


class PodIPAllocator:
    """host-local IPAM over one node CIDR: addresses from .2 up to the last before
    broadcast, handed out round-robin after the last one given."""

    def __init__(self, cidr: str) -> None:
        self.network = ipaddress.IPv4Network(cidr)
        base = int(self.network.network_address)
        self._first = base + 2                       # .0 network, .1 gateway
        self._last = base + self.network.num_addresses - 2   # before broadcast
        self._owner_of: dict[int, str] = {}
        self._ip_of: dict[str, int] = {}
        self._cursor = self._last                    # the next allocation starts at _first

    @property
    def size(self) -> int:
        return max(0, self._last - self._first + 1)

    def get(self, owner: str) -> str | None:
        ip = self._ip_of.get(owner)
        return None if ip is None else str(ipaddress.IPv4Address(ip))

    def owner(self, ip: str) -> str | None:
        try:
            return self._owner_of.get(int(ipaddress.IPv4Address(ip)))
        except ValueError:
            return None

    def reserve(self, owner: str, ip: str) -> bool:
        """Record an address already in use (restart); False if it cannot be owner's."""
        try:
            value = int(ipaddress.IPv4Address(ip))
        except ValueError:
            return False
        if not self._first <= value <= self._last:
            return False
        holder = self._owner_of.get(value)
        if holder is not None:
            return holder == owner
        self.release(owner)
        self._owner_of[value] = owner
        self._ip_of[owner] = value
        self._cursor = value   # continue after the newest adopted address
        return True

    def allocate(self, owner: str) -> str | None:
        """The owner's address, a new one, or None when the range is exhausted."""
        have = self.get(owner)
        if have is not None:
            return have
        size = self.size
        if size == 0:
            return None
        for step in range(1, size + 1):
            value = self._first + (self._cursor - self._first + step) % size
            if value not in self._owner_of:
                self._owner_of[value] = owner
                self._ip_of[owner] = value
                self._cursor = value
                return str(ipaddress.IPv4Address(value))
        return None

    def release(self, owner: str) -> None:
        value = self._ip_of.pop(owner, None)
        if value is not None:
            self._owner_of.pop(value, None)

    def __len__(self) -> int:
        return len(self._ip_of)

    def range_text(self) -> str:
        return f"{ipaddress.IPv4Address(self._first)}-{ipaddress.IPv4Address(self._last)}"

    # ---- persistence -------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {"cidr": str(self.network),
                "last": str(ipaddress.IPv4Address(self._cursor)),
                "allocations": {str(ipaddress.IPv4Address(v)): o
                                for v, o in sorted(self._owner_of.items())}}

    @classmethod
    def from_json(cls, data: dict[str, Any], cidr: str) -> PodIPAllocator:
        """Rebuild for `cidr`; a document for another CIDR (the node's range changed)
        is ignored, entries outside the range are dropped."""
        ipam = cls(cidr)
        if data.get("cidr") != str(ipam.network):
            return ipam
        allocations = data.get("allocations") or {}
        if isinstance(allocations, dict):
            for ip, owner in allocations.items():
                if isinstance(owner, str):
                    ipam.reserve(owner, str(ip))
        try:
            last = int(ipaddress.IPv4Address(str(data.get("last"))))
        except ValueError:
            return ipam
        if ipam._first <= last <= ipam._last:
            ipam._cursor = last
        return ipam

    def save(self, path: str | Path) -> None:
        """Atomically replace `path` (write + rename, so a crash leaves the old one)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1, sort_keys=True))
        os.replace(tmp, target)

    @classmethod
    def load(cls, path: str | Path, cidr: str) -> PodIPAllocator:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            return cls(cidr)
        return cls.from_json(data if isinstance(data, dict) else {}, cidr)
