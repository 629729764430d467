"""Per-kind Table printers, split by area; `PRINTERS` maps a kind to its Printer.

netd.api.tables is the public face; these modules mirror kube-apiserver's
pkg/printers/internalversion for the kinds netd serves.
"""
from __future__ import annotations

from netd.api.printers import cluster, network, pods, storage, workloads
from netd.api.printers.common import Printer

PRINTERS: dict[str, Printer] = {
    **pods.PRINTERS,
    **network.PRINTERS,
    **workloads.PRINTERS,
    **cluster.PRINTERS,
    **storage.PRINTERS,
}

__all__ = ["PRINTERS", "Printer"]
