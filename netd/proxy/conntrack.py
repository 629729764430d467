"""Delete UDP conntrack entries over nfnetlink (ctnetlink), without conntrack-tools.

Why: a UDP "connection" is conntrack state only; after an endpoint goes away, the
client's next datagrams keep following the old entry's DNAT to the dead endpoint until
it times out (kube-proxy runs `conntrack -D` for this: pkg/proxy/conntrack). And a UDP
service that had no endpoints left entries that were not DNATed at all; they must go
when it gets its first endpoint. The conntrack CLI is not installed here, and the
messages are small: dump the table of the node's namespace, pick entries in Python
(a node namespace holds few), delete each by its original tuple.

Blocking; run inside the node's namespace on a namespace worker thread.
"""
from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass

NETLINK_NETFILTER = 12
NFNL_SUBSYS_CTNETLINK = 1
IPCTNL_MSG_CT_GET, IPCTNL_MSG_CT_DELETE = 1, 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLA_F_NESTED = 0x8000
CTA_TUPLE_ORIG, CTA_TUPLE_REPLY = 1, 2
CTA_TUPLE_IP, CTA_TUPLE_PROTO = 1, 2
CTA_IP_V4_SRC, CTA_IP_V4_DST = 1, 2
CTA_PROTO_NUM, CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT = 1, 2, 3
IPPROTO_UDP = 17

_HDR = struct.Struct("=IHHII")
_NFGEN = struct.Struct("=BBH")


@dataclass(frozen=True)
class Tuple:
    src: str
    dst: str
    proto: int
    sport: int
    dport: int


@dataclass(frozen=True)
class Entry:
    orig: Tuple
    reply: Tuple

    @property
    def dnat(self) -> tuple[str, int]:
        """Where the flow really goes: the reply's source."""
        return self.reply.src, self.reply.sport


def _attr(kind: int, payload: bytes) -> bytes:
    data = struct.pack("=HH", 4 + len(payload), kind) + payload
    return data + b"\0" * (-len(data) % 4)


def _attrs(data: bytes) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    i = 0
    while i + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, i)
        if length < 4:
            break
        out[kind & 0x3FFF] = data[i + 4:i + length]
        i += (length + 3) & ~3
    return out


def _tuple(data: bytes) -> Tuple | None:
    a = _attrs(data)
    ip, proto = _attrs(a.get(CTA_TUPLE_IP, b"")), _attrs(a.get(CTA_TUPLE_PROTO, b""))
    if CTA_IP_V4_SRC not in ip or CTA_PROTO_NUM not in proto:
        return None
    port = (lambda k: struct.unpack("!H", proto[k])[0] if k in proto else 0)
    return Tuple(socket.inet_ntoa(ip[CTA_IP_V4_SRC]), socket.inet_ntoa(ip[CTA_IP_V4_DST]),
                 proto[CTA_PROTO_NUM][0], port(CTA_PROTO_SRC_PORT), port(CTA_PROTO_DST_PORT))


def _encode_tuple(t: Tuple) -> bytes:
    ip = _attr(CTA_IP_V4_SRC, socket.inet_aton(t.src)) + \
        _attr(CTA_IP_V4_DST, socket.inet_aton(t.dst))
    proto = _attr(CTA_PROTO_NUM, bytes([t.proto])) + \
        _attr(CTA_PROTO_SRC_PORT, struct.pack("!H", t.sport)) + \
        _attr(CTA_PROTO_DST_PORT, struct.pack("!H", t.dport))
    return _attr(CTA_TUPLE_IP | NLA_F_NESTED, ip) + _attr(CTA_TUPLE_PROTO | NLA_F_NESTED, proto)


class Conntrack:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                  NETLINK_NETFILTER)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Conntrack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, msg_type: int, flags: int, body: bytes) -> int:
        self.seq += 1
        payload = _NFGEN.pack(socket.AF_INET, 0, 0) + body
        typ = (NFNL_SUBSYS_CTNETLINK << 8) | msg_type
        self.sock.send(_HDR.pack(_HDR.size + len(payload), typ, flags, self.seq, 0) + payload)
        return self.seq

    def _replies(self, seq: int) -> Iterable[bytes]:
        """Message payloads (after the nfgenmsg) until DONE / the ACK; raises on error."""
        while True:
            data = self.sock.recv(1 << 20)
            i = 0
            while i + _HDR.size <= len(data):
                length, typ, _flags, mseq, _pid = _HDR.unpack_from(data, i)
                if length < _HDR.size:
                    return
                body = data[i + _HDR.size:i + length]
                i += (length + 3) & ~3
                if mseq != seq:
                    continue
                if typ == NLMSG_DONE:
                    return
                if typ == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", body)[0]
                    if code:
                        raise OSError(code, f"ctnetlink: {errno.errorcode.get(code, code)}")
                    return
                yield body[_NFGEN.size:]

    def dump(self) -> list[Entry]:
        seq = self._send(IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, b"")
        out = []
        for body in self._replies(seq):
            a = _attrs(body)
            orig = _tuple(a.get(CTA_TUPLE_ORIG, b""))
            reply = _tuple(a.get(CTA_TUPLE_REPLY, b""))
            if orig is not None and reply is not None:
                out.append(Entry(orig, reply))
        return out

    def delete(self, entry: Entry) -> bool:
        """False if it was already gone (expired or deleted meanwhile)."""
        seq = self._send(IPCTNL_MSG_CT_DELETE, NLM_F_REQUEST | NLM_F_ACK,
                         _attr(CTA_TUPLE_ORIG | NLA_F_NESTED, _encode_tuple(entry.orig)))
        try:
            for _ in self._replies(seq):
                pass
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return False
            raise
        return True


@dataclass(frozen=True)
class Flush:
    """UDP entries to remove on one node after a sync."""
    # (endpoint ip, endpoint port, service ports the flow may have been addressed to)
    stale_endpoints: tuple[tuple[str, int, frozenset[int]], ...] = ()
    # (address, port) of service addresses that got their first endpoint: entries that
    # were never DNATed (reply source == original destination)
    newly_served: tuple[tuple[str, int], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.stale_endpoints or self.newly_served)


def select(entries: Iterable[Entry], flush: Flush) -> list[Entry]:
    stale = {(ip, port): ports for ip, port, ports in flush.stale_endpoints}
    served = set(flush.newly_served)
    out = []
    for e in entries:
        if e.orig.proto != IPPROTO_UDP:
            continue
        ports = stale.get(e.dnat)
        natted = e.dnat != (e.orig.dst, e.orig.dport)
        if ports is not None and natted and e.orig.dport in ports:
            out.append(e)
        elif not natted and (e.orig.dst, e.orig.dport) in served:
            out.append(e)
    return out


def flush_udp(flush: Flush) -> int:
    """Blocking; in the namespace of the calling thread. Returns how many went."""
    if not flush:
        return 0
    with Conntrack() as ct:
        return sum(1 for e in select(ct.dump(), flush) if ct.delete(e))
