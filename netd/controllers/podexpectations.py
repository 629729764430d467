"""Pod create/delete expectations (controller_utils.ControllerExpectations, by name).

A controller's informer learns of its own writes a moment later, through the watch.
A reconcile that runs in between would see the old cache and create a second pod for
a node (DaemonSet, generateName) or delete an already deleted pod (StatefulSet). Like
kube-controller-manager, a controller records what it wrote and does not act on a key
until its cache shows those writes (or the expectation expires, so a lost event cannot
wedge the key forever).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

Obj = dict[str, Any]

EXPECTATIONS_TTL = 300.0  # seconds, ExpectationsTimeout upstream


@dataclass
class _Pending:
    creates: dict[str, None] = field(default_factory=dict)   # pod keys ("ns/name")
    deletes: dict[str, str] = field(default_factory=dict)    # pod key -> uid
    since: float = 0.0


class PodExpectations:
    def __init__(self, clock: Callable[[], float], ttl: float = EXPECTATIONS_TTL) -> None:
        self._clock = clock
        self._ttl = ttl
        self._pending: dict[str, _Pending] = {}

    def _entry(self, key: str) -> _Pending:
        entry = self._pending.get(key)
        if entry is None:
            entry = self._pending[key] = _Pending(since=self._clock())
        return entry

    def expect_create(self, key: str, pod_key: str) -> None:
        self._entry(key).creates[pod_key] = None

    def expect_delete(self, key: str, pod_key: str, uid: str) -> None:
        self._entry(key).deletes[pod_key] = uid

    def satisfied(self, key: str, lookup: Callable[[str], Obj | None]) -> bool:
        """True when the cache (`lookup(pod_key)`) reflects every recorded write."""
        entry = self._pending.get(key)
        if entry is None:
            return True
        for pod_key in [k for k in entry.creates if lookup(k) is not None]:
            del entry.creates[pod_key]
        for pod_key, uid in list(entry.deletes.items()):
            pod = lookup(pod_key)
            if pod is None or pod["metadata"].get("uid") != uid or \
                    pod["metadata"].get("deletionTimestamp"):
                del entry.deletes[pod_key]
        if not entry.creates and not entry.deletes:
            del self._pending[key]
            return True
        if self._clock() - entry.since > self._ttl:
            del self._pending[key]
            return True
        return False

    def forget(self, key: str) -> None:
        self._pending.pop(key, None)
