"""The channel protocols of pods/exec and pods/attach (`v5.channel.k8s.io`,
`v4.channel.k8s.io`), the metav1.Status a command's end is reported with, and a small
client-side WebSocket codec (RFC 6455) for `netd exec`. Pure: bytes in, bytes out.

Facts reproduced (k8s.io/apimachinery/pkg/util/remotecommand, client-go
tools/remotecommand/websocket.go, apiserver wsstream):
- every binary message starts with one byte naming the channel: 0 stdin, 1 stdout,
  2 stderr, 3 error (a Status JSON, written once at the end), 4 resize (TTY);
- v5 adds channel 255 "close": the payload is the id of the channel the client
  half-closed (kubectl sends [255, 0] when its stdin ends), which v4 cannot express —
  so `kubectl exec -i POD -- cat` only ends under v5;
- the error channel carries `Success`, or `Failure` with reason `NonZeroExitCode` and a
  cause `{reason: ExitCode, message: "<code>"}` that kubectl turns into its exit code.
"""
from __future__ import annotations

import base64
import hashlib
import os
import struct
from dataclasses import dataclass
from typing import Any

import orjson

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
# The order is the server's preference; a client's offer order decides (aiohttp picks
# the first protocol the client lists that we serve, as kube-apiserver does).
EXEC_PROTOCOLS = (V5, V4)
PORTFORWARD_TUNNEL = "SPDY/3.1+portforward.k8s.io"

STATUS_SUCCESS: dict[str, Any] = {"metadata": {}, "status": "Success"}


class ProtocolError(ValueError):
    """A malformed frame or message from the peer."""


def encode(channel: int, data: bytes = b"") -> bytes:
    if not 0 <= channel <= 255:
        raise ProtocolError(f"channel {channel} out of range")
    return bytes((channel,)) + data


def decode(message: bytes) -> tuple[int, bytes]:
    """(channel, payload) of one binary message."""
    if not message:
        raise ProtocolError("empty channel message")
    return message[0], message[1:]


def closed_channel(payload: bytes) -> int:
    """The channel a v5 CLOSE message half-closes."""
    if len(payload) != 1:
        raise ProtocolError(f"close message carries {len(payload)} bytes, want 1")
    return payload[0]


@dataclass(frozen=True)
class Size:
    width: int
    height: int


def decode_resize(payload: bytes) -> Size:
    """`{"Width":80,"Height":24}` (remotecommand.TerminalSize, Go field names)."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"bad resize message: {exc}") from None
    if not isinstance(doc, dict):
        raise ProtocolError("bad resize message: not an object")
    w, h = doc.get("Width", 0), doc.get("Height", 0)
    if not isinstance(w, int) or not isinstance(h, int) or not (0 <= w < 65536 and
                                                                0 <= h < 65536):
        raise ProtocolError(f"bad resize message: {doc!r}")
    return Size(w, h)


def encode_resize(size: Size) -> bytes:
    return orjson.dumps({"Width": size.width, "Height": size.height})


def exit_code_of(returncode: int) -> int:
    """A process killed by signal N reports 128+N, as container runtimes do."""
    return 128 - returncode if returncode < 0 else returncode


def exit_status(code: int, argv: list[str]) -> dict[str, Any]:
    """The Status a command's exit is reported with (kubelet's wording)."""
    if code == 0:
        return dict(STATUS_SUCCESS)
    cmd = "[" + " ".join(argv) + "]"
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: error executing "
                       f"command {cmd}, exit code {code}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def error_status(message: str, reason: str = "InternalError", code: int = 500
                 ) -> dict[str, Any]:
    """A failure that is not an exit code (missing binary, pod gone): kubectl prints
    `error: <message>` and exits 1."""
    return {"metadata": {}, "status": "Failure", "message": message, "reason": reason,
            "code": code, "details": {"causes": [{"message": message}]}}


def status_exit_code(status: dict[str, Any]) -> int | None:
    """The exit code a Status reports (None for a failure that is not an exit code) —
    what kubectl derives, for `netd exec`."""
    if status.get("status") == "Success":
        return 0
    if status.get("reason") != "NonZeroExitCode":
        return None
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message", ""))
            except ValueError:
                return None
    return None


# ---- client-side WebSocket codec (RFC 6455), for the stdlib-only CLI ----------------

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def ws_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def ws_accept(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def ws_frame(opcode: int, payload: bytes, mask: bytes | None = None) -> bytes:
    """One final frame. Clients must mask (pass 4 bytes); servers must not."""
    head = bytearray((0x80 | opcode,))
    n = len(payload)
    bit = 0x80 if mask is not None else 0
    if n < 126:
        head.append(bit | n)
    elif n < 65536:
        head.append(bit | 126)
        head += struct.pack("!H", n)
    else:
        head.append(bit | 127)
        head += struct.pack("!Q", n)
    if mask is None:
        return bytes(head) + payload
    if len(mask) != 4:
        raise ProtocolError("a mask is 4 bytes")
    return bytes(head) + mask + _xor(payload, mask)


def _xor(data: bytes, mask: bytes) -> bytes:
    if not data:
        return b""
    reps = (len(data) + 3) // 4
    key = int.from_bytes((mask * reps)[:len(data)], "big")
    return (int.from_bytes(data, "big") ^ key).to_bytes(len(data), "big")


class FrameReader:
    """Incremental parser: feed bytes, take complete messages (opcode, payload).
    Fragmented data messages are reassembled; control frames come out as they arrive."""

    def __init__(self, max_size: int = 64 * 1024 * 1024) -> None:
        self._buf = bytearray()
        self._frag_op: int | None = None
        self._frag = bytearray()
        self._max = max_size

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buf += data
        out: list[tuple[int, bytes]] = []
        while True:
            frame = self._take()
            if frame is None:
                return out
            fin, op, payload = frame
            if op >= 0x8:
                out.append((op, payload))
            elif op == OP_CONT:
                if self._frag_op is None:
                    raise ProtocolError("continuation frame without a start")
                self._frag += payload
                if fin:
                    out.append((self._frag_op, bytes(self._frag)))
                    self._frag_op, self._frag = None, bytearray()
            elif fin:
                out.append((op, payload))
            else:
                self._frag_op, self._frag = op, bytearray(payload)

    def _take(self) -> tuple[bool, int, bytes] | None:
        buf = self._buf
        if len(buf) < 2:
            return None
        fin, op = bool(buf[0] & 0x80), buf[0] & 0x0F
        masked, n = bool(buf[1] & 0x80), buf[1] & 0x7F
        pos = 2
        if n == 126:
            if len(buf) < 4:
                return None
            n = struct.unpack_from("!H", buf, 2)[0]
            pos = 4
        elif n == 127:
            if len(buf) < 10:
                return None
            n = struct.unpack_from("!Q", buf, 2)[0]
            pos = 10
        if n > self._max:
            raise ProtocolError(f"frame of {n} bytes exceeds {self._max}")
        mask = b""
        if masked:
            if len(buf) < pos + 4:
                return None
            mask = bytes(buf[pos:pos + 4])
            pos += 4
        if len(buf) < pos + n:
            return None
        payload = bytes(buf[pos:pos + n])
        del buf[:pos + n]
        return fin, op, _xor(payload, mask) if masked else payload


def close_payload(code: int = 1000, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()
