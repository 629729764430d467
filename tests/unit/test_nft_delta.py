"""Incremental partial syncs (nftdelta.update) against the reference: the patched
RuleSet must equal desired() for the new snapshot, and the Change must list every
name whose value differs (with the right before/after), so the transaction turns the
old kernel state into the new one."""
from __future__ import annotations

import random
from dataclasses import replace

import pytest

from netd.proxy.model import Endpoint, LogEntry, ServicePort, Snapshot, SvcKey
from netd.proxy.nftables import (Change, NodeView, RenderConfig, RuleSet, desired,
                                 partial_text, pick_chain, render_diff)
from netd.proxy.nftdelta import update

CFG = RenderConfig(pod_cidr="10.244.0.0/16", service_cidr="10.96.0.0/12", dns_ip="10.96.0.10")
NODE = NodeView("node-1", ("172.18.0.2",))


def ep(i: int, node: str = "node-1", **kw: bool) -> Endpoint:
    return Endpoint(f"10.244.{i // 200}.{i % 200 + 2}", 8080, kw.get("ready", True),
                    kw.get("serving", True), kw.get("terminating", False), node)


def port(name: str, ip: int, eps: tuple[Endpoint, ...], **kw: object) -> ServicePort:
    base: dict[str, object] = dict(namespace="default", name=name, port_name="",
                                   protocol="TCP", cluster_ips=(f"10.96.1.{ip}",), port=80,
                                   node_port=0, external_ips=(), affinity_timeout=0,
                                   external_local=False, internal_local=False,
                                   endpoints=eps)
    base.update(kw)
    return ServicePort(**base)  # type: ignore[arg-type]


def state(rs: RuleSet) -> tuple[object, ...]:
    elements = {m: e for m, e in rs.elements.items() if e or m in
                ("service-ips", "cluster-ips", "nodeport-ips", "hairpin-ips")}
    return (rs.chains, elements, rs.affinity, rs.slots,
            {b: sp for b, sp in rs.ports.items()})


def check_change(change: Change, old: RuleSet, new: RuleSet) -> None:
    """Every difference between the states is in the Change, with the right values."""
    for c in set(old.chains) | set(new.chains):
        if old.chains.get(c) != new.chains.get(c):
            b, a = change.chains[c]
            assert (b, a) == (old.chains.get(c), new.chains.get(c)), c
    for m in set(old.elements) | set(new.elements):
        before, after = old.elements.get(m, {}), new.elements.get(m, {})
        for k in set(before) | set(after):
            if before.get(k) != after.get(k):
                assert change.elements[m][k] == (before.get(k), after.get(k)), (m, k)
    for s in set(old.affinity) | set(new.affinity):
        if old.affinity.get(s) != new.affinity.get(s):
            assert change.sets[s] == (old.affinity.get(s), new.affinity.get(s))


def variants(rng: random.Random, sp: ServicePort) -> ServicePort:
    kind = rng.randrange(7)
    if kind == 0:
        n = rng.randrange(0, 6)
        return replace(sp, endpoints=tuple(ep(rng.randrange(400)) for _ in range(n)))
    if kind == 1:
        last = int(sp.cluster_ips[0].rsplit(".", 1)[1])
        return replace(sp, node_port=0 if sp.node_port else 30000 + last)
    if kind == 2:
        return replace(sp, affinity_timeout=0 if sp.affinity_timeout else 10800)
    if kind == 3:
        return replace(sp, internal_local=not sp.internal_local)
    if kind == 4:
        return replace(sp, endpoints=tuple(replace(e, node="node-2") for e in sp.endpoints))
    if kind == 5:
        # (one externalIP per service: two claiming one ip:port is a conflict whose
        # winner may differ from desired()'s)
        ext = "192.0.2." + sp.cluster_ips[0].rsplit(".", 1)[1]
        return replace(sp, external_ips=() if sp.external_ips else (ext,))
    return replace(sp, endpoints=tuple(replace(e, ready=not e.ready, serving=True,
                                               terminating=True) for e in sp.endpoints))


def keyed_snapshot(ports: list[ServicePort], gen: int, log: tuple[LogEntry, ...]
                   ) -> Snapshot:
    """A snapshot as the tracker makes them: per Service, with a change log."""
    services: dict[SvcKey, list[ServicePort]] = {}
    for sp in ports:
        services.setdefault((sp.namespace, sp.name), []).append(sp)
    frozen = {k: tuple(sorted(v, key=lambda p: (p.port_name, p.protocol)))
              for k, v in services.items()}
    return Snapshot.of_services(frozen, sorted(frozen), gen, log)


