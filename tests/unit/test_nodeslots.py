"""Stable node slots: a node's podCIDR/InternalIP must not move when others change."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from netd.config import Config, NodeConfig
from netd.node import nodeslots

CASES = [
    ({}, ["a", "b", "c"], {"a": 0, "b": 1, "c": 2}),
    ({"a": 0, "b": 1, "c": 2}, ["a", "c"], {"a": 0, "c": 2}),
    # b removed in this change: its slot is not handed to the newcomer at once.
    ({"a": 0, "b": 1, "c": 2}, ["a", "c", "d"], {"a": 0, "c": 2, "d": 3}),
    # ... but a later change may reuse it.
    ({"a": 0, "c": 2}, ["a", "c", "d"], {"a": 0, "c": 2, "d": 1}),
    ({"a": 0, "b": 1}, ["b", "a"], {"a": 0, "b": 1}),
    ({"x": 5}, ["y"], {"y": 0}),
]


@pytest.mark.parametrize("previous,nodes,want", CASES,
                         ids=["fresh", "remove-middle", "remove-and-add", "reuse-later",
                              "reorder", "gap"])
def test_assign(previous: dict[str, int], nodes: list[str], want: dict[str, int]) -> None:
    assert nodeslots.assign(previous, nodes) == want


def _cfg(tmp: Path, *nodes: str) -> Config:
    return replace(Config(), state_dir=str(tmp), cluster_name="slots",
                   nodes=[NodeConfig(n) for n in nodes])


def test_slots_persist_across_config_changes(tmp_path: Path) -> None:
    assert nodeslots.slots(_cfg(tmp_path, "node-1", "node-2", "node-3")) == \
        {"node-1": 0, "node-2": 1, "node-3": 2}
    assert nodeslots.slots(_cfg(tmp_path, "node-1", "node-3")) == {"node-1": 0, "node-3": 2}
    saved = json.loads((tmp_path / "slots" / nodeslots.FILE).read_text())
    assert saved == {"node-1": 0, "node-3": 2}
    assert nodeslots.slots(_cfg(tmp_path, "node-1", "node-3", "node-4"))["node-4"] == 1


def test_unreadable_file_falls_back_to_config_order(tmp_path: Path) -> None:
    (tmp_path / "slots").mkdir()
    (tmp_path / "slots" / nodeslots.FILE).write_text("{not json")
    assert nodeslots.slots(_cfg(tmp_path, "a", "b")) == {"a": 0, "b": 1}
