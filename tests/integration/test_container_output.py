"""Container stdio on real pods (root): output through FIFOs that outlive the daemon (a
SIGKILLed `netd up` restarted: the adopted process's log goes on with every line),
stdin and TTY containers attached through the node runtime, and no FIFO left behind
by pod deletion or `netd down`."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cluster import Cluster, new_cluster, wait_for
from tests.integration.test_agent import Env, agent_env, pod  # noqa: F401 (fixture)
from netd.node import names

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]

COUNTER = """\
apiVersion: v1
kind: Pod
metadata: {name: counter}
spec:
  containers:
  - name: main
    image: busybox
    command: [sh, -c, 'i=0; while true; do echo $i; i=$((i+1)); sleep 0.05; done']
"""


def numbers(c: Cluster) -> list[int]:
    out = c.kubectl("logs", "counter", check=False).stdout
    return [int(x) for x in out.split()]


def state(c: Cluster, uid: str) -> dict[str, Any]:
    return dict(json.loads(Path(names.state_path(c.name, uid)).read_text()))


def fifos(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if stat.S_ISFIFO(p.lstat().st_mode)]


def test_output_survives_sigkill_and_restart(tmp_path: Path) -> None:
    c = new_cluster(tmp_path, config={"node_mode": "netns"}).start()
    try:
        c.kubectl("apply", "-f", "-", input=COUNTER)
        wait_for(lambda: len(numbers(c)) >= 10, 60, what="the counter's first lines")
        uid = json.loads(c.kubectl("get", "pod", "counter", "-o", "json").stdout
                         )["metadata"]["uid"]
        pid = int(state(c, uid)["containers"]["main"]["pid"])
        pod_dir = c.root / "pods" / uid
        assert [p.name for p in fifos(pod_dir)] and \
            sorted(p.name for p in fifos(pod_dir)) == ["main-0.stderr", "main-0.stdout"]
        assert c.proc is not None
        os.kill(c.proc.pid, signal.SIGKILL)
        c.proc.wait(timeout=10)
        c.proc = None
        # While no daemon runs, the process writes on: no SIGPIPE, the pipe holds it.
        c.start()
        seen = len(numbers(c))
        wait_for(lambda: len(numbers(c)) >= seen + 40, 60, what="the log to grow again")
        got = numbers(c)
        assert got == list(range(len(got))), "lines lost or out of order across the restart"
        assert int(state(c, uid)["containers"]["main"]["pid"]) == pid   # adopted
        assert os.path.exists(f"/proc/{pid}")
        restarts = json.loads(c.kubectl("get", "pod", "counter", "-o", "json").stdout
                              )["status"]["containerStatuses"][0]["restartCount"]
        assert restarts == 0
        c.kubectl("delete", "pod", "counter", "--grace-period=1")
        wait_for(lambda: c.kubectl("get", "pod", "counter", check=False).returncode != 0,
                 30, what="the pod to go")
        assert not pod_dir.exists() or not fifos(pod_dir), "pod deletion left FIFOs"
        c.kubectl("apply", "-f", "-", input=COUNTER)
        wait_for(lambda: len(numbers(c)) >= 2, 60, what="a new counter")
    finally:
        c.stop()
        c.down()
    assert not c.root.exists() or not fifos(c.root), "netd down left FIFOs"


async def wait_running(env: Env, name: str) -> dict[str, Any]:
    return await env.wait("default", name, lambda p: any(
        "running" in (s.get("state") or {})
        for s in (p.get("status") or {}).get("containerStatuses") or []))


async def read_until(q: asyncio.Queue[Any], want: bytes) -> bytes:
    got = b""

    async def run() -> None:
        nonlocal got
        while want not in got:
            item = await q.get()
            assert item is not None, f"ended before {want!r}: {got!r}"
            got += item[1]
    await asyncio.wait_for(run(), 20)
    return got


async def test_stdin_and_tty_containers_through_the_runtime(agent_env: Env) -> None:
    env = agent_env
    agents = await env.start_agents()
    rt = agents[0].runtime
    await env.create(pod("io", [
        {"name": "cat", "image": "busybox", "command": ["cat"], "stdin": True,
         "stdinOnce": True},
        {"name": "term", "image": "busybox", "command": ["sh"], "stdin": True, "tty": True},
        {"name": "plain", "image": "busybox", "command": ["sh", "-c",
                                                          "readlink /proc/self/fd/0; "
                                                          "exec sleep 3600"]}]))
    p = await wait_running(env, "io")
    await env.wait("default", "io", lambda p: all(
        "running" in (s.get("state") or {}) for s in p["status"]["containerStatuses"]))
    uid = p["metadata"]["uid"]
    pod_dir = Path(env.ctx.config.cluster_state_dir) / "pods" / uid
    cat = rt.attach("default", "io", "cat")
    assert cat is not None and cat.stdin and cat.stdin_once
    q = cat.subscribe()
    await cat.write_stdin(b"hello\n")
    assert await read_until(q, b"hello\n") == b"hello\n"
    term = rt.attach("default", "io", "term")
    assert term is not None and term.tty
    tq = term.subscribe()
    term.resize(97, 31)
    await term.write_stdin(b"stty size; hostname\n")
    out = await read_until(tq, b"31 97")
    assert b"stty size" in out                      # echoed by the terminal
    await read_until(tq, b"io")
    plain = rt.attach("default", "io", "plain")
    assert plain is not None and not plain.stdin and not plain.tty
    await plain.write_stdin(b"refused\n")           # no stdin: ignored
    log = (pod_dir / "logs" / "plain" / "0.log").read_bytes()
    assert b"stdout F /dev/null" in log
    assert sorted(x.name for x in fifos(pod_dir)) == [
        "cat-0.stderr", "cat-0.stdout", "plain-0.stderr", "plain-0.stdout"]
    cat.close_stdin()                               # stdinOnce's close: cat ends
    assert await asyncio.wait_for(q.get(), 20) is None
    p = await env.wait("default", "io", lambda p: any(
        s["name"] == "cat" and s.get("restartCount", 0) >= 1
        for s in p["status"]["containerStatuses"]))
    await env.ctx.client.delete("Pod", "default", "io", grace=1)

    async def gone() -> None:
        while env.ctx.client.get_or_none("Pod", "default", "io") is not None:
            await asyncio.sleep(0.05)
    await asyncio.wait_for(gone(), 20)
    assert not pod_dir.exists() or not fifos(pod_dir), "pod deletion left FIFOs"
