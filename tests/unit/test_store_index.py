"""ResourceIndex and the backend-neutral StateCache (no SQLite involved)."""
from __future__ import annotations

from typing import Any

import pytest

from netd.api import errors
from netd.store.base import ADDED, DELETED, MODIFIED, StoredObject
from netd.store.cache import StateCache, encode_new, split_resource, stamp
from netd.store.index import ResourceIndex


def so(ns: str, name: str, rv: int = 1, resource: str = "pods") -> StoredObject:
    return StoredObject(resource, ns, name, rv, {"metadata": {"name": name}}, b"{}")


ORDER_CASES = [
    ("names", [("a", "c"), ("a", "a"), ("a", "b")], [("a", "a"), ("a", "b"), ("a", "c")]),
    ("namespaces", [("b", "x"), ("a", "x")], [("a", "x"), ("b", "x")]),
    ("dash-before-slash", [("kube", "x"), ("kube-system", "x")],
     [("kube-system", "x"), ("kube", "x")]),
    ("prefix-names", [("n", "web-1"), ("n", "web"), ("n", "web-10"), ("n", "web-2")],
     [("n", "web"), ("n", "web-1"), ("n", "web-10"), ("n", "web-2")]),
    ("cluster-scoped", [("", "b"), ("", "a")], [("", "a"), ("", "b")]),
    ("digits-after-slash", [("ns1", "x"), ("ns", "x"), ("ns0", "x")],
     [("ns", "x"), ("ns0", "x"), ("ns1", "x")]),
]


@pytest.mark.parametrize("inserts,expect", [c[1:] for c in ORDER_CASES],
                         ids=[c[0] for c in ORDER_CASES])
def test_index_lists_in_storage_key_order(inserts: list[tuple[str, str]],
                                          expect: list[tuple[str, str]]) -> None:
    idx = ResourceIndex()
    for ns, name in inserts:
        assert idx.put(so(ns, name)) is None
    assert [(o.namespace, o.name) for o in idx.snapshot(None)] == expect
    # Exactly etcd's byte order of "<ns>/<name>" keys.
    assert expect == sorted(expect, key=lambda k: f"{k[0]}/{k[1]}".encode())
    assert len(idx) == len(expect)


def test_index_replace_remove_and_namespace_lists() -> None:
    idx = ResourceIndex()
    for ns, name in [("a", "1"), ("a", "2"), ("b", "1")]:
        idx.put(so(ns, name))
    old = idx.put(so("a", "1", rv=5))
    assert old is not None and old.rv == 1
    assert [o.rv for o in idx.snapshot("a")] == [5, 1]
    assert idx.remove("a", "9") is None and idx.remove("zz", "1") is None
    removed = idx.remove("b", "1")
    assert removed is not None and removed.namespace == "b"
    assert idx.snapshot("b") == [] and [(o.namespace, o.name) for o in idx.snapshot(None)] == [
        ("a", "1"), ("a", "2")]
    idx.put(so("b", "0"))   # a namespace emptied and refilled
    assert [(o.namespace, o.name) for o in idx.snapshot(None)] == [("a", "1"), ("a", "2"), ("b", "0")]
    assert idx.get("a", "2") is not None and idx.get("b", "1") is None


def test_stamp_copies_top_and_metadata_only() -> None:
    spec = {"replicas": 1}
    sent: dict[str, Any] = {"kind": "X", "metadata": {"name": "n", "resourceVersion": "7"},
                            "spec": spec}
    out = stamp(sent, 42)
    assert out["metadata"]["resourceVersion"] == "42"
    assert sent["metadata"]["resourceVersion"] == "7"
    assert list(out) == ["kind", "metadata", "spec"]
    stored, raw = encode_new(sent, 43)
    assert raw == b'{"kind":"X","metadata":{"name":"n","resourceVersion":"43"},"spec":{"replicas":1}}'
    assert stored["spec"] is spec   # ownership passes to the store (documented)


@pytest.mark.parametrize("resource,expect", [
    ("pods", ("pods", "")),
    ("deployments.apps", ("deployments", "apps")),
    ("ingresses.networking.k8s.io", ("ingresses", "networking.k8s.io")),
], ids=["core", "apps", "dotted-group"])
def test_split_resource(resource: str, expect: tuple[str, str]) -> None:
    assert split_resource(resource) == expect


def test_cache_apply_produces_typed_events_and_rejects_going_backwards() -> None:
    c = StateCache(revision=10, history_size=3)
    c.load([so("a", "x", rv=4)])
    assert c.list("pods") == ([so("a", "x", rv=4)], 10)
    ev = c.apply_put(so("a", "x", rv=11))
    assert (ev.type, ev.prev) == (MODIFIED, {"metadata": {"name": "x"}})
    assert c.apply_put(so("a", "y", rv=12)).type == ADDED
    ev = c.apply_delete(so("a", "y", rv=13))
    assert ev.type == DELETED and ev.prev is not None
    assert c.revision == 13 and c.oldest_watchable == 10
    c.apply_put(so("a", "z", rv=14))
    assert c.oldest_watchable == 11   # the window (3) dropped rv 11
    with pytest.raises(errors.InternalError):
        c.apply_put(so("a", "q", rv=14))
    assert c.resources() == ["pods"]
    c.close()
    with pytest.raises(errors.ServiceUnavailable):
        c.watch(None, None, 14)
