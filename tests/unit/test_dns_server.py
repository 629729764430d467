"""The DNS server over loopback on random ports: wire handling, EDNS0, truncation,
bad input, SERVFAIL before the first index, forwarding to a fake upstream, metrics."""
from __future__ import annotations

import asyncio
import random
import socket
import struct
import time
from typing import Any, AsyncIterator

import pytest
from dnslib import QTYPE, RR, A, DNSRecord, EDNS0

from netd.dns import wire
from netd.dns.forward import Forwarder, cache_ttl, parse_upstreams
from netd.dns.index import DnsConfig, ZoneIndex
from netd.dns.metrics import Metrics
from netd.dns.server import DnsServer, serve_tcp, serve_udp

Obj = dict[str, Any]
CFG = DnsConfig()


def svc(name: str, ip: str, ns: str = "default", ports: list[Obj] | None = None) -> Obj:
    return {"metadata": {"name": name, "namespace": ns},
            "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip],
                     "ports": ports or [{"name": "http", "port": 80, "protocol": "TCP"}]}}


def headless(name: str, n: int, ns: str = "default") -> tuple[Obj, Obj]:
    s = {"metadata": {"name": name, "namespace": ns},
         "spec": {"clusterIP": "None", "clusterIPs": ["None"],
                  "ports": [{"name": "web", "port": 80, "protocol": "TCP"}]}}
    sl = {"metadata": {"name": f"{name}-abc", "namespace": ns,
                       "labels": {"kubernetes.io/service-name": name}},
          "addressType": "IPv4",
          "ports": [{"name": "web", "port": 80, "protocol": "TCP"}],
          "endpoints": [{"addresses": [f"10.244.{1 + i // 250}.{1 + i % 250}"],
                         "hostname": f"{name}-{i}", "conditions": {"ready": True}}
                        for i in range(n)]}
    return s, sl


def build_index() -> ZoneIndex:
    big, big_slice = headless("big", 100)
    return ZoneIndex.build([svc("web", "10.96.0.20"), big], [big_slice], [], CFG)


def query(name: str, qtype: str = "A", *, ident: int = 4242, edns: int | None = None,
          do: bool = False) -> bytes:
    q = DNSRecord.question(name, qtype)
    q.header.id = ident
    if edns is not None:
        q.add_ar(EDNS0(udp_len=edns, flags="do" if do else ""))
    return q.pack()


