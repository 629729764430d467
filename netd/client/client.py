"""The in-process client: what controllers, the node agent and the CLI's local mode
use to read and write cluster state.

It is a thin convenience over ObjectAPI — the same decode/default/validate/admit path
HTTP requests take (rule 1 of the design: one write path) — that speaks kinds instead
of ResourceTypes and hands out private copies instead of the store's shared objects.

Why fieldValidation defaults to "Ignore" here: field validation is about decoding what
a *user* sent. In-process writers re-send objects read from the store, which may carry
unknown fields a user stored with `--validate=warn`/`ignore`; kube-apiserver's own
controllers never trip over those (their typed clients drop them), so neither must ours.
"""
from __future__ import annotations

import builtins
import logging
from typing import Any, Awaitable, Callable, TypeVar

from netd.api import errors
from netd.api.kinds import REGISTRY, ResourceType
from netd.registry.objectapi import MERGE_PATCH, TRUSTED, ObjectAPI
from netd.store.base import StoredObject, copy_obj

log = logging.getLogger("netd.client")

Obj = dict[str, Any]
T = TypeVar("T")

FOREGROUND = "Foreground"
BACKGROUND = "Background"
ORPHAN = "Orphan"


def resolve(kind: str | ResourceType) -> ResourceType:
    """A ResourceType from itself, a kind ("Pod"), plural ("pods"), short name ("po"),
    group-qualified plural ("deployments.apps") or apiVersion-qualified kind
    ("apps/v1/Deployment")."""
    if isinstance(kind, ResourceType):
        return kind
    if kind.count("/") >= 1:
        api_version, _, k = kind.rpartition("/")
        rt = REGISTRY.by_api_version_kind(api_version, k)
    else:
        rt = REGISTRY.resolve(kind)
    if rt is None:
        raise errors.NotFound(f'the server doesn\'t have a resource type "{kind}"')
    return rt


class Client:
    def __init__(self, api: ObjectAPI, *, field_validation: str = TRUSTED) -> None:
        self.api = api
        self.field_validation = field_validation

    # ---- reads (copies: callers may change them and write them back) ---------------

    def get(self, kind: str | ResourceType, namespace: str, name: str) -> Obj:
        """Raises errors.NotFound."""
        return copy_obj(self.api.get(resolve(kind), namespace, name).obj)

    def get_or_none(self, kind: str | ResourceType, namespace: str, name: str) -> Obj | None:
        try:
            return self.get(kind, namespace, name)
        except errors.NotFound:
            return None

    def list(self, kind: str | ResourceType, namespace: str | None = None, *,
             label_selector: str = "", field_selector: str = "") -> list[Obj]:
        """Every matching object (namespace None: all namespaces), sorted by
        (namespace, name)."""
        result = self.api.list(resolve(kind), namespace, label_selector=label_selector,
                               field_selector=field_selector)
        return [copy_obj(item.obj) for item in result.items]

    def list_with_version(self, kind: str | ResourceType, namespace: str | None = None, *,
                          label_selector: str = "", field_selector: str = ""
                          ) -> tuple[builtins.list[Obj], str]:
        """Like list, plus the list's resourceVersion (to start a watch from)."""
        result = self.api.list(resolve(kind), namespace, label_selector=label_selector,
                               field_selector=field_selector)
        return [copy_obj(i.obj) for i in result.items], str(result.resource_version)

    # ---- writes -------------------------------------------------------------------

    async def create(self, kind: str | ResourceType, body: Obj,
                     namespace: str | None = None) -> Obj:
        """Create `body`; the namespace is `namespace` or body.metadata.namespace.
        Raises errors.AlreadyExists / Invalid / Forbidden (namespace terminating)."""
        rt = resolve(kind)
        stored = await self.api.create(rt, _namespace(rt, body, namespace), body,
                                       field_validation=self.field_validation)
        return _copy(stored)

    async def update(self, kind: str | ResourceType, body: Obj) -> Obj:
        """Replace the object named in body.metadata; a set metadata.resourceVersion
        makes it a compare-and-swap (errors.Conflict when stale)."""
        return await self._update(kind, body, None)

    async def update_status(self, kind: str | ResourceType, body: Obj) -> Obj:
        """Write through the status subresource: spec changes in `body` are ignored and
        ownerReferences/finalizers kept, as kube-apiserver does; labels and annotations
        may change (the Deployment controller writes its revision annotation this way)."""
        return await self._update(kind, body, "status")

    async def _update(self, kind: str | ResourceType, body: Obj,
                      subresource: str | None) -> Obj:
        rt = resolve(kind)
        meta = body.get("metadata") or {}
        name = meta.get("name") or ""
        if not name:
            raise errors.BadRequest("name is required to update an object")
        stored = await self.api.update(rt, _namespace(rt, body, None), name, body,
                                       subresource=subresource,
                                       field_validation=self.field_validation)
        return _copy(stored)

    async def patch(self, kind: str | ResourceType, namespace: str, name: str,
                    patch: Any, patch_type: str = MERGE_PATCH, *,
                    subresource: str | None = None) -> Obj:
        """Apply a JSON / merge / strategic-merge patch (ObjectAPI's media types)."""
        stored = await self.api.patch(resolve(kind), namespace, name, patch_type, patch,
                                      subresource=subresource,
                                      field_validation=self.field_validation)
        return _copy(stored)

    async def delete(self, kind: str | ResourceType, namespace: str, name: str, *,
                     propagation: str | None = None, grace: int | None = None,
                     uid: str | None = None, resource_version: str | None = None) -> Obj:
        """Delete (DeleteOptions: propagationPolicy, gracePeriodSeconds, preconditions).
        Returns the last state; when deletion is pending (grace period, finalizers) that
        is the object now carrying metadata.deletionTimestamp."""
        options: dict[str, Any] = {}
        if propagation is not None:
            options["propagationPolicy"] = propagation
        if grace is not None:
            options["gracePeriodSeconds"] = grace
        pre: dict[str, Any] = {}
        if uid is not None:
            pre["uid"] = uid
        if resource_version is not None:
            pre["resourceVersion"] = resource_version
        if pre:
            options["preconditions"] = pre
        stored, _gone = await self.api.delete(resolve(kind), namespace, name, options)
        return _copy(stored)

    async def delete_if_exists(self, kind: str | ResourceType, namespace: str, name: str,
                               **kwargs: Any) -> Obj | None:
        try:
            return await self.delete(kind, namespace, name, **kwargs)
        except errors.NotFound:
            return None


async def retry_on_conflict(fn: Callable[[], Awaitable[T]], attempts: int = 5) -> T:
    """client-go's retry.RetryOnConflict: re-run a read-modify-write on Conflict.
    `fn` must re-read current state each time (never retry with a stale object)."""
    for attempt in range(attempts):
        try:
            return await fn()
        except errors.Conflict:
            if attempt == attempts - 1:
                raise
            log.debug("conflict, retrying (%d/%d)", attempt + 1, attempts)
    raise AssertionError("unreachable")


def _namespace(rt: ResourceType, body: Obj, namespace: str | None) -> str:
    if not rt.namespaced:
        return ""
    if namespace is not None:
        return namespace
    return (body.get("metadata") or {}).get("namespace") or ""


def _copy(stored: StoredObject) -> Obj:
    return copy_obj(stored.obj)
