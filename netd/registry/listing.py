"""List and watch filtering: selectors, pagination tokens, selector-aware watch events."""
from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, AsyncIterator

import orjson

from netd.api import errors
from netd.api.kinds import ResourceType
from netd.api.selectors import (FieldSelector, LabelSelector, check_field_selector,
                                object_fields, parse_field_selector, parse_label_selector)
from netd.store.base import ADDED, DELETED, MODIFIED, StoredObject, WatchEvent, Watcher


@dataclass(frozen=True)
class Filter:
    kind: str
    labels: LabelSelector | None
    fields: FieldSelector | None

    @classmethod
    def parse(cls, rt: ResourceType, label_selector: str, field_selector: str) -> "Filter":
        labels = parse_label_selector(label_selector) if label_selector else None
        fields = None
        if field_selector:
            fields = parse_field_selector(field_selector)
            check_field_selector(rt.kind, fields)
        return cls(rt.kind, labels, fields)

    @property
    def everything(self) -> bool:
        return self.labels is None and self.fields is None

    def matches(self, obj: dict[str, Any]) -> bool:
        if self.labels is not None and \
                not self.labels.matches(obj.get("metadata", {}).get("labels")):
            return False
        if self.fields is not None and not self.fields.matches(object_fields(self.kind, obj)):
            return False
        return True


@dataclass
class ListResult:
    items: list[StoredObject]
    resource_version: int
    continue_token: str = ""
    remaining: int | None = None


def encode_continue(rv: int, start_after: str) -> str:
    raw = orjson.dumps({"v": 1, "rv": rv, "start": start_after})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, str]:
    try:
        pad = "=" * (-len(token) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(token + pad))
        return int(data["rv"]), str(data["start"])
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise errors.BadRequest(f"continue key is not valid: {token!r}") from None


def paginate(items: list[StoredObject], rv: int, limit: int,
             continue_token: str) -> ListResult:
    """A page of an already filtered, (namespace, name)-sorted list.

    Pages after the first are cut from the current state (not a historical
    snapshot at the first page's revision); the token carries that revision so
    clients see which list they continue, as kube-apiserver's tokens do.
    """
    if continue_token:
        token_rv, start = decode_continue(continue_token)
        rv = token_rv
        items = [o for o in items if f"{o.namespace}/{o.name}" > start]
    if limit <= 0 or len(items) <= limit:
        return ListResult(items, rv)
    page = items[:limit]
    last = page[-1]
    return ListResult(page, rv, encode_continue(rv, f"{last.namespace}/{last.name}"),
                      len(items) - limit)


def filter_event(flt: Filter, ev: WatchEvent) -> str | None:
    """The event type a filtered watcher sees (None: nothing), as kube-apiserver's
    watch cache does: an object leaving the selector is DELETED, entering is ADDED."""
    if flt.everything:
        return ev.type
    now = flt.matches(ev.obj)
    if ev.type == ADDED:
        return ADDED if now else None
    if ev.type == DELETED:
        return DELETED if now else None
    before = ev.prev is not None and flt.matches(ev.prev)
    if now and before:
        return MODIFIED
    if now:
        return ADDED
    if before:
        return DELETED
    return None


class WatchStream:
    """A store watcher narrowed to one resource, namespace and selectors, preceded by
    synthetic ADDED events for the initial state when the client asked for them."""

    def __init__(self, watcher: Watcher, flt: Filter, initial: list[StoredObject],
                 start_rv: int) -> None:
        self._watcher = watcher
        self._filter = flt
        self._initial = initial
        self.start_rv = start_rv

    @property
    def closed_reason(self) -> str | None:
        return self._watcher.closed_reason

    def close(self) -> None:
        self._watcher.close()

    async def batches(self) -> AsyncIterator[list[tuple[str, WatchEvent]]]:
        if self._initial:
            yield [(ADDED, WatchEvent(ADDED, o.rv, o.resource, o.namespace, o.name, o.obj,
                                      o.raw)) for o in self._initial]
            self._initial = []
        async for batch in self._watcher:
            out = []
            for ev in batch:
                typ = filter_event(self._filter, ev)
                if typ is not None:
                    out.append((typ, ev))
            if out:
                yield out
