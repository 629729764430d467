"""Partial syncs without rebuilding the desired state: patch the applied RuleSet with
the service ports that changed and record what that changed. Pure.

At 10,000 service ports, merging every port's fragment into a new RuleSet and then
comparing it with the applied one took ~90 ms per sync however small the change
(kube-proxy's change trackers exist for the same reason). Here a sync finds the ports
that changed by identity (the tracker reuses unchanged ServicePort objects; equal but
rebuilt ones are recognised by value), among the ports of the Services the snapshot's
change log names when it links back to the applied snapshot (else among all), takes each changed port's old fragment out of
the RuleSet (contributions are counted: a key several ports share stays until the
last one goes), puts its new fragment in, and notes each touched name's value before
and after: that Change is the transaction (nftables.partial_text).

The result is what nftables.desired() would build for the same snapshot, except for
the order of dict entries and, for a map key two ports claim with different values
(two Services on one externalIP:port), which of them wins.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from netd.proxy.model import ServicePort, Snapshot
from netd.proxy.nftables import MAPS, Change, RuleSet, add_fragment
from netd.proxy.nftrules import (MAX_SLOTS, Fragment, NodeView, RenderConfig, fragment,
                                 needs_slot, port_base)


@dataclass
class Update:
    """A partial sync: what it changes in the kernel, and which ports changed."""
    change: Change
    old_ports: list[ServicePort] = field(default_factory=list)   # removed or replaced
    new_ports: list[ServicePort] = field(default_factory=list)   # added or replacing

    @property
    def empty(self) -> bool:
        return not (self.old_ports or self.new_ports)


class _Journal:
    """First-touch values, so the Change compares before with after."""

    def __init__(self, rs: RuleSet) -> None:
        self.rs = rs
        self.chains: dict[str, tuple[str, ...] | None] = {}
        self.elements: dict[str, dict[str, str | None]] = {}
        self.maps: dict[str, bool] = {}
        self.sets: dict[str, int | None] = {}
        self.contested: list[tuple[str, str]] = []

    def touch(self, frag: Fragment) -> None:
        rs = self.rs
        chains, elements, sets = frag
        for c in chains:
            if c not in self.chains:
                self.chains[c] = rs.chains.get(c)
        for name, elems in elements.items():
            before = rs.elements.get(name, {})
            seen = self.elements.get(name)
            if seen is None:
                seen = self.elements[name] = {}
                if name not in MAPS:
                    self.maps[name] = bool(before)
            for k in elems:
                if k not in seen:
                    seen[k] = before.get(k)
        for s in sets:
            if s not in self.sets:
                self.sets[s] = rs.affinity.get(s)

    def change(self) -> Change:
        rs = self.rs
        out = Change()
        out.chains = {c: (b, rs.chains.get(c)) for c, b in self.chains.items()}
        for name, keys in self.elements.items():
            after = rs.elements.get(name, {})
            out.elements[name] = {k: (b, after.get(k)) for k, b in keys.items()}
        out.maps = {m: (b, bool(rs.elements.get(m))) for m, b in self.maps.items()}
        out.sets = {s: (b, rs.affinity.get(s)) for s, b in self.sets.items()}
        return out


def _remove_fragment(rs: RuleSet, frag: Fragment, journal: _Journal) -> None:
    chains, elements, sets = frag
    for c in chains:
        n = rs.chain_refs.get(c, 1) - 1
        if n <= 0:
            rs.chains.pop(c, None)
            rs.chain_refs.pop(c, None)
        else:
            rs.chain_refs[c] = n
    for name, elems in elements.items():
        cur, refs = rs.elements.get(name, {}), rs.refs.get(name, {})
        for k, v in elems.items():
            n = refs.get(k, 1) - 1
            if n <= 0:
                cur.pop(k, None)
                refs.pop(k, None)
            else:
                refs[k] = n
                if v and cur.get(k) == v:
                    # Another port still claims the key; it may want another value.
                    journal.contested.append((name, k))
        if not cur and name not in MAPS:
            rs.elements.pop(name, None)
            rs.refs.pop(name, None)
    for s in sets:
        rs.affinity.pop(s, None)


def _settle(rs: RuleSet, contested: list[tuple[str, str]]) -> None:
    """A shared key lost the port whose value it had: the last remaining claimant in
    port order wins, as in desired(). Rare (conflicting Services), so a scan."""
    for name, key in contested:
        for frag in rs.fragments.values():
            value = frag[1].get(name, {}).get(key)
            if value is not None:
                rs.elements[name][key] = value


def _free_slot(rs: RuleSet) -> int:
    taken = set(rs.slots.values())
    return next(i for i in range(MAX_SLOTS) if i not in taken)


def _candidates(rs: RuleSet, snapshot: Snapshot, previous: Snapshot | None
                ) -> tuple[list[ServicePort], set[int]]:
    """The ports of `snapshot` that may be new to `rs` (in snapshot order) and the ids
    of the ports `rs` has that `snapshot` may have dropped. With the snapshot `rs` was
    made for, and a log linking the two, only the Services that changed are looked at;
    otherwise every port is."""
    keys = snapshot.changed_since(previous.generation) if previous is not None else None
    if keys is None or previous is None:
        ports = snapshot.ports
        current = {id(sp) for sp in ports}
        return ([sp for sp in ports if id(sp) not in rs.ids],
                {i for i in rs.ids if i not in current})
    order = sorted(keys)
    new = [sp for k in order for sp in snapshot.ports_of(k)]
    current = {id(sp) for sp in new}
    return ([sp for sp in new if id(sp) not in rs.ids],
            {id(sp) for k in order for sp in previous.ports_of(k)
             if id(sp) in rs.ids and id(sp) not in current})


def update(rs: RuleSet, snapshot: Snapshot, node: NodeView, cfg: RenderConfig,
           previous: Snapshot | None = None) -> Update:
    """Patch `rs` (complete, made by desired() or update() for this node and config)
    into the state for `snapshot`, in place. `previous` is the snapshot `rs` was made
    for, if known (it narrows the search for changes). On failure to apply, the caller
    must discard `rs` (the kernel did not get the change)."""
    assert rs.complete
    ids = rs.ids
    fresh, left = _candidates(rs, snapshot, previous)
    journal = _Journal(rs)
    result = Update(Change())
    # The DNS service is answered by the node-local DNS, never proxied.
    # Snapshot order: new ports take slots in order.
    incoming = {port_base(sp): sp for sp in fresh if cfg.dns_ip not in sp.cluster_ips}
    if not incoming and not left:
        return result
    outgoing = {ids[i]: rs.ports[ids[i]] for i in left}
    # Equal values under a new identity (a rebuilt snapshot): nothing to render.
    for b, sp in list(incoming.items()):
        old = outgoing.get(b)
        if old is not None and old == sp:
            del incoming[b], outgoing[b]
            del ids[id(old)]
            ids[id(sp)] = b
            rs.ports[b] = sp
    for b, old in outgoing.items():
        frag = rs.fragments.pop(b)
        journal.touch(frag)
        _remove_fragment(rs, frag, journal)
        del ids[id(old)], rs.ports[b]
        result.old_ports.append(old)
        if b not in incoming or not needs_slot(incoming[b]):
            rs.slots.pop(b, None)
    for b, sp in incoming.items():
        slot = -1
        if needs_slot(sp):
            slot = rs.slots.get(b, -1)
            if slot < 0:
                slot = rs.slots[b] = _free_slot(rs)
        frag = fragment(sp, node, cfg, slot)
        journal.touch(frag)
        rs.fragments[b] = frag
        rs.ports[b] = sp
        ids[id(sp)] = b
        add_fragment(rs, frag)
        result.new_ports.append(sp)
    _settle(rs, journal.contested)
    result.change = journal.change()
    return result
