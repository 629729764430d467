"""The HTTP layer in-process (aiohttp test server on loopback): status codes, Status
bodies, content negotiation, watch streaming, auth."""
from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from netd.apiserver.app import ApiServerApp
from netd.registry.bootstrap import ensure_system_objects
from netd.registry.objectapi import ObjectAPI
from netd.store.sqlite import SQLiteStore

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
PODS = "/api/v1/namespaces/default/pods"


def pod(name: str, port: int = 80) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name,
                                                            "labels": {"app": "x"}},
            "spec": {"containers": [{"name": "c", "image": "nginx",
                                     "ports": [{"containerPort": port}]}]}}


async def _client(token: str | None = None) -> tuple[TestClient, ObjectAPI, SQLiteStore]:
    store = SQLiteStore(":memory:")
    api = ObjectAPI(store)
    await ensure_system_objects(api)
    app = ApiServerApp(api, token=token, bookmark_interval=0.05).build()
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return client, api, store


@pytest.fixture
async def http() -> AsyncIterator[TestClient]:
    client, _, store = await _client()
    yield client
    await client.close()
    await store.close()


async def post(http: TestClient, path: str, body: Any, **kw: Any) -> tuple[int, Any]:
    r = await http.post(path, data=orjson.dumps(body),
                        headers={"Content-Type": "application/json"}, **kw)
    return r.status, orjson.loads(await r.read())


async def test_create_get_list(http: TestClient) -> None:
    status, body = await post(http, PODS, pod("a"))
    assert status == 201 and body["metadata"]["name"] == "a"
    r = await http.get(f"{PODS}/a")
    assert r.status == 200 and (await r.json())["kind"] == "Pod"
    r = await http.get(PODS)
    lst = await r.json()
    assert lst["kind"] == "PodList" and lst["apiVersion"] == "v1"
    assert [i["metadata"]["name"] for i in lst["items"]] == ["a"]
    assert int(lst["metadata"]["resourceVersion"]) >= int(body["metadata"]["resourceVersion"])


@pytest.mark.parametrize("method,path,body,ctype,code,reason,needle", [
    ("POST", PODS, pod("x", 70000), "application/json", 422, "Invalid",
     "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 "
     "and 65535, inclusive"),
    ("POST", PODS, b"{not json", "application/json", 400, "BadRequest", "json parse error"),
    ("GET", f"{PODS}/missing", None, "", 404, "NotFound", 'pods "missing" not found'),
    ("GET", "/api/v1/widgets", None, "", 404, "NotFound", "could not find"),
    ("POST", "/api/v1/namespaces/nope/pods", pod("x"), "application/json", 404, "NotFound",
     'namespaces "nope" not found'),
    ("PATCH", f"{PODS}/x", {}, "text/plain", 415, "UnsupportedMediaType", "unknown format"),
    ("GET", f"{PODS}?labelSelector=a%20in%20(b", None, "", 400, "BadRequest", "unable to parse"),
], ids=["invalid", "malformed", "not-found", "unknown-resource", "missing-ns", "bad-patch-type",
        "bad-selector"])
async def test_errors_are_status_objects(http: TestClient, method: str, path: str, body: Any,
                                         ctype: str, code: int, reason: str,
                                         needle: str) -> None:
    await post(http, PODS, pod("x"))
    data = body if isinstance(body, bytes) else (orjson.dumps(body) if body is not None
                                                   else None)
    headers = {"Content-Type": ctype} if ctype else {}
    r = await http.request(method, path, data=data, headers=headers)
    st = await r.json()
    assert r.status == code, st
    assert st["kind"] == "Status" and st["status"] == "Failure"
    assert st["reason"] == reason and st["code"] == code
    assert needle in st["message"]


async def test_invalid_carries_causes(http: TestClient) -> None:
    status, st = await post(http, PODS, pod("x", 0))
    assert status == 422
    assert st["details"]["causes"][0]["field"] == "spec.containers[0].ports[0].containerPort"


async def test_conflict_and_already_exists(http: TestClient) -> None:
    _, created = await post(http, PODS, pod("c"))
    status, st = await post(http, PODS, pod("c"))
    assert status == 409 and st["reason"] == "AlreadyExists"
    created["metadata"]["labels"] = {"app": "y"}
    r = await http.put(f"{PODS}/c", data=orjson.dumps(created),
                       headers={"Content-Type": "application/json"})
    assert r.status == 200
    r = await http.put(f"{PODS}/c", data=orjson.dumps(created),
                       headers={"Content-Type": "application/json"})
    st = await r.json()
    assert r.status == 409 and st["reason"] == "Conflict"


async def test_table_output(http: TestClient) -> None:
    await post(http, PODS, pod("t"))
    r = await http.get(PODS, headers={"Accept": TABLE})
    table = await r.json()
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]][:5] == \
        ["Name", "Ready", "Status", "Restarts", "Age"]
    assert table["rows"][0]["cells"][:4] == ["t", "0/1", "Pending", "0"]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


