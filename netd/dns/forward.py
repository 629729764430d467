"""Forwarding of names outside the cluster's zones to upstream resolvers.

- Upstreams (config dns.upstreams): "ADDR", "ADDR:PORT", "[V6]:PORT", "resolv.conf"
  (the host's /etc/resolv.conf nameservers, read once at start), or "none", which
  answers REFUSED (what CoreDNS answers for zones it does not serve).
- UDP first; a truncated (TC) answer is asked again over TCP to the same upstream.
- Every attempt has a timeout and the whole query a deadline: an upstream that does
  not answer gives SERVFAIL within `deadline` seconds, never a hang.
- A small cache (CoreDNS' cache plugin semantics): NOERROR answers for their smallest
  TTL, NXDOMAIN/NODATA for the SOA's min(TTL, MINIMUM) (RFC 2308), both capped; TTLs are
  counted down in the bytes served from the cache.
Sockets are opened in the daemon's own namespace: upstreams are the host's resolvers.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import struct
import time
from dataclasses import dataclass
from typing import Any, Callable

from netd.dns import wire
from netd.dns.metrics import Metrics

log = logging.getLogger("netd.dns.forward")

MAX_POSITIVE_TTL = 3600
MAX_NEGATIVE_TTL = 1800
QTYPE_SOA = 6


def parse_upstreams(spec: list[str], resolv_conf: str = "/etc/resolv.conf",
                    exclude: set[str] | None = None) -> list[tuple[str, int]]:
    """Addresses to forward to; [] means "none" (refuse)."""
    out: list[tuple[str, int]] = []
    for item in spec:
        item = item.strip()
        if item == "none":
            return []
        if item == "resolv.conf":
            out += _from_resolv_conf(resolv_conf)
            continue
        out.append(_addr(item))
    skip = exclude or set()
    # A resolv.conf naming the cluster DNS IP itself would make queries loop.
    return [a for a in out if a[0] not in skip]


def _addr(item: str) -> tuple[str, int]:
    if item.startswith("["):
        host, _, rest = item[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else 53
    elif item.count(":") == 1:
        host, _, p = item.partition(":")
        port = int(p)
    else:
        host, port = item, 53
    ipaddress.ip_address(host)   # ValueError for a name: upstreams are addresses
    if not 0 < port < 65536:
        raise ValueError(f"bad port in upstream {item!r}")
    return host, port


def _from_resolv_conf(path: str) -> list[tuple[str, int]]:
    out = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    try:
                        out.append(_addr(parts[1].split("%")[0]))
                    except ValueError:
                        continue
    except OSError:
        log.warning("cannot read %s: no upstream resolvers", path)
    return out


@dataclass
class _Cached:
    data: bytes             # response, ID 0
    stored: float
    expires: float
    ttl_offsets: list[tuple[int, int]]   # (offset of a TTL field, its stored value)


class _UdpOnce(asyncio.DatagramProtocol):
    def __init__(self, ident: int, question: bytes) -> None:
        self.ident = ident
        self.question = question
        self.done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        # Only the answer to our question from our upstream: anything else (late
        # answers, spoofing attempts) is ignored.
        if not self.done.done() and _matches(data, self.ident, self.question):
            self.done.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(exc)


def _question(data: bytes) -> bytes:
    _, end = wire.read_name(data, 12)
    return data[12:end + 4].lower()


def _matches(data: bytes, ident: int, question: bytes) -> bool:
    if len(data) < 12 or (data[0] << 8 | data[1]) != ident or not data[2] & 0x80:
        return False
    try:
        return _question(data) == question
    except wire.FormatError:
        return False


class Forwarder:
    def __init__(self, upstreams: list[tuple[str, int]], *, timeout: float = 2.0,
                 deadline: float = 4.0, cache_size: int = 10_000,
                 metrics: Metrics | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.upstreams = list(upstreams)
        self.timeout = timeout
        self.deadline = deadline
        self.cache_size = cache_size
        self.metrics = metrics
        self.clock = clock
        self._cache: dict[bytes, _Cached] = {}

    @property
    def refusing(self) -> bool:
        return not self.upstreams

    async def forward(self, data: bytes, q: wire.Query, tcp: bool = False) -> bytes:
        """The upstream's answer to the client's message `data`, with the client's ID."""
        if not self.upstreams:
            return wire.error_response(data, wire.REFUSED, q)
        key = q.qname_wire.lower() + struct.pack("!HHBB", q.qtype, q.qclass, q.edns, q.do)
        hit = self._get(key)
        if hit is None:
            try:
                resp = await asyncio.wait_for(self._exchange(data, tcp), self.deadline)
            except (asyncio.TimeoutError, OSError, wire.FormatError):
                resp = None
            if resp is None:
                return wire.error_response(data, wire.SERVFAIL, q)
            self._put(key, resp)
            hit = resp
        out = bytearray(hit)
        out[0:2] = data[0:2]
        if q.inline and len(out) >= 12 + len(q.qname_wire):
            out[12:12 + len(q.qname_wire)] = data[12:12 + len(q.qname_wire)]
        return bytes(out)

    async def lookup(self, name: str, qtype: int) -> bytes:
        """Resolve `name` upstream (for ExternalName targets outside the zone)."""
        from dnslib import DNSRecord
        data = DNSRecord.question(name, "A").pack()
        data = data[:-4] + struct.pack("!HH", qtype, wire.CLASS_IN)
        return await self.forward(data, wire.parse_query(data))

    # ---- exchange --------------------------------------------------------------------

    async def _exchange(self, data: bytes, tcp: bool) -> bytes | None:
        question = _question(data)
        for host, port in self.upstreams:
            to = f"{host}:{port}"
            ident = random.getrandbits(16)
            msg = ident.to_bytes(2, "big") + data[2:]
            try:
                if tcp:
                    resp = await self._tcp(host, port, msg, ident, question)
                else:
                    resp = await self._udp(host, port, msg, ident, question)
                    if resp[2] & 0x02:   # TC: ask again over TCP
                        resp = await self._tcp(host, port, msg, ident, question)
            except (asyncio.TimeoutError, OSError, wire.FormatError) as exc:
                log.debug("upstream %s: %s", to, exc)
                if self.metrics:
                    self.metrics.forwarded(to, None)
                continue
            if self.metrics:
                self.metrics.forwarded(to, resp[3] & 0xF)
            rcode = resp[3] & 0xF
            if rcode in (wire.SERVFAIL, wire.REFUSED) and (host, port) != self.upstreams[-1]:
                continue    # try the next upstream, as CoreDNS' forward does
            return b"\x00\x00" + resp[2:]
        return None

    async def _udp(self, host: str, port: int, msg: bytes, ident: int,
                   question: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(
            lambda: _UdpOnce(ident, question), remote_addr=(host, port))
        try:
            transport.sendto(msg)
            return await asyncio.wait_for(proto.done, self.timeout)
        finally:
            transport.close()

    async def _tcp(self, host: str, port: int, msg: bytes, ident: int,
                   question: bytes) -> bytes:
        async def go() -> bytes:
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(len(msg).to_bytes(2, "big") + msg)
                await writer.drain()
                while True:
                    size = int.from_bytes(await reader.readexactly(2), "big")
                    resp = await reader.readexactly(size)
                    if _matches(resp, ident, question):
                        return resp
            finally:
                writer.close()
        try:
            return await asyncio.wait_for(go(), self.timeout)
        except asyncio.IncompleteReadError as exc:
            raise OSError("upstream closed the connection") from exc

    # ---- cache ---------------------------------------------------------------------------

    def _get(self, key: bytes) -> bytes | None:
        c = self._cache.get(key)
        if c is None:
            return None
        now = self.clock()
        if now >= c.expires:
            del self._cache[key]
            return None
        elapsed = int(now - c.stored)
        if not elapsed:
            return c.data
        out = bytearray(c.data)
        for off, ttl in c.ttl_offsets:
            struct.pack_into("!I", out, off, max(0, ttl - elapsed))
        return bytes(out)

    def _put(self, key: bytes, resp: bytes) -> None:
        try:
            ttl, offsets = cache_ttl(resp)
        except wire.FormatError:
            return
        if ttl <= 0:
            return
        if len(self._cache) >= self.cache_size:
            self._cache.pop(next(iter(self._cache)))     # oldest first
        now = self.clock()
        self._cache[key] = _Cached(resp, now, now + ttl, offsets)


def cache_ttl(resp: bytes) -> tuple[int, list[tuple[int, int]]]:
    """(seconds the response may be cached, TTL fields to count down)."""
    rcode = resp[3] & 0xF
    if rcode not in (wire.NOERROR, wire.NXDOMAIN) or resp[2] & 0x02:
        return 0, []
    _, _, _, qd, an, ns, ar = struct.unpack_from("!HBBHHHH", resp, 0)
    pos = 12
    for _ in range(qd):
        _, pos = wire.read_name(resp, pos)
        pos += 4
    offsets: list[tuple[int, int]] = []
    answer_ttls: list[int] = []
    negative: list[int] = []
    for i in range(an + ns + ar):
        _, pos = wire.read_name(resp, pos)
        if pos + 10 > len(resp):
            raise wire.FormatError("truncated record")
        rtype, _cls, ttl, rdlen = struct.unpack_from("!HHIH", resp, pos)
        rdata_end = pos + 10 + rdlen
        if rtype != wire.QTYPE_OPT:
            offsets.append((pos + 4, ttl))
            if i < an:
                answer_ttls.append(ttl)
            elif i < an + ns and rtype == QTYPE_SOA and rdlen >= 20:
                minimum = struct.unpack_from("!I", resp, rdata_end - 4)[0]
                negative.append(min(ttl, minimum))
        pos = rdata_end
    if rcode == wire.NOERROR and answer_ttls:
        return min(min(answer_ttls), MAX_POSITIVE_TTL), offsets
    if negative:
        return min(negative[0], MAX_NEGATIVE_TTL), offsets
    return 0, []
