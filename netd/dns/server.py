"""The DNS server: asyncio UDP and TCP protocols over one `DnsServer` state.

Fast path (UDP, every cached answer): check the header bytes, find the end of the
question by walking its labels, look the lowercased question up in the wire cache and
send a copy of the stored bytes with the client's ID, RD/CD bits and question spelling
patched in. Nothing is parsed into objects and nothing else is allocated.

Slow path (cache miss, anything unusual): netd.dns.wire parses the query defensively,
netd.dns.resolver answers from the current immutable index, dnslib encodes, and the
encoded answer is stored for the next identical question. Names outside the cluster's
zones go to the forwarder (netd.dns.forward), on a task so the loop never waits.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import struct
import time
from typing import Any, Callable

from dnslib import EDNS0, RR, DNSHeader, DNSLabel, DNSQuestion, DNSRecord

from netd.dns import metrics as metrics_mod
from netd.dns import udpbatch, wire
from netd.dns.wirecache import Entry, WireCache, cacheable_type, soa_offset

log = logging.getLogger("netd.dns.server")
qlog = logging.getLogger("netd.dns.query")

Resolve = Callable[[Any, str, int], Any]
Tagger = Callable[[str, Any], "tuple[str, ...] | None"]

TCP_IDLE_TIMEOUT = 10.0
MAX_INFLIGHT_FORWARDS = 1024
_perf = time.perf_counter


def _default_resolve() -> Resolve:
    from netd.dns.resolver import resolve
    return resolve


class DnsServer:
    """State shared by every listener: the current index, the wire cache, the
    forwarder. Call `set_index` from the indexer's callback."""

    def __init__(self, *, resolve: Resolve | None = None, forwarder: Any = None,
                 metrics: metrics_mod.Metrics | None = None, query_log: bool = False,
                 tagger: Tagger | None = None) -> None:
        self.resolve = resolve or _default_resolve()
        self.forwarder = forwarder
        self.metrics = metrics or metrics_mod.METRICS
        self.query_log = query_log
        self.tagger = tagger
        self.index: Any = None
        self.cache = WireCache()
        self._udp_buffers: Any = None     # udpbatch.Buffers, shared by the listeners
        self._tasks: set[asyncio.Task[None]] = set()

    # ---- index -----------------------------------------------------------------------

    def set_index(self, index: Any) -> None:
        """Swap in a new index and drop exactly the cached answers it changes: those
        tagged with a name `index.changed_names(previous)` reports (every answer when
        it cannot tell: the first index, a new configuration). Under record churn the
        rest of the cache stays hot; a full flush would send every query down the
        ~150 µs slow path after each change."""
        prev = self.index
        changed: set[str] | None = None
        if prev is not None:
            diff = getattr(index, "changed_names", None)
            changed = diff(prev) if diff is not None else None
        self.index = index
        self.cache.serial = (int(getattr(index, "serial", 0)) & 0xFFFFFFFF).to_bytes(4, "big")
        self.cache.invalidate(changed)

    # ---- the slow path ---------------------------------------------------------------

    def handle(self, data: bytes, stats: metrics_mod.Stats, limit: int,
               send: Callable[[bytes], None]) -> None:
        """Answer one message; `send` gets the response (not called for drops).
        limit: the transport's maximum (512 / EDNS size for UDP, 65535 for TCP)."""
        t0 = _perf()
        if len(data) < 12 or data[2] & 0x80:
            return      # not even a header, or a response: answering could loop
        q: wire.Query | None = None
        slot = metrics_mod.OTHER_SLOT
        try:
            q = wire.parse_query(data)
        except wire.FormatError:
            resp = wire.error_response(data, wire.FORMERR, None)
        else:
            slot = metrics_mod.type_slot(q.qtype)
            answered = self._answer(data, q, stats, limit, send, t0)
            if answered is None:
                return   # forwarded: the task sends and counts
            resp = answered
        self._log(q, resp, stats)
        stats.observe(slot, resp[3] & 0xF, _perf() - t0)
        send(resp)

    def _answer(self, data: bytes, q: wire.Query, stats: metrics_mod.Stats, limit: int,
                send: Callable[[bytes], None], t0: float) -> bytes | None:
        if q.opcode != 0:
            return wire.error_response(data, wire.NOTIMP, q)
        if q.edns and q.edns_version != 0:
            return wire.error_response(data, wire.BADVERS, q)
        if q.qclass != wire.CLASS_IN or q.qtype in (wire.QTYPE_AXFR, wire.QTYPE_IXFR):
            # Zone transfers are not offered (CoreDNS' kubernetes plugin only with
            # `transfer`); other classes are not served.
            return wire.error_response(data, wire.REFUSED, q)
        if self.index is None:
            return wire.error_response(data, wire.SERVFAIL, q)   # before the first sync
        index = self.index
        ans = self.resolve(index, q.qname, q.qtype)
        if ans is None or getattr(ans, "chase", None):
            if self.forwarder is None:
                if ans is None:
                    return wire.error_response(data, wire.REFUSED, q)
            else:
                self._spawn(self._forward(data, q, ans, stats, limit, send, t0))
                return None
        self.metrics.cache_misses += 1
        full = encode(q, ans)
        entry = Entry(full, ans.rcode, metrics_mod.type_slot(q.qtype),
                      ans.rcode == wire.NXDOMAIN or (ans.rcode == 0 and not ans.answer),
                      self.tagger(q.qname.lower(), ans) if self.tagger
                      else answer_names(q.qname, ans), _soa_at(full, ans))
        if cacheable_type(q.qtype) and not getattr(ans, "chase", None) \
                and index is self.index:
            self.cache.put(q.edns, q.do, q.qname_wire.lower() + bytes(
                (q.qtype >> 8, q.qtype & 0xFF, 0, 1)), entry)
        out = fit(entry, q, ans, limit) if len(full) > limit else full
        return patch(out, data, _qend(q))

    def _spawn(self, coro: Any) -> None:
        if len(self._tasks) >= MAX_INFLIGHT_FORWARDS:
            coro.close()
            return      # shed load: the client retries, the upstream is not flooded
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _forward(self, data: bytes, q: wire.Query, ans: Any, stats: metrics_mod.Stats,
                       limit: int, send: Callable[[bytes], None], t0: float) -> None:
        try:
            if ans is None:
                resp = await self.forwarder.forward(data, q, tcp=limit >= 65535)
            else:
                resp = await self._chase(data, q, ans)
        except Exception:  # noqa: BLE001 - a bug here must not kill the listener
            log.exception("forwarding %s failed", q.qname)
            resp = wire.error_response(data, wire.SERVFAIL, q)
        if len(resp) > limit:
            resp = wire.truncated_response(resp)
        self._log(q, resp, stats)
        stats.observe(metrics_mod.type_slot(q.qtype), resp[3] & 0xF, _perf() - t0)
        send(resp)

    async def _chase(self, data: bytes, q: wire.Query, ans: Any) -> bytes:
        """An ExternalName whose target is outside the zone: the CNAME, then whatever
        the upstream answers for the target (as a recursive resolver would)."""
        extra: list[RR] = []
        rcode = ans.rcode
        try:
            resp = await self.forwarder.lookup(ans.chase, q.qtype)
            up = DNSRecord.parse(resp)
            rcode = up.header.rcode
            extra = list(up.rr)
        except Exception:  # noqa: BLE001 - an upstream's malformed answer: keep the CNAME
            log.debug("chasing %s failed", ans.chase, exc_info=True)
        merged = dataclasses.replace(ans, rcode=rcode, answer=list(ans.answer) + extra)
        return patch(encode(q, merged), data, _qend(q))

    def _log(self, q: wire.Query | None, resp: bytes, stats: metrics_mod.Stats) -> None:
        if self.query_log:
            rcode = metrics_mod.RCODE_NAMES.get(resp[3] & 0xF, str(resp[3] & 0xF))
            what = f"{q.qtype} {q.qclass} {q.qname}" if q else "-"
            qlog.info('"%s %s" %s %d', what, stats.proto, rcode, len(resp))


