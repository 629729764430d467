"""`kubectl run -i`, `kubectl attach -i` and `kubectl attach -it` (the real kubectl
1.32) against a running netd with real pods (root, netns nodes): stdin reaches the
container's process, its output comes back, a terminal session echoes and resizes."""
from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import shutil
import struct
import subprocess
import termios
import time
from typing import Iterator

import pytest

from tests.e2e.cluster import Cluster, new_cluster, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (real namespaces)"),
              pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl")]

PODS = """\
apiVersion: v1
kind: Pod
metadata: {name: cat}
spec:
  containers:
  - {name: main, image: busybox, command: [cat], stdin: true}
---
apiVersion: v1
kind: Pod
metadata: {name: term}
spec:
  restartPolicy: Never
  containers:
  - {name: main, image: busybox, command: [sh], stdin: true, tty: true}
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = new_cluster(tmp_path_factory.mktemp("attach"), config={"node_mode": "netns"})
    c.start()
    try:
        c.kubectl("apply", "-f", "-", input=PODS)
        wait_for(lambda: running(c, "cat") and running(c, "term"), 60, what="pods running")
        yield c
    finally:
        code = c.stop()
        c.down()
        assert code == 0, c.logs()


def running(c: Cluster, name: str) -> bool:
    got = c.kubectl("get", "pod", name, "-o", "json", check=False)
    return got.returncode == 0 and json.loads(got.stdout)["status"].get("phase") == "Running"


def kubectl_argv(*args: str) -> list[str]:
    return [shutil.which("kubectl") or "kubectl", *args]


def read_until(fd: int, want: bytes, timeout: float = 30) -> bytes:
    got = b""
    deadline = time.monotonic() + timeout
    while want not in got:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {want!r} in {got!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                raise AssertionError(f"output ended before {want!r}: {got!r}")
            got += chunk
    return got


def test_kubectl_run_i_rm_pipes_stdin(cluster: Cluster) -> None:
    out = cluster.kubectl("run", "-i", "--rm", "--restart=Never", "t", "--image=busybox",
                          "--", "sh", "-c", "read x; echo got:$x", input="hello\n",
                          timeout=120)
    assert "got:hello" in out.stdout, out
    wait_for(lambda: cluster.kubectl("get", "pod", "t", check=False).returncode != 0, 30,
             what="--rm to delete the pod")


def test_kubectl_attach_i_echoes_lines(cluster: Cluster) -> None:
    proc = subprocess.Popen(kubectl_argv("attach", "-i", "cat"), env=cluster.env(),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        assert proc.stdin is not None and proc.stdout is not None
        for line in (b"one\n", b"two\n"):
            proc.stdin.write(line)
            proc.stdin.flush()
            assert read_until(proc.stdout.fileno(), line) == line
        proc.stdin.close()          # stdin EOF: a detach, cat runs on
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert running(cluster, "cat")
    got = cluster.kubectl("logs", "cat").stdout
    assert got == "one\ntwo\n"


def test_kubectl_attach_it_terminal_and_resize(cluster: Cluster) -> None:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 31, 97, 0, 0))
    proc = subprocess.Popen(kubectl_argv("attach", "-it", "term"), env=cluster.env(),
                            stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    os.close(slave)
    try:
        read_until(master, b"try pressing enter")
        # What is typed before kubectl switched the terminal to raw mode may be flushed:
        # press enter, as the hint says, until the shell's prompt comes back.
        for _ in range(20):
            os.write(master, b"\n")
            try:
                read_until(master, b"# ", timeout=1)
                break
            except AssertionError:
                continue
        os.write(master, b"echo hi-$((40+2))\n")
        read_until(master, b"hi-42")               # the shell answers through kubectl
        os.write(master, b"stty size\n")
        read_until(master, b"31 97")               # kubectl's resize reached the pty
        os.write(master, b"exit\n")
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    wait_for(lambda: json.loads(cluster.kubectl("get", "pod", "term", "-o", "json").stdout)
             ["status"]["phase"] == "Succeeded", 30, what="the shell's exit to end the pod")


def test_kubectl_exec_it_on_the_real_daemon(cluster: Cluster) -> None:
    """The daemon's loop (uvloop) runs a child's preexec hook before its stdio is set
    up: the terminal must still become the command's, and its output all arrive."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 31, 97, 0, 0))
    proc = subprocess.Popen(kubectl_argv("exec", "-it", "cat", "--", "sh", "-c",
                                         "tty; stty size"), env=cluster.env(),
                            stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    os.close(slave)
    try:
        out = read_until(master, b"31 97")
        assert b"/dev/pts/" in out
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
