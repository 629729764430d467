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


class LineLog:
    """One stream's bytes, as they arrive, turned into CRI log lines: complete lines at
    once, a line longer than 16 KiB cut into P entries, the rest held until its newline
    (or `close`). Both streams of an instance share the file; each write is whole lines."""

    def __init__(self, stream: str, out: BinaryIO) -> None:
        self.stream = stream
        self.out = out
        self.buf = b""

    def feed(self, chunk: bytes) -> None:
        buf = self.buf + chunk
        cut = buf.rfind(b"\n")
        if cut >= 0:
            done, buf = buf[:cut + 1], buf[cut + 1:]
            now = cri_time()
            if len(done) <= MAX_LINE:
                self.out.write(cri_lines(self.stream, done, False, now))
            else:
                self.out.write(b"".join(self._entries(line, now)
                                        for line in done[:-1].split(b"\n")))
        while len(buf) >= MAX_LINE:
            self.out.write(cri_lines(self.stream, buf[:MAX_LINE], True, cri_time()))
            buf = buf[MAX_LINE:]
        self.buf = buf
        self.out.flush()

    def _entries(self, line: bytes, now: str) -> bytes:
        """One complete line; longer than 16 KiB, it is cut into P entries first."""
        out = []
        while len(line) > MAX_LINE:
            out.append(cri_lines(self.stream, line[:MAX_LINE], True, now))
            line = line[MAX_LINE:]
        out.append(cri_lines(self.stream, line + b"\n", False, now))
        return b"".join(out)

    def close(self) -> None:
        """The stream ended: a last unterminated line is written as a full one."""
        if self.buf:
            self.out.write(cri_lines(self.stream, self.buf + b"\n", False, cri_time()))
            self.buf = b""
            self.out.flush()


def log_file(pod_dir: Path, container: str, restart_count: int) -> Path:
    return pod_dir / "logs" / container / f"{restart_count}.log"


def rotate(pod_dir: Path, container: str, restart_count: int) -> Path:
    """The new instance's log path; older than the previous instance are removed.
    Runs on the node's file writer thread (netd.node.filewriter), so bare os calls:
    the directory usually exists already (volumes.pod_log_dirs, made with the sandbox)."""
    path = log_file(pod_dir, container, restart_count)
    d = str(path.parent)
    try:
        entries = os.listdir(d)
    except FileNotFoundError:
        os.makedirs(d, exist_ok=True)
        entries = []
    for entry in entries:
        stem, dot, ext = entry.partition(".")
        if not dot or ext != "log":
            continue
        try:
            n = int(stem)
        except ValueError:
            continue
        if n < restart_count - 1:
            try:
                os.unlink(f"{d}/{entry}")
            except FileNotFoundError:
                pass
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
