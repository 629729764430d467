"""A command container's stdio as the node agent holds it: output into the CRI log and
to attached clients, stdin and the terminal for `kubectl attach` / `kubectl run -i`.

Output outlives the daemon. A container's stdout and stderr are FIFOs under the pod's
directory, `<pod dir>/stdio/<container>-<restartCount>.{stdout,stderr}`, not pipes the
daemon owns. The process gets each FIFO opened O_RDWR: on Linux that descriptor counts
as a reader too, so the pipe always has one while the process lives and a write never
raises SIGPIPE/EPIPE, even with no daemon at all (no shim process per container, and
nothing extra in the container's descriptor table). The daemon reads through its own
O_RDONLY|O_NONBLOCK descriptor; killed, it loses only that descriptor. The pipe (1 MiB,
F_SETPIPE_SZ) keeps what the process writes meanwhile; when full the process blocks,
as a container blocks on a stalled log pipeline. A restarted daemon re-opens the FIFOs
of the instance it adopts and appends to the same log file: what sat in the pipe comes
late, nothing is lost — except a partial line the old daemon had read but not yet
written (it writes whole lines as they complete), and the pipe's contents if the
process exits while no daemon runs (the kernel frees a pipe nobody has open).
EOF: the daemon's read end opened while the process holds a writer sees EOF (poll HUP)
once every writer closed; opened after the process exited, the first read returns 0 —
read at once, because Linux withholds HUP from a FIFO reader until a writer appears.

stdin (`stdin: true`) is a pipe whose write end the daemon holds, and `tty: true` a
pseudo-terminal whose master the daemon holds (stdout and stderr both come through it;
window size via TIOCSWINSZ). Neither survives the daemon: after a crash the adopted
process has read EOF on stdin (or had its terminal hung up) — containerd keeps them in
its per-container shim; netd chose not to run one. Without `stdin: true`, stdin is
/dev/null.
"""
from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import stat
import struct
import termios
from pathlib import Path
from typing import Any, Awaitable, BinaryIO, Callable

from netd.fdio import FdWriter
from netd.node.containerlog import LineLog

log = logging.getLogger("netd.node.containerio")

STDOUT, STDERR = 1, 2            # channel numbers of the exec/attach stream protocols
F_SETPIPE_SZ = 1031
PIPE_SIZE = 1 << 20              # the default pipe-max-size: 1 MiB of output may wait
QUEUE_LIMIT = 1024               # chunks waiting for one attach client before it is cut off
READS_PER_WAKEUP = 16            # bound one wakeup's work so one chatty container cannot
#                                  starve the loop

Item = tuple[int, bytes] | None
Spawn = Callable[..., Awaitable[asyncio.subprocess.Process]]


def stdio_dir(pod_dir: Path) -> Path:
    return pod_dir / "stdio"


def fifo_paths(pod_dir: Path, container: str, restart: int) -> tuple[Path, Path]:
    """The stdout and stderr FIFOs of one container instance."""
    base = f"{container}-{restart}"
    return stdio_dir(pod_dir) / f"{base}.stdout", stdio_dir(pod_dir) / f"{base}.stderr"


