"""`netd down` for the node network: registers the remover that deletes every kernel
object of the cluster by name (netd/node/cluster_net.teardown_sync).

Imported for its side effect by whoever wires the node agent (daemon/CLI)."""
from __future__ import annotations

import json
import os
import shutil
import signal

from netd import cleanup
from netd.config import Config


def remove_node_network(config: Config) -> None:
    if config.node_mode == "simulated" or os.geteuid() != 0:
        # Nothing was created without root; never fail `netd down` for it.
        return
    kill_pod_processes(config)
    from netd.node.cluster_net import teardown_sync
    teardown_sync(config)


def kill_pod_processes(config: Config, ips: set[str] | None = None) -> int:
    """SIGKILL every container process the node agents recorded for this cluster (or
    only those of the pods with these IPs: the pods of a node removed from the config,
    whose sandbox records name their IPs; their per-pod state directories go too).

    Only processes whose pid AND start time match the record are touched, so a pid
    reused by an unrelated process is never signalled. Containers run in their own
    session, so the process group goes with them. Returns how many were killed."""
    from netd.node.containerlog import alive

    killed = 0
    for state in sorted((config.cluster_state_dir / "pods").glob("*/state.json")):
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
            shutil.rmtree(state.parent, ignore_errors=True)
    return killed


cleanup.register(remove_node_network)