class UdpClient(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.inbox: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.inbox.put_nowait(data)


class Harness:
    def __init__(self, server: DnsServer, port: int, client: UdpClient,
                 transport: asyncio.DatagramTransport) -> None:
        self.server, self.port, self.client, self.transport = server, port, client, transport

    def send(self, data: bytes) -> None:
        self.transport.sendto(data)

    async def recv(self, timeout: float = 2.0) -> bytes:
        return await asyncio.wait_for(self.client.inbox.get(), timeout)

    async def ask(self, data: bytes) -> bytes:
        self.send(data)
        return await self.recv()

    async def tcp(self, *msgs: bytes) -> list[bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(b"".join(len(m).to_bytes(2, "big") + m for m in msgs))
        await writer.drain()
        out = []
        for _ in msgs:
            size = int.from_bytes(await asyncio.wait_for(reader.readexactly(2), 2), "big")
            out.append(await reader.readexactly(size))
        writer.close()
        return out


def udp_tcp_pair() -> tuple[socket.socket, socket.socket, int]:
    """A UDP and a TCP socket on the same free loopback port. The port the kernel
    picked for UDP may be taken for TCP (another test's ephemeral connection): retry."""
    for _ in range(50):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        port = udp.getsockname()[1]
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            tcp.bind(("127.0.0.1", port))
        except OSError:
            udp.close()
            tcp.close()
            continue
        return udp, tcp, port
    raise RuntimeError("no loopback port free for both UDP and TCP")


async def start(server: DnsServer) -> tuple[Harness, list[Any]]:
    udp, tcp, port = udp_tcp_pair()
    tcp.listen(16)
    udp.setblocking(False)
    tcp.setblocking(False)
    ut = await serve_udp(server, udp, "dns://test")
    ts = await serve_tcp(server, tcp, "dns://test")
    loop = asyncio.get_running_loop()
    ct, cp = await loop.create_datagram_endpoint(UdpClient, remote_addr=("127.0.0.1", port))
    return Harness(server, port, cp, ct), [ut, ts, ct]


@pytest.fixture
async def dns() -> AsyncIterator[Harness]:
    server = DnsServer(metrics=Metrics())
    server.set_index(build_index())
    h, closers = await start(server)
    yield h
    for c in closers:
        c.close()


def parsed(data: bytes) -> DNSRecord:
    return DNSRecord.parse(data)


# ---- answers -------------------------------------------------------------------------------

async def test_servfail_before_first_index() -> None:
    server = DnsServer(metrics=Metrics())
    h, closers = await start(server)
    try:
        r = parsed(await h.ask(query("web.default.svc.cluster.local")))
        assert r.header.rcode == wire.SERVFAIL
        server.set_index(build_index())
        r = parsed(await h.ask(query("web.default.svc.cluster.local")))
        assert r.header.rcode == 0 and str(r.rr[0].rdata) == "10.96.0.20"
    finally:
        for c in closers:
            c.close()


async def test_answer_flags_id_and_case_through_the_cache(dns: Harness) -> None:
    for ident, name in ((1, "web.default.svc.cluster.local"),
                        (2, "WEB.Default.svc.cluster.local"),     # cache hit, other case
                        (3, "web.default.svc.cluster.local")):
        r = parsed(await dns.ask(query(name, ident=ident)))
        assert r.header.id == ident
        assert r.header.aa == 1 and r.header.ra == 0 and r.header.rd == 1
        assert str(r.q.qname) == name + "."
        assert str(r.rr[0].rname) == name + "."
        assert [str(x.rdata) for x in r.rr] == ["10.96.0.20"]
    assert dns.server.metrics.cache_hits["success"] == 2


async def test_rd_bit_copied_from_each_query(dns: Harness) -> None:
    for rd in (1, 0, 1):
        q = DNSRecord.question("web.default.svc.cluster.local")
        q.header.rd = rd
        assert parsed(await dns.ask(q.pack())).header.rd == rd


async def test_nxdomain_has_soa_and_is_cached_as_denial(dns: Harness) -> None:
    for _ in range(2):
        r = parsed(await dns.ask(query("nope.default.svc.cluster.local")))
        assert r.header.rcode == wire.NXDOMAIN and r.auth[0].rtype == QTYPE.SOA
    assert dns.server.metrics.cache_hits["denial"] == 1


@pytest.mark.parametrize("do", [False, True], ids=["edns", "edns-do"])
async def test_edns_advertised_and_do_echoed(dns: Harness, do: bool) -> None:
    for _ in range(2):   # miss, then hit
        r = parsed(await dns.ask(query("web.default.svc.cluster.local", edns=4096, do=do)))
        opt = [x for x in r.ar if x.rtype == QTYPE.OPT]
        assert len(opt) == 1 and opt[0].rclass == wire.ADVERTISED_UDP
        assert bool(opt[0].ttl & 0x8000) == do


async def test_no_opt_without_edns(dns: Harness) -> None:
    r = parsed(await dns.ask(query("web.default.svc.cluster.local")))
    assert not [x for x in r.ar if x.rtype == QTYPE.OPT]


TRUNC_CASES = [("no-edns", None, 512, True), ("edns-1232", 1232, 1232, True),
               ("edns-4096", 4096, 4096, False), ("edns-below-512", 100, 512, True)]


@pytest.mark.parametrize("edns,limit,tc", [c[1:] for c in TRUNC_CASES],
                         ids=[c[0] for c in TRUNC_CASES])
async def test_udp_truncation_honours_payload_size(dns: Harness, edns: int | None, limit: int,
                                                   tc: bool) -> None:
    for _ in range(2):   # the second answer comes from the cache's truncated copy
        data = await dns.ask(query("big.default.svc.cluster.local", edns=edns))
        assert len(data) <= limit
        r = parsed(data)
        assert r.header.tc == int(tc)
        assert (len(r.rr) == 100) == (not tc)


async def test_tcp_returns_everything_pipelined(dns: Harness) -> None:
    a, srv = await dns.tcp(query("big.default.svc.cluster.local", ident=7),
                           query("big.default.svc.cluster.local", "SRV", ident=8))
    ra, rs = parsed(a), parsed(srv)
    assert ra.header.tc == 0 and len(ra.rr) == 100 and ra.header.id == 7
    assert rs.header.tc == 0 and len(rs.rr) == 100 and len(rs.ar) == 100


# ---- bad input -------------------------------------------------------------------------------

def raw(qd: int = 1, an: int = 0, ns: int = 0, ar: int = 0, flags: int = 0x0100,
        body: bytes = b"") -> bytes:
    return struct.pack("!HHHHHH", 0x1234, flags, qd, an, ns, ar) + body


NAME = b"\x03web\x07default\x03svc\x07cluster\x05local\x00"
BAD_CASES: list[tuple[str, bytes, int | None]] = [
    ("truncated-header", b"\x12\x34\x01\x00\x00\x01", None),
    ("response-dropped", raw(flags=0x8100, body=NAME + b"\x00\x01\x00\x01"), None),
    ("name-past-end", raw(body=b"\x05ab"), wire.FORMERR),
    ("no-type-class", raw(body=NAME), wire.FORMERR),
    ("two-questions", raw(qd=2, body=(NAME + b"\x00\x01\x00\x01") * 2), wire.FORMERR),
    ("zero-questions", raw(qd=0), wire.FORMERR),
    ("pointer-to-itself", raw(body=b"\xc0\x0c\x00\x01\x00\x01"), wire.FORMERR),
    ("pointer-forward", raw(body=b"\xc0\x20\x00\x01\x00\x01" + b"\x00" * 30), wire.FORMERR),
    ("label-type-01", raw(body=b"\x41" + b"a" * 65 + b"\x00\x00\x01\x00\x01"), wire.FORMERR),
    ("name-over-255", raw(body=b"\x3f" + b"a" * 63 + (b"\x3f" + b"b" * 63) * 3
                          + b"\x00\x00\x01\x00\x01"), wire.FORMERR),
    ("trailing-garbage", raw(body=NAME + b"\x00\x01\x00\x01junk"), wire.FORMERR),
    ("two-opts", raw(ar=2, body=NAME + b"\x00\x01\x00\x01" + (b"\x00\x00\x29\x04\xd0"
                                                              + b"\x00" * 6) * 2),
     wire.FORMERR),
    ("class-chaos", raw(body=NAME + b"\x00\x10\x00\x03"), wire.REFUSED),
    ("class-any", raw(body=NAME + b"\x00\x01\x00\xff"), wire.REFUSED),
    ("axfr", raw(body=NAME + b"\x00\xfc\x00\x01"), wire.REFUSED),
    ("ixfr", raw(body=NAME + b"\x00\xfb\x00\x01"), wire.REFUSED),
    ("opcode-status", raw(flags=0x1100, body=NAME + b"\x00\x01\x00\x01"), wire.NOTIMP),
]


@pytest.mark.parametrize("data,rcode", [c[1:] for c in BAD_CASES], ids=[c[0] for c in BAD_CASES])
async def test_bad_input(dns: Harness, data: bytes, rcode: int | None) -> None:
    dns.send(data)
    # A good query right behind it: loopback UDP keeps order, so the first reply
    # tells whether the bad one was answered (no sleeping for an absence).
    dns.send(query("web.default.svc.cluster.local", ident=0x7777))
    first = await dns.recv()
    if rcode is None:
        assert first[:2] == b"\x77\x77"
        return
    assert first[:2] == b"\x12\x34" and first[2] & 0x80 and not first[3] & 0x80
    assert first[3] & 0xF == rcode
    assert (await dns.recv())[:2] == b"\x77\x77"


async def test_badvers_for_edns_version_1(dns: Harness) -> None:
    q = DNSRecord.question("web.default.svc.cluster.local")
    q.add_ar(EDNS0(udp_len=1232, version=1))
    r = parsed(await dns.ask(q.pack()))
    opt = [x for x in r.ar if x.rtype == QTYPE.OPT][0]
    assert (opt.ttl >> 24) << 4 | r.header.rcode == wire.BADVERS


async def test_compressed_question_is_answered(dns: Harness) -> None:
    # Legal though unusual: the question name ends in a pointer to an earlier copy
    # placed in the header's... nowhere else, so use a pointer into the name itself.
    body = b"\x03web\x07default\x03svc\x07cluster\x05local\x00\x00\x01\x00\x01"
    r = parsed(await dns.ask(raw(body=body)))
    assert r.header.rcode == 0


async def test_tcp_garbage_closes_only_that_connection(dns: Harness) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", dns.port)
    writer.write(b"\x00\x03abc")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()
    (ok,) = await dns.tcp(query("web.default.svc.cluster.local"))
    assert parsed(ok).header.rcode == 0


async def test_scapy_garbage_flood_leaves_it_answering(dns: Harness,
                                                      caplog: Any) -> None:
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from scapy.packet import fuzz
    rnd = random.Random(5)
    packets = []
    for i in range(600):
        kind = i % 3
        if kind == 0:
            p = bytes(fuzz(DNS(qd=DNSQR())))
        elif kind == 1:
            p = bytes(fuzz(DNS(qd=DNSQR(), an=DNSRR(), ar=DNSRR())))
        else:
            p = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 600)))
        packets.append(p)
    # In bursts of 40 (a burst fits the socket buffer), each followed by a probe that
    # must be answered: the server neither crashed nor stalled.
    for start_at in range(0, len(packets), 40):
        for p in packets[start_at:start_at + 40]:
            dns.send(p)
        ident = 0x5000 + start_at
        dns.send(query("web.default.svc.cluster.local", ident=ident))
        while True:
            data = await dns.recv(5)
            if data[:2] == ident.to_bytes(2, "big") and data[2] & 0x80:
                assert data[3] & 0xF == 0
                break
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    r = parsed(await dns.ask(query("web.default.svc.cluster.local", ident=0x5252)))
    assert r.header.id == 0x5252 and str(r.rr[0].rdata) == "10.96.0.20"


