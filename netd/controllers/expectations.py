"""Write expectations: "do not act on a cache that has not seen my own last write".

kube-controller-manager's ReplicaSet controller keeps ControllerExpectations (counts of
pod creations/deletions it is waiting to observe) so that a reconcile running before
the informer delivered its previous creates does not create the same pods again.

netd's store has one revision counter and every write returns the revision it was
committed at; an informer's `resource_version` is the last revision it applied, in
order. So "the informer has observed my writes" is simply `informer.resource_version
>= revision of my last write` — exact for creates, graceful deletes and immediate
deletes alike (a delete's StoredObject carries the deletion revision), with no
per-object bookkeeping to leak when an object is created and deleted before the
informer saw it. After a restart the table is empty, which is "satisfied", as
upstream's are: the freshly listed caches already contain every earlier write.

An expiry (upstream uses 5 minutes) keeps a key from waiting forever should an
informer be replaced; the event of the awaited write itself re-queues the key, so
in practice the wait ends as soon as the informer catches up.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from netd.client.informer import Informer

# Seconds after which an unmet expectation is ignored (ControllerExpectations' TTL
# is 5 minutes; netd's informers are in-process, so a much shorter one is safe).
EXPECTATION_TTL = 30.0


def rv_of(obj: dict[str, Any]) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


@dataclass
class _Pending:
    revisions: dict[int, int] = field(default_factory=dict)  # id(informer) -> revision
    informers: dict[int, Informer] = field(default_factory=dict)
    since: float = 0.0


class WriteExpectations:
    """Per queue key: the revisions each informer must reach before the key's cached
    view includes what the controller itself last wrote."""

    def __init__(self, now: Callable[[], float], ttl: float = EXPECTATION_TTL) -> None:
        self._now = now
        self.ttl = ttl
        self._pending: dict[str, _Pending] = {}

    def expect(self, key: str, informer: Informer, written: dict[str, Any] | int) -> None:
        """Record a write (the object the API returned, or its revision) that
        `informer` must have applied before `key` is reconciled again."""
        rev = written if isinstance(written, int) else rv_of(written)
        if rev <= 0:
            return
        p = self._pending.get(key)
        if p is None:
            p = self._pending[key] = _Pending(since=self._now())
        ident = id(informer)
        p.informers[ident] = informer
        p.revisions[ident] = max(p.revisions.get(ident, 0), rev)

    def satisfied(self, key: str) -> bool:
        p = self._pending.get(key)
        if p is None:
            return True
        if all(p.informers[i].resource_version >= rev for i, rev in p.revisions.items()):
            del self._pending[key]
            return True
        if self._now() - p.since >= self.ttl:
            del self._pending[key]
            return True
        return False

    def remaining_ttl(self, key: str) -> float:
        p = self._pending.get(key)
        return 0.0 if p is None else max(0.0, self.ttl - (self._now() - p.since))

    def forget(self, key: str) -> None:
        self._pending.pop(key, None)

    def __contains__(self, key: str) -> bool:
        return key in self._pending
