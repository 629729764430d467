"""The embedded default backend: SQLite for durability, StateCache for everything read.

Why writes run synchronously on the event loop: a WAL-mode commit with
synchronous=NORMAL is a few tens of microseconds (no fsync per commit), less than
handing the work to a thread and back, and doing it inline makes each write atomic
with respect to every reader and watcher in the loop for free. Committed data
survives a crash of the process (it is in the WAL, i.e. the OS page cache); only a
power loss can drop the last commits, the same trade as etcd's batched fsync.

What does cost milliseconds is a checkpoint (copying the WAL into the database,
with fsyncs): SQLite's automatic one runs inside an unlucky commit and stalled the
loop 7-11 ms every ~200 writes on the reference VM — DNS answers included. So it is
off; a PASSIVE checkpoint (never blocks the writer) runs on a worker thread with its
own connection every CHECKPOINT_WRITES writes, and the WAL restarts from its start
once a checkpoint has caught up. Under a sustained burst it never catches up and
the WAL would grow without bound (slowing every page lookup), so past
WAL_RESTART_FRAMES the writer itself runs one RESTART checkpoint — by then the
thread has copied nearly everything: measured ~15 ms once per ~4,000 pod writes of
uninterrupted writing, and never when writes pause now and then. journal_size_limit
then trims the WAL file so a burst does not leave a huge file behind.

Schema: `objects` holds the current version of every key (the etcd-like key
`/<resource>/<namespace>/<name>`, its parts, rv, JSON bytes); `meta` holds the
revision counter, written in the same transaction as each deletion, so a reopened
store, which starts from the larger of that counter and the newest row's rv,
continues exactly where it stopped even when the newest key was deleted. A create
or update is one autocommitted statement (its row carries the revision).
"""
from __future__ import annotations

import asyncio
import fcntl
import gc
import logging
import os
import sqlite3
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import orjson

from netd.api import errors
from netd.store.base import Store, StoredObject
from netd.store.cache import StateCache, encode_new, split_resource, stamp
from netd.store.watch import QueueWatcher

log = logging.getLogger("netd.store")

SCHEMA_VERSION = 1
# Writes (~5 WAL pages each for a pod) between background checkpoints.
CHECKPOINT_WRITES = 200
# WAL frames (pages) beyond which the writer forces a WAL restart itself.
WAL_RESTART_FRAMES = 20_000
# Bytes the WAL file is truncated to after a restart.
WAL_SIZE_LIMIT = 16 << 20

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    key       TEXT PRIMARY KEY,
    resource  TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name      TEXT NOT NULL,
    rv        INTEGER NOT NULL,
    data      BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('revision', 0);
