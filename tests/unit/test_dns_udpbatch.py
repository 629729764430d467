"""The batched UDP listener (recvmmsg/sendmmsg): several datagrams per batch, mixed
cache hits, misses, garbage and truncation; replies reach the right client with the
ID, RD/CD bits and question spelling of *its* query; metrics count every query;
nothing stale after set_index. Batches are driven by hand (drain()) so their content
is deterministic."""
from __future__ import annotations

import asyncio
import socket
from typing import Any, AsyncIterator

import pytest
from dnslib import QTYPE, DNSRecord, EDNS0

from netd.dns import udpbatch
from netd.dns.index import DnsConfig, ZoneIndex
from netd.dns.metrics import Metrics
from netd.dns.server import DnsServer

pytestmark = pytest.mark.skipif(not udpbatch.available(), reason="no recvmmsg")
CFG = DnsConfig()


def svc(name: str, ip: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"clusterIP": ip, "clusterIPs": [ip],
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}


def index(web_ip: str = "10.96.0.20", gen: int = 1) -> ZoneIndex:
    big = {"metadata": {"name": "big", "namespace": "default"},
           "spec": {"clusterIP": "None", "clusterIPs": ["None"],
                    "ports": [{"name": "web", "port": 80, "protocol": "TCP"}]}}
    sl = {"metadata": {"name": "big-x", "namespace": "default",
                       "labels": {"kubernetes.io/service-name": "big"}},
          "addressType": "IPv4", "ports": [{"name": "web", "port": 80, "protocol": "TCP"}],
          "endpoints": [{"addresses": [f"10.244.1.{1 + i}"], "hostname": f"big-{i}",
                         "conditions": {"ready": True}} for i in range(100)]}
    return ZoneIndex.build([svc("web", web_ip), big], [sl], [], CFG, generation=gen)


def q(name: str, qtype: str = "A", ident: int = 1, *, rd: bool = True, cd: bool = False,
      edns: int | None = None) -> bytes:
    r = DNSRecord.question(name, qtype)
    r.header.id = ident
    r.header.rd = int(rd)
    r.header.cd = int(cd)
    if edns is not None:
        r.add_ar(EDNS0(udp_len=edns))
    return r.pack()


class Rig:
    def __init__(self, server: DnsServer, listener: udpbatch.BatchedUdp, port: int) -> None:
        self.server, self.listener, self.port = server, listener, port
        self.clients: list[socket.socket] = []

    def client(self) -> socket.socket:
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        c.bind(("127.0.0.1", 0))
        c.settimeout(2)
        self.clients.append(c)
        return c

    def batch(self, sends: list[tuple[socket.socket, bytes]]) -> int:
        for c, data in sends:
            c.sendto(data, ("127.0.0.1", self.port))
        return self.listener.drain()

    @staticmethod
    def replies(c: socket.socket, n: int) -> dict[int, DNSRecord]:
        out = {}
        for _ in range(n):
            r = DNSRecord.parse(c.recv(65535))
            out[r.header.id] = r
        return out


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    server = DnsServer(metrics=Metrics())
    server.set_index(index())
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    stats = server.metrics.listener("dns://t", "udp", "1")
    loop = asyncio.get_running_loop()
    listener = udpbatch.BatchedUdp(server, sock, stats, loop)
    loop.remove_reader(listener.fd)     # the test drives drain() itself
    r = Rig(server, listener, sock.getsockname()[1])
    yield r
    for c in r.clients:
        c.close()
    sock.close()


def counted(server: DnsServer) -> int:
    return sum(sum(s.requests) for s in server.metrics.stats)


