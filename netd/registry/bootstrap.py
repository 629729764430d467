"""Objects every cluster is born with (created once, kept across restarts)."""
from __future__ import annotations

import logging

from netd.api import errors
from netd.api.kinds import REGISTRY
from netd.registry.admission import SYSTEM_NAMESPACES
from netd.registry.objectapi import ObjectAPI

log = logging.getLogger("netd.registry")


async def ensure_system_objects(api: ObjectAPI) -> None:
    ns_rt = REGISTRY.by_plural("", "namespaces")
    assert ns_rt is not None
    for name in SYSTEM_NAMESPACES:
        if api.store.get("namespaces", "", name) is not None:
            continue
        try:
            await api.create(ns_rt, "", {"apiVersion": "v1", "kind": "Namespace",
                                         "metadata": {"name": name}})
            log.info("created namespace %s", name)
        except errors.AlreadyExists:
            pass
