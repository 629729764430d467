"""ControllerRevisions as kube-controller-manager keeps them for StatefulSets and
DaemonSets (k8s.io/kubernetes pkg/controller/history and the two controllers' history
code): a revision is an immutable snapshot of the owner's pod template, stored as the
strategic-merge patch `{"spec": {"template": {..., "$patch": "replace"}}}` so that
`kubectl rollout undo` can apply a revision's data to the owner unchanged, plus a
monotonically growing `revision` number that `kubectl rollout history` lists.

The pure part (patch, hashing, naming, ordering, history truncation) is plain functions;
`RevisionWriter` does the three writes (create with collision probing, renumber,
delete) through the in-process client.
"""
from __future__ import annotations

import logging
from typing import Any, Iterable

import orjson

from netd.api import errors
from netd.client.client import Client
from netd.controllers.podutil import new_controller_ref
from netd.store.base import copy_obj

log = logging.getLogger("netd.controllers.history")

Obj = dict[str, Any]

CONTROLLER_REVISION = "apps/v1/ControllerRevision"
# history.ControllerRevisionHashLabel: set on every revision the history package creates.
REVISION_HASH_LABEL = "controller.kubernetes.io/hash"
# apps.ControllerRevisionHashLabelKey: on pods (StatefulSet: revision name; DaemonSet: hash).
POD_REVISION_LABEL = "controller-revision-hash"
_MAX_PREFIX = 223  # ControllerRevisionName keeps names under 253 characters


def template_patch(owner: Obj) -> Obj:
    """getPatch: the owner's template as a replace-directive patch of its spec."""
    template = copy_obj((owner.get("spec") or {}).get("template") or {})
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def template_of(revision: Obj) -> Obj:
    """The pod template a revision recorded (its data without the directive)."""
    data = revision.get("data") or {}
    template = copy_obj(((data.get("spec") or {}).get("template")) or {})
    template.pop("$patch", None)
    return template


def apply_revision(owner: Obj, revision: Obj) -> Obj:
    """ApplyRevision: a copy of `owner` whose template is the revision's."""
    out = copy_obj(owner)
    out.setdefault("spec", {})["template"] = template_of(revision)
    return out


def _fnv32(data: bytes) -> int:
    # hash/fnv New32 (FNV-1, not 1a), what HashControllerRevision uses.
    h = 0x811C9DC5
    for b in data:
        h = (h * 0x01000193) & 0xFFFFFFFF
        h ^= b
    return h


def safe_encode_string(s: str) -> str:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(alphabet[ord(ch) % len(alphabet)] for ch in s)


def hash_revision(data: Obj, probe: int | None) -> str:
    """HashControllerRevision: FNV-32 of the data (Go marshals the decoded map with
    sorted keys, as orjson's OPT_SORT_KEYS does), then the collision count, rendered
    as SafeEncodeString of the decimal value (10 characters at most)."""
    raw = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    if probe is not None:
        raw += str(probe).encode()
    return safe_encode_string(str(_fnv32(raw)))


def revision_name(prefix: str, hash_: str) -> str:
    if len(prefix) > _MAX_PREFIX:
        prefix = prefix[:_MAX_PREFIX]
    return f"{prefix}-{hash_}"


def new_revision(owner: Obj, labels: dict[str, str] | None, data: Obj, revision: int,
                 *, name: str = "", hash_: str = "") -> Obj:
    """NewControllerRevision: owned by `owner` (controller ref), labelled like its pods,
    carrying the owner's annotations (the StatefulSet controller copies them)."""
    meta: Obj = {"namespace": owner["metadata"]["namespace"],
                 "labels": dict(labels or {}),
                 "ownerReferences": [new_controller_ref(owner)]}
    if hash_:
        meta["labels"][REVISION_HASH_LABEL] = hash_
    if name:
        meta["name"] = name
    annotations = owner["metadata"].get("annotations")
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": meta,
            "data": data, "revision": revision}


def sort_revisions(revisions: Iterable[Obj]) -> list[Obj]:
    """SortControllerRevisions: by revision, then creation time, then name."""
    return sorted(revisions, key=lambda r: (int(r.get("revision") or 0),
                                            r["metadata"].get("creationTimestamp") or "",
                                            r["metadata"].get("name") or ""))


def next_revision(revisions: list[Obj]) -> int:
    """One past the highest revision number (1 for an empty history)."""
    return max((int(r.get("revision") or 0) for r in revisions), default=0) + 1


def equal_revision(a: Obj | None, b: Obj | None) -> bool:
    """EqualRevision: the same data (the hash label, when both carry one, first)."""
    if a is None or b is None:
        return a is b
    ha = (a["metadata"].get("labels") or {}).get(REVISION_HASH_LABEL)
    hb = (b["metadata"].get("labels") or {}).get(REVISION_HASH_LABEL)
    if ha and hb and ha != hb:
        return False
    return bool(a.get("data") == b.get("data"))


def find_equal_revisions(revisions: list[Obj], needle: Obj) -> list[Obj]:
    return [r for r in revisions if equal_revision(r, needle)]


def history_to_delete(revisions: list[Obj], live: set[str], limit: int) -> list[Obj]:
    """truncateHistory/cleanupHistory: the oldest non-live revisions past the limit."""
    history = [r for r in sort_revisions(revisions) if r["metadata"]["name"] not in live]
    excess = len(history) - max(0, limit)
    return history[:excess] if excess > 0 else []


class RevisionWriter:
    """The writes of history.realHistory, through the in-process client."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def create(self, owner: Obj, revision: Obj, collision_count: int) -> tuple[Obj, int]:
        """CreateControllerRevision: name `<owner>-<hash>`; on a name taken by different
        data, bump the collision count and probe again. Returns (revision, count)."""
        ns = owner["metadata"]["namespace"]
        while True:
            h = hash_revision(revision["data"], collision_count)
            body = copy_obj(revision)
            body["metadata"]["name"] = revision_name(owner["metadata"]["name"], h)
            body["metadata"].setdefault("labels", {})[REVISION_HASH_LABEL] = h
            try:
                created = await self.client.create(CONTROLLER_REVISION, body, ns)
                return created, collision_count
            except errors.AlreadyExists:
                existing = self.client.get_or_none(CONTROLLER_REVISION, ns,
                                                   body["metadata"]["name"])
                if existing is not None and equal_revision(existing, body):
                    return existing, collision_count
                collision_count += 1
                if collision_count > 1000:
                    raise

    async def renumber(self, revision: Obj, number: int) -> Obj:
        """UpdateControllerRevision: only the revision number moves (data is immutable)."""
        if int(revision.get("revision") or 0) == number:
            return revision
        body = copy_obj(revision)
        body["revision"] = number
        return await self.client.update(CONTROLLER_REVISION, body)

    async def delete(self, revision: Obj) -> None:
        meta = revision["metadata"]
        await self.client.delete_if_exists(CONTROLLER_REVISION, meta["namespace"], meta["name"],
                                           uid=meta.get("uid"))
