"""Batched UDP for the DNS listeners: recvmmsg(2) / sendmmsg(2) through ctypes.

Why: with pre-encoded answers the Python work per cached query is a few hundred
nanoseconds; what dominated was the machinery around it — one event-loop callback,
one recvfrom and one sendto system call per datagram. Here the socket is registered
with `loop.add_reader`; each wake-up drains up to BATCH datagrams with one recvmmsg,
answers every cached question straight into a preallocated send slot (ID, RD/CD bits,
question spelling and SOA serial patched in place) and sends all of them with one
sendmmsg. Anything unusual — a cache miss, forwarding, query logging, truncation that
is not memoised, garbage — goes through `DnsServer.handle` exactly as the per-datagram
protocol sends it, with a plain sendto for the reply.

Metrics stay exact without per-packet objects: per batch, counts by type slot and rcode
are kept in two small lists and folded into the listener's `Stats` once; every query
of a batch is observed with the batch's elapsed time (receive → sendmmsg), which is
the time it really spent in the server.

Buffers (arrays of mmsghdr/iovec/sockaddr and the datagram slots) belong to the
`DnsServer` and are shared by all its listeners: a drain runs to completion without
yielding, so two listeners never use them at once.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import socket
import sys
import time
from typing import Any, Callable

from netd.dns import metrics as metrics_mod
from netd.dns import wire
from netd.dns.wirecache import WireCache

log = logging.getLogger("netd.dns.server")

BATCH = 32              # datagrams per recvmmsg / sendmmsg
MAX_ROUNDS = 8          # batches per wake-up before yielding to other tasks
RECV_SLOT = 65536       # any UDP payload fits (a query is never cut short: no MSG_TRUNC)
SEND_SLOT = 4096        # larger cached answers (big EDNS sizes) go out with sendto
SOCKADDR_SIZE = 28      # sockaddr_in6; sockaddr_in (16) fits
MSG_DONTWAIT = 0x40
_perf = time.perf_counter


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [("msg_name", ctypes.c_void_p), ("msg_namelen", ctypes.c_uint32),
                ("msg_iov", ctypes.c_void_p), ("msg_iovlen", ctypes.c_size_t),
                ("msg_control", ctypes.c_void_p), ("msg_controllen", ctypes.c_size_t),
                ("msg_flags", ctypes.c_int)]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _Msghdr), ("msg_len", ctypes.c_uint32)]


def _load() -> tuple[Any, Any] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        # PyDLL: the GIL stays held. Both calls are non-blocking (MSG_DONTWAIT), and
        # releasing and re-taking the GIL twice per batch costs more than the call.
        libc = ctypes.PyDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        recv, send = libc.recvmmsg, libc.sendmmsg
    except (OSError, AttributeError):
        return None
    recv.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int,
                     ctypes.c_void_p]
    send.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    recv.restype = send.restype = ctypes.c_int
    return recv, send


_CALLS = _load()


def available() -> bool:
    return _CALLS is not None


# Offsets into the arrays as machine words, for memoryview access (a ctypes field
# assignment costs several times a memoryview item store).
_MSG_WORDS = ctypes.sizeof(_Mmsghdr) // 8
_NAME_Q = _Msghdr.msg_name.offset // 8
_NAMELEN_I = _Msghdr.msg_namelen.offset // 4
_LEN_I = _Mmsghdr.msg_len.offset // 4
_MSG_IWORDS = ctypes.sizeof(_Mmsghdr) // 4
assert ctypes.sizeof(_Mmsghdr) % 8 == 0 and _Msghdr.msg_name.offset % 8 == 0


class Buffers:
    """Preallocated recvmmsg/sendmmsg arrays for BATCH datagrams."""

    def __init__(self) -> None:
        n = BATCH
        self.rbuf = (ctypes.c_char * (RECV_SLOT * n))()
        self.sbuf = (ctypes.c_char * (SEND_SLOT * n))()
        self.names = (ctypes.c_char * (SOCKADDR_SIZE * n))()
        self.riov = (_Iovec * n)()
        self.siov = (_Iovec * n)()
        self.rmsg = (_Mmsghdr * n)()
        self.smsg = (_Mmsghdr * n)()
        rbase, sbase = ctypes.addressof(self.rbuf), ctypes.addressof(self.sbuf)
        nbase = ctypes.addressof(self.names)
        self.name_addr = [nbase + i * SOCKADDR_SIZE for i in range(n)]
        for i in range(n):
            self.riov[i].iov_base = rbase + i * RECV_SLOT
            self.riov[i].iov_len = RECV_SLOT
            self.siov[i].iov_base = sbase + i * SEND_SLOT
            for msgs, iov in ((self.rmsg, self.riov), (self.smsg, self.siov)):
                h = msgs[i].msg_hdr
                h.msg_name = self.name_addr[i]
                h.msg_namelen = SOCKADDR_SIZE
                h.msg_iov = ctypes.addressof(iov[i])
                h.msg_iovlen = 1
        self.rv = memoryview(self.rbuf).cast("B")
        self.sv = memoryview(self.sbuf).cast("B")
        self.nv = memoryview(self.names).cast("B")
        self.rmsg_i = memoryview(self.rmsg).cast("B").cast("I")
        self.smsg_q = memoryview(self.smsg).cast("B").cast("Q")
        self.siov_q = memoryview(self.siov).cast("B").cast("Q")
        self.rmsg_p = ctypes.addressof(self.rmsg)
        self.smsg_p = ctypes.addressof(self.smsg)


def decode_sockaddr(raw: bytes) -> Any:
    """A sockaddr_in / sockaddr_in6 as Python's socket module spells the address."""
    fam = int.from_bytes(raw[0:2], sys.byteorder)
    port = int.from_bytes(raw[2:4], "big")
    if fam == socket.AF_INET6:
        return (socket.inet_ntop(socket.AF_INET6, raw[8:24]), port,
                int.from_bytes(raw[4:8], "big"), int.from_bytes(raw[24:28], sys.byteorder))
    return (socket.inet_ntop(socket.AF_INET, raw[4:8]), port)


