"""Encoded answers, ready to send: the server's fast path is one dict lookup plus a
copy with the client's ID (and RD/CD bits and question case) patched in.

Key: the question as it is on the wire (name, type, class) lowercased, in one of three
tables by EDNS state (none / EDNS / EDNS+DO), because the OPT record and DO bit change
the bytes. Lowercasing the raw question is safe for the name (label length bytes are
< 64, below 'A') but not for the type: types whose bytes are ASCII letters (e.g. HTTPS =
0x0041) would alias another type when lowered, so `cacheable_type` keeps them out.

Validity: entries are tagged with the owner names their answer was derived from (the
question, plus every in-zone CNAME target it followed). A new index either clears
everything, or drops only the entries tagged with a name the index reports changed
(ZoneIndex.changed_names); entries without tags always go. Negative answers are
tagged by their name like any other, so an NXDOMAIN goes as soon as the name appears.

The one part of an answer that changes with *every* index is the SOA serial carried
by negative answers (and the apex SOA): instead of dropping those entries, an entry
remembers where its serial sits (`soa`) and the server writes the current serial
(`WireCache.serial`) into each copy it sends.
"""
from __future__ import annotations

from dataclasses import dataclass, field


def cacheable_type(qtype: int) -> bool:
    hi, lo = qtype >> 8, qtype & 0xFF
    return not any(0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A for b in (hi, lo))


def soa_offset(full: bytes, serial: int, tail: bytes) -> int:
    """Where the SOA serial sits in `full` (0: no SOA). `tail` is the rest of the SOA
    RDATA after the serial (refresh, retry, expire, minimum): 20 bytes that occur
    nowhere else in an answer in practice; an ambiguous match counts as none found."""
    sig = serial.to_bytes(4, "big") + tail
    at = full.find(sig)
    if at < 12 or full.find(sig, at + 1) >= 0:
        return 0
    return at


class Entry:
    __slots__ = ("full", "rcode", "slot", "denial", "trunc", "tags", "soa")

    def __init__(self, full: bytes, rcode: int, slot: int, denial: bool,
                 tags: tuple[str, ...] | None, soa: int = 0) -> None:
        self.full = full            # complete response, ID 0
        self.rcode = rcode
        self.slot = slot            # metrics type slot
        self.denial = denial        # NXDOMAIN or NODATA (CoreDNS' cache "denial" hits)
        self.trunc: dict[int, bytes] = {}   # UDP limit -> truncated response
        self.tags = tags
        self.soa = soa              # offset of the SOA serial in `full`, 0 if none


@dataclass
class WireCache:
    max_entries: int = 100_000
    plain: dict[bytes, Entry] = field(default_factory=dict)
    edns: dict[bytes, Entry] = field(default_factory=dict)
    edns_do: dict[bytes, Entry] = field(default_factory=dict)
    generation: int = 0
    serial: bytes = b"\0\0\0\0"   # the current index's SOA serial, big-endian
    _by_tag: dict[str, set[tuple[int, bytes]]] = field(default_factory=dict)
    _untagged: set[tuple[int, bytes]] = field(default_factory=set)

    def tables(self) -> tuple[dict[bytes, Entry], dict[bytes, Entry], dict[bytes, Entry]]:
        return self.plain, self.edns, self.edns_do

    def table(self, edns: bool, do: bool) -> dict[bytes, Entry]:
        return (self.edns_do if do else self.edns) if edns else self.plain

    def __len__(self) -> int:
        return len(self.plain) + len(self.edns) + len(self.edns_do)

    def put(self, edns: bool, do: bool, key: bytes, entry: Entry) -> None:
        if len(self) >= self.max_entries:
            # Bounded memory against floods of distinct names: start over (the hot
            # set refills in a few milliseconds).
            self.clear()
        which = (2 if do else 1) if edns else 0
        self.tables()[which][key] = entry
        ref = (which, key)
        if entry.tags is None:
            self._untagged.add(ref)
        else:
            for tag in entry.tags:
                self._by_tag.setdefault(tag, set()).add(ref)

    def clear(self) -> None:
        # New dicts rather than .clear(): the server's protocol objects hold the
        # current tables through this object, never a table itself.
        self.plain, self.edns, self.edns_do = {}, {}, {}
        self._by_tag = {}
        self._untagged = set()
        self.generation += 1

    def invalidate(self, tags: set[str] | None) -> int:
        """Drop entries carrying any of `tags` and every untagged entry (all entries
        when tags is None). Returns how many were dropped."""
        if tags is None:
            n = len(self)
            self.clear()
            return n
        tables = self.tables()
        doomed = set(self._untagged)
        for tag in tags:
            refs = self._by_tag.pop(tag, None)
            if refs:
                doomed |= refs
        for which, key in doomed:
            entry = tables[which].pop(key, None)
            if entry is not None and entry.tags:
                for tag in entry.tags:
                    refs = self._by_tag.get(tag)
                    if refs is not None:
                        refs.discard((which, key))
                        if not refs:
                            del self._by_tag[tag]
        self._untagged = set()
        self.generation += 1
        return len(doomed)
