"""`netd up` / `netd down` as a user runs them."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.cluster import EXAMPLES, ROOT, new_cluster, wait_for

pytestmark = pytest.mark.e2e


def netd(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "netd.cli.main", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_two_clusters_side_by_side_and_down(tmp_path: Path) -> None:
    a = new_cluster(tmp_path).start()
    b = new_cluster(tmp_path).start()
    try:
        assert a.server != b.server
        a.kubectl("apply", "-f", str(EXAMPLES / "seed004-web.yaml"))
        assert b.kubectl("get", "sts", "web", check=False).returncode != 0
        assert a.kubectl("get", "sts", "web", "-o", "name").stdout.strip() == \
            "statefulset.apps/web"
        # The same cluster cannot run twice on one state directory.
        again = netd("up", "--name", a.name, "--state-dir", str(tmp_path), "--api-port", "0")
        assert again.returncode == 1 and "already running" in again.stderr
        down = netd("down", "--name", a.name, "--state-dir", str(tmp_path))
        assert down.returncode == 0, down.stderr
        assert f"cluster {a.name} removed" in down.stdout
        assert a.proc is not None
        wait_for(lambda: a.proc is not None and a.proc.poll() is not None, 30,
                 what="the daemon to exit after down")
        assert not a.root.exists()
        assert b.kubectl("get", "ns", "default", "-o", "name").stdout.strip() == \
            "namespace/default"
    finally:
        a.stop()
        b.stop()


def test_up_applies_manifests(tmp_path: Path) -> None:
    c = new_cluster(tmp_path, "-f", str(EXAMPLES / "seed001-pv.yaml"), "-f",
                    str(EXAMPLES / "seed001-statefulset.yaml")).start()
    try:
        wait_for(lambda: c.kubectl("get", "sts", "myapp", check=False).returncode == 0, 30,
                 what="the manifests to be applied")
        pvs = c.kubectl("get", "pv", "-o", "name").stdout.split()
        # The StatefulSet's claims get the default class and their own provisioned PVs.
        assert {"persistentvolume/pv001", "persistentvolume/pv002",
                "persistentvolume/pv003"} <= set(pvs)
        assert "persistentvolume/pv001 created" in c.logs()
    finally:
        assert c.stop() == 0


@pytest.mark.parametrize("args,message", [
    (["--config", "/nonexistent.yaml"], "No such file"),
    (["-f", "/nonexistent.yaml"], "No such file"),
    (["--name", "Bad_Name"], "cluster_name"),
], ids=["missing-config", "missing-manifest", "bad-name"])
def test_up_rejects_bad_input_clearly(tmp_path: Path, args: list[str], message: str) -> None:
    proc = netd("up", "--state-dir", str(tmp_path), "--api-port", "0", *args)
    assert proc.returncode == 2
    assert message in proc.stderr


def test_stops_promptly_with_open_and_abandoned_watches(tmp_path: Path) -> None:
    import time

    c = new_cluster(tmp_path).start()
    try:
        watchers = [subprocess.Popen(["kubectl", "get", "ns", "-w"], env=c.env(),
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                    for _ in range(2)]
        for w in watchers:
            assert w.stdout is not None
            w.stdout.readline()  # the list arrived; the watch is open
        watchers[0].kill()  # abandoned: the server must notice
        watchers[0].wait()
        t = time.monotonic()
        assert c.stop() == 0
        assert time.monotonic() - t < 10
        watchers[1].wait(timeout=10)  # the open watch was ended by the server
    finally:
        c.stop()