def udp_limit(data: bytes) -> int:
    """The client's UDP answer limit: its EDNS payload size, else 512."""
    try:
        q = wire.parse_query(data)
    except wire.FormatError:
        return 512
    return q.udp_size if q.edns else 512


def probe(cache: WireCache, data: bytes) -> tuple[Any, int, int] | None:
    """The fast path's question check and cache lookup: (entry, end of the question
    name, the client's UDP limit) for a plain query (QR=0, opcode 0, one question, no
    answer/authority records, at most an OPT additional) whose answer is cached."""
    n = len(data)
    if n <= 16 or data[2] & 0xF8 or data[4:11] != b"\x00\x01\x00\x00\x00\x00\x00":
        return None
    ar = data[11]
    if ar == 0:
        entry = cache.plain.get(data[12:].lower())
        return None if entry is None else (entry, n - 4, 512)
    if ar != 1:
        return None
    p = 12
    while True:
        ln = data[p] if p < n else 255
        if ln == 0 or ln > 63:
            break
        p += ln + 1
    o = p + 5   # OPT: root name, type 41, class = size, ttl, rdlen
    if ln == 0 and o + 11 <= n and data[o] == 0 and data[o + 1] == 0 \
            and data[o + 2] == 41 and data[o + 6] == 0 \
            and o + 11 + ((data[o + 9] << 8) | data[o + 10]) == n:
        entry = (cache.edns_do if data[o + 7] & 0x80 else cache.edns).get(
            data[12:o].lower())
        if entry is not None:
            return entry, p + 1, max(512, (data[o + 3] << 8) | data[o + 4])
    return None


