"""Stable slots for configured nodes: a node's slot picks its podCIDR, its InternalIP and
its host uplink name, so it must not change when another node is added to or removed
from the config. Kubernetes' node IPAM likewise keeps a node's podCIDR for the node's
life; here the assignment is kept in `<state>/<cluster>/node-slots.json`.

A new node takes the lowest slot that no kept node and no node removed by this same
change holds (the removed node's objects are cleaned up by name during this start, so
reusing its slot at once would race its uplink and routes); that slot is free again
at the next change. Without a file (first start, or an older state directory) slots
follow the config order, which is what they always were.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from netd.config import Config

log = logging.getLogger("netd.node.slots")

FILE = "node-slots.json"


def assign(previous: dict[str, int], nodes: list[str]) -> dict[str, int]:
    """Slots for `nodes` given the previous assignment. Pure."""
    kept = {n: previous[n] for n in nodes if n in previous}
    reserved = set(previous.values())
    out: dict[str, int] = {}
    free = 0
    for name in nodes:
        if name in kept:
            out[name] = kept[name]
            continue
        while free in reserved:
            free += 1
        out[name] = free
        reserved.add(free)
    return out


def _read(path: Path) -> dict[str, int]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        log.warning("ignoring unreadable %s", path)
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): v for k, v in data.items() if isinstance(v, int) and v >= 0}


def slots(config: Config) -> dict[str, int]:
    """The slot of every configured node, persisted when it changed."""
    path = config.cluster_state_dir / FILE
    previous = _read(path)
    out = assign(previous, [n.name for n in config.nodes])
    if out != previous:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(out, sort_keys=True))
            os.replace(tmp, path)
        except OSError as exc:
            # Read-only state (a dry run, a test without a state dir): still usable
            # for this process, just not remembered.
            log.warning("could not record node slots in %s: %s", path, exc)
    return out
