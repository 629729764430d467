"""The Store contract: revisioned objects, consistent lists, ordered watches.

Shaped like etcd's model (one cluster-wide revision, compare-and-swap on the
revision of a key, watch from a revision) so an etcd backend fits under the same
interface. Reads are served from memory (the backend keeps the current state and a
window of recent events, like kube-apiserver's watch cache); writes are durable
before they return.

Objects handed out (StoredObject.obj, WatchEvent.obj) are shared and read-only by
contract: copy before changing (`copy_obj`). `raw` is the exact JSON encoding, so
HTTP answers can splice it without re-encoding.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, AsyncIterator

import orjson

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"
BOOKMARK = "BOOKMARK"


def copy_obj(obj: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a JSON object; orjson round-trip is ~5x faster than copy.deepcopy."""
    return orjson.loads(orjson.dumps(obj))


@dataclass(frozen=True, slots=True)
class StoredObject:
    resource: str          # group-qualified plural: "pods", "deployments.apps"
    namespace: str         # "" for cluster-scoped
    name: str
    rv: int                # revision of the write that produced this version
    obj: dict[str, Any]    # read-only; metadata.resourceVersion == str(rv)
    raw: bytes             # orjson encoding of obj


@dataclass(frozen=True, slots=True)
class WatchEvent:
    type: str              # ADDED | MODIFIED | DELETED
    rv: int
    resource: str
    namespace: str
    name: str
    obj: dict[str, Any]    # the new object (for DELETED: the last state, rv = deletion rv)
    raw: bytes
    prev: dict[str, Any] | None = None  # previous state for MODIFIED/DELETED


class Watcher(abc.ABC):
    """An ordered stream of events after a revision. Iterating yields batches."""

    @abc.abstractmethod
    def __aiter__(self) -> AsyncIterator[list[WatchEvent]]: ...

    @abc.abstractmethod
    def close(self) -> None:
        """Stop the stream; iteration ends. Idempotent."""

    @property
    @abc.abstractmethod
    def closed_reason(self) -> str | None:
        """Why the store ended the stream (e.g. consumer too slow), or None."""


class Store(abc.ABC):
    """Backends: netd.store.sqlite.SQLiteStore (default), later etcd."""

    @property
    @abc.abstractmethod
    def revision(self) -> int:
        """The revision of the latest committed write (0 for an empty store)."""

    @abc.abstractmethod
    async def create(self, resource: str, namespace: str, name: str,
                     obj: dict[str, Any]) -> StoredObject:
        """Store a new key. Raises errors.AlreadyExists. Sets metadata.resourceVersion."""

    @abc.abstractmethod
    async def update(self, resource: str, namespace: str, name: str, obj: dict[str, Any],
                     expected_rv: int | None) -> StoredObject:
        """Replace a key. expected_rv (when given) must equal the stored rv, else
        errors.Conflict. Raises errors.NotFound when the key is absent."""

    @abc.abstractmethod
    async def delete(self, resource: str, namespace: str, name: str,
                     expected_rv: int | None = None) -> StoredObject:
        """Remove a key; returns its last state stamped with the deletion revision."""

    @abc.abstractmethod
    def get(self, resource: str, namespace: str, name: str) -> StoredObject | None: ...

    @abc.abstractmethod
    def list(self, resource: str, namespace: str | None = None
             ) -> tuple[list[StoredObject], int]:
        """Every object of `resource` (in `namespace` when given) sorted by
        (namespace, name), with the revision the snapshot is consistent at."""

    @abc.abstractmethod
    def watch(self, resource: str | None, namespace: str | None, from_rv: int) -> Watcher:
        """Events with rv > from_rv, in order, for `resource` (None: every resource)
        and `namespace` (None: all). Raises errors.Gone when from_rv is older than
        the kept history."""

    @abc.abstractmethod
    async def close(self) -> None: ...