def remove_fifos(pod_dir: Path, keep: frozenset[Path] = frozenset()) -> None:
    """Remove the FIFOs of instances that are gone (all but `keep`)."""
    d = stdio_dir(pod_dir)
    try:
        entries = list(d.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return
    for p in entries:
        if p not in keep:
            p.unlink(missing_ok=True)
    if not keep:
        try:
            d.rmdir()
        except OSError:
            pass


class OutputPump:
    """Reads one non-blocking descriptor (a FIFO's read end or a pty master) to its end:
    each chunk to the log (as CRI lines) and to the attached clients."""

    def __init__(self, fd: int, channel: int, linelog: LineLog | None,
                 publish: Callable[[int, bytes], None]) -> None:
        self.fd = fd
        self.channel = channel
        self.linelog = linelog
        self.publish = publish
        self.loop = asyncio.get_running_loop()
        self.done: asyncio.Future[None] = self.loop.create_future()
        os.set_blocking(fd, False)
        self.loop.add_reader(fd, self._ready)
        # Read once now: a FIFO whose writers are all gone reads EOF but never polls HUP
        # for a reader that opened it after they left.
        self.loop.call_soon(self._ready)

    def _ready(self) -> None:
        for _ in range(READS_PER_WAKEUP):
            if self.fd < 0:
                return
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""          # EIO: the pty's last slave descriptor closed
            if not data:
                self.close()
                return
            if self.linelog is not None:
                try:
                    self.linelog.feed(data)
                except OSError as exc:
                    log.warning("container log write failed: %s", exc)
            self.publish(self.channel, data)

    def close(self) -> None:
        if self.fd >= 0:
            self.loop.remove_reader(self.fd)
            os.close(self.fd)
            self.fd = -1
            if self.linelog is not None:
                try:
                    self.linelog.close()
                except OSError:
                    pass
        if not self.done.done():
            self.done.set_result(None)


class ContainerIO:
    """The attach point of one container instance (what `PodRuntime.attach` returns):
    subscribe() gives a queue of (channel, bytes) items, None once the instance ended;
    write_stdin / close_stdin / resize act on the container's own stdin and terminal.
    Built-in servers get one without output, so attach works and ends with them."""

    def __init__(self, *, tty: bool = False, stdin_once: bool = False) -> None:
        self.tty = tty
        self.stdin_once = stdin_once
        self.pumps: list[OutputPump] = []
        self.fifos: list[Path] = []
        self.master: int | None = None
        self.logfile: BinaryIO | None = None
        self.exited = False
        self._stdin: FdWriter | None = None
        self._queues: set[asyncio.Queue[Item]] = set()

    @property
    def stdin(self) -> bool:
        """True while the container's stdin is open for writing."""
        return self._stdin is not None

    def subscribe(self) -> asyncio.Queue[Item]:
        q: asyncio.Queue[Item] = asyncio.Queue()
        if self.exited:
            q.put_nowait(None)
        else:
            self._queues.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[Item]) -> None:
        self._queues.discard(q)

    def publish(self, channel: int, data: bytes) -> None:
        for q in list(self._queues):
            if q.qsize() >= QUEUE_LIMIT:
                # A client that does not keep up is let go rather than buffering without
                # bound (the log file still gets everything).
                self._queues.discard(q)
                q.put_nowait(None)
                continue
            q.put_nowait((channel, data))

    async def write_stdin(self, data: bytes) -> None:
        w = self._stdin
        if w is None or not data:
            return
        try:
            await w.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_stdin()      # the container closed its stdin or is gone

    def close_stdin(self) -> None:
        """Close the container's stdin for good (stdinOnce): EOF on a pipe, ^D on a
        terminal (which has no half-close)."""
        w, self._stdin = self._stdin, None
        if w is None:
            return
        if self.tty:
            w.write_nowait(b"\x04")
        w.close()

    def resize(self, width: int, height: int) -> None:
        if self.master is None:
            return
        try:
            fcntl.ioctl(self.master, termios.TIOCSWINSZ,
                        struct.pack("HHHH", height, width, 0, 0))
        except OSError:
            pass

    async def drain(self, timeout: float) -> None:
        """Wait for the output to reach its end, at most `timeout` seconds (a background
        child that inherited stdout may hold it open)."""
        pending = [p.done for p in self.pumps if not p.done.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    def finish(self, remove: bool = True) -> None:
        """The instance is over for this daemon: attached clients get the end, every
        descriptor closes; the FIFOs go unless `remove` is False (the daemon stops and
        leaves the process running for the next one to adopt)."""
        self.exited = True
        for q in self._queues:
            q.put_nowait(None)
        self._queues.clear()
        for p in self.pumps:
            p.close()
        w, self._stdin = self._stdin, None
        if w is not None:
            w.close()
        if self.master is not None:
            _close(self.master)
            self.master = None
        if self.logfile is not None:
            self.logfile.close()
            self.logfile = None
        if remove and self.fifos:
            for path in self.fifos:
                path.unlink(missing_ok=True)
            try:
                self.fifos[0].parent.rmdir()     # the pod's last one takes the directory
            except OSError:
                pass


async def start_process(spawn: Spawn, argv: list[str], *, pod_dir: Path, container: str,
                        restart: int, log_path: Path, stdin: bool, stdin_once: bool,
                        tty: bool, **spawn_kw: Any
                        ) -> tuple[asyncio.subprocess.Process, ContainerIO]:
    """Start a container process with its stdio as described above; `spawn(argv,
    stdin=, stdout=, stderr=, tty=, **spawn_kw)` starts it (nsexec.spawn bound to the
    sandbox). Raises what spawn raises, leaving nothing behind."""
    io = ContainerIO(tty=tty, stdin_once=stdin_once)
    child: list[int] = []                       # our copies of the child's ends
    readers: list[tuple[int, str, int]] = []    # (fd, stream, channel)
    writer_fd: int | None = None
    try:
        io.logfile = open(log_path, "ab")
        if tty:
            io.master, slave = os.openpty()
            child.append(slave)
            fds = (slave, slave, slave)
            readers.append((os.dup(io.master), "stdout", STDOUT))
            if stdin:
                writer_fd = os.dup(io.master)
        else:
            ends = []
            for path, stream, channel in zip(fifo_paths(pod_dir, container, restart),
                                             ("stdout", "stderr"), (STDOUT, STDERR)):
                path.parent.mkdir(parents=True, exist_ok=True)
                path.unlink(missing_ok=True)
                os.mkfifo(path, 0o600)
                io.fifos.append(path)
                # The writer first: a reader opened while a writer exists sees HUP later.
                w = os.open(path, os.O_RDWR | os.O_CLOEXEC)
                child.append(w)
                _grow_pipe(w)
                readers.append((os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC),
                                stream, channel))
                ends.append(w)
            stdin_fd = asyncio.subprocess.DEVNULL
            if stdin:
                r, writer_fd = os.pipe2(os.O_CLOEXEC)
                child.append(r)
                stdin_fd = r
            fds = (stdin_fd, ends[0], ends[1])
        proc = await spawn(argv, stdin=fds[0], stdout=fds[1], stderr=fds[2], tty=tty,
                           **spawn_kw)
    except BaseException:
        for fd in [fd for fd, _, _ in readers] + ([writer_fd] if writer_fd is not None
                                                   else []):
            _close(fd)
        io.finish(remove=True)
        raise
    finally:
        for fd in child:
            _close(fd)
    logfile = io.logfile
    io.pumps = [OutputPump(fd, channel, LineLog(stream, logfile) if logfile else None,
                           io.publish) for fd, stream, channel in readers]
    if writer_fd is not None:
        io._stdin = FdWriter(writer_fd)
    return proc, io


def adopt_output(pod_dir: Path, container: str, restart: int, log_path: Path
                 ) -> ContainerIO | None:
    """Resume pumping the output of an instance a previous daemon started (None when
    it has no FIFOs: a terminal, or started by a netd without them)."""
    paths = fifo_paths(pod_dir, container, restart)
    if not all(_is_fifo(p) for p in paths):
        return None
    io = ContainerIO()
    io.fifos = list(paths)
    io.logfile = open(log_path, "ab")
    for path, stream, channel in zip(paths, ("stdout", "stderr"), (STDOUT, STDERR)):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            log.warning("cannot re-open %s: %s", path, exc)
            continue
        io.pumps.append(OutputPump(fd, channel, LineLog(stream, io.logfile), io.publish))
    return io


def _is_fifo(path: Path) -> bool:
    try:
        return stat.S_ISFIFO(path.lstat().st_mode)
    except OSError:
        return False


def _grow_pipe(fd: int) -> None:
    try:
        fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:
        pass                    # a lower pipe-max-size: the default 64 KiB will do


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass
