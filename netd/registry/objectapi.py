"""The one write path: every change to cluster state, from HTTP or in-process,
goes through ObjectAPI (decode checks, defaulting, validation, admission, store).

Reads come from the store's in-memory state; returned StoredObjects are shared
and read-only (copy_obj before changing).
"""
from __future__ import annotations

import builtins
import logging
import secrets
import uuid
from datetime import datetime, timezone
from typing import Any, Callable

import orjson

from netd.api import errors
from netd.api.defaults import apply_defaults
from netd.api.fieldcheck import prune, unknown_fields
from netd.api.kinds import REGISTRY, ResourceType
from netd.api.patch import apply_json_patch, apply_merge_patch, apply_strategic_merge_patch
from netd.api.validation import validate_create, validate_status_update, validate_update
from netd.registry import deletion, strategy
from netd.registry.admission import AdmissionPlugin, NamespaceLifecycle, Undo, run_undos
from netd.registry.listing import Filter, ListResult, WatchStream, paginate
from netd.store.base import Store, StoredObject, copy_obj

log = logging.getLogger("netd.registry")

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH)
# Field validation mode of netd's own components (never accepted over HTTP): their
# objects come from the schema-checked store or from code, so the unknown-field walk
# is skipped on their hot paths (controllers, node agents).
TRUSTED = "Trusted"

# generateName suffix alphabet of apimachinery's rand.String (no vowels, no 0/1/3).
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_PATCH_RETRIES = 5
# Kinds whose PUT creates a missing object (AllowCreateOnUpdate in kube-apiserver).
_CREATE_ON_UPDATE = {"Endpoints", "Lease", "Event"}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def timestamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class ObjectAPI:
    def __init__(self, store: Store, *, clock: Callable[[], datetime] = utcnow,
                 plugins: builtins.list[AdmissionPlugin] | None = None) -> None:
        self.store = store
        self.types = REGISTRY
        self.clock = clock
        self.plugins: builtins.list[AdmissionPlugin] = [NamespaceLifecycle(store)]
        self.plugins.extend(plugins or [])

    # ---- reads -------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str, name: str) -> StoredObject:
        found = self.store.get(rt.group_resource, _ns(rt, namespace), name)
        if found is None:
            raise errors.NotFound.of(rt.plural, rt.group, name)
        return found

    def list(self, rt: ResourceType, namespace: str | None, *, label_selector: str = "",
             field_selector: str = "", limit: int = 0, continue_token: str = "") -> ListResult:
        flt = Filter.parse(rt, label_selector, field_selector)
        items, rv = self.store.list(rt.group_resource, namespace if rt.namespaced else None)
        if not flt.everything:
            items = [o for o in items if flt.matches(o.obj)]
        return paginate(items, rv, limit, continue_token)

    def watch(self, rt: ResourceType, namespace: str | None, *, resource_version: str = "",
              label_selector: str = "", field_selector: str = "") -> WatchStream:
        flt = Filter.parse(rt, label_selector, field_selector)
        ns = namespace if rt.namespaced else None
        if resource_version in ("", "0"):
            # Unset or "0": synthetic ADDED events for the current state, then changes.
            items, rv = self.store.list(rt.group_resource, ns)
            initial = [o for o in items if flt.matches(o.obj)]
        else:
            try:
                rv = int(resource_version)
            except ValueError:
                raise errors.BadRequest(
                    f'invalid resource version "{resource_version}"') from None
            initial = []
        watcher = self.store.watch(rt.group_resource, ns, rv)
        return WatchStream(watcher, flt, initial, rv)

    # ---- create ------------------------------------------------------------------

    async def create(self, rt: ResourceType, namespace: str, body: Any, *,
                     dry_run: bool = False, field_validation: str = "Strict",
                     warnings: builtins.list[str] | None = None) -> StoredObject:
        obj = self._decode(rt, body, field_validation, warnings)
        meta = obj.setdefault("metadata", {})
        self._check_namespace(rt, namespace, meta)
        if meta.get("resourceVersion"):
            raise errors.BadRequest("resourceVersion should not be set on objects to be created")
        generated = not meta.get("name") and bool(meta.get("generateName"))
        for attempt in range(8):
            candidate = copy_obj(obj) if generated else obj
            cmeta = candidate["metadata"]
            if generated:
                cmeta["name"] = cmeta["generateName"] + "".join(
                    secrets.choice(_NAME_ALPHABET) for _ in range(5))
            try:
                return await self._create_one(rt, candidate, dry_run)
            except errors.AlreadyExists:
                if not generated or attempt == 7:
                    raise
        raise AssertionError("unreachable")

    async def _create_one(self, rt: ResourceType, obj: dict[str, Any],
                          dry_run: bool) -> StoredObject:
        meta = obj["metadata"]
        apply_defaults(rt.kind, obj)
        strategy.prepare_for_create(rt, obj)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = timestamp(self.clock())
        name = meta.get("name", "")
        errs = validate_create(rt.kind, obj)
        if errs:
            raise errors.Invalid(rt.kind, name, errs, rt.group)
        ns = meta.get("namespace", "")
        if self.store.get(rt.group_resource, ns, name) is not None:
            raise errors.AlreadyExists.of(rt.plural, rt.group, name)
        undos: builtins.list[Undo] = []
        try:
            for plugin in self.plugins:
                undo = await plugin.on_create(rt, obj, dry_run)
                if undo is not None:
                    undos.append(undo)
            if dry_run:
                run_undos(undos)
                return _unsaved(rt, obj, self.store.revision)
            stored = await self.store.create(rt.group_resource, ns, name, obj)
        except BaseException:
            run_undos(undos)
            raise
        log.debug("created %s %s/%s", rt.plural, ns, name)
        return stored

    # ---- update ------------------------------------------------------------------

    async def update(self, rt: ResourceType, namespace: str, name: str, body: Any, *,
                     subresource: str | None = None, dry_run: bool = False,
                     field_validation: str = "Strict",
                     warnings: builtins.list[str] | None = None) -> StoredObject:
        obj = self._decode(rt, body, field_validation, warnings)
        meta = obj.setdefault("metadata", {})
        self._check_namespace(rt, namespace, meta)
        if meta.get("name") and meta["name"] != name:
            raise errors.BadRequest(f"the name of the object ({meta['name']}) does not match "
                                    f"the name on the URL ({name})")
        meta["name"] = name
        current = self.store.get(rt.group_resource, meta.get("namespace", ""), name)
        if current is None:
            if rt.kind in _CREATE_ON_UPDATE and subresource is None:
                meta.pop("resourceVersion", None)
                return await self._create_one(rt, obj, dry_run)
            raise errors.NotFound.of(rt.plural, rt.group, name)
        sent_rv = meta.get("resourceVersion")
        if sent_rv and str(sent_rv) != str(current.rv):
            raise errors.Conflict.stale(rt.plural, rt.group, name)
        return await self._update_from(rt, current, obj, subresource, dry_run)

    async def _update_from(self, rt: ResourceType, current: StoredObject, obj: dict[str, Any],
                           subresource: str | None, dry_run: bool) -> StoredObject:
        old = current.obj
        name = current.name
        apply_defaults(rt.kind, obj)
        strategy.prepare_for_update(rt, obj, old, subresource)
        obj["metadata"]["resourceVersion"] = old["metadata"].get("resourceVersion")
        if subresource == "status":
            errs = validate_status_update(rt.kind, obj, old)
        else:
            errs = validate_update(rt.kind, obj, old)
        if errs:
            raise errors.Invalid(rt.kind, name, errs, rt.group)
        if obj == old:
            # kube-apiserver skips no-op writes: same object, same resourceVersion.
            return current
        undos: builtins.list[Undo] = []
        try:
            for plugin in self.plugins:
                undo = await plugin.on_update(rt, obj, old, dry_run)
                if undo is not None:
                    undos.append(undo)
            if dry_run:
                run_undos(undos)
                return _unsaved(rt, obj, current.rv)
            meta = obj["metadata"]
            if meta.get("deletionTimestamp") and not meta.get("finalizers") and \
                    deletion.finalized(rt, obj):
                # The last finalizer is gone: the object leaves the store now.
                return await self._remove(rt, current)
            stored = await self.store.update(rt.group_resource, current.namespace, name, obj,
                                             current.rv)
        except BaseException:
            run_undos(undos)
            raise
        return stored

    # ---- patch -------------------------------------------------------------------

    async def patch(self, rt: ResourceType, namespace: str, name: str, patch_type: str,
                    patch: Any, *, subresource: str | None = None, dry_run: bool = False,
                    field_validation: str = "Strict",
                    warnings: builtins.list[str] | None = None) -> StoredObject:
        if patch_type == APPLY_PATCH:
            raise errors.UnsupportedMediaType(
                "server-side apply is not supported by netd: use client-side `kubectl apply` "
                "(without --server-side)")
        if patch_type not in PATCH_TYPES:
            raise errors.UnsupportedMediaType(
                f"the body of the request was in an unknown format - accepted media types "
                f"include: {', '.join(PATCH_TYPES)}")
        ns = _ns(rt, namespace)
        for _ in range(_PATCH_RETRIES):
            current = self.get(rt, ns, name)
            patched = self._apply_patch(rt, current.obj, patch_type, patch)
            meta = patched.setdefault("metadata", {})
            if meta.get("name", name) != name:
                raise errors.BadRequest(f"the name of the object ({meta['name']}) does not "
                                        f"match the name on the URL ({name})")
            sent_rv = meta.get("resourceVersion")
            if sent_rv and str(sent_rv) != str(current.rv):
                raise errors.Conflict.stale(rt.plural, rt.group, name)
            self._field_check(rt, patched, field_validation, warnings)
            try:
                return await self._update_from(rt, current, patched, subresource, dry_run)
            except errors.Conflict:
                if sent_rv:
                    raise
                # Someone wrote in between: re-read and re-apply, as kube-apiserver does.
                continue
        raise errors.Conflict.of(rt.plural, rt.group, name,
                                 "the object has been modified too often to patch")

    def _apply_patch(self, rt: ResourceType, doc: dict[str, Any], patch_type: str,
                     patch: Any) -> dict[str, Any]:
        if patch_type == JSON_PATCH:
            if not isinstance(patch, list):
                raise errors.BadRequest("json patch must be a list of operations")
            return apply_json_patch(doc, patch)
        if not isinstance(patch, dict):
            raise errors.BadRequest("patch body must be a JSON object")
        if patch_type == MERGE_PATCH:
            return apply_merge_patch(doc, patch)
        return apply_strategic_merge_patch(doc, patch, rt.kind)

    # ---- delete ------------------------------------------------------------------

    async def delete(self, rt: ResourceType, namespace: str, name: str,
                     options: dict[str, Any] | None = None, *,
                     dry_run: bool = False) -> tuple[StoredObject, bool]:
        """Returns the object and whether it is gone now (False: graceful deletion or
        finalizers pending — HTTP answers 202 then)."""
        options = options or {}
        current = self.get(rt, namespace, name)
        deletion.check_preconditions(rt, current, options)
        if rt.kind == "Namespace" and name in ("default", "kube-system", "kube-public"):
            raise errors.Forbidden(f'namespaces "{name}" is forbidden: this namespace may not '
                                   "be deleted", name=name, kind="namespaces")
        plan = deletion.plan(rt, current.obj, options, self.clock())
        if dry_run:
            return current, plan.updated is None
        if plan.updated is None:
            return await self._remove(rt, current), True
        stored = await self.store.update(rt.group_resource, current.namespace, name,
                                         plan.updated, current.rv)
        return stored, False

    async def _remove(self, rt: ResourceType, current: StoredObject) -> StoredObject:
        gone = await self.store.delete(rt.group_resource, current.namespace, current.name,
                                       current.rv)
        for plugin in self.plugins:
            try:
                await plugin.on_delete(rt, gone.obj)
            except Exception:  # a release that fails must not undo a committed delete
                log.exception("admission release failed for %s %s/%s", rt.plural,
                              current.namespace, current.name)
        return gone

    async def delete_collection(self, rt: ResourceType, namespace: str | None,
                                options: dict[str, Any] | None = None, *,
                                label_selector: str = "", field_selector: str = "",
                                dry_run: bool = False) -> builtins.list[StoredObject]:
        result = self.list(rt, namespace, label_selector=label_selector,
                           field_selector=field_selector)
        out = []
        for item in result.items:
            try:
                obj, _ = await self.delete(rt, item.namespace, item.name, options,
                                           dry_run=dry_run)
                out.append(obj)
            except errors.NotFound:
                continue
        return out

    # ---- helpers -----------------------------------------------------------------

    def _decode(self, rt: ResourceType, body: Any, field_validation: str,
                warnings: builtins.list[str] | None) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise errors.BadRequest("the body of the request must be a JSON object")
        obj = copy_obj(body)
        api_version = obj.get("apiVersion")
        kind = obj.get("kind")
        if kind is not None and kind != rt.kind:
            raise errors.BadRequest(
                f'{kind} in version "{_version(api_version)}" cannot be handled as a '
                f"{rt.kind}: the kind of the object does not match the resource {rt.plural}")
        if api_version is not None and api_version != rt.api_version:
            raise errors.BadRequest(
                f"the API version in the data ({api_version}) does not match the expected "
                f"API version ({rt.api_version})")
        obj["apiVersion"] = rt.api_version
        obj["kind"] = rt.kind
        if not isinstance(obj.get("metadata", {}), dict):
            raise errors.BadRequest(f"{rt.kind} in version \"{rt.version}\" cannot be handled "
                                    f"as a {rt.kind}: metadata must be an object")
        self._field_check(rt, obj, field_validation, warnings)
        return obj

    def _field_check(self, rt: ResourceType, obj: dict[str, Any], mode: str,
                     warnings: builtins.list[str] | None) -> None:
        unknown = unknown_fields(rt.kind, obj)
        if not unknown:
            return
        if mode == "Strict":
            detail = ", ".join(f'unknown field "{p}"' for p in unknown)
            raise errors.BadRequest(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                f"strict decoding error: {detail}")
        if warnings is not None and mode == "Warn":
            warnings.extend(f'unknown field "{p}"' for p in unknown)
        prune(obj, unknown)

    def _check_namespace(self, rt: ResourceType, namespace: str,
                         meta: dict[str, Any]) -> None:
        if not rt.namespaced:
            meta.pop("namespace", None)
            return
        body_ns = meta.get("namespace")
        if body_ns and body_ns != namespace:
            raise errors.BadRequest("the namespace of the provided object does not match the "
                                    "namespace sent on the request")
        meta["namespace"] = namespace


def _ns(rt: ResourceType, namespace: str | None) -> str:
    return (namespace or "") if rt.namespaced else ""


def _version(api_version: Any) -> str:
    return str(api_version).rpartition("/")[2] if api_version else ""


def _unsaved(rt: ResourceType, obj: dict[str, Any], rv: int) -> StoredObject:
    """What a dry run answers: the object as it would be stored."""
    meta = obj["metadata"]
    return StoredObject(rt.group_resource, meta.get("namespace", ""), meta.get("name", ""),
                        rv, obj, orjson.dumps(obj))
