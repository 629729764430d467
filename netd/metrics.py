"""The daemon's /metrics: Prometheus text from every component that keeps metrics."""
from __future__ import annotations

import importlib

# Components rendering their own Prometheus text (`render() -> str`).
_SOURCES = ("netd.dns.metrics", "netd.proxy.metrics")


def metrics_text() -> str:
    parts = []
    for name in _SOURCES:
        try:
            module = importlib.import_module(name)
        except ImportError:  # a component not built into this tree
            continue
        parts.append(module.render())
    return "".join(p if p.endswith("\n") else p + "\n" for p in parts if p)