# ---- wire parsing (pure) ---------------------------------------------------------------------

PARSE_CASES = [
    ("plain", query("a.b.", ident=9), ("a.b.", 1, False, 512)),
    ("edns", query("a.b.", edns=4096), ("a.b.", 1, True, 4096)),
    ("edns-small", query("a.b.", edns=100), ("a.b.", 1, True, 512)),
    ("escaped", raw(body=b"\x03a.b\x00\x00\x10\x00\x01"), ("a\\.b.", 16, False, 512)),
    ("binary", raw(body=b"\x02\x00\xff\x00\x00\x01\x00\x01"), ("\\000\\255.", 1, False, 512)),
]


@pytest.mark.parametrize("data,want", [c[1:] for c in PARSE_CASES],
                         ids=[c[0] for c in PARSE_CASES])
def test_parse_query(data: bytes, want: tuple[str, int, bool, int]) -> None:
    q = wire.parse_query(data)
    assert (q.qname, q.qtype, q.edns, q.udp_size) == want


# ---- forwarding ------------------------------------------------------------------------------

class FakeUpstream(asyncio.DatagramProtocol):
    """Answers on 127.0.0.1: A 192.0.2.7 (TTL 60) for *.example., NXDOMAIN with an SOA
    for nx.example., TC over UDP for big.example. (full answer over TCP), and never
    answers silent.example."""

    def __init__(self) -> None:
        self.udp_queries = 0
        self.tcp_queries = 0
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def answer(self, data: bytes, tcp: bool) -> bytes | None:
        q = DNSRecord.parse(data)
        name = str(q.q.qname).lower()
        if name == "silent.example.":
            return None
        r = q.reply()
        if name == "nx.example.":
            r.header.rcode = 3
            r.add_auth(*RR.fromZone("example. 30 IN SOA ns.example. h.example. 1 2 3 4 10"))
        elif name == "big.example." and not tcp:
            r.header.tc = 1
        else:
            n = 60 if name == "big.example." else 1
            for i in range(n):
                r.add_answer(RR(q.q.qname, QTYPE.A, rdata=A(f"192.0.2.{7 + i}"), ttl=60))
        return r.pack()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.udp_queries += 1
        out = self.answer(data, False)
        if out is not None and self.transport is not None:
            self.transport.sendto(out, addr)

    async def handle_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        size = int.from_bytes(await reader.readexactly(2), "big")
        self.tcp_queries += 1
        out = self.answer(await reader.readexactly(size), True)
        if out is not None:
            writer.write(len(out).to_bytes(2, "big") + out)
            await writer.drain()
        writer.close()


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[FakeUpstream, int]]:
    loop = asyncio.get_running_loop()
    fake = FakeUpstream()
    udp, tcp_sock, port = udp_tcp_pair()
    transport, _ = await loop.create_datagram_endpoint(lambda: fake, sock=udp)
    tcp = await asyncio.start_server(fake.handle_tcp, sock=tcp_sock)
    yield fake, port
    transport.close()
    tcp.close()