async def test_watch_streams_events_and_bookmarks(http: TestClient) -> None:
    _, created = await post(http, PODS, pod("w"))
    rv = created["metadata"]["resourceVersion"]
    r = await http.get(PODS, params={"watch": "1", "resourceVersion": rv,
                                     "allowWatchBookmarks": "true", "timeoutSeconds": "5"})
    await http.delete(f"{PODS}/w")
    lines: list[dict] = []
    async def read() -> None:
        # Bookmarks may come before the event too (the interval is 50 ms here).
        while not lines or lines[-1]["type"] != "BOOKMARK" or \
                not any(x["type"] == "DELETED" for x in lines):
            lines.append(orjson.loads(await r.content.readline()))
    await asyncio.wait_for(read(), 5)
    r.close()
    events = [x for x in lines if x["type"] != "BOOKMARK"]
    assert len(events) == 1 and events[0]["type"] == "DELETED"
    assert events[0]["object"]["metadata"]["name"] == "w"
    # The bookmark after the event carries the event's resourceVersion.
    assert lines[-1]["object"]["metadata"]["resourceVersion"] == \
        events[0]["object"]["metadata"]["resourceVersion"]


async def test_watch_goes_on_after_bookmarks(http: TestClient) -> None:
    # A bookmark is sent when no event came for an interval; the watch must then go on
    # (it used to end at the first bookmark, losing every later event).
    _, created = await post(http, PODS, pod("b"))
    rv = created["metadata"]["resourceVersion"]
    r = await http.get(PODS, params={"watch": "1", "resourceVersion": rv,
                                     "allowWatchBookmarks": "true", "timeoutSeconds": "10"})
    first = orjson.loads(await asyncio.wait_for(r.content.readline(), 5))
    assert first["type"] == "BOOKMARK"
    await http.delete(f"{PODS}/b")
    async def next_event() -> dict:
        while True:
            line = orjson.loads(await r.content.readline())
            if line["type"] != "BOOKMARK":
                return line
    ev = await asyncio.wait_for(next_event(), 5)
    r.close()
    assert ev["type"] == "DELETED" and ev["object"]["metadata"]["name"] == "b"


async def test_watch_too_old_is_an_error_event() -> None:
    client, api, store = await _client()
    try:
        r = await client.get(PODS, params={"watch": "1", "resourceVersion": "-5"})
        line = orjson.loads(await asyncio.wait_for(r.content.readline(), 5))
        assert r.status == 200 and line["type"] == "ERROR"
        assert line["object"]["code"] == 410
    finally:
        await client.close()
        await store.close()


async def test_send_initial_events_rejected(http: TestClient) -> None:
    r = await http.get(PODS, params={"watch": "1", "sendInitialEvents": "true"})
    st = await r.json()
    assert r.status == 422 and "sendInitialEvents" in st["message"]


async def test_scale_and_status_subresources(http: TestClient) -> None:
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
           "spec": {"selector": {"matchLabels": {"a": "b"}},
                    "template": {"metadata": {"labels": {"a": "b"}},
                                 "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    base = "/apis/apps/v1/namespaces/default/deployments"
    await post(http, base, dep)
    r = await http.patch(f"{base}/d/scale", data=b'{"spec":{"replicas":3}}',
                         headers={"Content-Type": "application/merge-patch+json"})
    sc = await r.json()
    assert r.status == 200 and sc["kind"] == "Scale" and sc["spec"]["replicas"] == 3
    r = await http.patch(f"{base}/d/status", data=b'{"status":{"replicas":3}}',
                         headers={"Content-Type": "application/merge-patch+json"})
    assert (await r.json())["status"]["replicas"] == 3


async def test_delete_returns_202_while_finalizers_pending(http: TestClient) -> None:
    await post(http, "/api/v1/namespaces/default/configmaps",
               {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "f"}})
    r = await http.delete("/api/v1/namespaces/default/configmaps/f",
                          params={"propagationPolicy": "Orphan"})
    assert r.status == 202
    assert (await r.json())["metadata"]["finalizers"] == ["orphan"]


async def test_bearer_token_required_when_configured() -> None:
    client, _, store = await _client(token="s3cret")
    try:
        r = await client.get("/api/v1/namespaces")
        assert r.status == 401 and (await r.json())["reason"] == "Unauthorized"
        r = await client.get("/api/v1/namespaces", headers={"Authorization": "Bearer s3cret"})
        assert r.status == 200
        assert (await client.get("/readyz")).status == 200
    finally:
        await client.close()
        await store.close()


async def test_health_version_discovery(http: TestClient) -> None:
    assert await (await http.get("/readyz")).text() == "ok"
    assert (await (await http.get("/version")).json())["minor"] == "32"
    groups = await (await http.get("/apis")).json()
    assert "apps" in [g["name"] for g in groups["groups"]]
    res = await (await http.get("/api/v1")).json()
    assert "pods" in [r["name"] for r in res["resources"]]
