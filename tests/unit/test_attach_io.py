"""A container's stdio as the node agent holds it (netd.node.containerio), with plain
local processes (no root): FIFO output into the CRI log and to attach subscribers,
stdin as a pipe or /dev/null, a pty with resize, stdinOnce's close, and output that
survives the daemon letting go of its read end (the SIGKILL case) with nothing lost."""
from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from netd.node import containerio
from netd.node.containerio import STDERR, STDOUT, ContainerIO, start_process
from netd.node.containerlog import MAX_LINE, LineLog
from netd.apiserver import podlogs

DEADLINE = 10.0


async def local_spawn(argv: list[str], *, stdin: Any, stdout: Any, stderr: Any, tty: bool,
                      **kw: Any) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(*argv, stdin=stdin, stdout=stdout,
                                                stderr=stderr, start_new_session=True)


async def start(tmp: Path, argv: list[str], *, stdin: bool = False, stdin_once: bool = False,
                tty: bool = False, restart: int = 0
                ) -> tuple[asyncio.subprocess.Process, ContainerIO, Path]:
    log = tmp / "logs" / f"{restart}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    proc, io = await start_process(local_spawn, argv, pod_dir=tmp, container="c",
                                   restart=restart, log_path=log, stdin=stdin,
                                   stdin_once=stdin_once, tty=tty)
    return proc, io, log


async def collect(q: asyncio.Queue[Any], until: bytes | None = None) -> dict[int, bytes]:
    """Items of a subscription until its end (None) or until `until` was seen."""
    got: dict[int, bytes] = {STDOUT: b"", STDERR: b""}

    async def run() -> None:
        while True:
            item = await q.get()
            if item is None:
                return
            got[item[0]] += item[1]
            if until is not None and until in got[STDOUT] + got[STDERR]:
                return
    await asyncio.wait_for(run(), DEADLINE)
    return got


def log_text(path: Path) -> list[tuple[str, bytes]]:
    entries, _ = podlogs.split_complete(path.read_bytes())
    return [(e.stream, e.text) for e in entries]


async def finish(proc: asyncio.subprocess.Process, io: ContainerIO) -> int:
    code = await asyncio.wait_for(proc.wait(), DEADLINE)
    await io.drain(DEADLINE)
    io.finish()
    return code


