"""Removal of every kernel object a cluster created (by its name, nothing else).

The control plane creates none; the node agent, proxy and DNS register their own
removers here as they land."""
from __future__ import annotations

from typing import Callable

from netd.config import Config

Remover = Callable[[Config], None]
_REMOVERS: list[Remover] = []


def register(remover: Remover) -> None:
    _REMOVERS.append(remover)


def remove_cluster_objects(cfg: Config) -> None:
    for remover in _REMOVERS:
        remover(cfg)
