"""Current objects of one resource, kept in list order so `list` costs no sort.

Order: kube-apiserver lists in storage-key order (`<namespace>/<name>` compared
byte-wise, as etcd and the watch cache's btree return them), and kubectl prints
in server order. That is (namespace, name) order except where one namespace is a
prefix of another followed by '-' (which sorts before '/'): "kube-system/x" comes
before "kube/x". We sort namespaces by `namespace + "/"` to match it exactly.
Names need no such care: a name is compared only with names of its own namespace,
and there plain string order equals key order.

Lists are served from cached, immutable-by-contract snapshots rebuilt lazily after
a write, so a controller that lists 10,000 pods in a loop pays one O(n) rebuild per
intervening write and a shallow copy otherwise.
"""
from __future__ import annotations

import bisect

from netd.store.base import StoredObject


class ResourceIndex:
    """Objects of one resource by namespace and name, with sorted-list snapshots."""

    __slots__ = ("_objs", "_names", "_ns_keys", "_all", "_by_ns")

    def __init__(self) -> None:
        self._objs: dict[str, dict[str, StoredObject]] = {}
        # Per namespace: its names, sorted. Appends dominate (generated names grow),
        # and bisect.insort is a memmove otherwise — cheap next to a sort per list.
        self._names: dict[str, list[str]] = {}
        # Namespaces holding at least one object, as `ns + "/"`, sorted (key order).
        self._ns_keys: list[str] = []
        self._all: list[StoredObject] | None = None
        self._by_ns: dict[str, list[StoredObject]] = {}

    def __len__(self) -> int:
        return sum(len(d) for d in self._objs.values())

    def get(self, namespace: str, name: str) -> StoredObject | None:
        objs = self._objs.get(namespace)
        return objs.get(name) if objs is not None else None

    def put(self, stored: StoredObject) -> StoredObject | None:
        """Insert or replace; returns the previous version (None when new)."""
        ns = stored.namespace
        objs = self._objs.get(ns)
        if objs is None:
            objs = self._objs[ns] = {}
            self._names[ns] = []
            bisect.insort(self._ns_keys, ns + "/")
        prev = objs.get(stored.name)
        objs[stored.name] = stored
        if prev is None:
            names = self._names[ns]
            if not names or names[-1] < stored.name:
                names.append(stored.name)
            else:
                bisect.insort(names, stored.name)
        self._invalidate(ns)
        return prev

    def remove(self, namespace: str, name: str) -> StoredObject | None:
        objs = self._objs.get(namespace)
        if objs is None:
            return None
        prev = objs.pop(name, None)
        if prev is None:
            return None
        names = self._names[namespace]
        del names[bisect.bisect_left(names, name)]
        if not objs:
            del self._objs[namespace]
            del self._names[namespace]
            keys = self._ns_keys
            del keys[bisect.bisect_left(keys, namespace + "/")]
        self._invalidate(namespace)
        return prev

    def snapshot(self, namespace: str | None) -> list[StoredObject]:
        """A fresh list (callers may reorder it) of shared, read-only objects."""
        if namespace is not None:
            return list(self._ns_list(namespace))
        if self._all is None:
            out: list[StoredObject] = []
            for key in self._ns_keys:
                out.extend(self._ns_list(key[:-1]))
            self._all = out
        return list(self._all)

    def _ns_list(self, namespace: str) -> list[StoredObject]:
        cached = self._by_ns.get(namespace)
        if cached is None:
            objs = self._objs.get(namespace)
            if objs is None:
                return []
            cached = [objs[n] for n in self._names[namespace]]
            self._by_ns[namespace] = cached
        return cached

    def _invalidate(self, namespace: str) -> None:
        self._all = None
        self._by_ns.pop(namespace, None)