@pytest.fixture
async def fwd_dns(upstream: tuple[FakeUpstream, int]) -> AsyncIterator[Harness]:
    _, port = upstream
    m = Metrics()
    server = DnsServer(metrics=m, forwarder=Forwarder([("127.0.0.1", port)], timeout=0.3,
                                                      deadline=0.8, metrics=m))
    server.set_index(build_index())
    h, closers = await start(server)
    yield h
    for c in closers:
        c.close()


async def test_forward_and_cache(fwd_dns: Harness, upstream: tuple[FakeUpstream, int]) -> None:
    fake, _ = upstream
    for ident in (1, 2):
        r = parsed(await fwd_dns.ask(query("www.example", ident=ident)))
        assert r.header.id == ident and str(r.rr[0].rdata) == "192.0.2.7"
    assert fake.udp_queries == 1       # the second came from the forward cache
    assert 'coredns_forward_requests_total{to="127.0.0.1:' in fwd_dns.server.metrics.render()


async def test_forward_negative_cached(fwd_dns: Harness, upstream: tuple[FakeUpstream, int]
                                       ) -> None:
    fake, _ = upstream
    for _ in range(2):
        assert parsed(await fwd_dns.ask(query("nx.example"))).header.rcode == 3
    assert fake.udp_queries == 1


