"""Orphaned pod directories (pods deleted while no daemon ran) are removed at start;
directories of known pods and ones newer than the agent are kept."""
from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

from netd.config import Config
from netd.node.volumes import pod_dir, remove_orphan_pod_dirs


def test_remove_orphan_pod_dirs(tmp_path: Path) -> None:
    cfg = replace(Config(), state_dir=str(tmp_path), cluster_name="c")
    old = time.time() - 100
    for uid in ("known", "orphan", "fresh"):
        d = pod_dir(cfg, uid)
        (d / "logs").mkdir(parents=True)
        (d / "logs" / "x.log").write_text("x")
        if uid != "fresh":
            os.utime(d, (old, old))
    assert remove_orphan_pod_dirs(cfg, {"known"}, time.time() - 10) == 1
    assert sorted(p.name for p in (tmp_path / "c" / "pods").iterdir()) == ["fresh", "known"]


def test_no_pods_dir(tmp_path: Path) -> None:
    cfg = replace(Config(), state_dir=str(tmp_path), cluster_name="c")
    assert remove_orphan_pod_dirs(cfg, set(), time.time()) == 0
