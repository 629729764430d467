"""DNS benchmark: netd's server against nsd serving the same names, queried by dnsperf.

Cluster: 1,000 services in 10 namespaces — 900 ClusterIP, 100 headless with 20 ready
endpoints each (2,000 pods with hostnames). Query mix (same file for both servers):
service A hits, pod-hostname A hits, SRV, NXDOMAIN (query_file). Before measuring, a
sample of every query class is asked of both servers and the answers compared.

netd runs in its own process exactly as the daemon serves DNS (see serve_netd); a task
can change one service's records 100 times per second — each change one Service update
event delivered through the informer to the daemon's DnsIndexer, which derives and
publishes the next index as in the daemon — only while netd is being measured "with
churn". nsd (Debian) serves a static zone with the same names, one
server process, response rate limiting off. Throughput runs (dnsperf as fast as it can)
alternate between the servers for --rounds rounds and report medians; then one latency
run each at a fixed rate (dnsperf -v, p50/p99 from the per-query latencies), netd with
churn.

Needs loopback only, and the Debian packages: `apt-get install -y dnsperf nsd`
(run automatically when missing and we are root). Run it under the shared lock:

  flock /tmp/netd-bench.lock .venv/bin/python bench/dns_bench.py [--seconds 10]
        [--rounds 3] [--churn 100] [--rate 20000]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

N_NS = 10
N_SVC = 1000
N_HEADLESS = 100
EPS_PER_HEADLESS = 20


# ---- the cluster --------------------------------------------------------------------------

def cluster() -> tuple[list[dict], list[dict]]:
    services, slices = [], []
    for i in range(N_SVC):
        ns = f"ns{i % N_NS}"
        name = f"svc{i}"
        headless = i < N_HEADLESS
        ip = "None" if headless else f"10.96.{4 + i // 250}.{1 + i % 250}"
        services.append({"metadata": {"name": name, "namespace": ns},
                         "spec": {"clusterIP": ip, "clusterIPs": [ip],
                                  "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})
        if headless:
            slices.append({
                "metadata": {"name": f"{name}-x", "namespace": ns,
                             "labels": {"kubernetes.io/service-name": name}},
                "addressType": "IPv4", "ports": [{"name": "http", "port": 80,
                                                  "protocol": "TCP"}],
                "endpoints": [{"addresses": [f"10.244.{i}.{1 + j}"], "hostname": f"{name}-{j}",
                               "conditions": {"ready": True}}
                              for j in range(EPS_PER_HEADLESS)]})
    return services, slices


def query_file(path: Path) -> int:
    lines = []
    for i in range(N_SVC):
        ns, name = f"ns{i % N_NS}", f"svc{i}"
        base = f"{name}.{ns}.svc.cluster.local"
        lines.append(f"{base} A")
        lines.append(f"{base} A")
        lines.append(f"_http._tcp.{base} SRV")
        lines.append(f"missing{i}.{ns}.svc.cluster.local A")
        if i < N_HEADLESS:
            for j in range(EPS_PER_HEADLESS):
                lines.append(f"{name}-{j}.{base} A")
        else:
            lines.append(f"{base} A")
    # Interleave so every stretch of the file has the same mix.
    import random
    random.Random(1).shuffle(lines)
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


def zone_file(path: Path, services: list[dict], slices: list[dict]) -> None:
    out = ["$ORIGIN cluster.local.", "$TTL 5",
           "@ IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5",
           "@ IN NS ns.dns.cluster.local.", "ns.dns IN A 10.96.0.10"]
    by_svc = {(s["metadata"]["namespace"], s["metadata"]["labels"]
               ["kubernetes.io/service-name"]): s for s in slices}
    for s in services:
        ns, name = s["metadata"]["namespace"], s["metadata"]["name"]
        base = f"{name}.{ns}.svc"
        ip = s["spec"]["clusterIP"]
        if ip != "None":
            out.append(f"{base} IN A {ip}")
            out.append(f"_http._tcp.{base} IN SRV 0 100 80 {base}.cluster.local.")
            continue
        for ep in by_svc[(ns, name)]["endpoints"]:
            host = f"{ep['hostname']}.{base}"
            out.append(f"{base} IN A {ep['addresses'][0]}")
            out.append(f"{host} IN A {ep['addresses'][0]}")
            out.append(f"_http._tcp.{base} IN SRV 0 5 80 {host}.cluster.local.")
    path.write_text("\n".join(out) + "\n")


# ---- netd's server (child process) ---------------------------------------------------------

def serve_netd(port: int) -> None:
    """The daemon's DNS path in a process of its own: uvloop installed as `netd up`
    does (netd.cli.lifecycle), the daemon's GC tuning (netd.daemon.tune_gc), sockets
    opened and served by the same functions DnsService uses for every node
    (netd.dns.service.open_sockets / serve: batched UDP + TCP), and the index kept by
    the daemon's DnsIndexer (netd.dns.watch) over real Informer objects, its callback
    swapping it into the server (DnsServer.set_index) as DnsService wires it.

    The informers are not connected to a store: their caches are filled, and changes
    delivered, through Informer._apply — the method a watch event goes through (cache
    update, informer indexes, every handler) — so the indexer's own event handling,
    coalescing and incremental rebuild are what is measured, and nothing of the API
    server's write path. One "change" is one Service object update (a new object with
    its cluster IP flipped, so its A, SRV and PTR answers change) delivered as one
    MODIFIED event; the indexer builds and publishes the next index on its own task.

    Commands on stdin: `churn N` (N changes per second; 0 stops), `stats` (prints the
    per-change costs — indexer build + set_index, on the loop — the event → published
    index delay, full builds, and the metrics' request count on stdout)."""
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    from types import SimpleNamespace

    from netd.client.informer import InformerFactory
    from netd.daemon import tune_gc
    from netd.dns.index import DnsConfig
    from netd.dns.metrics import Metrics
    from netd.dns.server import DnsServer
    from netd.dns.service import open_sockets, serve
    from netd.dns.watch import ENDPOINT_SLICES, NAMESPACES, PODS, SERVICES, DnsIndexer
    from netd.store.base import ADDED, MODIFIED

    services, slices = cluster()
    cfg = DnsConfig()
    namespaces = [{"metadata": {"name": n}} for n in
                  ["default", "kube-system"] + [f"ns{i}" for i in range(N_NS)]]

    async def main() -> None:
        metrics = Metrics()
        server = DnsServer(metrics=metrics)
        factory = InformerFactory(None)  # type: ignore[arg-type]
        indexer = DnsIndexer(SimpleNamespace(factory=factory), cfg)
        costs: list[float] = []
        builds: list[float] = []
        delays: list[float] = []
        sent: list[float] = []

        def publish(index: Any) -> None:
            t0 = time.perf_counter()
            server.set_index(index)
            now = time.perf_counter()
            builds.append(indexer.last_build_seconds)
            costs.append(indexer.last_build_seconds + now - t0)
            if sent:
                delays.append(now - sent[0])
                sent.clear()

        indexer.add_callback(publish)
        for rt, objs in ((SERVICES, services), (ENDPOINT_SLICES, slices), (PODS, []),
                         (NAMESPACES, namespaces)):
            inf = factory.informer(rt)
            for obj in objs:
                inf._apply(ADDED, obj)
            inf._synced.set()
        svc_informer = factory.informer(SERVICES)
        task = asyncio.ensure_future(indexer.run())
        await indexer.synced.wait()
        udp, tcp = open_sockets("127.0.0.1", port)
        await serve(server, udp, tcp, "dns://bench")
        tune_gc()
        loop = asyncio.get_running_loop()
        rate = [0]
        wake = asyncio.Event()

        def command() -> None:
            line = sys.stdin.readline().split()
            if not line:
                task.cancel()
                loop.stop()
            elif line[0] == "churn":
                rate[0] = int(line[1])
                costs.clear()
                builds.clear()
                delays.clear()
                indexer.full_builds = 0
                wake.set()
            elif line[0] == "stats":
                c = sorted(costs) or [0.0]
                b = sorted(builds) or [0.0]
                d = sorted(delays) or [0.0]
                served = sum(sum(s.requests) for s in metrics.stats)
                print(f"changes {len(c)}: index build p50 {b[len(b) // 2] * 1e3:.3f} ms p99 "
                      f"{b[int(len(b) * 0.99)] * 1e3:.3f} ms; build + set_index p50 "
                      f"{c[len(c) // 2] * 1e3:.3f} ms p99 "
                      f"{c[int(len(c) * 0.99)] * 1e3:.3f} ms max {c[-1] * 1e3:.3f} ms; "
                      f"event -> published p50 {d[len(d) // 2] * 1e3:.2f} ms p99 "
                      f"{d[int(len(d) * 0.99)] * 1e3:.2f} ms; full builds "
                      f"{indexer.full_builds}; requests counted {served}", flush=True)

        loop.add_reader(sys.stdin.fileno(), command)
        print("READY", flush=True)
        target = services[N_SVC - 1]
        ips = ("10.96.250.1", "10.96.250.2")
        n = 0
        next_at = time.perf_counter()
        while True:
            if not rate[0]:
                wake.clear()
                await wake.wait()
                next_at = time.perf_counter()
                continue
            next_at += 1.0 / rate[0]
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            n += 1
            ip = ips[n % 2]
            # A new object per change, as the watch delivers it (cached objects are
            # never mutated: the index reuses records of unchanged objects).
            target = dict(target, spec=dict(target["spec"], clusterIP=ip, clusterIPs=[ip]))
            sent[:] = [time.perf_counter()]
            svc_informer._apply(MODIFIED, target)

    try:
        asyncio.run(main())
    except RuntimeError:
        pass    # loop stopped on stdin EOF


# ---- runners -------------------------------------------------------------------------------

def free_port() -> int:
    """A loopback port free for both UDP and TCP (netd opens both, like the daemon)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, \
                socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            u.bind(("127.0.0.1", 0))
            port = int(u.getsockname()[1])
            try:
                t.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port")


def ask(port: int, name: str, qtype: str, timeout: float = 1.0) -> Any:
    from dnslib import DNSRecord
    q = DNSRecord.question(name, qtype)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(q.pack(), ("127.0.0.1", port))
        return DNSRecord.parse(s.recv(65535))


def wait_answering(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            ask(port, "svc999.ns9.svc.cluster.local", "A", 0.2)
            return
        except OSError:
            continue
    raise RuntimeError(f"nothing answers on 127.0.0.1:{port}")


def query_classes(qfile: Path) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for line in qfile.read_text().split("\n"):
        if not line:
            continue
        name, qtype = line.split()
        svc = int(re.search(r"(?:svc|missing)(\d+)", name).group(1))  # type: ignore[union-attr]
        kind = ("NXDOMAIN" if name.startswith("missing") else
                f"SRV {'headless' if svc < N_HEADLESS else 'ClusterIP'}" if qtype == "SRV"
                else "A pod hostname" if name.count(".") == 5
                else f"A {'headless' if svc < N_HEADLESS else 'ClusterIP'}")
        out.setdefault(kind, []).append((name, qtype))
    return out


def same_answers(ports: dict[str, int], qfile: Path, sample: int = 25) -> bool:
    """Spot-check that both servers give the same rcode, TC bit and answer RRset (as a
    set: order and TTL aside) for a sample of every query class of the mix."""
    ok = True
    print(f"{'query class':18} {'sampled':>7} {'differ':>6}  (rcode, TC, answers: "
          f"{' vs '.join(ports)})")
    for kind, queries in sorted(query_classes(qfile).items()):
        bad = 0
        picked = queries[:: max(1, len(queries) // sample)][:sample]
        for name, qtype in picked:
            seen = []
            for port in ports.values():
                r = ask(port, name, qtype)
                seen.append((r.header.rcode, r.header.tc,
                             sorted((str(rr.rname).lower(), rr.rtype, str(rr.rdata))
                                    for rr in r.rr)))
            if seen[0][1] and seen[1][1]:
                # Both truncated (the answer does not fit 512 bytes): nsd sends an
                # empty answer, netd keeps the records that fit (miekg/dns Truncate,
                # as CoreDNS); the TCP retry gets the whole set from either.
                seen = [x[:2] for x in seen]
            if seen[0] != seen[1]:
                bad += 1
                if bad == 1:
                    print(f"  {name} {qtype}: {seen[0]} != {seen[1]}")
        ok = ok and not bad
        print(f"{kind:18} {len(picked):7} {bad:6}")
    return ok


def dnsperf(port: int, qfile: Path, seconds: float, rate: int | None = None
            ) -> dict[str, float]:
    argv = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(qfile),
            "-l", str(seconds), "-c", "4", "-q", "200", "-t", "2"]
    if rate:
        argv += ["-Q", str(rate), "-v"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60).stdout
    res: dict[str, float] = {}
    for key, pattern in (("qps", r"Queries per second:\s+([\d.]+)"),
                         ("lost", r"Queries lost:\s+(\d+)"),
                         ("sent", r"Queries sent:\s+(\d+)"),
                         ("resp_size", r"response (\d+)")):
        m = re.search(pattern, out)
        res[key] = float(m.group(1)) if m else 0.0
    if rate:
        lat = sorted(float(x) for x in re.findall(r"^> \S+ .* ([\d.]+)$", out, re.M))
        if lat:
            res["p50_ms"] = lat[len(lat) // 2] * 1e3
            res["p99_ms"] = lat[int(len(lat) * 0.99)] * 1e3
    return res


NSD_CONF = """server:
  ip-address: 127.0.0.1@{port}
  # One server process, as netd answers from one event loop.
  server-count: 1
  reuseport: no
  do-ip6: no
  # Debian's nsd limits responses per source by default (rrl-ratelimit 200/s): a
  # benchmark from one address would be throttled to a trickle of drops and slips.
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
  # Full additional sections for SRV targets, as netd (CoreDNS) sends them.
  minimal-responses: no
  zonesdir: "{tmp}"
  pidfile: "{tmp}/nsd.pid"
  database: ""
  zonelistfile: "{tmp}/zone.list"
  xfrdfile: "{tmp}/xfrd.state"
  xfrdir: "{tmp}"
  logfile: "{tmp}/nsd.log"
  username: ""
  chroot: ""
  verbosity: 0
remote-control:
  control-enable: no
zone:
  name: cluster.local
  zonefile: cluster.local.zone
"""


def start_nsd(tmp: Path, port: int, services: list[dict], slices: list[dict]
              ) -> subprocess.Popen[bytes]:
    zone_file(tmp / "cluster.local.zone", services, slices)
    conf = tmp / "nsd.conf"
    conf.write_text(NSD_CONF.format(port=port, tmp=tmp))
    return subprocess.Popen(["nsd", "-d", "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def preflight() -> None:
    if shutil.which("dnsperf") and (shutil.which("nsd") or os.path.exists("/usr/sbin/nsd")):
        return
    if os.geteuid() != 0:
        sys.exit("needs dnsperf and nsd: apt-get install -y dnsperf nsd")
    subprocess.run(["apt-get", "install", "-y", "-q", "dnsperf", "nsd"], check=True,
                   env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    os.environ["PATH"] += ":/usr/sbin"


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


class NetdChild:
    def __init__(self, port: int) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, start_new_session=True)
        assert self.readline() == "READY"

    def readline(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def churn(self, rate: int) -> None:
        self.send(f"churn {rate}")

    def stats(self) -> str:
        self.send("stats")
        return self.readline()


def median(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10, help="length of each dnsperf run")
    ap.add_argument("--rounds", type=int, default=3,
                    help="interleaved throughput rounds (nsd, netd, netd+churn); medians")
    ap.add_argument("--churn", type=int, default=100, help="record changes per second")
    ap.add_argument("--rate", type=int, default=20000, help="QPS of the latency runs")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve_netd(args.serve)
        return
    preflight()
    os.environ["PATH"] += ":/usr/sbin"
    services, slices = cluster()
    runs: dict[str, list[dict[str, float]]] = {}
    lat: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="dnsbench") as d:
        tmp = Path(d)
        qfile = tmp / "queries.txt"
        n = query_file(qfile)
        print(f"cluster: {N_SVC} services ({N_HEADLESS} headless), "
              f"{N_HEADLESS * EPS_PER_HEADLESS} pods; {n} queries in the mix "
              f"(60% A, 20% SRV, 20% NXDOMAIN... see query_file)")
        print("servers: nsd (Debian, server-count 1: one answering process) and netd "
              "(one process, one uvloop event loop; batched UDP listener as in the daemon)")
        ports = {"nsd": free_port(), "netd": 0}
        nsd = start_nsd(tmp, ports["nsd"], services, slices)
        netd: NetdChild | None = None
        try:
            ports["netd"] = free_port()
            netd = NetdChild(ports["netd"])
            wait_answering(ports["nsd"])
            wait_answering(ports["netd"])
            if not same_answers(ports, qfile):
                print("WARNING: the servers' answers differ (see above)")
            for port in ports.values():
                # One pass over the mix first: netd's answers are encoded on first
                # use (the wire cache), nsd's zone is paged in.
                subprocess.run(["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d",
                                str(qfile), "-n", "1", "-q", "50"], capture_output=True,
                               timeout=120, check=False)
            # Interleaved rounds: the machine's noise hits every server alike.
            for _ in range(args.rounds):
                runs.setdefault("nsd", []).append(dnsperf(ports["nsd"], qfile, args.seconds))
                runs.setdefault("netd", []).append(dnsperf(ports["netd"], qfile,
                                                           args.seconds))
                netd.churn(args.churn)
                runs.setdefault("netd+churn", []).append(
                    dnsperf(ports["netd"], qfile, args.seconds))
                netd.churn(0)
            lat["nsd"] = dnsperf(ports["nsd"], qfile, args.seconds / 2, args.rate)
            netd.churn(args.churn)
            lat["netd+churn"] = dnsperf(ports["netd"], qfile, args.seconds / 2, args.rate)
            build = netd.stats()
            netd.churn(0)
        finally:
            stop(nsd)
            if netd is not None:
                stop(netd.proc)
    print(f"\nthroughput: dnsperf -c 4 -q 200, {args.seconds:g} s x {args.rounds} rounds "
          f"(median; all runs in brackets)")
    print(f"{'server':11} {'QPS':>8} {'lost':>6} {'resp B':>6}  runs")
    for name, rs in runs.items():
        print(f"{name:11} {median([r['qps'] for r in rs]):8.0f} "
              f"{sum(r['lost'] for r in rs):6.0f} {rs[0]['resp_size']:6.0f}  "
              f"[{', '.join('%.0f' % r['qps'] for r in rs)}]")
    print(f"\nlatency at {args.rate} QPS ({args.seconds / 2:g} s):")
    for name, r in lat.items():
        print(f"{name:11} p50 {r.get('p50_ms', 0):.3f} ms  p99 {r.get('p99_ms', 0):.3f} ms  "
              f"lost {r['lost']:.0f}")
    print(f"netd churn {args.churn}/s during the latency run (one change = one Service "
          f"update event through the informer -> DnsIndexer -> set_index): {build}")
    nsd_qps = median([r["qps"] for r in runs["nsd"]])
    if nsd_qps:
        for name in ("netd", "netd+churn"):
            print(f"ratio {name}/nsd QPS: {median([r['qps'] for r in runs[name]]) / nsd_qps:.2f}")


if __name__ == "__main__":
    main()