async def test_forward_tc_falls_back_to_tcp(fwd_dns: Harness,
                                            upstream: tuple[FakeUpstream, int]) -> None:
    fake, _ = upstream
    (data,) = await fwd_dns.tcp(query("big.example"))
    r = parsed(data)
    assert r.header.tc == 0 and len(r.rr) == 60 and fake.tcp_queries == 1
    # Over UDP without EDNS the client gets TC (then retries over TCP itself).
    r = parsed(await fwd_dns.ask(query("big.example")))
    assert r.header.tc == 1


async def test_forward_timeout_is_servfail_in_bounded_time(fwd_dns: Harness) -> None:
    t0 = time.monotonic()
    r = parsed(await fwd_dns.ask(query("silent.example")))
    assert r.header.rcode == wire.SERVFAIL
    assert time.monotonic() - t0 < 1.5


async def test_upstreams_none_refuses() -> None:
    server = DnsServer(metrics=Metrics(), forwarder=Forwarder(parse_upstreams(["none"])))
    server.set_index(build_index())
    h, closers = await start(server)
    try:
        assert parsed(await h.ask(query("www.example"))).header.rcode == wire.REFUSED
        assert parsed(await h.ask(query("web.default.svc.cluster.local"))).header.rcode == 0
    finally:
        for c in closers:
            c.close()


UPSTREAM_CASES = [
    ("none", ["none"], []),
    ("addr", ["192.0.2.1"], [("192.0.2.1", 53)]),
    ("addr-port", ["192.0.2.1:5353"], [("192.0.2.1", 5353)]),
    ("v6-port", ["[2001:db8::1]:54"], [("2001:db8::1", 54)]),
    ("v6", ["2001:db8::1"], [("2001:db8::1", 53)]),
    ("resolv-conf-skips-dns-ip", ["resolv.conf"], [("192.0.2.9", 53)]),
]


@pytest.mark.parametrize("spec,want", [c[1:] for c in UPSTREAM_CASES],
                         ids=[c[0] for c in UPSTREAM_CASES])
def test_parse_upstreams(tmp_path: Any, spec: list[str], want: list[tuple[str, int]]) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("search x\nnameserver 10.96.0.10\nnameserver 192.0.2.9\n")
    assert parse_upstreams(spec, str(conf), exclude={"10.96.0.10"}) == want


def test_negative_cache_ttl_is_soa_minimum() -> None:
    r = DNSRecord.question("nx.example").reply()
    r.header.rcode = 3
    r.add_auth(*RR.fromZone("example. 30 IN SOA ns.example. h.example. 1 2 3 4 10"))
    assert cache_ttl(r.pack())[0] == 10


# ---- metrics ---------------------------------------------------------------------------------

async def test_metrics_count_requests_and_rcodes(dns: Harness) -> None:
    await dns.ask(query("web.default.svc.cluster.local"))
    await dns.ask(query("web.default.svc.cluster.local"))
    await dns.ask(query("nope.default.svc.cluster.local", "AAAA"))
    text = dns.server.metrics.render()
    assert 'coredns_dns_requests_total{family="1",proto="udp",server="dns://test",type="A",' \
           'view="",zone="."} 2' in text
    assert 'type="AAAA"' in text
    assert 'coredns_dns_responses_total{plugin="",rcode="NXDOMAIN",server="dns://test",' \
           'view="",zone="."} 1' in text
    assert 'coredns_dns_request_duration_seconds_count{server="dns://test",type="A",' \
           'view="",zone="."} 2' in text
    assert 'coredns_cache_hits_total{server="dns://:53",type="success",view=""} 1' in text
    assert 'coredns_cache_misses_total{server="dns://:53",view=""} 2' in text


async def test_new_index_replaces_cached_answers(dns: Harness) -> None:
    assert str(parsed(await dns.ask(query("web.default.svc.cluster.local"))).rr[0].rdata) \
        == "10.96.0.20"
    dns.server.set_index(ZoneIndex.build([svc("web", "10.96.0.99")], [], [], CFG))
    assert str(parsed(await dns.ask(query("web.default.svc.cluster.local"))).rr[0].rdata) \
        == "10.96.0.99"
