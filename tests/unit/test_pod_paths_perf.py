"""The cheap paths of pod start-up (issue 4 performance): right-sized stored encodings,
built-in sockets opened off the event loop, sandbox files written with few syscalls,
netlink replies read into a bounded buffer. Behaviour only, no timings."""
from __future__ import annotations

import asyncio
import errno
import os
import socket
import stat
import threading
import tracemalloc
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from netd.config import Config
from netd.node import handles, names, nl
from netd.node.builtin import BuiltinPlan, BuiltinServers, PodView
from netd.node.containerlog import log_file, rotate
from netd.node.sandbox import Sandbox, _write_file
from netd.node.volumes import make_pod_dirs, pod_dir
from netd.store.base import ADDED, DELETED, WatchEvent
from netd.store.cache import encode, encode_new
from netd.store.watch import EventHistory

Obj = dict[str, Any]

SMALL: Obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p0"},
              "spec": {"containers": [{"name": "web", "image": "nginx"}]}}
LARGE: Obj = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "svc"},
              "subsets": [{"addresses": [{"ip": f"10.244.{i // 250}.{i % 250}"}
                                         for i in range(400)]}]}


def allocated(fn: Any, n: int = 50) -> float:
    """Bytes still allocated per result after building n results with fn()."""
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        keep = [fn() for _ in range(n)]
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    diff = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert len(keep) == n
    return diff / n


@pytest.mark.parametrize("obj", [SMALL, LARGE], ids=["small-pod", "large-endpoints"])
def test_encode_is_right_sized(obj: Obj) -> None:
    raw = encode(obj)
    assert raw == orjson.dumps(obj) and type(raw) is bytes
    # orjson's own result keeps its growth buffer (4 KiB for a 150-byte object); the
    # store holds these bytes for every object and history event.
    assert allocated(lambda: encode(obj)) < len(raw) + 200


def test_encode_new_stamps_and_encodes_right_sized() -> None:
    stored, raw = encode_new(SMALL, 7)
    assert stored["metadata"]["resourceVersion"] == "7" and "resourceVersion" not in \
        SMALL["metadata"]
    assert orjson.loads(raw) == stored
    assert allocated(lambda: encode_new(SMALL, 7)[1]) < 2000


@pytest.mark.parametrize("typ", [ADDED, DELETED], ids=["added-shared", "deleted-compacted"])
def test_history_keeps_right_sized_bytes(typ: str) -> None:
    hist = EventHistory(100, 0)
    rv = [0]

    def one() -> None:
        rv[0] += 1
        raw = orjson.dumps(SMALL) if typ == DELETED else encode(SMALL)
        hist.append(WatchEvent(typ, rv[0], "pods", "default", "p0", SMALL, raw, None))

    per = allocated(one, 40)
    assert per < 2000, per
    replay = hist.since(0, "pods", None)
    assert [e.rv for e in replay] == list(range(1, 41))
    assert all(e.raw == orjson.dumps(SMALL) and e.obj == SMALL for e in replay)


# ---- built-in servers: sockets come from a worker thread ------------------------------

def view() -> PodView:
    return PodView("web-0", "default/web-0", "web", [], lambda code: None)


def loopback(family: int, type_: int, port: int) -> socket.socket:
    s = socket.socket(family, type_)
    s.bind(("127.0.0.1", 0))
    if type_ == socket.SOCK_STREAM:
        s.listen(16)
    s.setblocking(False)
    return s


async def test_sockets_are_opened_off_the_event_loop() -> None:
    threads: list[threading.Thread] = []

    def opener(family: int, type_: int, port: int) -> socket.socket:
        threads.append(threading.current_thread())
        return loopback(family, type_, port)

    srv = BuiltinServers(view())
    await srv.start(BuiltinPlan("web", (0,), (0,)), opener)
    try:
        assert len(threads) == 2
        assert all(t is not threading.current_thread() for t in threads)
        assert len(srv.servers) == 1 and len(srv.transports) == 1
    finally:
        srv.close()