"""

_INSERT = ("INSERT INTO objects (key, resource, namespace, name, rv, data) "
           "VALUES (?, ?, ?, ?, ?, ?)")
_UPDATE = "UPDATE objects SET rv = ?, data = ? WHERE key = ?"
_DELETE = "DELETE FROM objects WHERE key = ?"
_SET_REV = "UPDATE meta SET value = ? WHERE key = 'revision'"


def _lock_exclusive(lock_path: str) -> int:
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise errors.ServiceUnavailable(
            f"store {lock_path[:-5]} is in use by another process") from None
    return fd


def _unlock(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)  # closing the descriptor drops the flock


def storage_key(resource: str, namespace: str, name: str) -> str:
    return f"/{resource}/{namespace}/{name}" if namespace else f"/{resource}/{name}"


class SQLiteStore(Store):
    """Store on one SQLite file (or ":memory:" for tests).

    The constructor does blocking I/O (opens the file, loads every object); call it
    at startup, or `await SQLiteStore.open(path)` / `await open_store(path)` to do
    that in a worker thread.
    """

    def __init__(self, path: str, history_size: int = 100_000,
                 watcher_queue_limit: int = 10_000) -> None:
        self._path = path
        self._persistent = path != ":memory:"
        # The in-memory state is the truth readers see, so a second process writing
        # the same file would silently fork the cluster: refuse to share it.
        self._lock_fd = _lock_exclusive(path + ".lock") if self._persistent else None
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except BaseException:
            _unlock(self._lock_fd)
            raise
        self._ckpt_db: sqlite3.Connection | None = None
        self._ckpt_pool: ThreadPoolExecutor | None = None
        # A concurrent (not asyncio) future: polled after each commit, so a burst of
        # writes that never yields to the loop still sees checkpoints finish.
        self._ckpt_future: Future[tuple[int, int, int]] | None = None
        self._writes_since_ckpt = 0
        self._force_restart = False
        self._closed = False
        try:
            revision, objects = self._open_db()
        except BaseException:
            self._db.close()
            _unlock(self._lock_fd)
            raise
        self._cache = StateCache(revision, history_size, watcher_queue_limit)
        self._cache.load(objects)
        log.info("store %s opened at revision %d with %d objects",
                 path, revision, len(objects))

    @classmethod
    async def open(cls, path: str, history_size: int = 100_000,
                   watcher_queue_limit: int = 10_000) -> "SQLiteStore":
        return await asyncio.to_thread(cls, path, history_size, watcher_queue_limit)

    def _open_db(self) -> tuple[int, list[StoredObject]]:
        db = self._db
        if self._persistent:
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise errors.InternalError(f"store {self._path}: cannot enable WAL ({mode})")
            db.execute("PRAGMA wal_autocheckpoint=0")
            db.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        db.execute("PRAGMA synchronous=NORMAL")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise errors.InternalError(
                f"store {self._path}: schema version {version} is newer than {SCHEMA_VERSION}")
        db.execute("BEGIN IMMEDIATE")
        try:
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    db.execute(stmt)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        revision = int(db.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()[0])
        objects: list[StoredObject] = []
        # Key order makes every index insert an append (see ResourceIndex).
        rows = db.execute("SELECT resource, namespace, name, rv, data FROM objects "
                          "ORDER BY resource, namespace, name")
        # Decoding creates millions of (acyclic) containers; with the cyclic GC on,
        # its repeated full passes over the growing heap triple the load time.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            for resource, namespace, name, rv, data in rows:
                raw = bytes(data)
                objects.append(StoredObject(resource, namespace, name, rv,
                                            orjson.loads(raw), raw))
                # Creates and updates leave the counter row behind (_commit): the
                # newest row is the revision then.
                revision = max(revision, rv)
        finally:
            if gc_was_enabled:
                gc.enable()
        return revision, objects

    # -- reads (memory) ------------------------------------------------------------

    @property
    def revision(self) -> int:
        return self._cache.revision

    @property
    def cache(self) -> StateCache:
        return self._cache

    def get(self, resource: str, namespace: str, name: str) -> StoredObject | None:
        return self._cache.get(resource, namespace, name)

    def list(self, resource: str, namespace: str | None = None
             ) -> tuple[list[StoredObject], int]:
        return self._cache.list(resource, namespace)

    def watch(self, resource: str | None, namespace: str | None,
              from_rv: int) -> QueueWatcher:
        return self._cache.watch(resource, namespace, from_rv)

    # -- writes (commit, then apply to memory) --------------------------------------
    # None of these await before the commit and apply: each is atomic in the loop.

    async def create(self, resource: str, namespace: str, name: str,
                     obj: dict[str, Any]) -> StoredObject:
        self._check_open()
        if self._cache.get(resource, namespace, name) is not None:
            plural, group = split_resource(resource)
            raise errors.AlreadyExists.of(plural, group, name)
        rv = self._cache.revision + 1
        stored_obj, raw = encode_new(obj, rv)
        self._commit(_INSERT, (storage_key(resource, namespace, name), resource,
                               namespace, name, rv, raw), rv)
        stored = StoredObject(resource, namespace, name, rv, stored_obj, raw)
        self._cache.apply_put(stored)
        return stored

    async def update(self, resource: str, namespace: str, name: str, obj: dict[str, Any],
                     expected_rv: int | None) -> StoredObject:
        self._check_open()
        cur = self._cache.get(resource, namespace, name)
        plural, group = split_resource(resource)
        if cur is None:
            raise errors.NotFound.of(plural, group, name)
        if expected_rv is not None and expected_rv != cur.rv:
            raise errors.Conflict.stale(plural, group, name)
        rv = self._cache.revision + 1
        stored_obj, raw = encode_new(obj, rv)
        self._commit(_UPDATE, (rv, raw, storage_key(resource, namespace, name)), rv)
        stored = StoredObject(resource, namespace, name, rv, stored_obj, raw)
        self._cache.apply_put(stored)
        return stored

    async def delete(self, resource: str, namespace: str, name: str,
                     expected_rv: int | None = None) -> StoredObject:
        self._check_open()
        cur = self._cache.get(resource, namespace, name)
        plural, group = split_resource(resource)
        if cur is None:
            raise errors.NotFound.of(plural, group, name)
        if expected_rv is not None and expected_rv != cur.rv:
            # kube-apiserver turns a failed delete precondition into a Conflict
            # carrying storage.Preconditions.Check's text.
            raise errors.Conflict.of(
                plural, group, name,
                f"Precondition failed: ResourceVersion in precondition: {expected_rv}, "
                f"ResourceVersion in object meta: {cur.rv}")
        rv = self._cache.revision + 1
        # The stored object is read-only and owned by us: a shallow re-stamp may share
        # its nested values.
        last_obj = stamp(cur.obj, rv)
        last_raw = orjson.dumps(last_obj)
        self._commit(_DELETE, (storage_key(resource, namespace, name),), rv)
        last = StoredObject(resource, namespace, name, rv, last_obj, last_raw)
        self._cache.apply_delete(last)
        return last

    def _check_open(self) -> None:
        if self._closed:
            raise errors.ServiceUnavailable("store is closed")

    def _commit(self, sql: str, params: tuple[Any, ...], rv: int) -> None:
        db = self._db
        try:
            if sql is _DELETE:
                # The deleted row may have held the newest revision: the counter row
                # keeps it, in the same transaction.
                db.execute("BEGIN")
                db.execute(sql, params)
                db.execute(_SET_REV, (rv,))
                db.execute("COMMIT")
            else:
                # A create or update row carries its rv, which _open_db takes into the
                # revision: one autocommitted statement, no second page in the WAL.
                db.execute(sql, params)
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            log.error("store write at revision %d failed: %s", rv, exc)
            raise errors.InternalError(f"store write failed: {exc}") from exc
        if self._persistent:
            self._after_commit()

    # -- checkpoints ----------------------------------------------------------------

    def _after_commit(self) -> None:
        self._writes_since_ckpt += 1
        fut = self._ckpt_future
        if fut is not None and fut.done():
            self._ckpt_future = None
            self._checkpoint_done(fut)
        if self._force_restart:
            self._force_restart = False
            self._writes_since_ckpt = 0
            try:
                row = self._db.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
                log.debug("store WAL restart checkpoint: %s", row)
            except sqlite3.Error as exc:
                log.warning("store WAL restart failed: %s", exc)
        elif self._writes_since_ckpt >= CHECKPOINT_WRITES and self._ckpt_future is None:
            self._writes_since_ckpt = 0
            if self._ckpt_pool is None:
                self._ckpt_pool = ThreadPoolExecutor(1, thread_name_prefix="netd-store-ckpt")
            self._ckpt_future = self._ckpt_pool.submit(self._checkpoint_passive)

    def _checkpoint_passive(self) -> tuple[int, int, int]:
        """(busy, WAL frames, frames checkpointed) — runs on the worker thread."""
        if self._ckpt_db is None:
            self._ckpt_db = sqlite3.connect(self._path, isolation_level=None,
                                            check_same_thread=False)
        row = self._ckpt_db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    def _checkpoint_done(self, fut: Future[tuple[int, int, int]]) -> None:
        try:
            _busy, frames, _done = fut.result()
        except sqlite3.Error as exc:
            log.warning("store checkpoint failed: %s", exc)
            return
        if frames > WAL_RESTART_FRAMES:
            self._force_restart = True

    # -- shutdown -------------------------------------------------------------------

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._cache.close()
        if self._ckpt_future is not None:
            try:
                await asyncio.wrap_future(self._ckpt_future)
            except sqlite3.Error as exc:
                log.warning("store checkpoint failed: %s", exc)
            self._ckpt_future = None
        if self._ckpt_pool is not None:
            self._ckpt_pool.shutdown(wait=True)
            self._ckpt_pool = None
        if self._ckpt_db is not None:
            self._ckpt_db.close()
            self._ckpt_db = None
        try:
            if self._persistent:
                # Leave a self-contained database file behind (WAL folded in, emptied).
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error as exc:
            log.warning("store final checkpoint failed: %s", exc)
        finally:
            self._db.close()
            _unlock(self._lock_fd)
            self._lock_fd = None
        log.info("store %s closed at revision %d", self._path, self._cache.revision)


async def open_store(path: str, history_size: int = 100_000,
                     watcher_queue_limit: int = 10_000) -> SQLiteStore:
    """Open (creating if needed) and load a store without blocking the event loop."""
    return await SQLiteStore.open(path, history_size, watcher_queue_limit)