async def test_output_goes_to_log_and_subscribers_then_fifos_go(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    proc, io, log = await start(tmp_path, ["sh", "-c", f"read x < {gate}; echo out; "
                                           "echo err >&2; printf tail"])
    out_fifo, err_fifo = containerio.fifo_paths(tmp_path, "c", 0)
    assert stat.S_ISFIFO(out_fifo.stat().st_mode) and stat.S_ISFIFO(err_fifo.stat().st_mode)
    q = io.subscribe()
    await asyncio.to_thread(gate.write_text, "go\n")
    assert await finish(proc, io) == 0
    assert await collect(q) == {STDOUT: b"out\ntail", STDERR: b"err\n"}
    assert sorted(log_text(log)) == sorted([("stdout", b"out"), ("stderr", b"err"),
                                            ("stdout", b"tail")])
    assert not out_fifo.exists() and not err_fifo.exists()
    assert (await asyncio.wait_for(io.subscribe().get(), 1)) is None   # after the end


@pytest.mark.parametrize("stdin,want", [
    (False, b"/dev/null\n"),
    (True, b"pipe:"),
], ids=["no-stdin-devnull", "stdin-pipe"])
async def test_stdin_kind(tmp_path: Path, stdin: bool, want: bytes) -> None:
    proc, io, log = await start(tmp_path, ["readlink", "/proc/self/fd/0"], stdin=stdin)
    assert io.stdin is stdin
    assert await finish(proc, io) == 0
    assert log_text(log)[0][1].startswith(want.rstrip(b"\n"))
    assert io.stdin is False        # ended: nothing can be written any more


async def test_stdin_write_and_close(tmp_path: Path) -> None:
    proc, io, log = await start(tmp_path, ["sh", "-c", "read x; echo got:$x; cat; echo eof"],
                                stdin=True, stdin_once=True)
    q = io.subscribe()
    assert io.stdin and io.stdin_once and not io.tty
    await io.write_stdin(b"hello\n")
    assert (await collect(q, until=b"got:hello\n"))[STDOUT] == b"got:hello\n"
    await io.write_stdin(b"more\n")
    io.close_stdin()
    assert not io.stdin
    await io.write_stdin(b"ignored\n")           # refused after close: no error
    got = await collect(q, until=b"eof")
    assert got[STDOUT] == b"more\neof\n"
    assert await finish(proc, io) == 0
    assert [t for _, t in log_text(log)] == [b"got:hello", b"more", b"eof"]


async def test_tty_merges_output_and_resizes(tmp_path: Path) -> None:
    proc, io, log = await start(tmp_path, ["sh", "-c", "read x; stty size; echo err >&2"],
                                stdin=True, tty=True)
    assert io.tty and io.master is not None and io.fifos == []
    q = io.subscribe()
    io.resize(97, 31)
    await io.write_stdin(b"go\n")
    got = await collect(q, until=b"err")
    assert got[STDERR] == b""                     # one terminal: all on stdout
    assert b"31 97" in got[STDOUT] and b"go" in got[STDOUT]   # the terminal echoes input
    assert await finish(proc, io) == 0
    assert all(stream == "stdout" for stream, _ in log_text(log))


async def test_tty_close_stdin_is_end_of_file(tmp_path: Path) -> None:
    proc, io, _ = await start(tmp_path, ["cat"], stdin=True, tty=True)
    io.close_stdin()                              # ^D on an empty line: cat ends
    assert await finish(proc, io) == 0


async def test_subscriber_that_lags_is_cut_off(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(containerio, "QUEUE_LIMIT", 2)
    io = ContainerIO()
    slow, fast = io.subscribe(), io.subscribe()
    for i in range(3):
        io.publish(STDOUT, b"%d" % i)
        if i < 2:
            fast.get_nowait()
    assert [slow.get_nowait() for _ in range(3)] == [(STDOUT, b"0"), (STDOUT, b"1"), None]
    io.unsubscribe(fast)
    io.finish()
    assert fast.get_nowait() == (STDOUT, b"2") and fast.empty()


async def test_output_survives_the_daemon_letting_go(tmp_path: Path) -> None:
    """The SIGKILL case: the daemon's read ends vanish while the process writes on; the
    next daemon re-opens the FIFOs and the log continues with every line, in order."""
    gates = [tmp_path / "g1", tmp_path / "g2"]
    for g in gates:
        os.mkfifo(g)
    script = (f"seq 0 9; read x < {gates[0]}; seq 10 2999; read y < {gates[1]}; "
              "seq 3000 3009")
    proc, io, log = await start(tmp_path, ["sh", "-c", script], restart=3)
    q = io.subscribe()
    await collect(q, until=b"9\n")
    io.finish(remove=False)                      # the daemon is gone
    assert (await asyncio.wait_for(q.get(), 1)) is None
    await asyncio.to_thread(gates[0].write_text, "\n")   # ~14 KiB written with no reader
    again = containerio.adopt_output(tmp_path, "c", 3, log)
    assert again is not None
    await asyncio.to_thread(gates[1].write_text, "\n")
    assert await asyncio.wait_for(proc.wait(), DEADLINE) == 0     # no SIGPIPE
    await again.drain(DEADLINE)
    again.finish()
    assert [int(t) for _, t in log_text(log)] == list(range(3010))
    assert not containerio.stdio_dir(tmp_path).exists()     # the last FIFO took it


async def test_adopt_after_the_process_ended(tmp_path: Path) -> None:
    """FIFOs left by an instance that ended while no daemon ran: EOF at once."""
    for p in containerio.fifo_paths(tmp_path, "c", 0):
        p.parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(p)
    log = tmp_path / "0.log"
    io = containerio.adopt_output(tmp_path, "c", 0, log)
    assert io is not None
    await io.drain(DEADLINE)
    assert all(p.done.done() for p in io.pumps)
    io.finish()
    assert containerio.adopt_output(tmp_path, "c", 0, log) is None   # nothing to adopt


def test_remove_fifos_keeps_live_ones(tmp_path: Path) -> None:
    live = containerio.fifo_paths(tmp_path, "a", 2)
    dead = containerio.fifo_paths(tmp_path, "a", 1)
    for p in (*live, *dead):
        p.parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(p)
    containerio.remove_fifos(tmp_path, frozenset(live))
    assert all(p.exists() for p in live) and not any(p.exists() for p in dead)
    containerio.remove_fifos(tmp_path)
    assert not containerio.stdio_dir(tmp_path).exists()


@pytest.mark.parametrize("chunks,want", [
    ([b"a\nb", b"c\n"], [(True, b"a"), (True, b"bc")]),
    ([b"x" * MAX_LINE + b"y\n"], [(False, b"x" * MAX_LINE), (True, b"y")]),
    ([b"no newline"], [(True, b"no newline")]),
    ([b"\n\n"], [(True, b""), (True, b"")]),
], ids=["joined", "long-line-cut", "tail-at-close", "empty-lines"])
def test_line_log(tmp_path: Path, chunks: list[bytes], want: list[tuple[bool, bytes]]) -> None:
    path = tmp_path / "x.log"
    with path.open("ab") as out:
        ll = LineLog("stdout", out)
        for c in chunks:
            ll.feed(c)
        ll.close()
    entries, rest = podlogs.split_complete(path.read_bytes())
    assert rest == b"" and [(e.full, e.text) for e in entries] == want
