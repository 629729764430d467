"""Build a ZoneIndex by patching a copy of the previous one with only the Services
whose objects changed: O(changes) instead of O(zone).

A full build merges every Service's fragment (netd.dns.fragment) and costs ~15 ms at
1,000 Services on the test machine, which at 100 record changes per second leaves no
time to answer queries. Here the previous index's dicts are copied (C speed), the
changed Services' old fragments are taken out and their new ones put in, and the
names touched are recorded so `ZoneIndex.changed_names` can tell the server which
cached answers to drop.

Exactness: the result must equal a full build (tests compare the two under random
changes). Where a full build's result depends on Service *order* — a reverse name
that several Services' fragments contribute to (first cluster IP wins, endpoint
names concatenate in list order) — or on which of two objects wins a name, this
module declines (returns False) and the caller does a full build.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

from netd.dns.fragment import Fragment, build_fragment
from netd.dns.index import (
    DNS_SERVICE, SvcKey, frag_revs, namespace_set, ptr_value, service_key, slice_key,
)

if TYPE_CHECKING:
    from netd.dns.index import ZoneIndex

Obj = dict[str, Any]

# Beyond this share of changed objects a full build is as cheap and simpler.
MAX_CHANGED_SHARE = 8
_DNS_KEY = (DNS_SERVICE[0], DNS_SERVICE[1])


class _Decline(Exception):
    """The change needs a full build (order-dependent or colliding names)."""


def merge(idx: ZoneIndex, services: list[Obj], slices: list[Obj], pods: list[Obj],
          namespaces: Iterable[Obj] | None, prev: ZoneIndex) -> bool:
    """Fill `idx` from `prev` plus the changes; False (idx untouched in any way that
    matters: the caller rebuilds it from scratch) when only a full build is exact."""
    if not prev._mergeable:
        return False
    ns = namespace_set(services, pods, namespaces)
    if ns != prev.namespaces:
        return False
    if idx.pod_mode == "verified" and frozenset(map(id, pods)) != prev._pod_ids:
        return False
    # id() -> object, built at C speed; ids are unique while `prev` keeps its objects.
    svc_by_id = dict(zip(map(id, services), services))
    sl_by_id = dict(zip(map(id, slices), slices))
    old_svc, old_sl = prev._svc_key, prev._slice_key
    added = svc_by_id.keys() - old_svc.keys()
    removed = old_svc.keys() - svc_by_id.keys()
    sl_added = sl_by_id.keys() - old_sl.keys()
    sl_removed = old_sl.keys() - sl_by_id.keys()
    n_changed = len(added) + len(removed) + len(sl_added) + len(sl_removed)
    if n_changed > max(8, len(services) // MAX_CHANGED_SHARE):
        return False
    try:
        _merge(idx, services, slices, prev, [svc_by_id[i] for i in added], removed,
               [sl_by_id[i] for i in sl_added], sl_removed)
    except _Decline:
        return False
    idx.namespaces = ns
    return True


def _merge(idx: ZoneIndex, services: list[Obj], slices: list[Obj], prev: ZoneIndex,
           added: list[Obj], removed: set[int], sl_added: list[Obj], sl_removed: set[int]
           ) -> None:
    svc_key = dict(prev._svc_key)
    changed: set[SvcKey | None] = set()
    for i in removed:
        changed.add(svc_key.pop(i))
    current: dict[SvcKey, Obj] = {}
    for svc in added:
        key = svc_key[id(svc)] = service_key(svc)
        if key is not None:
            if key in current:
                raise _Decline   # two objects, one name: order decides
            current[key] = svc
            changed.add(key)
    slice_keys = dict(prev._slice_key)
    for i in sl_removed:
        changed.add(slice_keys.pop(i))
    for sl in sl_added:
        key = slice_keys[id(sl)] = slice_key(sl)
        changed.add(key)
    keys: set[SvcKey] = {k for k in changed if k is not None}
    if _DNS_KEY in keys:
        raise _Decline   # NS answers and ns.dns.<zone> follow that Service
    old_frags = prev._fragments
    for key in keys:
        old = old_frags.get(key)
        if old is not None and id(old.objs[0]) not in removed:
            if key in current:
                raise _Decline   # a second object for a name whose owner stays
            current[key] = old.objs[0]
    by_svc: dict[SvcKey, list[Obj]] = {}
    if keys:
        for sl in slices:
            skey = slice_keys[id(sl)]
            if skey is not None and skey in keys:
                by_svc.setdefault(skey, []).append(sl)
    _Patch(idx, prev).apply(keys, current, by_svc)
    idx._svc_key = svc_key
    idx._slice_key = slice_keys
    idx._objs = (tuple(services), tuple(slices), prev._objs[2] if prev._objs else ())


class _Patch:
    """The copy of `prev` being patched, and the names the patch touches."""

    def __init__(self, idx: ZoneIndex, prev: ZoneIndex) -> None:
        self.idx = idx
        self.prev = prev
        self.frags = dict(prev._fragments)
        self.addrs = dict(prev.addrs)
        self.srvs = dict(prev.srvs)
        self.ptrs = dict(prev.ptrs)
        self.cnames = dict(prev.cnames)
        self.ents = set(prev.ents)
        self.ptr_refs = dict(prev._ptr_refs)
        self.ent_refs = dict(prev._ent_refs)
        self.endpoints = prev.counts.get("endpoints", 0)
        self.names: set[str] = set()

    def apply(self, changed: set[SvcKey], current: dict[SvcKey, Obj],
              by_svc: dict[SvcKey, list[Obj]]) -> None:
        idx, prev = self.idx, self.prev
        for key in changed:
            old = prev._fragments.get(key)
            svc = current.get(key)
            new: Fragment | None = None
            if svc is not None:
                svc_slices = by_svc.get(key, [])
                if old is not None and old.same_objects((svc, *svc_slices)):
                    continue
                new = build_fragment(svc, svc_slices, idx.domain, prev.reverse_apexes)
            if old is not None:
                self._remove(old)
                del self.frags[key]
            if new is not None:
                self._add(new)
                self.frags[key] = new
        idx._fragments = self.frags
        idx.addrs, idx.srvs, idx.ptrs, idx.cnames = self.addrs, self.srvs, self.ptrs, \
            self.cnames
        idx.txts = prev.txts        # never mutated after a build: shared
        idx.ents = self.ents
        idx.reverse_apexes = prev.reverse_apexes
        idx.dns_ips = prev.dns_ips
        idx._ptr_refs, idx._ent_refs = self.ptr_refs, self.ent_refs
        idx._skeleton = prev._skeleton
        idx._pod_ids = prev._pod_ids
        idx._mergeable = True
        idx._delta = (prev._token, frozenset(self.names))
        idx.counts = {"services": len(self.frags), "endpoints": self.endpoints,
                      "pods": prev.counts.get("pods", 0),
                      "names": len(self.addrs) + len(self.ptrs) + len(self.cnames)
                      + len(idx.txts), "ents": len(self.ents)}

    def _remove(self, frag: Fragment) -> None:
        names = self.names
        for name in frag.addrs:
            del self.addrs[name]
            names.add(name)
        for name in frag.srvs:
            del self.srvs[name]
            names.add(name)
        if frag.cname is not None:
            del self.cnames[frag.cname[0]]
            names.add(frag.cname[0])
        for rev in frag_revs(frag):
            if self.ptr_refs[rev] > 1:
                raise _Decline   # shared reverse name: Service order decides
            del self.ptr_refs[rev]
            self.ptrs.pop(rev, None)
            names.add(rev)
        for ent in frag.ents:
            left = self.ent_refs[ent] - 1
            if left:
                self.ent_refs[ent] = left
                continue
            del self.ent_refs[ent]
            if ent not in self.idx._skeleton and ent not in self.prev._skeleton:
                self.ents.discard(ent)
                names.add(ent)
        self.endpoints -= frag.endpoints

    def _add(self, frag: Fragment) -> None:
        names = self.names
        if not (self.addrs.keys().isdisjoint(frag.addrs)
                and self.srvs.keys().isdisjoint(frag.srvs)
                and (frag.cname is None or frag.cname[0] not in self.cnames)):
            raise _Decline   # a name two fragments claim: order decides
        self.addrs.update(frag.addrs)
        self.srvs.update(frag.srvs)
        names.update(frag.addrs)
        names.update(frag.srvs)
        if frag.cname is not None:
            self.cnames[frag.cname[0]] = frag.cname[1]
            names.add(frag.cname[0])
        for rev in frag_revs(frag):
            if rev in self.ptr_refs:
                raise _Decline
            self.ptr_refs[rev] = 1
            self.ptrs[rev] = ptr_value(frag, rev)
            names.add(rev)
        for ent in frag.ents:
            n = self.ent_refs.get(ent, 0)
            self.ent_refs[ent] = n + 1
            if not n and ent not in self.ents:
                self.ents.add(ent)
                names.add(ent)
        self.endpoints += frag.endpoints
