"""Informer: list + watch into an indexed cache over a real SQLiteStore and ObjectAPI."""
from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Callable

import pytest

from netd.api import errors
from netd.client.client import Client, resolve, retry_on_conflict
from netd.client.informer import (Informer, InformerFactory, index_by_namespace, key_of,
                                  split_key)
from netd.registry.bootstrap import ensure_system_objects
from netd.registry.objectapi import ObjectAPI
from netd.store.sqlite import SQLiteStore

DEADLINE = 5.0
CM = resolve("ConfigMap")
NS = resolve("namespaces")

Obj = dict[str, Any]


class Recorder:
    """Handler recording (type, key, data-or-labels) and letting tests await a count."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.objs: list[tuple[str, Obj | None, Obj]] = []
        self._changed = asyncio.Event()

    def attach(self, inf: Informer) -> None:
        inf.add_handler(self.on_add, self.on_update, self.on_delete)

    def _record(self, typ: str, old: Obj | None, obj: Obj) -> None:
        self.events.append((typ, key_of(obj)))
        self.objs.append((typ, old, obj))
        self._changed.set()
        self._changed = asyncio.Event()

    def on_add(self, obj: Obj) -> None:
        self._record("add", None, obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        self._record("update", old, new)

    def on_delete(self, obj: Obj) -> None:
        self._record("delete", None, obj)

    async def wait(self, predicate: Callable[[], bool]) -> None:
        async def loop() -> None:
            while not predicate():
                await self._changed.wait()
        await asyncio.wait_for(loop(), DEADLINE)

    async def wait_count(self, n: int) -> None:
        await self.wait(lambda: len(self.events) >= n)


def cm(name: str, ns: str = "default", labels: dict[str, str] | None = None,
       data: dict[str, str] | None = None) -> Obj:
    meta: Obj = {"name": name, "namespace": ns}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data or {}}


async def make_api(**store_kw: Any) -> tuple[ObjectAPI, SQLiteStore]:
    store = SQLiteStore(":memory:", **store_kw)
    api = ObjectAPI(store)
    await ensure_system_objects(api)
    return api, store


@pytest.fixture
async def env() -> AsyncIterator[tuple[ObjectAPI, Client]]:
    api, store = await make_api()
    yield api, Client(api)
    await store.close()


class Running:
    """Runs an informer as a task for the duration of a test; surfaces its errors."""

    def __init__(self, inf: Informer) -> None:
        self.inf = inf
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Informer:
        self.task = asyncio.create_task(self.inf.run())
        await asyncio.wait_for(self.inf.wait_synced(), DEADLINE)
        return self.inf

    async def __aexit__(self, *exc: object) -> None:
        self.inf.stop()
        assert self.task is not None
        await asyncio.wait_for(self.task, DEADLINE)


@pytest.mark.parametrize("key,expected", [
    ("default/web", ("default", "web")),
    ("node-1", ("", "node-1")),
], ids=["namespaced", "cluster-scoped"])
def test_split_key(key: str, expected: tuple[str, str]) -> None:
    assert split_key(key) == expected


@pytest.mark.parametrize("obj,expected", [
    ({"metadata": {"namespace": "a", "name": "b"}}, "a/b"),
    ({"metadata": {"name": "n"}}, "n"),
], ids=["namespaced", "cluster-scoped"])
def test_key_of(obj: Obj, expected: str) -> None:
    assert key_of(obj) == expected


async def test_initial_list_then_add_update_delete(env: tuple[ObjectAPI, Client]) -> None:
    api, client = env
    await client.create(CM, cm("pre", data={"v": "1"}))
    inf = Informer(api, CM)
    rec = Recorder()
    rec.attach(inf)
    async with Running(inf):
        assert rec.events == [("add", "default/pre")]
        assert inf.get("default/pre")["data"] == {"v": "1"}   # type: ignore[index]

        await client.create(CM, cm("new"))
        await rec.wait_count(2)
        cur = client.get(CM, "default", "pre")
        cur["data"] = {"v": "2"}
        await client.update(CM, cur)
        await rec.wait_count(3)
        await client.delete(CM, "default", "new")
        await rec.wait_count(4)

    assert rec.events == [("add", "default/pre"), ("add", "default/new"),
                          ("update", "default/pre"), ("delete", "default/new")]
    typ, old, new = rec.objs[2]
    assert old is not None and old["data"] == {"v": "1"} and new["data"] == {"v": "2"}
    assert sorted(inf.keys()) == ["default/pre"]
    assert inf.resource_version == api.store.revision
    assert inf.lists == 1


async def test_namespaced_informer_sees_only_its_namespace(
        env: tuple[ObjectAPI, Client]) -> None:
    api, client = env
    await client.create(NS, {"metadata": {"name": "other"}})
    inf = Informer(api, CM, namespace="other")
    rec = Recorder()
    rec.attach(inf)
    async with Running(inf):
        await client.create(CM, cm("x", ns="default"))
        await client.create(CM, cm("y", ns="other"))
        await rec.wait_count(1)
    assert rec.events == [("add", "other/y")]


@pytest.mark.parametrize("selector", ["app=web", "app in (web)", "app,app!=db"],
                         ids=["equality", "set-based", "exists-and-not"])
async def test_object_leaving_selector_is_a_delete(env: tuple[ObjectAPI, Client],
                                                   selector: str) -> None:
    api, client = env
    inf = Informer(api, CM, label_selector=selector)
    rec = Recorder()
    rec.attach(inf)
    async with Running(inf):
        await client.create(CM, cm("a", labels={"app": "web"}))
        await client.create(CM, cm("other", labels={"app": "db"}))
        await rec.wait_count(1)
        await client.patch(CM, "default", "a", {"metadata": {"labels": {"app": "db"}}})
        await rec.wait_count(2)
        assert inf.get("default/a") is None
        await client.patch(CM, "default", "a", {"metadata": {"labels": {"app": "web"}}})
        await rec.wait_count(3)
        assert inf.get("default/a") is not None
    assert rec.events == [("add", "default/a"), ("delete", "default/a"),
                          ("add", "default/a")]


async def test_field_selector_informer(env: tuple[ObjectAPI, Client]) -> None:
    api, client = env
    inf = Informer(api, CM, field_selector="metadata.name=wanted")
    rec = Recorder()
    rec.attach(inf)
    async with Running(inf):
        await client.create(CM, cm("unwanted"))
        await client.create(CM, cm("wanted"))
        await rec.wait_count(1)
    assert rec.events == [("add", "default/wanted")]


async def test_secondary_index_follows_changes(env: tuple[ObjectAPI, Client]) -> None:
    api, client = env
    await client.create(CM, cm("a", labels={"tier": "front"}))
    inf = Informer(api, CM)
    inf.add_index("tier", lambda o: [(o["metadata"].get("labels") or {}).get("tier", "")])
    rec = Recorder()
    rec.attach(inf)
    async with Running(inf):
        # Indexes can be added after sync too.
        inf.add_index("ns", index_by_namespace)
        assert [key_of(o) for o in inf.by_index("tier", "front")] == ["default/a"]
        await client.create(CM, cm("b", labels={"tier": "front"}))
        await rec.wait_count(2)
        await client.patch(CM, "default", "a", {"metadata": {"labels": {"tier": "back"}}})
        await rec.wait_count(3)
        assert [key_of(o) for o in inf.by_index("tier", "front")] == ["default/b"]
        assert [key_of(o) for o in inf.by_index("tier", "back")] == ["default/a"]
        await client.delete(CM, "default", "b")
        await rec.wait_count(4)
        assert inf.by_index("tier", "front") == []
        assert sorted(inf.index_keys("ns", "default")) == ["default/a"]
    with pytest.raises(KeyError):
        inf.by_index("missing", "x")
    with pytest.raises(ValueError):
        inf.add_index("tier", index_by_namespace)


async def test_handler_error_is_logged_and_informer_continues(
        env: tuple[ObjectAPI, Client], caplog: pytest.LogCaptureFixture) -> None:
    api, client = env
    inf = Informer(api, CM)

    def broken(obj: Obj) -> None:
        raise RuntimeError("boom")

    inf.add_handler(on_add=broken)
    rec = Recorder()
    rec.attach(inf)
    async with Running(inf):
        await client.create(CM, cm("a"))
        await client.create(CM, cm("b"))
        await rec.wait_count(2)
    assert inf.handler_errors == 2
    assert "boom" in caplog.text
    assert sorted(inf.keys()) == ["default/a", "default/b"]


async def test_handler_added_after_sync_sees_cache_as_adds(
        env: tuple[ObjectAPI, Client]) -> None:
    api, client = env
    await client.create(CM, cm("a"))
    inf = Informer(api, CM)
    async with Running(inf):
        rec = Recorder()
        rec.attach(inf)
        assert rec.events == [("add", "default/a")]


async def test_resume_after_slow_watcher_close_without_relist() -> None:
    # A tiny per-watcher queue: a burst written without yielding makes the store cut
    # the informer's watcher off; the history still has every event, so the informer
    # resumes from its last revision and sees each change exactly once.
    api, store = await make_api(watcher_queue_limit=2)
    client = Client(api)
    try:
        inf = Informer(api, CM)
        rec = Recorder()
        rec.attach(inf)
        async with Running(inf):
            for i in range(6):
                await client.create(CM, cm(f"c{i}"))
            await rec.wait_count(6)
            assert inf.watches >= 2, "the watcher was expected to be cut off"
            assert inf.lists == 1
        assert rec.events == [("add", f"default/c{i}") for i in range(6)]
    finally:
        await store.close()


async def test_relist_after_gone_delivers_the_difference() -> None:
    # History of 3 events and a watcher queue of 2: after the burst below the
    # informer's resume revision has left the history (410 Gone), so it re-lists
    # and must report what changed meanwhile, including deletes of vanished objects.
    api, store = await make_api(history_size=3, watcher_queue_limit=2)
    client = Client(api)
    try:
        for name in ("keep", "change", "gone1", "gone2"):
            await client.create(CM, cm(name, data={"v": "0"}))
        inf = Informer(api, CM)
        rec = Recorder()
        rec.attach(inf)
        async with Running(inf):
            assert len(rec.events) == 4
            changed = client.get(CM, "default", "change")
            changed["data"] = {"v": "1"}
            await client.update(CM, changed)
            await client.delete(CM, "default", "gone1")
            await client.delete(CM, "default", "gone2")
            await client.create(CM, cm("fresh"))
            await client.create(CM, cm("fresh2"))
            await rec.wait_count(9)
            assert inf.lists == 2, "expected a re-list after Gone"
            assert sorted(inf.keys()) == sorted(
                key_of(o) for o in client.list(CM))
        after = sorted(rec.events[4:])
        assert after == sorted([("update", "default/change"), ("delete", "default/gone1"),
                                ("delete", "default/gone2"), ("add", "default/fresh"),
                                ("add", "default/fresh2")])
        # The unchanged object was not re-announced.
        assert ("update", "default/keep") not in rec.events
        deleted = [o for t, _, o in rec.objs if t == "delete"]
        assert {o["metadata"]["name"] for o in deleted} == {"gone1", "gone2"}
    finally:
        await store.close()


async def test_restarted_run_relists_against_kept_cache(
        env: tuple[ObjectAPI, Client]) -> None:
    api, client = env
    await client.create(CM, cm("a"))
    await client.create(CM, cm("b"))
    inf = Informer(api, CM)
    rec = Recorder()
    rec.attach(inf)
    task = asyncio.create_task(inf.run())
    await asyncio.wait_for(inf.wait_synced(), DEADLINE)
    task.cancel()  # the run dies abruptly (as a crashed, supervised task would)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not inf.running
    await client.delete(CM, "default", "a")
    await client.create(CM, cm("c"))
    async with Running(inf):  # the supervisor's restart: same informer, same cache
        await rec.wait_count(4)
    assert rec.events[2:] == [("delete", "default/a"), ("add", "default/c")]


async def test_stop_before_sync_and_double_run(env: tuple[ObjectAPI, Client]) -> None:
    api, _ = env
    inf = Informer(api, CM)
    task = asyncio.create_task(inf.run())
    await asyncio.wait_for(inf.wait_synced(), DEADLINE)
    with pytest.raises(RuntimeError):
        await inf.run()
    inf.stop()
    await asyncio.wait_for(task, DEADLINE)
    assert not inf.running


async def test_factory_shares_informers(env: tuple[ObjectAPI, Client]) -> None:
    api, _ = env
    f = InformerFactory(api)
    a = f.informer(CM)
    assert f.informer(CM) is a
    assert f.informer(CM, label_selector="x=y") is not a
    ns1 = f.informer(NS, namespace="ignored-for-cluster-scoped")
    assert ns1 is f.informer(NS)
    assert len(f.informers) == 3


# ---- the in-process Client (the write path the informer tests drive) ------------------

@pytest.mark.parametrize("word,plural", [
    ("ConfigMap", "configmaps"),
    ("cm", "configmaps"),
    ("deployments.apps", "deployments"),
    ("apps/v1/Deployment", "deployments"),
    ("v1/Pod", "pods"),
], ids=["kind", "short", "group-qualified", "api-version-kind", "core-api-version"])
def test_resolve(word: str, plural: str) -> None:
    assert resolve(word).plural == plural
    assert resolve(resolve(word)) is resolve(word)


@pytest.mark.parametrize("word", ["nosuch", "apps/v2/Deployment"], ids=["unknown", "version"])
def test_resolve_unknown(word: str) -> None:
    with pytest.raises(errors.NotFound):
        resolve(word)


async def test_client_hands_out_copies(env: tuple[ObjectAPI, Client]) -> None:
    api, client = env
    body = cm("a", data={"v": "1"})
    created = await client.create("configmaps", body)
    created["data"]["v"] = "changed"
    got = client.get("cm", "default", "a")
    assert got["data"] == {"v": "1"}
    got["data"]["v"] = "changed"
    assert api.get(CM, "default", "a").obj["data"] == {"v": "1"}
    assert [o["data"] for o in client.list(CM, "default")] == [{"v": "1"}]
    assert body["metadata"].get("resourceVersion") is None   # the caller's dict untouched
    assert client.get_or_none(CM, "default", "missing") is None


async def test_client_update_is_compare_and_swap(env: tuple[ObjectAPI, Client]) -> None:
    _, client = env
    await client.create(CM, cm("a"))
    first = client.get(CM, "default", "a")
    second = client.get(CM, "default", "a")
    first["data"] = {"by": "first"}
    await client.update(CM, first)
    second["data"] = {"by": "second"}
    with pytest.raises(errors.Conflict):
        await client.update(CM, second)

    async def bump() -> Obj:
        cur = client.get(CM, "default", "a")
        cur["data"] = {"by": "retry"}
        return await client.update(CM, cur)

    assert (await retry_on_conflict(bump))["data"] == {"by": "retry"}


@pytest.mark.parametrize("uid,rv,error", [
    ("not-the-uid", None, errors.Conflict),
    (None, "1", errors.Conflict),
    (None, None, None),
], ids=["uid-mismatch", "rv-mismatch", "none"])
async def test_client_delete_preconditions(env: tuple[ObjectAPI, Client], uid: str | None,
                                           rv: str | None,
                                           error: type[Exception] | None) -> None:
    _, client = env
    await client.create(CM, cm("a"))
    if error is not None:
        with pytest.raises(error):
            await client.delete(CM, "default", "a", uid=uid, resource_version=rv)
        assert client.get_or_none(CM, "default", "a") is not None
    else:
        last = await client.delete(CM, "default", "a")
        assert last["metadata"]["name"] == "a"
        assert client.get_or_none(CM, "default", "a") is None
        assert await client.delete_if_exists(CM, "default", "a") is None
