"""DNS benchmark: netd's server against nsd serving the same names, queried by dnsperf.

Cluster: 1,000 services in 10 namespaces — 900 ClusterIP, 100 headless with 20 ready
endpoints each (2,000 pods with hostnames). Query mix (same file for both servers):
60% A hits (service names and pod hostnames), 20% SRV, 20% NXDOMAIN.

netd runs in its own process (uvloop, the real DnsServer + ZoneIndex + resolver) while a
task changes one service's records 100 times per second and swaps in a rebuilt index
each time, as the indexer does. nsd (Debian) serves a static zone with the same names,
one server process. Each server gets a throughput run (dnsperf, as fast as it can) and a
latency run at a fixed rate (dnsperf -v, p50/p99 from the per-query latencies).

Needs root-free loopback only, and the Debian packages: `apt-get install -y dnsperf nsd`
(run automatically when missing and we are root).

  .venv/bin/python bench/dns_bench.py [--seconds 10] [--churn 100] [--rate 20000]
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

def serve_netd(port: int, churn: int) -> None:
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    from netd.dns.index import DnsConfig, ZoneIndex
    from netd.dns.metrics import Metrics
    from netd.dns.server import DnsServer, serve_udp

    services, slices = cluster()
    cfg = DnsConfig()
    # As the indexer passes them: Namespace objects, and the previous index.
    namespaces = [{"metadata": {"name": n}} for n in
                  ["default", "kube-system"] + [f"ns{i}" for i in range(N_NS)]]

    async def main() -> None:
        server = DnsServer(metrics=Metrics())
        index = ZoneIndex.build(services, slices, [], cfg, namespaces=namespaces)
        server.set_index(index)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.bind(("127.0.0.1", port))
        sock.setblocking(False)
        await serve_udp(server, sock, "dns://bench")
        print("READY", flush=True)
        builds: list[float] = []
        if churn:
            # A ClusterIP service whose address flips: its A/SRV answers change.
            target = services[N_SVC - 1]
            ips = ("10.96.250.1", "10.96.250.2")
            n = 0
            interval = 1.0 / churn
            next_at = time.perf_counter()
            while True:
                next_at += interval
                delay = next_at - time.perf_counter()
                await asyncio.sleep(max(0.0, delay))
                n += 1
                ip = ips[n % 2]
                # A new object per change, as the informer delivers it (cached objects
                # are never mutated: the index reuses records of unchanged objects).
                target = dict(target, spec=dict(target["spec"], clusterIP=ip,
                                                 clusterIPs=[ip]))
                services[N_SVC - 1] = target
                t0 = time.perf_counter()
                index = ZoneIndex.build(services, slices, [], cfg, namespaces=namespaces,
                                        generation=n, previous=index)
                server.set_index(index)
                builds.append(time.perf_counter() - t0)
                if len(builds) % 500 == 0:
                    b = sorted(builds)
                    print(f"index build+swap p50 {b[len(b) // 2] * 1e3:.1f} ms "
                          f"p99 {b[int(len(b) * 0.99)] * 1e3:.1f} ms", file=sys.stderr,
                          flush=True)
        else:
            await asyncio.Event().wait()

    asyncio.run(main())


# ---- runners -------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_answering(port: int, timeout: float = 20) -> None:
    from dnslib import DNSRecord
    q = DNSRecord.question("svc999.ns9.svc.cluster.local").pack()
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        while time.monotonic() < deadline:
            s.sendto(q, ("127.0.0.1", port))
            try:
                s.recv(4096)
                return
            except OSError:
                continue
    raise RuntimeError(f"nothing answers on 127.0.0.1:{port}")


def dnsperf(port: int, qfile: Path, seconds: float, rate: int | None = None
            ) -> dict[str, float]:
    argv = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(qfile),
            "-l", str(seconds), "-c", "4", "-q", "200", "-t", "2"]
    if rate:
        argv += ["-Q", str(rate), "-v"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60).stdout
    res: dict[str, float] = {}
    m = re.search(r"Queries per second:\s+([\d.]+)", out)
    res["qps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"Queries lost:\s+(\d+)", out)
    res["lost"] = float(m.group(1)) if m else 0.0
    if rate:
        lat = sorted(float(x) for x in re.findall(r"^> \S+ .* ([\d.]+)$", out, re.M))
        if lat:
            res["p50_ms"] = lat[len(lat) // 2] * 1e3
            res["p99_ms"] = lat[int(len(lat) * 0.99)] * 1e3
    return res


def start_nsd(tmp: Path, port: int, services: list[dict], slices: list[dict]
              ) -> subprocess.Popen[bytes]:
    zone_file(tmp / "cluster.local.zone", services, slices)
    conf = tmp / "nsd.conf"
    conf.write_text(f"""server:
  ip-address: 127.0.0.1@{port}
  server-count: 1
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
""")
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--churn", type=int, default=100, help="record changes per second")
    ap.add_argument("--rate", type=int, default=20000, help="QPS of the latency runs")
    ap.add_argument("--servers", default="nsd,netd",
                    help="comma-separated subset of nsd,netd to run")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve_netd(args.serve, args.churn)
        return
    preflight()
    os.environ["PATH"] += ":/usr/sbin"
    services, slices = cluster()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="dnsbench") as d:
        tmp = Path(d)
        qfile = tmp / "queries.txt"
        n = query_file(qfile)
        print(f"cluster: {N_SVC} services, {N_HEADLESS * EPS_PER_HEADLESS} pods; "
              f"{n} queries in the mix; churn {args.churn}/s (netd)")
        port = free_port()
        run = set(args.servers.split(","))
        nsd = start_nsd(tmp, port, services, slices) if "nsd" in run else None
        try:
            if nsd is not None:
                wait_answering(port)
                results["nsd"] = dnsperf(port, qfile, args.seconds)
                results["nsd"].update({k: v for k, v in dnsperf(
                    port, qfile, args.seconds / 2, args.rate).items() if k.endswith("_ms")})
        finally:
            if nsd is not None:
                stop(nsd)
        if "netd" in run:
            port = free_port()
            netd = subprocess.Popen([sys.executable, __file__, "--serve", str(port),
                                     "--churn", str(args.churn)], stdout=subprocess.PIPE,
                                    start_new_session=True)
            try:
                assert netd.stdout is not None
                netd.stdout.readline()
                wait_answering(port)
                results["netd"] = dnsperf(port, qfile, args.seconds)
                results["netd"].update({k: v for k, v in dnsperf(
                    port, qfile, args.seconds / 2, args.rate).items() if k.endswith("_ms")})
            finally:
                stop(netd)
    print(f"{'server':8} {'QPS':>10} {'lost':>8} {'p50 ms':>8} {'p99 ms':>8}  "
          f"(latency at {args.rate} QPS)")
    for name, r in results.items():
        print(f"{name:8} {r['qps']:10.0f} {r['lost']:8.0f} {r.get('p50_ms', 0):8.3f} "
              f"{r.get('p99_ms', 0):8.3f}")
    if results.get("nsd", {}).get("qps") and "netd" in results:
        print(f"ratio netd/nsd QPS: {results['netd']['qps'] / results['nsd']['qps']:.2f}")


if __name__ == "__main__":
    main()