async def test_cancelled_start_closes_the_late_socket() -> None:
    """A socket that arrives after its pod stopped starting must not stay open (it
    would keep the pod's network namespace alive)."""
    release = threading.Event()
    made: list[socket.socket] = []

    def slow(family: int, type_: int, port: int) -> socket.socket:
        release.wait(5)
        s = loopback(family, type_, port)
        made.append(s)
        return s

    srv = BuiltinServers(view())
    task = asyncio.get_running_loop().create_task(srv.start(BuiltinPlan("web", (0,)), slow))
    await asyncio.sleep(0)
    task.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(200):            # the executor's result reaches the loop, then closes
        if made and made[0].fileno() == -1:
            break
        await asyncio.sleep(0.005)
    assert made and made[0].fileno() == -1
    assert srv.servers == []


# ---- sandbox files -------------------------------------------------------------------


def sandbox(netns: str) -> Sandbox:
    return Sandbox("default/p0", netns, f"/run/netns/{netns}", f"/run/netd/c/uts/{netns}",
                   "10.244.0.2", "vabc", None)  # type: ignore[arg-type]


@pytest.mark.parametrize("rewrite", [False, True], ids=["fresh-dir", "rewrite-atomic"])
def test_write_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rewrite: bool) -> None:
    from netd.node.sandbox import SandboxManager
    monkeypatch.setattr(names, "ETC_NETNS_DIR", str(tmp_path / "etc" / "netns"))
    monkeypatch.setattr(names, "RUN_DIR", str(tmp_path / "run"))
    sb = sandbox("c_default_p0")
    mgr = SandboxManager.__new__(SandboxManager)
    mgr.cluster = "c"
    if rewrite:
        mgr.write_files(sb, "old resolv\n", "old hosts\n")
    mgr.write_files(sb, "nameserver 10.96.0.10\n", "10.244.0.2\tp0\n")
    d = tmp_path / "etc" / "netns" / "c_default_p0"
    assert (d / "resolv.conf").read_text() == "nameserver 10.96.0.10\n"
    assert (d / "hosts").read_text() == "10.244.0.2\tp0\n"
    assert sorted(p.name for p in d.iterdir()) == ["hosts", "resolv.conf"]   # no tmp left
    assert all(stat.S_IMODE((d / f).stat().st_mode) == 0o644 for f in ("hosts", "resolv.conf"))