class BatchedUdp:
    """One UDP listener served with recvmmsg/sendmmsg (see the module docstring).
    Same contract as the asyncio transport it replaces: `close()`, `is_closing()`."""

    def __init__(self, server: Any, sock: socket.socket, stats: metrics_mod.Stats,
                 loop: Any) -> None:
        assert _CALLS is not None
        self.server = server
        self.sock = sock
        self.fd = sock.fileno()
        self.stats = stats
        self.loop = loop
        buffers = server._udp_buffers
        if buffers is None:
            buffers = server._udp_buffers = Buffers()
        self.buf: Buffers = buffers
        self._closed = False
        sock.setblocking(False)
        loop.add_reader(self.fd, self._readable)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.loop.remove_reader(self.fd)

    def is_closing(self) -> bool:
        return self._closed

    def _readable(self) -> None:
        try:
            for _ in range(MAX_ROUNDS):
                if self._closed or self.drain() < BATCH:
                    return
        except Exception:  # noqa: BLE001 - a bug here must not kill the listener
            log.exception("DNS UDP batch failed")

    def _sender(self, addr: Any) -> Callable[[bytes], None]:
        sock = self.sock

        def send(resp: bytes) -> None:
            if self._closed:
                return
            try:
                sock.sendto(resp, addr)
            except OSError as exc:   # full send buffer, client gone: UDP may drop
                log.debug("DNS reply to %s dropped: %s", addr, exc)
        return send

    def drain(self) -> int:
        """Receive one batch, answer it; returns how many datagrams it received."""
        b = self.buf
        recv, send = _CALLS  # type: ignore[misc]
        n = recv(self.fd, b.rmsg_p, BATCH, MSG_DONTWAIT, None)
        if n <= 0:
            err = ctypes.get_errno()
            if n < 0 and err not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                log.debug("recvmmsg: %s", errno.errorcode.get(err, err))
            return 0
        t0 = _perf()
        server = self.server
        cache = server.cache
        rv, sv, nv = b.rv, b.sv, b.nv
        rmsg_i, smsg_q, siov_q = b.rmsg_i, b.smsg_q, b.siov_q
        name_addr = b.name_addr
        slots = [0] * metrics_mod.N_TYPES
        rcodes = [0] * metrics_mod.N_RCODES
        hits = denials = out = 0
        moved = False
        slow = server.query_log
        serial = cache.serial
        plain = cache.plain
        for i in range(n):
            base = i * _MSG_IWORDS
            roff = i * RECV_SLOT
            data = rv[roff:roff + rmsg_i[base + _LEN_I]].tobytes()
            # The common query (glibc's resolver, dnsperf): no EDNS, inline here;
            # anything else through probe().
            if len(data) > 16 and data[11] == 0 and not data[2] & 0xF8 \
                    and data[4:11] == b"\x00\x01\x00\x00\x00\x00\x00" and not slow:
                entry = plain.get(data[12:].lower())
                found = None if entry is None else (entry, len(data) - 4, 512)
            else:
                found = None if slow else probe(cache, data)
            if found is not None:
                entry, qend, limit = found
                resp = entry.full
                soa = entry.soa
                if len(resp) > limit:
                    resp = entry.trunc.get(limit)
                    if resp is not None and soa:
                        resp = None     # truncated copies carry no serial offset
                if resp is not None and len(resp) <= SEND_SLOT:
                    rl = len(resp)
                    s = out * SEND_SLOT
                    sv[s:s + rl] = resp
                    sv[s] = data[0]
                    sv[s + 1] = data[1]
                    sv[s + 2] = (resp[2] & 0xFE) | (data[2] & 0x01)
                    sv[s + 3] = (resp[3] & 0xEF) | (data[3] & 0x10)
                    sv[s + 12:s + qend] = data[12:qend]
                    if soa:
                        sv[s + soa:s + soa + 4] = serial
                    siov_q[2 * out + 1] = rl
                    if out != i:    # an earlier datagram went the slow way: compact
                        smsg_q[out * _MSG_WORDS + _NAME_Q] = name_addr[i]
                        moved = True
                    out += 1
                    slots[entry.slot] += 1
                    rcodes[entry.rcode] += 1
                    if entry.denial:
                        denials += 1
                    else:
                        hits += 1
                    continue
            noff = i * SOCKADDR_SIZE
            addr = decode_sockaddr(nv[noff:noff + rmsg_i[base + _NAMELEN_I]].tobytes())
            limit = 512
            if found is not None:
                limit = found[2]
            else:
                limit = udp_limit(data)
            server.handle(data, self.stats, limit, self._sender(addr))
            cache = server.cache
            plain = cache.plain
        if out:
            sent = send(self.fd, b.smsg_p, out, MSG_DONTWAIT)
            if sent < out:
                # A full socket buffer: the rest is dropped, as the kernel would drop
                # datagrams; clients retry.
                log.debug("sendmmsg sent %d of %d", max(sent, 0), out)
            elapsed = _perf() - t0
            self.stats.observe_many(slots, rcodes, elapsed)
            m = server.metrics
            if hits:
                m.cache_hits["success"] += hits
            if denials:
                m.cache_hits["denial"] += denials
        for i in range(n):      # value-result field: restore the buffer size
            rmsg_i[i * _MSG_IWORDS + _NAMELEN_I] = SOCKADDR_SIZE
        if moved:
            for i in range(out):
                smsg_q[i * _MSG_WORDS + _NAME_Q] = name_addr[i]
        return n
