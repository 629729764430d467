"""Record churn: an index built from the previous one by merging only the changed
Services (netd.dns.delta) equals a full build, reports the names whose answers changed
(ZoneIndex.changed_names), and the server's wire cache drops exactly those answers —
every cached answer stays identical to a fresh resolve after each swap."""
from __future__ import annotations

from typing import Any, Callable

import pytest
from dnslib import EDNS0, DNSRecord

from netd.dns.index import DnsConfig, ZoneIndex
from netd.dns.metrics import Metrics
from netd.dns.server import DnsServer, UdpProtocol
from tests.unit.test_dns_resolver import NAMESPACES, PODS, SERVICES, SLICES, eps, ep, svc

Obj = dict[str, Any]
Lists = tuple[list[Obj], list[Obj], list[Obj], list[Obj]]
CFG = DnsConfig()


def _snapshot(idx: ZoneIndex) -> tuple[Any, ...]:
    return (idx.addrs, idx.srvs, idx.ptrs, idx.cnames, idx.txts, idx.ents, idx.namespaces,
            idx.dns_ips, idx.counts)


def _replace(lst: list[Obj], name: str, new: Obj | None) -> None:
    i = next(i for i, o in enumerate(lst) if o["metadata"]["name"] == name)
    if new is None:
        lst.pop(i)
    else:
        lst[i] = new


def flip_web_ip(s: Lists) -> None:
    _replace(s[0], "web", svc("web", ["10.96.0.21"]))


def add_service(s: Lists) -> None:
    s[0].append(svc("fresh", ["10.96.0.40"]))


def delete_service(s: Lists) -> None:
    _replace(s[0], "multi", None)


def slice_endpoint_change(s: Lists) -> None:
    _replace(s[1], "nginx-abcde", eps("nginx", [ep("10.244.1.10", "web-0"),
                                                ep("10.244.1.99", "web-9")],
                                      [{"name": "web", "port": 80, "protocol": "TCP"}]))


def ghost_gets_service(s: Lists) -> None:
    s[0].append(svc("ghost", ["None"]))     # its slice existed before the Service


def retarget_external_name(s: Lists) -> None:
    _replace(s[0], "ext-in", svc("ext-in", None, [], type="ExternalName",
                                 externalName="dual.default.svc.cluster.local"))


def shared_pod_ip(s: Lists) -> None:
    # The same pod address in two Services: its PTR lists both (sorted), derivable.
    s[1].append(eps("pub", [ep("10.244.1.5")], name="pub-2"))


def move_dns_service(s: Lists) -> None:
    _replace(s[0], "kube-dns", svc("kube-dns", ["10.96.0.11"], ns="kube-system"))


def new_namespace(s: Lists) -> None:
    s[3].append({"metadata": {"name": "team"}})


def two_changes(s: Lists) -> None:
    flip_web_ip(s)
    delete_service(s)
    slice_endpoint_change(s)


CHANGES: list[tuple[Callable[[Lists], None], bool]] = [
    (flip_web_ip, True), (add_service, True), (delete_service, True),
    (slice_endpoint_change, True), (ghost_gets_service, True),
    (retarget_external_name, True), (two_changes, True),
    (shared_pod_ip, True), (move_dns_service, False), (new_namespace, False),
]
IDS = [fn.__name__ for fn, _ in CHANGES]


def _lists() -> Lists:
    return list(SERVICES), list(SLICES), list(PODS), list(NAMESPACES)


def _build(s: Lists, cfg: DnsConfig = CFG, previous: ZoneIndex | None = None,
           generation: int = 1) -> ZoneIndex:
    return ZoneIndex.build(s[0], s[1], s[2], cfg, namespaces=s[3], generation=generation,
                           previous=previous)


@pytest.mark.parametrize("mode", ["disabled", "verified", "insecure"])
@pytest.mark.parametrize("change,merged", CHANGES, ids=IDS)
def test_merge_equals_full_build_and_reports_changed_names(
        change: Callable[[Lists], None], merged: bool, mode: str) -> None:
    cfg = DnsConfig(pod_mode=mode)
    s = _lists()
    prev = _build(s, cfg, generation=1)
    change(s)
    idx = _build(s, cfg, prev, generation=2)
    full = _build(s, cfg, generation=2)
    assert _snapshot(idx) == _snapshot(full)
    assert (idx._delta is not None) == merged
    truth = full.changed_names(prev)       # a full build: the exhaustive comparison
    got = idx.changed_names(prev)
    if truth is None:
        assert got is None
    else:
        assert got is not None and truth <= got
        assert truth, "every change in the table changes some name"