def answer_names(qname: str, ans: Any) -> tuple[str, ...]:
    """The index names an answer was derived from, as ZoneIndex.changed_names spells
    them: the question, and each in-zone CNAME target the resolver followed (the
    answer for `alias` changes when its target's records do)."""
    low = qname.lower()
    names = [low[:-1] if low.endswith(".") else low]
    for rr in ans.answer:
        if rr.rtype == _CNAME:
            target = str(rr.rdata.label).lower()
            names.append(target[:-1] if target.endswith(".") else target)
    return tuple(names)


def _soa_at(full: bytes, ans: Any) -> int:
    """Offset of the SOA serial in `full` (0: none), for patching the current serial
    into cached copies (see wirecache)."""
    for rr in (*ans.authority, *ans.answer):
        if rr.rtype == _SOA:
            times = rr.rdata.times
            return soa_offset(full, times[0], _SOA_TAIL.pack(*times[1:]))
    return 0


_CNAME, _SOA = 5, 6
_SOA_TAIL = struct.Struct("!IIII")


def _qend(q: wire.Query) -> int:
    """End of the question name to copy from the query into the response (for the
    client's spelling); 12 (nothing) when the query compressed its question."""
    return 12 + len(q.qname_wire) if q.inline else 12


# ---- encoding -----------------------------------------------------------------------------

def encode(q: wire.Query, ans: Any, n_answers: int | None = None, tc: bool = False) -> bytes:
    """The response to `q` (ID 0, patched per client) with dnslib; `n_answers` keeps
    only that many answer records and no authority/additional (truncation)."""
    labels = []
    pos = 0
    w = q.qname_wire
    while w[pos]:
        labels.append(w[pos + 1:pos + 1 + w[pos]])
        pos += 1 + w[pos]
    header = DNSHeader(id=0, qr=1, aa=int(bool(ans.authoritative)), tc=int(tc), rd=int(q.rd),
                       ra=0, rcode=ans.rcode & 0xF)
    rec = DNSRecord(header, q=DNSQuestion(DNSLabel(labels), q.qtype, q.qclass))
    if n_answers is None:
        rec.rr = list(ans.answer)
        rec.auth = list(ans.authority)
        rec.ar = list(ans.additional)
    else:
        rec.rr = list(ans.answer[:n_answers])
    if q.edns:
        rec.ar.append(EDNS0(udp_len=wire.ADVERTISED_UDP, flags="do" if q.do else ""))
    return rec.pack()


