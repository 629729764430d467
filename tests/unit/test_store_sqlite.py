"""SQLiteStore: CRUD, errors, revisions, lists, persistence across reopen."""
from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any, AsyncIterator

import orjson
import pytest

from netd.api import errors
from netd.store import sqlite as sqlite_mod
from netd.store.sqlite import SQLiteStore, open_store


def pod(name: str, ns: str = "default", **extra: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod",
                           "metadata": {"name": name, "namespace": ns},
                           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    obj.update(extra)
    return obj


@pytest.fixture(params=["memory", "file"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    path = ":memory:" if request.param == "memory" else str(tmp_path / "netd.db")
    s = SQLiteStore(path)
    yield s
    await s.close()


# -- CRUD ---------------------------------------------------------------------------

async def test_create_stamps_resource_version_and_keeps_every_field(store: SQLiteStore) -> None:
    sent = pod("a", unknownTopLevel={"x": [1, 2]})
    sent["metadata"]["labels"] = {"app": "web"}
    sent["metadata"]["someFutureField"] = True
    before = orjson.dumps(sent)
    got = await store.create("pods", "default", "a", sent)
    assert got.rv == 1 and store.revision == 1
    assert got.obj["metadata"]["resourceVersion"] == "1"
    assert got.obj["unknownTopLevel"] == {"x": [1, 2]}
    assert got.obj["metadata"]["someFutureField"] is True
    assert got.obj["metadata"]["labels"] == {"app": "web"}
    assert orjson.loads(got.raw) == got.obj
    # The caller's dicts are not modified by the store.
    assert orjson.dumps(sent) == before
    assert (got.resource, got.namespace, got.name) == ("pods", "default", "a")
    assert store.get("pods", "default", "a") == got


async def test_create_without_metadata_gets_one(store: SQLiteStore) -> None:
    got = await store.create("things", "", "x", {"kind": "Thing"})
    assert got.obj == {"kind": "Thing", "metadata": {"resourceVersion": "1"}}


async def test_get_missing_is_none(store: SQLiteStore) -> None:
    await store.create("pods", "default", "a", pod("a"))
    assert store.get("pods", "default", "b") is None
    assert store.get("pods", "other", "a") is None
    assert store.get("services", "default", "a") is None


async def test_update_replaces_and_bumps(store: SQLiteStore) -> None:
    first = await store.create("pods", "default", "a", pod("a"))
    new = pod("a", status={"phase": "Running"})
    second = await store.update("pods", "default", "a", new, first.rv)
    assert second.rv == 2
    assert second.obj["status"] == {"phase": "Running"}
    assert second.obj["metadata"]["resourceVersion"] == "2"
    third = await store.update("pods", "default", "a", pod("a"), None)  # unconditional
    assert third.rv == 3 and "status" not in third.obj
    assert store.get("pods", "default", "a") == third


async def test_delete_returns_last_state_at_deletion_revision(store: SQLiteStore) -> None:
    await store.create("pods", "default", "a", pod("a", status={"phase": "Running"}))
    await store.create("pods", "default", "b", pod("b"))
    gone = await store.delete("pods", "default", "a", expected_rv=1)
    assert gone.rv == 3 and store.revision == 3
    assert gone.obj["metadata"]["resourceVersion"] == "3"
    assert gone.obj["status"] == {"phase": "Running"}
    assert orjson.loads(gone.raw) == gone.obj
    assert store.get("pods", "default", "a") is None
    items, rev = store.list("pods")
    assert [o.name for o in items] == ["b"] and rev == 3


ERROR_CASES = [
    ("create-exists", "create", "pods", "a", None, errors.AlreadyExists,
     'pods "a" already exists', ("pods", "")),
    ("create-exists-grouped", "create", "deployments.apps", "a", None, errors.AlreadyExists,
     'deployments.apps "a" already exists', ("deployments", "apps")),
    ("update-missing", "update", "pods", "zz", None, errors.NotFound,
     'pods "zz" not found', ("pods", "")),
    ("update-missing-with-rv", "update", "pods", "zz", 1, errors.NotFound,
     'pods "zz" not found', ("pods", "")),
    ("update-stale", "update", "pods", "a", 99, errors.Conflict,
     'Operation cannot be fulfilled on pods "a": the object has been modified; please '
     'apply your changes to the latest version and try again', ("pods", "")),
    ("update-stale-grouped", "update", "deployments.apps", "a", 99, errors.Conflict,
     'Operation cannot be fulfilled on deployments.apps "a": the object has been '
     'modified; please apply your changes to the latest version and try again',
     ("deployments", "apps")),
    ("update-stale-dotted-group", "update", "ingresses.networking.k8s.io", "a", 99,
     errors.Conflict, 'Operation cannot be fulfilled on ingresses.networking.k8s.io "a": '
     'the object has been modified; please apply your changes to the latest version and '
     'try again', ("ingresses", "networking.k8s.io")),
    ("delete-missing", "delete", "pods", "zz", None, errors.NotFound,
     'pods "zz" not found', ("pods", "")),
    ("delete-precondition", "delete", "pods", "a", 99, errors.Conflict,
     'Operation cannot be fulfilled on pods "a": Precondition failed: ResourceVersion in '
     'precondition: 99, ResourceVersion in object meta: 1', ("pods", "")),
]


@pytest.mark.parametrize("op,resource,name,rv,exc,message,kind_group",
                         [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
async def test_write_errors(store: SQLiteStore, op: str, resource: str, name: str,
                            rv: int | None, exc: type[errors.APIError], message: str,
                            kind_group: tuple[str, str]) -> None:
    for res in ("pods", "deployments.apps", "ingresses.networking.k8s.io"):
        await store.create(res, "default", "a", pod("a"))
    before_rev = store.revision
    with pytest.raises(exc) as info:
        if op == "create":
            await store.create(resource, "default", name, pod(name))
        elif op == "update":
            await store.update(resource, "default", name, pod(name), rv)
        else:
            await store.delete(resource, "default", name, rv)
    assert info.value.message == message
    assert (info.value.kind, info.value.group) == kind_group
    assert info.value.name == name
    # A failed write consumes no revision and changes nothing.
    assert store.revision == before_rev
    assert store.get("pods", "default", "a") is not None
    assert store.get("pods", "default", "a").rv == 1  # type: ignore[union-attr]


async def test_same_name_in_other_namespace_or_resource_is_a_different_key(
        store: SQLiteStore) -> None:
    await store.create("pods", "a", "x", pod("x", "a"))
    await store.create("pods", "b", "x", pod("x", "b"))
    await store.create("services", "a", "x", {"kind": "Service"})
    await store.create("nodes", "", "x", {"kind": "Node"})
    assert store.revision == 4


async def test_revision_is_monotonic_across_resources(store: SQLiteStore) -> None:
    seen = []
    for i in range(30):
        res = ("pods", "services", "configmaps")[i % 3]
        seen.append((await store.create(res, f"ns{i % 4}", f"o{i}", {"i": i})).rv)
    seen.append((await store.update("services", "ns1", "o1", {"i": 1}, None)).rv)
    seen.append((await store.delete("pods", "ns0", "o0")).rv)
    assert seen == list(range(1, 33))
    assert store.revision == 32


# -- lists --------------------------------------------------------------------------

async def test_list_sorted_with_revision_and_namespace_filter(store: SQLiteStore) -> None:
    for ns, name in [("b", "z"), ("a", "y"), ("b", "a"), ("a", "b"), ("c", "m")]:
        await store.create("pods", ns, name, pod(name, ns))
    await store.create("services", "a", "svc", {"kind": "Service"})
    items, rev = store.list("pods")
    assert [(o.namespace, o.name) for o in items] == [
        ("a", "b"), ("a", "y"), ("b", "a"), ("b", "z"), ("c", "m")]
    assert rev == 6
    items, rev = store.list("pods", "b")
    assert [o.name for o in items] == ["a", "z"] and rev == 6
    assert store.list("pods", "nope") == ([], 6)
    assert store.list("unknown") == ([], 6)


async def test_list_follows_kube_apiserver_key_order(store: SQLiteStore) -> None:
    # etcd keys "<ns>/<name>": '-' sorts before '/', so "kube-system" precedes "kube".
    for ns in ("kube", "kube-system", "default", "kube-public"):
        await store.create("pods", ns, "p", pod("p", ns))
    items, _ = store.list("pods")
    assert [o.namespace for o in items] == ["default", "kube-public", "kube-system", "kube"]


async def test_list_reflects_every_write_and_is_a_private_copy(store: SQLiteStore) -> None:
    for n in "cab":
        await store.create("pods", "ns", n, pod(n, "ns"))
    first, _ = store.list("pods")
    first.reverse()
    assert [o.name for o in store.list("pods")[0]] == ["a", "b", "c"]
    await store.update("pods", "ns", "b", pod("b", "ns", status={"x": 1}), None)
    items, rev = store.list("pods", "ns")
    assert items[1].obj["status"] == {"x": 1} and items[1].rv == rev == 4
    await store.delete("pods", "ns", "a")
    assert [o.name for o in store.list("pods")[0]] == ["b", "c"]
    assert [o.name for o in store.list("pods", "ns")[0]] == ["b", "c"]


async def test_random_operations_match_a_model(store: SQLiteStore) -> None:
    rnd = random.Random(7)
    model: dict[tuple[str, str, str], int] = {}
    for _ in range(600):
        key = (rnd.choice(["pods", "services"]), rnd.choice(["", "a", "a-b", "b"]),
               f"n{rnd.randrange(25)}")
        if key in model:
            if rnd.random() < 0.5:
                model[key] = (await store.update(*key, {"v": rnd.random()}, model[key])).rv
            else:
                await store.delete(*key, expected_rv=model[key])
                del model[key]
        else:
            model[key] = (await store.create(*key, {"v": 0})).rv
        if rnd.random() < 0.2:
            res = key[0]
            ns = rnd.choice([None, key[1]])
            items, rev = store.list(res, ns)
            expect = sorted(((k[1] + "/", k[2]), v) for k, v in model.items()
                            if k[0] == res and (ns is None or k[1] == ns))
            assert [((o.namespace + "/", o.name), o.rv) for o in items] == expect
            assert rev == store.revision


# -- persistence --------------------------------------------------------------------

async def test_reopen_finds_same_objects_and_revision_continues(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    s = SQLiteStore(path)
    await s.create("pods", "default", "a", pod("a"))
    await s.create("deployments.apps", "default", "d", {"kind": "Deployment", "spec": {}})
    await s.update("pods", "default", "a", pod("a", status={"phase": "Running"}), 1)
    await s.create("pods", "default", "tmp", pod("tmp"))
    await s.delete("pods", "default", "tmp")   # the newest write deletes its key
    before = {(o.resource, o.namespace, o.name): o
              for res in ("pods", "deployments.apps") for o in s.list(res)[0]}
    await s.close()

    s2 = SQLiteStore(path)
    try:
        assert s2.revision == 5
        after = {(o.resource, o.namespace, o.name): o
                 for res in ("pods", "deployments.apps") for o in s2.list(res)[0]}
        assert after == before
        created = await s2.create("pods", "default", "tmp", pod("tmp"))
        assert created.rv == 6
        # History is not persisted: older starts are Gone, the current one streams.
        with pytest.raises(errors.Gone):
            s2.watch(None, None, 4)
        s2.watch(None, None, 5).close()
    finally:
        await s2.close()


async def test_reopen_after_writes_past_the_last_deletion(tmp_path: Path) -> None:
    # Only deletions write the counter row; creates and updates after the last one
    # are found by their rows' rv on reopen.
    path = str(tmp_path / "s.db")
    s = SQLiteStore(path)
    await s.create("pods", "default", "a", pod("a"))
    await s.delete("pods", "default", "a")                      # counter row: 2
    await s.create("pods", "default", "b", pod("b"))
    await s.update("pods", "default", "b", pod("b", status={"phase": "Running"}), 3)
    await s.close()
    db = sqlite3.connect(path)
    try:
        assert db.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()[0] == 2
    finally:
        db.close()
    s2 = SQLiteStore(path)
    try:
        assert s2.revision == 4
        assert (await s2.create("pods", "default", "c", pod("c"))).rv == 5
    finally:
        await s2.close()


async def test_writes_survive_a_process_crash(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    code = (
        "import asyncio, os\n"
        "from netd.store.sqlite import SQLiteStore\n"
        "async def main():\n"
        f"    s = SQLiteStore({str(path)!r})\n"
        "    for i in range(5):\n"
        "        await s.create('pods', 'default', f'p{i}', {'i': i})\n"
        "    await s.delete('pods', 'default', 'p0')\n"
        "    os._exit(0)\n"   # no close(): no final checkpoint, lock left to the kernel
        "asyncio.run(main())\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60,
                   cwd=str(Path(__file__).resolve().parents[2]))
    s = SQLiteStore(str(path))
    try:
        assert s.revision == 6
        assert [o.name for o in s.list("pods")[0]] == ["p1", "p2", "p3", "p4"]
    finally:
        await s.close()


async def test_file_uses_wal_and_persists_revisions(tmp_path: Path) -> None:
    path = str(tmp_path / "w.db")
    s = SQLiteStore(path)
    await s.create("pods", "default", "a", pod("a"))
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        row = db.execute("SELECT key, resource, namespace, name, rv, data FROM objects").fetchone()
        assert row[:5] == ("/pods/default/a", "pods", "default", "a", 1)
        assert orjson.loads(row[5])["metadata"]["resourceVersion"] == "1"
        # A create leaves the counter row alone; a deletion writes its revision there.
        assert db.execute("SELECT value FROM meta WHERE key='revision'").fetchone()[0] == 0
        await s.create("pods", "default", "b", pod("b"))
        await s.delete("pods", "default", "b")
        assert db.execute("SELECT value FROM meta WHERE key='revision'").fetchone()[0] == 3
    finally:
        db.close()
        await s.close()


async def test_second_open_of_same_file_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "l.db")
    s = SQLiteStore(path)
    with pytest.raises(errors.ServiceUnavailable, match="in use by another process"):
        SQLiteStore(path)
    await s.close()
    s2 = await open_store(path)   # the lock is released on close
    await s2.close()


async def test_open_store_in_thread_loads_state(tmp_path: Path) -> None:
    path = str(tmp_path / "o.db")
    s = await open_store(path)
    await s.create("pods", "x", "y", pod("y", "x"))
    await s.close()
    s = await SQLiteStore.open(path, history_size=10, watcher_queue_limit=5)
    try:
        assert s.get("pods", "x", "y") is not None and s.revision == 1
    finally:
        await s.close()


@pytest.mark.parametrize("restart_frames", [1_000_000, 0], ids=["passive", "forced-restart"])
async def test_checkpoints_keep_data_consistent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture,
                                                restart_frames: int) -> None:
    monkeypatch.setattr(sqlite_mod, "CHECKPOINT_WRITES", 7)
    monkeypatch.setattr(sqlite_mod, "WAL_RESTART_FRAMES", restart_frames)
    caplog.set_level(logging.DEBUG, logger="netd.store")
    path = str(tmp_path / "c.db")
    s = SQLiteStore(path)
    for i in range(300):
        await s.create("pods", "default", f"p{i:03d}", pod(f"p{i:03d}"))
        if i % 3 == 0:
            await s.update("pods", "default", f"p{i:03d}", pod(f"p{i:03d}", status={"i": i}), None)
    # Let the background checkpoint in flight finish, then write again: the writer
    # must notice it (and, past the frame limit, restart the WAL itself).
    pending = s._ckpt_future
    assert pending is not None or s._writes_since_ckpt < 7
    if pending is not None:
        await asyncio.wrap_future(pending)
    await s.create("pods", "default", "last", pod("last"))
    restarted = any("WAL restart checkpoint" in r.getMessage() for r in caplog.records)
    assert restarted == (restart_frames == 0)
    rev = s.revision
    await s.close()
    s = SQLiteStore(path)
    try:
        assert s.revision == rev
        items, _ = s.list("pods")
        assert len(items) == 301
        assert s.get("pods", "default", "p003").obj["status"] == {"i": 3}  # type: ignore[union-attr]
    finally:
        await s.close()
    assert not (tmp_path / "c.db-wal").exists() or (tmp_path / "c.db-wal").stat().st_size == 0


async def test_closed_store_refuses_writes_and_watches(store: SQLiteStore) -> None:
    await store.create("pods", "default", "a", pod("a"))
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(errors.ServiceUnavailable):
        await store.create("pods", "default", "b", pod("b"))
    with pytest.raises(errors.ServiceUnavailable):
        await store.update("pods", "default", "a", pod("a"), None)
    with pytest.raises(errors.ServiceUnavailable):
        await store.delete("pods", "default", "a")
    with pytest.raises(errors.ServiceUnavailable):
        store.watch(None, None, store.revision)
    # Reads keep answering from memory (useful while shutting down).
    assert store.get("pods", "default", "a") is not None
