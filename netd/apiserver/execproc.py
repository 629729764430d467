"""A command started for pods/exec, with its stdio as asyncio streams: pipes, or a
pseudo-terminal for `-t` (stdout and stderr merged, as a TTY exec has no stderr channel,
and window size changes applied with TIOCSWINSZ). The terminal's master is written with
netd.fdio.FdWriter, not a write-pipe transport (uvloop's would read the master and
swallow the command's output)."""
from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import struct
import termios
from typing import Any, Awaitable, Callable

from netd.apiserver import wsproto
from netd.fdio import FdWriter

Spawn = Callable[..., Awaitable[asyncio.subprocess.Process]]


class ExecProcess:
    def __init__(self, proc: asyncio.subprocess.Process, outputs: dict[int,
                 asyncio.StreamReader], stdin: asyncio.StreamWriter | FdWriter | None,
                 master: int | None = None, transports: list[asyncio.BaseTransport]
                 | None = None) -> None:
        self.proc = proc
        self.outputs = outputs          # channel (STDOUT/STDERR) -> reader
        self._stdin = stdin
        self._master = master
        self._transports = transports or []
        self._stdin_closed = stdin is None

    async def write_stdin(self, data: bytes) -> None:
        if self._stdin is None or self._stdin_closed or not data:
            return
        if isinstance(self._stdin, FdWriter):
            await self._stdin.write(data)
            return
        self._stdin.write(data)
        await self._stdin.drain()

    def close_stdin(self) -> None:
        if self._stdin is None or self._stdin_closed:
            return
        self._stdin_closed = True
        if isinstance(self._stdin, FdWriter):
            # A terminal has no half-close: end of input is ^D to the line discipline.
            self._stdin.write_nowait(b"\x04")
            return
        self._stdin.close()

    def resize(self, size: wsproto.Size) -> None:
        if self._master is None:
            return
        fcntl.ioctl(self._master, termios.TIOCSWINSZ,
                    struct.pack("HHHH", size.height, size.width, 0, 0))

    async def wait(self) -> int:
        return await self.proc.wait()

    def kill(self) -> None:
        """SIGKILL the command's session (it was started as a session leader)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass

    def close(self) -> None:
        for t in self._transports:
            t.close()
        if self._stdin is not None:
            self._stdin.close()
        self._transports = []


async def _reader_for(fd: int) -> tuple[asyncio.StreamReader, asyncio.BaseTransport]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0))
    return reader, transport


async def start_exec(spawn: Spawn, sb: Any, argv: list[str], *, env: dict[str, str],
                     mounts: Any, cwd: str | None, stdin: bool, stdout: bool, stderr: bool,
                     tty: bool, size: wsproto.Size | None = None) -> ExecProcess:
    """Start argv in the sandbox with the requested streams (FileNotFoundError when the
    binary is missing, from spawn)."""
    kw: dict[str, Any] = {"env": env, "cwd": cwd, "mounts": list(mounts or [])}
    if not tty:
        pipe, null = asyncio.subprocess.PIPE, asyncio.subprocess.DEVNULL
        proc = await spawn(sb, argv, stdin=pipe if stdin else null,
                           stdout=pipe if stdout else null,
                           stderr=pipe if stderr else null, **kw)
        outputs: dict[int, asyncio.StreamReader] = {}
        if proc.stdout is not None:
            outputs[wsproto.STDOUT] = proc.stdout
        if proc.stderr is not None:
            outputs[wsproto.STDERR] = proc.stderr
        return ExecProcess(proc, outputs, proc.stdin)
    master, slave = os.openpty()
    if size is not None:
        # Set before the command starts so its first `stty size`/curses call sees it.
        fcntl.ioctl(master, termios.TIOCSWINSZ,
                    struct.pack("HHHH", size.height, size.width, 0, 0))
    try:
        proc = await spawn(sb, argv, stdin=slave, stdout=slave, stderr=slave, tty=True, **kw)
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    reader, rt = await _reader_for(os.dup(master))
    exe = ExecProcess(proc, {wsproto.STDOUT: reader} if stdout else {},
                      FdWriter(os.dup(master)) if stdin else None, master, [rt])
    # The master itself stays open for TIOCSWINSZ until the process is gone.
    orig_close = exe.close

    def close() -> None:
        orig_close()
        try:
            os.close(master)
        except OSError:
            pass

    exe.close = close  # type: ignore[method-assign]
    return exe
