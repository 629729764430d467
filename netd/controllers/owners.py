"""Which workload controller's key a pod event concerns: the owner named by the pod's
controllerRef, or, for an orphan, every owner that would adopt it (upstream's
getPodReplicaSets / getStatefulSetsForPod / getDaemonSetsForPod). Shared by the
ReplicaSet, StatefulSet and DaemonSet controllers, whose informers are shared too."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from netd.api import errors
from netd.client.informer import key_of
from netd.controllers.podutil import controller_ref

Obj = dict[str, Any]


class _Indexable(Protocol):
    def add_index(self, name: str, fn: Any) -> None: ...


def ensure_index(informer: _Indexable, name: str, fn: Any) -> None:
    """Add an index unless another controller sharing the informer already did."""
    try:
        informer.add_index(name, fn)
    except ValueError:
        pass


def owner_keys(pod: Obj, owns: Callable[[Obj], bool], candidates: Iterable[Obj],
               adopts: Callable[[Obj, Obj], bool]) -> list[str]:
    """Keys of the owners to reconcile for `pod`.

    `owns(ref)` says whether a controllerRef names this controller's kind; `candidates`
    are the owners in the pod's namespace; `adopts(owner, pod)` is the owner's
    selector (and any membership rule) matching the orphan. An owner whose selector
    cannot be parsed adopts nothing (its own validation reports it)."""
    ns = pod["metadata"].get("namespace") or ""
    ref = controller_ref(pod)
    if ref is not None:
        return [f"{ns}/{ref.get('name')}"] if owns(ref) else []
    keys = []
    for owner in candidates:
        try:
            if adopts(owner, pod):
                keys.append(key_of(owner))
        except errors.BadRequest:
            continue
    return keys