@pytest.mark.parametrize("data", [b"", b"1", b"x" * 200_000], ids=["empty", "one", "large"])
def test_write_file_truncates_and_writes_all(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "f"
    p.write_bytes(b"previous content that is longer")
    _write_file(str(p), data, create=True)
    assert p.read_bytes() == data


@pytest.mark.parametrize("present", [
    ("resolv.conf", "hosts"), ("hosts",), (), ("resolv.conf", "hosts", ".hosts.tmp", "extra")],
    ids=["both", "one", "empty-dir", "foreign-files"])
def test_remove_etc_dir(tmp_path: Path, present: tuple[str, ...]) -> None:
    target, link = tmp_path / "run" / "c_default_p0", tmp_path / "etc" / "c_default_p0"
    assert handles.make_etc_dir(str(target), str(link)) is True
    for f in present:
        (target / f).write_text("x")
    handles.remove_etc_dir(str(target), str(link))
    assert not target.exists() and not link.is_symlink()
    handles.remove_etc_dir(str(target), str(link))     # already gone: no error


def test_etc_dir_is_a_link_to_the_files(tmp_path: Path) -> None:
    target, link = tmp_path / "run" / "etc" / "n", tmp_path / "etc" / "netns" / "n"
    assert handles.make_etc_dir(str(target), str(link)) is True
    (target / "hosts").write_text("h")
    assert (link / "hosts").read_text() == "h" and os.readlink(link) == str(target)
    assert handles.make_etc_dir(str(target), str(link)) is False    # exists: replace files


@pytest.mark.parametrize("old", ["directory", "stale-link"])
def test_etc_dir_replaces_what_an_older_netd_left(tmp_path: Path, old: str) -> None:
    target, link = tmp_path / "run" / "n", tmp_path / "etc" / "n"
    link.parent.mkdir()
    if old == "directory":
        link.mkdir()
        (link / "hosts").write_text("old")
    else:
        link.symlink_to(tmp_path / "elsewhere")
    handles.make_etc_dir(str(target), str(link))
    assert link.is_symlink() and os.readlink(link) == str(target)


def test_mount_points_share_one_inode(tmp_path: Path) -> None:
    paths = [str(tmp_path / f"ns{i}") for i in range(3)]
    for p in paths:
        handles.mount_point(p)
    inodes = {os.stat(p).st_ino for p in paths}
    assert len(inodes) == 1 and os.stat(paths[0]).st_nlink == 3
    assert all(os.path.getsize(p) == 0 for p in paths)
    with pytest.raises(FileExistsError):
        handles.mount_point(paths[0])


def test_mount_point_after_every_name_went(tmp_path: Path) -> None:
    """An O_TMPFILE inode cannot be linked again once all its names are gone: a fresh
    one takes over."""
    first = str(tmp_path / "a")
    handles.mount_point(first)
    os.unlink(first)
    handles.mount_point(str(tmp_path / "b"))
    assert os.path.exists(tmp_path / "b") and os.stat(tmp_path / "b").st_nlink == 1


def test_write_file_without_create_needs_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        _write_file(str(tmp_path / "missing"), b"1", create=False)


@pytest.mark.parametrize("spec,logs", [
    ({"containers": [{"name": "web", "command": ["sleep", "9"]}, {"name": "side",
                                                                   "args": ["sh", "-c", "x"]}],
      "initContainers": [{"name": "init", "command": ["true"]}]},
     ["init", "side", "web"]),
    ({"containers": [{"name": "web", "command": ["sleep", "9"]}, {"name": "nginx"},
                     {"name": "agnhost", "args": ["netexec", "--http-port=8080"]}]}, ["web"]),
    ({"containers": [{"name": "nginx"}]}, []),
    ({"containers": []}, []),
], ids=["processes", "emulated-images-get-none", "only-emulated", "no-containers"])
def test_make_pod_dirs(tmp_path: Path, spec: Obj, logs: list[str]) -> None:
    cfg = replace(Config(), state_dir=str(tmp_path), cluster_name="c1")
    pod = {"metadata": {"name": "p0", "namespace": "default", "uid": "u-1"}, "spec": spec}
    make_pod_dirs(cfg, pod)
    make_pod_dirs(cfg, pod)                 # idempotent (an adopted pod starts again)
    base = pod_dir(cfg, "u-1")
    if not logs:                            # made with the pod's first file instead
        assert not base.exists()
        return
    assert sorted(p.name for p in (base / "logs").iterdir()) == logs
    for name in logs:                       # the log writer finds its directory made
        assert rotate(base, name, 0) == log_file(base, name, 0)
        assert log_file(base, name, 0).parent.is_dir()


# ---- netlink replies -----------------------------------------------------------------

class FakeSock:
    def __init__(self, replies: list[tuple[bytes, int]]) -> None:
        self.replies = replies
        self.sizes: list[int] = []

    def setsockopt(self, *a: Any) -> None:
        pass

    def bind(self, addr: Any) -> None:
        pass

    def send(self, data: bytes) -> int:
        return len(data)

    def recvmsg(self, size: int) -> tuple[bytes, list[Any], int, Any]:
        self.sizes.append(size)
        data, flags = self.replies.pop(0)
        return data, [], flags, None

    def close(self) -> None:
        pass


def ack(seq: int, code: int = 0) -> bytes:
    body = nl._ERR.pack(-code) + b"\0" * 16
    return nl._HDR.pack(nl._HDR.size + len(body), nl.NLMSG_ERROR, 0, seq, 0) + body


@pytest.mark.parametrize("flags,code", [(0, 0), (socket.MSG_TRUNC, errno.EMSGSIZE)],
                         ids=["ack", "truncated"])
def test_netlink_reads_bounded_replies(flags: int, code: int) -> None:
    sock = FakeSock([(ack(1), flags)])
    link = nl.Netlink(sock=sock)  # type: ignore[arg-type]
    if code:
        with pytest.raises(nl.NetlinkError) as exc:
            link.run([nl.link_set("lo", up=True)])
        assert exc.value.errno == code
    else:
        link.run([nl.link_set("lo", up=True)])
    assert sock.sizes == [nl.RECV_SIZE] and nl.RECV_SIZE <= 1 << 16
