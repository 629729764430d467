"""DNS wire format by hand where the server needs control: parsing queries (header,
question, EDNS0 OPT) without trusting anything in them, and error responses.

dnslib's parser follows compression pointers recursively (a long backward chain
recurses thousands of frames deep) and does not bound the name length, so queries are
never handed to it: this parser walks every section with explicit limits and reports
FORMERR for anything malformed. dnslib stays the encoder for answers (server.py).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

QTYPE_OPT = 41
QTYPE_IXFR = 251
QTYPE_AXFR = 252
CLASS_IN = 1

NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
BADVERS = 16

MAX_NAME = 255          # wire length including the root label (RFC 1035 3.1)
MAX_LABEL = 63
MIN_UDP = 512
# What netd advertises in its OPT record: the size DNS flag day 2020 settled on, which
# avoids IP fragmentation on any path (CoreDNS advertises the client's size capped the
# same way when it answers from its own data).
ADVERTISED_UDP = 1232

_HDR = struct.Struct("!HBBHHHH")
_PLAIN = frozenset(b"-_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


class FormatError(ValueError):
    """The message is not a well-formed DNS query (answer FORMERR)."""


@dataclass(slots=True)
class Query:
    id: int
    flags1: int                 # third header byte: QR, opcode, AA, TC, RD
    flags2: int                 # fourth header byte: RA, Z, AD, CD, rcode
    qname_wire: bytes           # the question name, uncompressed, as the client spelt it
    qname: str                  # presentation form with a trailing dot, case kept
    qtype: int
    qclass: int
    edns: bool = False
    edns_version: int = 0
    udp_size: int = MIN_UDP     # the client's limit (512 without EDNS)
    do: bool = False
    inline: bool = True         # the question name was not compressed

    @property
    def opcode(self) -> int:
        return (self.flags1 >> 3) & 0xF

    @property
    def rd(self) -> bool:
        return bool(self.flags1 & 1)


def read_name(data: bytes, offset: int) -> tuple[bytes, int]:
    """(uncompressed wire name, offset after the name in the message).

    Compression pointers must point strictly backwards and the expanded name must
    stay within 255 bytes: together these bound the work and rule out loops."""
    out = bytearray()
    end = -1
    pos = offset
    limit = pos   # every pointer must go below the start of the label run it ends
    n = len(data)
    while True:
        if pos >= n:
            raise FormatError("name runs past the end of the message")
        length = data[pos]
        if length == 0:
            out.append(0)
            if end < 0:
                end = pos + 1
            break
        kind = length & 0xC0
        if kind == 0xC0:
            if pos + 1 >= n:
                raise FormatError("truncated compression pointer")
            target = ((length & 0x3F) << 8) | data[pos + 1]
            if end < 0:
                end = pos + 2
            if target >= limit:
                raise FormatError("compression pointer does not point backwards")
            pos = limit = target
            continue
        if kind:
            raise FormatError("unknown label type")
        if pos + 1 + length > n:
            raise FormatError("label runs past the end of the message")
        out += data[pos:pos + 1 + length]
        if len(out) + 1 > MAX_NAME:
            raise FormatError("name longer than 255 bytes")
        pos += 1 + length
    return bytes(out), end


def name_to_text(wire: bytes) -> str:
    """Presentation form (RFC 1035 5.1 escapes) with a trailing dot; case kept."""
    parts = []
    pos = 0
    while wire[pos]:
        length = wire[pos]
        label = wire[pos + 1:pos + 1 + length]
        pos += 1 + length
        if all(c in _PLAIN for c in label):
            parts.append(label.decode("ascii"))
            continue
        chars = []
        for c in label:
            if c in (0x2E, 0x5C, 0x22, 0x28, 0x29, 0x3B, 0x20, 0x40, 0x24):
                chars.append("\\" + chr(c))
            elif 0x21 <= c <= 0x7E:
                chars.append(chr(c))
            else:
                chars.append(f"\\{c:03d}")
        parts.append("".join(chars))
    return ".".join(parts) + "."


def _skip_rr(data: bytes, pos: int) -> tuple[int, int, int, int, int]:
    """Skip one resource record: (type, class, ttl, rdata offset, offset after it)."""
    _, pos = read_name(data, pos)
    if pos + 10 > len(data):
        raise FormatError("truncated resource record")
    rtype, rclass, ttl, rdlen = struct.unpack_from("!HHIH", data, pos)
    pos += 10
    if pos + rdlen > len(data):
        raise FormatError("resource record data runs past the end of the message")
    return rtype, rclass, ttl, pos, pos + rdlen


def parse_query(data: bytes) -> Query:
    """Parse a query; FormatError for anything malformed. The caller has already
    dropped messages shorter than a header and those with QR set."""
    if len(data) < 12:
        raise FormatError("short header")
    ident, f1, f2, qd, an, ns, ar = _HDR.unpack_from(data, 0)
    # miekg/dns (CoreDNS's server) rejects with FORMERR the same shapes: not exactly
    # one question, more than one answer/authority record, more than two additional.
    if qd != 1 or an > 1 or ns > 1 or ar > 2:
        raise FormatError("unexpected section counts")
    wire, pos = read_name(data, 12)
    if pos + 4 > len(data):
        raise FormatError("truncated question")
    qtype, qclass = struct.unpack_from("!HH", data, pos)
    pos += 4
    q = Query(ident, f1, f2, wire, name_to_text(wire), qtype, qclass,
              inline=pos - 4 - 12 == len(wire))
    for _ in range(an + ns):
        pos = _skip_rr(data, pos)[4]
    seen_opt = False
    for _ in range(ar):
        start = pos
        rtype, rclass, ttl, _rd, pos = _skip_rr(data, pos)
        if rtype != QTYPE_OPT:
            continue
        if seen_opt or data[start] != 0:
            raise FormatError("OPT must be single and owned by the root")   # RFC 6891 6.1.1
        seen_opt = True
        q.edns = True
        q.udp_size = max(MIN_UDP, rclass)
        q.edns_version = (ttl >> 16) & 0xFF
        q.do = bool(ttl & 0x8000)
    if pos != len(data):
        raise FormatError("trailing bytes after the last record")
    return q


def _opt(do: bool, ext_rcode: int = 0) -> bytes:
    ttl = (ext_rcode << 24) | (0x8000 if do else 0)
    return b"\x00" + struct.pack("!HHIH", QTYPE_OPT, ADVERTISED_UDP, ttl, 0)


def error_response(data: bytes, rcode: int, q: Query | None) -> bytes:
    """A header-only (plus question and OPT when known) response with `rcode`.
    Always sets QR, copies ID, opcode, RD and CD, never AA or RA."""
    ident = (data[0] << 8) | data[1]
    f1 = 0x80 | (data[2] & 0x79)        # QR + opcode + RD
    f2 = (data[3] & 0x10) | (rcode & 0xF)
    if q is None:
        return _HDR.pack(ident, f1, f2, 0, 0, 0, 0)
    ext = rcode >> 4
    ar = 1 if q.edns else 0
    out = _HDR.pack(ident, f1, f2, 1, 0, 0, ar) + q.qname_wire + struct.pack(
        "!HH", q.qtype, q.qclass)
    if q.edns:
        out += _opt(q.do, ext)
    return out


def truncated_response(full: bytes) -> bytes:
    """Header (TC set) + question + OPT of an already encoded response: the minimal
    truncated form, used for answers from upstream that do not fit the client."""
    _, f1, f2, qd, an, ns, ar = _HDR.unpack_from(full, 0)
    pos = 12
    for _ in range(qd):
        _, pos = read_name(full, pos)
        pos += 4
    question = full[12:pos]
    opt = b""
    for _ in range(an + ns + ar):
        start = pos
        rtype, _c, _t, _r, pos = _skip_rr(full, pos)
        if rtype == QTYPE_OPT:
            opt = full[start:pos]
    return _HDR.pack(int.from_bytes(full[:2], "big"), f1 | 0x02, f2, qd, 0, 0,
                     1 if opt else 0) + question + opt


def response_info(data: bytes) -> tuple[int, int, int]:
    """(rcode, answer count, TC flag) of an encoded response."""
    return data[3] & 0xF, (data[6] << 8) | data[7], (data[2] >> 1) & 1
