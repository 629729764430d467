"""Store watches: ordering, replay from history, Gone, filtering, slow consumers, close."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from netd.api import errors
from netd.store.base import ADDED, DELETED, MODIFIED, WatchEvent
from netd.store.sqlite import SQLiteStore
from netd.store.watch import STORE_CLOSED, QueueWatcher

DEADLINE = 5.0  # a deadline on awaited conditions, never a sleep


@pytest.fixture
async def store() -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(":memory:")
    yield s
    await s.close()


async def collect(watcher: QueueWatcher, n: int) -> list[WatchEvent]:
    """Exactly n events (fails on timeout, on early end, or on overshoot)."""
    out: list[WatchEvent] = []

    async def run() -> None:
        it = watcher.__aiter__()
        while len(out) < n:
            out.extend(await it.__anext__())

    await asyncio.wait_for(run(), DEADLINE)
    assert len(out) == n, [(e.type, e.rv) for e in out]
    return out


async def ended(watcher: QueueWatcher) -> bool:
    """True when iteration is over (after draining nothing)."""
    try:
        await asyncio.wait_for(watcher.__anext__(), DEADLINE)
    except StopAsyncIteration:
        return True
    return False


def obj(i: int) -> dict[str, Any]:
    return {"metadata": {"name": f"o{i}"}, "data": {"i": str(i)}}


async def test_events_arrive_in_revision_order_across_many_writes(store: SQLiteStore) -> None:
    w = store.watch(None, None, store.revision)
    expect: list[tuple[str, int, str]] = []
    for i in range(400):
        res = ("pods", "services", "configmaps")[i % 3]
        name = f"o{i // 3}"
        if store.get(res, "ns", name) is None:
            r = await store.create(res, "ns", name, obj(i))
            expect.append((ADDED, r.rv, res))
        if i % 5 == 0:
            r = await store.update(res, "ns", name, obj(i), None)
            expect.append((MODIFIED, r.rv, res))
        if i % 7 == 0:
            r = await store.delete(res, "ns", name)
            expect.append((DELETED, r.rv, res))
        if i % 50 == 0:
            await asyncio.sleep(0)  # let the consumer side run mid-stream (a yield, not a wait)
    events = await collect(w, len(expect))
    assert [(e.type, e.rv, e.resource) for e in events] == expect
    assert [e.rv for e in events] == list(range(1, len(expect) + 1))
    for e in events:
        assert e.obj["metadata"]["resourceVersion"] == str(e.rv)
    w.close()


async def test_watch_from_current_revision_streams_only_new_events(store: SQLiteStore) -> None:
    for i in range(5):
        await store.create("pods", "ns", f"p{i}", obj(i))
    w = store.watch("pods", None, store.revision)
    assert w.pending == 0
    await store.create("pods", "ns", "new", obj(9))
    (ev,) = await collect(w, 1)
    assert (ev.type, ev.name, ev.rv, ev.prev) == (ADDED, "new", 6, None)


@pytest.mark.parametrize("from_rv", [0, 3, 7, 9, 10], ids=lambda v: f"from-{v}")
async def test_watch_from_the_past_replays_exactly_the_missed_events(
        store: SQLiteStore, from_rv: int) -> None:
    for i in range(10):
        await store.create("pods", "ns", f"p{i}", obj(i))
    w = store.watch("pods", None, from_rv)
    replay = await collect(w, 10 - from_rv)
    assert [e.rv for e in replay] == list(range(from_rv + 1, 11))
    assert [e.name for e in replay] == [f"p{i}" for i in range(from_rv, 10)]
    # ...and then continues live with no gap and no duplicate.
    await store.update("pods", "ns", "p0", obj(0), None)
    (live,) = await collect(w, 1)
    assert (live.type, live.rv) == (MODIFIED, 11)


async def test_too_old_revision_is_gone_with_kubernetes_message() -> None:
    s = SQLiteStore(":memory:", history_size=5)
    try:
        for i in range(10):
            await s.create("pods", "ns", f"p{i}", obj(i))
        with pytest.raises(errors.Gone) as info:
            s.watch("pods", None, 2)
        assert info.value.message == "too old resource version: 2 (5)"
        assert info.value.code == 410 and info.value.reason == "Expired"
        with pytest.raises(errors.Gone, match=r"too old resource version: 4 \(5\)"):
            s.watch(None, None, 4)
        w = s.watch("pods", None, 5)   # the oldest servable start
        assert [e.rv for e in await collect(w, 5)] == [6, 7, 8, 9, 10]
    finally:
        await s.close()


async def test_history_starts_at_the_revision_the_store_was_opened_at(tmp_path: Path) -> None:
    path = str(tmp_path / "h.db")
    s = SQLiteStore(path)
    for i in range(3):
        await s.create("pods", "ns", f"p{i}", obj(i))
    await s.close()
    s = SQLiteStore(path)
    try:
        with pytest.raises(errors.Gone, match=r"^too old resource version: 0 \(3\)$"):
            s.watch(None, None, 0)
        w = s.watch(None, None, 3)
        await s.create("pods", "ns", "p3", obj(3))
        assert [e.rv for e in await collect(w, 1)] == [4]
    finally:
        await s.close()


async def test_zero_history_still_serves_the_current_revision() -> None:
    s = SQLiteStore(":memory:", history_size=0)
    try:
        await s.create("pods", "ns", "a", obj(0))
        with pytest.raises(errors.Gone):
            s.watch(None, None, 0)
        w = s.watch(None, None, 1)
        await s.create("pods", "ns", "b", obj(1))
        assert [e.name for e in await collect(w, 1)] == ["b"]
    finally:
        await s.close()


FILTERS = [
    ("all", None, None, ["pods/a/p", "pods/b/p", "services/a/s", "nodes//n"]),
    ("resource", "pods", None, ["pods/a/p", "pods/b/p"]),
    ("resource-namespace", "pods", "a", ["pods/a/p"]),
    ("namespace-any-resource", None, "a", ["pods/a/p", "services/a/s"]),
    ("cluster-scoped", "nodes", "", ["nodes//n"]),
    ("no-match", "services", "b", []),
]


@pytest.mark.parametrize("resource,namespace,expect", [f[1:] for f in FILTERS],
                         ids=[f[0] for f in FILTERS])
@pytest.mark.parametrize("replay", [False, True], ids=["live", "replay"])
async def test_watch_filters_by_resource_and_namespace(
        store: SQLiteStore, resource: str | None, namespace: str | None,
        expect: list[str], replay: bool) -> None:
    w = None if replay else store.watch(resource, namespace, 0)
    writes = [("pods", "a", "p"), ("pods", "b", "p"), ("services", "a", "s"), ("nodes", "", "n")]
    for res, ns, name in writes:
        await store.create(res, ns, name, obj(0))
    # A sentinel every watcher sees, so "nothing else arrived" is checked without waiting.
    w = w or store.watch(resource, namespace, 0)
    sentinel_res = resource or "pods"
    sentinel_ns = namespace if namespace is not None else "a"
    await store.create(sentinel_res, sentinel_ns, "zz-sentinel", obj(1))
    events = await collect(w, len(expect) + 1)
    assert [f"{e.resource}/{e.namespace}/{e.name}" for e in events[:-1]] == expect
    assert events[-1].name == "zz-sentinel"


async def test_modified_and_deleted_carry_prev_and_deletion_revision(store: SQLiteStore) -> None:
    w = store.watch("pods", "ns", 0)
    await store.create("pods", "ns", "a", {"metadata": {"name": "a"}, "v": 1})
    await store.update("pods", "ns", "a", {"metadata": {"name": "a"}, "v": 2}, 1)
    deleted = await store.delete("pods", "ns", "a")
    added, modified, gone = await collect(w, 3)
    assert modified.type == MODIFIED and modified.prev == added.obj
    assert modified.prev is not None and modified.prev["v"] == 1
    assert gone.type == DELETED and gone.rv == 3 == deleted.rv
    assert gone.obj["metadata"]["resourceVersion"] == "3" and gone.obj["v"] == 2
    assert gone.prev == modified.obj
    assert gone.prev is not None and gone.prev["metadata"]["resourceVersion"] == "2"
    assert gone.raw == deleted.raw


async def test_writes_without_yielding_arrive_as_one_batch(store: SQLiteStore) -> None:
    w = store.watch(None, None, 0)
    for i in range(20):
        await store.create("pods", "ns", f"p{i}", obj(i))
    batch = await asyncio.wait_for(w.__anext__(), DEADLINE)
    assert [e.rv for e in batch] == list(range(1, 21))


async def test_waiting_consumer_wakes_on_commit(store: SQLiteStore) -> None:
    w = store.watch(None, None, 0)
    got: asyncio.Future[list[WatchEvent]] = asyncio.get_running_loop().create_future()

    async def consume() -> None:
        async for batch in w:
            got.set_result(batch)
            return

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)  # the consumer is now parked in __anext__
    assert not got.done()
    await store.create("pods", "ns", "a", obj(0))
    batch = await asyncio.wait_for(got, DEADLINE)
    assert [e.name for e in batch] == ["a"]
    await task


async def test_slow_watcher_is_closed_while_writers_and_others_continue() -> None:
    s = SQLiteStore(":memory:", watcher_queue_limit=10)
    try:
        slow = s.watch("pods", None, 0)
        fast = s.watch("pods", None, 0)
        seen: list[int] = []

        async def consume() -> None:
            async for batch in fast:
                seen.extend(e.rv for e in batch)
                if len(seen) == 50:
                    return

        task = asyncio.create_task(consume())
        for i in range(50):
            await s.create("pods", "ns", f"p{i}", obj(i))
            await asyncio.sleep(0)  # give the fast consumer its turn
        await asyncio.wait_for(task, DEADLINE)
        assert seen == list(range(1, 51))
        assert slow.closed_reason is not None and "behind" in slow.closed_reason
        assert slow.pending == 0          # its backlog was released
        assert await ended(slow)
        assert fast.closed_reason is None
        assert s.cache.watcher_count == 1   # the slow one is unregistered
        assert s.revision == 50
    finally:
        await s.close()


async def test_replay_larger_than_the_limit_is_not_slowness() -> None:
    s = SQLiteStore(":memory:", watcher_queue_limit=3)
    try:
        for i in range(20):
            await s.create("pods", "ns", f"p{i}", obj(i))
        w = s.watch("pods", None, 0)
        assert w.pending == 20 and w.closed_reason is None
        await s.create("pods", "ns", "x", obj(99))
        assert w.closed_reason is None
        assert len(await collect(w, 21)) == 21
        # Once the replay is taken, the ordinary limit applies again.
        for i in range(4):
            await s.create("pods", "ns", f"y{i}", obj(i))
        assert w.closed_reason is not None and "more than 3 events behind" in w.closed_reason
    finally:
        await s.close()


async def test_consumer_close_ends_iteration_and_unregisters(store: SQLiteStore) -> None:
    w = store.watch(None, None, 0)
    other = store.watch("pods", None, 0)
    assert store.cache.watcher_count == 2

    async def consume() -> list[list[WatchEvent]]:
        return [batch async for batch in w]

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)
    w.close()
    w.close()  # idempotent
    assert await asyncio.wait_for(task, DEADLINE) == []
    assert w.closed_reason is None
    assert store.cache.watcher_count == 1
    await store.create("pods", "ns", "a", obj(0))   # no push to a closed watcher
    assert w.pending == 0 and other.pending == 1


async def test_store_close_ends_every_watcher_with_a_reason() -> None:
    s = SQLiteStore(":memory:")
    watchers = [s.watch(None, None, 0), s.watch("pods", "a", 0), s.watch("services", None, 0)]
    tasks = [asyncio.create_task(_drain(w)) for w in watchers]
    await asyncio.sleep(0)
    await s.close()
    await asyncio.wait_for(asyncio.gather(*tasks), DEADLINE)
    assert all(w.closed_reason == STORE_CLOSED for w in watchers)
    assert s.cache.watcher_count == 0


async def _drain(w: QueueWatcher) -> None:
    async for _ in w:
        pass


async def test_watchers_of_other_resources_are_not_touched(store: SQLiteStore) -> None:
    svc = store.watch("services", None, 0)
    ns_b = store.watch("pods", "b", 0)
    for i in range(100):
        await store.create("pods", "a", f"p{i}", obj(i))
    assert svc.pending == 0 and ns_b.pending == 0
    assert store.cache.watcher_count == 2


async def test_future_revision_waits_for_it(store: SQLiteStore) -> None:
    # Like etcd: a start beyond the current revision streams from there on.
    w = store.watch(None, None, 2)
    for i in range(4):
        await store.create("pods", "ns", f"p{i}", obj(i))
    assert [e.rv for e in await collect(w, 2)] == [3, 4]
