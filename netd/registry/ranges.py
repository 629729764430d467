"""Bitmap range allocators for Service IPs and node ports (kube-apiserver's
pkg/registry/core/service/ipallocator and portallocator, with the static band of
KEP-3070/KEP-3668): pure, no I/O; the admission plugin in allocators.py drives them.

- An IPv4 range excludes the network and broadcast addresses (IPv6: only the
  subnet-router anycast one; its bitmap is capped at 65536 addresses, as upstream).
- The lower part of the range, the *static band* of min(max(16, size/16), 256)
  addresses (min(max(16, size/32), 128) node ports), is kept for explicitly requested
  values: random picks come from the upper band and fall back to the lower band only
  when the upper one is full.
- Error texts are the allocators' own (`provided IP is already allocated`, ...), which
  the registry wraps into field errors.
"""
from __future__ import annotations

import ipaddress
import random
from typing import Iterable


class AllocationError(Exception):
    """A requested value cannot be had; str() is kube-apiserver's allocator message."""


class RangeFull(AllocationError):
    def __init__(self) -> None:
        super().__init__("range is full")


class _Bitmap:
    """Offsets 0..size-1 of a range; random picks prefer [offset, size) (the upper band)."""

    def __init__(self, size: int, offset: int, rng: random.Random) -> None:
        self.size = max(0, size)
        self.offset = min(offset, self.size)
        self.owner: dict[int, str] = {}
        self._rng = rng

    def take_next(self) -> int:
        if len(self.owner) >= self.size:
            raise RangeFull()
        for lo, hi in ((self.offset, self.size), (0, self.offset)):
            span = hi - lo
            if span <= 0:
                continue
            start = self._rng.randrange(span)
            for i in range(span):
                at = lo + (start + i) % span
                if at not in self.owner:
                    return at
        raise RangeFull()


def _band(size: int, lo: int, hi: int, step: int) -> int:
    """calculateRangeOffset: min(max(lo, size/step), hi), 0 for tiny ranges."""
    if size <= lo:
        return 0
    return min(max(lo, size // step), hi)


class ClusterIPAllocator:
    """Service IPs of one IPv4 CIDR. Owners are "ns/name" keys of Services."""

    def __init__(self, service_cidr: str, reserved: Iterable[str] = (), *,
                 rng: random.Random | None = None) -> None:
        self.network = ipaddress.ip_network(service_cidr, strict=False)
        self.cidr = str(self.network)
        self.family = "IPv4" if self.network.version == 4 else "IPv6"
        cidr_size = self.network.num_addresses
        # IPv4 loses the network and broadcast addresses; IPv6 only the subnet-router
        # anycast one, and a bitmap is capped at 65536 as upstream does.
        size = cidr_size - 2 if self.network.version == 4 else min(cidr_size, 65536) - 1
        self._base = int(self.network.network_address) + 1
        self._bits = _Bitmap(size, _band(cidr_size, 16, 256, 16), rng or random.Random())
        self.reserved = {str(ipaddress.ip_address(ip)) for ip in reserved}

    @property
    def static_band(self) -> int:
        return self._bits.offset

    @property
    def used(self) -> int:
        return len(self._bits.owner)

    def _offset(self, ip: str) -> int:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            raise AllocationError(f"failed to parse IP {ip}") from None
        at = int(addr) - self._base
        if addr.version != self.network.version or not 0 <= at < self._bits.size:
            raise AllocationError(f"the provided IP ({ip}) is not in the valid range. "
                                  f"The range of valid IPs is {self.cidr}")
        return at

    def allocate(self, ip: str, owner: str = "") -> None:
        at = self._offset(ip)
        if at in self._bits.owner or str(ipaddress.ip_address(ip)) in self.reserved:
            raise AllocationError("provided IP is already allocated")
        self._bits.owner[at] = owner

    def allocate_next(self, owner: str = "") -> str:
        while True:
            at = self._bits.take_next()
            ip = str(ipaddress.ip_address(self._base + at))
            self._bits.owner[at] = owner
            if ip not in self.reserved:
                return ip
            # A reserved address is never handed out: keep it marked and pick again.
            self._bits.owner[at] = ""

    def release(self, ip: str) -> None:
        try:
            self._bits.owner.pop(self._offset(ip), None)
        except AllocationError:
            pass

    def owner_of(self, ip: str) -> str | None:
        try:
            return self._bits.owner.get(self._offset(ip))
        except AllocationError:
            return None

    def contains(self, ip: str) -> bool:
        try:
            self._offset(ip)
            return True
        except AllocationError:
            return False


class NodePortAllocator:
    """Node ports of a "LOW-HIGH" range (or a (low, high) tuple)."""

    def __init__(self, port_range: str | tuple[int, int], *,
                 rng: random.Random | None = None) -> None:
        if isinstance(port_range, str):
            lo_s, _, hi_s = port_range.partition("-")
            lo, hi = int(lo_s), int(hi_s or lo_s)
        else:
            lo, hi = port_range
        self.low, self.high = lo, hi
        self.range = f"{lo}-{hi}"
        size = hi - lo + 1
        self._bits = _Bitmap(size, _band(size, 16, 128, 32), rng or random.Random())

    @property
    def static_band(self) -> int:
        return self._bits.offset

    @property
    def used(self) -> int:
        return len(self._bits.owner)

    def allocate(self, port: int, owner: str = "") -> None:
        if not self.low <= port <= self.high:
            raise AllocationError("provided port is not in the valid range. The range of "
                                  f"valid ports is {self.range}")
        if port - self.low in self._bits.owner:
            raise AllocationError("provided port is already allocated")
        self._bits.owner[port - self.low] = owner

    def allocate_next(self, owner: str = "") -> int:
        at = self._bits.take_next()
        self._bits.owner[at] = owner
        return self.low + at

    def release(self, port: int) -> None:
        self._bits.owner.pop(port - self.low, None)

    def owner_of(self, port: int) -> str | None:
        return self._bits.owner.get(port - self.low)
