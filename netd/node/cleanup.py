"""`netd down` for the node network: registers the remover that deletes every kernel
object of the cluster by name (netd/node/cluster_net.teardown_sync).

Imported for its side effect by whoever wires the node agent (daemon/CLI)."""
from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

from netd import cleanup
from netd.config import Config


def remove_node_network(config: Config) -> None:
    if config.node_mode == "simulated" or os.geteuid() != 0:
        # Nothing was created without root; never fail `netd down` for it.
        return
    kill_pod_processes(config)
    # What no record names (a process started the moment before a crash, an exec
    # session, `ip netns exec` by hand) still lives in a pod's namespace: it goes too.
    from netd.node import names
    pods = [names.netns_path(e) for e in _listdir(names.NETNS_DIR)
            if names.parse_pod_netns(config.cluster_name, e) is not None]
    for pids in netns_processes(pods).values():
        kill_unrecorded(pids, set())
    from netd.node.cluster_net import teardown_sync
    teardown_sync(config)


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []


def netns_processes(paths: list[str]) -> dict[str, list[int]]:
    """The processes whose network namespace is one of `paths` (pinned namespace
    files), by the namespace's device and inode: one pass over /proc for all."""
    want: dict[tuple[int, int], str] = {}
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        want[(st.st_dev, st.st_ino)] = path
    out: dict[str, list[int]] = {path: [] for path in want.values()}
    if not want:
        return out
    me = os.getpid()
    for entry in _listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            st = os.stat(f"/proc/{entry}/ns/net")
        except OSError:
            continue        # gone meanwhile, or a kernel thread
        hit = want.get((st.st_dev, st.st_ino))
        if hit is not None:
            out[hit].append(int(entry))
    return out


def kill_unrecorded(pids: list[int], recorded: set[int]) -> int:
    """SIGKILL those of `pids` outside the sessions of the recorded container processes
    (a container leads its own session: its children belong to it)."""
    killed = 0
    for pid in pids:
        try:
            if pid in recorded or os.getsid(pid) in recorded:
                continue
            os.kill(pid, signal.SIGKILL)
            killed += 1
        except ProcessLookupError:
            continue
    return killed


def kill_pod_processes(config: Config, ips: set[str] | None = None) -> int:
    """SIGKILL every container process the node agents recorded for this cluster (or
    only those of the pods with these IPs: the pods of a node removed from the config,
    whose sandbox records name their IPs; their per-pod state directories go too).

    Only processes whose pid AND start time match the record are touched, so a pid
    reused by an unrelated process is never signalled. Containers run in their own
    session, so the process group goes with them. Returns how many were killed."""
    from netd.node.containerlog import alive

    from netd.node.names import state_dir
    from netd.node.volumes import pod_dir

    killed = 0
    for state in sorted(Path(state_dir(config.cluster_name)).glob("*.json")):
        try:
            doc = json.loads(state.read_text())
        except (OSError, ValueError):
            continue
        if ips is not None and doc.get("ip") not in ips:
            continue
        for rec in (doc.get("containers") or {}).values():
            if not isinstance(rec, dict) or rec.get("builtin"):
                continue  # built-in servers live in the daemon, not in a process
            pid, start = int(rec.get("pid") or 0), rec.get("start")
            if pid == os.getpid() or not alive(pid, start):
                continue
            try:
                # A container leads its own session and group: take its children too.
                if os.getpgid(pid) == pid:
                    os.killpg(pid, signal.SIGKILL)
                else:
                    os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            killed += 1
        if ips is not None:
            shutil.rmtree(pod_dir(config, state.stem), ignore_errors=True)
            state.unlink(missing_ok=True)
    return killed


cleanup.register(remove_node_network)
