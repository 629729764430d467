"""SPDY/3.1 framing, as much as `kubectl port-forward` needs (the server side of
moby/spdystream, which client-go uses). Pure: a FrameParser turns bytes into Frames,
`encode_*` turn frames into bytes; header blocks are zlib-compressed with the SPDY/3
dictionary, one compression context per direction for the whole connection.

Flow control: SPDY/3.1 has per-stream windows, but spdystream neither sends
WINDOW_UPDATE for what it receives nor waits for them before sending, so enforcing
windows here would stall every transfer past 64 KiB. WINDOW_UPDATE and SETTINGS frames
are parsed and ignored.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = \
    1, 2, 3, 4, 6, 7, 8, 9
DATA = 0                       # not a SPDY type number: marks data frames here
FLAG_FIN, FLAG_UNIDIRECTIONAL = 0x01, 0x02
RST_PROTOCOL_ERROR, RST_INVALID_STREAM, RST_REFUSED_STREAM, RST_CANCEL = 1, 2, 3, 5
MAX_DATA = 32 * 1024           # what we put in one data frame (spdystream reads any size)
MAX_FRAME = (1 << 24) - 1


def _dictionary() -> bytes:
    """The SPDY/3 header compression dictionary (draft-mbelshe-httpbis-spdy-00 §2.6.10.1):
    length-prefixed common header names and values, then a run of common text."""
    words = ("options head post put delete trace accept accept-charset accept-encoding "
             "accept-language accept-ranges age allow authorization cache-control connection "
             "content-base content-encoding content-language content-length content-location "
             "content-md5 content-range content-type date etag expect expires from host "
             "if-match if-modified-since if-none-match if-range if-unmodified-since "
             "last-modified location max-forwards pragma proxy-authenticate "
             "proxy-authorization range referer retry-after server te trailer "
             "transfer-encoding upgrade user-agent vary via warning www-authenticate method "
             "get status").split() + ["200 OK"] + \
        "version HTTP/1.1 url public set-cookie keep-alive origin".split()
    tail = ("100101201202205206300302303304305306307402405406407408409410411412413414415416"
            "417502504505203 Non-Authoritative Information204 No Content301 Moved "
            "Permanently400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 "
            "Internal Server Error501 Not Implemented503 Service UnavailableJan Feb Mar Apr "
            "May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, "
            "GMTchunked,text/html,image/png,image/jpg,image/gif,application/xml,"
            "application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,"
            "deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.")
    out = bytearray()
    for w in words:
        out += struct.pack("!I", len(w)) + w.encode()
    return bytes(out) + tail.encode()


DICTIONARY = _dictionary()


class SpdyError(ValueError):
    """A frame we cannot parse: the connection is beyond repair."""


Headers = dict[str, list[str]]


@dataclass
class Frame:
    type: int                       # DATA or a control frame type
    flags: int = 0
    stream_id: int = 0
    data: bytes = b""               # DATA payload
    headers: Headers = field(default_factory=dict)   # SYN_STREAM / SYN_REPLY / HEADERS
    status: int = 0                 # RST_STREAM / GOAWAY status
    ping_id: int = 0
    last_good: int = 0              # GOAWAY
    delta: int = 0                  # WINDOW_UPDATE
    associated: int = 0
    priority: int = 0

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)

    def header(self, name: str) -> str:
        values = self.headers.get(name.lower()) or [""]
        return values[0]


def encode_header_block(headers: Headers) -> bytes:
    out = bytearray(struct.pack("!I", len(headers)))
    for name, values in headers.items():
        n = name.lower().encode()
        v = b"\x00".join(x.encode() for x in values)
        out += struct.pack("!I", len(n)) + n + struct.pack("!I", len(v)) + v
    return bytes(out)


def decode_header_block(raw: bytes) -> Headers:
    try:
        (count,), pos = struct.unpack_from("!I", raw, 0), 4
        out: Headers = {}
        for _ in range(count):
            (nlen,) = struct.unpack_from("!I", raw, pos)
            name = raw[pos + 4:pos + 4 + nlen].decode()
            pos += 4 + nlen
            (vlen,) = struct.unpack_from("!I", raw, pos)
            value = raw[pos + 4:pos + 4 + vlen].decode()
            pos += 4 + vlen
            if pos > len(raw):
                raise SpdyError("header block truncated")
            out.setdefault(name.lower(), []).extend(value.split("\x00"))
        return out
    except (struct.error, UnicodeDecodeError) as exc:
        raise SpdyError(f"bad header block: {exc}") from None


class Compressor:
    def __init__(self) -> None:
        self._z = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15,
                                   zdict=DICTIONARY)

    def block(self, headers: Headers) -> bytes:
        raw = encode_header_block(headers)
        return self._z.compress(raw) + self._z.flush(zlib.Z_SYNC_FLUSH)


class Decompressor:
    def __init__(self) -> None:
        self._z = zlib.decompressobj(zdict=DICTIONARY)

    def block(self, data: bytes) -> Headers:
        try:
            raw = self._z.decompress(data)
        except zlib.error as exc:
            raise SpdyError(f"header decompression failed: {exc}") from None
        return decode_header_block(raw)


def _control(ftype: int, flags: int, payload: bytes) -> bytes:
    if len(payload) > MAX_FRAME:
        raise SpdyError("frame too large")
    return struct.pack("!HHI", 0x8000 | VERSION, ftype, (flags << 24) | len(payload)) + payload


def encode_data(stream_id: int, data: bytes, fin: bool = False) -> bytes:
    flags = FLAG_FIN if fin else 0
    return struct.pack("!II", stream_id & 0x7FFFFFFF, (flags << 24) | len(data)) + data


def encode_syn_stream(comp: Compressor, stream_id: int, headers: Headers,
                      fin: bool = False, associated: int = 0, priority: int = 0) -> bytes:
    body = struct.pack("!IIBB", stream_id, associated, (priority & 7) << 5, 0)
    return _control(SYN_STREAM, FLAG_FIN if fin else 0, body + comp.block(headers))


def encode_syn_reply(comp: Compressor, stream_id: int, headers: Headers | None = None,
                     fin: bool = False) -> bytes:
    body = struct.pack("!I", stream_id) + comp.block(headers or {})
    return _control(SYN_REPLY, FLAG_FIN if fin else 0, body)


def encode_rst(stream_id: int, status: int) -> bytes:
    return _control(RST_STREAM, 0, struct.pack("!II", stream_id, status))


def encode_ping(ping_id: int) -> bytes:
    return _control(PING, 0, struct.pack("!I", ping_id))


def encode_goaway(last_good: int, status: int = 0) -> bytes:
    return _control(GOAWAY, 0, struct.pack("!II", last_good, status))


class FrameParser:
    """Bytes in (any split), whole frames out. Owns the inbound header context."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._dec = Decompressor()

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        out: list[Frame] = []
        while len(self._buf) >= 8:
            word, flags_len = struct.unpack_from("!II", self._buf, 0)
            length = flags_len & 0xFFFFFF
            if len(self._buf) < 8 + length:
                break
            payload = bytes(self._buf[8:8 + length])
            del self._buf[:8 + length]
            flags = flags_len >> 24
            if word & 0x80000000:
                frame = self._control(word, flags, payload)
                if frame is not None:
                    out.append(frame)
            else:
                out.append(Frame(DATA, flags, word & 0x7FFFFFFF, data=payload))
        return out

    def _control(self, word: int, flags: int, p: bytes) -> Frame | None:
        version, ftype = (word >> 16) & 0x7FFF, word & 0xFFFF
        if version != VERSION:
            raise SpdyError(f"unsupported SPDY version {version}")
        try:
            if ftype == SYN_STREAM:
                sid, assoc, pri, _slot = struct.unpack_from("!IIBB", p, 0)
                return Frame(ftype, flags, sid & 0x7FFFFFFF, associated=assoc & 0x7FFFFFFF,
                             priority=pri >> 5, headers=self._dec.block(p[10:]))
            if ftype in (SYN_REPLY, HEADERS):
                (sid,) = struct.unpack_from("!I", p, 0)
                return Frame(ftype, flags, sid & 0x7FFFFFFF, headers=self._dec.block(p[4:]))
            if ftype == RST_STREAM:
                sid, status = struct.unpack_from("!II", p, 0)
                return Frame(ftype, flags, sid & 0x7FFFFFFF, status=status)
            if ftype == PING:
                return Frame(ftype, flags, ping_id=struct.unpack_from("!I", p, 0)[0])
            if ftype == GOAWAY:
                last, status = struct.unpack_from("!II", p, 0)
                return Frame(ftype, flags, last_good=last & 0x7FFFFFFF, status=status)
            if ftype == WINDOW_UPDATE:
                sid, delta = struct.unpack_from("!II", p, 0)
                return Frame(ftype, flags, sid & 0x7FFFFFFF, delta=delta & 0x7FFFFFFF)
        except struct.error as exc:
            raise SpdyError(f"short control frame type {ftype}: {exc}") from None
        return None                  # SETTINGS, NOOP, CREDENTIAL, unknown: ignored
