"""pods/log: the container's CRI log file (`<RFC3339Nano> <stream> <P|F> <text>` per
line, as the kubelet writes them) rendered as kubectl expects: plain text, options
tailLines, timestamps, sinceSeconds/sinceTime, limitBytes, and `follow` streaming until
the container instance ends or the pod goes.

The parsing and rendering are pure; `follow` polls the file (the kubelet uses fsnotify;
a short poll keeps this dependency-free and costs nothing while nobody follows).
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

FOLLOW_POLL = 0.2           # seconds between looks at a followed file


@dataclass(frozen=True)
class Entry:
    ts: str                 # RFC3339Nano as written
    stream: str             # stdout | stderr
    full: bool              # F: the text ends a line; P: a partial line
    text: bytes


@dataclass(frozen=True)
class LogOptions:
    tail_lines: int | None = None
    timestamps: bool = False
    since: datetime | None = None
    limit_bytes: int | None = None
    follow: bool = False


def parse_line(line: bytes) -> Entry | None:
    """One CRI log line (without its newline); None for a malformed one."""
    parts = line.split(b" ", 3)
    if len(parts) < 3:
        return None
    ts, stream, tag = parts[0], parts[1], parts[2]
    if tag not in (b"P", b"F") or stream not in (b"stdout", b"stderr"):
        return None
    text = parts[3] if len(parts) == 4 else b""
    return Entry(ts.decode("ascii", "replace"), stream.decode(), tag == b"F", text)


def parse_time(ts: str) -> datetime | None:
    """RFC3339 with up to nanoseconds (Python keeps microseconds)."""
    s = ts.strip()
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    if "." in s:
        head, rest = s.split(".", 1)
        frac = "".join(ch for ch in rest if ch.isdigit())
        zone = rest[len(frac):]
        s = f"{head}.{frac[:6].ljust(6, '0')}{zone}"
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def render(entries: list[Entry], opts: LogOptions) -> bytes:
    """What the kubelet returns for these entries (tail and since applied here)."""
    chosen = entries
    if opts.since is not None:
        chosen = [e for e in chosen if (t := parse_time(e.ts)) is None or t >= opts.since]
    if opts.tail_lines is not None:
        chosen = chosen[-opts.tail_lines:] if opts.tail_lines > 0 else []
    out = bytearray()
    for e in chosen:
        out += render_entry(e, opts.timestamps)
    return bytes(out)


def render_entry(e: Entry, timestamps: bool) -> bytes:
    prefix = e.ts.encode() + b" " if timestamps else b""
    return prefix + e.text + (b"\n" if e.full else b"")


def split_complete(buf: bytes) -> tuple[list[Entry], bytes]:
    """Entries of the complete lines in buf, and the incomplete rest."""
    end = buf.rfind(b"\n")
    if end < 0:
        return [], buf
    entries = [e for line in buf[:end].split(b"\n") if (e := parse_line(line)) is not None]
    return entries, buf[end + 1:]


class Limit:
    """limitBytes: stop after that many bytes of output."""

    def __init__(self, limit: int | None) -> None:
        self.left = limit

    def take(self, data: bytes) -> bytes:
        if self.left is None:
            return data
        data = data[:self.left]
        self.left -= len(data)
        return data

    @property
    def exhausted(self) -> bool:
        return self.left is not None and self.left <= 0


def read_all(path: Path, opts: LogOptions) -> tuple[bytes, int]:
    """The rendered log so far and the file offset it ends at."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return b"", 0
    entries, rest = split_complete(raw)
    return render(entries, opts), len(raw) - len(rest)


async def follow(path: Path, offset: int, opts: LogOptions,
                 write: Callable[[bytes], Any], still_running: Callable[[], bool],
                 limit: Limit) -> None:
    """Stream what is appended after `offset` until `still_running()` turns false (then
    a last read, so the final lines are not lost) or the limit is reached."""
    pending = b""
    done = False
    while not done and not limit.exhausted:
        done = not still_running()
        try:
            with path.open("rb") as fh:
                fh.seek(offset)
                chunk = fh.read()
        except FileNotFoundError:
            chunk = b""
        if chunk:
            offset += len(chunk)
            entries, pending = split_complete(pending + chunk)
            out = limit.take(b"".join(render_entry(e, opts.timestamps) for e in entries
                                      if opts.since is None or (t := parse_time(e.ts)) is None
                                      or t >= opts.since))
            if out:
                await write(out)
        if not done:
            await asyncio.sleep(FOLLOW_POLL)
