"""Layered (persistent) tables for the zone index: a change costs O(change), not O(zone).

A ZoneIndex is an immutable snapshot, and the next one differs from it by a handful of
names. Copying every table per change (~17k entries at 1,000 Services) cost 1–3 ms of
event-loop time per record change, and freeing the old copies as much again. A
`Layered` table instead shares a read-only `base` dict with its predecessors and owns
a small `over` dict of the names changed since that base was made (a tombstone for a
removed name). Deriving the next table is O(1): it shares `over` too, and copies it
on its first write (copy-on-write), so tables a change does not touch cost nothing.

When `over` outgrows its bound the builder folds it into a fresh base (`compacted`):
a `dict.copy()` of the base plus the overlay, ~60 µs for 5k names here (copying it a
slice per build through an items iterator was measured 12x slower in total, so that is
not done), at most one table per build. Freeing the old base is what can hurt: by then
it is the last holder of every value replaced since (freeing ~500 superseded Service
fragments at once took 2.4 ms), so the old base goes to a graveyard that drops those
values a bounded number per build (`reap`) once no live snapshot refers to it, and then
the rest of the dict at C speed.

Readers never see a table change: `base` is never written after it is made, and a
table's `over` is written only by the builder that derived it, before the index
holding it is published (snapshot semantics: a reader holding index N never sees
N+1's data). Lookups cost one extra dict probe, and happen only on wire-cache misses.
"""
from __future__ import annotations

import math
import sys
from collections import deque
from collections.abc import Mapping
from typing import Any, Generic, Iterator, TypeVar

V = TypeVar("V")
K = TypeVar("K")

# A removed name: present in `base`, gone in this layer.
GONE: Any = object()
_MISS: Any = object()
# The overlay bound: each write copies the overlay (avg bound/2 entries) and each
# fold copies the base (N entries) once per bound/c changes (c names per change per
# table), so the per-change cost bound/2 + N*c/bound is least at bound = sqrt(2*N*c);
# sqrt(8*N) assumes c = 4 (a Service's owner, port names, endpoint names). Below a few
# hundred entries the difference is noise (bench/dns_index_bench.py), and fewer,
# larger folds then cost less in total: at 1,000 Services every table uses this floor.
COMPACT_MIN = 256
# Superseded values a build may free from the graveyard (~2 µs each for a fragment).
REAP_BUDGET = 64

# Bases replaced by compaction, each with the keys whose values the overlay had
# replaced (the values nothing else may hold). Process-wide memory management, no part
# of any snapshot's contents.
GRAVEYARD: deque[tuple[dict[Any, Any], list[Any]]] = deque()
# References to a graveyard dict while reap() looks at it: the tuple's slot, reap's
# local name, getrefcount's argument. Anything more is a live snapshot's table.
_UNREFERENCED = 3


def reap(budget: int = REAP_BUDGET) -> int:
    """Free up to `budget` superseded values of graveyard bases no snapshot refers to
    any more (then the base itself); returns how many keys were dropped."""
    freed = 0
    i = 0
    while i < len(GRAVEYARD) and freed < budget:
        d, keys = GRAVEYARD[i]
        if sys.getrefcount(d) > _UNREFERENCED:
            i += 1
            del d, keys
            continue
        pop = d.pop
        while keys and freed < budget:
            pop(keys.pop(), None)
            freed += 1
        if not keys:
            del GRAVEYARD[i]    # the rest are values the new base shares: cheap
        del d, keys
    return freed


class Layered(Mapping[K, V], Generic[K, V]):
    """A read-only mapping for readers; `put`/`remove` only while being built."""
    __slots__ = ("base", "over", "_len", "_own")

    def __init__(self, base: dict[K, V] | None = None) -> None:
        self.base: dict[K, V] = {} if base is None else base
        self.over: dict[K, Any] = {}
        self._len = len(self.base)
        self._own = True    # `over` is this table's own (else: its parent's, read-only)

    # ---- reads ------------------------------------------------------------------------

    def get(self, key: K, default: Any = None) -> Any:
        v = self.over.get(key, _MISS)
        if v is _MISS:
            return self.base.get(key, default)
        return default if v is GONE else v

    def __getitem__(self, key: K) -> V:
        v = self.over.get(key, _MISS)
        if v is _MISS:
            return self.base[key]
        if v is GONE:
            raise KeyError(key)
        return v  # type: ignore[no-any-return]

    def __contains__(self, key: object) -> bool:
        v = self.over.get(key, _MISS)  # type: ignore[call-overload,arg-type]
        if v is _MISS:
            return key in self.base
        return v is not GONE

    def __iter__(self) -> Iterator[K]:
        over = self.over
        if not over:
            yield from self.base
            return
        for key in self.base:
            if key not in over:
                yield key
        for key, v in over.items():
            if v is not GONE:
                yield key

    def __len__(self) -> int:
        return self._len

    def flat(self) -> dict[K, V]:
        """The contents as one dict (the base itself when nothing is layered on it:
        callers must not mutate the result). C-speed copy plus O(overlay)."""
        if not self.over:
            return self.base
        out = dict(self.base)
        for key, v in self.over.items():
            if v is GONE:
                del out[key]
            else:
                out[key] = v
        return out

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Layered):
            return self.flat() == other.flat()
        if isinstance(other, Mapping):
            return self.flat() == dict(other.items())
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Layered({len(self)} entries, {len(self.over)} layered)"

    # ---- building ---------------------------------------------------------------------

    def derive(self) -> Layered[K, V]:
        """The next snapshot's table: same base, the overlay shared until written."""
        new: Layered[K, V] = Layered.__new__(Layered)
        new.base = self.base
        new.over = self.over
        new._len = self._len
        new._own = False
        return new

    def _writable(self) -> dict[K, Any]:
        if not self._own:
            self.over = dict(self.over)
            self._own = True
        return self.over

    def put(self, key: K, value: V) -> None:
        over = self._writable()
        v = over.get(key, _MISS)
        if v is _MISS:
            if key not in self.base:
                self._len += 1
        elif v is GONE:
            self._len += 1
        over[key] = value

    def remove(self, key: K) -> bool:
        """Drop `key`; False when it was not there."""
        v = self.over.get(key, _MISS)
        if v is GONE or (v is _MISS and key not in self.base):
            return False
        over = self._writable()
        if key in self.base:
            over[key] = GONE
        else:
            del over[key]
        self._len -= 1
        return True

    def pressure(self) -> float:
        """How far past its bound the overlay is (> 1: compact)."""
        return len(self.over) / max(COMPACT_MIN, math.isqrt(len(self.base) << 3))

    def compacted(self) -> Layered[K, V]:
        """The same contents on a fresh base with an empty overlay; the old base goes
        to the graveyard (see reap)."""
        if not self.over:
            return Layered(self.base)
        new = Layered(self.flat())
        GRAVEYARD.append((self.base, [k for k in self.over if k in self.base]))
        return new