# scan: plain snapshots, every port compared; keyed: the tracker's snapshots and the
# previous one, only changed Services looked at; lagging: every other snapshot applied
# (the log spans two steps); lost: the log does not reach back (falls back to a scan).
MODES = ["scan", "keyed", "lagging", "lost"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("seed", range(12), ids=lambda s: f"seed{s}")
def test_update_matches_desired(seed: int, mode: str) -> None:
    rng = random.Random(seed)
    ports = {f"s{i}": port(f"s{i}", i, tuple(ep(rng.randrange(400))
                                              for _ in range(rng.randrange(0, 5))))
             for i in range(40)}
    # two ports of one service share a ClusterIP (refcounted cluster-ips element)
    ports["multi"] = port("s3", 3, (ep(1),), port_name="https", port=443)
    gen = 1
    keyed = mode != "scan"
    log: tuple[LogEntry, ...] = ()
    first = keyed_snapshot(list(ports.values()), gen, log) if keyed else Snapshot(
        tuple(ports.values()), gen)
    rs, applied = desired(first, NODE, CFG), first
    for step in range(30):
        touched: set[SvcKey] = set()
        for _ in range(rng.randrange(1, 4)):
            op = rng.randrange(4)
            name = rng.choice(sorted(ports))
            touched.add(("default", ports[name].name))
            if op == 0 and len(ports) > 5:
                del ports[name]
            elif op == 1:
                gen += 1
                ports[f"n{gen}"] = port(f"n{gen}", 100 + gen % 100,
                                        tuple(ep(rng.randrange(400)) for _ in range(3)))
                touched.add(("default", f"n{gen}"))
            else:
                ports[name] = variants(rng, ports[name])
        gen, prev_gen = gen + 1, (log[-1][1] if log else 1)
        log = log + ((prev_gen, gen, frozenset(touched)),)
        if mode == "lost":
            log = log[-1:]
        snap = keyed_snapshot(list(ports.values()), gen, log) if keyed else Snapshot(
            tuple(ports.values()), gen)
        if mode in ("lagging", "lost") and step % 2 == 0:
            continue
        before = desired(Snapshot(tuple(rs.ports.values()), 0), NODE, CFG, rs)
        want = desired(snap, NODE, CFG, rs)
        if mode == "lost":
            assert snap.changed_since(applied.generation) is None
        result = update(rs, snap, NODE, CFG, applied if keyed else None)
        applied = snap
        assert state(rs) == state(want)
        check_change(result.change, before, rs)
        # the text a partial sync sends is the reference diff's, up to line order
        assert sorted(partial_text(result.change).splitlines()) == sorted(
            render_diff(want, before).splitlines()) or _same_items(
            partial_text(result.change), render_diff(want, before))


def _same_items(a: str, b: str) -> bool:
    def items(text: str) -> set[tuple[str, str]]:
        out = set()
        for line in text.splitlines():
            if " element " in line:
                head, _, rest = line.partition(" { ")
                out |= {(head, i) for i in rest.rstrip(" }").split(", ")}
            else:
                out.add((line, ""))
        return out
    return items(a) == items(b)


def test_nothing_changed_is_empty_and_cheap() -> None:
    sp = port("a", 1, (ep(1), ep(2)))
    snap = Snapshot((sp,), 1)
    rs = desired(snap, NODE, CFG)
    result = update(rs, Snapshot((sp,), 2), NODE, CFG)
    assert result.empty and partial_text(result.change) == ""


def test_rebuilt_equal_ports_render_nothing() -> None:
    sp = port("a", 1, (ep(1), ep(2)))
    rs = desired(Snapshot((sp,), 1), NODE, CFG)
    copy = replace(sp)
    result = update(rs, Snapshot((copy,), 2), NODE, CFG)
    assert partial_text(result.change) == "" and rs.ports["default/a/tcp/"] is copy


def test_endpoint_change_is_elements_only() -> None:
    eps = (ep(1), ep(2), ep(3))
    a, b = port("a", 1, eps), port("b", 2, eps)
    rs = desired(Snapshot((a, b), 1), NODE, CFG)
    new_a = replace(a, endpoints=(ep(1), ep(2), ep(9)))
    text = partial_text(update(rs, Snapshot((new_a, b), 2), NODE, CFG).change)
    # ep(3) stays a hairpin address: b still uses it
    assert text == ("add element ip netd hairpin-ips { 10.244.0.11 . 10.244.0.11 }\n"
                    "delete element ip netd pick-tcp-3 { 10.96.1.1 . 80 . 2 }\n"
                    "add element ip netd pick-tcp-3 { 10.96.1.1 . 80 . 2 : "
                    "10.244.0.11 . 8080 }\n")


def test_last_port_of_a_count_removes_its_chain_and_map() -> None:
    a = port("a", 1, (ep(1), ep(2)))
    b = port("b", 2, (ep(3),))
    rs = desired(Snapshot((a, b), 1), NODE, CFG)
    chain = pick_chain("tcp", 2)
    lines = partial_text(update(rs, Snapshot((b,), 2), NODE, CFG).change).splitlines()
    assert f"flush chain ip netd {chain}" in lines
    assert lines[-2:] == [f"delete chain ip netd {chain}", f"delete map ip netd {chain}"]
    assert chain not in rs.chains and chain not in rs.elements
    # and back: declared before use
    lines = partial_text(update(rs, Snapshot((a, b), 3), NODE, CFG).change).splitlines()
    assert lines[0] == f"add chain ip netd {chain}"
    assert lines[1].startswith(f"add map ip netd {chain} {{ typeof ip daddr . tcp dport")