def test_changed_names_none_for_new_config_and_empty_for_same_index() -> None:
    s = _lists()
    a = _build(s)
    assert a.changed_names(a) == set()
    assert _build(s, DnsConfig(ttl=9)).changed_names(a) is None
    # Same objects, new generation: nothing but the serial changes.
    assert _build(s, previous=a, generation=2).changed_names(a) == set()


def test_mutated_in_place_is_not_seen_but_a_new_object_is() -> None:
    # The informer contract the merge relies on (as fragment reuse already did).
    s = _lists()
    prev = _build(s)
    web = next(o for o in s[0] if o["metadata"]["name"] == "web")
    _replace(s[0], "web", dict(web, spec=dict(web["spec"], clusterIP="10.96.0.22",
                                              clusterIPs=["10.96.0.22"])))
    idx = _build(s, previous=prev, generation=2)
    assert idx.addrs["web.default.svc.cluster.local"] == ["10.96.0.22"]
    assert idx.changed_names(prev) >= {"web.default.svc.cluster.local",
                                       "22.0.96.10.in-addr.arpa", "20.0.96.10.in-addr.arpa"}


# ---- the server's cache under churn ---------------------------------------------------------

QUERIES = [(n + ".default.svc.cluster.local", t) for n in
           ("web", "multi", "fresh", "ext-in", "ext-chain", "ghost", "dual", "nginx",
            "web-9.nginx", "web-1.nginx", "_http._tcp.web", "_http._tcp.multi", "nothere")
           for t in ("A", "AAAA", "SRV")] + [
    ("cluster.local", "SOA"), ("cluster.local", "NS"), ("svc.cluster.local", "TXT"),
    ("21.0.96.10.in-addr.arpa", "PTR"), ("20.0.96.10.in-addr.arpa", "PTR"),
    ("99.1.244.10.in-addr.arpa", "PTR"), ("1.2.244.10.in-addr.arpa", "PTR"),
    ("web.default.svc.cluster.local", "MX"), ("team.svc.cluster.local", "A"),
    ("5.1.244.10.in-addr.arpa", "PTR"),
]


class _Sink:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def sendto(self, data: bytes, addr: Any) -> None:
        self.sent.append(bytes(data))

    def is_closing(self) -> bool:
        return False


def _proto(server: DnsServer) -> tuple[UdpProtocol, _Sink]:
    proto = UdpProtocol(server, server.metrics.listener("t", "udp", "1"))
    sink = _Sink()
    proto.transport = sink  # type: ignore[assignment]
    return proto, sink


def _ask(proto: UdpProtocol, sink: _Sink, name: str, qtype: str, edns: bool) -> bytes:
    q = DNSRecord.question(name, qtype)
    if edns:
        q.add_ar(EDNS0(udp_len=1232))
    q.header.id = 0x1234
    proto.datagram_received(bytes(q.pack()), ("127.0.0.1", 5300))
    return sink.sent.pop()


@pytest.mark.parametrize("change,merged", CHANGES, ids=IDS)
def test_cached_answers_match_a_fresh_server_after_each_swap(
        change: Callable[[Lists], None], merged: bool) -> None:
    s = _lists()
    server = DnsServer(metrics=Metrics())
    prev = _build(s, generation=1)
    server.set_index(prev)
    proto, sink = _proto(server)
    for name, qtype in QUERIES:           # warm the cache, plain and EDNS
        for edns in (False, True):
            _ask(proto, sink, name, qtype, edns)
    warm = len(server.cache)
    assert warm >= len(QUERIES)
    change(s)
    idx = _build(s, previous=prev, generation=2)
    server.set_index(idx)
    if merged:
        assert 0 < len(server.cache) < warm, "only the changed names' answers go"
    fresh = DnsServer(metrics=Metrics())
    fresh.set_index(idx)
    fproto, fsink = _proto(fresh)
    for name, qtype in QUERIES:
        for edns in (False, True):
            assert _ask(proto, sink, name, qtype, edns) == \
                _ask(fproto, fsink, name, qtype, edns), (name, qtype, edns)


def test_negative_answers_keep_their_entry_but_carry_the_new_serial() -> None:
    s = _lists()
    server = DnsServer(metrics=Metrics())
    first = _build(s, generation=1)
    server.set_index(first)
    proto, sink = _proto(server)
    name = "nothere.default.svc.cluster.local"
    before = DNSRecord.parse(_ask(proto, sink, name, "A", False))
    assert before.header.rcode == 3 and before.auth[0].rdata.times[0] == 1
    hits = server.metrics.cache_hits["denial"]
    server.set_index(_build(s, previous=first, generation=77))
    after = DNSRecord.parse(_ask(proto, sink, name, "A", False))
    assert server.metrics.cache_hits["denial"] == hits + 1   # served from the cache
    assert after.auth[0].rdata.times[0] == 77