async def test_mixed_batch_hits_misses_garbage_truncation(rig: Rig) -> None:
    a, b = rig.client(), rig.client()
    warm = [(a, q("web.default.svc.cluster.local", ident=1)),
            (a, q("nope.default.svc.cluster.local", ident=2))]
    assert rig.batch(warm) == 2
    rig.replies(a, 2)
    sends = [
        (b, q("big.default.svc.cluster.local", ident=10)),            # miss, truncated
        (a, q("WEB.Default.svc.cluster.local", ident=11, rd=False)),  # hit, case
        (b, b"\x00\x01\x02"),                                         # too short: dropped
        (a, q("nope.default.svc.cluster.local", ident=12, cd=True)),  # denial hit
        (b, q("web.default.svc.cluster.local", "MX", ident=13)),      # miss: NODATA
        (b, b"\x00\x0e\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05ab"),  # FORMERR
        (a, q("web.default.svc.cluster.local", ident=15, edns=1232)),  # EDNS miss
        (b, q("big.default.svc.cluster.local", ident=16)),            # truncated, memo
    ]
    before = counted(rig.server)
    assert rig.batch(sends) == len(sends)
    ra = rig.replies(a, 3)
    rb = rig.replies(b, 4)
    assert sorted(ra) == [11, 12, 15] and sorted(rb) == [10, 13, 14, 16]
    hit = ra[11]
    assert str(hit.q.qname) == "WEB.Default.svc.cluster.local."
    assert not hit.header.rd and hit.header.aa and [str(r.rdata) for r in hit.rr] == \
        ["10.96.0.20"]
    assert ra[12].header.rcode == 3 and ra[12].header.cd and ra[12].auth
    assert ra[15].header.rcode == 0 and ra[15].ar[-1].rtype == QTYPE.OPT
    assert rb[10].header.tc and rb[16].header.tc and len(rb[16].rr) == len(rb[10].rr) > 0
    assert rb[13].header.rcode == 0 and not rb[13].rr and rb[13].auth
    assert rb[14].header.rcode == 1
    assert counted(rig.server) - before == 7     # every answered query, not the drop


async def test_compaction_keeps_each_reply_with_its_client(rig: Rig) -> None:
    clients = [rig.client() for _ in range(4)]
    rig.batch([(clients[0], q("web.default.svc.cluster.local", ident=1))])
    rig.replies(clients[0], 1)
    # A miss first, then hits: the hits' send slots are compacted below the miss.
    sends = [(clients[0], q("x.default.svc.cluster.local", ident=100))]
    sends += [(c, q("web.default.svc.cluster.local", ident=200 + i))
              for i, c in enumerate(clients)]
    assert rig.batch(sends) == 5
    assert sorted(rig.replies(clients[0], 2)) == [100, 200]
    for i, c in enumerate(clients[1:], 1):
        assert list(rig.replies(c, 1)) == [200 + i]


async def test_metrics_count_every_query_of_a_batch(rig: Rig) -> None:
    c = rig.client()
    rig.batch([(c, q("web.default.svc.cluster.local", ident=1))])
    rig.replies(c, 1)
    hits0 = dict(rig.server.metrics.cache_hits)
    n = 20
    rig.batch([(c, q("web.default.svc.cluster.local", ident=i)) for i in range(n)])
    rig.replies(c, n)
    st = rig.server.metrics.stats[0]
    assert sum(st.requests) == n + 1 and st.requests[0] == n + 1    # slot 0: A
    assert st.responses[0] == n + 1
    assert sum(sum(b) for b in st.buckets) == n + 1
    assert rig.server.metrics.cache_hits["success"] - hits0["success"] == n
    text = rig.server.metrics.render()
    assert 'coredns_dns_requests_total{family="1",proto="udp",server="dns://t",' \
        f'type="A",view="",zone="."}} {n + 1}' in text


async def test_no_stale_answer_after_set_index(rig: Rig) -> None:
    c = rig.client()
    for gen, ip in enumerate(("10.96.0.20", "10.96.0.21", "10.96.0.22"), 1):
        if gen > 1:
            rig.server.set_index(index(ip, gen))
        rig.batch([(c, q("web.default.svc.cluster.local", ident=i)) for i in range(3)])
        for r in rig.replies(c, 3).values():
            assert [str(x.rdata) for x in r.rr] == [ip]


@pytest.mark.parametrize("raw,expect", [
    (bytes([2, 0]) + (7777).to_bytes(2, "big") + bytes([127, 0, 0, 1]) + bytes(20),
     ("127.0.0.1", 7777)),
    (bytes([10, 0]) + (53).to_bytes(2, "big") + bytes(4) + bytes(15) + b"\x01" + bytes(4),
     ("::1", 53, 0, 0)),
], ids=["ipv4", "ipv6"])
def test_decode_sockaddr(raw: bytes, expect: Any) -> None:
    assert udpbatch.decode_sockaddr(raw) == expect