def fit(entry: Entry, q: wire.Query, ans: Any, limit: int) -> bytes:
    """The response truncated to `limit` bytes with TC set, keeping as many answer
    records as fit (as miekg/dns' Msg.Truncate, which CoreDNS uses), memoised."""
    cached = entry.trunc.get(limit)
    if cached is not None:
        return cached
    lo, hi = 0, len(ans.answer)
    best = encode(q, ans, 0, tc=True)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        out = encode(q, ans, mid, tc=True)
        if len(out) <= limit:
            lo, best = mid, out
        else:
            hi = mid - 1
    entry.trunc[limit] = best
    return best


def patched(resp: bytes, data: bytes, qend: int) -> bytearray:
    """The stored response with this query's ID, RD and CD bits and question case."""
    out = bytearray(resp)
    out[0] = data[0]
    out[1] = data[1]
    out[2] = (out[2] & 0xFE) | (data[2] & 0x01)
    out[3] = (out[3] & 0xEF) | (data[3] & 0x10)
    out[12:qend] = data[12:qend]
    return out


def patch(resp: bytes, data: bytes, qend: int) -> bytes:
    return bytes(patched(resp, data, qend))


# ---- transports ------------------------------------------------------------------------------

class UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer, stats: metrics_mod.Stats) -> None:
        self.server = server
        self.stats = stats
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def error_received(self, exc: Exception) -> None:
        # ICMP errors for earlier replies (client went away): nothing to do.
        pass

    def datagram_received(self, data: bytes, addr: Any) -> None:
        t0 = _perf()
        server = self.server
        found = None if server.query_log else udpbatch.probe(server.cache, data)
        if found is not None:
            entry, qend, limit = found
            resp = entry.full
            soa = entry.soa
            if len(resp) > limit:
                resp = entry.trunc.get(limit)  # type: ignore[assignment]
                if resp is None or soa:
                    server.handle(data, self.stats, limit, self._sender(addr))
                    return
            out = patched(resp, data, qend)
            if soa:
                out[soa:soa + 4] = server.cache.serial
            self.transport.sendto(out, addr)  # type: ignore[union-attr]
            server.metrics.cache_hits["denial" if entry.denial else "success"] += 1
            self.stats.observe(entry.slot, entry.rcode, _perf() - t0)
            return
        server.handle(data, self.stats, udpbatch.udp_limit(data), self._sender(addr))

    def _sender(self, addr: Any) -> Callable[[bytes], None]:
        def send(resp: bytes) -> None:
            if self.transport is not None and not self.transport.is_closing():
                self.transport.sendto(resp, addr)
        return send


class TcpProtocol(asyncio.Protocol):
    """DNS over TCP (RFC 7766): 2-byte length prefix, pipelined queries, answers in
    completion order, idle connections closed after TCP_IDLE_TIMEOUT."""

    def __init__(self, server: DnsServer, stats: metrics_mod.Stats) -> None:
        self.server = server
        self.stats = stats
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self._idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle is not None:
            self._idle.cancel()
        self.transport = None

    def _arm(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        self._idle = asyncio.get_running_loop().call_later(TCP_IDLE_TIMEOUT, self._close)

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._arm()
        while len(self.buf) >= 2:
            size = (self.buf[0] << 8) | self.buf[1]
            if len(self.buf) < 2 + size:
                break
            msg = bytes(self.buf[2:2 + size])
            del self.buf[:2 + size]
            if size < 12:
                self._close()   # no header to answer to: RFC 7766 lets us hang up
                return
            self.server.handle(msg, self.stats, 65535, self._send)

    def _send(self, resp: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(len(resp).to_bytes(2, "big") + resp)


async def serve_udp(server: DnsServer, sock: Any, name: str, *,
                    batched: bool | None = None) -> Any:
    """Serve DNS on a bound UDP socket. Batched (recvmmsg/sendmmsg, netd.dns.udpbatch)
    where the platform has it, else the per-datagram asyncio protocol; `batched`
    forces one (tests run both). Returns the listener; `close()` stops it."""
    loop = asyncio.get_running_loop()
    fam = "2" if sock.family == 10 else "1"
    stats = server.metrics.listener(name, "udp", fam)
    if batched is None:
        batched = udpbatch.available()
    if batched:
        return udpbatch.BatchedUdp(server, sock, stats, loop)
    transport, _ = await loop.create_datagram_endpoint(lambda: UdpProtocol(server, stats),
                                                       sock=sock)
    return transport


async def serve_tcp(server: DnsServer, sock: Any, name: str) -> asyncio.AbstractServer:
    loop = asyncio.get_running_loop()
    fam = "2" if sock.family == 10 else "1"
    stats = server.metrics.listener(name, "tcp", fam)
    return await loop.create_server(lambda: TcpProtocol(server, stats), sock=sock)
