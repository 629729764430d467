"""Container logs in the kubelet's CRI format, and process bookkeeping for adoption.

Each line: `<RFC3339Nano UTC> <stdout|stderr> <F|P> <text>\\n` — P marks a partial line
cut at 16 KiB (as containerd does), F the end of a line. One file per container
instance, `<pod dir>/logs/<container>/<restartCount>.log`; the instance before is kept
for `kubectl logs --previous`, older ones removed (kubelet keeps the same two).
"""
from __future__ import annotations

import asyncio
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

MAX_LINE = 16 * 1024


def cri_time(t: datetime | None = None) -> str:
    t = t or datetime.now(timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond * 1000:09d}Z"


def cri_lines(stream: str, data: bytes, partial_tail: bool, now: str) -> bytes:
    """Format complete lines of `data` (which ends with a newline unless partial_tail)."""
    out = []
    lines = data.split(b"\n")
    if not partial_tail:
        lines = lines[:-1]
    for i, line in enumerate(lines):
        tag = b"P" if partial_tail and i == len(lines) - 1 else b"F"
        out.append(f"{now} {stream} ".encode() + tag + b" " + line + b"\n")
    return b"".join(out)


async def pump(reader: asyncio.StreamReader, stream: str, out: BinaryIO) -> None:
    buf = b""
    while True:
        chunk = await reader.read(65536)
        if not chunk:
            break
        buf += chunk
        cut = buf.rfind(b"\n")
        if cut >= 0:
            out.write(cri_lines(stream, buf[:cut + 1], False, cri_time()))
            buf = buf[cut + 1:]
        while len(buf) >= MAX_LINE:
            out.write(cri_lines(stream, buf[:MAX_LINE], True, cri_time()))
            buf = buf[MAX_LINE:]
        out.flush()
    if buf:
        out.write(cri_lines(stream, buf + b"\n", False, cri_time()))
        out.flush()


def log_file(pod_dir: Path, container: str, restart_count: int) -> Path:
    return pod_dir / "logs" / container / f"{restart_count}.log"


def rotate(pod_dir: Path, container: str, restart_count: int) -> Path:
    """The new instance's log path; older than the previous instance are removed."""
    path = log_file(pod_dir, container, restart_count)
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in path.parent.glob("*.log"):
        try:
            n = int(old.stem)
        except ValueError:
            continue
        if n < restart_count - 1:
            old.unlink(missing_ok=True)
    return path


def proc_start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks): with the pid, it
    names a process uniquely across pid reuse."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm (field 2) may contain spaces and parentheses: split after the last ')'.
    rest = raw[raw.rfind(")") + 2:].split()
    try:
        return int(rest[19])
    except (IndexError, ValueError):
        return None


def alive(pid: int, start: int | None) -> bool:
    return pid > 0 and start is not None and proc_start_time(pid) == start


async def wait_pid(pid: int) -> None:
    """Wait for a process that is not our child to exit (pidfd readable on exit)."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not done.done():
            done.set_result(None)

    loop.add_reader(fd, ready)
    try:
        await done
    finally:
        loop.remove_reader(fd)
        os.close(fd)
