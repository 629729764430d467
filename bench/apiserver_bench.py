"""API server benchmark: creates, lists and watch latency, with baselines from the
same run (raw store writes, a bare aiohttp endpoint) so the ratios compare across
noisy machines.

    .venv/bin/python bench/apiserver_bench.py [--pods 10000] [--concurrency 32]

Targets (issue 2): >= 1,000 creates/s in-process, >= 500/s over HTTP, list of 10k pods
< 0.5 s, watch delivery p99 < 10 ms.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from netd.api.kinds import REGISTRY
from netd.apiserver.app import ApiServerApp
from netd.registry.bootstrap import ensure_system_objects
from netd.registry.objectapi import ObjectAPI
from netd.store.sqlite import SQLiteStore

PODS = REGISTRY.by_plural("", "pods")
assert PODS is not None
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def pod(name: str) -> dict[str, Any]:
    # About the size of a real pod manifest after defaulting (~1.5 KB stored).
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "bench", "tier": "web"},
                         "annotations": {"bench/run": "1"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.25",
                                     "ports": [{"containerPort": 80, "name": "http"}],
                                     "env": [{"name": "MODE", "value": "bench"}],
                                     "resources": {"requests": {"cpu": "10m",
                                                                "memory": "16Mi"}},
                                     "readinessProbe": {"httpGet": {"path": "/healthz",
                                                                    "port": 80}}}]}}


def pct(samples: list[float], p: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * p))]


async def bench_inprocess(n: int, db: Path) -> dict[str, float]:
    store = SQLiteStore(str(db))
    api = ObjectAPI(store)
    await ensure_system_objects(api)
    # Baseline: the store alone (no defaulting/validation/admission).
    raw = pod("x")
    t = time.perf_counter()
    for i in range(n):
        body = orjson.loads(orjson.dumps(raw))
        body["metadata"]["name"] = f"base-{i}"
        body["metadata"]["namespace"] = "kube-public"
        await store.create("pods", "kube-public", f"base-{i}", body)
    store_rate = n / (time.perf_counter() - t)
    t = time.perf_counter()
    for i in range(n):
        await api.create(PODS, "default", pod(f"p-{i}"))
    api_rate = n / (time.perf_counter() - t)
    await store.close()
    return {"store_creates_per_s": store_rate, "inprocess_creates_per_s": api_rate}


async def bench_http(n: int, concurrency: int, db: Path) -> dict[str, float]:
    store = SQLiteStore(str(db))
    api = ObjectAPI(store)
    await ensure_system_objects(api)
    runner = web.AppRunner(ApiServerApp(api).build(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"

    # Baseline: a bare aiohttp handler that reads the body and answers 201.
    async def bare(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=201, body=b"{}", content_type="application/json")
    bare_app = web.Application()
    bare_app.router.add_post("/bare", bare)
    bare_runner = web.AppRunner(bare_app, access_log=None)
    await bare_runner.setup()
    bare_site = web.TCPSite(bare_runner, "127.0.0.1", 0)
    await bare_site.start()
    bare_port = bare_site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    out: dict[str, float] = {}
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as session:
        async def post_many(url: str, prefix: str) -> float:
            queue: asyncio.Queue[int] = asyncio.Queue()
            for i in range(n):
                queue.put_nowait(i)

            async def worker() -> None:
                while not queue.empty():
                    i = queue.get_nowait()
                    body = orjson.dumps(pod(f"{prefix}-{i}"))
                    async with session.post(url, data=body, headers={
                            "Content-Type": "application/json"}) as r:
                        await r.read()
                        assert r.status == 201, r.status
            t = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return n / (time.perf_counter() - t)

        out["bare_http_posts_per_s"] = await post_many(f"http://127.0.0.1:{bare_port}/bare",
                                                       "b")
        out["http_creates_per_s"] = await post_many(
            f"{base}/api/v1/namespaces/default/pods", "h")

        for label, accept in (("json", "application/json"), ("table", TABLE)):
            times = []
            for _ in range(5):
                t = time.perf_counter()
                async with session.get(f"{base}/api/v1/namespaces/default/pods",
                                       headers={"Accept": accept}) as r:
                    data = await r.read()
                    assert r.status == 200
                times.append(time.perf_counter() - t)
            out[f"list_{label}_s"] = statistics.median(times)
            out[f"list_{label}_mb"] = len(data) / 1e6

        # Watch latency: time from the write returning to the event arriving.
        latencies: list[float] = []
        rv = store.revision
        async with session.get(f"{base}/api/v1/namespaces/default/pods",
                               params={"watch": "1", "resourceVersion": str(rv)}) as r:
            for i in range(500):
                t = time.perf_counter()
                await api.create(PODS, "default", pod(f"w-{i}"))
                line = await r.content.readline()
                latencies.append(time.perf_counter() - t)
                assert b'"ADDED"' in line
        out["watch_p50_ms"] = pct(latencies, 0.50) * 1000
        out["watch_p99_ms"] = pct(latencies, 0.99) * 1000
    await runner.cleanup()
    await bare_runner.cleanup()
    await store.close()
    return out


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        r = await bench_inprocess(args.pods, Path(d) / "a.db")
        r.update(await bench_http(args.pods, args.concurrency, Path(d) / "b.db"))
    print(f"pods: {args.pods}, HTTP concurrency: {args.concurrency}")
    print(f"in-process creates/s : {r['inprocess_creates_per_s']:8.0f}   (target >= 1000; "
          f"store alone {r['store_creates_per_s']:.0f}/s, ratio "
          f"{r['inprocess_creates_per_s'] / r['store_creates_per_s']:.2f})")
    print(f"HTTP creates/s       : {r['http_creates_per_s']:8.0f}   (target >= 500; bare "
          f"aiohttp POST {r['bare_http_posts_per_s']:.0f}/s, ratio "
          f"{r['http_creates_per_s'] / r['bare_http_posts_per_s']:.2f})")
    print(f"list {args.pods} pods JSON : {r['list_json_s'] * 1000:8.1f} ms "
          f"({r['list_json_mb']:.1f} MB; target < 500 ms)")
    print(f"list {args.pods} pods Table: {r['list_table_s'] * 1000:8.1f} ms "
          f"({r['list_table_mb']:.1f} MB)")
    print(f"watch delivery       : p50 {r['watch_p50_ms']:.2f} ms, p99 "
          f"{r['watch_p99_ms']:.2f} ms (target p99 < 10 ms)")


if __name__ == "__main__":
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())
